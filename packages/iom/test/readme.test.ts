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
  expect(example.word).toBe(0x5a00);
  expect(example.unassigned).toBe(0xff);
  expect(example.transferred).toBe(3);
  expect(example.bytes).toEqual([0x5a, 0x5a, 0x5a]);
  expect(example.statistics).toEqual({ port: 0x511, owner: "toy", reads: { byte: 4, word: 0, dword: 0 }, writes: { byte: 1, word: 0, dword: 0 } });
  expect(example.breakpointHits).toEqual(["write 42"]);
  expect(example.overlap).toBe('ports 0x0511-0x0514 for "intruder" overlap 0x0510-0x0511 claimed by "toy"');
  expect(example.afterDeregister).toBe(0xff);
});
