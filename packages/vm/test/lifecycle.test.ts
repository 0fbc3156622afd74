import { afterEach, describe, expect, it, vi } from "vitest";
import { INVALID_REFERENCE_COUNT, NIL_VCPU, RuntimeErrorFlags, Vm, VmState, type VmSubsystem } from "@vmmkit/vm";
import { type Exit, expectVmError, FakeEngine, makeVm, rejection, resumeAll, settle, thrown } from "./helpers.js";

const S = VmState;
const ALL_STATES = Object.values(VmState);

afterEach(() => {
  vi.restoreAllMocks();
});

// spec/vm.md §2.4, copied from the spec: the first transition each operation attempts.
type Op = "powerOn" | "suspend" | "resume" | "powerOff" | "destroy" | "reset" | "fatal";
const MATRIX: Record<Op, Partial<Record<VmState, VmState>>> = {
  powerOn: { [S.Created]: S.PoweringOn },
  suspend: { [S.Running]: S.Suspending, [S.RunningLS]: S.SuspendingExtLS },
  resume: { [S.Suspended]: S.Resuming },
  powerOff: {
    [S.Created]: S.PoweringOff,
    [S.Running]: S.PoweringOff,
    [S.RunningLS]: S.PoweringOffLS,
    [S.Suspended]: S.PoweringOff,
    [S.Debugging]: S.PoweringOff,
    [S.DebuggingLS]: S.PoweringOffLS,
    [S.FatalError]: S.PoweringOff,
    [S.FatalErrorLS]: S.PoweringOffLS,
    [S.GuruMeditation]: S.PoweringOff,
    [S.GuruMeditationLS]: S.PoweringOffLS,
    [S.LoadFailure]: S.PoweringOff,
  },
  destroy: { [S.Off]: S.Destroying },
  reset: { [S.Running]: S.Resetting, [S.RunningLS]: S.ResettingLS, [S.Suspended]: S.Resetting },
  fatal: { [S.Running]: S.FatalError, [S.RunningLS]: S.FatalErrorLS },
};
const OP_NAMES: Record<Op, string> = {
  powerOn: "powerOn",
  suspend: "suspend",
  resume: "resume",
  powerOff: "powerOff",
  destroy: "destroy",
  reset: "reset",
  fatal: "setRuntimeError",
};

function perform(vm: Vm<Exit>, op: Op): Promise<unknown> {
  switch (op) {
    case "powerOn":
      return vm.powerOn();
    case "suspend":
      return vm.suspend("user");
    case "resume":
      return vm.resume("user");
    case "powerOff":
      return vm.powerOff();
    case "destroy":
      return vm.destroy();
    case "reset":
      return vm.reset();
    case "fatal":
      return vm.setRuntimeError(RuntimeErrorFlags.fatal, "TestError", "a test error");
  }
}

describe("operation × state matrix (spec §2.4, §9 criteria 7-9)", { timeout: 20_000 }, () => {
  const cases = (Object.keys(MATRIX) as Op[]).flatMap((op) => ALL_STATES.map((state) => [op, state] as const));

  it.each(cases)("%s from %s", async (op, from) => {
    const { vm, transitions, errors } = makeVm({ cpuCount: 2 });
    vm.forceState(from);
    const expected = MATRIX[op][from];
    const before = vm.errorCount;
    const outcome = perform(vm, op).then(
      () => undefined,
      (error: unknown) => error,
    );
    const error = await outcome;
    if (expected !== undefined) {
      expect(error).toBeUndefined();
      expect(transitions[0]).toEqual([from, expected]);
    } else {
      expectVmError(error, "InvalidVmState");
      expect(vm.state).toBe(from);
      expect(transitions).toEqual([]);
      expect(vm.errorCount).toBe(before + 1);
      expect(errors).toHaveLength(1);
      expect(errors[0]![0]).toBe("InvalidVmState");
      expect(errors[0]![1]).toBe(OP_NAMES[op]);
      expect(errors[0]![2]).toContain(from);
    }
  });

  it.each(ALL_STATES)("criterion 9: guru meditation from %s", (from) => {
    const { vm, transitions, errors } = makeVm();
    vm.forceState(from);
    const entered = vm.enterGuruMeditation();
    if (from === S.Running || from === S.RunningLS) {
      expect(entered).toBe(true);
      expect(transitions).toEqual([[from, from === S.Running ? S.GuruMeditation : S.GuruMeditationLS]]);
    } else {
      expect(entered).toBe(false);
      expect(vm.state).toBe(from);
      expect(transitions).toEqual([]);
      expect(errors).toEqual([]);
      expect(vm.errorCount).toBe(0);
    }
  });
});

