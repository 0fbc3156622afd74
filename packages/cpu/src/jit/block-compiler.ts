/**
 * The block compiler: turns a run of guest instructions (up to a control transfer, a page
 * end or an instruction that changes the execution mode) into one JavaScript function that
 * V8 then optimises like any other code.
 *
 * Correctness rules the generated code keeps, the same ones the interpreter keeps:
 * - before an instruction that can fault, `cpu.instructionStart` holds its EIP, so a fault
 *   unwinds to it (the run loop counts the instructions completed before it);
 * - memory is written before registers and flags change;
 * - the lazy-flag state in the CPU object is current after every instruction, so a fault
 *   or an interpreter call sees the right EFLAGS;
 * - after an instruction that may have written memory or reached a device, the block checks
 *   `cpu.leaveBlock` and leaves at once (a code page was written, or an interrupt or a stop
 *   request arrived), so events take effect at the same instruction as in the interpreter.
 *
 * Instructions it does not translate but can size are run through the interpreter from
 * inside the block (`cpu.step`), unless they change control flow or the mode, which ends
 * the block before them.
 */
import type { Cpu } from "../cpu.js";
import type { InstructionHandler } from "../instructions/table.js";
import { decodeInstruction, type DecodedInstruction } from "./decoder.js";

/** A compiled block and the keys that must match for it to run. */
export interface CompiledBlock {
  /** Physical address of the first byte. */
  readonly physical: number;
  readonly eip: number;
  readonly csBase: number;
  readonly csLimit: number;
  readonly code32: number;
  /** Instructions in the block when it runs to its end. */
  readonly count: number;
  /** EIP of each instruction, to count the ones completed before a fault. */
  readonly addresses: Int32Array;
  /** Runs the block; returns the number of instructions completed. */
  readonly run: () => number;
  /** The guest bytes it was compiled from (checked again when RAM may have changed). */
  readonly bytes: Uint8Array;
  /** The CPU's codeEpoch at which the bytes were last known to match. */
  epoch: number;
}

export const MAX_BLOCK_INSTRUCTIONS = 64;

/** Interpreter pieces the generated code calls. */
export interface CompilerRuntime {
  readonly table: readonly InstructionHandler[];
  readonly condition: (cpu: Cpu, cc: number) => boolean;
  readonly shift: (cpu: Cpu, op: number, value: number, count: number, bits: number) => number;
  readonly parity: Uint8Array;
}

interface FlagProducer {
  readonly kind: "add" | "sub" | "logic";
  readonly size: number;
  readonly a: string;
  readonly b: string;
  readonly result: string;
}

/** Opcodes that end a block when met (the interpreter runs them between blocks). */
function endsBlockBefore(instruction: DecodedInstruction): boolean {
  const op = instruction.opcode;
  switch (op) {
    case 0x17: case 0x9d: case 0xcc: case 0xcd: case 0xce: case 0xcf: case 0xf1: case 0xf4:
    case 0xfa: case 0xfb: case 0x9a: case 0xea: case 0xca: case 0xcb: case 0xc8: case 0x8e:
    case 0xe0: case 0xe1: case 0xe3: case 0x0f:
      return true;
    case 0x8f: // POP Ev: the interpreter handles its ESP-relative addressing
      return false;
    case 0x100: case 0x101: case 0x106: case 0x122: case 0x123: case 0x130: case 0x131: case 0x132:
    case 0x134: case 0x135: case 0x1b2: case 0x108: case 0x109:
      return true;
    case 0xff: {
      const reg = (instruction.modrm >> 3) & 7;
      return reg >= 2 && reg <= 5;
    }
  }
  // String instructions with a repeat prefix restart themselves: run them between blocks.
  if (instruction.repeat !== 0 && ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f))) return true;
  return false;
}

function isControlTransfer(op: number): boolean {
  return (op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f) || op === 0xe8 || op === 0xe9 || op === 0xeb || op === 0xc2 || op === 0xc3 || op === 0xe2;
}

class Generator {
  private readonly lines: string[] = [];
  private locals = 0;
  private producer: FlagProducer | null = null;
  readonly addresses: number[] = [];
  ended = false;

  constructor(private readonly csLimit: number) {}

