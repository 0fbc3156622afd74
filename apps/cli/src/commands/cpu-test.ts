/**
 * `vmmkit cpu-test <file-or-folder> [--cpu 8086|80286] [--json]`: runs SingleStepTests files
 * (gzip'd or plain JSON arrays of single-instruction tests) through @vmmkit/cpu's
 * ConformanceRunner and reports, per file, how many passed and, for each failure, the test
 * and its first difference. The undefined-flags masks come from metadata.json next to the files.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { gunzipSync } from "node:zlib";
import { ConformanceRunner, type ConformanceModel, type SingleStepTest } from "@vmmkit/cpu";
import { Option, type Command } from "commander";
import { CliError } from "../cli-error.js";
import type { CliIo } from "../cli.js";

interface CpuTestOptions {
  cpu?: ConformanceModel;
  json?: boolean;
}

/** Failures shown per file; the rest are counted. */
const FAILURES_SHOWN = 10;

const REGISTERS = ["ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags"] as const;

/** An error's message on one line (JSON.parse quotes the input, newlines included). */
const oneLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ").trim();

export interface FileResult {
  readonly name: string;
  readonly passed: number;
  readonly failed: number;
  /** "name [bytes]: difference" for the first failures. */
  readonly failures: readonly string[];
}

export function registerCpuTestCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command("cpu-test")
    .description(
      "Run SingleStepTests files (.json.gz or .json, one file or a folder of them) through the interpreter: per-file " +
        "pass/fail counts and each failure's first difference. Exit status 0 only if every test passed.",
    )
    .argument("<file-or-folder>", "a test file, or a folder of them (metadata.json there gives the undefined-flags masks)")
    .addOption(new Option("--cpu <model>", "the CPU the tests were recorded on (default: from the folder name)").choices(["8086", "80286"]))
    .option("--json", 'print one JSON object: { "files": [{ "name", "passed", "failed" }], "passed", "failed" }')
    .action((path: string, options: CpuTestOptions) => {
      setExitCode(runCpuTests(path, options, io));
    });
}

/** Picks the model from the nearest folder (or file) name that mentions 8086 or 80286. */
export function inferModel(path: string): ConformanceModel | undefined {
  const segments = resolve(path).split(sep).reverse();
  for (const segment of segments) {
    const is286 = /(^|[^0-9])(80)?286([^0-9]|$)/.test(segment);
    const is8086 = /(^|[^0-9])8086([^0-9]|$)/.test(segment);
    if (is286 && !is8086) return "80286";
    if (is8086 && !is286) return "8086";
  }
  return undefined;
}

function testFiles(path: string): { files: string[]; folder: string } {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new CliError(`cannot read ${path}: no such file or folder`);
  }
  if (!stats.isDirectory()) return { files: [path], folder: dirname(path) };
  const files = readdirSync(path)
    .filter((name) => /\.json(\.gz)?$/.test(name) && name !== "metadata.json")
    .sort()
    .map((name) => join(path, name));
  if (files.length === 0) throw new CliError(`${path} holds no test files (*.json.gz or *.json)`);
  return { files, folder: path };
}

interface Metadata {
  readonly opcodes: Record<string, { readonly "flags-mask"?: number; readonly reg?: Record<string, { readonly "flags-mask"?: number }> }>;
}

function readMetadata(folder: string): Metadata | undefined {
  const path = join(folder, "metadata.json");
  if (!existsSync(path)) return undefined;
  let metadata: unknown;
  try {
    metadata = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new CliError(`${path} is not valid JSON: ${oneLine(error)}`);
  }
  if (typeof metadata !== "object" || metadata === null || typeof (metadata as Metadata).opcodes !== "object" || (metadata as Metadata).opcodes === null) {
    throw new CliError(`${path} has no "opcodes" object, so it is not SingleStepTests metadata`);
  }
  return metadata as Metadata;
}

/** The flags mask for a file named like "F6.6.json.gz" (opcode F6, reg field 6). */
function flagsMask(metadata: Metadata | undefined, file: string): number {
  if (!metadata) return 0xffff;
  const [opcode = "", reg] = basename(file).replace(/\.json(\.gz)?$/, "").split(".");
  const info = metadata.opcodes[opcode.toUpperCase()];
  const entry = reg !== undefined ? info?.reg?.[reg] : info;
  const mask = entry?.["flags-mask"];
  return typeof mask === "number" && Number.isInteger(mask) ? mask & 0xffff : 0xffff;
}

function readTests(file: string): unknown[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${oneLine(error)}`);
  }
  let text: string;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      text = gunzipSync(bytes).toString("utf8");
    } catch (error) {
      throw new CliError(`${file} is not a valid gzip file: ${oneLine(error)}`);
    }
  } else {
    text = bytes.toString("utf8");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not JSON (${oneLine(error)}); SingleStepTests files are JSON arrays of tests, usually gzip'd`);
  }
  if (!Array.isArray(parsed)) throw new CliError(`${file} holds JSON but not an array of tests`);
  if (parsed.length === 0) throw new CliError(`${file} holds no tests`);
  return parsed;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const isInteger = (value: unknown, max: number) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= max;