describe("power on / suspend / resume (criteria 18-27)", { timeout: 5_000 }, () => {
  it("powerOn runs its rendezvous workers n-1 … 0: subsystems on vCPU 0 after every vCPU is started", async () => {
    const seen: string[] = [];
    const subsystem: VmSubsystem = {
      name: "devices",
      powerOn: () => seen.push(`devices.powerOn on ${vm.currentVcpuId()} started=${[0, 1, 2].map((v) => vm.vcpuRunState(v)).join(",")}`),
    };
    const { vm, transitions } = makeVm({ cpuCount: 3, subsystems: [subsystem] });
    await expect(vm.powerOn()).resolves.toBe("ok");
    expect(seen).toEqual(["devices.powerOn on 0 started=started,started,started"]);
    expect(transitions).toEqual([
      [S.Created, S.PoweringOn],
      [S.PoweringOn, S.Running],
    ]);
    await vm.powerOff();
    expect([0, 1, 2].map((v) => vm.vcpuRunState(v))).toEqual(["stopped", "stopped", "stopped"]);
  });

  it("suspend(user) and resume(user): events, results, reasons (criteria 22, 23, 25)", async () => {
    const { vm, engine, transitions } = makeVm();
    expect(vm.getSuspendReason()).toBe("invalid");
    expect(vm.getResumeReason()).toBe("invalid");
    await vm.powerOn();
    await settle();
    expect(engine.isPending(0)).toBe(true); // the guest spins
    await expect(vm.suspend("user")).resolves.toBe("em-suspend");
    expect(engine.cancels).toEqual([0]); // the spinning run was cancelled
    expect(vm.state).toBe(S.Suspended);
    expect(vm.getSuspendReason()).toBe("user");
    const runsWhileSuspended = engine.runs.length;
    await settle();
    expect(engine.runs.length).toBe(runsWhileSuspended); // a suspended vCPU does not run
    await expect(vm.resume("state-restored")).resolves.toBe("em-resume");
    expect(vm.getResumeReason()).toBe("state-restored");
    expect(vm.getSuspendReason()).toBe("user"); // not cleared by resume
    await settle();
    expect(engine.runs.length).toBe(runsWhileSuspended + 1); // running again
    expect(transitions.slice(2, 6)).toEqual([
      [S.Running, S.Suspending],
      [S.Suspending, S.Suspended],
      [S.Suspended, S.Resuming],
      [S.Resuming, S.Running],
    ]);
    await vm.powerOff();
  });

  it.each(["invalid", "end", "", "USER"])("suspend(%j) is InvalidParameter with no state change and no report (criterion 21)", async (reason) => {
    const { vm, errors } = makeVm();
    vm.forceState(S.Running);
    expectVmError(await rejection(vm.suspend(reason as never)), "InvalidParameter");
    expect(vm.state).toBe(S.Running);
    expect(errors).toEqual([]);
  });

  it("resume with a bad reason is InvalidParameter", async () => {
    const { vm } = makeVm();
    vm.forceState(S.Suspended);
    expectVmError(await rejection(vm.resume("bogus" as never)), "InvalidParameter");
    expect(vm.state).toBe(S.Suspended);
  });

  it("suspend from RunningLS ends in SuspendedExtLS (criterion 24)", async () => {
    const { vm } = makeVm();
    vm.forceState(S.RunningLS);
    await vm.suspend("host-suspend");
    expect(vm.state).toBe(S.SuspendedExtLS);
  });

  it("a failed suspend does not overwrite the recorded reason (criterion 27)", async () => {
    const { vm } = makeVm();
    vm.forceState(S.Running);
    await vm.suspend("reconfig");
    expectVmError(await rejection(vm.suspend("user")), "InvalidVmState");
    expect(vm.getSuspendReason()).toBe("reconfig");
  });

  it("suspend, reset and powerOff take effect within a slice while the guest spins, with two vCPUs", async () => {
    const { vm, engine } = makeVm({ cpuCount: 2 });
    await vm.powerOn();
    await settle();
    expect(engine.isPending(0) && engine.isPending(1)).toBe(true);
    await vm.suspend();
    expect(engine.cancels.sort()).toEqual([0, 1]);
    await vm.resume();
    await settle();
    expect(engine.isPending(0) && engine.isPending(1)).toBe(true);
    await vm.reset();
    expect(vm.state).toBe(S.Running);
    await settle();
    await vm.powerOff();
    expect(vm.state).toBe(S.Off);
    expect(engine.isPending(0) || engine.isPending(1)).toBe(false);
  });
});

