// Prints the plain "N passed, N failed" line the CI reads, from vitest's JSON report.
import { readFileSync } from "node:fs";

const path = process.argv[2] ?? "test-report.json";
let report;
try {
  report = JSON.parse(readFileSync(path, "utf8"));
} catch (error) {
  console.error(`test-summary: cannot read ${path}: ${error.message}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
// A suite that fails to load has no tests; count it as a failure so it is never silent.
const brokenSuites = report.numFailedTestSuites > 0 && report.numFailedTests === 0 ? report.numFailedTestSuites : 0;
console.log(`${report.numPassedTests} passed, ${report.numFailedTests + brokenSuites} failed`);
process.exit(report.numFailedTests + brokenSuites > 0 ? 1 : 0);
