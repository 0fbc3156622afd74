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
  expect(example.word).toBe(0xaa55);
  expect(example.arenaByte).toBe(0xaa);
  expect(example.romByte).toBe(0xea);
  expect(example.deviceRegister).toBe(0x12345678);
  expect(example.mmioRead).toBe(0x12345678);
  expect(example.unassigned).toBe(0xffffffff);
  expect(example.unassignedReads).toBe(1);
});
