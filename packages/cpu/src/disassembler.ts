/**
 * The disassembler: every integer instruction from the 8086 to the Pentium Pro, and the x87
 * escapes, in 16- and 32-bit code, as Intel-syntax text (NASM flavour: lower case, hex
 * immediates, `byte`/`word`/`dword` where a memory operand's size is not implied by a
 * register, relative branches shown as their target). The length it reports is exact, so
 * debuggers can step over instructions and translators can cut blocks with it.
 */
import type { CpuModel } from "./cpu.js";
import { InstructionDecoder, TruncatedInstruction, type DecodedInstruction } from "./disassembler/decoder.js";
import type { ControlFlow } from "./disassembler/opcode-table.js";
import { CpuError, hex } from "./errors.js";

export type { ControlFlow } from "./disassembler/opcode-table.js";

export interface DisassemblyOptions {
  /**
   * Offset of the instruction's first byte in its code segment (IP or EIP; in flat 32-bit
   * code, the linear address). Relative branch targets are computed from it. At most 0xFFFF
   * in 16-bit code, where byte offsets wrap around at 64 KiB as IP does.
   */
  readonly address: number;
  /** The code segment's default operand and address size: 16 (real mode, 16-bit segments) or 32. */
  readonly bits: 16 | 32;
  /** Which instructions exist (encodings a model lacks read "(bad)"); default "pentium-pro". */
  readonly model?: CpuModel;
}

export interface DisassembledInstruction {
  /** Offset of the first byte, as given (`options.address` or the running offset). */
  readonly address: number;
  /**
   * Length in bytes, prefixes included. For "(bad)": the prefixes and opcode bytes, plus the
   * ModR/M byte and displacement when the opcode exists but this form of it does not (a
   * reserved reg field, a register where memory is required), or all of it when only LOCK
   * makes it undefined; 15 when the instruction would be longer than 15 bytes.
   */
  readonly length: number;
  /** A copy of the instruction's bytes. */
  readonly bytes: Uint8Array;
  /** The whole instruction: `prefixes`, `mnemonic` and `operands` joined, e.g. "lock add [bx+si+0x10], ax". */
  readonly text: string;
  /** "add", "rep"-less string mnemonics such as "movsb", or "(bad)" for an undefined encoding. */
  readonly mnemonic: string;
  readonly operands: readonly string[];
  /**
   * Prefixes the operands do not already show, in byte order: "lock", "rep"/"repe"/"repne",
   * a segment ("cs") that no memory operand took, "o16"/"o32" and "a16"/"a32" where the
   * operand or address size is otherwise invisible.
   */
  readonly prefixes: readonly string[];
  /**
   * False for "(bad)": an encoding the model does not define, which raises #UD there (or #GP,
   * beyond 15 bytes). LOCK before an instruction that cannot be locked counts as undefined
   * from the 80386 on; the 8086 and 80286 accept it.
   */
  readonly valid: boolean;
  /** How the instruction can change the flow of control ("interrupt" also for "(bad)" and UD2). */
  readonly flow: ControlFlow;
  /** Target offset of a relative branch, call or loop (wrapped to the operand size); else undefined. */
  readonly target: number | undefined;
}

/** Reads the byte at an offset of the code segment: 0-255, or a negative number where there is none. */
export type ByteReader = (offset: number) => number;

// The same levels as the interpreter's (cpu.ts), so both agree on which instructions exist.
const MODEL_LEVEL: Record<CpuModel, number> = { "8086": 0, "80286": 2, "80386": 3, "pentium-pro": 6 };

interface CheckedOptions {
  readonly address: number;
  readonly bits: 16 | 32;
  readonly level: number;
  readonly offsetMask: number;
}

function checkOptions(options: DisassemblyOptions, what: string): CheckedOptions {
  if (typeof options !== "object" || options === null) {
    throw new CpuError("ERR_CPU_INVALID_ARGUMENT", `${what}: options { address, bits } are required`);
  }
  const { address, bits } = options;
  const model = options.model ?? "pentium-pro";
  if (!Object.hasOwn(MODEL_LEVEL, model)) {
    throw new CpuError("ERR_CPU_INVALID_ARGUMENT", `${what}: unknown CPU model ${JSON.stringify(model)} (use 8086, 80286, 80386 or pentium-pro)`);
  }
  if (bits !== 16 && bits !== 32) {
    throw new CpuError("ERR_CPU_INVALID_ARGUMENT", `${what}: bits must be 16 or 32, got ${String(bits)}`);
  }
  const level = MODEL_LEVEL[model];
  if (bits === 32 && level < 3) {
    throw new CpuError("ERR_CPU_INVALID_ARGUMENT", `${what}: the ${model} has no 32-bit code segments (bits: 32 needs the 80386 or later)`);
  }
  const offsetMask = bits === 16 ? 0xffff : 0xffffffff;
  if (!Number.isInteger(address) || address < 0 || address > offsetMask) {
    throw new CpuError(
      "ERR_CPU_INVALID_ARGUMENT",
      `${what}: address ${String(address)} is not an offset of ${bits}-bit code (an integer from 0 to ${hex(offsetMask)})`,
    );
  }
  return { address, bits, level, offsetMask };
}

