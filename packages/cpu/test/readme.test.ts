import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { RunExit } from "../src/index.js";
import { expectReadmeShowsExample } from "../../../scripts/test-support/readme.js";

const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), "..");

it("shows examples/usage.ts in the README", () => {
  expectReadmeShowsExample(packageDirectory);
});

it("runs the README example with the results its comments state", async () => {
  const example = await import("../examples/usage.js");
  const message = "Hello, world!\n";
  expect(example.output).toBe(message);
  expect(example.exit).toBe(RunExit.Halt);
  expect(example.halted).toBe(true);
  // The loop's shape: MOV SI once, five instructions per character, then
  // LODSB/TEST/JZ on the NUL and the HLT.
  expect(example.instructions).toBe(1 + 5 * message.length + 4);
  // HLT is the byte at 7C0C and is one byte long.
  expect(example.eip).toBe(0x7c0d);
});
