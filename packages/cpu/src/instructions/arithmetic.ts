/**
 * Integer arithmetic: the eight ALU operations (ADD OR ADC SBB AND SUB XOR CMP) in all their
 * encodings, INC/DEC, group 3 (TEST NOT NEG MUL IMUL DIV IDIV), the IMUL forms, CMPXCHG,
 * XADD, CMPXCHG8B, the decimal adjusts and CBW/CWD.
 *
 * Operand legend (Intel SDM): E = ModR/M r/m, G = ModR/M reg, I = immediate; b = byte,
 * w = word, v = word or dword by operand size.
 *
 * Rule for every handler: memory is written before flags or registers change, so a fault
 * or an intercepted access on the write leaves the instruction undone.
 */
import type { Cpu } from "../cpu.js";
import {
  EAX,
  EDX,
  FLAG_AF,
  FLAG_CF,
  FLAG_OF,
  FLAG_PF,
  FLAG_SF,
  FLAG_ZF,
  VECTOR_DE,
} from "../registers.js";
import { TWO_BYTE, type TableBuilder } from "./table.js";

const OP_ADD = 0;
const OP_ADC = 2;
const OP_SBB = 3;
const OP_SUB = 5;
const OP_CMP = 7;

/** Result of ALU operation `op` (0-7) on two operands; flags are set by {@link aluFlags}. */
function aluResult(cpu: Cpu, op: number, a: number, b: number): number {
  switch (op) {
    case 0: return a + b;
    case 1: return a | b;
    case 2: return a + b + cpu.getCF();
    case 3: return a - b - cpu.getCF();
    case 4: return a & b;
    case 5: return a - b;
    case 6: return a ^ b;
    default: return a - b;
  }
}

function aluFlags(cpu: Cpu, op: number, a: number, b: number, result: number, sizeBit: number): void {
  switch (op) {
    case OP_ADD:
    case OP_ADC:
      cpu.setAddFlags(a, b, result, sizeBit);
      break;
    case OP_SBB:
    case OP_SUB:
    case OP_CMP:
      cpu.setSubFlags(a, b, result, sizeBit);
      break;
    default:
      cpu.setLogicFlags(result, sizeBit);
  }
}

/** ALU on a ModR/M destination of the given size with source `b`. */
function aluModrm8(cpu: Cpu, op: number, b: number): void {
  if (op !== OP_CMP) cpu.probeModrmWrite(1);
  const a = cpu.readModrm8();
  const r = aluResult(cpu, op, a, b);
  if (op !== OP_CMP) cpu.writeModrm8(r);
  aluFlags(cpu, op, a, b, r, 7);
}

function aluModrm16(cpu: Cpu, op: number, b: number): void {
  if (op !== OP_CMP) cpu.probeModrmWrite(2);
  const a = cpu.readModrm16();
  const r = aluResult(cpu, op, a, b);
  if (op !== OP_CMP) cpu.writeModrm16(r);
  aluFlags(cpu, op, a, b, r, 15);
}

function aluModrm32(cpu: Cpu, op: number, b: number): void {
  if (op !== OP_CMP) cpu.probeModrmWrite(4);
  const a = cpu.readModrm32();
  const r = aluResult(cpu, op, a, b) | 0;
  if (op !== OP_CMP) cpu.writeModrm32(r);
  aluFlags(cpu, op, a, b, r, 31);
}

// ---- 00-3F: op Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / eAX,Iv ---------------------------

function aluEbGb(cpu: Cpu): void {
  cpu.fetchModrm();
  aluModrm8(cpu, cpu.opcode >> 3, cpu.regs8[cpu.modrmReg8]!);
}

function aluEwGw(cpu: Cpu): void {
  cpu.fetchModrm();
  aluModrm16(cpu, cpu.opcode >> 3, cpu.regs16[cpu.modrmReg << 1]!);
}

function aluEdGd(cpu: Cpu): void {
  cpu.fetchModrm();
  aluModrm32(cpu, cpu.opcode >> 3, cpu.regs[cpu.modrmReg]!);
}

function aluGbEb(cpu: Cpu): void {
  cpu.fetchModrm();
  const op = cpu.opcode >> 3;
  const reg = cpu.modrmReg8;
  const a = cpu.regs8[reg]!;
  const b = cpu.readModrm8();
  const r = aluResult(cpu, op, a, b);
  if (op !== OP_CMP) cpu.regs8[reg] = r;
  aluFlags(cpu, op, a, b, r, 7);
}

