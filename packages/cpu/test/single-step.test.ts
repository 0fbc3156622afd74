/**
 * Every SingleStepTests file of the 8086 and 80286 real-mode suites must pass at 100 %.
 * The data lives outside the repository (../shared/testdata/cpu); CI must have it.
 */
import { describe, expect, it } from "vitest";
import { ConformanceRunner, type ConformanceModel } from "../src/conformance.js";
import { dataAvailable, flagsMaskFor, readSuiteFile, SHARED_CPU_DATA, suiteFiles } from "./single-step-data.js";

/** Files not run, with the reason. The goal is none. */
const EXCLUDED: Record<string, string> = {};

const available = dataAvailable();

if (!available && process.env.CI) {
  it("finds the SingleStepTests data (required in CI)", () => {
    expect.fail(`SingleStepTests data missing at ${SHARED_CPU_DATA}`);
  });
}

for (const model of ["8086", "80286"] as ConformanceModel[]) {
  describe.skipIf(!available)(`SingleStepTests ${model} (data: ${available ? SHARED_CPU_DATA : "ABSENT"})`, () => {
    const runner = available ? new ConformanceRunner(model) : undefined;
    const files = available ? suiteFiles(model) : [];
    it.each(files.filter((file) => !(`${model}/${file}` in EXCLUDED)))("%s", (file) => {
      const mask = flagsMaskFor(model, file);
      const failures: string[] = [];
      const tests = readSuiteFile(model, file);
      for (const test of tests) {
        const difference = runner!.run(test, mask);
        if (difference) failures.push(`${test.name} [${test.bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ")}]: ${difference}`);
      }
      expect(tests.length).toBeGreaterThan(0);
      expect(failures.slice(0, 5), `${failures.length} of ${tests.length} failed`).toEqual([]);
    });
  });
}
