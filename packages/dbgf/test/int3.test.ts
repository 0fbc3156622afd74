import { describe, expect, it } from "vitest";
import { BreakpointFlags, NIL } from "@vmmkit/dbgf";
import { expectDbgfError, FakeHost, observe, setup } from "./fake-host.js";

describe("int3 arming (spec §4.2, §4.7, acceptance 15-23)", () => {
  it("15: default flags write 0xCC at the translated physical byte, page offset kept, and save the original", () => {
    const { dbg, host } = setup();
    host.map(0x40_0000n, 0x5000); // linear page 0x400000 → physical page 0x5000
    host.memory[0x5123] = 0x55;
    expect(host.returnsPageBase).toBe(true);
    const { handle, status } = dbg.setInt3(1, 0x40_0123n);
    expect(status).toBe("created");
    expect(host.memory[0x5123]).toBe(0xcc);
    expect(host.memory[0x5000]).toBe(0);
    expect(dbg.get(handle)).toMatchObject({ type: "int3", address: 0x40_0123n, physicalAddress: 0x5123n, originalByte: 0x55, enabled: true });
    expect(dbg.isInt3Armed()).toBe(true);
  });

  it("15: a translator that returns the byte's own address works the same", () => {
    const { dbg, host } = setup();
    host.returnsPageBase = false;
    host.map(0x40_0000n, 0x5000);
    host.memory[0x5123] = 0x55;
    const { handle } = dbg.setInt3(0, 0x40_0123n);
    expect(host.memory[0x5123]).toBe(0xcc);
    expect(dbg.get(handle)).toMatchObject({ physicalAddress: 0x5123n, originalByte: 0x55 });
  });

  it("16: flags without Enabled leave memory alone; enable arms once", () => {
    const { dbg, host } = setup();
    host.memory[0x1000] = 0x90;
    const { handle } = dbg.setInt3(0, 0x1000n, { flags: BreakpointFlags.HitBefore });
    expect(host.memory[0x1000]).toBe(0x90);
    expect(dbg.get(handle).enabled).toBe(false);
    expect(dbg.isInt3Armed()).toBe(false);
    expect(dbg.enable(handle)).toBe("ok");
    expect(host.memory[0x1000]).toBe(0xcc);
    expect(dbg.get(handle)).toMatchObject({ enabled: true, flags: 0x3, originalByte: 0x90 });
    expect(dbg.enable(handle)).toBe("already-enabled");
    expect(host.memory[0x1000]).toBe(0xcc);
    expect(dbg.get(handle)).toMatchObject({ originalByte: 0x90 });
  });

  it("17: disable restores the byte; disabling twice says so; isInt3Armed follows the last one", () => {
    const { dbg, host } = setup();
    host.memory[0x1000] = 0x90;
    host.memory[0x2000] = 0x31;
    const a = dbg.setInt3(0, 0x1000n).handle;
    const b = dbg.setInt3(0, 0x2000n).handle;
    expect(dbg.disable(a)).toBe("ok");
    expect(host.memory[0x1000]).toBe(0x90);
    expect(dbg.disable(a)).toBe("already-disabled");
    expect(dbg.isInt3Armed()).toBe(true);
    expect(dbg.disable(b)).toBe("ok");
    expect(host.memory[0x2000]).toBe(0x31);
    expect(dbg.isInt3Armed()).toBe(false);
  });

  it("18: code the guest changed while disabled is what the next disable restores", () => {
    const { dbg, host } = setup();
    host.memory[0x1000] = 0x90;
    const { handle } = dbg.setInt3(0, 0x1000n);
    dbg.disable(handle);
    host.memory[0x1000] = 0xeb; // the guest patches its code
    dbg.enable(handle);
    expect(host.memory[0x1000]).toBe(0xcc);
    dbg.disable(handle);
    expect(host.memory[0x1000]).toBe(0xeb);
  });

  it("19: a 0xCC the guest overwrote stays overwritten and the breakpoint reports disabled", () => {
    const { dbg, host } = setup();
    host.memory[0x1000] = 0x90;
    const { handle } = dbg.setInt3(0, 0x1000n);
    host.memory[0x1000] = 0x66;
    expect(dbg.disable(handle)).toBe("ok");
    expect(host.memory[0x1000]).toBe(0x66);
    expect(dbg.get(handle).enabled).toBe(false);
    expect(dbg.isInt3Armed()).toBe(false);
  });

  it("20: clearing an enabled int3 restores memory and empties its L1 entry", () => {
    const { dbg, host } = setup();
    host.memory[0x1234] = 0x41;
    const { handle } = dbg.setInt3(0, 0x1234n);
    expect(dbg.debug.l1Entry(0x1234)).toBe(0x1000_0000 | handle);
    dbg.clear(handle);
    expect(host.memory[0x1234]).toBe(0x41);
    expect(dbg.debug.l1Entry(0x1234)).toBe(0);
    expect(dbg.lookupInt3(0x1234n)).toBe(NIL);
    expect(dbg.isInt3Armed()).toBe(false);
  });

  it("21: a translation failure propagates unchanged and allocates nothing", () => {
    const { dbg, host } = setup();
    dbg.setInt3(0, 0x1000n);
    const before = observe(dbg, host);
    expect(() => dbg.setInt3(0, 0x7777_0000n)).toThrow("page fault at 77770000");
    expect(observe(dbg, host)).toEqual(before);
    expect(dbg.setInt3(0, 0x2000n).handle).toBe(1);
  });

  it("a translator returning garbage is refused", () => {
    const host = new FakeHost();
    host.translate = () => -5;
    const { dbg } = setup({}, host);
    expectDbgfError(() => dbg.setInt3(0, 0x1000n), "InvalidParameter");
    expect(dbg.breakpointCount).toBe(0);
  });

  it("a failed read or write while arming propagates, frees the record and leaves memory alone", () => {
    const { dbg, host } = setup();
    host.memory[0x1000] = 0x90;
    host.failPhysicalWrite.add(0x1000);
    expect(() => dbg.setInt3(0, 0x1000n)).toThrow("write error");
    expect(dbg.breakpointCount).toBe(0);
    expect(dbg.debug.l1Entry(0x1000)).toBe(0);
    expect(host.memory[0x1000]).toBe(0x90);
    host.failPhysicalWrite.clear();
    host.failPhysicalRead.add(0x1000);
    const { handle } = dbg.setInt3(0, 0x1000n, { flags: BreakpointFlags.HitBefore });
    expect(() => dbg.enable(handle)).toThrow("read error");
    expect(dbg.get(handle).enabled).toBe(false);
    expect(dbg.isInt3Armed()).toBe(false);
    dbg.debug.verify();
  });

  it("a failed restore on disable propagates and the breakpoint stays enabled; clear warns and goes on", () => {
    const { dbg, host } = setup();
    host.memory[0x1000] = 0x90;
    const { handle } = dbg.setInt3(0, 0x1000n);
    host.failPhysicalWrite.add(0x1000);
    expect(() => dbg.disable(handle)).toThrow("write error");
    expect(dbg.get(handle).enabled).toBe(true);
    expect(dbg.isInt3Armed()).toBe(true);
    dbg.clear(handle);
    expect(host.warnings).toHaveLength(1);
    expect(host.warnings[0]).toContain("physical 0x1000");
    expect(host.memory[0x1000]).toBe(0xcc); // the stray 0xCC the spec accepts
    expect(dbg.isInt3Armed()).toBe(false);
    expect(dbg.breakpointCount).toBe(0);
    dbg.debug.verify();
  });

  it("22: the same linear address again returns the existing handle and creates nothing", () => {
    const { dbg } = setup();
    const owner = dbg.createOwner({ hit: () => "resume" });
    const { handle } = dbg.setInt3(0, 0x1000n, { flags: BreakpointFlags.HitBefore, owner, hitTrigger: 3n });
    // Disabled + Enabled requested → enabled; owner and thresholds untouched.
    expect(dbg.setInt3(0, 0x1000n, { hitTrigger: 0n })).toEqual({ handle, status: "already-exists" });
    expect(dbg.get(handle)).toMatchObject({ enabled: true, owner, hitTrigger: 3n });
    // Enabled + Enabled not requested → stays enabled.
    expect(dbg.setInt3(1, 0x1000n, { flags: 0 })).toEqual({ handle, status: "already-exists" });
    expect(dbg.get(handle).enabled).toBe(true);
    expect(dbg.breakpointCount).toBe(1);
  });

  it("22: a duplicate of a disabled breakpoint without Enabled stays disabled", () => {
    const { dbg, host } = setup();
    const { handle } = dbg.setInt3(0, 0x1000n, { flags: 0 });
    expect(dbg.setInt3(0, 0x1000n, { flags: BreakpointFlags.HitAfter })).toEqual({ handle, status: "already-exists" });
    expect(dbg.get(handle)).toMatchObject({ enabled: false, flags: 0 });
    expect(host.memory[0x1000]).toBe(0);
  });

  it("23: the same linear address mapped elsewhere, or another alias of a patched byte, is AddressInUse", () => {
    const { dbg, host } = setup();
    host.map(0x40_0000n, 0x5000);
    dbg.setInt3(0, 0x40_0010n);
    const before = observe(dbg, host);
    host.map(0x40_0000n, 0x6000); // the guest remapped the page
    expectDbgfError(() => dbg.setInt3(0, 0x40_0010n), "AddressInUse");
    host.map(0x40_0000n, 0x5000);
    host.map(0x80_0000n, 0x5000); // an alias in another L1 slot (different bits 12-15 would also do)
    expectDbgfError(() => dbg.setInt3(0, 0x80_0010n), "AddressInUse");
    host.map(0x1_4000_0000n, 0x5000); // an alias that shares the low 16 bits
    expectDbgfError(() => dbg.setInt3(0, 0x1_4000_0010n), "AddressInUse");
    expect(observe(dbg, host)).toEqual(before);
    // A disabled breakpoint claims its byte too.
    const { handle } = dbg.setInt3(0, 0x2000n, { flags: 0 });
    host.map(0x90_0000n, 0x2000);
    expectDbgfError(() => dbg.setInt3(0, 0x90_0000n), "AddressInUse");
    dbg.clear(handle);
    expect(dbg.setInt3(0, 0x90_0000n).status).toBe("created");
  });

  it("rejects bad vCPU ids and addresses", () => {
    const { dbg } = setup();
    for (const cpu of [-1, 2, 0.5]) expectDbgfError(() => dbg.setInt3(cpu, 0x1000n), "InvalidParameter");
    for (const address of [-1n, 2n ** 64n, 0x1000 as unknown as bigint]) expectDbgfError(() => dbg.setInt3(0, address), "InvalidParameter");
    expect(dbg.breakpointCount).toBe(0);
  });
});

