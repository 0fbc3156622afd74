/**
 * Decodes one instruction into its length and Intel-syntax text. Cold path (debugger, CLI,
 * translation-block building): clarity over speed, but no work beyond one pass over the bytes.
 */
import {
  LOADALL,
  ONE_BYTE_MAP,
  ONE_BYTE_MAP_8086,
  TWO_BYTE_MAP,
  type ControlFlow,
  type OpcodeEntry,
  type OperandKind,
} from "./opcode-table.js";
import { X87_MEMORY_FORMS, X87_REGISTER_FORMS } from "./x87.js";

/** Longest instruction the 80386 and later accept; the decoder stops there on every model. */
export const MAX_INSTRUCTION_LENGTH = 15;

/** Reads byte `index` (0 = the first byte) of the instruction; a negative value: no byte there. */
export type InstructionFetch = (index: number) => number;

export interface DecodedInstruction {
  readonly length: number;
  readonly mnemonic: string;
  readonly operands: readonly string[];
  readonly prefixes: readonly string[];
  readonly valid: boolean;
  readonly flow: ControlFlow;
  readonly target: number | undefined;
}

/** Thrown (and caught by the caller) when the fetch callback has no byte for the instruction. */
export class TruncatedInstruction {
  constructor(readonly available: number) {}
}

class TooLong {}
const TOO_LONG = new TooLong();

const REG8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];
const REG16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];
const REG32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const SEGMENT = ["es", "cs", "ss", "ds", "fs", "gs"];
const BASE16 = ["bx+si", "bx+di", "bp+si", "bp+di", "si", "di", "bp", "bx"];
const SIZE_KEYWORD: Record<number, string> = { 1: "byte", 2: "word", 4: "dword", 8: "qword", 10: "tword" };

const MODRM_OPERANDS = new Set<OperandKind>(["Eb", "Ew", "Ed", "Ev", "Ey", "Gb", "Gw", "Gv", "Sw", "Cd", "Dd", "Rd", "M", "Mp", "Ma", "Mq"]);

/** Instructions LOCK may precede, when their destination is in memory (#UD otherwise, from the 80386 on). */
const LOCKABLE = new Set(["add", "adc", "and", "btc", "btr", "bts", "cmpxchg", "cmpxchg8b", "dec", "inc", "neg", "not", "or", "sbb", "sub", "xor", "xadd", "xchg"]);

const LOCKABLE_DESTINATIONS = new Set<OperandKind>(["Eb", "Ew", "Ed", "Ev", "Mq"]);

const hex = (value: number) => "0x" + (value >>> 0).toString(16);
const signedHex = (value: number) => (value < 0 ? "-" + hex(-value) : "+" + hex(value));

/** Prefix bytes per model level: the 8086 also treats F1 as LOCK; the 80386 adds FS, GS, 66, 67. */
function isPrefix(byte: number, level: number): boolean {
  switch (byte) {
    case 0x26: case 0x2e: case 0x36: case 0x3e: case 0xf0: case 0xf2: case 0xf3:
      return true;
    case 0xf1:
      return level === 0;
    case 0x64: case 0x65: case 0x66: case 0x67:
      return level >= 3;
    default:
      return false;
  }
}

interface Operand {
  readonly text: string;
  /** Register operands that fix the size of a memory operand: their size in bytes; else 0. */
  readonly registerSize: number;
  /** Memory operand: its size in bytes (0 = no size keyword ever), else -1. */
  readonly memorySize: number;
}

export class InstructionDecoder {
  private fetch: InstructionFetch = () => -1;
  private level = 6;
  private bits = 32;
  private address = 0;
  private position = 0;

  // Prefixes: the effective value and the index of the byte that set it (for the text order).
  private segment = -1;
  private segmentIndex = -1;
  private lockIndex = -1;
  private repeat = 0;
  private repeatIndex = -1;
  private operandPrefixIndex = -1;
  private addressPrefixIndex = -1;
  private operandSize = 32;
  private addressSize = 32;

