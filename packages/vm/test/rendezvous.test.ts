import { describe, expect, it } from "vitest";
import { mergeStatus, VmState, type ExitAction, type VmStatus } from "@vmmkit/vm";
import { type Exit, expectVmError, FakeEngine, makeVm, rejection, settle, thrown } from "./helpers.js";

const S = VmState;

function timeout<T>(promise: Promise<T>, ms: number): Promise<T | "timed out"> {
  return Promise.race([promise, new Promise<"timed out">((resolve) => setTimeout(() => resolve("timed out"), ms))]);
}

describe("rendezvous (spec §4.1)", { timeout: 5_000 }, () => {
  it.each([
    ["descending", [3, 2, 1, 0]],
    ["ascending", [0, 1, 2, 3]],
    ["oneByOne", [0, 1, 2, 3]],
    ["once", [0]],
  ] as const)("%s runs the workers in order %j, each in its vCPU's context", async (kind, order) => {
    const { vm } = makeVm({ cpuCount: 4 });
    const seen: [number, number][] = [];
    await vm.rendezvous(kind, (v) => {
      seen.push([v, vm.currentVcpuId()]);
      return "ok";
    });
    expect(seen).toEqual(order.map((v) => [v, v]));
  });

  it("allAtOnce runs the workers concurrently", async () => {
    const { vm } = makeVm({ cpuCount: 4 });
    let started = 0;
    let allStarted!: () => void;
    const barrier = new Promise<void>((resolve) => (allStarted = resolve));
    const result = vm.rendezvous("allAtOnce", async (): Promise<VmStatus> => {
      if (++started === 4) allStarted();
      await barrier; // a sequential rendezvous would wait here forever
      return "ok";
    });
    await expect(timeout(result, 1_000)).resolves.toBe("ok");
  });

  it("stops the guest on every vCPU while the workers run, then lets it run on", async () => {
    const { vm, engine } = makeVm({ cpuCount: 2 });
    await vm.powerOn();
    await settle();
    expect(engine.isPending(0) && engine.isPending(1)).toBe(true);
    const during: boolean[] = [];
    await vm.rendezvous("ascending", () => {
      during.push(engine.isPending(0) || engine.isPending(1));
      return "ok";
    });
    expect(during).toEqual([false, false]);
    expect(engine.cancels.sort()).toEqual([0, 1]);
    await settle();
    expect(engine.isPending(0) && engine.isPending(1)).toBe(true);
    await vm.powerOff();
  });

  it("a halted vCPU takes part and stays halted afterwards", async () => {
    const { vm, engine } = makeVm({ engine: new FakeEngine([[{ exitReason: "hlt" }]]), handleExit: () => "halt" });
    await vm.powerOn();
    await settle();
    expect(vm.isHalted(0)).toBe(true);
    await expect(vm.rendezvous("once", () => "em-reschedule")).resolves.toBe("em-reschedule");
    expect(vm.isHalted(0)).toBe(true);
    await settle();
    expect(engine.runCount(0)).toBe(1);
    await vm.powerOff();
  });

  it("stopOnError: after a failure the remaining workers do not run; the first error is the result", async () => {
    const { vm } = makeVm({ cpuCount: 4 });
    const ran: number[] = [];
    const problem = new Error("worker 2 failed");
    const worker = (v: number): VmStatus => {
      ran.push(v);
      if (v === 2) throw problem;
      if (v === 0) throw new Error("second failure");
      return "ok";
    };
    await expect(vm.rendezvous("descending", worker, { stopOnError: true })).rejects.toBe(problem);
    expect(ran).toEqual([3, 2]);
    ran.length = 0;
    await expect(vm.rendezvous("descending", worker)).rejects.toBe(problem);
    expect(ran).toEqual([3, 2, 1, 0]);
  });

  it("stopOnError is refused for allAtOnce and once; a bad kind or worker is refused", async () => {
    const { vm } = makeVm();
    expectVmError(await rejection(vm.rendezvous("allAtOnce", () => "ok", { stopOnError: true })), "InvalidParameter");
    expectVmError(await rejection(vm.rendezvous("once", () => "ok", { stopOnError: true })), "InvalidParameter");
    expectVmError(await rejection(vm.rendezvous("sideways" as never, () => "ok")), "InvalidParameter");
    expectVmError(await rejection(vm.rendezvous("once", null as never)), "InvalidPointer");
  });

  it("merges statuses by urgency (criterion 108)", async () => {
    expect(mergeStatus("em-reset", "em-suspend")).toBe("em-suspend");
    expect(mergeStatus("em-suspend", "em-reset")).toBe("em-suspend");
    expect(mergeStatus("em-resume", "em-wait-sipi")).toBe("em-resume");
    expect(mergeStatus("em-off", "em-terminate")).toBe("em-terminate");
    expect(mergeStatus("em-reschedule", "ok")).toBe("em-reschedule");
    expect(mergeStatus("ok", "em-halt")).toBe("em-halt");
    const { vm } = makeVm({ cpuCount: 2 });
    const statuses: Record<number, VmStatus> = { 0: "em-reset", 1: "em-suspend" };
    await expect(vm.rendezvous("ascending", (v) => statuses[v]!)).resolves.toBe("em-suspend");
    const problem = new Error("boom");
    await expect(
      vm.rendezvous("ascending", (v) => {
        if (v === 1) throw problem;
        return "em-off";
      }),
    ).rejects.toBe(problem);
  });

  it("a second rendezvous waits for the first; a request queued meanwhile runs after it (criterion 107)", async () => {
    const { vm } = makeVm({ cpuCount: 2 });
    const log: string[] = [];
    const slow = (tag: string) => async (v: number) => {
      log.push(`${tag}${v} start`);
      await settle();
      log.push(`${tag}${v} end`);
      return "ok" as const;
    };
    const first = vm.rendezvous("descending", slow("a"));
    const second = vm.rendezvous("ascending", slow("b"));
    await Promise.resolve();
    const request = vm.request(0, () => log.push("request"));
    await Promise.all([first, second, request]);
    // Never interleaved; the request waits out the rendezvous in progress, then runs
    // between the two (a vCPU services its queue whenever it is not in a rendezvous).
    expect(log).toEqual(["a1 start", "a1 end", "a0 start", "a0 end", "request", "b0 start", "b0 end", "b1 start", "b1 end"]);
  });
});

