/**
 * `vmmkit bench pgm` lives in apps/cli (benchmarks measure through the public API, next to
 * the CLI's other benchmarks); this smoke run checks it works and reports what it claims.
 * Timings are never asserted.
 */
import { expect, it } from "vitest";
import { runPgmBenchmark } from "../src/bench/pgm.js";

it("runs the pgm benchmark (quick) and reports every measurement and ratio", async () => {
  const report = await runPgmBenchmark({ quick: true });
  expect(report.benchmark).toBe("pgm");
  const names = report.measurements.map((m) => m.name);
  for (const size of [1, 2, 4]) {
    for (const access of ["read", "write"]) {
      expect(names).toContain(`bare ${access} ${size} B`);
      for (const count of ["0", "100", "10 000"]) expect(names).toContain(`${access} ${size} B, ${count} handlers`);
    }
  }
  expect(names).toContain("read 4 B of an all-access page, random, 10 000 handlers");
  expect(names).toContain("register + deregister one page, 10 000 handlers");
  expect(names).toContain("MMIO2 dirty cycle, 16 MiB: write every page, collect");
  expect(names).toContain("consistency checker, 1 GiB RAM, 10 000 handlers");
  for (const measurement of report.measurements) expect(measurement.value).toBeGreaterThan(0);
  expect(report.ratios.map((r) => r.name)).toContain("read 4 B handler-free / bare");
  for (const entry of report.ratios) expect(Number.isFinite(entry.value) && entry.value > 0).toBe(true);
}, 120_000);