  private operandSizeShown = false;
  private addressSizeShown = false;
  private segmentShown = false;

  // ModR/M
  private mod = 0;
  private reg = 0;
  private rm = 0;
  private memoryText = "";

  private target: number | undefined = undefined;
  /** The last opcode byte (its low three bits name the register of the Zb/Zv forms). */
  private opcode = 0;

  /**
   * Decodes the instruction whose bytes `fetch` returns. `address` is its offset (IP/EIP), used
   * for relative branch targets; `bits` the code segment's default size; `level` the model level.
   */
  decode(fetch: InstructionFetch, address: number, bits: 16 | 32, level: number): DecodedInstruction {
    this.fetch = fetch;
    this.address = address;
    this.bits = bits;
    this.level = level;
    this.position = 0;
    this.segment = -1;
    this.segmentIndex = -1;
    this.lockIndex = -1;
    this.repeat = 0;
    this.repeatIndex = -1;
    this.operandPrefixIndex = -1;
    this.addressPrefixIndex = -1;
    this.operandSize = bits;
    this.addressSize = bits;
    this.operandSizeShown = false;
    this.addressSizeShown = false;
    this.segmentShown = false;
    this.target = undefined;
    this.mod = 3;
    try {
      return this.decodeInstruction();
    } catch (error) {
      if (error === TOO_LONG) return this.bad(MAX_INSTRUCTION_LENGTH);
      throw error;
    }
  }

  private byte(): number {
    if (this.position >= MAX_INSTRUCTION_LENGTH) throw TOO_LONG;
    const value = this.fetch(this.position);
    if (!(value >= 0 && value <= 0xff)) throw new TruncatedInstruction(this.position);
    this.position++;
    return value;
  }

  private word(): number {
    const low = this.byte();
    return low | (this.byte() << 8);
  }

  private dword(): number {
    const low = this.word();
    return (low | (this.word() << 16)) >>> 0;
  }

  private bad(length = this.position): DecodedInstruction {
    return { length, mnemonic: "(bad)", operands: [], prefixes: [], valid: false, flow: "interrupt", target: undefined };
  }

