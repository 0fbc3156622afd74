import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type ExecutionEngine,
  type ExitAction,
  type ExitHandler,
  isVmError,
  MAX_CPUS,
  Vm,
  type VmOptions,
  VmState,
} from "@vmmkit/vm";

interface Exit {
  readonly exitReason: "io" | "mmio" | "hlt" | "canceled";
  readonly tag?: string;
}

/**
 * A scripted stand-in accelerator. Each vCPU returns its scripted exits in order; once its
 * script is used up a run stays pending (a guest spinning in its own code) until the test
 * delivers an exit or cancelVcpu resolves it with a "canceled" exit.
 */
class FakeEngine implements ExecutionEngine<Exit> {
  readonly runs: number[] = [];
  readonly cancels: number[] = [];
  private readonly pending = new Map<number, (exit: Exit) => void>();

  constructor(private readonly scripts: Exit[][] = []) {}

  runVcpu(vcpu: number): Promise<Exit> {
    this.runs.push(vcpu);
    const next = this.scripts[vcpu]?.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => this.pending.set(vcpu, resolve));
  }

  cancelVcpu(vcpu: number): void {
    this.cancels.push(vcpu);
    this.deliver(vcpu, { exitReason: "canceled" });
  }

  isPending(vcpu: number): boolean {
    return this.pending.has(vcpu);
  }

  /** Ends vCPU `vcpu`'s pending run with `exit`. */
  deliver(vcpu: number, exit: Exit): void {
    const resolve = this.pending.get(vcpu);
    this.pending.delete(vcpu);
    resolve?.(exit);
  }

  runCount(vcpu: number): number {
    return this.runs.filter((index) => index === vcpu).length;
  }
}

/** Lets every loop run until it waits on something only the test can provide. */
async function settle(): Promise<void> {
  // Several event-loop turns: the loops yield through setImmediate between exits.
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setTimeout(resolve, 0));
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

