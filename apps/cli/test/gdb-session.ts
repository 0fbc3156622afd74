/**
 * Drives Debian's gdb in batch mode against `vmmkit run --gdb 0 --wait-gdb`, the CLI
 * running in-process so a test sees the guest's output, the exit status and gdb's output.
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../src/cli.js";
import { Capture, temporaryDirectory, type CliResult } from "./helpers.js";

export const gdbAvailable = spawnSync("gdb", ["--version"], { encoding: "utf8" }).status === 0;

export interface GdbSessionResult {
  readonly vmmkit: CliResult;
  readonly gdb: string;
}

export interface GdbSessionOptions {
  /** ELF whose symbols gdb loads (the guest itself for multiboot kernels). */
  readonly symbols?: string;
  /** Extra `vmmkit run` arguments. */
  readonly args?: readonly string[];
  /** Called with gdb's process once its output contains `text` (for Ctrl-C tests). */
  readonly onOutput?: { readonly text: string; readonly action: (gdb: ReturnType<typeof spawn>) => void };
}

export async function gdbSession(image: string, script: string, options: GdbSessionOptions = {}): Promise<GdbSessionResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const running = runCli(["run", image, "--gdb", "0", "--wait-gdb", "--timeout", "60", ...(options.args ?? [])], { stdout, stderr });
  let port: number | undefined;
  for (let tries = 0; port === undefined && tries < 500; tries++) {
    const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr.text);
    if (match) port = Number(match[1]);
    else await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (port === undefined) throw new Error(`vmmkit did not start its gdb server: ${stderr.text}`);
  const scriptPath = join(temporaryDirectory(), "session.gdb");
  writeFileSync(scriptPath, script);
  const gdbArgs = ["-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off"];
  if (options.symbols !== undefined) gdbArgs.push("-ex", `file ${options.symbols}`);
  gdbArgs.push("-ex", `target remote 127.0.0.1:${port}`, "-x", scriptPath);
  const gdb = spawn("gdb", gdbArgs, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let fired = false;
  const collect = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
    if (!fired && options.onOutput && output.includes(options.onOutput.text)) {
      fired = true;
      options.onOutput.action(gdb);
    }
  };
  gdb.stdout.on("data", collect);
  gdb.stderr.on("data", collect);
  const killer = setTimeout(() => gdb.kill("SIGKILL"), 60_000);
  await new Promise<void>((resolve) => gdb.on("close", () => resolve()));
  clearTimeout(killer);
  const status = await running;
  return { vmmkit: { status, stdout: stdout.text, stderr: stderr.text }, gdb: output };
}