describe("reset (criteria 70-79)", { timeout: 5_000 }, () => {
  function recordingSubsystem(log: string[], name: string, vm: () => Vm<Exit>): VmSubsystem {
    return {
      name,
      reset: () => log.push(`${name}.reset@${vm().currentVcpuId()}`),
      softReset: (flags) => log.push(`${name}.softReset(${flags})@${vm().currentVcpuId()}`),
      suspend: () => log.push(`${name}.suspend`),
    };
  }

  it("from Running: Running again, counters +1, em-reset, subsystems reset on vCPU 0 in registration order", async () => {
    const log: string[] = [];
    let vmRef!: Vm<Exit>;
    const { vm, transitions } = makeVm({
      cpuCount: 2,
      subsystems: [recordingSubsystem(log, "devices", () => vmRef), recordingSubsystem(log, "cpu", () => vmRef)],
    });
    vmRef = vm;
    await vm.powerOn();
    await expect(vm.reset()).resolves.toBe("em-reset");
    expect(vm.state).toBe(S.Running);
    expect([vm.resetCount, vm.hardResetCount, vm.softResetCount]).toEqual([1, 1, 0]);
    expect(log).toEqual(["devices.reset@0", "cpu.reset@0"]);
    expect(transitions.slice(2)).toEqual([
      [S.Running, S.Resetting],
      [S.Resetting, S.Running],
    ]);
    await vm.powerOff();
  });

  it("from Suspended: stays Suspended (the port's Resetting → Suspended edge)", async () => {
    const { vm, transitions } = makeVm();
    vm.forceState(S.Suspended);
    await expect(vm.reset()).resolves.toBe("em-reset");
    expect(transitions).toEqual([
      [S.Suspended, S.Resetting],
      [S.Resetting, S.Suspended],
    ]);
    expect(vm.resetCount).toBe(1);
  });

  it("from RunningLS: ResettingLS → SuspendingLS → SuspendedLS, em-suspend", async () => {
    const { vm, transitions } = makeVm();
    vm.forceState(S.RunningLS);
    await expect(vm.reset()).resolves.toBe("em-suspend");
    expect(transitions).toEqual([
      [S.RunningLS, S.ResettingLS],
      [S.ResettingLS, S.SuspendingLS],
      [S.SuspendingLS, S.SuspendedLS],
    ]);
  });

  it.each([S.Created, S.Off, S.Suspending, S.SuspendedExtLS])("from %s is refused and counts nothing", async (from) => {
    const { vm } = makeVm();
    vm.forceState(from);
    expectVmError(await rejection(vm.reset()), "InvalidVmState");
    expect([vm.resetCount, vm.hardResetCount]).toEqual([0, 0]);
  });

  it("power-off-instead-of-reset (option or setter): reset powers off, notifies once, counts nothing", async () => {
    const notify = vi.fn();
    const { vm, transitions } = makeVm({ powerOffInsteadOfReset: true, notifyResetTurnedIntoPowerOff: notify });
    await vm.powerOn();
    await expect(vm.reset()).resolves.toBe("em-off");
    expect(vm.state).toBe(S.Off);
    expect(notify).toHaveBeenCalledTimes(1);
    expect(vm.resetCount).toBe(0);
    expect(transitions.slice(2)).toEqual([
      [S.Running, S.PoweringOff],
      [S.PoweringOff, S.Off],
    ]);

    const second = makeVm();
    second.vm.setPowerOffInsteadOfReset(true);
    expect(second.vm.powerOffInsteadOfReset).toBe(true);
    second.vm.forceState(S.Suspended);
    await second.vm.reset();
    expect(second.vm.state).toBe(S.Off);
    expectVmError(thrown(() => second.vm.setPowerOffInsteadOfReset("yes" as never)), "InvalidParameter");
  });

  it("a guest reset asks the firmware; soft on vCPU 0: SoftResetting, em counters, subsystems get the flags", async () => {
    const log: string[] = [];
    let vmRef!: Vm<Exit>;
    const asked: boolean[] = [];
    const { vm, transitions } = makeVm({
      engine: new FakeEngine([[{ exitReason: "io", tag: "reset" }]]),
      handleExit: (exit) => (exit.tag === "reset" ? "reset" : "resume"),
      getResetInfo: (tripleFault) => {
        asked.push(tripleFault);
        return { hard: false, flags: 5 };
      },
      // power-off-instead-of-reset does not apply to soft resets (criterion 76)
      powerOffInsteadOfReset: true,
      subsystems: [recordingSubsystem(log, "devices", () => vmRef)],
    });
    vmRef = vm;
    await vm.powerOn();
    await settle();
    expect(asked).toEqual([false]);
    expect(log).toEqual(["devices.softReset(5)@0"]);
    expect([vm.resetCount, vm.softResetCount, vm.hardResetCount]).toEqual([1, 1, 0]);
    expect(transitions.slice(2)).toEqual([
      [S.Running, S.SoftResetting],
      [S.SoftResetting, S.Running],
    ]);
    await vm.powerOff();
  });

  it("a triple fault passes the triple-fault flag and performs the hard reset the firmware returns (criterion 77)", async () => {
    const asked: boolean[] = [];
    const { vm } = makeVm({
      engine: new FakeEngine([[{ exitReason: "io", tag: "shutdown" }]]),
      handleExit: (exit) => (exit.tag === "shutdown" ? "tripleFault" : "resume"),
      getResetInfo: (tripleFault) => {
        asked.push(tripleFault);
        return { hard: true, flags: 0 };
      },
    });
    await vm.powerOn();
    await settle();
    expect(asked).toEqual([true]);
    expect([vm.hardResetCount, vm.softResetCount]).toEqual([1, 0]);
    expect(vm.state).toBe(S.Running);
    await vm.powerOff();
  });

  it("a soft reset asked for on vCPU 1 is refused with WrongVcpu through the at-error path (criterion 78)", async () => {
    const { vm, errors } = makeVm({
      cpuCount: 2,
      engine: new FakeEngine([[], [{ exitReason: "io", tag: "reset" }]]),
      handleExit: (exit) => (exit.tag === "reset" ? "reset" : "resume"),
      getResetInfo: () => ({ hard: false, flags: 0 }),
    });
    await vm.powerOn();
    await settle();
    expect(errors.map(([code]) => code)).toEqual(["WrongVcpu"]);
    expect(vm.state).toBe(S.Running);
    expect(vm.softResetCount).toBe(0);
    await vm.powerOff();
  });

  it("a hard reset drops a halted vCPU's halt and pending wake (criterion 79)", async () => {
    const { vm, engine } = makeVm({ engine: new FakeEngine([[{ exitReason: "hlt" }]]), handleExit: (exit) => (exit.exitReason === "hlt" ? "halt" : "resume") });
    await vm.powerOn();
    await settle();
    expect(vm.isHalted(0)).toBe(true);
    await vm.reset();
    expect(vm.isHalted(0)).toBe(false);
    await settle();
    expect(engine.runCount(0)).toBe(2); // runs again after the reset without a wake
    await vm.powerOff();
  });
});

