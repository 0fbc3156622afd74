/**
 * The benchmark guests compute what their independent references say: bench32 against the
 * same C compiled for the host, bench16 against a Python model (guests/build.sh records both).
 * Each runs compiled, interpreted and through the whole machine.
 */
import { describe, expect, it } from "vitest";
import { expectedChecksum, runOnBareCpu, runOnMachine } from "../src/bench/guest-workloads.js";

describe.each(["bench32", "bench16"] as const)("%s", (workload) => {
  it.each([1, 3])("matches its reference checksum for %i iterations, compiled and interpreted", (iterations) => {
    const expected = expectedChecksum(workload, iterations);
    expect(expected).toMatch(/^[0-9a-f]{8}$/);
    expect(runOnBareCpu(workload, iterations, true).checksum).toBe(expected);
    expect(runOnBareCpu(workload, iterations, false).checksum).toBe(expected);
  });

  it("matches its reference through the whole machine", async () => {
    const run = await runOnMachine(workload, 2);
    expect(run.checksum).toBe(expectedChecksum(workload, 2));
    expect(run.instructions).toBeGreaterThan(100_000);
  });
});
