/** `vmmkit bench`: the list, the table, the JSON object, and a clear refusal. */
import { describe, expect, it } from "vitest";
import { vmmkit } from "./helpers.js";

describe("vmmkit bench", () => {
  it("lists the benchmarks when no name is given", async () => {
    const result = await vmmkit("bench");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^cpu\s+guest MIPS/m);
  });

  it("refuses an unknown benchmark by name, listing the known ones", async () => {
    const result = await vmmkit("bench", "warp-drive");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^vmmkit: no benchmark named "warp-drive" \(known: .*cpu.*\)\n$/);
  });

  it("cpu --quick --json prints one JSON object with MIPS for both workloads and their ratios", async () => {
    const result = await vmmkit("bench", "cpu", "--quick", "--json");
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as {
      benchmark: string;
      measurements: { name: string; value: number; unit: string }[];
      ratios: { name: string; value: number }[];
      environment: { node: string };
    };
    expect(report.benchmark).toBe("cpu");
    expect(report.environment.node).toBe(process.version);
    const names = report.measurements.map((m) => m.name);
    for (const workload of ["bench32", "bench16"]) {
      for (const mode of ["compiled", "interpreted", "vmmkit run"]) expect(names).toContain(`${workload} ${mode}`);
    }
    for (const measurement of report.measurements) {
      expect(measurement.unit).toBe("MIPS");
      expect(measurement.value).toBeGreaterThan(0);
    }
    expect(report.ratios.map((r) => r.name)).toContain("bench32 compiled / interpreted");
  }, 120_000);

  it("cpu --quick prints a human table", async () => {
    const result = await vmmkit("bench", "cpu", "--quick");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^vmmkit bench cpu — /);
    expect(result.stdout).toMatch(/^bench16 compiled\s+[0-9.]+\s+MIPS$/m);
  }, 120_000);
});