  private decodeInstruction(): DecodedInstruction {
    const level = this.level;
    let opcode: number;
    for (;;) {
      const index = this.position;
      opcode = this.byte();
      if (!isPrefix(opcode, level)) break;
      switch (opcode) {
        case 0x26: case 0x2e: case 0x36: case 0x3e:
          this.segment = (opcode >> 3) & 3;
          this.segmentIndex = index;
          break;
        case 0x64: case 0x65:
          this.segment = opcode - 0x60;
          this.segmentIndex = index;
          break;
        case 0x66:
          this.operandSize = this.bits === 32 ? 16 : 32;
          this.operandPrefixIndex = index;
          break;
        case 0x67:
          this.addressSize = this.bits === 32 ? 16 : 32;
          this.addressPrefixIndex = index;
          break;
        case 0xf0: case 0xf1:
          if (this.lockIndex < 0) this.lockIndex = index;
          break;
        default: // F2, F3: the last one counts
          this.repeat = opcode;
          this.repeatIndex = index;
      }
    }

    this.opcode = opcode;
    if (opcode >= 0xd8 && opcode <= 0xdf) return this.decodeX87(opcode - 0xd8);

    let entry: OpcodeEntry | undefined;
    if (opcode === 0x0f && level >= 2) {
      const second = this.byte();
      this.opcode = second;
      entry = TWO_BYTE_MAP[second];
      if ((second === 0x05 && level === 2) || (second === 0x07 && level === 3)) entry = LOADALL;
    } else {
      entry = (level === 0 ? ONE_BYTE_MAP_8086 : ONE_BYTE_MAP)[opcode];
    }
    if (entry === undefined || entry.level > level) return this.bad();

    if (entry.group !== undefined) {
      this.readModrm();
      entry = entry.group[this.reg];
      if (entry === undefined || entry.level > level) return this.bad();
    } else if (entry.operands.includes("Rd")) {
      // MOV to and from CRn/DRn ignore the mod field: r/m always names a register.
      this.readModrm(true);
    } else if (entry.operands.some(needsModrm)) {
      this.readModrm();
    }
    if (!this.operandsValid(entry)) return this.bad();

    const operands: Operand[] = [];
    for (const kind of entry.operands) operands.push(this.operand(kind));
    // From the 80386 on, LOCK is #UD unless the instruction can be locked and writes memory.
    if (this.lockIndex >= 0 && level >= 3 && !(LOCKABLE.has(entry.mnemonic) && this.mod !== 3 && LOCKABLE_DESTINATIONS.has(entry.operands[0]!))) {
      return this.bad();
    }
    const texts = operands.map((operand, index) => {
      if (operand.memorySize <= 0) return operand.text;
      // A size keyword unless another operand is a register of the same size.
      const implied = operands.some((other, otherIndex) => otherIndex !== index && other.registerSize === operand.memorySize);
      if (implied) return operand.text;
      if (entry.operands[index] === "Ev" || entry.operands[index] === "Ov") this.operandSizeShown = true;
      return `${SIZE_KEYWORD[operand.memorySize]} ${operand.text}`;
    });
    if (entry.far) texts[0] = "far " + texts[0];
    if (entry.loop && this.addressPrefixIndex >= 0) {
      texts.push(this.addressSize === 32 ? "ecx" : "cx");
      this.addressSizeShown = true;
    }

    let mnemonic = entry.mnemonic;
    if (entry.addressSizeMnemonic) {
      if (this.addressSize === 32) mnemonic = entry.mnemonic32;
      this.addressSizeShown = true;
    } else if (entry.mnemonic32 !== entry.mnemonic) {
      if (this.operandSize === 32) mnemonic = entry.mnemonic32;
      this.operandSizeShown = true;
    }
    // The 8086's MOV CS, r/m loads CS: a jump, like its POP CS.
    const flow = level === 0 && entry.operands[0] === "Sw" && (this.reg & 3) === 1 ? "jump" : entry.flow;
    return this.finish(mnemonic, texts, flow, entry.stringKind);
  }

  /** Assembles the result: prefix words for prefixes the operands do not already show. */
  private finish(mnemonic: string, operands: readonly string[], flow: ControlFlow, stringKind: number): DecodedInstruction {
    const words: [number, string][] = [];
    if (this.segmentIndex >= 0 && !this.segmentShown) words.push([this.segmentIndex, SEGMENT[this.segment]!]);
    if (this.operandPrefixIndex >= 0 && !this.operandSizeShown) words.push([this.operandPrefixIndex, this.operandSize === 32 ? "o32" : "o16"]);
    if (this.addressPrefixIndex >= 0 && !this.addressSizeShown) words.push([this.addressPrefixIndex, this.addressSize === 32 ? "a32" : "a16"]);
    if (this.lockIndex >= 0) words.push([this.lockIndex, "lock"]);
    if (this.repeatIndex >= 0) {
      const name = this.repeat === 0xf2 ? "repne" : stringKind === 2 ? "repe" : "rep";
      words.push([this.repeatIndex, name]);
    }
    words.sort((a, b) => a[0] - b[0]);
    return {
      length: this.position,
      mnemonic,
      operands,
      prefixes: words.map(([, word]) => word),
      valid: true,
      flow,
      target: this.target,
    };
  }

  private decodeX87(escape: number): DecodedInstruction {
    this.readModrm();
    if (this.lockIndex >= 0 && this.level >= 3) return this.bad();
    if (this.mod !== 3) {
      const form = X87_MEMORY_FORMS[escape]![this.reg];
      if (form === undefined || form.level > this.level) return this.escape(escape);
      const text = form.size === 0 ? this.memoryText : `${SIZE_KEYWORD[form.size]} ${this.memoryText}`;
      return this.finish(form.mnemonic, [text], "sequential", 0);
    }
    const form = X87_REGISTER_FORMS[escape]![(this.reg << 3) | this.rm];
    if (form === undefined || form.level > this.level) return this.escape(escape);
    const sti = `st${this.rm}`;
    const operands =
      form.operands === "st0,sti" ? ["st0", sti] : form.operands === "sti,st0" ? [sti, "st0"] : form.operands === "sti" ? [sti] : form.operands === "ax" ? ["ax"] : [];
    return this.finish(form.mnemonic, operands, "sequential", 0);
  }