describe("guru meditation (criteria 80-82)", () => {
  it("Running → GuruMeditation cancels every vCPU; powerOff then works, resume does not", async () => {
    const { vm, engine } = makeVm({ cpuCount: 2 });
    await vm.powerOn();
    await settle();
    expect(vm.enterGuruMeditation()).toBe(true);
    expect(engine.cancels.sort()).toEqual([0, 1]);
    await expect(vm.whenStopped()).resolves.toBe(S.GuruMeditation);
    expectVmError(await rejection(vm.resume()), "InvalidVmState");
    await vm.powerOff();
    expect(vm.state).toBe(S.Off);
  });
});

describe("destroy and the handle (criteria 63-69)", { timeout: 5_000 }, () => {
  it("destroy from Created is refused; after powerOff it succeeds with two events, terms in reverse order", async () => {
    const terms: string[] = [];
    const { vm, transitions } = makeVm({
      cpuCount: 2,
      subsystems: [
        { name: "pgm", term: () => terms.push("pgm") },
        { name: "devices", term: () => terms.push(`devices@${vm.currentVcpuId()}`) },
      ],
    });
    expectVmError(await rejection(vm.destroy()), "InvalidVmState");
    await vm.powerOff();
    await vm.destroy();
    expect(terms).toEqual(["devices@0", "pgm"]);
    expect(transitions.slice(-2)).toEqual([
      [S.Off, S.Destroying],
      [S.Destroying, S.Terminated],
    ]);
    expect(vm.state).toBe(S.Terminated);
    await expect(vm.whenStopped()).resolves.toBe(S.Terminated);
    expect(vm.name).toBe("<unknown>");
    expectVmError(await rejection(vm.powerOn()), "InvalidVmHandle");
    expectVmError(await rejection(vm.suspend()), "InvalidVmHandle");
    expectVmError(await rejection(vm.destroy()), "InvalidVmHandle");
    expect(vm.release()).toBe(0);
    expect(vm.retain()).toBe(INVALID_REFERENCE_COUNT);
    expect(vm.release()).toBe(INVALID_REFERENCE_COUNT);
  });

  it("retain after create returns 3; releasing the caller's reference first leaves 1 and destroy still works", async () => {
    const { vm } = makeVm();
    expect(vm.retain()).toBe(3);
    expect(vm.release()).toBe(2);
    expect(vm.release()).toBe(1);
    await vm.powerOff();
    await vm.destroy();
    expect(vm.retain()).toBe(INVALID_REFERENCE_COUNT);
    expectVmError(thrown(() => vm.registerAtState(() => {})), "InvalidVmHandle");
  });

  it("destroy from vCPU context (a request) fails with CalledOnVcpu", async () => {
    const { vm } = makeVm();
    await vm.powerOff();
    const error = await vm.request(0, () => rejection(vm.destroy()));
    expectVmError(error, "CalledOnVcpu");
    expect(vm.state).toBe(S.Off);
  });

  it("a request queued behind destroy's is killed with RequestKilled and never runs (criterion 69)", async () => {
    const { vm } = makeVm({ cpuCount: 3 });
    await vm.powerOff();
    const order: number[] = [];
    vm.registerAtState((state) => {
      if (state === S.Destroying) order.push(-1);
    });
    const destroyed = vm.destroy();
    // Queued after destroy's request on vCPU 2: vCPU 2's loop has ended when it would run.
    const late = vm.request(2, (v) => order.push(v));
    await destroyed;
    expectVmError(await rejection(late), "RequestKilled");
    expect(order).toEqual([-1]);
  });
});

