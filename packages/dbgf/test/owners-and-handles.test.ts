import { describe, expect, it } from "vitest";
import { BreakpointFlags, DbgfError, Debugger, IoAccess, NIL, U64_MAX, type BreakpointInfo } from "@vmmkit/dbgf";
import { expectDbgfError, FakeHost, observe, setup } from "./fake-host.js";

const resume = () => "resume" as const;

describe("owners (spec §2, acceptance 1-7)", () => {
  it("1: an owner needs a callback; either one is enough", () => {
    const { dbg } = setup();
    expectDbgfError(() => dbg.createOwner({}), "InvalidParameter");
    expect(dbg.createOwner({ hit: resume })).toBe(0);
    expect(dbg.createOwner({ ioHit: resume })).toBe(1);
    expect(dbg.createOwner({ hit: resume, ioHit: resume })).toBe(2);
  });

  it("rejects callbacks that are not functions", () => {
    const { dbg } = setup();
    expectDbgfError(() => dbg.createOwner({ hit: 5 as never }), "InvalidParameter");
    expectDbgfError(() => dbg.createOwner({ hit: resume, ioHit: "x" as never }), "InvalidParameter");
    expect(dbg.createOwner({ hit: resume })).toBe(0);
  });

  it("2: handles are the lowest free index; a destroyed one is reused first", () => {
    const { dbg } = setup();
    expect([0, 1, 2].map(() => dbg.createOwner({ hit: resume }))).toEqual([0, 1, 2]);
    dbg.destroyOwner(1);
    expect(dbg.createOwner({ hit: resume })).toBe(1);
    expect(dbg.createOwner({ hit: resume })).toBe(3);
  });

  it("3: the (N+1)-th owner is refused with NoMoreOwnerHandles (default N = 32 768)", () => {
    const { dbg } = setup();
    for (let i = 0; i < 32_768; i++) dbg.createOwner({ hit: resume });
    expectDbgfError(() => dbg.createOwner({ hit: resume }), "NoMoreOwnerHandles");
    dbg.destroyOwner(12_345);
    expect(dbg.createOwner({ hit: resume })).toBe(12_345);
  });

  it("3: a lowered owner capacity is honoured", () => {
    const { dbg } = setup({ ownerCapacity: 3 });
    for (let i = 0; i < 3; i++) dbg.createOwner({ ioHit: resume });
    expectDbgfError(() => dbg.createOwner({ ioHit: resume }), "NoMoreOwnerHandles");
  });

  it("4: destroying NIL, a never-created owner, or an owner twice is InvalidHandle", () => {
    const { dbg } = setup();
    expectDbgfError(() => dbg.destroyOwner(NIL), "InvalidHandle");
    expectDbgfError(() => dbg.destroyOwner(0), "InvalidHandle"); // no table yet
    const owner = dbg.createOwner({ hit: resume });
    expectDbgfError(() => dbg.destroyOwner(7), "InvalidHandle");
    expectDbgfError(() => dbg.destroyOwner(-1), "InvalidHandle");
    dbg.destroyOwner(owner);
    expectDbgfError(() => dbg.destroyOwner(owner), "InvalidHandle");
  });

  it("5: an owner in use is OwnerBusy until its breakpoint is cleared", () => {
    const { dbg } = setup();
    const owner = dbg.createOwner({ hit: resume });
    const { handle } = dbg.setInt3(0, 0x1000n, { owner });
    expectDbgfError(() => dbg.destroyOwner(owner), "OwnerBusy");
    expect(dbg.get(handle).owner).toBe(owner);
    dbg.clear(handle);
    dbg.destroyOwner(owner);
    dbg.debug.verify();
  });

  it("6: an owner lacking the callback a type needs is InvalidHandle and its count is unchanged", () => {
    const { dbg, host } = setup();
    const ioOnly = dbg.createOwner({ ioHit: resume });
    const hitOnly = dbg.createOwner({ hit: resume });
    const before = observe(dbg, host);
    expectDbgfError(() => dbg.setInt3(0, 0x1000n, { owner: ioOnly }), "InvalidHandle");
    expectDbgfError(() => dbg.setHardware(0x1000n, 0, 1, { owner: ioOnly }), "InvalidHandle");
    expectDbgfError(() => dbg.setPortIo(0x60, 1, IoAccess.ReadByte, { owner: hitOnly }), "InvalidHandle");
    expectDbgfError(() => dbg.setMmio(0xfee0_0000n, 4, IoAccess.AnyRead, { owner: hitOnly }), "InvalidHandle");
    expectDbgfError(() => dbg.setInt3(0, 0x1000n, { owner: 99 }), "InvalidHandle");
    expect(observe(dbg, host)).toEqual(before);
    dbg.destroyOwner(ioOnly);
    dbg.destroyOwner(hitOnly);
  });

  it("7: a user argument without an owner is InvalidParameter for every type, null included", () => {
    const { dbg } = setup();
    expectDbgfError(() => dbg.setInt3(0, 0x1000n, { user: 1 }), "InvalidParameter");
    expectDbgfError(() => dbg.setInt3(0, 0x1000n, { user: null }), "InvalidParameter");
    expectDbgfError(() => dbg.setHardware(0x1000n, 1, 4, { user: "x" }), "InvalidParameter");
    expectDbgfError(() => dbg.setPortIo(0x60, 1, 1, { user: {} }), "InvalidParameter");
    expectDbgfError(() => dbg.setMmio(0x1000n, 1, 1, { user: 0 }), "InvalidParameter");
    expectDbgfError(() => dbg.setInt3(0, 0x1000n, { owner: NIL, user: 1 }), "InvalidParameter");
    expect(dbg.breakpointCount).toBe(0);
  });

  it("the user argument reaches the owner's callback", () => {
    const { dbg } = setup();
    const users: unknown[] = [];
    const owner = dbg.createOwner({ hit: (_cpu, user) => (users.push(user), "resume") });
    const marker = { name: "marker" };
    dbg.setInt3(0, 0x1000n, { owner, user: marker });
    dbg.setInt3(0, 0x2000n, { owner });
    dbg.onInt3Trap(0, 0x1000);
    dbg.onInt3Trap(0, 0x2000);
    expect(users).toEqual([marker, undefined]);
    expect(users[0]).toBe(marker);
  });
});