function aluGwEw(cpu: Cpu): void {
  cpu.fetchModrm();
  const op = cpu.opcode >> 3;
  const reg = cpu.modrmReg << 1;
  const a = cpu.regs16[reg]!;
  const b = cpu.readModrm16();
  const r = aluResult(cpu, op, a, b);
  if (op !== OP_CMP) cpu.regs16[reg] = r;
  aluFlags(cpu, op, a, b, r, 15);
}

function aluGdEd(cpu: Cpu): void {
  cpu.fetchModrm();
  const op = cpu.opcode >> 3;
  const reg = cpu.modrmReg;
  const a = cpu.regs[reg]!;
  const b = cpu.readModrm32();
  const r = aluResult(cpu, op, a, b) | 0;
  if (op !== OP_CMP) cpu.regs[reg] = r;
  aluFlags(cpu, op, a, b, r, 31);
}

function aluAlIb(cpu: Cpu): void {
  const op = cpu.opcode >> 3;
  const a = cpu.regs8[0]!;
  const b = cpu.fetch8();
  const r = aluResult(cpu, op, a, b);
  if (op !== OP_CMP) cpu.regs8[0] = r;
  aluFlags(cpu, op, a, b, r, 7);
}

function aluAxIw(cpu: Cpu): void {
  const op = cpu.opcode >> 3;
  const a = cpu.regs16[0]!;
  const b = cpu.fetch16();
  const r = aluResult(cpu, op, a, b);
  if (op !== OP_CMP) cpu.regs16[0] = r;
  aluFlags(cpu, op, a, b, r, 15);
}

function aluEaxId(cpu: Cpu): void {
  const op = cpu.opcode >> 3;
  const a = cpu.regs[EAX]!;
  const b = cpu.fetch32();
  const r = aluResult(cpu, op, a, b) | 0;
  if (op !== OP_CMP) cpu.regs[EAX] = r;
  aluFlags(cpu, op, a, b, r, 31);
}

// ---- 80-83: group 1 --------------------------------------------------------------------

function group1EbIb(cpu: Cpu): void {
  cpu.fetchModrm();
  const b = cpu.fetch8();
  aluModrm8(cpu, cpu.modrmReg, b);
}

function group1EwIw(cpu: Cpu): void {
  cpu.fetchModrm();
  const b = cpu.fetch16();
  aluModrm16(cpu, cpu.modrmReg, b);
}

function group1EdId(cpu: Cpu): void {
  cpu.fetchModrm();
  const b = cpu.fetch32();
  aluModrm32(cpu, cpu.modrmReg, b);
}

function group1EwIb(cpu: Cpu): void {
  cpu.fetchModrm();
  const b = cpu.fetchSigned8() & 0xffff;
  aluModrm16(cpu, cpu.modrmReg, b);
}

function group1EdIb(cpu: Cpu): void {
  cpu.fetchModrm();
  const b = cpu.fetchSigned8();
  aluModrm32(cpu, cpu.modrmReg, b);
}

// ---- INC / DEC -----------------------------------------------------------------------------

/** INC/DEC keep CF: make it current, then let the others be lazy. */
function incDecFlags(cpu: Cpu, a: number, result: number, increment: boolean, sizeBit: number): void {
  const carry = cpu.getCF();
  if (increment) cpu.setAddFlags(a, 1, result, sizeBit);
  else cpu.setSubFlags(a, 1, result, sizeBit);
  cpu.flags = (cpu.flags & ~FLAG_CF) | carry;
  cpu.flagsChanged &= ~FLAG_CF;
}

function incRegister16(cpu: Cpu): void {
  const reg = (cpu.opcode & 7) << 1;
  const a = cpu.regs16[reg]!;
  const increment = cpu.opcode < 0x48;
  const r = increment ? a + 1 : a - 1;
  cpu.regs16[reg] = r;
  incDecFlags(cpu, a, r, increment, 15);
}

function incRegister32(cpu: Cpu): void {
  const reg = cpu.opcode & 7;
  const a = cpu.regs[reg]!;
  const increment = cpu.opcode < 0x48;
  const r = (increment ? a + 1 : a - 1) | 0;
  cpu.regs[reg] = r;
  incDecFlags(cpu, a, r, increment, 31);
}

