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
  expect(example.dr0).toBe(0x1000n);
  expect(example.dr1).toBe(0x7c00n);
  expect(example.dr7).toBe(0x000d270a);
  expect(example.dr7AfterDisable).toBe(0x000d2702);
});
