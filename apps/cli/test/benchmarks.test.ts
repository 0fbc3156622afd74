/**
 * Every registered benchmark runs (quick mode) and returns a well-formed report: finite
 * positive measurements with units, and ratios that name measurements of the same report.
 * Timings are never asserted.
 */
import { describe, expect, it } from "vitest";
import "../src/bench/all.js";
import { listBenchmarks } from "../src/bench/registry.js";

describe("registered benchmarks", () => {
  const benchmarks = listBenchmarks();

  it("include one per subsystem with a benchmark issue", () => {
    expect(benchmarks.map((benchmark) => benchmark.name)).toEqual(expect.arrayContaining(["cpu", "dbgf", "iom", "pgm"]));
  });

  it.each(benchmarks.map((benchmark) => [benchmark.name, benchmark] as const))("%s --quick reports measurements and ratios", async (name, benchmark) => {
    const report = await benchmark.run({ quick: true });
    expect(report.benchmark).toBe(name);
    expect(report.measurements.length).toBeGreaterThan(0);
    const names = new Set(report.measurements.map((measurement) => measurement.name));
    expect(names.size).toBe(report.measurements.length);
    for (const measurement of report.measurements) {
      expect(Number.isFinite(measurement.value) && measurement.value > 0, measurement.name).toBe(true);
      expect(measurement.unit).not.toBe("");
    }
    for (const entry of report.ratios) {
      expect(names.has(entry.numerator), entry.name).toBe(true);
      expect(names.has(entry.denominator), entry.name).toBe(true);
      expect(Number.isFinite(entry.value) && entry.value > 0, entry.name).toBe(true);
    }
  }, 180_000);
});