export function incDecModrm8(cpu: Cpu, increment: boolean): void {
  cpu.probeModrmWrite(1);
  const a = cpu.readModrm8();
  const r = increment ? a + 1 : a - 1;
  cpu.writeModrm8(r);
  incDecFlags(cpu, a, r, increment, 7);
}

export function incDecModrm16(cpu: Cpu, increment: boolean): void {
  cpu.probeModrmWrite(2);
  const a = cpu.readModrm16();
  const r = increment ? a + 1 : a - 1;
  cpu.writeModrm16(r);
  incDecFlags(cpu, a, r, increment, 15);
}

export function incDecModrm32(cpu: Cpu, increment: boolean): void {
  cpu.probeModrmWrite(4);
  const a = cpu.readModrm32();
  const r = (increment ? a + 1 : a - 1) | 0;
  cpu.writeModrm32(r);
  incDecFlags(cpu, a, r, increment, 31);
}

// ---- TEST ------------------------------------------------------------------------------------

function testEbGb(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.setLogicFlags(cpu.readModrm8() & cpu.regs8[cpu.modrmReg8]!, 7);
}

function testEwGw(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.setLogicFlags(cpu.readModrm16() & cpu.regs16[cpu.modrmReg << 1]!, 15);
}

function testEdGd(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.setLogicFlags(cpu.readModrm32() & cpu.regs[cpu.modrmReg]!, 31);
}

function testAlIb(cpu: Cpu): void {
  cpu.setLogicFlags(cpu.regs8[0]! & cpu.fetch8(), 7);
}

function testAxIw(cpu: Cpu): void {
  cpu.setLogicFlags(cpu.regs16[0]! & cpu.fetch16(), 15);
}

function testEaxId(cpu: Cpu): void {
  cpu.setLogicFlags(cpu.regs[EAX]! & cpu.fetch32(), 31);
}

// ---- group 3: F6 / F7 ------------------------------------------------------------------------

/** MUL/IMUL flags: CF = OF = `overflow`; the rest follow the low result (undefined on Intel). */
export function multiplyFlags(cpu: Cpu, low: number, overflow: boolean, sizeBit: number): void {
  cpu.setResultFlags(low, sizeBit);
  cpu.flags &= ~(FLAG_CF | FLAG_OF | FLAG_AF);
  if (overflow) cpu.flags |= FLAG_CF | FLAG_OF;
}

/**
 * MUL / one-operand IMUL (group 3 /4 and /5): AX, DX:AX or EDX:EAX = accumulator × `value`.
 * Shared by the interpreter and compiled code so both set the flags the same way.
 */
export function multiplyAccumulator(cpu: Cpu, value: number, bits: number, signed: boolean): void {
  if (bits === 8) {
    const r = signed ? ((cpu.regs8[0]! << 24) >> 24) * ((value << 24) >> 24) : cpu.regs8[0]! * (value & 0xff);
    cpu.regs16[0] = r;
    multiplyFlags(cpu, r & 0xff, signed ? r !== (r << 24) >> 24 : r > 0xff, 7);
  } else if (bits === 16) {
    const r = signed ? ((cpu.regs16[0]! << 16) >> 16) * ((value << 16) >> 16) : cpu.regs16[0]! * (value & 0xffff);
    cpu.regs16[0] = r;
    cpu.regs16[4] = signed ? r >> 16 : r >>> 16;
    multiplyFlags(cpu, r & 0xffff, signed ? r !== (r << 16) >> 16 : r > 0xffff, 15);
  } else {
    const a = cpu.regs[EAX]!;
    const low = Math.imul(a, value);
    const high = signed ? multiplyHighSigned(a, value | 0) : multiplyHighUnsigned(a >>> 0, value >>> 0);
    cpu.regs[EAX] = low;
    cpu.regs[EDX] = high;
    multiplyFlags(cpu, low, signed ? high !== low >> 31 : high !== 0, 31);
  }
}

function divideError(cpu: Cpu): never {
  return cpu.raiseFault(VECTOR_DE);
}

