import { describe, expect, it } from "vitest";
import { DEBUG_EVENT_TYPE_COUNT, DebugEventType, exceptionEvent } from "@vmmkit/dbgf";
import { expectDbgfError, setup } from "./fake-host.js";

const { HardwareInterrupt, SoftwareInterrupt, TripleFault, Halt } = DebugEventType;

describe("interrupt breakpoints and selectable events (spec §9.1-§9.2, acceptance 63-64)", () => {
  it("63: enabling hardware vector 0x20 sets its bit, the count and the event bit; disabling clears all three", () => {
    const { dbg, host } = setup();
    dbg.configureInterrupts([{ vector: 0x20, hard: "enable" }]);
    expect(dbg.isInterruptBreakpoint(0x20, "hard")).toBe(true);
    expect(dbg.isInterruptBreakpoint(0x20, "soft")).toBe(false);
    expect(dbg.interruptBreakpointCount("hard")).toBe(1);
    expect(dbg.isEventSelected(HardwareInterrupt)).toBe(true);
    expect(dbg.isEventSelected(SoftwareInterrupt)).toBe(false);
    expect(dbg.selectedEventTotal).toBe(1);
    expect(host.eventChanges).toBe(1);
    dbg.configureInterrupts([{ vector: 0x20, hard: "enable" }, { vector: 0x21, soft: "keep" }]);
    expect(dbg.interruptBreakpointCount("hard")).toBe(1);
    expect(host.eventChanges).toBe(1); // nothing changed, nobody told
    dbg.configureInterrupts([{ vector: 0x20, hard: "disable" }]);
    expect(dbg.isInterruptBreakpoint(0x20, "hard")).toBe(false);
    expect(dbg.interruptBreakpointCount("hard")).toBe(0);
    expect(dbg.isEventSelected(HardwareInterrupt)).toBe(false);
    expect(dbg.selectedEventTotal).toBe(0);
    expect(host.eventChanges).toBe(2);
  });

  it("soft and hard vectors are counted apart; the event bits follow their counts", () => {
    const { dbg } = setup();
    dbg.configureInterrupts([
      { vector: 0x21, soft: "enable" },
      { vector: 0x80, soft: "enable", hard: "enable" },
    ]);
    expect([dbg.interruptBreakpointCount("hard"), dbg.interruptBreakpointCount("soft")]).toEqual([1, 2]);
    dbg.configureInterrupts([{ vector: 0x21, soft: "disable" }]);
    expect(dbg.isEventSelected(SoftwareInterrupt)).toBe(true);
    dbg.configureInterrupts([{ vector: 0x80, soft: "disable" }]);
    expect(dbg.isEventSelected(SoftwareInterrupt)).toBe(false);
    expect(dbg.isEventSelected(HardwareInterrupt)).toBe(true);
  });

  it("invalid configurations are InvalidParameter and change nothing, also when only a later entry is bad", () => {
    const { dbg, host } = setup();
    for (const configs of [[{ vector: 256, hard: "enable" }], [{ vector: -1 }], [{ vector: 1.5 }], [{ vector: 3, hard: "on" }], [{ vector: 3, hard: "enable" }, { vector: 4, soft: "toggle" }], [null], "x"]) {
      expectDbgfError(() => dbg.configureInterrupts(configs as never), "InvalidParameter");
    }
    expect(dbg.isInterruptBreakpoint(3, "hard")).toBe(false);
    expect(host.eventChanges).toBe(0);
    expectDbgfError(() => dbg.isInterruptBreakpoint(256, "hard"), "InvalidParameter");
    expectDbgfError(() => dbg.configureEvent(DEBUG_EVENT_TYPE_COUNT, true), "InvalidParameter");
    expectDbgfError(() => dbg.isEventSelected(-1), "InvalidParameter");
  });

  it("64: isGenericEventEnabled: unselected types are off; interrupts need their vector's bit and a vector < 256", () => {
    const { dbg, host } = setup();
    expect(dbg.isGenericEventEnabled(TripleFault, 0n)).toBe(false);
    dbg.configureEvent(TripleFault, true);
    expect(host.eventChanges).toBe(1);
    dbg.configureEvent(TripleFault, true);
    expect(host.eventChanges).toBe(1);
    expect(dbg.isGenericEventEnabled(TripleFault, 12345n)).toBe(true);
    dbg.configureInterrupts([{ vector: 0x20, hard: "enable" }]);
    expect(dbg.isGenericEventEnabled(HardwareInterrupt, 0x20n)).toBe(true);
    expect(dbg.isGenericEventEnabled(HardwareInterrupt, 0x21n)).toBe(false);
    expect(dbg.isGenericEventEnabled(HardwareInterrupt, 256n)).toBe(false);
    expect(dbg.isGenericEventEnabled(HardwareInterrupt, 0x120n)).toBe(false);
    expect(dbg.isGenericEventEnabled(SoftwareInterrupt, 0x20n)).toBe(false);
    expect(dbg.isGenericEventEnabled(exceptionEvent(14), 0n)).toBe(false);
    expect(dbg.isGenericEventEnabled(999, 0n)).toBe(false);
    dbg.configureEvent(exceptionEvent(14), true);
    expect(dbg.isGenericEventEnabled(DebugEventType.FirstException + 14, 0n)).toBe(true);
  });
});

