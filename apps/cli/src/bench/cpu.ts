/**
 * `vmmkit bench cpu`: guest instructions per second on the two compute workloads, with
 * the block compiler, interpreting only, and through the whole machine (as `vmmkit run`).
 * The interpreter is the baseline measured in the same run; ratios to QEMU, Bochs and v86
 * come from the anchors harness (scripts/bench-anchors.sh), which runs them side by side.
 */
import { registerBenchmark } from "./registry.js";
import { ratio, type Measurement } from "./report.js";
import { expectedChecksum, runOnBareCpu, runOnMachine, WORKLOADS, type WorkloadRun } from "./guest-workloads.js";

/** Iterations per run: enough for a few hundred million instructions compiled. */
const ITERATIONS = { bench32: 120, bench16: 500 } as const;
/** The interpreter is several times slower: fewer iterations keep the run short. */
const INTERPRETER_SHARE = 8;
const QUICK_ITERATIONS = { bench32: 2, bench16: 3 } as const;

const mips = (run: WorkloadRun) => run.instructions / run.milliseconds / 1000;

registerBenchmark({
  name: "cpu",
  description: "guest MIPS on bench32 (32-bit C) and bench16 (16-bit real mode): compiled, interpreted, whole machine",
  async run({ quick }) {
    const measurements: Measurement[] = [];
    const notes: string[] = [];
    for (const workload of WORKLOADS) {
      const iterations = quick ? QUICK_ITERATIONS[workload.name] : ITERATIONS[workload.name];
      const interpretedIterations = quick ? iterations : Math.max(1, Math.round(iterations / INTERPRETER_SHARE));
      // Warm-up so V8 has optimised the interpreter and the compiler before timing.
      runOnBareCpu(workload.name, QUICK_ITERATIONS[workload.name], true);
      const compiled = runOnBareCpu(workload.name, iterations, true);
      const interpreted = runOnBareCpu(workload.name, interpretedIterations, false);
      const machine = await runOnMachine(workload.name, iterations);
      for (const [run, count] of [[compiled, iterations], [interpreted, interpretedIterations], [machine, iterations]] as const) {
        const expected = expectedChecksum(workload.name, count);
        if (expected !== undefined && expected !== run.checksum) {
          throw new Error(`${workload.name} (${count} iterations) computed checksum ${run.checksum}, expected ${expected}`);
        }
        if (expected === undefined && run.checksum !== compiled.checksum && count === iterations) {
          throw new Error(`${workload.name}: the runs disagree on the checksum (${run.checksum} vs ${compiled.checksum})`);
        }
      }
      measurements.push(
        { name: `${workload.name} compiled`, value: mips(compiled), unit: "MIPS" },
        { name: `${workload.name} interpreted`, value: mips(interpreted), unit: "MIPS" },
        { name: `${workload.name} vmmkit run`, value: mips(machine), unit: "MIPS" },
      );
      notes.push(
        `${workload.name}: ${workload.description}; ${iterations} iterations = ${compiled.instructions} instructions, checksum ${compiled.checksum}`,
      );
    }
    const ratios = WORKLOADS.flatMap((workload) => [
      ratio(measurements, `${workload.name} compiled / interpreted`, `${workload.name} compiled`, `${workload.name} interpreted`),
      ratio(measurements, `${workload.name} whole machine / bare CPU`, `${workload.name} vmmkit run`, `${workload.name} compiled`, "≥ 0.95"),
    ]);
    notes.push("target ≥ 150 MIPS compiled on both workloads; ratios to QEMU, Bochs and v86 in the same run: scripts/bench-anchors.sh");
    return { benchmark: "cpu", measurements, ratios, notes };
  },
});