function expectVmError(error: unknown, code: string): void {
  expect(isVmError(error), `not a VmError: ${String(error)}`).toBe(true);
  expect(error).toMatchObject({ name: "VmError", code });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

const resumeAll: ExitHandler<Exit> = () => "resume";

function makeVm(options: Partial<VmOptions<Exit>> = {}) {
  const engine = (options.engine as FakeEngine | undefined) ?? new FakeEngine();
  const vm = new Vm<Exit>({ cpuCount: 1, handleExit: resumeAll, ...options, engine });
  const transitions: [VmState, VmState][] = [];
  vm.onStateChange((to, from) => transitions.push([to, from]));
  return { vm, engine, transitions };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("construction", () => {
  it.each([0, MAX_CPUS + 1, 1.5, -1, Number.NaN])("cpuCount %s is refused with TooManyCpus", (cpuCount) => {
    expectVmError(thrown(() => new Vm<Exit>({ cpuCount, engine: new FakeEngine(), handleExit: resumeAll })), "TooManyCpus");
  });

  it("MAX_CPUS is 64", () => {
    expect(MAX_CPUS).toBe(64);
  });

  it.each([1, MAX_CPUS])("cpuCount %s gives a VM in CREATED", (cpuCount) => {
    const vm = new Vm<Exit>({ cpuCount, engine: new FakeEngine(), handleExit: resumeAll });
    expect(vm.state).toBe(VmState.Created);
    expect(vm.previous).toBe(VmState.Creating);
    expect(vm.cpuCount).toBe(cpuCount);
    expect(vm.failure).toBeUndefined();
  });

  it("a missing handleExit is refused with InvalidPointer", () => {
    const options = { cpuCount: 1, engine: new FakeEngine() } as unknown as VmOptions<Exit>;
    expectVmError(thrown(() => new Vm(options)), "InvalidPointer");
  });

  it("a missing engine, or one without its methods, is refused with InvalidPointer", () => {
    for (const engine of [undefined, {}, { runVcpu: () => Promise.resolve({ exitReason: "io" }) }]) {
      const options = { cpuCount: 1, engine, handleExit: resumeAll } as unknown as VmOptions<Exit>;
      expectVmError(thrown(() => new Vm(options)), "InvalidPointer");
    }
  });

  it("spec §9 criterion 12: defaults are name <unknown>, an all-zero UUID, cap 100, no power-off-instead-of-reset", () => {
    const a = new Vm<Exit>({ cpuCount: 1, engine: new FakeEngine(), handleExit: resumeAll });
    expect(a.name).toBe("<unknown>");
    expect(a.uuid).toBe("00000000-0000-0000-0000-000000000000");
    expect(a.executionCap).toBe(100);
    expect(a.powerOffInsteadOfReset).toBe(false);
    expect(a.stateName).toBe("CREATED");
    const b = new Vm<Exit>({
      name: "guest",
      uuid: "0123ABCD-0000-4000-8000-00000000002A",
      cpuCount: 1,
      engine: new FakeEngine(),
      handleExit: resumeAll,
    });
    expect(b.name).toBe("guest");
    expect(b.uuid).toBe("0123abcd-0000-4000-8000-00000000002a");
  });

  it.each(["", "not-a-uuid", "0123abcd00004000800000000000002a"])("uuid %j is refused with InvalidParameter", (uuid) => {
    expectVmError(thrown(() => new Vm<Exit>({ uuid, cpuCount: 1, engine: new FakeEngine(), handleExit: resumeAll })), "InvalidParameter");
  });
});

describe("powerOn and powerOff", { timeout: 5_000 }, () => {
  it("powerOn goes Created -> PoweringOn -> Running and starts the vCPU", async () => {
    const { vm, engine, transitions } = makeVm();
    await vm.powerOn();
    expect(vm.state).toBe(VmState.Running);
    expect(vm.previous).toBe(VmState.PoweringOn);
    expect(transitions).toEqual([
      [VmState.PoweringOn, VmState.Created],
      [VmState.Running, VmState.PoweringOn],
    ]);
    expect(engine.runs).toEqual([0]);
    await vm.powerOff();
  });

  it("a second powerOn is refused with InvalidVmState and changes nothing", async () => {
    const { vm, engine, transitions } = makeVm();
    await vm.powerOn();
    await settle();
    const before = { transitions: transitions.length, runs: engine.runs.length, cancels: engine.cancels.length };
    expectVmError(await rejection(vm.powerOn()), "InvalidVmState");
    await settle();
    expect(vm.state).toBe(VmState.Running);
    expect(vm.previous).toBe(VmState.PoweringOn);
    expect({ transitions: transitions.length, runs: engine.runs.length, cancels: engine.cancels.length }).toEqual(before);
    expect(engine.isPending(0)).toBe(true);
    await vm.powerOff();
    expect(vm.state).toBe(VmState.Off);
  });

  it("powerOff from Created goes Created -> PoweringOff -> Off without running anything", async () => {
    const { vm, engine, transitions } = makeVm();
    await vm.powerOff();
    expect(vm.state).toBe(VmState.Off);
    expect(vm.previous).toBe(VmState.PoweringOff);
    expect(transitions).toEqual([
      [VmState.PoweringOff, VmState.Created],
      [VmState.Off, VmState.PoweringOff],
    ]);
    expect(engine.runs).toEqual([]);
    await expect(vm.whenStopped()).resolves.toBe(VmState.Off);
  });

  it("from Off, powerOn and powerOff are refused with InvalidVmState", async () => {
    const { vm, transitions } = makeVm();
    await vm.powerOff();
    const count = transitions.length;
    expectVmError(await rejection(vm.powerOn()), "InvalidVmState");
    expectVmError(await rejection(vm.powerOff()), "InvalidVmState");
    expect(vm.state).toBe(VmState.Off);
    expect(transitions).toHaveLength(count);
  });

  it("a second powerOff while the first is still waiting for the loops is refused", async () => {
    const handler = deferredHandler();
    const { vm, engine } = makeVm({ engine: new FakeEngine([[{ exitReason: "io" }]]), handleExit: handler.handle });
    await vm.powerOn();
    await settle();
    const first = vm.powerOff(); // the loop is inside the handler, so the rendezvous must wait
    const second = rejection(vm.powerOff()); // queued behind the first; finds Off
    await settle();
    expect(vm.state).toBe(VmState.Running); // nobody has stopped yet
    handler.finish("resume");
    await first;
    expectVmError(await second, "InvalidVmState");
    expect(vm.state).toBe(VmState.Off);
    expect(engine.runs).toEqual([0]); // the loop noticed PoweringOff and did not run again
  });
});

/** A handler whose every call waits until the test finishes it. */
function deferredHandler() {
  const calls: Exit[] = [];
  let finishCall: ((action: ExitAction) => void) | undefined;
  return {
    calls,
    handle: (exit: Exit): Promise<ExitAction> => {
      calls.push(exit);
      return new Promise((resolve) => (finishCall = resolve));
    },
    finish(action: ExitAction) {
      const finish = finishCall;
      finishCall = undefined;
      if (!finish) throw new Error("no handler call is waiting");
      finish(action);
    },
  };
}

describe("at-state callbacks", () => {
  it("run in registration order with (state, previous), reading the new state", async () => {
    const { vm } = makeVm();
    const seen: string[] = [];
    vm.onStateChange((to, from) => seen.push(`a ${from}->${to} ${vm.state}`));
    vm.onStateChange((to, from) => seen.push(`b ${from}->${to} ${vm.state}`));
    await vm.powerOff();
    expect(seen).toEqual([
      "a CREATED->POWERING_OFF POWERING_OFF",
      "b CREATED->POWERING_OFF POWERING_OFF",
      "a POWERING_OFF->OFF OFF",
      "b POWERING_OFF->OFF OFF",
    ]);
  });

  it("a state change requested from inside a callback is refused with StateChangeFromCallback", async () => {
    const { vm, transitions } = makeVm();
    const attempts: Promise<unknown>[] = [];
    vm.onStateChange((to) => {
      if (to === VmState.PoweringOn) attempts.push(vm.powerOff(), vm.powerOn());
    });
    await vm.powerOn();
    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) expectVmError(await rejection(attempt), "StateChangeFromCallback");
    expect(vm.state).toBe(VmState.Running);
    expect(transitions.map(([to]) => to)).toEqual([VmState.PoweringOn, VmState.Running]);
    await vm.powerOff();
    // Outside a callback the same call is accepted again.
    expect(vm.state).toBe(VmState.Off);
  });

  it("deregistering stops the calls; deregistering twice is refused with CallbackNotFound", async () => {
    const { vm } = makeVm();
    const calls: VmState[] = [];
    const remove = vm.onStateChange((to) => calls.push(to));
    remove();
    expectVmError(thrown(remove), "CallbackNotFound");
    await vm.powerOff();
    expect(calls).toEqual([]);
  });

  it("a function registered twice is called twice and needs two deregistrations", async () => {
    const { vm } = makeVm();
    const calls: VmState[] = [];
    const callback = (to: VmState) => calls.push(to);
    const removeFirst = vm.onStateChange(callback);
    const removeSecond = vm.onStateChange(callback);
    removeFirst();
    await vm.powerOn();
    expect(calls).toEqual([VmState.PoweringOn, VmState.Running]);
    removeSecond();
    expectVmError(thrown(removeSecond), "CallbackNotFound");
    await vm.powerOff();
    expect(calls).toEqual([VmState.PoweringOn, VmState.Running]);
  });

  it("registering something that is not a function is refused with InvalidParameter (spec §6.1, criterion 86)", () => {
    const { vm } = makeVm();
    expectVmError(thrown(() => vm.onStateChange(undefined as unknown as () => void)), "InvalidParameter");
  });

  it("a throwing callback neither stops the transition nor the later callbacks (spec §6.1)", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const { vm, engine } = makeVm({ engine: new FakeEngine([[{ exitReason: "hlt" }]]), handleExit: () => "powerOff" });
    const problem = new Error("callback bug");
    vm.onStateChange(() => {
      throw problem;
    });
    const later: VmState[] = [];
    vm.onStateChange((to) => later.push(to));
    await vm.powerOn();
    // The handler's powerOff must still reach Off, so whenStopped settles.
    await expect(vm.whenStopped()).resolves.toBe(VmState.Off);
    expect(later).toEqual([VmState.PoweringOn, VmState.Running, VmState.PoweringOff, VmState.Off]);
    expect(logged).toHaveBeenCalledTimes(4);
    expect(logged.mock.calls[0]).toContain(problem);
    expect(engine.runs).toEqual([0]);
  });
});

