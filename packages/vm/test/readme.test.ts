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
  expect(example.finalState).toBe("OFF");
  expect(example.states).toEqual(["CREATED", "POWERING_ON", "RUNNING", "POWERING_OFF", "OFF"]);
  expect(example.exitCounts).toEqual({ io: 2, halt: 1 });
});