function group3Eb(cpu: Cpu): void {
  cpu.fetchModrm();
  switch (cpu.modrmReg) {
    case 0:
    case 1: // TEST Eb,Ib (/1 is an undocumented alias)
      cpu.setLogicFlags(cpu.readModrm8() & cpu.fetch8(), 7);
      return;
    case 2: // NOT
      cpu.probeModrmWrite(1);
      cpu.writeModrm8(~cpu.readModrm8());
      return;
    case 3: { // NEG
      cpu.probeModrmWrite(1);
      const a = cpu.readModrm8();
      const r = -a;
      cpu.writeModrm8(r);
      cpu.setSubFlags(0, a, r, 7);
      return;
    }
    case 4: // MUL AL
    case 5: // IMUL AL
      multiplyAccumulator(cpu, cpu.readModrm8(), 8, cpu.modrmReg === 5);
      return;
    case 6: { // DIV AX / Eb
      const divisor = cpu.readModrm8();
      const dividend = cpu.regs16[0]!;
      if (divisor === 0) divideError(cpu);
      const quotient = Math.floor(dividend / divisor);
      if (quotient > 0xff) divideError(cpu);
      cpu.regs8[0] = quotient;
      cpu.regs8[1] = dividend % divisor;
      return;
    }
    default: { // IDIV AX / Eb
      const divisor = (cpu.readModrm8() << 24) >> 24;
      const dividend = (cpu.regs16[0]! << 16) >> 16;
      if (divisor === 0) divideError(cpu);
      let quotient = Math.trunc(dividend / divisor);
      const remainder = dividend % divisor;
      if (cpu.prefixRepeat !== 0 && cpu.modelLevel === 0) quotient = -quotient; // 8086 microcode quirk
      if (quotient > 127 || quotient < (cpu.modelLevel === 0 ? -127 : -128)) divideError(cpu);
      cpu.regs8[0] = quotient;
      cpu.regs8[1] = remainder;
    }
  }
}

function group3Ew(cpu: Cpu): void {
  cpu.fetchModrm();
  switch (cpu.modrmReg) {
    case 0:
    case 1:
      cpu.setLogicFlags(cpu.readModrm16() & cpu.fetch16(), 15);
      return;
    case 2:
      cpu.probeModrmWrite(2);
      cpu.writeModrm16(~cpu.readModrm16());
      return;
    case 3: {
      cpu.probeModrmWrite(2);
      const a = cpu.readModrm16();
      const r = -a;
      cpu.writeModrm16(r);
      cpu.setSubFlags(0, a, r, 15);
      return;
    }
    case 4:
    case 5:
      multiplyAccumulator(cpu, cpu.readModrm16(), 16, cpu.modrmReg === 5);
      return;
    case 6: {
      const divisor = cpu.readModrm16();
      const dividend = (cpu.regs16[4]! * 0x10000 + cpu.regs16[0]!);
      if (divisor === 0) divideError(cpu);
      const quotient = Math.floor(dividend / divisor);
      if (quotient > 0xffff) divideError(cpu);
      cpu.regs16[0] = quotient;
      cpu.regs16[4] = dividend % divisor;
      return;
    }
    default: {
      const divisor = (cpu.readModrm16() << 16) >> 16;
      const dividend = (cpu.regs16[4]! << 16) | cpu.regs16[0]!;
      if (divisor === 0) divideError(cpu);
      let quotient = Math.trunc(dividend / divisor);
      const remainder = dividend % divisor;
      if (cpu.prefixRepeat !== 0 && cpu.modelLevel === 0) quotient = -quotient;
      if (quotient > 32767 || quotient < (cpu.modelLevel === 0 ? -32767 : -32768)) divideError(cpu);
      cpu.regs16[0] = quotient;
      cpu.regs16[4] = remainder;
    }
  }
}

