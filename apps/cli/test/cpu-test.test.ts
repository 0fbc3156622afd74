/**
 * `vmmkit cpu-test` on real SingleStepTests files (../shared/testdata/cpu; CI has them), on a
 * folder, with --json, with a test made to fail, and on bad input.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { repositoryRoot, temporaryDirectory, temporaryFile, vmmkit } from "./helpers.js";

const data = join(repositoryRoot, "../shared/testdata/cpu");
const suite8086 = join(data, "8086/v1");
const suite286 = join(data, "80286/v1_real_mode");
const available = existsSync(suite8086) && existsSync(suite286);

if (!available && process.env.CI) {
  it("finds the SingleStepTests data (required in CI)", () => {
    expect.fail(`SingleStepTests data missing at ${data}`);
  });
}

interface Test {
  name: string;
  bytes: number[];
  initial: { regs: Record<string, number>; ram: [number, number][] };
  final: { regs: Record<string, number>; ram: [number, number][] };
}

const readTests = (path: string): Test[] => JSON.parse(gunzipSync(readFileSync(path)).toString("utf8"));

/** A folder named after the CPU, holding copies of some suite files and its metadata.json. */
function sampleFolder(suite: string, folderName: string, files: readonly string[], withMetadata = true): string {
  const folder = join(temporaryDirectory(), folderName);
  mkdirSync(folder);
  for (const file of files) copyFileSync(join(suite, file), join(folder, file));
  if (withMetadata) copyFileSync(join(suite, "metadata.json"), join(folder, "metadata.json"));
  return folder;
}