describe("the debugger's memory view (original bytes under armed int3s)", () => {
  it("readPhysicalMemory shows original bytes under armed int3s only", () => {
    const { dbg, host } = setup();
    host.memory.set([0x55, 0x89, 0xe5, 0xcc, 0xc3], 0x1000); // the guest's own 0xCC at 0x1003
    dbg.setInt3(0, 0x1000n);
    dbg.setInt3(0, 0x1002n);
    const disabled = dbg.setInt3(0, 0x1004n, { flags: 0 }).handle;
    expect([...host.memory.subarray(0x1000, 0x1005)]).toEqual([0xcc, 0x89, 0xcc, 0xcc, 0xc3]);
    expect([...dbg.readPhysicalMemory(0x1000n, 5)]).toEqual([0x55, 0x89, 0xe5, 0xcc, 0xc3]);
    dbg.enable(disabled);
    expect([...dbg.readPhysicalMemory(0xfffn, 7)]).toEqual([0x00, 0x55, 0x89, 0xe5, 0xcc, 0xc3, 0x00]);
    // The view is a copy: guest memory keeps its 0xCCs.
    expect(host.memory[0x1000]).toBe(0xcc);
  });

  it("readLinearMemory translates page by page, also across an alias", () => {
    const { dbg, host } = setup();
    host.map(0x40_0000n, 0x5000);
    host.map(0x40_1000n, 0x9000);
    host.memory[0x5fff] = 0x11;
    host.memory[0x9000] = 0x22;
    dbg.setInt3(0, 0x40_0fffn);
    dbg.setInt3(0, 0x40_1000n);
    host.map(0x70_0000n, 0x9000); // an alias of the second page: its 0xCC is the same breakpoint's byte
    expect([...dbg.readLinearMemory(1, 0x40_0ffen, 4)]).toEqual([0x00, 0x11, 0x22, 0x00]);
    expect([...dbg.readLinearMemory(0, 0x70_0000n, 1)]).toEqual([0x22]);
    expect([...host.memory.subarray(0x5fff, 0x6000)]).toEqual([0xcc]);
  });

  it("rejects bad ranges", () => {
    const { dbg } = setup();
    expectDbgfError(() => dbg.readPhysicalMemory(-1n, 1), "InvalidParameter");
    expectDbgfError(() => dbg.readPhysicalMemory(0n, -1), "InvalidParameter");
    expectDbgfError(() => dbg.readPhysicalMemory(2n ** 52n - 1n, 2), "OutOfRange");
    expectDbgfError(() => dbg.readLinearMemory(0, -1n, 1), "InvalidParameter");
    expectDbgfError(() => dbg.readLinearMemory(5, 0n, 1), "InvalidParameter");
  });
});