function render(decoded: DecodedInstruction): string {
  const body = decoded.operands.length > 0 ? `${decoded.mnemonic} ${decoded.operands.join(", ")}` : decoded.mnemonic;
  return decoded.prefixes.length > 0 ? `${decoded.prefixes.join(" ")} ${body}` : body;
}

function result(decoded: DecodedInstruction, address: number, bytes: Uint8Array): DisassembledInstruction {
  return {
    address,
    length: decoded.length,
    bytes,
    text: render(decoded),
    mnemonic: decoded.mnemonic,
    operands: decoded.operands,
    prefixes: decoded.prefixes,
    valid: decoded.valid,
    flow: decoded.flow,
    target: decoded.target,
  };
}

/**
 * Disassembles the instruction at the start of `bytes` (extra bytes after it are ignored).
 * Throws `CpuError` (`ERR_CPU_INVALID_ARGUMENT`) for bad options or when `bytes` ends inside
 * the instruction.
 *
 * @example
 * disassemble(new Uint8Array([0x80, 0x40, 0x10, 0x05]), { address: 0x7c00, bits: 16 }).text;
 * // "add byte [bx+si+0x10], 0x5"
 */
export function disassemble(bytes: Uint8Array, options: DisassemblyOptions): DisassembledInstruction {
  const checked = checkOptions(options, "disassemble");
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new CpuError("ERR_CPU_INVALID_ARGUMENT", "disassemble: bytes must be a non-empty Uint8Array");
  }
  let decoded: DecodedInstruction;
  try {
    decoded = new InstructionDecoder().decode((index) => (index < bytes.length ? bytes[index]! : -1), checked.address, checked.bits, checked.level);
  } catch (error) {
    if (error instanceof TruncatedInstruction) {
      const shown = Array.from(bytes.subarray(0, 16), (byte) => byte.toString(16).padStart(2, "0")).join(" ");
      throw new CpuError(
        "ERR_CPU_INVALID_ARGUMENT",
        `disassemble: the instruction at ${hex(checked.address)} is longer than the ${bytes.length} byte(s) given (${shown})`,
      );
    }
    throw error;
  }
  return result(decoded, checked.address, bytes.slice(0, decoded.length));
}

/**
 * Disassembles up to `count` consecutive instructions, reading bytes through `readByte`
 * (for debuggers and the CLI, which read guest memory). Stops early, without an error, at
 * the first instruction that runs into a byte `readByte` cannot supply (a negative value).
 */
export function disassembleFrom(readByte: ByteReader, options: DisassemblyOptions & { readonly count: number }): DisassembledInstruction[] {
  const checked = checkOptions(options, "disassembleFrom");
  if (typeof readByte !== "function") throw new CpuError("ERR_CPU_INVALID_ARGUMENT", "disassembleFrom: readByte must be a function");
  const count = options.count;
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new CpuError("ERR_CPU_INVALID_ARGUMENT", `disassembleFrom: count must be a non-negative integer, got ${String(count)}`);
  }
  const decoder = new InstructionDecoder();
  const wrap = checked.bits === 16 ? (offset: number) => offset & 0xffff : (offset: number) => offset >>> 0;
  const instructions: DisassembledInstruction[] = [];
  let address = checked.address;
  const fetched = new Uint8Array(16);
  for (let n = 0; n < count; n++) {
    const start = address;
    const fetch = (index: number): number => {
      const value = readByte(wrap(start + index));
      if (Number.isInteger(value) && value >= 0 && value <= 0xff) fetched[index] = value;
      else return -1;
      return value;
    };
    let decoded: DecodedInstruction;
    try {
      decoded = decoder.decode(fetch, start, checked.bits, checked.level);
    } catch (error) {
      if (error instanceof TruncatedInstruction) break;
      throw error;
    }
    instructions.push(result(decoded, start, fetched.slice(0, decoded.length)));
    address = wrap(start + decoded.length);
  }
  return instructions;
}
