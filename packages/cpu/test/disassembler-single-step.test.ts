/**
 * The disassembler against the SingleStepTests data (../shared/testdata/cpu): about 130 000
 * real 16-bit instructions recorded on an 8086 and an 80286. Each test's `bytes` is one
 * instruction (on the 286 followed by the F4 the recording stops at), so it is an independent
 * source of exact lengths; its `name` is a disassembly by the suites' authors, compared in
 * canonical form (disassembly-text.ts) with the differences listed in NAME_DIFFERENCES.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { disassemble, disassembleFrom, type DisassembledInstruction } from "../src/disassembler.js";
import { dataAvailable, SHARED_CPU_DATA, suiteFiles, suiteFolder } from "./single-step-data.js";
import { canonicalDisassembly, isUndefinedText } from "./disassembly-text.js";

type Model = "8086" | "80286";

interface Sample {
  readonly model: Model;
  readonly file: string;
  readonly name: string;
  /** The recorded bytes (on the 286 with the trailing F4). */
  readonly bytes: readonly number[];
  /** The instruction's own bytes (the 286's trailing F4 removed). */
  readonly instruction: Uint8Array;
  /** The exception the 286 took, if any. */
  readonly exception: number | undefined;
}

const available = dataAvailable();

if (!available && process.env.CI) {
  it("finds the SingleStepTests data (required in CI)", () => {
    expect.fail(`SingleStepTests data missing at ${SHARED_CPU_DATA}`);
  });
}

/**
 * Reads name, bytes and exception of every test. Each test is one line of its file; picking
 * three fields with regular expressions is four times faster than JSON.parse of the whole
 * file, whose bulk is the cycle traces.
 */
function load(model: Model): Sample[] {
  const samples: Sample[] = [];
  for (const file of suiteFiles(model)) {
    const text = gunzipSync(readFileSync(join(suiteFolder(model), file))).toString("utf8");
    for (const line of text.split("\n")) {
      const fields = /"name":("(?:[^"\\]|\\.)*"),"bytes":\[([0-9,]*)\]/.exec(line);
      if (!fields) continue;
      const bytes = fields[2]!.split(",").map(Number);
      const exception = /"exception":\{"number":(\d+)/.exec(line);
      samples.push({
        model,
        file,
        name: JSON.parse(fields[1]!) as string,
        bytes,
        instruction: Uint8Array.from(model === "80286" ? bytes.slice(0, -1) : bytes),
        exception: exception ? Number(exception[1]) : undefined,
      });
    }
  }
  return samples;
}

interface NameDifference {
  readonly reason: string;
  /** `expected` and `actual`: the name's and vmmkit's text in canonical form. */
  readonly applies: (sample: Sample, mine: DisassembledInstruction, expected: string, actual: string) => boolean;
}

