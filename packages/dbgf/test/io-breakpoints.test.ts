import { describe, expect, it } from "vitest";
import { BreakpointFlags, type Debugger, type HitResult, type HitWhen, IoAccess, NIL } from "@vmmkit/dbgf";
import { expectDbgfError, observe, setup } from "./fake-host.js";

const { Enabled, HitBefore, HitAfter } = BreakpointFlags;
const { ReadByte, ReadWord, ReadDword, WriteByte, WriteWord, WriteDword } = IoAccess;

interface IoCall {
  cpu: number;
  user: unknown;
  handle: number;
  hits: bigint;
  when: HitWhen;
  access: number;
  address: bigint;
  value: bigint;
}

function ioOwner(dbg: Debugger, answer: (call: IoCall) => HitResult = () => "resume") {
  const calls: IoCall[] = [];
  const owner = dbg.createOwner({
    ioHit: (cpu, user, handle, info, when, access, address, value) => {
      const call = { cpu, user, handle, hits: info.hits, when, access, address, value };
      calls.push(call);
      return answer(call);
    },
  });
  return { owner, calls };
}

/** One guest port access as a port dispatcher performs it: check before, access, check after. */
function access(dbg: Debugger, port: number, bit: number, value: number, cpu = 0): [string, string] {
  const before = dbg.checkPortIo(cpu, port, bit, bit & IoAccess.AnyWrite ? value : 0, true);
  if (before === "halt") return [before, "-"];
  return [before, dbg.checkPortIo(cpu, port, bit, value, false)];
}