  local(): string {
    return `v${this.locals++}`;
  }

  emit(line: string): void {
    this.lines.push(line);
  }

  source(): string {
    const declarations = this.locals > 0 ? `let ${Array.from({ length: this.locals }, (_, i) => `v${i} = 0`).join(", ")};` : "";
    return `return function block() {\n${declarations}\n${this.lines.join("\n")}\n};`;
  }

  get instructionCount(): number {
    return this.addresses.length;
  }

  // ---- operands ------------------------------------------------------------------------

  register(n: number, size: number): string {
    if (size === 32) return `r[${n}]`;
    if (size === 16) return `r16[${n << 1}]`;
    return `r8[${((n & 3) << 2) | (n >> 2)}]`;
  }

  effectiveAddress(instruction: DecodedInstruction): string {
    const parts: string[] = [];
    if (instruction.addressSize32) {
      if (instruction.base >= 0) parts.push(`r[${instruction.base}]`);
      if (instruction.index >= 0) parts.push(instruction.scale ? `(r[${instruction.index}] << ${instruction.scale})` : `r[${instruction.index}]`);
      if (instruction.displacement !== 0 || parts.length === 0) parts.push(String(instruction.displacement));
      return parts.length === 1 && instruction.base >= 0 && instruction.index < 0 ? parts[0]! : `((${parts.join(" + ")}) | 0)`;
    }
    if (instruction.base >= 0) parts.push(`r16[${instruction.base << 1}]`);
    if (instruction.base2 >= 0) parts.push(`r16[${instruction.base2 << 1}]`);
    if (instruction.displacement !== 0 || parts.length === 0) parts.push(String(instruction.displacement));
    return parts.length === 1 && instruction.displacement === 0 ? parts[0]! : `((${parts.join(" + ")}) & 0xffff)`;
  }

  segment(instruction: DecodedInstruction): number {
    return instruction.segmentOverride >= 0 ? instruction.segmentOverride : instruction.defaultSegment;
  }

  // ---- flags ---------------------------------------------------------------------------

  setFlags(kind: FlagProducer["kind"], size: number, a: string, b: string, result: string): void {
    const sizeBit = size - 1;
    if (kind === "add") this.emit(`cpu.setAddFlags(${a}, ${b}, ${result}, ${sizeBit});`);
    else if (kind === "sub") this.emit(`cpu.setSubFlags(${a}, ${b}, ${result}, ${sizeBit});`);
    else this.emit(`cpu.setLogicFlags(${result}, ${sizeBit});`);
    this.producer = { kind, size, a, b, result };
  }

  /** Flags were set by something the generator cannot describe (ADC, shifts, helpers). */
  forgetFlags(): void {
    this.producer = null;
  }

  /** A JS boolean expression for condition code `cc`. */
  condition(cc: number): string {
    const p = this.producer;
    const negate = (cc & 1) === 1;
    let expression: string | null = null;
    if (p) {
      const mask = p.size === 32 ? -1 : (1 << p.size) - 1;
      const zero = p.size === 32 ? `(${p.result} === 0)` : `((${p.result} & ${mask}) === 0)`;
      const sign = p.size === 32 ? `(${p.result} < 0)` : `((${p.result} & ${1 << (p.size - 1)}) !== 0)`;
      const signed = (value: string) => (p.size === 32 ? `(${value} | 0)` : `((${value} << ${32 - p.size}) >> ${32 - p.size})`);
      const unsigned = (value: string) => (p.size === 32 ? `(${value} >>> 0)` : value);
      switch (cc >> 1) {
        case 1: // B
          if (p.kind === "sub") expression = `(${unsigned(p.a)} < ${unsigned(p.b)})`;
          else if (p.kind === "logic") expression = "false";
          else expression = p.size === 32 ? `((${p.result} >>> 0) < (${p.a} >>> 0))` : `(${p.result} > ${mask})`;
          break;
        case 2: // Z
          expression = zero;
          break;
        case 3: // BE
          if (p.kind === "sub") expression = `(${unsigned(p.a)} <= ${unsigned(p.b)})`;
          else if (p.kind === "logic") expression = zero;
          break;
        case 4: // S
          expression = sign;
          break;
        case 6: // L
          if (p.kind === "sub") expression = `(${signed(p.a)} < ${signed(p.b)})`;
          else if (p.kind === "logic") expression = sign;
          break;
        case 7: // LE
          if (p.kind === "sub") expression = `(${signed(p.a)} <= ${signed(p.b)})`;
          else if (p.kind === "logic") expression = `(${zero} || ${sign})`;
          break;
      }
      if (expression !== null) return negate ? `!${expression}` : expression;
    }
    return `cond(cpu, ${cc})`;
  }