  /**
   * An escape the coprocessor does not define. The 8086 and 80286 hand every escape to the
   * coprocessor without checking it (ESC with its six opcode bits, in MASM's notation); from
   * the 80386 on, undefined x87 encodings are reserved.
   */
  private escape(escape: number): DecodedInstruction {
    if (this.level >= 3) return this.bad();
    const operand = this.mod === 3 ? REG16[this.rm]! : this.memoryText;
    return this.finish("esc", [hex((escape << 3) | this.reg), operand], "sequential", 0);
  }

  /** Encodings whose ModR/M or register field is reserved for this model. */
  private operandsValid(entry: OpcodeEntry): boolean {
    for (const kind of entry.operands) {
      switch (kind) {
        case "M": case "Mp": case "Ma": case "Mq":
          if (this.mod === 3) return false;
          break;
        case "Sw": {
          const reg = this.reg;
          if (this.level === 0) break; // the 8086 ignores bit 2 of the sreg field
          if (reg > (this.level >= 3 ? 5 : 3)) return false;
          // Loading CS with MOV is #UD from the 80286 on.
          if (reg === 1 && entry.operands[0] === "Sw") return false;
          break;
        }
        case "Cd":
          // CR0, CR2, CR3 and (from the Pentium) CR4 exist; the others raise #UD.
          if (this.reg === 1 || this.reg > 4 || (this.reg === 4 && this.level < 5)) return false;
          break;
        default:
          break;
      }
    }
    return true;
  }

  private readModrm(registerOnly = false): void {
    const modrm = this.byte();
    this.mod = registerOnly ? 3 : modrm >> 6;
    this.reg = (modrm >> 3) & 7;
    this.rm = modrm & 7;
    this.memoryText = "";
    if (this.mod === 3) return;
    this.memoryText = this.addressSize === 16 ? this.memory16() : this.memory32();
  }

  private segmentPrefixText(): string {
    if (this.segmentIndex < 0) return "";
    this.segmentShown = true;
    return SEGMENT[this.segment]! + ":";
  }

  private memory16(): string {
    this.addressSizeShown = true;
    const segment = this.segmentPrefixText();
    if (this.mod === 0 && this.rm === 6) return `[${segment}${hex(this.word())}]`;
    const base = BASE16[this.rm]!;
    if (this.mod === 0) return `[${segment}${base}]`;
    const displacement = this.mod === 1 ? (this.byte() << 24) >> 24 : (this.word() << 16) >> 16;
    return `[${segment}${base}${signedHex(displacement)}]`;
  }

  private memory32(): string {
    this.addressSizeShown = true;
    const segment = this.segmentPrefixText();
    let base = this.rm;
    let index = -1;
    let scale = 0;
    if (this.rm === 4) {
      const sib = this.byte();
      scale = sib >> 6;
      index = (sib >> 3) & 7;
      base = sib & 7;
      if (index === 4) index = -1; // no index (the scale is ignored)
      if (base === 5 && this.mod === 0) base = -1;
    } else if (this.rm === 5 && this.mod === 0) {
      base = -1;
    }
    let displacement = 0;
    let hasDisplacement = true;
    if (this.mod === 1) displacement = (this.byte() << 24) >> 24;
    else if (this.mod === 2 || base === -1) displacement = this.dword() | 0;
    else hasDisplacement = false;

    const parts: string[] = [];
    if (base >= 0) parts.push(REG32[base]!);
    if (index >= 0) parts.push(REG32[index]! + (scale > 0 ? `*${1 << scale}` : ""));
    if (parts.length === 0) return `[${segment}${hex(displacement)}]`;
    return `[${segment}${parts.join("+")}${hasDisplacement ? signedHex(displacement) : ""}]`;
  }

