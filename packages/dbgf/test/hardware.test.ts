import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BreakpointFlags, type Debugger, type GuestDebugContext, HardwareAccess, type HardwareBreakpointSize, NIL } from "@vmmkit/dbgf";
import { expectDbgfError, FakeHost, observe, setup } from "./fake-host.js";

const { Execute, Write, Io, ReadWrite } = HardwareAccess;
const { HitBefore, HitAfter, Enabled } = BreakpointFlags;

function context(overrides: Partial<GuestDebugContext> = {}): GuestDebugContext {
  return { dr: [0n, 0n, 0n, 0n], dr6: 0, dr7: 0, rf: false, cr4: 0, ...overrides };
}

interface Wanted {
  readonly slot: number;
  readonly access: HardwareAccess;
  readonly size: HardwareBreakpointSize;
}

/** Enables exactly the wanted slots; a lower slot that is not wanted holds a disabled breakpoint. */
function configure(wanted: readonly Wanted[]): Debugger {
  const { dbg } = setup();
  const highest = Math.max(-1, ...wanted.map((entry) => entry.slot));
  for (let slot = 0; slot <= highest; slot++) {
    const entry = wanted.find((candidate) => candidate.slot === slot);
    const { handle } = entry
      ? dbg.setHardware(0x1000n * BigInt(slot + 1), entry.access, entry.size)
      : dbg.setHardware(0xdead_0000n + BigInt(slot), ReadWrite, 4, { flags: HitBefore });
    expect(dbg.get(handle)).toMatchObject({ type: "hardware", slot });
  }
  return dbg;
}