  // ---- block exits -----------------------------------------------------------------------

  /**
   * After an instruction that may have written memory or talked to a device: leave if a
   * code page was hit or an interrupt or stop request arrived.
   */
  checkLeave(nextEip: number): void {
    this.emit(`if (cpu.leaveBlock) { cpu.eip = ${nextEip}; return ${this.instructionCount}; }`);
  }

  exit(eipExpression: string): void {
    this.emit(`cpu.eip = ${eipExpression}; return ${this.instructionCount};`);
    this.ended = true;
  }

  faultable(eip: number): void {
    this.emit(`cpu.instructionStart = ${eip};`);
  }

  csLimitUnsigned(): number {
    return this.csLimit >>> 0;
  }

  /** Branch target as the interpreter computes it; null when it would fault (left to the interpreter). */
  branchTarget(instruction: DecodedInstruction, displacement: number): number | null {
    const next = instruction.eip + instruction.length;
    let target = (next + displacement) | 0;
    if (!instruction.operandSize32) target &= 0xffff;
    if ((target >>> 0) > (this.csLimit >>> 0)) return null;
    return target;
  }
}

const ALU_KINDS: readonly FlagProducer["kind"][] = ["add", "logic", "add", "sub", "logic", "sub", "logic", "sub"];

/** JS expression for ALU operation `op` on a and b (size in bits). */
function aluExpression(op: number, a: string, b: string, size: number): string {
  const wrap = (expression: string) => (size === 32 ? `((${expression}) | 0)` : `(${expression})`);
  switch (op) {
    case 0: return wrap(`${a} + ${b}`);
    case 1: return `(${a} | ${b})`;
    case 2: return wrap(`${a} + ${b} + cpu.getCF()`);
    case 3: return wrap(`${a} - ${b} - cpu.getCF()`);
    case 4: return `(${a} & ${b})`;
    case 5: case 7: return wrap(`${a} - ${b}`);
    default: return `(${a} ^ ${b})`;
  }
}

/**
 * Emits one instruction. Returns false when the instruction cannot go into a block at all
 * (the block then ends before it).
 */
