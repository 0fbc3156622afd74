/**
 * The README's usage transcript is executable: each `$ vmmkit …` line runs through the real
 * CLI entry, the lines after it are its stdout, and `$ echo $?` is followed by its status.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repositoryRoot, vmmkit } from "./helpers.js";

interface Step {
  command: string[];
  output: string[];
  status?: number;
}

function transcript(): Step[] {
  const readme = readFileSync(join(repositoryRoot, "apps/cli/README.md"), "utf8");
  const usage = readme.slice(readme.indexOf("## Usage"));
  const block = /```sh\n([\s\S]*?)```/.exec(usage)?.[1];
  if (!block) throw new Error("README.md has no ```sh block under ## Usage");
  const steps: Step[] = [];
  let expectStatus = false;
  for (const line of block.trimEnd().split("\n")) {
    if (line.startsWith("$ vmmkit ")) {
      steps.push({ command: line.slice("$ vmmkit ".length).split(/\s+/), output: [] });
    } else if (line === "$ echo $?") {
      expectStatus = true;
    } else if (expectStatus) {
      steps.at(-1)!.status = Number(line);
      expectStatus = false;
    } else {
      steps.at(-1)!.output.push(line);
    }
  }
  return steps;
}

describe("apps/cli README usage", () => {
  const steps = transcript();

  it("has commands to run", () => {
    expect(steps.length).toBeGreaterThan(0);
  });

  it.each(steps.map((step) => [step.command.join(" "), step] as const))("vmmkit %s", async (_name, step) => {
    const args = step.command.map((arg) => (arg.startsWith("guests/") ? join(repositoryRoot, arg) : arg));
    const result = await vmmkit(...args);
    expect(result.stdout.replaceAll("\r\n", "\n")).toBe(step.output.map((line) => line + "\n").join(""));
    expect(step.status).toBeDefined();
    expect(result.status).toBe(step.status);
  });
});