describe("hardware breakpoints (spec §4.3, §8, acceptance 53-58)", () => {
  it("53: sizes other than 1, 2, 4, 8, execute with size ≠ 1 and types outside 0-3 are InvalidParameter", () => {
    const { dbg, host } = setup();
    dbg.setHardware(0x40n, Write, 1);
    const before = observe(dbg, host);
    for (const [type, size] of [
      [Write, 3],
      [Write, 0],
      [Write, 16],
      [ReadWrite, 1.5],
      [Execute, 2],
      [Execute, 4],
      [Execute, 8],
      [4, 1],
      [-1, 1],
      [0.5, 1],
    ] as const) {
      expectDbgfError(() => dbg.setHardware(0x100n, type as HardwareAccess, size as HardwareBreakpointSize), "InvalidParameter");
    }
    expectDbgfError(() => dbg.setHardware(-1n, Write, 1), "InvalidParameter");
    expectDbgfError(() => dbg.setHardware(2n ** 64n, Write, 1), "InvalidParameter");
    expectDbgfError(() => dbg.setHardware(0x100 as unknown as bigint, Write, 1), "InvalidParameter");
    expect(observe(dbg, host)).toEqual(before);
  });

  it("54: four breakpoints take slots 0-3; a fifth leaves no record; a cleared slot is reused", () => {
    const { dbg, host } = setup();
    const handles = [0, 1, 2, 3].map((i) => dbg.setHardware(0x100n * BigInt(i + 1), Write, 1, { flags: i % 2 ? HitBefore : Enabled | HitBefore }).handle);
    expect(handles.map((handle) => dbg.get(handle))).toMatchObject([{ slot: 0 }, { slot: 1 }, { slot: 2 }, { slot: 3 }]);
    const before = observe(dbg, host);
    expectDbgfError(() => dbg.setHardware(0x900n, Write, 1), "NoMoreBreakpointSlots");
    expect(observe(dbg, host)).toEqual(before);
    expect(dbg.breakpointCount).toBe(4);
    dbg.clear(handles[1]!);
    const { handle } = dbg.setHardware(0x500n, ReadWrite, 2);
    expect(handle).toBe(handles[1]);
    expect(dbg.get(handle)).toMatchObject({ slot: 1, address: 0x500n, accessType: ReadWrite, size: 2 });
    expect([0, 1, 2, 3].map((slot) => dbg.getDr(slot))).toEqual([0x100n, 0x500n, 0x300n, 0x400n]);
  });

  it.each<[string, Wanted[], number]>([
    ["nothing enabled", [], 0x0000_2700],
    ["slot 0 execute/1", [{ slot: 0, access: Execute, size: 1 }], 0x0000_2702],
    ["slot 0 write/1", [{ slot: 0, access: Write, size: 1 }], 0x0001_2702],
    ["slot 0 write/2", [{ slot: 0, access: Write, size: 2 }], 0x0005_2702],
    ["slot 0 write/4", [{ slot: 0, access: Write, size: 4 }], 0x000d_2702],
    ["slot 0 write/8", [{ slot: 0, access: Write, size: 8 }], 0x0009_2702],
    ["slot 0 I/O/1", [{ slot: 0, access: Io, size: 1 }], 0x0002_2702],
    ["slot 0 I/O/2", [{ slot: 0, access: Io, size: 2 }], 0x0006_2702],
    ["slot 0 I/O/4", [{ slot: 0, access: Io, size: 4 }], 0x000e_2702],
    ["slot 0 I/O/8", [{ slot: 0, access: Io, size: 8 }], 0x000a_2702],
    ["slot 0 read-write/1", [{ slot: 0, access: ReadWrite, size: 1 }], 0x0003_2702],
    ["slot 0 read-write/2", [{ slot: 0, access: ReadWrite, size: 2 }], 0x0007_2702],
    ["slot 0 read-write/4", [{ slot: 0, access: ReadWrite, size: 4 }], 0x000f_2702],
    ["slot 0 read-write/8", [{ slot: 0, access: ReadWrite, size: 8 }], 0x000b_2702],
    ["slot 1 write/4", [{ slot: 1, access: Write, size: 4 }], 0x00d0_2708],
    ["slot 2 read-write/2", [{ slot: 2, access: ReadWrite, size: 2 }], 0x0700_2720],
    ["slot 3 I/O/8", [{ slot: 3, access: Io, size: 8 }], 0xa000_2780],
    [
      "slots 0-3 = execute/1, write/2, read-write/4, I/O/8",
      [
        { slot: 0, access: Execute, size: 1 },
        { slot: 1, access: Write, size: 2 },
        { slot: 2, access: ReadWrite, size: 4 },
        { slot: 3, access: Io, size: 8 },
      ],
      0xaf50_27aa,
    ],
  ])("55: %s → DR7 %#x", (_label, wanted, expected) => {
    const dbg = configure(wanted);
    expect(dbg.getDr7()).toBe(expected);
    expect(dbg.isHwArmed()).toBe(wanted.length > 0);
  });

  it("56: a disabled slot keeps its DR address but not its DR7 bits; a free slot reads 0n", () => {
    const { dbg } = setup();
    const a = dbg.setHardware(0x100n, Write, 1).handle;
    dbg.setHardware(0x200n, ReadWrite, 4);
    dbg.disable(a);
    expect(dbg.getDr(0)).toBe(0x100n);
    expect(dbg.getDr7()).toBe(0x00f0_2708);
    expect([dbg.getDr(2), dbg.getDr(3)]).toEqual([0n, 0n]);
    dbg.clear(a);
    expect(dbg.getDr(0)).toBe(0n);
    for (const slot of [-1, 4, 1.5]) expectDbgfError(() => dbg.getDr(slot), "InvalidParameter");
  });

  it("57: armed queries follow arm/disarm; every vCPU reloads its debug registers once per change", () => {
    const host = new FakeHost(3);
    const { dbg } = setup({}, host);
    const io = dbg.setHardware(0x3f8n, Io, 1).handle;
    expect(host.reloads).toEqual([0, 1, 2]);
    expect([dbg.isHwArmed(), dbg.isHwIoArmed()]).toEqual([true, true]);
    const write = dbg.setHardware(0x1000n, Write, 4, { flags: HitBefore }).handle;
    expect(host.reloads).toEqual([0, 1, 2]); // a disabled breakpoint changes no register
    dbg.disable(io);
    expect([dbg.isHwArmed(), dbg.isHwIoArmed()]).toEqual([false, false]);
    dbg.enable(write);
    expect([dbg.isHwArmed(), dbg.isHwIoArmed()]).toEqual([true, false]);
    dbg.enable(write);
    dbg.clear(write);
    expect(host.reloads).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    expect(dbg.isHwArmed()).toBe(false);
  });

  it("57: a vCPU refusing the reload reverts the arming", () => {
    const host = new FakeHost(2);
    const { dbg } = setup({}, host);
    host.failReload = true;
    expect(() => dbg.setHardware(0x1000n, Write, 4)).toThrow("cannot load debug registers");
    expect(dbg.breakpointCount).toBe(0);
    expect(dbg.getDr(0)).toBe(0n);
    expect(dbg.isHwArmed()).toBe(false);
    host.failReload = false;
    const { handle } = dbg.setHardware(0x1000n, Write, 4);
    host.failReload = true;
    expect(() => dbg.disable(handle)).toThrow("cannot load debug registers");
    expect(dbg.get(handle).enabled).toBe(true);
    expect(dbg.getDr7()).toBe(0x000d_2702);
    dbg.clear(handle);
    expect(host.warnings).toHaveLength(1);
    expect(dbg.getDr7()).toBe(0x2700);
  });

  it("58: the same address, type and size is already-exists (in any slot); another type takes a new slot", () => {
    const { dbg } = setup();
    dbg.setHardware(0x100n, Write, 4);
    const second = dbg.setHardware(0x100n, ReadWrite, 4).handle;
    expect(dbg.get(second)).toMatchObject({ slot: 1 });
    expect(dbg.setHardware(0x100n, ReadWrite, 4)).toEqual({ handle: second, status: "already-exists" });
    expect(dbg.setHardware(0x100n, Write, 2).status).toBe("created");
    dbg.disable(second);
    expect(dbg.setHardware(0x100n, ReadWrite, 4, { flags: HitBefore })).toEqual({ handle: second, status: "already-exists" });
    expect(dbg.get(second).enabled).toBe(false);
    expect(dbg.setHardware(0x100n, ReadWrite, 4)).toEqual({ handle: second, status: "already-exists" });
    expect(dbg.get(second).enabled).toBe(true);
  });

  it("accepts the extreme addresses 0 and 2^64-1", () => {
    const { dbg } = setup();
    dbg.setHardware(0n, Execute, 1);
    dbg.setHardware(0xffff_ffff_ffff_ffffn, ReadWrite, 8);
    expect(dbg.getDr(1)).toBe(0xffff_ffff_ffff_ffffn);
  });
});