function emitInstruction(g: Generator, instruction: DecodedInstruction): boolean {
  const op = instruction.opcode;
  const eip = instruction.eip;
  const next = (eip + instruction.length) | 0;
  const size = instruction.operandSize32 ? 32 : 16;
  const modrm = instruction.modrm;
  const memory = modrm >= 0 && modrm < 0xc0;
  const reg = (modrm >> 3) & 7;
  const rm = modrm & 7;
  const segment = memory ? g.segment(instruction) : 0;

  // Reads and writes of the ModR/M operand of `bits` bits; `address` is a local holding the EA.
  const readRm = (bits: number, address: string) => (memory ? `cpu.readMem${bits}(${segment}, ${address})` : g.register(rm, bits));
  const writeRm = (bits: number, address: string, value: string) =>
    memory ? `cpu.writeMem${bits}(${segment}, ${address}, ${value});` : `${g.register(rm, bits)} = ${value};`;
  const prepareAddress = (): string => {
    if (!memory) return "";
    const address = g.local();
    g.emit(`${address} = ${g.effectiveAddress(instruction)};`);
    return address;
  };

  if (instruction.lock && !memory) return false;

  // ---- ALU: 00-3F (except prefixes, segment pushes/pops, adjusts) ------------------------------
  if (op < 0x40 && (op & 7) < 6) {
    const alu = op >> 3;
    const form = op & 7;
    const bits = form === 0 || form === 2 || form === 4 ? 8 : size;
    const a = g.local();
    const b = g.local();
    const result = g.local();
    if (form === 4 || form === 5) {
      const immediate = bits === 8 ? instruction.immediate & 0xff : bits === 16 ? instruction.immediate & 0xffff : instruction.immediate | 0;
      g.emit(`${a} = ${g.register(0, bits)}; ${b} = ${immediate};`);
      g.emit(`${result} = ${aluExpression(alu, a, b, bits)};`);
      if (alu !== 7) g.emit(`${g.register(0, bits)} = ${result};`);
    } else {
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      if (form <= 1) {
        g.emit(`${a} = ${readRm(bits, address)}; ${b} = ${g.register(reg, bits)};`);
        g.emit(`${result} = ${aluExpression(alu, a, b, bits)};`);
        if (alu !== 7) g.emit(writeRm(bits, address, result));
      } else {
        g.emit(`${a} = ${g.register(reg, bits)}; ${b} = ${readRm(bits, address)};`);
        g.emit(`${result} = ${aluExpression(alu, a, b, bits)};`);
        if (alu !== 7) g.emit(`${g.register(reg, bits)} = ${result};`);
      }
    }
    if (alu === 2 || alu === 3) {
      g.setFlags(alu === 2 ? "add" : "sub", bits, a, b, result);
      g.forgetFlags(); // carry-in: conditions need the general formulas
    } else {
      g.setFlags(ALU_KINDS[alu]!, bits, a, b, result);
    }
    if (memory && (form <= 1) && alu !== 7) g.checkLeave(next);
    return true;
  }

  switch (op) {
    // ---- INC/DEC r -------------------------------------------------------------------------
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
      const a = g.local();
      const result = g.local();
      const carry = g.local();
      const increment = op < 0x48;
      const target = g.register(op & 7, size);
      g.emit(`${carry} = cpu.getCF(); ${a} = ${target};`);
      g.emit(`${result} = ${size === 32 ? `(${a} ${increment ? "+" : "-"} 1) | 0` : `${a} ${increment ? "+" : "-"} 1`}; ${target} = ${result};`);
      g.emit(`cpu.set${increment ? "Add" : "Sub"}Flags(${a}, 1, ${result}, ${size - 1}); cpu.flags = (cpu.flags & ~1) | ${carry}; cpu.flagsChanged &= ~1;`);
      g.forgetFlags();
      return true;
    }
    // ---- PUSH/POP r, PUSH imm -------------------------------------------------------------------
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
      g.faultable(eip);
      g.emit(`cpu.push${size}(${g.register(op & 7, size)});`);
      g.checkLeave(next);
      return true;
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f: {
      const value = g.local();
      g.faultable(eip);
      g.emit(`${value} = cpu.pop${size}(); ${g.register(op & 7, size)} = ${value};`);
      return true;
    }
    case 0x68:
      g.faultable(eip);
      g.emit(`cpu.push${size}(${size === 32 ? instruction.immediate | 0 : instruction.immediate & 0xffff});`);
      g.checkLeave(next);
      return true;
    case 0x6a:
      g.faultable(eip);
      g.emit(`cpu.push${size}(${size === 32 ? (instruction.immediate << 24) >> 24 : ((instruction.immediate << 24) >> 24) & 0xffff});`);
      g.checkLeave(next);
      return true;
    // ---- Jcc, JMP, CALL, RET, LOOP -----------------------------------------------------------
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f: {
      const target = g.branchTarget(instruction, (instruction.immediate << 24) >> 24);
      if (target === null) return false;
      g.emit(`if (${g.condition(op & 0xf)}) { cpu.eip = ${target}; return ${g.instructionCount}; }`);
      g.exit(String(next));
      return true;
    }
    case 0x180: case 0x181: case 0x182: case 0x183: case 0x184: case 0x185: case 0x186: case 0x187:
    case 0x188: case 0x189: case 0x18a: case 0x18b: case 0x18c: case 0x18d: case 0x18e: case 0x18f: {
      const target = g.branchTarget(instruction, size === 32 ? instruction.immediate | 0 : instruction.immediate & 0xffff);
      if (target === null) return false;
      g.emit(`if (${g.condition(op & 0xf)}) { cpu.eip = ${target}; return ${g.instructionCount}; }`);
      g.exit(String(next));
      return true;
    }
    case 0xeb: {
      const target = g.branchTarget(instruction, (instruction.immediate << 24) >> 24);
      if (target === null) return false;
      g.exit(String(target));
      return true;
    }
    case 0xe9: {
      const target = g.branchTarget(instruction, size === 32 ? instruction.immediate | 0 : instruction.immediate & 0xffff);
      if (target === null) return false;
      g.exit(String(target));
      return true;
    }
    case 0xe8: {
      const target = g.branchTarget(instruction, size === 32 ? instruction.immediate | 0 : instruction.immediate & 0xffff);
      if (target === null) return false;
      g.faultable(eip);
      g.emit(`cpu.push${size}(${size === 32 ? next : next & 0xffff});`);
      g.exit(String(target));
      return true;
    }
    case 0xc2: case 0xc3: {
      // Read the return address first, check it, then release the stack: nothing to undo on a fault.
      const target = g.local();
      const release = (size / 8) + (op === 0xc2 ? instruction.immediate : 0);
      g.faultable(eip);
      g.emit(`${target} = cpu.readStack${size}(0);`);
      g.emit(`if ((${target} >>> 0) > ${g.csLimitUnsigned()}) cpu.raiseFault(13, 0);`);
      g.emit(`cpu.adjustStack(${release});`);
      g.exit(target);
      return true;
    }
    case 0xe2: {
      const target = g.branchTarget(instruction, (instruction.immediate << 24) >> 24);
      if (target === null) return false;
      const count = g.local();
      if (instruction.addressSize32) g.emit(`${count} = r[1] = (r[1] - 1) | 0;`);
      else g.emit(`${count} = r16[2] = r16[2] - 1;`);
      g.emit(`if (${count} !== 0) { cpu.eip = ${target}; return ${g.instructionCount}; }`);
      g.exit(String(next));
      return true;
    }
    // ---- group 1 ------------------------------------------------------------------------------
    case 0x80: case 0x81: case 0x82: case 0x83: {
      const alu = reg;
      const bits = op === 0x80 || op === 0x82 ? 8 : size;
      let immediate: number;
      if (op === 0x83) immediate = bits === 32 ? (instruction.immediate << 24) >> 24 : ((instruction.immediate << 24) >> 24) & 0xffff;
      else immediate = bits === 8 ? instruction.immediate & 0xff : bits === 16 ? instruction.immediate & 0xffff : instruction.immediate | 0;
      const a = g.local();
      const result = g.local();
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      g.emit(`${a} = ${readRm(bits, address)};`);
      g.emit(`${result} = ${aluExpression(alu, a, String(immediate), bits)};`);
      if (alu !== 7) g.emit(writeRm(bits, address, result));
      g.setFlags(alu === 2 || alu === 3 ? (alu === 2 ? "add" : "sub") : ALU_KINDS[alu]!, bits, a, String(immediate), result);
      if (alu === 2 || alu === 3) g.forgetFlags();
      if (memory && alu !== 7) g.checkLeave(next);
      return true;
    }
    // ---- TEST, XCHG, MOV, LEA ----------------------------------------------------------------
    case 0x84: case 0x85: {
      const bits = op === 0x84 ? 8 : size;
      const result = g.local();
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      g.emit(`${result} = ${readRm(bits, address)} & ${g.register(reg, bits)};`);
      g.setFlags("logic", bits, result, result, result);
      return true;
    }
    case 0xa8: case 0xa9: {
      const bits = op === 0xa8 ? 8 : size;
      const immediate = bits === 8 ? instruction.immediate & 0xff : bits === 16 ? instruction.immediate & 0xffff : instruction.immediate | 0;
      const result = g.local();
      g.emit(`${result} = ${g.register(0, bits)} & ${immediate};`);
      g.setFlags("logic", bits, result, result, result);
      return true;
    }
    case 0x86: case 0x87: {
      const bits = op === 0x86 ? 8 : size;
      const value = g.local();
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      g.emit(`${value} = ${readRm(bits, address)};`);
      g.emit(writeRm(bits, address, g.register(reg, bits)));
      g.emit(`${g.register(reg, bits)} = ${value};`);
      if (memory) g.checkLeave(next);
      return true;
    }
    case 0x88: case 0x89: {
      const bits = op === 0x88 ? 8 : size;
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      g.emit(writeRm(bits, address, g.register(reg, bits)));
      if (memory) g.checkLeave(next);
      return true;
    }
    case 0x8a: case 0x8b: {
      const bits = op === 0x8a ? 8 : size;
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      g.emit(`${g.register(reg, bits)} = ${readRm(bits, address)};`);
      return true;
    }
    case 0x8d: {
      if (!memory) return false;
      g.emit(`${g.register(reg, size)} = ${g.effectiveAddress(instruction)};`);
      return true;
    }
    case 0x90: // NOP, XCHG eAX,eAX, PAUSE
      return true;
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97: {
      const value = g.local();
      g.emit(`${value} = ${g.register(op & 7, size)}; ${g.register(op & 7, size)} = ${g.register(0, size)}; ${g.register(0, size)} = ${value};`);
      return true;
    }
    case 0x98:
      g.emit(size === 32 ? `r[0] = (r16[0] << 16) >> 16;` : `r16[0] = (r8[0] << 24) >> 24;`);
      return true;
    case 0x99:
      g.emit(size === 32 ? `r[2] = r[0] >> 31;` : `r16[4] = (r16[0] & 0x8000) ? 0xffff : 0;`);
      return true;
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
      g.emit(`${g.register(op & 7, 8)} = ${instruction.immediate & 0xff};`);
      return true;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      g.emit(`${g.register(op & 7, size)} = ${size === 32 ? instruction.immediate | 0 : instruction.immediate & 0xffff};`);
      return true;
    case 0xc6: case 0xc7: {
      if (reg !== 0) return false;
      const bits = op === 0xc6 ? 8 : size;
      const immediate = bits === 8 ? instruction.immediate & 0xff : bits === 16 ? instruction.immediate & 0xffff : instruction.immediate | 0;
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      g.emit(writeRm(bits, address, String(immediate)));
      if (memory) g.checkLeave(next);
      return true;
    }
    // ---- shifts through the interpreter's helper ------------------------------------------
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      const bits = op === 0xc0 || op === 0xd0 || op === 0xd2 ? 8 : size;
      const count = op === 0xd0 || op === 0xd1 ? "1" : op === 0xd2 || op === 0xd3 ? "r8[4]" : String(instruction.immediate & 0xff);
      const value = g.local();
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      g.emit(`${value} = shift(cpu, ${reg}, ${bits === 32 ? `(${readRm(bits, address)}) >>> 0` : readRm(bits, address)}, ${count}, ${bits});`);
      g.emit(writeRm(bits, address, value));
      g.forgetFlags();
      if (memory) g.checkLeave(next);
      return true;
    }
    // ---- group 3: TEST NOT NEG (others through the interpreter) ---------------------------------
    case 0xf6: case 0xf7: {
      const bits = op === 0xf6 ? 8 : size;
      if (reg === 0 || reg === 1) {
        const immediate = bits === 8 ? instruction.immediate & 0xff : bits === 16 ? instruction.immediate & 0xffff : instruction.immediate | 0;
        const result = g.local();
        if (memory) g.faultable(eip);
        const address = prepareAddress();
        g.emit(`${result} = ${readRm(bits, address)} & ${immediate};`);
        g.setFlags("logic", bits, result, result, result);
        return true;
      }
      if (reg === 2 || reg === 3) {
        const a = g.local();
        const result = g.local();
        if (memory) g.faultable(eip);
        const address = prepareAddress();
        g.emit(`${a} = ${readRm(bits, address)};`);
        g.emit(`${result} = ${reg === 2 ? `~${a}` : bits === 32 ? `(-${a}) | 0` : `-${a}`};`);
        g.emit(writeRm(bits, address, result));
        if (reg === 3) g.setFlags("sub", bits, "0", a, result);
        if (memory) g.checkLeave(next);
        return true;
      }
      return callInterpreter(g, instruction);
    }
    // ---- group 5: INC DEC PUSH (CALL/JMP end the block) ------------------------------------
    case 0xff:
      if (reg === 6) {
        const value = g.local();
        g.faultable(eip);
        const address = prepareAddress();
        g.emit(`${value} = ${readRm(size, address)}; cpu.push${size}(${value});`);
        g.checkLeave(next);
        return true;
      }
      return callInterpreter(g, instruction);
    // ---- 0F map -----------------------------------------------------------------------------
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: {
      const bits = op === 0x1b6 || op === 0x1be ? 8 : 16;
      const signed = op >= 0x1be;
      if (memory) g.faultable(eip);
      const address = prepareAddress();
      const read = readRm(bits, address);
      const value = signed ? `((${read}) << ${32 - bits}) >> ${32 - bits}` : read;
      g.emit(`${g.register(reg, size)} = ${value};`);
      return true;
    }
    case 0x1af: {
      // IMUL Gv, Ev: the interpreter computes the flags exactly; keep it there.
      return callInterpreter(g, instruction);
    }
    default:
      if (op >= 0x140 && op <= 0x14f) {
        const value = g.local();
        if (memory) g.faultable(eip);
        const address = prepareAddress();
        g.emit(`${value} = ${readRm(size, address)};`);
        g.emit(`if (${g.condition(op & 0xf)}) ${g.register(reg, size)} = ${value};`);
        return true;
      }
      if (op >= 0x190 && op <= 0x19f) {
        if (memory) g.faultable(eip);
        const address = prepareAddress();
        g.emit(writeRm(8, address, `(${g.condition(op & 0xf)}) ? 1 : 0`));
        if (memory) g.checkLeave(next);
        return true;
      }
      return callInterpreter(g, instruction);
  }
}

