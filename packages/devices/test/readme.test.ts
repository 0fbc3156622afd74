import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { expectReadmeShowsExample } from "../../../scripts/test-support/readme.js";

const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), "..");

it("shows examples/usage.ts in the README", () => {
  expectReadmeShowsExample(packageDirectory);
});

it("runs the README example with the results its comments state", async () => {
  const example = await import("../examples/usage.js");
  expect(example.transmitted).toBe("ok\n");
  expect(example.lineStatus).toBe(0x60);
  expect(example.pending).toBe(true);
  expect(example.vector).toBe(0x20);
  // Mode 2 with count 1193 drops OUT at tick 2 × 1193 − 1 = 2385: ceil(2385 × 10^9 / 1193182) ns.
  expect(example.nextTimerEvent).toBe(Math.ceil((2385 * 1e9) / 1193182));
  expect(example.dataReady).toBe(1);
  expect(example.received).toBe(0x79);
  expect(example.status).toBe(0x21);
});