describe("at-state, at-error and runtime-error callbacks (criteria 83-99)", { timeout: 5_000 }, () => {
  it("at-state callbacks get (state, previous, user, vm) in registration order; getState inside is the new state", async () => {
    const { vm } = makeVm();
    const seen: string[] = [];
    vm.registerAtState((to, from, user, handle) => seen.push(`${user} ${from}->${to} ${handle.state}`), "a");
    vm.registerAtState((to, from, user) => seen.push(`${user} ${from}->${to}`), "b");
    await vm.powerOff();
    expect(seen).toEqual(["a CREATED->POWERING_OFF POWERING_OFF", "b CREATED->POWERING_OFF", "a POWERING_OFF->OFF OFF", "b POWERING_OFF->OFF"]);
  });

  it("duplicates are called once each; deregistration removes the earliest match; a different user does not match", async () => {
    const { vm } = makeVm();
    const calls: string[] = [];
    const fn = (_to: VmState, _from: VmState, user: string) => calls.push(user);
    vm.registerAtState(fn, "x");
    vm.registerAtState(fn, "x");
    await vm.powerOn();
    expect(calls).toEqual(["x", "x", "x", "x"]);
    expectVmError(thrown(() => vm.deregisterAtState(fn, "y")), "CallbackNotFound");
    vm.deregisterAtState(fn, "x");
    calls.length = 0;
    await vm.suspend();
    expect(calls).toEqual(["x", "x"]);
    vm.deregisterAtState(fn, "x");
    expectVmError(thrown(() => vm.deregisterAtState(fn, "x")), "CallbackNotFound");
    expectVmError(thrown(() => vm.registerAtState(42 as never)), "InvalidParameter");
  });

  it("a callback registered during a round is first called on the next transition", async () => {
    const { vm } = makeVm();
    const late: VmState[] = [];
    let added = false;
    vm.registerAtState(() => {
      if (!added) {
        added = true;
        vm.registerAtState((to) => late.push(to));
      }
    });
    await vm.powerOff();
    expect(late).toEqual([S.Off]);
  });

  it("state changes from a callback are refused; destroy from a vCPU-side round is CalledOnVcpu", async () => {
    const { vm } = makeVm();
    const attempts: Promise<unknown>[] = [];
    vm.registerAtState((to) => {
      if (to === S.Running) attempts.push(vm.suspend(), vm.reset(), vm.powerOff(), vm.resume());
      if (to === S.Off) attempts.push(vm.destroy());
    });
    await vm.powerOn();
    await vm.powerOff();
    const codes = [];
    for (const attempt of attempts) codes.push(((await rejection(attempt)) as { code: string }).code);
    expect(codes).toEqual(["StateChangeFromCallback", "StateChangeFromCallback", "StateChangeFromCallback", "StateChangeFromCallback", "CalledOnVcpu"]);
    expectVmError(thrown(() => vm.requestTransition("dbgf", [[S.Running, S.Debugging]])), "InvalidVmState"); // outside a callback: an ordinary refusal
  });

  it("setError returns the code, counts without callbacks, and calls at-error callbacks in order", () => {
    const vm = new Vm<Exit>({ cpuCount: 1, engine: new FakeEngine(), handleExit: resumeAll });
    expect(vm.setError("Disk", "test", "no disk")).toBe("Disk");
    expect(vm.errorCount).toBe(1);
    expect(vm.lastError).toEqual({ code: "Disk", source: "test", message: "no disk" });
    const seen: string[] = [];
    const fn = (code: string, _source: string, _message: string, user: string) => seen.push(`${user}:${code}`);
    vm.registerAtError(fn, "a");
    vm.registerAtError(fn, "b");
    vm.setError("Net", "test", "no network");
    expect(seen).toEqual(["a:Net", "b:Net"]);
    vm.deregisterAtError(fn, "a");
    expectVmError(thrown(() => vm.deregisterAtError(fn, "a")), "CallbackNotFound");
    expect(vm.errorCount).toBe(2);
  });

  it("the onError option is the first at-error callback", async () => {
    const seen: string[] = [];
    const vm = new Vm<Exit>({ cpuCount: 1, engine: new FakeEngine(), handleExit: resumeAll, onError: (code) => seen.push(`first:${code}`) });
    vm.registerAtError((code) => seen.push(`second:${code}`));
    await rejection(vm.resume());
    expect(seen).toEqual(["first:InvalidVmState", "second:InvalidVmState"]);
  });

  it("fatal runtime error from Running: FatalError before the callbacks, which see it; em-suspend; counted", async () => {
    const { vm, engine } = makeVm();
    await vm.powerOn();
    await settle();
    const seen: [number, string, string, VmState][] = [];
    vm.registerRuntimeError((flags, id, message) => seen.push([flags, id, message, vm.state]));
    await expect(vm.setRuntimeError(RuntimeErrorFlags.fatal, "DiskFull", "the disk is full")).resolves.toBe("em-suspend");
    expect(seen).toEqual([[1, "DiskFull", "the disk is full", S.FatalError]]);
    expect(vm.runtimeErrorCount).toBe(1);
    await expect(vm.whenStopped()).resolves.toBe(S.FatalError);
    const runs = engine.runs.length;
    await settle();
    expect(engine.runs.length).toBe(runs);
    await vm.powerOff();
  });

  it("fatal from Suspended: InvalidVmState reported, callbacks still called, state unchanged (criterion 94)", async () => {
    const { vm, errors } = makeVm();
    vm.forceState(S.Suspended);
    const seen: number[] = [];
    vm.registerRuntimeError((flags) => seen.push(flags));
    expectVmError(await rejection(vm.setRuntimeError(RuntimeErrorFlags.fatal | RuntimeErrorFlags.suspend, "X", "x")), "InvalidVmState");
    expect(errors).toHaveLength(1);
    expect(seen).toEqual([3]); // criterion 98: fatal|suspend is fatal
    expect(vm.runtimeErrorCount).toBe(1);
    expect(vm.state).toBe(S.Suspended);
  });

  it("suspend flag: Running → Suspended (reason runtime-error), RunningLS → SuspendedExtLS; repeated while suspended is a quiet success", async () => {
    const { vm, errors } = makeVm();
    vm.forceState(S.Running);
    await expect(vm.setRuntimeError(RuntimeErrorFlags.suspend, "Full", "full")).resolves.toBe("em-suspend");
    expect(vm.state).toBe(S.Suspended);
    expect(vm.getSuspendReason()).toBe("runtime-error");
    await expect(vm.setRuntimeError(RuntimeErrorFlags.suspend | RuntimeErrorFlags.noWait, "Full", "full")).resolves.toBe("ok");
    expect(vm.state).toBe(S.Suspended);
    expect(errors).toEqual([]);
    expect(vm.runtimeErrorCount).toBe(2);
    const ls = makeVm();
    ls.vm.forceState(S.RunningLS);
    await ls.vm.setRuntimeError(RuntimeErrorFlags.suspend, "Full", "full");
    expect(ls.vm.state).toBe(S.SuspendedExtLS);
  });

  it("no flags: no state change, callbacks called, counted; bad flags are InvalidParameter", async () => {
    const { vm, transitions } = makeVm();
    const seen: string[] = [];
    const fn = (_flags: number, id: string, _message: string, user: string) => seen.push(`${user}:${id}`);
    vm.registerRuntimeError(fn, "u");
    vm.registerRuntimeError(fn, "u");
    await expect(vm.setRuntimeError(0, "Note", "just so you know")).resolves.toBe("ok");
    expect(seen).toEqual(["u:Note", "u:Note"]);
    expect(transitions).toEqual([]);
    expect(vm.runtimeErrorCount).toBe(1);
    vm.deregisterRuntimeError(fn, "u");
    vm.deregisterRuntimeError(fn, "u");
    expectVmError(thrown(() => vm.deregisterRuntimeError(fn, "u")), "CallbackNotFound");
    expectVmError(await rejection(vm.setRuntimeError(8, "X", "x")), "InvalidParameter");
  });
});

