/**
 * Keeps each package's README usage example true: the example is a real file
 * (examples/usage.ts) that a test imports and checks, and the README must show that file
 * verbatim inside a ```ts block.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";

export function readmeExampleSource(packageDirectory: string): string {
  return readFileSync(join(packageDirectory, "examples", "usage.ts"), "utf8").trim();
}

/** Fails unless README.md contains examples/usage.ts exactly, inside a ```ts fence. */
export function expectReadmeShowsExample(packageDirectory: string): void {
  const readme = readFileSync(join(packageDirectory, "README.md"), "utf8");
  const example = readmeExampleSource(packageDirectory);
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!.trim());
  expect(blocks, "README.md must show examples/usage.ts verbatim in a ```ts block").toContain(example);
}