/** Where vmmkit's text and the suites' names differ, and why vmmkit's is right or equivalent. */
const NAME_DIFFERENCES: readonly NameDifference[] = [
  {
    reason: "the 8086 names call every x87 escape (D8-DF) \"esc\" with a made-up operand; vmmkit names the x87 instruction (the memory operand is compared)",
    applies: (sample, mine, expected, actual) => {
      if (sample.model !== "8086" || !expected.startsWith("esc ")) return false;
      const operand = (text: string) => text.slice(text.lastIndexOf(" ") + 1).split(",").pop();
      // Register forms: the names show a made-up general register; vmmkit the x87 register.
      return /^f|^esc$/.test(mine.mnemonic) && (expected.includes("[") ? operand(expected) === operand(actual) : !actual.includes("["));
    },
  },
  {
    reason: "the 8086 names leave out REP and REPNE before an instruction that is not a string instruction; vmmkit shows them (on the 8086 they negate the quotient of IDIV)",
    applies: (sample, _mine, expected, actual) => sample.model === "8086" && actual.replace(/\brepn?e? /, "") === expected,
  },
  {
    reason:
      "the recorded 80286 raised #UD (exception 6) where vmmkit says (bad), but the names decode it: MOV CS, segment registers 4-7, and C4/C5 with a register operand (LES/LDS) read as VEX",
    applies: (sample, mine) => sample.model === "80286" && sample.exception === 6 && !mine.valid,
  },
  {
    reason: "LEA computes an offset, so the 80286 names leave out its segment prefix; vmmkit shows the prefix the bytes hold",
    applies: (sample, mine) => sample.model === "80286" && mine.mnemonic === "lea" && /\[[cdefgs]s:/.test(mine.operands[1] ?? ""),
  },
];

/**
 * Names whose recorded bytes are not one instruction of the recording CPU: "(bad)", and the
 * 286 names that decode C4/C5 as VEX (their bytes were generated for that reading).
 */
function lengthRecorded(sample: Sample): boolean {
  return !isUndefinedText(sample.name) && !/^v[a-z0-9]+ /.test(sample.name);
}

/** Presentation differences of the suites' names beyond disassembly-text.ts. */
function nameCanonical(sample: Sample, text: string): string {
  let adjusted = text
    // The 8086 names write hex as "FFE3h": upper-case digits, so never a register like "ah".
    .replace(/\b([0-9A-F]+)h\b/g, (_whole, digits: string) => `0x${digits}`)
    // The 8086 names write far indirect transfers as "callf word [...]".
    .replace(/^(callf|jmpf) (word|dword) \[/, (_whole, mnemonic: string) => `${mnemonic.slice(0, -1)} far [`);
  const canonical = canonicalDisassembly(adjusted, { bits: 16, bytes: sample.instruction });
  // F2 before MOVS/LODS/STOS/INS/OUTS repeats like F3; the 8086 names call both "rep".
  adjusted = /(movs|lods|stos|ins|outs)[bw]$/.test(canonical) ? canonical.replace(/\brepne\b/, "rep") : canonical;
  // The 8086 names write a shift or rotate by one without the count.
  adjusted = adjusted.replace(/^((?:[a-z]+ )*(?:rol|ror|rcl|rcr|shl|shr|sar) [^,]+)$/, "$1,0x1");
  // The names leave out segment prefixes no memory operand takes (except on MOVS/CMPS/LODS/OUTS).
  if (!/\[/.test(adjusted) && !/(movs|cmps|lods|outs)[bw]$/.test(adjusted)) adjusted = adjusted.replace(/\b(cs|ds|es|ss|fs|gs) /g, "");
  return adjusted;
}

describe.skipIf(!available).each(["8086", "80286"] as const)("SingleStepTests %s", (model) => {
  const samples = available ? load(model) : [];

  it("decodes every recorded instruction to its exact length", () => {
    expect(samples.length).toBeGreaterThan(60_000);
    const failures: string[] = [];
    for (const sample of samples) {
      if (!lengthRecorded(sample)) continue;
      const mine = disassemble(Uint8Array.from(sample.bytes), { address: 0, bits: 16, model });
      if (mine.length !== sample.instruction.length) {
        failures.push(`${sample.file} ${hex(sample.instruction)} "${sample.name}": length ${mine.length}, recorded ${sample.instruction.length}`);
      }
    }
    expect(failures.slice(0, 20), `${failures.length} of ${samples.length}`).toEqual([]);
  });

  it("names each instruction as the suite does, up to the listed differences", () => {
    const failures: string[] = [];
    const used = new Map<string, number>();
    for (const sample of samples) {
      // Padded: the recorded bytes of an undefined encoding can end inside what it would be.
      // Address 0: the names show branch targets relative to the instruction's start.
      const mine = disassemble(Uint8Array.from([...sample.bytes, ...new Array<number>(15).fill(0x90)]), {
        address: 0,
        bits: 16,
        model,
      });
      const expected = nameCanonical(sample, sample.name);
      const actual = nameCanonical(sample, mine.text);
      if (expected === actual) continue;
      const difference = NAME_DIFFERENCES.find((candidate) => candidate.applies(sample, mine, expected, actual));
      if (difference) {
        used.set(difference.reason, (used.get(difference.reason) ?? 0) + 1);
        continue;
      }
      failures.push(`${sample.file} ${hex(sample.instruction)}: "${mine.text}" vs "${sample.name}" (${actual} <> ${expected})`);
    }
    expect(failures.slice(0, 20), `${failures.length} of ${samples.length}`).toEqual([]);
    const reasons = NAME_DIFFERENCES.filter((difference) => (model === "8086" ? /8086/ : /80286/).test(difference.reason)).map((difference) => difference.reason);
    expect(reasons.filter((reason) => !used.has(reason)), "differences listed for this suite but never seen").toEqual([]);
  });

  // The 286 suite records #UD; the 8086 has none.
  if (model === "80286") it("calls (bad) exactly what the recorded 80286 rejected with #UD", () => {
    const disagreements: string[] = [];
    let undefinedOpcodes = 0;
    for (const sample of samples) {
      const mine = disassemble(Uint8Array.from([...sample.bytes, ...new Array<number>(15).fill(0x90)]), { address: 0, bits: 16, model });
      // Exception 6 also follows INT 6; the README of the suite lists INT n among the sources.
      const invalidOpcode = sample.exception === 6 && mine.mnemonic !== "int";
      if (invalidOpcode) undefinedOpcodes++;
      if (invalidOpcode === mine.valid) disagreements.push(`${sample.file} ${hex(sample.instruction)} "${sample.name}": vmmkit "${mine.text}", #UD ${invalidOpcode ? "recorded" : "not recorded"}`);
    }
    expect(undefinedOpcodes).toBeGreaterThan(300);
    expect(disagreements.slice(0, 20), `${disagreements.length} disagreements`).toEqual([]);
  });

  it("keeps lengths exact whatever follows, wherever it sits, and with more segment prefixes (fast-check)", () => {
    const decodable = samples.filter(lengthRecorded);
    const segmentPrefixes = [0x26, 0x2e, 0x36, 0x3e];
    fc.assert(
      fc.property(
        fc.nat({ max: decodable.length - 1 }).map((index) => decodable[index]!),
        fc.array(fc.constantFrom(...segmentPrefixes), { maxLength: 3 }),
        fc.uint8Array({ minLength: 0, maxLength: 16 }),
        fc.integer({ min: 0, max: 0xffff }),
        (sample, prefixes, trailing, address) => {
          fc.pre(prefixes.length + sample.instruction.length <= 15);
          const bytes = Uint8Array.from([...prefixes, ...sample.instruction, ...trailing]);
          const one = disassemble(bytes, { address, bits: 16, model });
          expect(one.length).toBe(prefixes.length + sample.instruction.length);
          // The same through the reader API, placed at `address` in a 64 KiB segment (wrapping).
          const memory = new Uint8Array(0x10000);
          bytes.forEach((byte, index) => (memory[(address + index) & 0xffff] = byte));
          const [viaReader] = disassembleFrom((offset) => memory[offset]!, { address, bits: 16, model, count: 1 });
          expect(viaReader?.length).toBe(one.length);
          expect(viaReader?.text).toBe(one.text);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

function hex(bytes: ArrayLike<number>): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(" ");
}