function group3Ed(cpu: Cpu): void {
  cpu.fetchModrm();
  switch (cpu.modrmReg) {
    case 0:
    case 1:
      cpu.setLogicFlags(cpu.readModrm32() & cpu.fetch32(), 31);
      return;
    case 2:
      cpu.probeModrmWrite(4);
      cpu.writeModrm32(~cpu.readModrm32());
      return;
    case 3: {
      cpu.probeModrmWrite(4);
      const a = cpu.readModrm32();
      const r = -a | 0;
      cpu.writeModrm32(r);
      cpu.setSubFlags(0, a, r, 31);
      return;
    }
    case 4:
    case 5:
      multiplyAccumulator(cpu, cpu.readModrm32(), 32, cpu.modrmReg === 5);
      return;
    case 6: {
      const divisor = cpu.readModrm32() >>> 0;
      const high = cpu.regs[EDX]! >>> 0;
      if (divisor === 0 || high >= divisor) divideError(cpu);
      divideUnsigned64(high, cpu.regs[EAX]! >>> 0, divisor);
      cpu.regs[EAX] = divisionQuotient;
      cpu.regs[EDX] = divisionRemainder;
      return;
    }
    default: {
      const divisor = cpu.readModrm32();
      if (divisor === 0) divideError(cpu);
      let high = cpu.regs[EDX]!;
      let low = cpu.regs[EAX]! >>> 0;
      const negativeDividend = high < 0;
      if (negativeDividend) {
        low = (-low) >>> 0;
        high = ~high + (low === 0 ? 1 : 0);
      }
      const absoluteDivisor = Math.abs(divisor);
      if ((high >>> 0) >= absoluteDivisor) divideError(cpu);
      divideUnsigned64(high >>> 0, low, absoluteDivisor);
      const negativeQuotient = negativeDividend !== divisor < 0;
      if (divisionQuotient > (negativeQuotient ? 0x80000000 : 0x7fffffff)) divideError(cpu);
      cpu.regs[EAX] = negativeQuotient ? -divisionQuotient : divisionQuotient;
      cpu.regs[EDX] = negativeDividend ? -divisionRemainder : divisionRemainder;
    }
  }
}

let divisionQuotient = 0;
let divisionRemainder = 0;

/**
 * (high:low) / divisor for unsigned 32-bit parts with high < divisor, in doubles (two
 * 16-bit long-division steps keep every intermediate below 2^53). Results in
 * divisionQuotient / divisionRemainder.
 */
function divideUnsigned64(high: number, low: number, divisor: number): void {
  let t = high * 0x10000 + (low >>> 16);
  let q1 = Math.floor(t / divisor);
  let r = t - q1 * divisor;
  if (r < 0) {
    q1--;
    r += divisor;
  } else if (r >= divisor) {
    q1++;
    r -= divisor;
  }
  t = r * 0x10000 + (low & 0xffff);
  let q0 = Math.floor(t / divisor);
  r = t - q0 * divisor;
  if (r < 0) {
    q0--;
    r += divisor;
  } else if (r >= divisor) {
    q0++;
    r -= divisor;
  }
  divisionQuotient = q1 * 0x10000 + q0;
  divisionRemainder = r;
}

/** High 32 bits of the 64-bit product of two unsigned 32-bit numbers. */
export function multiplyHighUnsigned(a: number, b: number): number {
  const aLow = a & 0xffff;
  const aHigh = a >>> 16;
  const bLow = b & 0xffff;
  const bHigh = b >>> 16;
  const lowLow = aLow * bLow;
  const middle = aHigh * bLow + (lowLow >>> 16);
  const middle2 = aLow * bHigh + (middle & 0xffff);
  return (aHigh * bHigh + Math.floor(middle / 0x10000) + Math.floor(middle2 / 0x10000)) | 0;
}

/** High 32 bits of the 64-bit product of two signed 32-bit numbers. */
export function multiplyHighSigned(a: number, b: number): number {
  let high = multiplyHighUnsigned(a >>> 0, b >>> 0);
  if (a < 0) high = (high - b) | 0;
  if (b < 0) high = (high - a) | 0;
  return high;
}

// ---- IMUL Gv,Ev(,I) -------------------------------------------------------------------------

export function imul16(cpu: Cpu, a: number, b: number): number {
  const r = ((a << 16) >> 16) * ((b << 16) >> 16);
  multiplyFlags(cpu, r & 0xffff, r !== (r << 16) >> 16, 15);
  return r;
}

export function imul32(cpu: Cpu, a: number, b: number): number {
  const low = Math.imul(a, b);
  multiplyFlags(cpu, low, multiplyHighSigned(a, b) !== low >> 31, 31);
  return low;
}

function imulGwEwIw(cpu: Cpu): void {
  cpu.fetchModrm();
  const a = cpu.readModrm16();
  const b = cpu.opcode === 0x6b ? cpu.fetchSigned8() : cpu.fetch16();
  cpu.regs16[cpu.modrmReg << 1] = imul16(cpu, a, b);
}

