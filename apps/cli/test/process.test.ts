/**
 * The built `vmmkit` binary as a user runs it: a real process with its exit status.
 * Needs `pnpm build` first (the README's test command builds before testing).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { guest, repositoryRoot } from "./helpers.js";

const binary = join(repositoryRoot, "apps/cli/dist/main.js");

describe("the built vmmkit binary", () => {
  it("exists (run `pnpm build` first)", () => {
    expect(existsSync(binary), `${binary} is missing: run pnpm build`).toBe(true);
  });

  it("runs hello-mb and exits with the status the guest chose", () => {
    const result = spawnSync(process.execPath, [binary, "run", guest("hello-mb/hello-mb.elf")], { encoding: "utf8", timeout: 30_000 });
    expect(result.stdout).toContain("Hello from a multiboot guest!");
    expect(result.status).toBe(33);
  });

  it("exits non-zero with one line on stderr for a missing image", () => {
    const result = spawnSync(process.execPath, [binary, "run", "/nonexistent.bin"], { encoding: "utf8", timeout: 30_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe("vmmkit: cannot read image /nonexistent.bin: no such file\n");
  });

  it("ends quietly when its output pipe closes early (| head)", async () => {
    const child = spawn(process.execPath, [binary, "run", guest("counter/counter.elf")], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const firstLine = await new Promise<string>((resolve) => {
      let text = "";
      child.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes("\n")) {
          child.stdout.destroy(); // what head does after its lines
          resolve(text.split("\n")[0]!);
        }
      });
    });
    const status = await new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    expect(firstLine).toMatch(/^tick 1 /);
    expect(status).toBe(0);
    expect(stderr).toBe("");
  });
});