describe("concurrent operations (spec §7.3, criteria 105-106)", { timeout: 5_000 }, () => {
  it("two suspends: exactly one succeeds, the other is InvalidVmState", async () => {
    const { vm } = makeVm({ cpuCount: 2 });
    await vm.powerOn();
    const results = await Promise.allSettled([vm.suspend(), vm.suspend()]);
    expect(results.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<VmStatus>).value)).toEqual(["em-suspend"]);
    const rejected = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(rejected).toHaveLength(1);
    expectVmError(rejected[0]!.reason, "InvalidVmState");
    expect(vm.state).toBe(S.Suspended);
  });

  it.each([false, true])("suspend and powerOff together end Off (powerOff first: %s)", async (powerOffFirst) => {
    const { vm } = makeVm({ cpuCount: 2 });
    await vm.powerOn();
    const calls = powerOffFirst ? [vm.powerOff(), vm.suspend()] : [vm.suspend(), vm.powerOff()];
    await Promise.allSettled(calls);
    expect(vm.state).toBe(S.Off);
  });
});

describe("requests (spec §4.2, §7.7)", { timeout: 5_000 }, () => {
  it("a request runs on its vCPU while the VM runs (the vCPU's run is cancelled) and resolves with the result", async () => {
    const { vm, engine } = makeVm({ cpuCount: 2 });
    await vm.powerOn();
    await settle();
    await expect(vm.request(1, (v) => `on ${v} as ${vm.currentVcpuId()}`)).resolves.toBe("on 1 as 1");
    expect(engine.cancels).toEqual([1]);
    await settle();
    expect(engine.isPending(1)).toBe(true); // back in the guest
    await vm.powerOff();
  });

  it("requestAll runs on every vCPU from n-1 to 0; errors reject; wait:false resolves at once", async () => {
    const { vm } = makeVm({ cpuCount: 3 });
    await expect(vm.requestAll((v) => v * 10)).resolves.toEqual([20, 10, 0]);
    const problem = new Error("request failed");
    await expect(
      vm.request(0, () => {
        throw problem;
      }),
    ).rejects.toBe(problem);
    let ran = false;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await expect(
      vm.request(
        1,
        async () => {
          await gate;
          ran = true;
        },
        { wait: false },
      ),
    ).resolves.toBeUndefined();
    expect(ran).toBe(false);
    release();
    await settle();
    expect(ran).toBe(true);
    expectVmError(thrown(() => vm.request(3, () => 0)), "InvalidCpuId");
  });
});