/** Runs one instruction through the interpreter from inside the block. */
function callInterpreter(g: Generator, instruction: DecodedInstruction): boolean {
  if (endsBlockBefore(instruction) || isControlTransfer(instruction.opcode)) return false;
  g.emit(`cpu.eip = ${instruction.eip}; cpu.step(table);`);
  g.forgetFlags();
  g.checkLeave((instruction.eip + instruction.length) | 0);
  return true;
}

export interface BlockSource {
  /** Byte at a physical offset from the block start, or −1 outside the block's page. */
  byteAt(offset: number): number;
}

/**
 * Compiles the block starting at `eip` (physical `physical`); returns null when not even
 * its first instruction can be compiled.
 */
export function compileBlock(
  physical: number,
  eip: number,
  csBase: number,
  csLimit: number,
  code32: number,
  source: BlockSource,
  runtime: CompilerRuntime,
  cpu: Cpu,
): CompiledBlock | null {
  const generator = new Generator(csLimit);
  let offset = 0;
  let current = eip;
  while (generator.instructionCount < MAX_BLOCK_INSTRUCTIONS) {
    const start = offset;
    const instruction = decodeInstruction((i) => source.byteAt(start + i), current, code32 === 1);
    if (instruction === null) break;
    // 16-bit code wraps at 64 KiB; such instructions stay with the interpreter.
    if (!code32 && current + instruction.length > 0x10000) break;
    if ((current >>> 0) + instruction.length - 1 > (csLimit >>> 0)) break;
    generator.addresses.push(current);
    if (!emitInstruction(generator, instruction)) {
      generator.addresses.pop();
      break;
    }
    offset += instruction.length;
    current = (current + instruction.length) | 0;
    if (generator.ended) break;
  }
  if (generator.instructionCount === 0) return null;
  if (!generator.ended) generator.exit(String(current));
  const factory = new Function("cpu", "r", "r16", "r8", "table", "cond", "shift", "PARITY", generator.source()) as (
    ...args: unknown[]
  ) => () => number;
  const run = factory(cpu, cpu.regs, cpu.regs16, cpu.regs8, runtime.table, runtime.condition, runtime.shift, runtime.parity);
  const bytes = new Uint8Array(offset);
  for (let i = 0; i < offset; i++) bytes[i] = source.byteAt(i);
  return {
    physical,
    eip,
    csBase,
    csLimit,
    code32,
    count: generator.instructionCount,
    addresses: Int32Array.from(generator.addresses),
    run,
    bytes,
    epoch: 0,
  };
}