/** Returns what is wrong with a test object, or undefined when it has the shape the runner reads. */
export function testProblem(test: unknown): string | undefined {
  if (!isObject(test)) return "it is not an object";
  if (typeof test.name !== "string") return '"name" is not a string';
  if (!Array.isArray(test.bytes) || test.bytes.length === 0 || !test.bytes.every((byte) => isInteger(byte, 0xff))) return '"bytes" is not a list of byte values';
  for (const part of ["initial", "final"] as const) {
    const state = test[part];
    if (!isObject(state)) return `"${part}" is not an object`;
    if (!isObject(state.regs)) return `"${part}.regs" is not an object`;
    for (const register of REGISTERS) {
      const value = state.regs[register];
      if (value === undefined && part === "final") continue;
      if (!isInteger(value, 0xffff)) return `"${part}.regs.${register}" is not a 16-bit value`;
    }
    if (!Array.isArray(state.ram)) return `"${part}.ram" is not a list`;
    for (const entry of state.ram) {
      if (!Array.isArray(entry) || entry.length !== 2 || !isInteger(entry[0], 0xffffff) || !isInteger(entry[1], 0xff)) {
        return `"${part}.ram" holds ${JSON.stringify(entry)}, not an [address below 16 MiB, byte] pair`;
      }
    }
  }
  if (test.exception !== undefined) {
    const exception = test.exception;
    if (!isObject(exception) || !isInteger(exception.number, 0xff) || !isInteger(exception.flag_address, 0xffffff)) {
      return '"exception" is not { number, flag_address }';
    }
  }
  return undefined;
}

const hexBytes = (bytes: readonly number[]) => bytes.map((byte) => byte.toString(16).padStart(2, "0")).join(" ");

function runFile(runner: ConformanceRunner, file: string, name: string, mask: number): FileResult {
  const tests = readTests(file);
  tests.forEach((test, index) => {
    const problem = testProblem(test);
    if (problem !== undefined) {
      const label = isObject(test) && typeof test.name === "string" ? ` ("${test.name}")` : "";
      throw new CliError(`${file}: test ${index}${label} is malformed: ${problem}`);
    }
  });
  let passed = 0;
  let failed = 0;
  const failures: string[] = [];
  for (const test of tests as SingleStepTest[]) {
    let difference: string | null;
    try {
      difference = runner.run(test, mask);
    } catch (error) {
      difference = `the interpreter threw: ${oneLine(error)}`;
    }
    if (difference === null) {
      passed++;
      continue;
    }
    failed++;
    if (failures.length < FAILURES_SHOWN) failures.push(`${test.name} [${hexBytes(test.bytes)}]: ${difference}`);
  }
  return { name, passed, failed, failures };
}

/** Runs the command; returns the exit status (0 only when every test passed). */
export function runCpuTests(path: string, options: CpuTestOptions, io: CliIo): number {
  const { files, folder } = testFiles(path);
  const model = options.cpu ?? inferModel(path);
  if (model === undefined) {
    throw new CliError(`cannot tell which CPU recorded the tests in ${path} (no folder named after 8086 or 80286); pass --cpu 8086 or --cpu 80286`);
  }
  const metadata = readMetadata(folder);
  const runner = new ConformanceRunner(model);
  const results: FileResult[] = [];
  const width = Math.max(...files.map((file) => basename(file).length));
  for (const file of files) {
    const result = runFile(runner, file, basename(file), flagsMask(metadata, file));
    results.push(result);
    if (!options.json) {
      io.stdout.write(`${result.name.padEnd(width)}  ${result.passed} passed, ${result.failed} failed\n`);
      for (const failure of result.failures) io.stdout.write(`  ${failure}\n`);
      if (result.failed > result.failures.length) io.stdout.write(`  … and ${result.failed - result.failures.length} more\n`);
    }
  }
  const passed = results.reduce((sum, result) => sum + result.passed, 0);
  const failed = results.reduce((sum, result) => sum + result.failed, 0);
  if (options.json) {
    const report = { files: results.map(({ name, passed, failed }) => ({ name, passed, failed })), passed, failed };
    io.stdout.write(JSON.stringify(report, null, 2) + "\n");
  } else {
    io.stdout.write(`${model}: ${passed} passed, ${failed} failed in ${results.length} file${results.length === 1 ? "" : "s"}\n`);
  }
  if (!metadata) io.stderr.write(`vmmkit: note: no metadata.json in ${folder}, so every flag was compared, including undefined ones\n`);
  return failed === 0 ? 0 : 1;
}