function expectOneLineRefusal(result: { status: number; stdout: string; stderr: string }, message: RegExp): void {
  expect(result.status).toBe(1);
  expect(result.stdout).toBe("");
  expect(result.stderr).toMatch(message);
  expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe.skipIf(!available)("vmmkit cpu-test on the SingleStepTests data", () => {
  it("runs one real file: 200 tests, all passing, the model taken from the folder name", async () => {
    const result = await vmmkit("cpu-test", join(suite8086, "00.json.gz"));
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("00.json.gz  200 passed, 0 failed\n8086: 200 passed, 0 failed in 1 file\n");
    expect(result.status).toBe(0);
  });

  it("runs a folder with --json: one object with per-file counts and totals", async () => {
    const folder = sampleFolder(suite286, "80286-sample", ["27.json.gz", "F6.6.json.gz"]);
    const result = await vmmkit("cpu-test", "--json", folder);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      files: [
        { name: "27.json.gz", passed: 200, failed: 0 },
        { name: "F6.6.json.gz", passed: 200, failed: 0 },
      ],
      passed: 400,
      failed: 0,
    });
  });

  it("--cpu overrides the folder name, and the wrong CPU shows failures", async () => {
    // AAA (37) differs between the 8086 and the 80286 (AF/CF and AH adjustment).
    const folder = sampleFolder(suite286, "tests-for-8086", ["37.json.gz"]);
    const as286 = await vmmkit("cpu-test", "--json", "--cpu", "80286", folder);
    const as8086 = await vmmkit("cpu-test", "--json", "--cpu", "8086", folder);
    expect(JSON.parse(as286.stdout).failed).toBe(0);
    expect(as286.status).toBe(0);
    expect(JSON.parse(as8086.stdout).failed).toBeGreaterThan(0);
    expect(as8086.status).toBe(1);
  });

  it("reports a failing test by name with its first difference, and exits 1", async () => {
    const tests = readTests(join(suite8086, "40.json.gz")).slice(0, 3); // INC AX
    const broken = tests[1]!;
    broken.final.regs.ax = (broken.initial.regs.ax! + 2) & 0xffff; // INC adds one, not two
    const folder = join(temporaryDirectory(), "8086");
    mkdirSync(folder);
    writeFileSync(join(folder, "40.json"), JSON.stringify(tests));
    copyFileSync(join(suite8086, "metadata.json"), join(folder, "metadata.json"));
    const result = await vmmkit("cpu-test", folder);
    expect(result.status).toBe(1);
    const hex4 = (value: number) => "0x" + value.toString(16).padStart(4, "0");
    const expected = hex4(broken.final.regs.ax);
    const actual = hex4((broken.initial.regs.ax! + 1) & 0xffff);
    expect(result.stdout).toBe(
      `40.json  2 passed, 1 failed\n  ${broken.name} [40]: ax: expected ${expected}, got ${actual}\n8086: 2 passed, 1 failed in 1 file\n`,
    );
  });

  it("prints the report the README shows", async () => {
    const readme = readFileSync(join(repositoryRoot, "apps/cli/README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## `vmmkit cpu-test"));
    const shown = /```\n([\s\S]*?)```/.exec(section)?.[1];
    expect(shown).toBeDefined();
    const folder = sampleFolder(suite8086, "8086", ["00.json.gz"]);
    const tests = readTests(join(suite8086, "40.json.gz")).slice(0, 3);
    const edited = tests[1]!;
    edited.initial.regs.ax = 0x1234;
    edited.final.regs.ax = 0x1236;
    writeFileSync(join(folder, "40.json"), JSON.stringify(tests));
    const result = await vmmkit("cpu-test", folder);
    expect(result.stdout).toBe(shown);
    expect(result.status).toBe(1);
  });

  it("masks the flags metadata.json marks undefined, and compares them without it", async () => {
    // AAA leaves SF, ZF, PF and OF undefined on the 8086 (metadata "flags-mask" of 37).
    const metadata = JSON.parse(readFileSync(join(suite8086, "metadata.json"), "utf8"));
    const mask: number = metadata.opcodes["37"]["flags-mask"];
    expect(mask & 0x80).toBe(0); // SF is undefined
    const tests = readTests(join(suite8086, "37.json.gz")).slice(0, 5);
    for (const test of tests) test.final.regs.flags = (test.final.regs.flags ?? test.initial.regs.flags!) ^ 0x80;
    const withMetadata = join(temporaryDirectory(), "8086");
    mkdirSync(withMetadata);
    writeFileSync(join(withMetadata, "37.json.gz"), gzipSync(JSON.stringify(tests)));
    writeFileSync(join(withMetadata, "metadata.json"), JSON.stringify(metadata));
    const masked = await vmmkit("cpu-test", "--json", withMetadata);
    expect(JSON.parse(masked.stdout)).toEqual({ files: [{ name: "37.json.gz", passed: 5, failed: 0 }], passed: 5, failed: 0 });

    const withoutMetadata = join(temporaryDirectory(), "8086");
    mkdirSync(withoutMetadata);
    writeFileSync(join(withoutMetadata, "37.json.gz"), gzipSync(JSON.stringify(tests)));
    const unmasked = await vmmkit("cpu-test", withoutMetadata);
    expect(unmasked.status).toBe(1);
    expect(unmasked.stderr).toMatch(/^vmmkit: note: no metadata\.json in .*, so every flag was compared, including undefined ones\n$/);
    const lines = unmasked.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("37.json.gz  0 passed, 5 failed");
    // Each failure is in a flag the metadata calls undefined.
    const names: Record<string, number> = { OF: 0x800, SF: 0x80, ZF: 0x40, AF: 0x10, PF: 0x4, CF: 0x1 };
    for (const line of lines.slice(1, 6)) {
      const flag = /^ {2}aaa \[37\]: flag ([A-Z]F): expected [01], got [01]$/.exec(line)?.[1];
      expect(flag, line).toBeDefined();
      expect(mask & names[flag!]!, line).toBe(0);
    }
  });
});