describe("the per-vCPU event stack (spec §9.3, acceptance 65)", () => {
  const E = Halt;
  const F = TripleFault;
  const R = 0x7c00n;

  function selected() {
    const context = setup();
    context.dbg.configureEvent(E, true);
    context.dbg.configureEvent(F, true);
    context.dbg.configureEvent(DebugEventType.Cpuid, true);
    return context;
  }

  const states = (dbg: ReturnType<typeof setup>["dbg"], cpu = 0) => dbg.debug.eventStack(cpu).map((entry) => [entry.type, entry.rip, entry.state]);

  it("65: raise, resume, raise again at the same rip is ignored; another type is pushed beside it", () => {
    const { dbg } = selected();
    expect(dbg.raiseGenericEvent(0, E, { regs: 1 }, [], R)).toBe("raised");
    expect(dbg.isActionPending(0)).toBe(true);
    expect(dbg.isActionPending(1)).toBe(false);
    expect(dbg.nextEvent()).toEqual({ kind: "event", cpuId: 0, type: E, rip: R, args: [] });
    dbg.resume(0, R);
    expect(dbg.isActionPending(0)).toBe(false);
    expect(states(dbg)).toEqual([[E, R, "ignore"]]);
    expect(dbg.raiseGenericEvent(0, E, {}, [], R)).toBe("ignored");
    expect(states(dbg)).toEqual([[E, R, "restorable"]]);
    expect(dbg.nextEvent()).toBeUndefined();
    expect(dbg.raiseGenericEvent(0, F, {}, [], R)).toBe("raised");
    expect(states(dbg)).toEqual([
      [E, R, "ignore"],
      [F, R, "current"],
    ]);
  });

  it("65: an event at another rip drops the old entries", () => {
    const { dbg } = selected();
    dbg.raiseGenericEvent(0, E, {}, [], R);
    dbg.resume(0, R);
    dbg.raiseGenericEvent(0, F, {}, [], R);
    expect(dbg.raiseGenericEvent(0, E, {}, [], R + 2n)).toBe("raised");
    expect(states(dbg)).toEqual([[E, R + 2n, "current"]]);
    // A current (not yet resumed) entry at the same rip is dropped too.
    expect(dbg.raiseGenericEvent(0, F, {}, [], R + 2n)).toBe("raised");
    expect(states(dbg)).toEqual([[F, R + 2n, "current"]]);
  });

  it("65: a fourth push overwrites the top; arguments beyond five are dropped; vCPUs have separate stacks", () => {
    const { dbg } = selected();
    const types = [E, F, DebugEventType.Cpuid];
    for (const type of types) {
      dbg.raiseGenericEvent(0, type, {}, [], R);
      dbg.resume(0, R);
    }
    expect(states(dbg)).toEqual(types.map((type) => [type, R, "ignore"]));
    dbg.configureEvent(DebugEventType.ReadMsr, true);
    expect(dbg.raiseGenericEvent(0, DebugEventType.ReadMsr, {}, [1n, 2n, 3n, 4n, 5n, 6n, 7n], R)).toBe("raised");
    const stack = dbg.debug.eventStack(0);
    expect(stack.map((entry) => [entry.type, entry.state])).toEqual([
      [E, "ignore"],
      [F, "ignore"],
      [DebugEventType.ReadMsr, "current"],
    ]);
    expect(stack[2]!.args).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(dbg.debug.eventStack(1)).toEqual([]);
  });

  it("unselected events are ignored without touching the stack", () => {
    const { dbg } = setup();
    expect(dbg.raiseGenericEvent(0, E, {}, [], R)).toBe("ignored");
    expect(dbg.debug.eventStack(0)).toEqual([]);
    expect(dbg.isActionPending(0)).toBe(false);
    dbg.configureInterrupts([{ vector: 0x21, hard: "enable" }]);
    expect(dbg.raiseGenericEvent(0, HardwareInterrupt, {}, [0x20n], R)).toBe("ignored");
    expect(dbg.raiseGenericEvent(0, HardwareInterrupt, {}, [0x21n], R)).toBe("raised");
  });
});

describe("the debugger event stream", () => {
  it("delivers breakpoint, stepped, event and VM-reported events in order", () => {
    const { dbg } = setup();
    dbg.configureEvent(TripleFault, true);
    const { handle } = dbg.setInt3(0, 0x1000n);
    dbg.onInt3Trap(1, 0x1000);
    dbg.setStepping(0, true);
    dbg.onDebugTrap(0, 0x4000);
    dbg.raiseGenericEvent(1, TripleFault, null, [7n], 0x10n);
    dbg.reportEvent("halted", 0);
    dbg.reportEvent("powering-off", 1);
    dbg.reportEvent("fatal-error", 1);
    expect(dbg.pendingEventCount).toBe(6);
    const events = [];
    for (let event = dbg.nextEvent(); event; event = dbg.nextEvent()) events.push(event);
    expect(events).toEqual([
      { kind: "breakpoint", cpuId: 1, handle },
      { kind: "stepped", cpuId: 0 },
      { kind: "event", cpuId: 1, type: TripleFault, rip: 0x10n, args: [7n] },
      { kind: "halted", cpuId: 0 },
      { kind: "powering-off", cpuId: 1 },
      { kind: "fatal-error", cpuId: 1 },
    ]);
    expectDbgfError(() => dbg.reportEvent("exploded" as never, 0), "InvalidParameter");
    expectDbgfError(() => dbg.reportEvent("halted", 9), "InvalidParameter");
  });
});