describe("the loop: halt, wake and fairness", { timeout: 5_000 }, () => {
  it("a wake that arrives between the handler deciding to halt and the loop parking is not lost", async () => {
    let finish!: (action: ExitAction) => void;
    const { vm, engine } = makeVm({
      engine: new FakeEngine([[{ exitReason: "hlt" }, { exitReason: "io" }]]),
      handleExit: (exit) => (exit.exitReason === "hlt" ? new Promise<ExitAction>((resolve) => (finish = resolve)) : "resume"),
    });
    await vm.powerOn();
    await settle();
    expect(engine.runCount(0)).toBe(1);
    // The handler returns "halt", and the interrupt arrives before the loop has seen that.
    finish("halt");
    vm.wake(0);
    await settle();
    expect(vm.isHalted(0)).toBe(false);
    expect(engine.runCount(0)).toBe(3); // ran on: handled io, and is running again
    await vm.powerOff();
  });

  it("a wake while the vCPU is running does not cut a later halt short", async () => {
    const { vm, engine } = makeVm({ handleExit: (exit) => (exit.exitReason === "hlt" ? "halt" : "resume") });
    await vm.powerOn();
    await settle();
    vm.wake(0); // the guest is running: the engine itself will see this interrupt
    engine.deliver(0, { exitReason: "io" });
    await settle();
    engine.deliver(0, { exitReason: "hlt" });
    await settle();
    expect(vm.isHalted(0)).toBe(true);
    expect(engine.runCount(0)).toBe(2); // parked after the halt, not run a third time
    await vm.powerOff();
  });

  it("several vCPUs share the thread round-robin", async () => {
    const engine = new FakeEngine([], true);
    const { vm } = makeVm({ cpuCount: 3, engine });
    await vm.powerOn();
    await settle();
    await vm.suspend();
    const counts = [0, 1, 2].map((v) => engine.runCount(v));
    expect(Math.min(...counts)).toBeGreaterThan(5);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    // Strict rotation: no vCPU runs twice before the others had a turn.
    const window = engine.runs.slice(3, 30);
    for (let i = 0; i + 3 <= window.length; i += 3) expect(new Set(window.slice(i, i + 3)).size).toBe(3);
    await vm.powerOff();
  });

  it("one vCPU with a stream of exits still lets timers run", async () => {
    const engine = new FakeEngine([], true);
    const { vm } = makeVm({ engine });
    await vm.powerOn();
    const fired = await timeout(new Promise<string>((resolve) => setTimeout(() => resolve("fired"), 5)), 2_000);
    expect(fired).toBe("fired");
    expect(engine.runs.length).toBeGreaterThan(100);
    await vm.powerOff();
  });

  it("with two vCPUs, powerOff from one vCPU's handler does not let that vCPU run again", async () => {
    const exits: Exit[] = [{ exitReason: "hlt" }, { exitReason: "io", tag: "after" }];
    const handled: (string | undefined)[] = [];
    const { vm } = makeVm({
      cpuCount: 2,
      engine: new FakeEngine([[], exits]),
      handleExit: (exit) => {
        handled.push(exit.tag ?? exit.exitReason);
        return exit.exitReason === "hlt" ? "powerOff" : "resume";
      },
    });
    await vm.powerOn();
    await expect(vm.whenStopped()).resolves.toBe(S.Off);
    expect(handled).toEqual(["hlt"]);
  });
});