describe("vmmkit cpu-test refuses bad input in one line", () => {
  const validTest = {
    name: "nop",
    bytes: [0x90],
    initial: { regs: { ax: 0, bx: 0, cx: 0, dx: 0, cs: 0, ss: 0, ds: 0, es: 0, sp: 0x100, bp: 0, si: 0, di: 0, ip: 0x100, flags: 0xf002 }, ram: [[0x100, 0x90]] },
    final: { regs: { ip: 0x101 }, ram: [[0x100, 0x90]] },
  };
  const inModelFolder = (name: string, content: string | Uint8Array) => {
    const folder = join(temporaryDirectory(), "8086");
    mkdirSync(folder);
    writeFileSync(join(folder, name), content);
    return join(folder, name);
  };

  it("a missing path", async () => {
    expectOneLineRefusal(await vmmkit("cpu-test", "/nonexistent/8086/00.json.gz"), /^vmmkit: cannot read \/nonexistent\/8086\/00\.json\.gz: no such file or folder\n$/);
  });

  it("a file that is not JSON", async () => {
    expectOneLineRefusal(await vmmkit("cpu-test", inModelFolder("00.json", "this is not JSON\n")), /^vmmkit: .*00\.json is not JSON \(.*\); SingleStepTests files are JSON arrays/);
  });

  it("a corrupt gzip file", async () => {
    expectOneLineRefusal(await vmmkit("cpu-test", inModelFolder("00.json.gz", Uint8Array.of(0x1f, 0x8b, 8, 0, 1, 2, 3))), /^vmmkit: .*00\.json\.gz is not a valid gzip file/);
  });

  it("JSON that is not an array of tests", async () => {
    expectOneLineRefusal(await vmmkit("cpu-test", inModelFolder("00.json", '{"name": "x"}')), /^vmmkit: .*00\.json holds JSON but not an array of tests\n$/);
    expectOneLineRefusal(await vmmkit("cpu-test", inModelFolder("00.json", "[]")), /^vmmkit: .*00\.json holds no tests\n$/);
  });

  it("a malformed test object, named by index and name", async () => {
    const broken = { ...validTest, name: "broken nop", initial: { ...validTest.initial, regs: { ...validTest.initial.regs, ax: "zero" } } };
    const path = inModelFolder("90.json", JSON.stringify([validTest, broken]));
    expectOneLineRefusal(await vmmkit("cpu-test", path), /^vmmkit: .*90\.json: test 1 \("broken nop"\) is malformed: "initial\.regs\.ax" is not a 16-bit value\n$/);
    const noBytes = { ...validTest, bytes: undefined };
    expectOneLineRefusal(await vmmkit("cpu-test", inModelFolder("90.json", JSON.stringify([noBytes]))), /test 0 \("nop"\) is malformed: "bytes" is not a list of byte values\n$/);
    const badRam = { ...validTest, final: { ...validTest.final, ram: [[0x100]] } };
    expectOneLineRefusal(await vmmkit("cpu-test", inModelFolder("90.json", JSON.stringify([badRam]))), /"final\.ram" holds \[256\], not an \[address below 16 MiB, byte\] pair\n$/);
  });

  it("a folder without test files", async () => {
    const folder = join(temporaryDirectory(), "8086");
    mkdirSync(folder);
    writeFileSync(join(folder, "readme.txt"), "nothing here");
    expectOneLineRefusal(await vmmkit("cpu-test", folder), /^vmmkit: .*8086 holds no test files \(\*\.json\.gz or \*\.json\)\n$/);
  });

  it("a folder whose name does not say which CPU, unless --cpu does", async () => {
    const path = temporaryFile("90.json", JSON.stringify([validTest]));
    expectOneLineRefusal(await vmmkit("cpu-test", path), /^vmmkit: cannot tell which CPU recorded the tests in .*; pass --cpu 8086 or --cpu 80286\n$/);
    const withCpu = await vmmkit("cpu-test", "--cpu", "8086", path);
    expect(withCpu.stdout).toBe("90.json  1 passed, 0 failed\n8086: 1 passed, 0 failed in 1 file\n");
    expect(withCpu.status).toBe(0);
  });

  it("a malformed metadata.json", async () => {
    const path = inModelFolder("90.json", JSON.stringify([validTest]));
    writeFileSync(join(path, "..", "metadata.json"), "{ not json");
    expectOneLineRefusal(await vmmkit("cpu-test", path), /^vmmkit: .*metadata\.json is not valid JSON/);
  });

  it("an unknown --cpu", async () => {
    const result = await vmmkit("cpu-test", "--cpu", "80386", "/tmp");
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/argument '80386' is invalid\. Allowed choices are 8086, 80286/);
  });
});