describe("CPU management and miscellany (criteria 100-104, 110)", { timeout: 5_000 }, () => {
  it("hotUnplugCpu validates the id and leaves the vCPU waiting for a startup IPI after its per-CPU resets", async () => {
    const resets: number[] = [];
    const { vm, engine } = makeVm({ cpuCount: 2, subsystems: [{ name: "cpu", resetCpu: (v) => resets.push(v) }] });
    expectVmError(thrown(() => vm.hotUnplugCpu(2)), "InvalidCpuId");
    expectVmError(thrown(() => vm.hotPlugCpu(-1)), "InvalidCpuId");
    vm.hotPlugCpu(1);
    await vm.powerOn();
    await settle();
    vm.hotUnplugCpu(1);
    await settle();
    expect(resets).toEqual([1]);
    expect(vm.vcpuRunState(1)).toBe("wait-sipi");
    expect(vm.vcpuRunState(0)).toBe("started");
    const runs1 = engine.runCount(1);
    engine.deliver(0, { exitReason: "io" });
    await settle();
    expect(engine.runCount(1)).toBe(runs1); // vCPU 1 no longer runs
    await vm.powerOff();
  });

  it("getCpuCoreAndPackageId: multi-core by default, single-core as an option", () => {
    const { vm } = makeVm({ cpuCount: 2 });
    expect(vm.getCpuCoreAndPackageId(1)).toEqual({ core: 1, package: 0 });
    expectVmError(thrown(() => vm.getCpuCoreAndPackageId(2)), "InvalidCpuId");
    const single = makeVm({ cpuCount: 2, cpuLayout: "single-core" });
    expect(single.vm.getCpuCoreAndPackageId(1)).toEqual({ core: 0, package: 1 });
  });

  it.each([0, 101, 1.5])("setCpuExecutionCap(%s) is InvalidParameter", (cap) => {
    const { vm } = makeVm();
    expectVmError(thrown(() => vm.setCpuExecutionCap(cap)), "InvalidParameter");
    expect(vm.executionCap).toBe(100);
  });

  it("setCpuExecutionCap accepts 1 and 100 in any state; the option is range-checked too", () => {
    const { vm } = makeVm();
    vm.forceState(S.Off);
    vm.setCpuExecutionCap(1);
    expect(vm.executionCap).toBe(1);
    vm.setCpuExecutionCap(100);
    expect(vm.executionCap).toBe(100);
    expectVmError(thrown(() => makeVm({ executionCap: 0 })), "InvalidParameter");
    expect(makeVm({ executionCap: 40 }).vm.executionCap).toBe(40);
  });

  it("isLongModeAllowed asks the engine, false when it cannot say", () => {
    expect(makeVm().vm.isLongModeAllowed()).toBe(false);
    const engine = Object.assign(new FakeEngine(), { isLongModeAllowed: () => true });
    expect(makeVm({ engine }).vm.isLongModeAllowed()).toBe(true);
  });

  it("currentVcpuId is NIL outside vCPU context and the vCPU's id inside a request", async () => {
    const { vm } = makeVm({ cpuCount: 3 });
    expect(vm.currentVcpuId()).toBe(NIL_VCPU);
    await expect(vm.request(2, () => vm.currentVcpuId())).resolves.toBe(2);
  });

  it("requestTransition drives the six debugger edges and nothing else (criterion 110)", () => {
    const edges = [
      [S.Running, S.Debugging],
      [S.RunningLS, S.DebuggingLS],
      [S.Debugging, S.Running],
      [S.DebuggingLS, S.RunningLS],
      [S.GuruMeditation, S.Debugging],
      [S.GuruMeditationLS, S.DebuggingLS],
    ] as const;
    for (const [from, to] of edges) {
      const { vm, transitions } = makeVm();
      vm.forceState(from);
      expect(vm.requestTransition("dbgf", [[from, to]])).toBe(1);
      expect(transitions).toEqual([[from, to]]);
      const wrong = makeVm();
      wrong.vm.forceState(S.Suspended);
      expectVmError(thrown(() => wrong.vm.requestTransition("dbgf", [[from, to]])), "InvalidVmState");
      expect(wrong.errors).toHaveLength(1);
    }
    const { vm, transitions } = makeVm();
    vm.forceState(S.Debugging);
    expect(vm.requestTransition("dbgf", [edges[0], edges[2]])).toBe(2); // the second pair matched
    expect(transitions).toEqual([[S.Debugging, S.Running]]);
    expectVmError(thrown(() => vm.requestTransition("dbgf", [[S.Running, S.Suspending]])), "InvalidParameter");
    expect(vm.state).toBe(S.Running);
  });
});