// A broken cancel or wake shows up as a hang; fail fast instead of at the 30 s default.
describe("the execution loop", { timeout: 5_000 }, () => {
  it("dispatches exits in order, one at a time, and powers off on 'powerOff'", async () => {
    const script: Exit[] = [
      { exitReason: "io", tag: "a" },
      { exitReason: "mmio", tag: "b" },
      { exitReason: "io", tag: "c" },
      { exitReason: "hlt", tag: "d" },
    ];
    const handled: [string | undefined, number][] = [];
    const { vm, engine, transitions } = makeVm({
      engine: new FakeEngine([[...script]]),
      handleExit: (exit, vcpu) => {
        handled.push([exit.tag, vcpu]);
        return exit.exitReason === "hlt" ? "powerOff" : "resume";
      },
    });
    await vm.powerOn();
    await expect(vm.whenStopped()).resolves.toBe(VmState.Off);
    expect(handled).toEqual([
      ["a", 0],
      ["b", 0],
      ["c", 0],
      ["d", 0],
    ]);
    expect(engine.runs).toEqual([0, 0, 0, 0]);
    expect(transitions.map(([to]) => to)).toEqual([VmState.PoweringOn, VmState.Running, VmState.PoweringOff, VmState.Off]);
  });

  it("does not run the vCPU again until an async handler has finished", async () => {
    const handler = deferredHandler();
    const { vm, engine } = makeVm({
      engine: new FakeEngine([[{ exitReason: "io", tag: "1" }, { exitReason: "io", tag: "2" }]]),
      handleExit: handler.handle,
    });
    await vm.powerOn();
    await settle();
    expect(handler.calls.map((exit) => exit.tag)).toEqual(["1"]);
    expect(engine.runCount(0)).toBe(1);
    handler.finish("resume");
    await settle();
    expect(handler.calls.map((exit) => exit.tag)).toEqual(["1", "2"]);
    expect(engine.runCount(0)).toBe(2);
    handler.finish("powerOff");
    await expect(vm.whenStopped()).resolves.toBe(VmState.Off);
  });

  it("'halt' parks the vCPU until wake()", async () => {
    const handled: string[] = [];
    const { vm, engine } = makeVm({
      engine: new FakeEngine([[{ exitReason: "hlt" }, { exitReason: "io" }]]),
      handleExit: (exit) => {
        handled.push(exit.exitReason);
        return exit.exitReason === "hlt" ? "halt" : "resume";
      },
    });
    await vm.powerOn();
    await settle();
    await settle();
    expect(handled).toEqual(["hlt"]);
    expect(engine.runCount(0)).toBe(1); // parked: not run again
    expect(vm.state).toBe(VmState.Running);
    vm.wake(0);
    await settle();
    expect(handled).toEqual(["hlt", "io"]);
    expect(engine.runCount(0)).toBe(3); // ran after the wake, handled io, and is running again
    await vm.powerOff();
    expect(vm.state).toBe(VmState.Off);
  });

  it("wake() of a vCPU that does not exist is refused with InvalidCpuId", async () => {
    const { vm } = makeVm({ cpuCount: 2 });
    for (const index of [-1, 2, 64, 0.5, Number.NaN]) expectVmError(thrown(() => vm.wake(index)), "InvalidCpuId");
    vm.wake(1); // an existing vCPU that is not halted: nothing to do
    expect(vm.state).toBe(VmState.Created);
  });

  it("powerOff cancels a vCPU whose run is pending and ends in Off", async () => {
    const handled: Exit[] = [];
    const { vm, engine, transitions } = makeVm({
      handleExit: (exit) => {
        handled.push(exit);
        return "resume";
      },
    });
    await vm.powerOn();
    await settle();
    expect(engine.isPending(0)).toBe(true);
    const stopped = vm.whenStopped();
    await vm.powerOff();
    expect(engine.cancels).toEqual([0]);
    expect(engine.isPending(0)).toBe(false);
    expect(engine.runs).toEqual([0]);
    expect(handled).toEqual([]); // the canceled exit is not handed to the handler after power-off
    expect(vm.state).toBe(VmState.Off);
    await expect(stopped).resolves.toBe(VmState.Off);
    expect(transitions.map(([to]) => to)).toEqual([VmState.PoweringOn, VmState.Running, VmState.PoweringOff, VmState.Off]);
  });

  it("powerOff wakes a halted vCPU and ends in Off", async () => {
    const { vm, engine } = makeVm({ engine: new FakeEngine([[{ exitReason: "hlt" }]]), handleExit: () => "halt" });
    await vm.powerOn();
    await settle();
    expect(engine.isPending(0)).toBe(false); // parked in halt, not in a run
    await vm.powerOff();
    expect(vm.state).toBe(VmState.Off);
    expect(engine.runs).toEqual([0]);
  });

  it("an exception from the exit handler sends the VM to GURU_MEDITATION; powerOff then works", async () => {
    const problem = new Error("device model bug");
    const { vm, engine, transitions } = makeVm({
      engine: new FakeEngine([[{ exitReason: "io" }, { exitReason: "io" }]]),
      handleExit: () => {
        throw problem;
      },
    });
    await vm.powerOn();
    await expect(vm.whenStopped()).resolves.toBe(VmState.GuruMeditation);
    expect(vm.state).toBe(VmState.GuruMeditation);
    expect(vm.previous).toBe(VmState.Running);
    expect(vm.failure).toBe(problem);
    expect(engine.runs).toEqual([0]); // the loop stopped at the failing exit
    await expect(vm.whenStopped()).resolves.toBe(VmState.GuruMeditation); // also when asked afterwards
    await vm.powerOff();
    expect(vm.state).toBe(VmState.Off);
    expect(transitions.map(([to]) => to)).toEqual([
      VmState.PoweringOn,
      VmState.Running,
      VmState.GuruMeditation,
      VmState.PoweringOff,
      VmState.Off,
    ]);
    expectVmError(await rejection(vm.powerOn()), "InvalidVmState");
  });

  it("an exception from the engine sends the VM to GURU_MEDITATION too", async () => {
    const problem = new Error("engine failure");
    const engine: ExecutionEngine<Exit> = { runVcpu: () => Promise.reject(problem), cancelVcpu: () => {} };
    const vm = new Vm<Exit>({ cpuCount: 1, engine, handleExit: resumeAll });
    await vm.powerOn();
    await expect(vm.whenStopped()).resolves.toBe(VmState.GuruMeditation);
    expect(vm.failure).toBe(problem);
    await vm.powerOff();
    expect(vm.state).toBe(VmState.Off);
  });

  it("runs one loop per vCPU; two vCPUs both handle their exits", async () => {
    const handled: [string | undefined, number][] = [];
    const { vm, engine } = makeVm({
      cpuCount: 2,
      engine: new FakeEngine([
        [{ exitReason: "io", tag: "0a" }, { exitReason: "io", tag: "0b" }],
        [{ exitReason: "mmio", tag: "1a" }],
      ]),
      handleExit: (exit, vcpu) => {
        handled.push([exit.tag, vcpu]);
        return "resume";
      },
    });
    await vm.powerOn();
    await settle();
    expect(handled.filter(([, vcpu]) => vcpu === 0)).toEqual([
      ["0a", 0],
      ["0b", 0],
    ]);
    expect(handled.filter(([, vcpu]) => vcpu === 1)).toEqual([["1a", 1]]);
    expect(engine.isPending(0) && engine.isPending(1)).toBe(true);
    // Either vCPU's exits can be delivered independently.
    engine.deliver(1, { exitReason: "io", tag: "1b" });
    await settle();
    expect(handled.at(-1)).toEqual(["1b", 1]);
    await vm.powerOff();
    expect(engine.cancels.sort()).toEqual([0, 1]);
    expect(vm.state).toBe(VmState.Off);
  });

  it("with two vCPUs, a failure on one cancels the other's pending run", async () => {
    const problem = new Error("bad port");
    const { vm, engine } = makeVm({
      cpuCount: 2,
      engine: new FakeEngine([[], [{ exitReason: "io" }]]),
      handleExit: (_exit, vcpu) => {
        if (vcpu === 1) throw problem;
        return "resume";
      },
    });
    await vm.powerOn();
    await expect(vm.whenStopped()).resolves.toBe(VmState.GuruMeditation);
    expect(vm.failure).toBe(problem);
    await settle();
    expect(engine.cancels).toContain(0);
    expect(engine.isPending(0)).toBe(false);
    expect(engine.runCount(0)).toBe(1); // vCPU 0 saw the guru state and did not run again
    await vm.powerOff();
    expect(vm.state).toBe(VmState.Off);
  });

  it("with two vCPUs, 'powerOff' from one vCPU's handler stops the other", async () => {
    const { vm, engine } = makeVm({
      cpuCount: 2,
      engine: new FakeEngine([[], [{ exitReason: "hlt" }]]),
      handleExit: (exit) => (exit.exitReason === "hlt" ? "powerOff" : "resume"),
    });
    await vm.powerOn();
    await expect(vm.whenStopped()).resolves.toBe(VmState.Off);
    expect(engine.cancels).toContain(0);
    expect(engine.runCount(0)).toBe(1);
  });
});