function imulGdEdId(cpu: Cpu): void {
  cpu.fetchModrm();
  const a = cpu.readModrm32();
  const b = cpu.opcode === 0x6b ? cpu.fetchSigned8() : cpu.fetch32();
  cpu.regs[cpu.modrmReg] = imul32(cpu, a, b);
}

function imulGwEw(cpu: Cpu): void {
  cpu.fetchModrm();
  const reg = cpu.modrmReg << 1;
  cpu.regs16[reg] = imul16(cpu, cpu.regs16[reg]!, cpu.readModrm16());
}

function imulGdEd(cpu: Cpu): void {
  cpu.fetchModrm();
  const reg = cpu.modrmReg;
  cpu.regs[reg] = imul32(cpu, cpu.regs[reg]!, cpu.readModrm32());
}

// ---- CMPXCHG, XADD, CMPXCHG8B ----------------------------------------------------------------

function cmpxchgEbGb(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.probeModrmWrite(1);
  const destination = cpu.readModrm8();
  const accumulator = cpu.regs8[0]!;
  const r = accumulator - destination;
  if (r === 0) cpu.writeModrm8(cpu.regs8[cpu.modrmReg8]!);
  else {
    cpu.writeModrm8(destination); // the processor always writes the destination
    cpu.regs8[0] = destination;
  }
  cpu.setSubFlags(accumulator, destination, r, 7);
}

function cmpxchgEwGw(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.probeModrmWrite(2);
  const destination = cpu.readModrm16();
  const accumulator = cpu.regs16[0]!;
  const r = accumulator - destination;
  if (r === 0) cpu.writeModrm16(cpu.regs16[cpu.modrmReg << 1]!);
  else {
    cpu.writeModrm16(destination);
    cpu.regs16[0] = destination;
  }
  cpu.setSubFlags(accumulator, destination, r, 15);
}

function cmpxchgEdGd(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.probeModrmWrite(4);
  const destination = cpu.readModrm32();
  const accumulator = cpu.regs[EAX]!;
  const r = (accumulator - destination) | 0;
  if (accumulator === destination) cpu.writeModrm32(cpu.regs[cpu.modrmReg]!);
  else {
    cpu.writeModrm32(destination);
    cpu.regs[EAX] = destination;
  }
  cpu.setSubFlags(accumulator, destination, r, 31);
}

// XADD: source ← old destination, then destination ← sum, so `xadd eax, eax` doubles EAX.
// A memory destination is written first (a fault then changes nothing).
function xaddEbGb(cpu: Cpu): void {
  const modrm = cpu.fetchModrm();
  cpu.probeModrmWrite(1);
  const reg = cpu.modrmReg8;
  const a = cpu.readModrm8();
  const b = cpu.regs8[reg]!;
  const r = a + b;
  if (modrm >= 0xc0) cpu.regs8[reg] = a;
  cpu.writeModrm8(r);
  if (modrm < 0xc0) cpu.regs8[reg] = a;
  cpu.setAddFlags(a, b, r, 7);
}

function xaddEwGw(cpu: Cpu): void {
  const modrm = cpu.fetchModrm();
  cpu.probeModrmWrite(2);
  const reg = cpu.modrmReg << 1;
  const a = cpu.readModrm16();
  const b = cpu.regs16[reg]!;
  const r = a + b;
  if (modrm >= 0xc0) cpu.regs16[reg] = a;
  cpu.writeModrm16(r);
  if (modrm < 0xc0) cpu.regs16[reg] = a;
  cpu.setAddFlags(a, b, r, 15);
}

function xaddEdGd(cpu: Cpu): void {
  const modrm = cpu.fetchModrm();
  cpu.probeModrmWrite(4);
  const reg = cpu.modrmReg;
  const a = cpu.readModrm32();
  const b = cpu.regs[reg]!;
  const r = (a + b) | 0;
  if (modrm >= 0xc0) cpu.regs[reg] = a;
  cpu.writeModrm32(r);
  if (modrm < 0xc0) cpu.regs[reg] = a;
  cpu.setAddFlags(a, b, r, 31);
}

