/**
 * The region compiler: turns the guest code reachable from one entry point inside one
 * 4 KiB page into a single JavaScript function that V8 then optimises like any other code.
 * The function is a `switch` over the region's basic blocks, so branches and loops inside
 * the region stay inside the function; only control transfers out of it (calls, returns,
 * indirect jumps, targets in other pages) go back to the CPU's run loop.
 *
 * Correctness rules the generated code keeps, the same ones the interpreter keeps:
 * - before an instruction that can fault, `cpu.instructionStart` holds its EIP and
 *   `cpu.blockProgress` the instructions completed in this call before its basic block,
 *   so the run loop can undo and count exactly;
 * - memory is written before registers and flags change;
 * - the lazy-flag state in the CPU object is current after every instruction, so a fault
 *   or an interpreter call sees the right EFLAGS;
 * - after an instruction that may have written memory or reached a device the function
 *   checks `cpu.leaveBlock` (a code page was written, an interrupt or a stop request
 *   arrived) and returns, so events take effect at the same instruction as when
 *   interpreting;
 * - it never runs more instructions than the budget it is given, checked per basic block.
 *
 * Instructions it does not translate but can size are run through the interpreter from
 * inside the function (`cpu.step`), unless they change control flow or the mode; the
 * region then ends before them.
 */
import type { Cpu } from "../cpu.js";
import type { InstructionHandler } from "../instructions/table.js";
import { decodeInstruction, type DecodedInstruction } from "./decoder.js";
import { structureRegion } from "./structure.js";

/** A compiled region and the keys that must match for it to run. */
export interface CompiledBlock {
  /** Physical address of the entry point. */
  readonly physical: number;
  readonly eip: number;
  readonly csBase: number;
  readonly csLimit: number;
  readonly code32: number;
  /** Instructions in the region (for statistics). */
  readonly instructionCount: number;
  /** For each instruction EIP: its index within its basic block (fault accounting). */
  readonly indexInBasicBlock: Map<number, number>;
  /** Runs at most `budget` instructions; returns how many completed (0: none fit the budget). */
  readonly run: (budget: number) => number;
  /** Physical address and copy of the guest bytes it was compiled from. */
  readonly bytesStart: number;
  readonly bytes: Uint8Array;
  /** The CPU's codeEpoch at which the bytes were last known to match. */
  epoch: number;
}

/** Instructions explored from an entry point while looking for the loop it heads. */
export const MAX_REGION_INSTRUCTIONS = 96;
/**
 * Largest loop compiled as one function. Bigger functions cost V8 much more to compile and
 * carry cold paths that deoptimise them; outside small loops, one basic block per function.
 */
export const MAX_LOOP_INSTRUCTIONS = 48;

/** Interpreter pieces the generated code calls. */
export interface CompilerRuntime {
  readonly table: readonly InstructionHandler[];
  readonly condition: (cpu: Cpu, cc: number) => boolean;
  readonly shift: (cpu: Cpu, op: number, value: number, count: number, bits: number) => number;
  readonly multiplyAccumulator: (cpu: Cpu, value: number, bits: number, signed: boolean) => void;
  readonly imul16: (cpu: Cpu, a: number, b: number) => number;
  readonly imul32: (cpu: Cpu, a: number, b: number) => number;
}

interface FlagProducer {
  /** "incdec": INC/DEC (CF kept, so only ZF/SF are known here); "shift": SHL/SHR/SAR with `carry`. */
  readonly kind: "add" | "sub" | "logic" | "incdec" | "shift";
  readonly size: number;
  readonly a: string;
  readonly b: string;
  readonly result: string;
  /** The CF value (0 or 1) of a shift. */
  readonly carry?: string;
}

/** How an instruction ends, as far as the region's control flow is concerned. */
type Flow =
  | { readonly kind: "next" }
  | { readonly kind: "branch"; readonly condition: string; readonly target: number }
  | { readonly kind: "jump"; readonly target: number }
  /** The instruction's code already returned from the function (calls, returns). */
  | { readonly kind: "leave" };

const NEXT: Flow = { kind: "next" };
const LEAVE: Flow = { kind: "leave" };

/** Opcodes the region never contains: the run loop interprets them between regions. */
function mustRunOutside(instruction: DecodedInstruction): boolean {
  const op = instruction.opcode;
  switch (op) {
    case 0x17: case 0x9d: case 0xcc: case 0xcd: case 0xce: case 0xcf: case 0xf1: case 0xf4:
    case 0xfa: case 0xfb: case 0x9a: case 0xea: case 0xca: case 0xcb: case 0xc8: case 0x8e:
    case 0xe0: case 0xe1: case 0xe3:
    case 0x100: case 0x101: case 0x106: case 0x108: case 0x109: case 0x122: case 0x123:
    case 0x130: case 0x131: case 0x132: case 0x134: case 0x135: case 0x1b2:
      return true;
    case 0xff: {
      const reg = (instruction.modrm >> 3) & 7;
      return reg >= 2 && reg <= 5;
    }
  }
  // String instructions with a repeat prefix restart themselves between chunks of iterations.
  return instruction.repeat !== 0 && ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f));
}

