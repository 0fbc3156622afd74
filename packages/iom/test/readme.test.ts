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
  expect(example.value).toBe(0x5a);
  expect(example.unassigned).toBe(0xff);
  expect(example.overlap).toBe('ports 0x0511-0x0514 for "intruder" overlap 0x0510-0x0511 claimed by "toy"');
  expect(example.afterDeregister).toBe(0xff);
});
