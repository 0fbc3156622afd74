/**
 * Differential test of the 32-bit instruction set against qemu-system-i386: random
 * instruction sequences (apps/cli/test/cpu-diff-generator.ts) run inside the
 * guests/cpu-diff harness under vmmkit and under QEMU; after every instruction both log
 * the general registers and EFLAGS, which must agree on everything the SDM defines.
 * VMMKIT_DIFF_SEED=<n> reproduces one program.
 */
import { readFileSync } from "node:fs";
import { disassemble } from "@vmmkit/cpu";
import { describe, expect, it } from "vitest";
import { ARITHMETIC_FLAGS, generateProgram, parseRun } from "./cpu-diff-generator.js";
import { guest, temporaryFile, vmmkit } from "./helpers.js";
import { qemuAvailable, runUnderQemu } from "./qemu.js";

const harness = new Uint8Array(readFileSync(guest("cpu-diff/harness.bin")));
const REGISTERS = ["eax", "ecx", "edx", "ebx", "ebp", "esi", "edi"];
const INSTRUCTIONS = 1500;

function hex(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, "0")}`;
}

async function compare(seed: number): Promise<void> {
  const program = generateProgram(harness, seed, INSTRUCTIONS);
  const kernel = temporaryFile(`cpu-diff-${seed}.bin`, program.image);
  const qemu = runUnderQemu(kernel);
  const ours = await vmmkit("run", kernel);
  expect(qemu.status, `QEMU did not finish the program of seed ${seed}`).toBe(33);
  expect(ours.status, `vmmkit did not finish the program of seed ${seed}: ${ours.stderr}`).toBe(33);
  const reference = parseRun(qemu.stdout);
  const actual = parseRun(ours.stdout);
  expect(reference.states).toHaveLength(program.steps.length);
  expect(actual.states).toHaveLength(program.steps.length);
  for (let step = 0; step < program.steps.length; step++) {
    const { bytes, definedFlags } = program.steps[step]!;
    const want = reference.states[step]!;
    const got = actual.states[step]!;
    const flagMask = (~ARITHMETIC_FLAGS | definedFlags) >>> 0;
    const differences: string[] = [];
    for (let r = 0; r < 7; r++) if (want[r] !== got[r]) differences.push(`${REGISTERS[r]}: QEMU ${hex(want[r]!)}, vmmkit ${hex(got[r]!)}`);
    if (((want[7]! ^ got[7]!) & flagMask) !== 0) differences.push(`eflags (defined bits ${hex(flagMask)}): QEMU ${hex(want[7]!)}, vmmkit ${hex(got[7]!)}`);
    if (differences.length > 0) {
      const text = disassemble(Uint8Array.from(bytes), { bits: 32, address: 0 }).text;
      const before = reference.states[step - 1]!.map(hex).join(" ");
      throw new Error(`seed ${seed}, instruction ${step} (${text}; bytes ${bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ")}), state before ${before}:\n  ${differences.join("\n  ")}`);
    }
  }
  expect(actual.scratch).toEqual(reference.scratch);
}

describe.runIf(qemuAvailable || process.env.CI)("32-bit instructions, differential against qemu-system-i386", () => {
  it("qemu-system-i386 is installed (CI must have it)", () => {
    expect(qemuAvailable).toBe(true);
  });

  const fixed = process.env.VMMKIT_DIFF_SEED;
  const seeds = fixed !== undefined ? [Number(fixed)] : [1, Math.floor(Math.random() * 2 ** 31), Math.floor(Math.random() * 2 ** 31)];
  for (const seed of seeds) {
    it(`agrees with QEMU on ${INSTRUCTIONS} random instructions (seed ${seed})`, () => compare(seed), 120_000);
  }
});