describe("hardware checks (spec §8.4-§8.7, acceptance 59-62)", () => {
  it("59: a DBGF execute slot at pc wins over a matching guest DR7", () => {
    const { dbg } = setup();
    const { handle } = dbg.setHardware(0x7c00n, Execute, 1);
    dbg.setStepping(1, true);
    const guest = context({ dr: [0x7c00n, 0n, 0n, 0n], dr7: 0x1 });
    expect(dbg.checkInstruction(1, guest, 0x7c00)).toEqual({ kind: "dbgf", handle });
    expect(dbg.isStepping(1)).toBe(false);
    expect(dbg.debug.activeBreakpoint(1)).toBe(handle);
    expect(guest).toMatchObject({ dr6: 0, dr7: 0x1 });
    expect(dbg.checkInstruction(0, context(), 0x7c01)).toEqual({ kind: "none" });
  });

  it("59: guest execute breakpoints: RF suppresses them; Intel reports every matching slot, AMD only enabled ones; GD is cleared", () => {
    // DR0 and DR2 both at 0x500 configured execute/1; only DR0 enabled (L0); GD set; DR6 has stale bits.
    const guest = () => context({ dr: [0x500n, 0x600n, 0x500n, 0n], dr7: 0x2001, dr6: 0xffff_0ff8 });
    const intel = setup({}, new FakeHost(1, "intel")).dbg;
    const amd = setup({}, new FakeHost(1, "amd")).dbg;
    const withRf = { ...guest(), rf: true };
    expect(intel.checkInstruction(0, withRf, 0x500)).toEqual({ kind: "none" });
    const onIntel = guest();
    expect(intel.checkInstruction(0, onIntel, 0x500n)).toEqual({ kind: "guest-trap" });
    expect(onIntel.dr6).toBe(0xffff_0ff5);
    expect(onIntel.dr7).toBe(0x0001);
    const onAmd = guest();
    expect(amd.checkInstruction(0, onAmd, 0x500)).toEqual({ kind: "guest-trap" });
    expect(onAmd.dr6).toBe(0xffff_0ff1);
    // Only the disabled slot matches: nothing.
    const disabledOnly = context({ dr: [0x700n, 0n, 0x500n, 0n], dr7: 0x1 });
    expect(intel.checkInstruction(0, disabledOnly, 0x500)).toEqual({ kind: "none" });
    // A data breakpoint at pc is no execute breakpoint.
    const dataSlot = context({ dr: [0x500n, 0n, 0n, 0n], dr7: 0x1 | (1 << 16) });
    expect(intel.checkInstruction(0, dataSlot, 0x500)).toEqual({ kind: "none" });
    // A slot with LEN ≠ 0 is not execute-configured.
    const lenSlot = context({ dr: [0x500n, 0n, 0n, 0n], dr7: 0x1 | (1 << 18) });
    expect(intel.checkInstruction(0, lenSlot, 0x500)).toEqual({ kind: "none" });
  });

  it("60: guest I/O breakpoints need CR4.DE; LEN selects the aligned range; only the first match is reported", () => {
    const { dbg } = setup();
    const io = (dr7: number, dr: bigint[], cr4 = 0x8) => context({ dr, dr7, cr4, dr6: 0xffff_0ff0 });
    // DR1 = 0x3F9, LEN 01 (word), R/W 10 (I/O), L1 set → covers 0x3F8-0x3F9.
    const dr7 = (1 << 2) | (0b10 << 20) | (0b01 << 22);
    const dr = [0n, 0x3f9n, 0n, 0n];
    expect(dbg.checkIo(0, io(dr7, dr, 0), 0x3f8, 1)).toEqual({ kind: "none" });
    for (const [port, size] of [
      [0x3f8, 1],
      [0x3f7, 2],
      [0x3f9, 4],
    ] as const) {
      const guest = io(dr7 | 0x2000, dr);
      expect(dbg.checkIo(0, guest, port, size)).toEqual({ kind: "guest-trap" });
      expect(guest.dr6).toBe(0xffff_0ff2);
      expect(guest.dr7).toBe(dr7);
    }
    expect(dbg.checkIo(0, io(dr7, dr), 0x3fa, 1)).toEqual({ kind: "none" });
    expect(dbg.checkIo(0, io(dr7, dr), 0x3f6, 2)).toEqual({ kind: "none" });
    // LEN 10 covers 8 aligned ports.
    const eight = (1 << 2) | (0b10 << 20) | (0b10 << 22);
    expect(dbg.checkIo(0, io(eight, [0n, 0x3fbn, 0n, 0n]), 0x3f8, 1)).toEqual({ kind: "guest-trap" });
    expect(dbg.checkIo(0, io(eight, [0n, 0x3fbn, 0n, 0n]), 0x3ff, 1)).toEqual({ kind: "guest-trap" });
    expect(dbg.checkIo(0, io(eight, [0n, 0x3fbn, 0n, 0n]), 0x400, 1)).toEqual({ kind: "none" });
    // Two matching slots (DR0 and DR3): only DR0 is reported.
    const both = (1 << 0) | (0b10 << 16) | (1 << 6) | (0b10 << 28);
    const guest = io(both, [0x60n, 0n, 0n, 0x60n]);
    expect(dbg.checkIo(0, guest, 0x60, 1)).toEqual({ kind: "guest-trap" });
    expect(guest.dr6 & 0xf).toBe(0b0001);
    // An execute slot in DR7 does not make I/O checks match.
    expect(dbg.checkIo(0, io(1, [0x60n, 0n, 0n, 0n]), 0x60, 1)).toEqual({ kind: "none" });
  });

  it("61: a DBGF I/O slot at 0x71 with size 4 covers ports 0x70-0x73", () => {
    const { dbg } = setup();
    const { handle } = dbg.setHardware(0x71n, Io, 4);
    for (const port of [0x70, 0x71, 0x72, 0x73]) expect(dbg.checkIo(0, context(), port, 1)).toEqual({ kind: "dbgf", handle });
    expect(dbg.checkIo(0, context(), 0x6e, 2)).toEqual({ kind: "none" });
    expect(dbg.checkIo(0, context(), 0x6f, 2)).toEqual({ kind: "dbgf", handle });
    expect(dbg.checkIo(0, context(), 0x74, 1)).toEqual({ kind: "none" });
    dbg.disable(handle);
    expect(dbg.checkIo(0, context(), 0x71, 1)).toEqual({ kind: "none" });
    expectDbgfError(() => dbg.checkIo(0, context(), 0x1_0000, 1), "InvalidParameter");
    expectDbgfError(() => dbg.checkIo(0, context(), 0x70, 3), "InvalidParameter");
  });

  it("62: checkIo2 reports 0x4000_0000 for DBGF, matched << 25 for the guest (disabled matches included), and changes nothing", () => {
    const { dbg } = setup();
    // DR0 and DR2 I/O at 0x80 (byte); only DR0 enabled.
    const dr7 = (1 << 0) | (0b10 << 16) | (0b10 << 24);
    const guest = context({ dr: [0x80n, 0n, 0x80n, 0n], dr7, cr4: 0x8, dr6: 0x0ff0 });
    expect(dbg.checkIo2(0, guest, 0x80, 1)).toBe((0b0101 << 25) >>> 0);
    expect(guest).toMatchObject({ dr6: 0x0ff0, dr7 });
    expect(dbg.checkIo2(0, context({ ...guest, dr7: 0b10 << 24 | 0x4 }), 0x80, 1)).toBe(0); // only the disabled slot matches
    const { handle } = dbg.setHardware(0x80n, Io, 1);
    expect(dbg.checkIo2(0, guest, 0x80, 1)).toBe(0x4000_0000);
    expect(dbg.debug.activeBreakpoint(0)).toBe(handle);
  });

  it("onDebugTrap: the lowest DR6 bit of an in-use slot is DBGF's; BS while stepping is 'stepped'; else not ours", () => {
    const { dbg } = setup();
    expect(dbg.onDebugTrap(0, 0x1)).toEqual({ kind: "not-ours" });
    dbg.setHardware(0x100n, Write, 4);
    const second = dbg.setHardware(0x200n, Write, 4).handle;
    expect(dbg.onDebugTrap(0, 0b0110)).toEqual({ kind: "dbgf", handle: second });
    expect(dbg.onDebugTrap(0, 0b1000)).toEqual({ kind: "not-ours" }); // slot 3 is free
    expect(dbg.onDebugTrap(0, 0x4000)).toEqual({ kind: "not-ours" });
    dbg.setStepping(0, true);
    expect(dbg.onDebugTrap(0, 0x4000)).toEqual({ kind: "stepped" });
    expect(dbg.isStepping(0)).toBe(false);
    expect(dbg.nextEvent()).toEqual({ kind: "stepped", cpuId: 0 });
    dbg.setStepping(0, true);
    expect(dbg.onDebugTrap(0, 0x4001)).toEqual({ kind: "dbgf", handle: 0 }); // a breakpoint hit ends stepping
    expect(dbg.isStepping(0)).toBe(false);
  });

  it("processActiveHit counts and dispatches hardware hits like int3 ones", () => {
    const { dbg, host } = setup();
    host.memory.set([0x90], 0x7c00);
    const calls: string[] = [];
    const owner = dbg.createOwner({ hit: (_cpu, _user, handle, info, when) => (calls.push(`${handle}:${when}:${info.hits}`), "resume") });
    const exec = dbg.setHardware(0x7c00n, Execute, 1, { owner, flags: Enabled | HitBefore | HitAfter }).handle;
    const data = dbg.setHardware(0x9000n, Write, 4, { owner, flags: Enabled | HitBefore }).handle;
    const quiet = dbg.setHardware(0x9100n, Write, 4, { owner, flags: Enabled, hitDisable: 1n }).handle;
    expectDbgfError(() => dbg.processActiveHit(0), "BreakpointNotFound");
    expect(dbg.checkInstruction(0, context(), 0x7c00)).toEqual({ kind: "dbgf", handle: exec });
    expect(dbg.processActiveHit(0)).toBe("resume");
    expect(host.executed.map((entry) => [entry.linear, entry.bytes[0]])).toEqual([[0x7c00n, 0x90]]);
    expect(dbg.onDebugTrap(0, 0b10)).toEqual({ kind: "dbgf", handle: data });
    expect(dbg.processActiveHit(0)).toBe("resume");
    expect(calls).toEqual([`${exec}:before:1`, `${exec}:after:1`, `${data}:after:1`]);
    expect(host.executed).toHaveLength(1); // a data breakpoint executes nothing
    expect(dbg.onDebugTrap(1, 0b100)).toEqual({ kind: "dbgf", handle: quiet });
    expect(dbg.processActiveHit(1)).toBe("resume");
    expect(calls).toHaveLength(3);
    expect(dbg.get(quiet)).toMatchObject({ hits: 1n, enabled: false });
    expect(dbg.getDr7() & (1 << 5)).toBe(0);
    expect(dbg.debug.activeBreakpoint(0)).toBe(NIL);
    // No owner: a stop, remembered until resume.
    const stop = dbg.setHardware(0xa000n, ReadWrite, 1).handle;
    dbg.onDebugTrap(1, 0b1000);
    expect(dbg.processActiveHit(1)).toBe("halt");
    expect(host.breakpointEvents).toEqual([[1, stop]]);
    expect(dbg.debug.activeBreakpoint(1)).toBe(stop);
    expect(dbg.resume(1, 0x1234)).toBe("continue");
    expect(dbg.debug.activeBreakpoint(1)).toBe(NIL);
  });
});