describe("allocation, handles and enumeration (spec §4.1, §4.9, acceptance 8-14)", () => {
  it("8: handles are 0, 1, 2, …; a cleared handle is reused first", () => {
    const { dbg } = setup();
    expect(dbg.setInt3(0, 0x1000n).handle).toBe(0);
    expect(dbg.setPortIo(0x60, 1, 1).handle).toBe(1);
    expect(dbg.setHardware(0x2000n, 1, 4).handle).toBe(2);
    dbg.clear(1);
    expect(dbg.setInt3(0, 0x1001n).handle).toBe(1);
    expect(dbg.setInt3(0, 0x1002n).handle).toBe(3);
  });

  it("9: with chunk size 65 536 the 65 537th breakpoint gets handle 0x1_0000", () => {
    const { dbg } = setup({}, new FakeHost(1, "intel", 0x2_0000, 0x20));
    for (let i = 0; i < 0x1_0000; i++) dbg.setInt3(0, BigInt(i), { flags: BreakpointFlags.HitBefore });
    expect(dbg.setInt3(0, 0x1_0000n, { flags: BreakpointFlags.HitBefore }).handle).toBe(0x1_0000);
    dbg.clear(5);
    expect(dbg.setInt3(0, 0x1_0001n, { flags: BreakpointFlags.HitBefore }).handle).toBe(5);
  });

  it("chunks are created in order with smaller chunk sizes too", () => {
    const { dbg } = setup({ breakpointChunkSize: 4, breakpointChunks: 3 });
    const handles = Array.from({ length: 12 }, (_, i) => dbg.setInt3(0, BigInt(0x1000 + i)).handle);
    expect(handles).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    dbg.clear(2);
    dbg.clear(9);
    expect(dbg.setInt3(0, 0x2000n).handle).toBe(2);
    expect(dbg.setInt3(0, 0x2001n).handle).toBe(9);
  });

  it("10: with capacity N the (N+1)-th set is NoMoreBreakpointSlots and leaves no trace", () => {
    const { dbg, host } = setup({ breakpointChunkSize: 8, breakpointChunks: 2 });
    const owner = dbg.createOwner({ hit: resume, ioHit: resume });
    for (let i = 0; i < 16; i++) dbg.setInt3(0, BigInt(0x1000 + i), { owner });
    const before = observe(dbg, host);
    expectDbgfError(() => dbg.setInt3(0, 0x3000n, { owner }), "NoMoreBreakpointSlots");
    expectDbgfError(() => dbg.setPortIo(0x60, 4, 1, { owner }), "NoMoreBreakpointSlots");
    expectDbgfError(() => dbg.setHardware(0x60n, 1, 1, { owner }), "NoMoreBreakpointSlots");
    expectDbgfError(() => dbg.setMmio(0x60n, 4, 1, { owner }), "NoMoreBreakpointSlots");
    expect(observe(dbg, host)).toEqual(before);
    expect(host.memory[0x3000]).toBe(0);
    expect(dbg.debug.portEntry(0x60)).toBe(0);
    dbg.debug.verify(); // includes the owner's reference count: 16 breakpoints + 1
    for (let i = 0; i < 16; i++) dbg.clear(i);
    dbg.destroyOwner(owner);
  });

  it("a record allocation that runs out of memory releases the owner and leaves no trace", () => {
    const { dbg, host } = setup();
    const owner = dbg.createOwner({ hit: resume });
    dbg.setInt3(0, 0x1000n, { owner });
    const before = observe(dbg, host);
    const pool = (dbg as unknown as { records: { pool: { allocate: () => number } } }).records.pool;
    const allocate = pool.allocate;
    pool.allocate = () => {
      throw new DbgfError("NoMemory", "cannot allocate chunk 1");
    };
    expectDbgfError(() => dbg.setInt3(0, 0x2000n, { owner }), "NoMemory");
    expect(observe(dbg, host)).toEqual(before);
    pool.allocate = allocate;
    dbg.debug.verify(); // owner reference count included
    dbg.clear(0);
    dbg.destroyOwner(owner);
  });

  it("11: enumerate reports nothing before any set, then every breakpoint of every type in handle order", () => {
    const { dbg } = setup();
    const none: number[] = [];
    expect(dbg.enumerate((handle) => void none.push(handle))).toBe("ok");
    expect(none).toEqual([]);
    dbg.setInt3(0, 0x1000n);
    dbg.setPortIo(0x3f8, 8, IoAccess.ReadByte, { flags: BreakpointFlags.HitBefore });
    dbg.setHardware(0x2000n, 3, 8);
    dbg.setMmio(0xfee0_0000n, 0x1000, IoAccess.MmioMask);
    dbg.setInt3(0, 0x1001n, { flags: BreakpointFlags.HitBefore });
    dbg.clear(1);
    const seen: [number, BreakpointInfo["type"], boolean][] = [];
    expect(dbg.enumerate((handle, info) => void seen.push([handle, info.type, info.enabled]))).toBe("ok");
    expect(seen).toEqual([
      [0, "int3", true],
      [2, "hardware", true],
      [3, "mmio", true],
      [4, "int3", false],
    ]);
  });

  it("12: returning 'stop' ends enumeration after that call", () => {
    const { dbg } = setup();
    for (let i = 0; i < 5; i++) dbg.setInt3(0, BigInt(0x1000 + i));
    const seen: number[] = [];
    expect(dbg.enumerate((handle) => (seen.push(handle), handle === 2 ? "stop" : undefined))).toBe("stop");
    expect(seen).toEqual([0, 1, 2]);
  });

  it("enumerate hands out snapshots, skips what the callback cleared, reports what it created above", () => {
    const { dbg } = setup();
    for (let i = 0; i < 4; i++) dbg.setInt3(0, BigInt(0x1000 + i));
    const seen: number[] = [];
    let snapshot: BreakpointInfo | undefined;
    dbg.enumerate((handle, info) => {
      seen.push(handle);
      if (handle === 0) {
        snapshot = info;
        dbg.clear(2);
        dbg.disable(0);
        dbg.setInt3(0, 0x5000n); // takes handle 2: below nothing seen yet, so reported
      }
      if (handle === 1) dbg.setInt3(0, 0x6000n); // handle 4
    });
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(snapshot?.enabled).toBe(true);
    expect(Object.isFrozen(snapshot)).toBe(true);
    expect(() => {
      (snapshot as { hits: bigint }).hits = 5n;
    }).toThrow(TypeError);
  });

  it("enumerate propagates an exception from the callback", () => {
    const { dbg } = setup();
    dbg.setInt3(0, 0x1000n);
    expect(() =>
      dbg.enumerate(() => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
  });

  it("13: NIL is InvalidHandle; an unallocated handle is BreakpointNotFound; clear twice fails the second time", () => {
    const { dbg } = setup();
    const calls = [(h: number) => dbg.clear(h), (h: number) => dbg.enable(h), (h: number) => dbg.disable(h), (h: number) => dbg.get(h)];
    for (const call of calls) {
      expectDbgfError(() => call(0), "BreakpointNotFound"); // no table yet
      expectDbgfError(() => call(NIL), "InvalidHandle");
    }
    const { handle } = dbg.setInt3(0, 0x1000n);
    for (const call of calls) {
      expectDbgfError(() => call(NIL), "InvalidHandle");
      expectDbgfError(() => call(1), "BreakpointNotFound");
      expectDbgfError(() => call(0x1_0000), "BreakpointNotFound");
      expectDbgfError(() => call(0xf_ffff), "BreakpointNotFound");
      expectDbgfError(() => call(-2), "InvalidHandle");
      expectDbgfError(() => call(1.5), "InvalidHandle");
    }
    dbg.clear(handle);
    expectDbgfError(() => dbg.clear(handle), "BreakpointNotFound");
  });

  it("14: hitTrigger > hitDisable is InvalidParameter, equal is fine; flags 0x8 is InvalidFlags", () => {
    const { dbg } = setup();
    expectDbgfError(() => dbg.setInt3(0, 0x1000n, { hitTrigger: 5n, hitDisable: 4n }), "InvalidParameter");
    expectDbgfError(() => dbg.setPortIo(0x60, 1, 1, { hitTrigger: U64_MAX, hitDisable: 0n }), "InvalidParameter");
    expect(dbg.setInt3(0, 0x1000n, { hitTrigger: 5n, hitDisable: 5n }).status).toBe("created");
    for (const flags of [0x8, 0x9, 0x10, -1, 1.5]) {
      expectDbgfError(() => dbg.setInt3(0, 0x2000n, { flags }), "InvalidFlags");
      expectDbgfError(() => dbg.setHardware(0x2000n, 1, 1, { flags }), "InvalidFlags");
      expectDbgfError(() => dbg.setPortIo(0x60, 1, 1, { flags }), "InvalidFlags");
      expectDbgfError(() => dbg.setMmio(0x2000n, 1, 1, { flags }), "InvalidFlags");
    }
    for (const value of [-1n, U64_MAX + 1n, 5 as unknown as bigint]) {
      expectDbgfError(() => dbg.setInt3(0, 0x2000n, { hitTrigger: value }), "InvalidParameter");
      expectDbgfError(() => dbg.setInt3(0, 0x2000n, { hitDisable: value }), "InvalidParameter");
    }
    expect(dbg.breakpointCount).toBe(1);
  });

  it("get reports the thresholds, flags and owner as set", () => {
    const { dbg } = setup();
    const owner = dbg.createOwner({ hit: resume });
    const { handle } = dbg.setInt3(0, 0x1234n, { owner, flags: 0x7, hitTrigger: 2n, hitDisable: 9n });
    expect(dbg.get(handle)).toEqual({
      handle,
      owner,
      flags: 0x7,
      enabled: true,
      hits: 0n,
      hitTrigger: 2n,
      hitDisable: 9n,
      type: "int3",
      address: 0x1234n,
      physicalAddress: 0x1234n,
      originalByte: 0,
    });
    const plain = dbg.setInt3(0, 0x1235n).handle;
    expect(dbg.get(plain)).toMatchObject({ owner: NIL, flags: 0x3, hitTrigger: 0n, hitDisable: U64_MAX });
  });
});

describe("construction and lifecycle (spec §1, §11)", () => {
  it.each([
    [{ breakpointChunkSize: 3 }],
    [{ breakpointChunkSize: 0x2_0000 }],
    [{ breakpointChunks: 0 }],
    [{ breakpointChunks: 17 }],
    [{ nodeChunkSize: 1000 }],
    [{ nodeChunks: 1.5 }],
    [{ ownerCapacity: 0 }],
    [{ ownerCapacity: 40_000 }],
  ])("refuses the options %j", (options) => {
    expectDbgfError(() => new Debugger(new FakeHost(), options), "InvalidParameter");
  });

  it("refuses a host without vCPUs or with an unknown vendor", () => {
    expectDbgfError(() => new Debugger(new FakeHost(0)), "InvalidParameter");
    expectDbgfError(() => new Debugger(new FakeHost(1, "via" as never)), "InvalidParameter");
  });

  it("terminate makes every later call InvalidVmHandle and leaves guest memory alone", () => {
    const { dbg, host } = setup();
    dbg.setInt3(0, 0x1000n);
    dbg.terminate();
    expect(host.memory[0x1000]).toBe(0xcc);
    for (const call of [
      () => dbg.setInt3(0, 0x2000n),
      () => dbg.clear(0),
      () => dbg.onInt3Trap(0, 0x1000),
      () => dbg.checkPortIo(0, 0x60, 1, 0, true),
      () => dbg.createOwner({ hit: resume }),
      () => dbg.getDr7(),
      () => dbg.enumerate(() => undefined),
      () => dbg.nextEvent(),
      () => dbg.terminate(),
    ]) {
      expectDbgfError(call, "InvalidVmHandle");
    }
  });
});