  private register(index: number, size: number): string {
    return (size === 1 ? REG8 : size === 2 ? REG16 : REG32)[index]!;
  }

  /** A ModR/M r/m operand of `size` bytes (register when mod = 3). */
  private rmOperand(size: number, memorySize = size): Operand {
    if (this.mod === 3) return { text: this.register(this.rm, size), registerSize: size, memorySize: -1 };
    return { text: this.memoryText, registerSize: 0, memorySize };
  }

  private registerOperand(text: string, size: number): Operand {
    return { text, registerSize: size, memorySize: -1 };
  }

  private value(text: string): Operand {
    return { text, registerSize: 0, memorySize: -1 };
  }

  private operand(kind: OperandKind): Operand {
    const operandBytes = this.operandSize >> 3;
    switch (kind) {
      case "Eb": return this.rmOperand(1);
      case "Ew": return this.rmOperand(2);
      case "Ed": return this.rmOperand(4);
      case "Ev":
        if (this.mod === 3) this.operandSizeShown = true;
        return this.rmOperand(operandBytes);
      case "Ey":
        if (this.mod === 3) this.operandSizeShown = true;
        return this.rmOperand(operandBytes, 2);
      case "Gb": return this.registerOperand(REG8[this.reg]!, 1);
      case "Gw": return this.registerOperand(REG16[this.reg]!, 2);
      case "Gv":
        this.operandSizeShown = true;
        return this.registerOperand(this.register(this.reg, operandBytes), operandBytes);
      case "Sw": return this.registerOperand(SEGMENT[this.level === 0 ? this.reg & 3 : this.reg]!, 2);
      case "Cd": return this.value(`cr${this.reg}`);
      case "Dd": return this.value(`dr${this.reg}`);
      case "Rd": return this.value(REG32[this.rm]!);
      case "M": case "Mp": case "Ma": return { text: this.memoryText, registerSize: 0, memorySize: 0 };
      case "Mq": return { text: this.memoryText, registerSize: 0, memorySize: 8 };
      case "Ib": return this.value(hex(this.byte()));
      case "Iw": return this.value(hex(this.word()));
      case "Iz": return this.value(hex(this.operandSize === 32 ? this.dword() : this.word()));
      case "Is": {
        const value = (this.byte() << 24) >> 24;
        return this.value(hex(this.operandSize === 32 ? value : value & 0xffff));
      }
      case "Jb": case "Jz": {
        const relative = kind === "Jb" ? (this.byte() << 24) >> 24 : this.operandSize === 32 ? this.dword() | 0 : (this.word() << 16) >> 16;
        const target = this.address + this.position + relative;
        this.target = this.operandSize === 32 ? target >>> 0 : target & 0xffff;
        return this.value(hex(this.target));
      }
      case "Ap": {
        const offset = this.operandSize === 32 ? this.dword() : this.word();
        const selector = this.word();
        return this.value(`${hex(selector)}:${hex(offset)}`);
      }
      case "Ob": case "Ov": {
        this.addressSizeShown = true;
        const offset = this.addressSize === 32 ? this.dword() : this.word();
        return { text: `[${this.segmentPrefixText()}${hex(offset)}]`, registerSize: 0, memorySize: kind === "Ob" ? 1 : operandBytes };
      }
      case "Zb": return this.registerOperand(REG8[this.opcode & 7]!, 1);
      case "Zv":
        this.operandSizeShown = true;
        return this.registerOperand(this.register(this.opcode & 7, operandBytes), operandBytes);
      case "AL": return this.registerOperand("al", 1);
      case "eAX":
        this.operandSizeShown = true;
        return this.registerOperand(operandBytes === 4 ? "eax" : "ax", operandBytes);
      case "DX": return this.value("dx");
      case "CL": return this.value("cl");
      case "1": return this.value("1");
      default: // ES … GS
        return this.value(kind.toLowerCase());
    }
  }
}

function needsModrm(kind: OperandKind): boolean {
  return MODRM_OPERANDS.has(kind);
}