// ---- model test of the slots ------------------------------------------------------------

interface ModelSlot {
  address: bigint;
  access: number;
  size: number;
  enabled: boolean;
  handle: number;
}

type Command =
  | { kind: "set"; address: bigint; access: number; size: number; enabled: boolean }
  | { kind: "enable" | "disable" | "clear"; slot: number };

/** DR7 from the model, written from the SDM layout independently of the package's code. */
function modelDr7(model: ReadonlyMap<number, ModelSlot>): number {
  const lengthCode: Record<number, number> = { 1: 0b00, 2: 0b01, 8: 0b10, 4: 0b11 };
  let dr7 = 0x2700;
  for (const [slot, entry] of model) {
    if (!entry.enabled) continue;
    dr7 += 2 ** (2 * slot + 1);
    dr7 += entry.access * 2 ** (16 + 4 * slot);
    dr7 += lengthCode[entry.size]! * 2 ** (18 + 4 * slot);
  }
  return dr7;
}

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant("set" as const),
    address: fc.constantFrom(0n, 0x1000n, 0x1004n, 0xffff_ffff_ffff_ffffn),
    access: fc.integer({ min: 0, max: 3 }),
    size: fc.constantFrom(1, 2, 4, 8, 3),
    enabled: fc.boolean(),
  }),
  fc.record({ kind: fc.constantFrom("enable" as const, "disable" as const, "clear" as const), slot: fc.integer({ min: 0, max: 3 }) }),
);