class Generator {
  private readonly lines: string[] = [];
  private locals = 0;
  private producer: FlagProducer | null = null;
  /** Index of the current instruction within its basic block. */
  indexInBlock = 0;

  constructor(private readonly csLimit: number) {}

  local(): string {
    return `v${this.locals++}`;
  }

  emit(line: string): void {
    this.lines.push(line);
  }

  take(): string[] {
    return this.lines.splice(0);
  }

  /** Number of temporaries allocated so far (a basic block declares its own range). */
  get localCount(): number {
    return this.locals;
  }

  /** `let` declaration for temporaries [from, to): scoped to one basic block, so none stays live across the dispatch loop. */
  declarations(from: number, to: number): string {
    return to > from ? `let ${Array.from({ length: to - from }, (_, i) => `v${from + i} = 0`).join(", ")};` : "";
  }

  startBasicBlock(): void {
    this.producer = null;
    this.indexInBlock = 0;
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

  /** Flags were just set (by code already emitted) as `producer` describes. */
  describeFlags(producer: FlagProducer): void {
    this.producer = producer;
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
          else if (p.kind === "shift") expression = `(${p.carry!} !== 0)`;
          else if (p.kind === "add") expression = p.size === 32 ? `((${p.result} >>> 0) < (${p.a} >>> 0))` : `(${p.result} > ${mask})`;
          break;
        case 2: // Z
          expression = zero;
          break;
        case 3: // BE
          if (p.kind === "sub") expression = `(${unsigned(p.a)} <= ${unsigned(p.b)})`;
          else if (p.kind === "logic") expression = zero;
          else if (p.kind === "shift") expression = `(${p.carry!} !== 0 || ${zero})`;
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

  // ---- leaving the function ------------------------------------------------------------------

  /** After an instruction that may have written memory or reached a device. */
  checkLeave(nextEip: number): void {
    this.emit(`if (cpu.leaveBlock) { cpu.eip = ${nextEip}; return n + ${this.indexInBlock + 1}; }`);
  }

  /** Ends the function after the current instruction with EIP = `eipExpression`. */
  leave(eipExpression: string): void {
    this.emit(`cpu.eip = ${eipExpression}; return n + ${this.indexInBlock + 1};`);
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

const immediateOf = (value: number, bits: number) => (bits === 8 ? value & 0xff : bits === 16 ? value & 0xffff : value | 0);
const signExtended8 = (value: number, bits: number) => (bits === 32 ? (value << 24) >> 24 : ((value << 24) >> 24) & 0xffff);

/**
 * Emits one instruction and says how control continues; null when the instruction cannot
 * be part of a region at all (the region then ends before it).
 */
function emitInstruction(g: Generator, instruction: DecodedInstruction): Flow | null {
  const op = instruction.opcode;
  const eip = instruction.eip;
  const next = (eip + instruction.length) | 0;
  const size = instruction.operandSize32 ? 32 : 16;
  const modrm = instruction.modrm;
  const memory = modrm >= 0 && modrm < 0xc0;
  const reg = (modrm >> 3) & 7;
  const rm = modrm & 7;
  const segment = memory ? g.segment(instruction) : 0;

  // The ModR/M operand of `bits` bits; `address` is a local holding the effective address.
  const readRm = (bits: number, address: string) => (memory ? `cpu.readMem${bits}(${segment}, ${address})` : g.register(rm, bits));
  const writeRm = (bits: number, address: string, value: string) =>
    memory ? `cpu.writeMem${bits}(${segment}, ${address}, ${value});` : `${g.register(rm, bits)} = ${value};`;
  const prepareAddress = (): string => {
    if (!memory) return "";
    g.faultable(eip);
    const address = g.local();
    g.emit(`${address} = ${g.effectiveAddress(instruction)};`);
    return address;
  };
  const afterWrite = () => {
    if (memory) g.checkLeave(next);
  };

  if (instruction.lock && !memory) return null;

  // ---- ALU: 00-3F (except prefixes, segment pushes/pops, adjusts) ------------------------------
  if (op < 0x40 && (op & 7) < 6) {
    const alu = op >> 3;
    const form = op & 7;
    const bits = form === 0 || form === 2 || form === 4 ? 8 : size;
    const a = g.local();
    const b = g.local();
    const result = g.local();
    if (form === 4 || form === 5) {
      g.emit(`${a} = ${g.register(0, bits)}; ${b} = ${immediateOf(instruction.immediate, bits)};`);
      g.emit(`${result} = ${aluExpression(alu, a, b, bits)};`);
      if (alu !== 7) g.emit(`${g.register(0, bits)} = ${result};`);
    } else {
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
    g.setFlags(ALU_KINDS[alu]!, bits, a, b, result);
    if (alu === 2 || alu === 3) g.forgetFlags(); // carry-in: conditions need the general formulas
    if (form <= 1 && alu !== 7) afterWrite();
    return NEXT;
  }

  switch (op) {
    // ---- INC/DEC -----------------------------------------------------------------------------
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
      emitIncDec(g, size, op < 0x48, g.register(op & 7, size), (value) => `${g.register(op & 7, size)} = ${value};`);
      return NEXT;
    case 0xfe: {
      if (reg > 1) return null;
      const address = prepareAddress();
      emitIncDec(g, 8, reg === 0, readRm(8, address), (value) => writeRm(8, address, value));
      afterWrite();
      return NEXT;
    }
    // ---- PUSH/POP ----------------------------------------------------------------------------
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
      g.faultable(eip);
      g.emit(`cpu.push${size}(${g.register(op & 7, size)});`);
      g.checkLeave(next);
      return NEXT;
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f: {
      const value = g.local();
      g.faultable(eip);
      g.emit(`${value} = cpu.pop${size}(); ${g.register(op & 7, size)} = ${value};`);
      return NEXT;
    }
    case 0x68:
      g.faultable(eip);
      g.emit(`cpu.push${size}(${immediateOf(instruction.immediate, size)});`);
      g.checkLeave(next);
      return NEXT;
    case 0x6a:
      g.faultable(eip);
      g.emit(`cpu.push${size}(${signExtended8(instruction.immediate, size)});`);
      g.checkLeave(next);
      return NEXT;
    // ---- control transfer ----------------------------------------------------------------------
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f: {
      const target = g.branchTarget(instruction, (instruction.immediate << 24) >> 24);
      return target === null ? null : { kind: "branch", condition: g.condition(op & 0xf), target };
    }
    case 0x180: case 0x181: case 0x182: case 0x183: case 0x184: case 0x185: case 0x186: case 0x187:
    case 0x188: case 0x189: case 0x18a: case 0x18b: case 0x18c: case 0x18d: case 0x18e: case 0x18f: {
      const target = g.branchTarget(instruction, size === 32 ? instruction.immediate | 0 : instruction.immediate & 0xffff);
      return target === null ? null : { kind: "branch", condition: g.condition(op & 0xf), target };
    }
    case 0xe2: {
      const target = g.branchTarget(instruction, (instruction.immediate << 24) >> 24);
      if (target === null) return null;
      const count = g.local();
      if (instruction.addressSize32) g.emit(`${count} = r[1] = (r[1] - 1) | 0;`);
      else g.emit(`${count} = r16[2] = r16[2] - 1;`);
      return { kind: "branch", condition: `${count} !== 0`, target };
    }
    case 0xeb: {
      const target = g.branchTarget(instruction, (instruction.immediate << 24) >> 24);
      return target === null ? null : { kind: "jump", target };
    }
    case 0xe9: {
      const target = g.branchTarget(instruction, size === 32 ? instruction.immediate | 0 : instruction.immediate & 0xffff);
      return target === null ? null : { kind: "jump", target };
    }
    case 0xe8: {
      const target = g.branchTarget(instruction, size === 32 ? instruction.immediate | 0 : instruction.immediate & 0xffff);
      if (target === null) return null;
      g.faultable(eip);
      g.emit(`cpu.push${size}(${size === 32 ? next : next & 0xffff});`);
      g.leave(String(target));
      return LEAVE;
    }
    case 0xc2: case 0xc3: {
      // Read the return address first, check it, then release the stack: nothing to undo on a fault.
      const target = g.local();
      const release = size / 8 + (op === 0xc2 ? instruction.immediate : 0);
      g.faultable(eip);
      g.emit(`${target} = cpu.readStack${size}(0);`);
      g.emit(`if ((${target} >>> 0) > ${g.csLimitUnsigned()}) cpu.raiseFault(13, 0);`);
      g.emit(`cpu.adjustStack(${release});`);
      g.leave(target);
      return LEAVE;
    }
    // ---- group 1 ------------------------------------------------------------------------------
    case 0x80: case 0x81: case 0x82: case 0x83: {
      const alu = reg;
      const bits = op === 0x80 || op === 0x82 ? 8 : size;
      const immediate = op === 0x83 ? signExtended8(instruction.immediate, bits) : immediateOf(instruction.immediate, bits);
      const a = g.local();
      const result = g.local();
      const address = prepareAddress();
      g.emit(`${a} = ${readRm(bits, address)};`);
      g.emit(`${result} = ${aluExpression(alu, a, String(immediate), bits)};`);
      if (alu !== 7) g.emit(writeRm(bits, address, result));
      g.setFlags(ALU_KINDS[alu]!, bits, a, String(immediate), result);
      if (alu === 2 || alu === 3) g.forgetFlags();
      if (alu !== 7) afterWrite();
      return NEXT;
    }
    // ---- TEST, XCHG, MOV, LEA ----------------------------------------------------------------
    case 0x84: case 0x85: {
      const bits = op === 0x84 ? 8 : size;
      const result = g.local();
      const address = prepareAddress();
      g.emit(`${result} = ${readRm(bits, address)} & ${g.register(reg, bits)};`);
      g.setFlags("logic", bits, result, result, result);
      return NEXT;
    }
    case 0xa8: case 0xa9: {
      const bits = op === 0xa8 ? 8 : size;
      const result = g.local();
      g.emit(`${result} = ${g.register(0, bits)} & ${immediateOf(instruction.immediate, bits)};`);
      g.setFlags("logic", bits, result, result, result);
      return NEXT;
    }
    case 0x86: case 0x87: {
      const bits = op === 0x86 ? 8 : size;
      const value = g.local();
      const address = prepareAddress();
      g.emit(`${value} = ${readRm(bits, address)};`);
      g.emit(writeRm(bits, address, g.register(reg, bits)));
      g.emit(`${g.register(reg, bits)} = ${value};`);
      afterWrite();
      return NEXT;
    }
    case 0x88: case 0x89: {
      const bits = op === 0x88 ? 8 : size;
      const address = prepareAddress();
      g.emit(writeRm(bits, address, g.register(reg, bits)));
      afterWrite();
      return NEXT;
    }
    case 0x8a: case 0x8b: {
      const bits = op === 0x8a ? 8 : size;
      const address = prepareAddress();
      g.emit(`${g.register(reg, bits)} = ${readRm(bits, address)};`);
      return NEXT;
    }
    case 0x8d:
      if (!memory) return null;
      g.emit(`${g.register(reg, size)} = ${g.effectiveAddress(instruction)};`);
      return NEXT;
    case 0x90: // NOP, XCHG eAX,eAX, PAUSE
      return NEXT;
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97: {
      const value = g.local();
      g.emit(`${value} = ${g.register(op & 7, size)}; ${g.register(op & 7, size)} = ${g.register(0, size)}; ${g.register(0, size)} = ${value};`);
      return NEXT;
    }
    case 0x98:
      g.emit(size === 32 ? `r[0] = (r16[0] << 16) >> 16;` : `r16[0] = (r8[0] << 24) >> 24;`);
      return NEXT;
    case 0x99:
      g.emit(size === 32 ? `r[2] = r[0] >> 31;` : `r16[4] = (r16[0] & 0x8000) ? 0xffff : 0;`);
      return NEXT;
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
      g.emit(`${g.register(op & 7, 8)} = ${instruction.immediate & 0xff};`);
      return NEXT;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      g.emit(`${g.register(op & 7, size)} = ${immediateOf(instruction.immediate, size)};`);
      return NEXT;
    case 0xc6: case 0xc7: {
      if (reg !== 0) return null;
      const bits = op === 0xc6 ? 8 : size;
      const address = prepareAddress();
      g.emit(writeRm(bits, address, String(immediateOf(instruction.immediate, bits))));
      afterWrite();
      return NEXT;
    }
    // ---- string instructions without a repeat prefix ---------------------------------------
    case 0xa4: case 0xa5: case 0xaa: case 0xab: case 0xac: case 0xad:
      if (instruction.repeat !== 0) return null;
      emitString(g, instruction, next);
      return NEXT;
    // ---- shifts: constant counts inline, the rest through the interpreter's helper ------------
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      const bits = op === 0xc0 || op === 0xd0 || op === 0xd2 ? 8 : size;
      const count = op === 0xd0 || op === 0xd1 ? "1" : op === 0xd2 || op === 0xd3 ? "r8[4]" : String(instruction.immediate & 0xff);
      const value = g.local();
      const address = prepareAddress();
      if (count !== "r8[4]" && emitConstantShift(g, reg, bits, Number(count) & 31, value, readRm(bits, address), (result) => writeRm(bits, address, result))) {
        afterWrite();
        return NEXT;
      }
      g.emit(`${value} = shift(cpu, ${reg}, ${bits === 32 ? `(${readRm(bits, address)}) >>> 0` : readRm(bits, address)}, ${count}, ${bits});`);
      g.emit(writeRm(bits, address, value));
      g.forgetFlags();
      afterWrite();
      return NEXT;
    }
    // ---- group 3: TEST NOT NEG MUL IMUL (DIV/IDIV through the interpreter) ------------------
    case 0xf6: case 0xf7: {
      const bits = op === 0xf6 ? 8 : size;
      if (reg === 0 || reg === 1) {
        const result = g.local();
        const address = prepareAddress();
        g.emit(`${result} = ${readRm(bits, address)} & ${immediateOf(instruction.immediate, bits)};`);
        g.setFlags("logic", bits, result, result, result);
        return NEXT;
      }
      if (reg === 2 || reg === 3) {
        const a = g.local();
        const result = g.local();
        const address = prepareAddress();
        g.emit(`${a} = ${readRm(bits, address)};`);
        g.emit(`${result} = ${reg === 2 ? `~${a}` : bits === 32 ? `(-${a}) | 0` : `-${a}`};`);
        g.emit(writeRm(bits, address, result));
        if (reg === 3) g.setFlags("sub", bits, "0", a, result);
        afterWrite();
        return NEXT;
      }
      if (reg === 4 || reg === 5) {
        const address = prepareAddress();
        g.emit(`mulAcc(cpu, ${readRm(bits, address)}, ${bits}, ${reg === 5});`);
        g.forgetFlags();
        return NEXT;
      }
      return callInterpreter(g, instruction);
    }
    // ---- IMUL Gv, Ev(, imm) -------------------------------------------------------------------
    case 0x69: case 0x6b: case 0x1af: {
      const address = prepareAddress();
      const b =
        op === 0x1af ? g.register(reg, size) : op === 0x6b ? String(signExtended8(instruction.immediate, size)) : String(immediateOf(instruction.immediate, size));
      const value = g.local();
      g.emit(`${value} = ${readRm(size, address)};`);
      g.emit(`${g.register(reg, size)} = imul${size}(cpu, ${op === 0x1af ? `${b}, ${value}` : `${value}, ${b}`});`);
      g.forgetFlags();
      return NEXT;
    }
    // ---- group 5: PUSH (INC/DEC through the interpreter; CALL/JMP end the region) ------------
    case 0xff:
      if (reg === 6) {
        const value = g.local();
        const address = prepareAddress();
        if (!memory) g.faultable(eip);
        g.emit(`${value} = ${readRm(size, address)}; cpu.push${size}(${value});`);
        g.checkLeave(next);
        return NEXT;
      }
      return callInterpreter(g, instruction);
    // ---- 0F map -----------------------------------------------------------------------------
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: {
      const bits = op === 0x1b6 || op === 0x1be ? 8 : 16;
      const address = prepareAddress();
      const read = readRm(bits, address);
      g.emit(`${g.register(reg, size)} = ${op >= 0x1be ? `((${read}) << ${32 - bits}) >> ${32 - bits}` : read};`);
      return NEXT;
    }
    default:
      if (op >= 0x140 && op <= 0x14f) {
        const value = g.local();
        const address = prepareAddress();
        g.emit(`${value} = ${readRm(size, address)};`);
        g.emit(`if (${g.condition(op & 0xf)}) ${g.register(reg, size)} = ${value};`);
        return NEXT;
      }
      if (op >= 0x190 && op <= 0x19f) {
        const address = prepareAddress();
        g.emit(writeRm(8, address, `(${g.condition(op & 0xf)}) ? 1 : 0`));
        afterWrite();
        return NEXT;
      }
      return callInterpreter(g, instruction);
  }
}

/** INC/DEC keep CF: the same sequence as the interpreter's. */
function emitIncDec(g: Generator, bits: number, increment: boolean, read: string, write: (value: string) => string): void {
  const a = g.local();
  const result = g.local();
  const carry = g.local();
  const operator = increment ? "+" : "-";
  g.emit(`${carry} = cpu.getCF(); ${a} = ${read};`);
  g.emit(`${result} = ${bits === 32 ? `(${a} ${operator} 1) | 0` : `${a} ${operator} 1`};`);
  g.emit(write(result));
  g.emit(`cpu.set${increment ? "Add" : "Sub"}Flags(${a}, 1, ${result}, ${bits - 1}); cpu.flags = (cpu.flags & ~1) | ${carry}; cpu.flagsChanged &= ~1;`);
  g.describeFlags({ kind: "incdec", size: bits, a, b: "1", result });
}

/** LODS, STOS, MOVS without a repeat prefix: read, write, then move the index registers. */
function emitString(g: Generator, instruction: DecodedInstruction, next: number): void {
  const op = instruction.opcode;
  const bits = op & 1 ? (instruction.operandSize32 ? 32 : 16) : 8;
  const bytes = bits / 8;
  const source = instruction.segmentOverride >= 0 ? instruction.segmentOverride : 3;
  const si = instruction.addressSize32 ? "r[6]" : "r16[12]";
  const di = instruction.addressSize32 ? "r[7]" : "r16[14]";
  const delta = g.local();
  g.faultable(instruction.eip);
  g.emit(`${delta} = (cpu.flags & 0x400) ? ${-bytes} : ${bytes};`);
  if (op === 0xac || op === 0xad) {
    g.emit(`${g.register(0, bits)} = cpu.readMem${bits}(${source}, ${si}); ${si} = ${si} + ${delta};`);
    return;
  }
  if (op === 0xaa || op === 0xab) {
    g.emit(`cpu.writeMem${bits}(0, ${di}, ${g.register(0, bits)}); ${di} = ${di} + ${delta};`);
  } else {
    const value = g.local();
    g.emit(`${value} = cpu.readMem${bits}(${source}, ${si}); cpu.writeMem${bits}(0, ${di}, ${value}); ${si} = ${si} + ${delta}; ${di} = ${di} + ${delta};`);
  }
  g.checkLeave(next);
}

/** Runs one instruction through the interpreter from inside the function. */
function callInterpreter(g: Generator, instruction: DecodedInstruction): Flow | null {
  const op = instruction.opcode;
  const controlTransfer = (op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f) || op === 0xe8 || op === 0xe9 || op === 0xeb || op === 0xc2 || op === 0xc3 || op === 0xe2;
  if (mustRunOutside(instruction) || controlTransfer) return null;
  g.emit(`cpu.eip = ${instruction.eip}; cpu.step(table);`);
  g.forgetFlags();
  g.checkLeave((instruction.eip + instruction.length) | 0);
  return NEXT;
}

type BlockExit =
  /** The last instruction's code returned already (calls, returns). */
  | { readonly kind: "leave" }
  /** Control continues at `eip`, which runs outside the region. */
  | { readonly kind: "outside"; readonly eip: number }
  | { readonly kind: "goto"; readonly target: number }
  | { readonly kind: "branch"; readonly condition: string; readonly taken: number; readonly notTaken: number };

interface BasicBlock {
  readonly id: number;
  readonly count: number;
  readonly code: readonly string[];
  readonly exit: BlockExit;
}

const label = (prefix: string, id: number) => `${prefix}${(id >>> 0).toString(16)}`;

const blockTargets = (exit: BlockExit): number[] =>
  exit.kind === "goto" ? [exit.target] : exit.kind === "branch" ? [exit.taken, exit.notTaken] : [];

/**
 * The blocks worth compiling together for an entry: the small loop it heads, if it heads
 * one; otherwise the entry block alone.
 */
function loopAt(entry: number, blocks: ReadonlyMap<number, BasicBlock>): ReadonlyMap<number, BasicBlock> {
  const alone = new Map([[entry, blocks.get(entry)!]]);
  const successors = new Map<number, number[]>();
  for (const block of blocks.values()) successors.set(block.id, blockTargets(block.exit).filter((target) => blocks.has(target)));
  const region = structureRegion(entry, successors);
  const loop = region?.loops.get(entry);
  if (!loop) return alone;
  let instructions = 0;
  for (const id of loop) instructions += blocks.get(id)!.count;
  if (instructions > MAX_LOOP_INSTRUCTIONS) return alone;
  return new Map([...loop].map((id) => [id, blocks.get(id)!]));
}

/**
 * The region as structured JavaScript: loops as labeled `for (;;)`, forward branches as
 * `break` out of labeled blocks that end right before their target. Null when the blocks'
 * control flow is irreducible.
 */
function structuredSource(entry: number, blocks: ReadonlyMap<number, BasicBlock>): string | null {
  const targets = blockTargets;
  const successors = new Map<number, number[]>();
  for (const block of blocks.values()) successors.set(block.id, targets(block.exit).filter((target) => blocks.has(target)));
  const region = structureRegion(entry, successors);
  if (!region) return null;
  const { order, loops, innermostLoop, parentLoop } = region;
  const position = new Map(order.map((id, i) => [id, i]));
  const loopEnd = new Map<number, number>();
  for (const [header, body] of loops) loopEnd.set(header, Math.max(...[...body].map((id) => position.get(id) ?? -1)));
  const endsLoop = new Set(loopEnd.values());
  const isContinue = (from: number, to: number) => loops.get(to)?.has(from) === true;
  const fallsThrough = (index: number, to: number) => order[index + 1] === to && !endsLoop.has(index);

  // Forward targets reached other than by falling through get a labeled block.
  const labeled = new Set<number>();
  order.forEach((id, index) => {
    const exit = blocks.get(id)!.exit;
    for (const target of targets(exit)) {
      if (!blocks.has(target) || isContinue(id, target)) continue;
      const isTaken = exit.kind === "branch" && target === exit.taken;
      if (isTaken || !fallsThrough(index, target)) labeled.add(target);
    }
  });
  const scopeOfLabel = (id: number) => (loops.has(id) ? parentLoop.get(id) : innermostLoop.get(id));
  const openLabels = (scope: number | undefined, lines: string[]) => {
    const inScope = [...labeled].filter((id) => scopeOfLabel(id) === scope).sort((a, b) => position.get(b)! - position.get(a)!);
    for (const id of inScope) lines.push(`${label("B", id)}: {`);
  };
  // `mayFallThrough` is false inside the taken arm of a branch: falling off the `if` would
  // continue with the other arm, not with the next block.
  const transfer = (from: number, index: number, to: number, mayFallThrough = true): string => {
    if (!blocks.has(to)) return `cpu.eip = ${to}; return n;`;
    if (isContinue(from, to)) return `if (cpu.leaveBlock) { cpu.eip = ${to}; return n; } continue ${label("L", to)};`;
    if (mayFallThrough && fallsThrough(index, to)) return "";
    return `break ${label("B", to)};`;
  };

  const lines: string[] = ["return function region(budget) {", "let n = 0;"];
  openLabels(undefined, lines);
  order.forEach((id, index) => {
    const block = blocks.get(id)!;
    if (labeled.has(id)) lines.push("}");
    if (loops.has(id)) {
      lines.push(`${label("L", id)}: for (;;) {`);
      openLabels(id, lines);
    }
    lines.push("{", ...block.code.slice(0, 1));
    lines.push(`if (n + ${block.count} > budget) { cpu.eip = ${id}; return n; }`, "cpu.blockProgress = n;");
    lines.push(...block.code.slice(1), `n += ${block.count};`);
    const exit = block.exit;
    if (exit.kind === "outside") lines.push(`cpu.eip = ${exit.eip}; return n;`);
    else if (exit.kind === "goto") lines.push(transfer(id, index, exit.target));
    else if (exit.kind === "branch") lines.push(`if (${exit.condition}) { ${transfer(id, index, exit.taken, false)} }`, transfer(id, index, exit.notTaken));
    lines.push("}");
    for (const [header, last] of [...loopEnd].sort((a, b) => loops.get(a[0])!.size - loops.get(b[0])!.size)) {
      if (last === index) lines.push("}");
      void header;
    }
  });
  lines.push("return n;", "};");
  return lines.join("\n");
}

export interface RegionSource {
  /** Byte at a physical address inside the region's page, or −1 outside it. */
  byteAt(physical: number): number;
}

interface RegionInstruction {
  readonly decoded: DecodedInstruction;
  /** Position in the page (physical address). */
  readonly physical: number;
}

/**
 * Compiles the region entered at `eip` (physical `physical`); returns null when not even
 * its first instruction can be compiled.
 */
export function compileRegion(
  physical: number,
  eip: number,
  csBase: number,
  csLimit: number,
  code32: number,
  source: RegionSource,
  runtime: CompilerRuntime,
  cpu: Cpu,
): CompiledBlock | null {
  // EIPs of this linear page map to physical addresses by a constant offset.
  const physicalOf = (at: number) => physical + (at - eip);
  const pageStartEip = eip - (physical & 0xfff);
  const inPage = (at: number, length: number) => at >= pageStartEip && at + length <= pageStartEip + 0x1000;

  // 1. Discover the instructions reachable from the entry inside the page.
  const probe = new Generator(csLimit);
  const instructions = new Map<number, RegionInstruction>();
  const flows = new Map<number, Flow | null>();
  const leaders = new Set<number>([eip]);
  const worklist = [eip];
  while (worklist.length > 0 && instructions.size < MAX_REGION_INSTRUCTIONS) {
    let at = worklist.pop()!;
    while (!instructions.has(at) && !flows.has(at) && instructions.size < MAX_REGION_INSTRUCTIONS) {
      const start = physicalOf(at);
      const decoded = inPage(at, 1) ? decodeInstruction((i) => source.byteAt(start + i), at, code32 === 1) : null;
      const usable =
        decoded !== null &&
        inPage(at, decoded.length) &&
        (code32 === 1 || at + decoded.length <= 0x10000) &&
        (at >>> 0) + decoded.length - 1 <= csLimit >>> 0;
      const flow = usable ? emitInstruction(probe, decoded) : null;
      probe.take();
      if (!usable || flow === null) {
        flows.set(at, null); // the region ends before this instruction
        break;
      }
      instructions.set(at, { decoded, physical: start });
      flows.set(at, flow);
      const next = (at + decoded.length) | 0;
      if (flow.kind === "branch") {
        leaders.add(flow.target).add(next);
        worklist.push(flow.target, next);
        break;
      }
      if (flow.kind === "jump") {
        leaders.add(flow.target);
        worklist.push(flow.target);
        break;
      }
      if (flow.kind === "leave") break;
      at = next;
    }
  }
  if (!instructions.has(eip)) return null;

  // 2. Basic blocks: their code and where control goes next.
  const generator = new Generator(csLimit);
  const indexInBasicBlock = new Map<number, number>();
  const blocks = new Map<number, BasicBlock>();
  for (const leader of [...leaders].sort((a, b) => a - b)) {
    if (!instructions.has(leader)) continue;
    generator.startBasicBlock();
    const firstLocal = generator.localCount;
    const body: string[] = [];
    let at = leader;
    let count = 0;
    let exit: BlockExit = { kind: "leave" };
    for (;;) {
      const instruction = instructions.get(at);
      if (!instruction) {
        exit = { kind: "outside", eip: at }; // the next instruction runs outside the region
        break;
      }
      indexInBasicBlock.set(at, count);
      generator.indexInBlock = count;
      const flow = emitInstruction(generator, instruction.decoded)!;
      body.push(...generator.take());
      count++;
      const next = (at + instruction.decoded.length) | 0;
      if (flow.kind === "leave") break;
      if (flow.kind === "branch") {
        exit = { kind: "branch", condition: flow.condition, taken: flow.target, notTaken: next };
        break;
      }
      if (flow.kind === "jump" || leaders.has(next)) {
        exit = { kind: "goto", target: flow.kind === "jump" ? flow.target : next };
        break;
      }
      at = next;
    }
    const declarations = generator.declarations(firstLocal, generator.localCount);
    blocks.set(leader, { id: leader, count, code: [declarations, ...body], exit });
  }
  const sourceText = structuredSource(eip, loopAt(eip, blocks)) ?? structuredSource(eip, new Map([[eip, blocks.get(eip)!]]))!;
  const create = (text: string) =>
    (new Function("cpu", "r", "r16", "r8", "table", "cond", "shift", "mulAcc", "imul16", "imul32", text) as (...args: unknown[]) => (budget: number) => number)(
      cpu,
      cpu.regs,
      cpu.regs16,
      cpu.regs8,
      runtime.table,
      runtime.condition,
      runtime.shift,
      runtime.multiplyAccumulator,
      runtime.imul16,
      runtime.imul32,
    );
  let run: (budget: number) => number;
  try {
    run = create(sourceText);
  } catch (error) {
    // A generator bug must not stop the guest: fall back to the entry block alone.
    const single = structuredSource(eip, new Map([[eip, blocks.get(eip)!]]));
    if (single === null || single === sourceText) throw error;
    run = create(single);
  }

  // 3. Remember the bytes the region came from (one span of the page).
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const instruction of instructions.values()) {
    first = Math.min(first, instruction.physical);
    last = Math.max(last, instruction.physical + instruction.decoded.length);
  }
  const bytes = new Uint8Array(last - first);
  for (let i = 0; i < bytes.length; i++) bytes[i] = source.byteAt(first + i);
  return {
    physical,
    eip,
    csBase,
    csLimit,
    code32,
    instructionCount: instructions.size,
    indexInBasicBlock,
    run,
    bytesStart: first,
    bytes,
    epoch: 0,
  };
}

/**
 * ROL, ROR, SHL, SHR and SAR by a constant count, inline: the same results and flags as
 * the interpreter's shiftOperation (80386 and later; the JIT runs only there), without its
 * generic switch and call. False (nothing emitted) for what it leaves to the helper: RCL,
 * RCR, a zero count, and 8/16-bit shifts by their width or more.
 */
function emitConstantShift(g: Generator, op: number, bits: number, count: number, value: string, read: string, write: (result: string) => string): boolean {
  if (count === 0 || op === 2 || op === 3) return false;
  const isShift = op === 4 || op === 5 || op === 6 || op === 7;
  if (isShift && count >= bits) return false;
  const sizeBit = bits - 1;
  const mask = bits === 32 ? -1 : (1 << bits) - 1;
  const msb = bits === 32 ? 0x80000000 | 0 : 1 << sizeBit;
  const result = g.local();
  const carry = g.local();
  g.emit(`${value} = ${read};`);
  const masked = (expression: string) => (bits === 32 ? `(${expression}) | 0` : `(${expression}) & ${mask}`);
  if (op === 0 || op === 1) {
    const n = count % bits;
    if (op === 0) {
      g.emit(`${result} = ${n === 0 ? value : masked(`(${value} << ${n}) | (${value} >>> ${bits - n})`)};`);
      g.emit(`${carry} = ${result} & 1;`);
      g.emit(`cpu.materializeFlags(); cpu.flags = (cpu.flags & ~2049) | ${carry} | ((((${result} >>> ${sizeBit}) & 1) !== ${carry}) ? 2048 : 0);`);
    } else {
      g.emit(`${result} = ${n === 0 ? value : masked(`(${value} >>> ${n}) | (${value} << ${bits - n})`)};`);
      g.emit(`${carry} = (${result} >>> ${sizeBit}) & 1;`);
      g.emit(`cpu.materializeFlags(); cpu.flags = (cpu.flags & ~2049) | ${carry} | ((${carry} !== ((${result} >>> ${sizeBit - 1}) & 1)) ? 2048 : 0);`);
    }
    g.emit(write(result));
    g.forgetFlags();
    return true;
  }
  let overflow: string;
  if (op === 5) {
    g.emit(`${carry} = (${value} >>> ${count - 1}) & 1;`);
    g.emit(`${result} = ${bits === 32 ? `(${value} >>> ${count}) | 0` : `${value} >>> ${count}`};`);
    overflow = count === 1 ? `((${value} & ${msb}) !== 0)` : `((((${result} << 1) ^ ${result}) & ${msb}) !== 0)`;
  } else if (op === 7) {
    const signed = bits === 32 ? `(${value} | 0)` : `((${value} << ${32 - bits}) >> ${32 - bits})`;
    g.emit(`${carry} = (${signed} >> ${count - 1}) & 1;`);
    g.emit(`${result} = ${masked(`${signed} >> ${count}`)};`);
    overflow = "false";
  } else {
    g.emit(`${carry} = (${value} >>> ${bits - count}) & 1;`);
    g.emit(`${result} = ${masked(`${value} << ${count}`)};`);
    overflow = `(((${result} >>> ${sizeBit}) & 1) !== ${carry})`;
  }
  // ZF/SF/PF lazily from the result; CF and OF exact, AF cleared (cpu.setResultFlags).
  g.emit(`cpu.setResultFlags(${result}, ${sizeBit}); cpu.flags = (cpu.flags & ~2065) | ${carry} | (${overflow} ? 2048 : 0);`);
  g.emit(write(result));
  g.describeFlags({ kind: "shift", size: bits, a: value, b: "0", result, carry });
  return true;
}
