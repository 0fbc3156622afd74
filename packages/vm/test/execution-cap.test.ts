/**
 * The execution cap: below 100 % each vCPU rests after every run so that its running time
 * stays at the cap's share of wall-clock time. The clock and the sleep are injected, so the
 * test checks the arithmetic without timing anything.
 */
import { describe, expect, it } from "vitest";
import { Vm, type ExecutionEngine } from "@vmmkit/vm";
import type { Exit } from "./helpers.js";

function cappedVm(cap: number, runMs: number, runs: number) {
  let clock = 0;
  const sleeps: number[] = [];
  let count = 0;
  const engine: ExecutionEngine<Exit> = {
    runVcpu: () => {
      clock += runMs; // the guest ran this long
      count++;
      return Promise.resolve({ exitReason: count >= runs ? "hlt" : "io" });
    },
    cancelVcpu: () => {},
  };
  const vm = new Vm<Exit>({
    cpuCount: 1,
    engine,
    handleExit: (exit) => (exit.exitReason === "hlt" ? "powerOff" : "resume"),
    executionCap: cap,
    now: () => clock,
    sleep: (ms) => {
      sleeps.push(ms);
      clock += ms;
      return Promise.resolve();
    },
  });
  return { vm, sleeps, elapsed: () => clock };
}

describe("execution cap", () => {
  it("rests 3 ms after every 1 ms run at 25 %, so the guest gets a quarter of the time", async () => {
    const { vm, sleeps, elapsed } = cappedVm(25, 1, 8);
    await vm.powerOn();
    await vm.whenStopped();
    expect(sleeps).toEqual(new Array(8).fill(3));
    expect(elapsed()).toBe(32); // 8 ms of running in 32 ms
  });

  it("never rests at 100 %, and follows a cap changed at run time", async () => {
    const full = cappedVm(100, 2, 4);
    await full.vm.powerOn();
    await full.vm.whenStopped();
    expect(full.sleeps).toEqual([]);

    const changed = cappedVm(50, 2, 3);
    changed.vm.setCpuExecutionCap(80);
    await changed.vm.powerOn();
    await changed.vm.whenStopped();
    expect(changed.sleeps).toEqual([0.5, 0.5, 0.5]); // 2 ms × 20 / 80
  });
});