describe("model test: random hardware commands against a Map of the four slots", () => {
  it("keeps DR7, DR0-DR3, results, errors and the armed queries in step with the model", () => {
    fc.assert(
      fc.property(fc.array(commandArbitrary, { maxLength: 40 }), (commands) => {
        const host = new FakeHost(1);
        const { dbg } = setup({ breakpointChunkSize: 32, ownerCapacity: 1 }, host);
        const model = new Map<number, ModelSlot>();
        let reloads = 0;
        for (const command of commands) {
          if (command.kind === "set") {
            const { address, access, size, enabled } = command;
            const run = () => dbg.setHardware(address, access as HardwareAccess, size as HardwareBreakpointSize, { flags: enabled ? Enabled | HitBefore : HitBefore });
            if (![1, 2, 4, 8].includes(size) || (access === 0 && size !== 1)) {
              expectDbgfError(run, "InvalidParameter");
            } else {
              const existing = [...model.values()].find((entry) => entry.address === address && entry.access === access && entry.size === size);
              if (existing) {
                if (enabled && !existing.enabled) {
                  existing.enabled = true;
                  reloads++;
                }
                expect(run()).toEqual({ handle: existing.handle, status: "already-exists" });
              } else {
                const free = [0, 1, 2, 3].find((slot) => !model.has(slot));
                if (free === undefined) {
                  expectDbgfError(run, "NoMoreBreakpointSlots");
                } else {
                  const result = run();
                  expect(result.status).toBe("created");
                  expect(dbg.get(result.handle)).toMatchObject({ slot: free });
                  model.set(free, { address, access, size, enabled, handle: result.handle });
                  if (enabled) reloads++;
                }
              }
            }
          } else {
            const entry = model.get(command.slot);
            if (!entry) continue;
            if (command.kind === "clear") {
              dbg.clear(entry.handle);
              if (entry.enabled) reloads++;
              model.delete(command.slot);
            } else {
              const wantEnabled = command.kind === "enable";
              const result = wantEnabled ? dbg.enable(entry.handle) : dbg.disable(entry.handle);
              expect(result).toBe(entry.enabled === wantEnabled ? (wantEnabled ? "already-enabled" : "already-disabled") : "ok");
              if (entry.enabled !== wantEnabled) reloads++;
              entry.enabled = wantEnabled;
            }
          }
          expect(dbg.getDr7()).toBe(modelDr7(model));
          expect([0, 1, 2, 3].map((slot) => dbg.getDr(slot))).toEqual([0, 1, 2, 3].map((slot) => model.get(slot)?.address ?? 0n));
          expect(host.reloads).toHaveLength(reloads);
          expect(dbg.isHwArmed()).toBe([...model.values()].some((entry) => entry.enabled));
          expect(dbg.isHwIoArmed()).toBe([...model.values()].some((entry) => entry.enabled && entry.access === Io));
        }
        dbg.debug.verify();
      }),
      { numRuns: 300 },
    );
  });
});