describe("port-I/O breakpoints (spec §4.5, §7, acceptance 44-52)", () => {
  it("44: ports 0x3F8-0x3FF, read byte: IN byte from 0x3FA triggers; OUT byte, IN word and IN byte from 0x3F7 do not", () => {
    const { dbg, host } = setup();
    const { handle } = dbg.setPortIo(0x3f8, 8, ReadByte);
    expect(dbg.checkPortIo(0, 0x3fa, WriteByte, 0x41, true)).toBe("not-ours");
    expect(dbg.checkPortIo(0, 0x3fa, ReadWord, 0, true)).toBe("not-ours");
    expect(dbg.checkPortIo(0, 0x3f7, ReadByte, 0, true)).toBe("not-ours");
    expect(dbg.checkPortIo(0, 0x400, ReadByte, 0, true)).toBe("not-ours");
    expect(dbg.get(handle).hits).toBe(0n);
    expect(dbg.checkPortIo(1, 0x3fa, ReadByte, 0, true)).toBe("halt");
    expect(host.breakpointEvents).toEqual([[1, handle]]);
    expect(dbg.get(handle).hits).toBe(1n);
    expect(dbg.nextEvent()).toEqual({ kind: "breakpoint", cpuId: 1, handle });
  });

  it("45: an After-only breakpoint triggers on the after-check; ioHit gets the port, the access bit and the value", () => {
    const { dbg } = setup();
    const { owner, calls } = ioOwner(dbg);
    const user = "com1";
    const { handle } = dbg.setPortIo(0x3f8, 8, ReadByte | WriteWord, { owner, user, flags: Enabled | HitAfter });
    expect(access(dbg, 0x3f9, ReadByte, 0x7f)).toEqual(["not-ours", "resume"]);
    expect(access(dbg, 0x3fc, WriteWord, 0xbeef, 1)).toEqual(["not-ours", "resume"]);
    expect(calls).toEqual([
      { cpu: 0, user, handle, hits: 1n, when: "after", access: ReadByte, address: 0x3f9n, value: 0x7fn },
      { cpu: 1, user, handle, hits: 2n, when: "after", access: WriteWord, address: 0x3fcn, value: 0xbeefn },
    ]);
  });

  it("45: a Before breakpoint sees a write's value before it happens; a 32-bit access passes its full value", () => {
    const { dbg } = setup();
    const { owner, calls } = ioOwner(dbg);
    dbg.setPortIo(0xcf8, 4, WriteDword | ReadDword, { owner });
    expect(access(dbg, 0xcf8, WriteDword, 0x8000_f800)).toEqual(["resume", "not-ours"]);
    expect(calls.map((call) => [call.when, call.access, call.value])).toEqual([["before", WriteDword, 0x8000_f800n]]);
  });

  it("46: access and flags validation; a range may end at 0xFFFF but not pass it", () => {
    const { dbg } = setup();
    expectDbgfError(() => dbg.setPortIo(0x60, 1, 0), "InvalidFlags");
    expectDbgfError(() => dbg.setPortIo(0x60, 1, 0x0008), "InvalidFlags");
    expectDbgfError(() => dbg.setPortIo(0x60, 1, 0x1000), "InvalidFlags");
    expectDbgfError(() => dbg.setPortIo(0x60, 1, ReadByte, { flags: 0 }), "InvalidFlags");
    expectDbgfError(() => dbg.setPortIo(0x60, 0, ReadByte), "OutOfRange");
    expectDbgfError(() => dbg.setPortIo(0xffff, 2, ReadByte), "OutOfRange");
    expectDbgfError(() => dbg.setPortIo(0x1_0000, 1, ReadByte), "OutOfRange");
    expectDbgfError(() => dbg.setPortIo(-1, 1, ReadByte), "InvalidParameter");
    expectDbgfError(() => dbg.setPortIo(1.5, 1, ReadByte), "InvalidParameter");
    expect(dbg.breakpointCount).toBe(0);
    const top = dbg.setPortIo(0xfff0, 16, ReadByte).handle;
    expect(dbg.debug.portEntry(0xffff)).toBe(0x1000_0000 | top);
    expect(dbg.debug.portEntry(0xffef)).toBe(0);
    expect(dbg.checkPortIo(0, 0xffff, ReadByte, 0, true)).toBe("halt");
    dbg.clear(top);
    expect(dbg.setPortIo(0xffff, 1, ReadByte).status).toBe("created");
    // Flags with only HitAfter (no Enabled) are fine: a disabled breakpoint.
    expect(dbg.setPortIo(0x60, 1, ReadByte, { flags: HitAfter }).status).toBe("created");
  });

  it("46: a breakpoint covering 65 535 ports", () => {
    const { dbg } = setup();
    const { handle } = dbg.setPortIo(1, 0xffff, ReadByte);
    expect(dbg.debug.portEntry(0)).toBe(0);
    expect(dbg.debug.portEntry(1)).toBe(0x1000_0000 | handle);
    expect(dbg.debug.portEntry(0xffff)).toBe(0x1000_0000 | handle);
    dbg.debug.verify();
  });

  it("47: an overlapping breakpoint with other parameters is PortRangeBusy and changes nothing", () => {
    const { dbg, host } = setup();
    const { handle } = dbg.setPortIo(0x3f8, 8, ReadByte);
    const before = observe(dbg, host);
    const entries = Array.from({ length: 0x20 }, (_, i) => dbg.debug.portEntry(0x3f0 + i));
    expectDbgfError(() => dbg.setPortIo(0x3f0, 0x10, ReadByte), "PortRangeBusy"); // conflict in the middle
    expectDbgfError(() => dbg.setPortIo(0x3ff, 2, ReadByte), "PortRangeBusy"); // at the first port
    expectDbgfError(() => dbg.setPortIo(0x3f8, 8, ReadWord), "PortRangeBusy"); // same range, other access
    expectDbgfError(() => dbg.setPortIo(0x3f8, 4, ReadByte), "PortRangeBusy"); // a sub-range
    expect(Array.from({ length: 0x20 }, (_, i) => dbg.debug.portEntry(0x3f0 + i))).toEqual(entries);
    expect(entries.filter((entry) => entry === (0x1000_0000 | handle))).toHaveLength(8);
    expect(observe(dbg, host)).toEqual(before);
    expect(dbg.setPortIo(0x3f0, 8, ReadByte).status).toBe("created"); // adjacent is fine
  });

  it("48: an identical breakpoint returns the existing handle; it arms only when Enabled is asked for", () => {
    const { dbg, host } = setup();
    const { handle } = dbg.setPortIo(0x60, 4, ReadByte, { flags: HitBefore });
    expect(dbg.setPortIo(0x60, 4, ReadByte, { flags: HitBefore })).toEqual({ handle, status: "already-exists" });
    expect(dbg.get(handle).enabled).toBe(false);
    expect(host.portNotifications).toEqual([]);
    expect(dbg.setPortIo(0x60, 4, ReadByte)).toEqual({ handle, status: "already-exists" });
    expect(dbg.get(handle).enabled).toBe(true);
    expect(host.portNotifications).toEqual([true]);
    expect(dbg.breakpointCount).toBe(1);
  });

  it("49: the port dispatcher hears true on every arming and false only when the last armed one goes", () => {
    const { dbg, host } = setup();
    const a = dbg.setPortIo(0x60, 1, ReadByte).handle;
    const b = dbg.setPortIo(0x64, 1, ReadByte).handle;
    const c = dbg.setPortIo(0x70, 1, ReadByte, { flags: HitBefore }).handle;
    expect(host.portNotifications).toEqual([true, true]);
    expect(dbg.isPortIoArmed()).toBe(true);
    dbg.disable(a);
    expect(host.portNotifications).toEqual([true, true]);
    dbg.clear(c); // a disabled one: nothing to say
    dbg.clear(b);
    expect(host.portNotifications).toEqual([true, true, false]);
    expect(dbg.isPortIoArmed()).toBe(false);
    dbg.enable(a);
    expect(host.portNotifications).toEqual([true, true, false, true]);
  });

  it("49: a port dispatcher that refuses the notification leaves the breakpoint disarmed", () => {
    const { dbg, host } = setup();
    host.failPortNotify = true;
    expect(() => dbg.setPortIo(0x60, 1, ReadByte)).toThrow("port dispatcher refused");
    expect(dbg.breakpointCount).toBe(0);
    expect(dbg.debug.portEntry(0x60)).toBe(0);
    expect(dbg.isPortIoArmed()).toBe(false);
  });

  it("49: a port dispatcher that refuses the last 'false' keeps the breakpoint enabled; clear warns and goes on", () => {
    const { dbg, host } = setup();
    const { handle } = dbg.setPortIo(0x60, 1, ReadByte);
    host.failPortNotify = true;
    expect(() => dbg.disable(handle)).toThrow("port dispatcher refused");
    expect(dbg.get(handle).enabled).toBe(true);
    expect(dbg.isPortIoArmed()).toBe(true);
    dbg.clear(handle);
    expect(host.warnings).toEqual([`clearing breakpoint ${handle}: telling the port dispatcher failed; continuing`]);
    expect(dbg.isPortIoArmed()).toBe(false);
    expect(dbg.debug.portEntry(0x60)).toBe(0);
  });

  it("50: a disabled port breakpoint never triggers, even while another is armed", () => {
    const { dbg } = setup();
    dbg.setPortIo(0x60, 1, ReadByte);
    const disabled = dbg.setPortIo(0x64, 1, ReadByte, { flags: HitBefore }).handle;
    expect(access(dbg, 0x64, ReadByte, 0)).toEqual(["not-ours", "not-ours"]);
    expect(dbg.get(disabled).hits).toBe(0n);
  });

  it("51: while the vCPU single-steps, port checks are not ours and count nothing", () => {
    const { dbg } = setup();
    const { handle } = dbg.setPortIo(0x60, 1, ReadByte);
    dbg.setStepping(0, true);
    expect(dbg.isStepping(0)).toBe(true);
    expect(access(dbg, 0x60, ReadByte, 0, 0)).toEqual(["not-ours", "not-ours"]);
    expect(dbg.get(handle).hits).toBe(0n);
    expect(access(dbg, 0x60, ReadByte, 0, 1)).toEqual(["halt", "-"]); // another vCPU is not stepping
  });

  it("52: Before|After counts one hit per access; with hitDisable 1 both callbacks run, then it disables", () => {
    const { dbg } = setup();
    const { owner, calls } = ioOwner(dbg);
    const { handle } = dbg.setPortIo(0x60, 1, ReadByte, { owner, flags: Enabled | HitBefore | HitAfter, hitDisable: 1n });
    expect(access(dbg, 0x60, ReadByte, 0x1c)).toEqual(["resume", "resume"]);
    expect(calls.map((call) => [call.when, call.hits, call.value])).toEqual([
      ["before", 1n, 0n],
      ["after", 1n, 0x1cn],
    ]);
    expect(dbg.get(handle)).toMatchObject({ enabled: false, hits: 1n });
    expect(access(dbg, 0x60, ReadByte, 0x1c)).toEqual(["not-ours", "not-ours"]);
  });

  it("52: Before|After with several accesses counts each access once", () => {
    const { dbg } = setup();
    const { owner, calls } = ioOwner(dbg);
    const { handle } = dbg.setPortIo(0x60, 2, ReadByte, { owner, flags: Enabled | HitBefore | HitAfter });
    access(dbg, 0x60, ReadByte, 1);
    access(dbg, 0x61, ReadByte, 2);
    access(dbg, 0x60, ReadByte, 3, 1);
    expect(dbg.get(handle).hits).toBe(3n);
    expect(calls.map((call) => `${call.when}${call.hits}`)).toEqual(["before1", "after1", "before2", "after2", "before3", "after3"]);
  });

  it("Before|After: a silent before-hit stays silent after; a before-'halt' drops the pairing", () => {
    const { dbg } = setup();
    const { owner, calls } = ioOwner(dbg, (call) => (call.hits === 3n && call.when === "before" ? "halt" : "resume"));
    const { handle } = dbg.setPortIo(0x60, 1, ReadByte, { owner, flags: Enabled | HitBefore | HitAfter, hitTrigger: 2n });
    expect(access(dbg, 0x60, ReadByte, 1)).toEqual(["resume", "resume"]); // hit 1, silent
    expect(calls).toEqual([]);
    expect(access(dbg, 0x60, ReadByte, 1)).toEqual(["resume", "resume"]); // hit 2
    expect(access(dbg, 0x60, ReadByte, 1)).toEqual(["halt", "-"]); // hit 3 stops before the access
    expect(access(dbg, 0x60, ReadByte, 1)).toEqual(["resume", "resume"]); // the restarted access is hit 4
    expect(calls.map((call) => `${call.when}${call.hits}`)).toEqual(["before2", "after2", "before3", "before4", "after4"]);
    expect(dbg.get(handle).hits).toBe(4n);
  });

  it("a halt at a Before|After breakpoint that reaches hitDisable disables it at once", () => {
    const { dbg } = setup();
    const { handle } = dbg.setPortIo(0x60, 1, ReadByte, { flags: Enabled | HitBefore | HitAfter, hitDisable: 1n });
    expect(access(dbg, 0x60, ReadByte, 0)).toEqual(["halt", "-"]);
    expect(dbg.get(handle).enabled).toBe(false);
    expect(dbg.isPortIoArmed()).toBe(false);
  });

  it("an ioHit returning something else is OwnerCallbackWrongStatus", () => {
    const { dbg } = setup();
    const { owner } = ioOwner(dbg, () => "go" as HitResult);
    dbg.setPortIo(0x60, 1, ReadByte, { owner });
    expectDbgfError(() => dbg.checkPortIo(0, 0x60, ReadByte, 0, true), "OwnerCallbackWrongStatus");
  });

  it("a corrupt port entry is L1LookupFailed", () => {
    const { dbg } = setup();
    const { handle } = dbg.setPortIo(0x60, 1, ReadByte);
    (dbg as unknown as { portTable: Uint32Array }).portTable[0x61] = 0x2000_0000 | handle;
    expectDbgfError(() => dbg.checkPortIo(0, 0x61, ReadByte, 0, true), "L1LookupFailed");
    (dbg as unknown as { portTable: Uint32Array }).portTable[0x61] = 0x1000_0000 | 0x7777;
    expectDbgfError(() => dbg.checkPortIo(0, 0x61, ReadByte, 0, true), "L1LookupFailed");
  });

  it("checks before any port breakpoint exists are not ours", () => {
    const { dbg } = setup();
    expect(dbg.checkPortIo(0, 0x60, ReadByte, 0, true)).toBe("not-ours");
    dbg.setInt3(0, 0x1000n);
    expect(dbg.checkPortIo(0, 0x60, ReadByte, 0, false)).toBe("not-ours");
  });
});