function cmpxchg8b(cpu: Cpu): void {
  const modrm = cpu.fetchModrm();
  if (modrm >= 0xc0 || cpu.modrmReg !== 1) cpu.undefinedOpcode();
  const segment = cpu.eaSegment;
  const offset = cpu.eaOffset;
  cpu.probeMemWrite(segment, offset, 8);
  const low = cpu.readMem32(segment, offset);
  const high = cpu.readMem32(segment, (offset + 4) | 0);
  cpu.materializeFlags();
  if (low === cpu.regs[EAX] && high === cpu.regs[EDX]) {
    cpu.writeMem32(segment, offset, cpu.regs[3]!);
    cpu.writeMem32(segment, (offset + 4) | 0, cpu.regs[1]!);
    cpu.flags |= FLAG_ZF;
  } else {
    cpu.writeMem32(segment, offset, low);
    cpu.writeMem32(segment, (offset + 4) | 0, high);
    cpu.regs[EAX] = low;
    cpu.regs[EDX] = high;
    cpu.flags &= ~FLAG_ZF;
  }
}

// ---- decimal and ASCII adjusts ------------------------------------------------------------

/**
 * Threshold above which DAA/DAS adjust the high digit. The 8086 compares with 0x9F instead
 * of 0x99 when AF was set (measured on silicon).
 */
function highDigitThreshold(cpu: Cpu, af: boolean): number {
  return cpu.modelLevel === 0 && af ? 0x9f : 0x99;
}

function daa(cpu: Cpu): void {
  const oldAl = cpu.regs8[0]!;
  const oldCf = cpu.getCF();
  const af = cpu.getAF();
  let al = oldAl;
  let cf = 0;
  let newAf = false;
  if ((al & 0x0f) > 9 || af) {
    al += 6;
    cf = oldCf | (al > 0xff ? 1 : 0);
    newAf = true;
  }
  if (oldAl > highDigitThreshold(cpu, af) || oldCf) {
    al += 0x60;
    cf = 1;
  }
  setAdjustResult(cpu, al & 0xff, cf, newAf);
}

function das(cpu: Cpu): void {
  const oldAl = cpu.regs8[0]!;
  const oldCf = cpu.getCF();
  const af = cpu.getAF();
  let al = oldAl;
  let cf = 0;
  let newAf = false;
  if ((al & 0x0f) > 9 || af) {
    al -= 6;
    // The 8086 does not carry the low-digit borrow into CF (recorded on silicon).
    cf = oldCf | (al < 0 && cpu.modelLevel > 0 ? 1 : 0);
    newAf = true;
  }
  if (oldAl > highDigitThreshold(cpu, af) || oldCf) {
    al -= 0x60;
    cf = 1;
  }
  setAdjustResult(cpu, al & 0xff, cf, newAf);
}

/** DAA/DAS: SF ZF PF from AL; OF is undefined (cleared here). */
function setAdjustResult(cpu: Cpu, al: number, cf: number, af: boolean): void {
  cpu.regs8[0] = al;
  cpu.setResultFlags(al, 7);
  cpu.flags &= ~(FLAG_CF | FLAG_AF | FLAG_OF);
  cpu.flags |= cf;
  if (af) cpu.flags |= FLAG_AF;
}

function aaa(cpu: Cpu): void {
  const af = cpu.getAF();
  const al = cpu.regs8[0]!;
  cpu.materializeFlags();
  if ((al & 0x0f) > 9 || af) {
    // The 8086 adds to AL and AH separately; the 286 and later add 0x106 to AX.
    if (cpu.modelLevel === 0) {
      cpu.regs8[0] = al + 6;
      cpu.regs8[1] = cpu.regs8[1]! + 1;
    } else {
      cpu.regs16[0] = cpu.regs16[0]! + 0x106;
    }
    cpu.flags |= FLAG_AF | FLAG_CF;
  } else {
    cpu.flags &= ~(FLAG_AF | FLAG_CF);
  }
  cpu.regs8[0] = cpu.regs8[0]! & 0x0f;
  setZeroSignParityFrom(cpu, al);
}

function aas(cpu: Cpu): void {
  const af = cpu.getAF();
  const al = cpu.regs8[0]!;
  cpu.materializeFlags();
  if ((al & 0x0f) > 9 || af) {
    if (cpu.modelLevel === 0) cpu.regs8[0] = al - 6;
    else cpu.regs16[0] = cpu.regs16[0]! - 6;
    cpu.regs8[1] = cpu.regs8[1]! - 1;
    cpu.flags |= FLAG_AF | FLAG_CF;
  } else {
    cpu.flags &= ~(FLAG_AF | FLAG_CF);
  }
  cpu.regs8[0] = cpu.regs8[0]! & 0x0f;
  setZeroSignParityFrom(cpu, al);
}

