import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { runCli } from "../src/cli.js";

export const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const guest = (path: string) => join(repositoryRoot, "guests", path);

export class Capture extends Writable {
  private readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    callback();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI entry in-process with captured output. */
export async function vmmkit(...args: string[]): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const status = await runCli(args, { stdout, stderr });
  return { status, stdout: stdout.text, stderr: stderr.text };
}

/** Writes bytes to a file in a fresh temporary directory and returns its path. */
export function temporaryFile(name: string, bytes: Uint8Array | string): string {
  const path = join(mkdtempSync(join(tmpdir(), "vmmkit-test-")), name);
  writeFileSync(path, bytes);
  return path;
}

export function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), "vmmkit-test-"));
}