describe("MMIO breakpoints (spec §4.6; the reference never implemented them)", () => {
  it("validation: access mask 0x1F1F, flags, size and range", () => {
    const { dbg } = setup();
    expectDbgfError(() => dbg.setMmio(0xfee0_0000n, 4, 0), "InvalidFlags");
    expectDbgfError(() => dbg.setMmio(0xfee0_0000n, 4, 0x2000), "InvalidFlags");
    expectDbgfError(() => dbg.setMmio(0xfee0_0000n, 4, IoAccess.AnyRead, { flags: 0 }), "InvalidFlags");
    expectDbgfError(() => dbg.setMmio(0xfee0_0000n, 0, IoAccess.AnyRead), "OutOfRange");
    expectDbgfError(() => dbg.setMmio(0xffff_ffff_ffff_fff0n, 0x20, IoAccess.AnyRead), "OutOfRange"); // wraps
    expectDbgfError(() => dbg.setMmio(2n ** 52n - 2n, 4, IoAccess.AnyRead), "OutOfRange"); // beyond MAXPHYADDR
    expectDbgfError(() => dbg.setMmio(-1n, 4, IoAccess.AnyRead), "InvalidParameter");
    expectDbgfError(() => dbg.setMmio(0x1000n, 2 ** 32, IoAccess.AnyRead), "InvalidParameter");
    expect(dbg.breakpointCount).toBe(0);
    expect(dbg.setMmio(2n ** 52n - 4n, 4, IoAccess.MmioMask).status).toBe("created");
  });

  it("arming places the host's handler over the range; disarming and clearing remove it", () => {
    const { dbg, host } = setup();
    const { handle } = dbg.setMmio(0xfee0_0300n, 0x10, IoAccess.AnyWrite);
    expect(host.mmioCalls).toEqual(["arm fee00300+10"]);
    expect(dbg.isMmioArmed()).toBe(true);
    dbg.disable(handle);
    dbg.enable(handle);
    dbg.clear(handle);
    expect(host.mmioCalls).toEqual(["arm fee00300+10", "disarm fee00300+10", "arm fee00300+10", "disarm fee00300+10"]);
    expect(dbg.isMmioArmed()).toBe(false);
    const disabled = dbg.setMmio(0x1000n, 1, IoAccess.ReadByte, { flags: HitBefore }).handle;
    dbg.clear(disabled);
    expect(host.mmioCalls).toHaveLength(4);
  });

  it("a handler the host refuses leaves nothing behind", () => {
    const { dbg, host } = setup();
    host.failMmioArm = true;
    expect(() => dbg.setMmio(0x1000n, 4, IoAccess.AnyRead)).toThrow("pgm refused the handler");
    expect(dbg.breakpointCount).toBe(0);
    expect(dbg.isMmioArmed()).toBe(false);
    host.failMmioArm = false;
    const { handle } = dbg.setMmio(0x1000n, 4, IoAccess.AnyRead);
    host.failMmioDisarm = true;
    expect(() => dbg.disable(handle)).toThrow("pgm refused to remove");
    expect(dbg.get(handle).enabled).toBe(true);
    dbg.clear(handle);
    expect(host.warnings).toHaveLength(1);
    expect(dbg.isMmioArmed()).toBe(false);
    dbg.debug.verify();
  });

  it("fires on the right access: range, direction, size; the owner gets the physical address", () => {
    const { dbg, host } = setup();
    const { owner, calls } = ioOwner(dbg);
    const { handle } = dbg.setMmio(0xfee0_00b0n, 4, IoAccess.WriteDword | IoAccess.ReadQword, { owner, flags: Enabled | HitAfter });
    expect(dbg.checkMmio(0, 0xfee0_00b0, 4, false, 0n, false)).toBe("not-ours"); // a dword read
    expect(dbg.checkMmio(0, 0xfee0_00b4, 4, true, 0n, false)).toBe("not-ours"); // past the range
    expect(dbg.checkMmio(0, 0xfee0_00ac, 4, true, 0n, false)).toBe("not-ours"); // before it
    expect(dbg.checkMmio(0, 0xfee0_00b0, 4, true, 0n, true)).toBe("not-ours"); // a before-check; After only
    expect(dbg.checkMmio(1, 0xfee0_00b0, 4, true, 0x1234n, false)).toBe("resume");
    expect(dbg.checkMmio(0, 0xfee0_00ac, 8, false, 0xffff_ffff_ffff_ffffn, false)).toBe("resume"); // a qword read overlapping it
    expect(calls).toEqual([
      { cpu: 1, user: undefined, handle, hits: 1n, when: "after", access: IoAccess.WriteDword, address: 0xfee0_00b0n, value: 0x1234n },
      { cpu: 0, user: undefined, handle, hits: 2n, when: "after", access: IoAccess.ReadQword, address: 0xfee0_00acn, value: 0xffff_ffff_ffff_ffffn },
    ]);
    // Without an owner: a stop.
    const other = dbg.setMmio(0x2000n, 0x100, IoAccess.ReadOther).handle;
    expect(dbg.checkMmio(0, 0x20ff, 3, false, 0n, true)).toBe("halt");
    expect(host.breakpointEvents).toEqual([[0, other]]);
  });

  it("overlapping ranges are MmioRangeBusy; an identical one is already-exists", () => {
    const { dbg, host } = setup();
    const a = dbg.setMmio(0x1000n, 0x100, IoAccess.AnyRead).handle;
    const b = dbg.setMmio(0x1200n, 0x100, IoAccess.AnyRead, { flags: HitBefore }).handle;
    const before = observe(dbg, host);
    expectDbgfError(() => dbg.setMmio(0x10ffn, 2, IoAccess.AnyRead), "MmioRangeBusy");
    expectDbgfError(() => dbg.setMmio(0x0n, 0x2000, IoAccess.AnyRead), "MmioRangeBusy");
    expectDbgfError(() => dbg.setMmio(0x1000n, 0x100, IoAccess.AnyWrite), "MmioRangeBusy");
    expect(observe(dbg, host)).toEqual(before);
    expect(dbg.setMmio(0x1000n, 0x100, IoAccess.AnyRead)).toEqual({ handle: a, status: "already-exists" });
    expect(dbg.setMmio(0x1200n, 0x100, IoAccess.AnyRead)).toEqual({ handle: b, status: "already-exists" });
    expect(dbg.get(b).enabled).toBe(true);
    const c = dbg.setMmio(0x1100n, 0x100, IoAccess.AnyRead).handle; // exactly the gap
    expect(dbg.checkMmio(0, 0x1100, 1, false, 0n, true)).toBe("halt");
    expect(dbg.debug.activeBreakpoint(0)).toBe(c);
    expect(dbg.checkMmio(0, 0x10ff, 2, false, 0n, true)).toBe("halt"); // straddles a and c: the lower one
    expect(dbg.debug.activeBreakpoint(0)).toBe(a);
    dbg.debug.verify();
  });

  it("MMIO breakpoints are quiet while stepping and when disabled", () => {
    const { dbg } = setup();
    const { handle } = dbg.setMmio(0x1000n, 4, IoAccess.AnyRead);
    dbg.setStepping(0, true);
    expect(dbg.checkMmio(0, 0x1000, 4, false, 0n, true)).toBe("not-ours");
    dbg.setStepping(0, false);
    dbg.disable(handle);
    expect(dbg.checkMmio(0, 0x1000, 4, false, 0n, true)).toBe("not-ours");
    expect(dbg.get(handle).hits).toBe(0n);
    expect(dbg.debug.activeBreakpoint(0)).toBe(NIL);
  });
});