/** AAA/AAS leave SF/ZF/PF undefined; use the original AL like the 8086 appears to. */
function setZeroSignParityFrom(cpu: Cpu, value: number): void {
  cpu.flags &= ~(FLAG_ZF | FLAG_SF | FLAG_PF | FLAG_OF);
  if ((value & 0xff) === 0) cpu.flags |= FLAG_ZF;
  if (value & 0x80) cpu.flags |= FLAG_SF;
  let parity = value & 0xff;
  parity ^= parity >> 4;
  parity ^= parity >> 2;
  parity ^= parity >> 1;
  if (!(parity & 1)) cpu.flags |= FLAG_PF;
}

function aam(cpu: Cpu): void {
  const base = cpu.fetch8();
  if (base === 0) divideError(cpu);
  const al = cpu.regs8[0]!;
  cpu.regs8[1] = Math.floor(al / base);
  cpu.regs8[0] = al % base;
  cpu.setLogicFlags(cpu.regs8[0]!, 7);
}

function aad(cpu: Cpu): void {
  const base = cpu.fetch8();
  const al = cpu.regs8[0]!;
  const product = (cpu.regs8[1]! * base) & 0xff;
  const r = al + product;
  cpu.regs8[0] = r;
  cpu.regs8[1] = 0;
  cpu.setAddFlags(al, product, r, 7);
}

// ---- CBW/CWDE, CWD/CDQ ------------------------------------------------------------------------

function cbw(cpu: Cpu): void {
  cpu.regs16[0] = (cpu.regs8[0]! << 24) >> 24;
}

function cwde(cpu: Cpu): void {
  cpu.regs[EAX] = (cpu.regs16[0]! << 16) >> 16;
}

function cwd(cpu: Cpu): void {
  cpu.regs16[4] = cpu.regs16[0]! & 0x8000 ? 0xffff : 0;
}

function cdq(cpu: Cpu): void {
  cpu.regs[EDX] = cpu.regs[EAX]! >> 31;
}

export function installArithmetic(table: TableBuilder): void {
  const level = table.modelLevel;
  for (let op = 0; op < 8; op++) {
    const base = op << 3;
    table.set(base, aluEbGb);
    table.setSized(base + 1, aluEwGw, aluEdGd);
    table.set(base + 2, aluGbEb);
    table.setSized(base + 3, aluGwEw, aluGdEd);
    table.set(base + 4, aluAlIb);
    table.setSized(base + 5, aluAxIw, aluEaxId);
  }
  for (let op = 0x40; op < 0x50; op++) table.setSized(op, incRegister16, incRegister32);
  table.set(0x80, group1EbIb);
  table.setSized(0x81, group1EwIw, group1EdId);
  table.set(0x82, group1EbIb);
  table.setSized(0x83, group1EwIb, group1EdIb);
  table.set(0x84, testEbGb);
  table.setSized(0x85, testEwGw, testEdGd);
  table.set(0xa8, testAlIb);
  table.setSized(0xa9, testAxIw, testEaxId);
  table.set(0xf6, group3Eb);
  table.setSized(0xf7, group3Ew, group3Ed);
  table.set(0x27, daa);
  table.set(0x2f, das);
  table.set(0x37, aaa);
  table.set(0x3f, aas);
  table.set(0xd4, aam);
  table.set(0xd5, aad);
  table.setSized(0x98, cbw, cwde);
  table.setSized(0x99, cwd, cdq);
  if (level >= 1) {
    table.setSized(0x69, imulGwEwIw, imulGdEdId);
    table.setSized(0x6b, imulGwEwIw, imulGdEdId);
  }
  if (level >= 3) {
    table.setSized(TWO_BYTE | 0xaf, imulGwEw, imulGdEd);
  }
  if (level >= 4) {
    table.set(TWO_BYTE | 0xb0, cmpxchgEbGb);
    table.setSized(TWO_BYTE | 0xb1, cmpxchgEwGw, cmpxchgEdGd);
    table.set(TWO_BYTE | 0xc0, xaddEbGb);
    table.setSized(TWO_BYTE | 0xc1, xaddEwGw, xaddEdGd);
  }
  if (level >= 5) table.set(TWO_BYTE | 0xc7, cmpxchg8b);
}
