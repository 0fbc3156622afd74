import { describe, expect, it } from "vitest";
import { BreakpointFlags, HardwareAccess, type HitResult, type HitWhen, NIL, U64_MAX } from "@vmmkit/dbgf";
import { expectDbgfError, setup } from "./fake-host.js";

const { Enabled, HitBefore, HitAfter } = BreakpointFlags;

/** A guest with `mov al, 1; ret` at 0x1000 (an int3 there hides the 0xB0). */
function guest() {
  const context = setup();
  context.host.memory.set([0xb0, 0x01, 0xc3], 0x1000);
  return context;
}

interface Call {
  cpu: number;
  user: unknown;
  handle: number;
  hits: bigint;
  when: HitWhen;
}

function recordingOwner(dbg: ReturnType<typeof setup>["dbg"], answer: (call: Call) => unknown = () => "resume") {
  const calls: Call[] = [];
  const owner = dbg.createOwner({
    hit: (cpu, user, handle, info, when) => {
      const call = { cpu, user, handle, hits: info.hits, when };
      calls.push(call);
      return answer(call) as HitResult;
    },
  });
  return { owner, calls };
}

describe("hit dispatch (spec §5, acceptance 33-43)", () => {
  it("33: without an owner a hit stops the VM with one breakpoint event", () => {
    const { dbg, host } = guest();
    const { handle } = dbg.setInt3(0, 0x1000n);
    expect(dbg.onInt3Trap(1, 0x1000n)).toBe("halt");
    expect(host.breakpointEvents).toEqual([[1, handle]]);
    expect(dbg.nextEvent()).toEqual({ kind: "breakpoint", cpuId: 1, handle });
    expect(dbg.nextEvent()).toBeUndefined();
    expect(dbg.get(handle).hits).toBe(1n);
    expect(dbg.debug.activeBreakpoint(1)).toBe(handle);
    expect(dbg.debug.activeBreakpoint(0)).toBe(NIL);
    expect(host.executed).toEqual([]);
  });

  it("34: an owner with default flags is called once 'before'; on resume the original instruction runs", () => {
    const { dbg, host } = guest();
    const { owner, calls } = recordingOwner(dbg);
    const user = { id: 7 };
    const { handle } = dbg.setInt3(0, 0x1000n, { owner, user });
    expect(host.memory[0x1000]).toBe(0xcc);
    expect(dbg.onInt3Trap(1, 0x1000)).toBe("resume");
    expect(calls).toEqual([{ cpu: 1, user, handle, hits: 1n, when: "before" }]);
    expect(host.executed).toHaveLength(1);
    expect(host.executed[0]!.cpuId).toBe(1);
    expect(host.executed[0]!.linear).toBe(0x1000n);
    expect(host.executed[0]!.bytes.slice(0, 4)).toEqual([0xb0, 0x01, 0xc3, 0x00]);
    expect(host.executed[0]!.bytes).toHaveLength(16);
    expect(host.memory[0x1000]).toBe(0xcc); // still armed
    expect(host.breakpointEvents).toEqual([]);
    expect(dbg.debug.activeBreakpoint(1)).toBe(NIL);
  });

  it("34: near an unreadable page the instruction bytes stop at the page end", () => {
    const { dbg, host } = setup();
    host.map(0x40_0000n, 0x5000);
    host.memory.set([0x66, 0x90], 0x5ffe);
    const { owner } = recordingOwner(dbg);
    dbg.setInt3(0, 0x40_0ffen, { owner });
    expect(dbg.onInt3Trap(0, 0x40_0ffe)).toBe("resume");
    expect(host.executed[0]!.bytes).toEqual([0x66, 0x90]);
  });

  it("35: Before|After calls the owner twice for one hit, which counts once", () => {
    const { dbg, host } = guest();
    const { owner, calls } = recordingOwner(dbg);
    dbg.setInt3(0, 0x1000n, { owner, flags: Enabled | HitBefore | HitAfter });
    const order: string[] = [];
    host.onExecute = () => order.push(`execute after ${calls.length} call(s)`);
    expect(dbg.onInt3Trap(0, 0x1000)).toBe("resume");
    expect(calls.map((call) => [call.when, call.hits])).toEqual([
      ["before", 1n],
      ["after", 1n],
    ]);
    expect(order).toEqual(["execute after 1 call(s)"]);
  });

  it("36: 'halt' before: no execution; 'halt' after: stop after execution", () => {
    const { dbg, host } = guest();
    const haltBefore = recordingOwner(dbg, (call) => (call.when === "before" ? "halt" : "resume"));
    const a = dbg.setInt3(0, 0x1000n, { owner: haltBefore.owner, flags: Enabled | HitBefore | HitAfter }).handle;
    expect(dbg.onInt3Trap(0, 0x1000)).toBe("halt");
    expect(host.executed).toEqual([]);
    expect(haltBefore.calls.map((call) => call.when)).toEqual(["before"]);
    expect(host.breakpointEvents).toEqual([[0, a]]);

    host.memory.set([0x90], 0x2000);
    const haltAfter = recordingOwner(dbg, (call) => (call.when === "after" ? "halt" : "resume"));
    const b = dbg.setInt3(0, 0x2000n, { owner: haltAfter.owner, flags: Enabled | HitBefore | HitAfter }).handle;
    expect(dbg.onInt3Trap(1, 0x2000)).toBe("halt");
    expect(host.executed.map((entry) => entry.linear)).toEqual([0x2000n]);
    expect(haltAfter.calls.map((call) => call.when)).toEqual(["before", "after"]);
    expect(host.breakpointEvents).toEqual([
      [0, a],
      [1, b],
    ]);
  });

  it("flags without Before or After: a triggering hit only counts and runs the instruction", () => {
    const { dbg, host } = guest();
    const { owner, calls } = recordingOwner(dbg);
    const { handle } = dbg.setInt3(0, 0x1000n, { owner, flags: Enabled });
    expect(dbg.onInt3Trap(0, 0x1000)).toBe("resume");
    expect(calls).toEqual([]);
    expect(host.executed).toHaveLength(1);
    expect(dbg.get(handle).hits).toBe(1n);
  });

  it.each([["continue"], [undefined], [0], [{}]])("37: a callback returning %j is OwnerCallbackWrongStatus", (answer) => {
    const { dbg } = guest();
    const { owner } = recordingOwner(dbg, () => answer);
    dbg.setInt3(0, 0x1000n, { owner });
    expectDbgfError(() => dbg.onInt3Trap(0, 0x1000), "OwnerCallbackWrongStatus");
  });

  it("37: a wrong status from the after-callback too; an exception from a callback propagates unchanged", () => {
    const { dbg } = guest();
    const { owner } = recordingOwner(dbg, (call) => (call.when === "after" ? "defer" : "resume"));
    dbg.setInt3(0, 0x1000n, { owner, flags: Enabled | HitBefore | HitAfter });
    expectDbgfError(() => dbg.onInt3Trap(0, 0x1000), "OwnerCallbackWrongStatus");
    const failure = new Error("owner bug");
    const throwing = dbg.createOwner({
      hit: () => {
        throw failure;
      },
    });
    dbg.setInt3(0, 0x2000n, { owner: throwing });
    expect(() => dbg.onInt3Trap(0, 0x2000)).toThrow(failure);
  });

  it("38: hitTrigger 0 and 1 trigger on hit 1; hitTrigger 3 counts hits 1-2 silently", () => {
    const { dbg, host } = guest();
    for (const hitTrigger of [0n, 1n]) {
      const { dbg, host } = guest();
      dbg.setInt3(0, 0x1000n, { hitTrigger });
      expect(dbg.onInt3Trap(0, 0x1000)).toBe("halt");
      expect(host.breakpointEvents).toHaveLength(1);
    }
    const { owner, calls } = recordingOwner(dbg);
    const { handle } = dbg.setInt3(0, 0x1000n, { owner, hitTrigger: 3n });
    const results = [1, 2, 3, 4].map(() => dbg.onInt3Trap(0, 0x1000));
    expect(results).toEqual(["resume", "resume", "resume", "resume"]);
    expect(calls.map((call) => call.hits)).toEqual([3n, 4n]);
    expect(host.executed).toHaveLength(4); // silent hits run the instruction transparently
    expect(dbg.get(handle).hits).toBe(4n);
    // Without an owner, silent hits raise no event either.
    const silent = dbg.setInt3(0, 0x2000n, { hitTrigger: 3n }).handle;
    expect([1, 2, 3].map(() => dbg.onInt3Trap(0, 0x2000))).toEqual(["resume", "resume", "halt"]);
    expect(host.breakpointEvents).toEqual([[0, silent]]);
  });

  it("39: hitTrigger 2, hitDisable 4: hits 2-4 trigger, then it disables itself; re-enabled it counts silently and disables again", () => {
    const { dbg, host } = guest();
    const { owner, calls } = recordingOwner(dbg);
    const { handle } = dbg.setInt3(0, 0x1000n, { owner, hitTrigger: 2n, hitDisable: 4n });
    for (let i = 0; i < 4; i++) expect(dbg.onInt3Trap(0, 0x1000)).toBe("resume");
    expect(calls.map((call) => call.hits)).toEqual([2n, 3n, 4n]);
    expect(dbg.get(handle)).toMatchObject({ enabled: false, hits: 4n });
    expect(host.memory[0x1000]).toBe(0xb0);
    expect(dbg.onInt3Trap(0, 0x1000)).toBe("not-ours"); // a stale trap at a disabled breakpoint
    expect(dbg.enable(handle)).toBe("ok");
    expect(dbg.onInt3Trap(0, 0x1000)).toBe("resume");
    expect(calls).toHaveLength(3);
    expect(dbg.get(handle)).toMatchObject({ enabled: false, hits: 5n });
    expect(host.memory[0x1000]).toBe(0xb0);
  });

  it("40: hitTrigger = hitDisable = 5 triggers on hit 5 only; 0 and 0 on hit 1 only", () => {
    for (const [threshold, triggering] of [
      [5n, 5n],
      [0n, 1n],
    ] as const) {
      const { dbg } = guest();
      const { owner, calls } = recordingOwner(dbg);
      const { handle } = dbg.setInt3(0, 0x1000n, { owner, hitTrigger: threshold, hitDisable: threshold });
      let hits = 0;
      while (dbg.get(handle).enabled) {
        dbg.onInt3Trap(0, 0x1000);
        hits++;
      }
      dbg.enable(handle);
      dbg.onInt3Trap(0, 0x1000);
      expect(calls.map((call) => call.hits)).toEqual([triggering]);
      expect(BigInt(hits)).toBe(triggering);
    }
  });

  it("41: near the limits the counter saturates and the window holds", () => {
    const { dbg } = guest();
    const { owner, calls } = recordingOwner(dbg);
    const a = dbg.setInt3(0, 0x1000n, { owner, hitDisable: U64_MAX - 1n }).handle;
    dbg.debug.setHits(a, U64_MAX - 2n);
    dbg.onInt3Trap(0, 0x1000);
    expect(calls.map((call) => call.hits)).toEqual([U64_MAX - 1n]);
    expect(dbg.get(a)).toMatchObject({ enabled: false, hits: U64_MAX - 1n });

    const b = dbg.setInt3(0, 0x2000n, { owner }).handle;
    dbg.debug.setHits(b, U64_MAX - 1n);
    dbg.onInt3Trap(0, 0x2000);
    expect(dbg.get(b)).toMatchObject({ enabled: true, hits: U64_MAX });
    dbg.onInt3Trap(0, 0x2000);
    expect(dbg.get(b)).toMatchObject({ enabled: true, hits: U64_MAX });
    expect(calls.map((call) => call.hits)).toEqual([U64_MAX - 1n, U64_MAX, U64_MAX]);

    // A carry across the 32-bit lanes.
    const c = dbg.setInt3(0, 0x3000n, { owner, hitTrigger: 0x1_0000_0001n, hitDisable: 0x1_0000_0001n }).handle;
    dbg.debug.setHits(c, 0xffff_ffffn);
    dbg.onInt3Trap(0, 0x3000);
    expect(dbg.get(c)).toMatchObject({ hits: 0x1_0000_0000n, enabled: true });
    dbg.onInt3Trap(0, 0x3000);
    expect(dbg.get(c)).toMatchObject({ hits: 0x1_0000_0001n, enabled: false });
    expect(calls.map((call) => call.hits)).toEqual([U64_MAX - 1n, U64_MAX, U64_MAX, 0x1_0000_0001n]);
  });

  it("42: hitTrigger = hitDisable = U64_MAX never triggers or disables on ordinary hits", () => {
    const { dbg, host } = guest();
    const { owner, calls } = recordingOwner(dbg);
    const { handle } = dbg.setInt3(0, 0x1000n, { owner, hitTrigger: U64_MAX, hitDisable: U64_MAX });
    for (let i = 0; i < 20; i++) expect(dbg.onInt3Trap(0, 0x1000)).toBe("resume");
    expect(calls).toEqual([]);
    expect(dbg.get(handle)).toMatchObject({ enabled: true, hits: 20n });
    expect(host.executed).toHaveLength(20);
  });

  it("43: resume after a halt at an int3 executes the original instruction once, without counting", () => {
    const { dbg, host } = guest();
    const { handle } = dbg.setInt3(0, 0x1000n);
    expect(dbg.onInt3Trap(0, 0x1000)).toBe("halt");
    expect(dbg.resume(0, 0x1000)).toBe("stepped-over");
    expect(host.executed.map((entry) => [entry.linear, entry.bytes[0]])).toEqual([[0x1000n, 0xb0]]);
    expect(dbg.get(handle).hits).toBe(1n);
    expect(dbg.debug.activeBreakpoint(0)).toBe(NIL);
    // Nothing to step over a second time.
    expect(dbg.resume(0, 0x1000)).toBe("continue");
    expect(host.executed).toHaveLength(1);
  });

  it("43: resume does nothing special when the pc moved or the breakpoint went away", () => {
    const { dbg, host } = guest();
    const { handle } = dbg.setInt3(0, 0x1000n);
    dbg.onInt3Trap(0, 0x1000);
    expect(dbg.resume(0, 0x1001)).toBe("continue");
    dbg.onInt3Trap(0, 0x1000);
    dbg.disable(handle);
    expect(dbg.resume(0, 0x1000)).toBe("continue");
    dbg.enable(handle);
    dbg.onInt3Trap(0, 0x1000);
    dbg.clear(handle);
    expect(dbg.debug.activeBreakpoint(0)).toBe(NIL);
    dbg.setInt3(0, 0x1000n); // reuses the handle: still not the stop being resumed
    expect(dbg.resume(0, 0x1000)).toBe("continue");
    expect(host.executed).toEqual([]);
  });

  it("43: a halt that reaches hitDisable leaves the breakpoint disabled with memory restored", () => {
    const { dbg, host } = guest();
    const { handle } = dbg.setInt3(0, 0x1000n, { hitDisable: 1n });
    expect(dbg.onInt3Trap(0, 0x1000)).toBe("halt");
    expect(dbg.get(handle)).toMatchObject({ enabled: false, hits: 1n });
    expect(host.memory[0x1000]).toBe(0xb0);
    expect(dbg.resume(0, 0x1000)).toBe("continue");
    expect(host.executed).toEqual([]);
  });

  it("43: after a halt at an execute hardware breakpoint, resume runs the instruction unmodified", () => {
    const { dbg, host } = guest();
    const { handle } = dbg.setHardware(0x1000n, HardwareAccess.Execute, 1);
    const context = { dr: [0n, 0n, 0n, 0n], dr6: 0, dr7: 0, rf: false, cr4: 0 };
    expect(dbg.checkInstruction(0, context, 0x1000)).toEqual({ kind: "dbgf", handle });
    expect(dbg.processActiveHit(0)).toBe("halt");
    expect(dbg.resume(0, 0x1000n)).toBe("stepped-over");
    expect(host.executed.map((entry) => entry.bytes.slice(0, 3))).toEqual([[0xb0, 0x01, 0xc3]]);
    expect(dbg.get(handle).hits).toBe(1n);
  });

  it("a callback may clear its own breakpoint; the instruction still runs from the saved byte", () => {
    const { dbg, host } = guest();
    let handle = NIL;
    const owner = dbg.createOwner({
      hit: () => {
        dbg.clear(handle);
        return "resume";
      },
    });
    handle = dbg.setInt3(0, 0x1000n, { owner, hitDisable: 1n }).handle;
    expect(dbg.onInt3Trap(0, 0x1000)).toBe("resume");
    expect(host.executed.map((entry) => entry.bytes[0])).toEqual([0xb0]);
    expect(dbg.breakpointCount).toBe(0);
    expect(host.memory[0x1000]).toBe(0xb0);
    dbg.debug.verify();
  });

  it("the info passed to a callback is a frozen snapshot", () => {
    const { dbg } = guest();
    let seen: unknown;
    const owner = dbg.createOwner({ hit: (_cpu, _user, _handle, info) => ((seen = info), "resume") });
    dbg.setInt3(0, 0x1000n, { owner });
    dbg.onInt3Trap(0, 0x1000);
    expect(Object.isFrozen(seen)).toBe(true);
    expect(seen).toMatchObject({ type: "int3", hits: 1n, enabled: true });
  });

  it("a trap on a vCPU that does not exist is refused", () => {
    const { dbg } = guest();
    dbg.setInt3(0, 0x1000n);
    expectDbgfError(() => dbg.onInt3Trap(2, 0x1000), "InvalidParameter");
    expectDbgfError(() => dbg.onInt3Trap(0, -1), "InvalidParameter");
    expectDbgfError(() => dbg.onInt3Trap(0, 2 ** 53), "InvalidParameter");
    expect(dbg.get(0).hits).toBe(0n);
  });
});
