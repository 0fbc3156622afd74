/**
 * Shifts and rotates (group 2: C0 C1 D0-D3; the 8086's undocumented SETMO at /6),
 * SHLD/SHRD, bit tests (BT BTS BTR BTC), bit scans (BSF BSR) and SETcc.
 */
import type { Cpu } from "../cpu.js";
import { FLAG_AF, FLAG_CF, FLAG_OF, FLAG_ZF } from "../registers.js";
import { conditionHolds } from "./conditions.js";
import { TWO_BYTE, type TableBuilder } from "./table.js";

/**
 * Shift or rotate `value` (an unsigned `bits`-wide number) by `count` with operation
 * `op` (/0 ROL … /7 SAR); sets the flags (none when the count is 0) and returns the result.
 */
export function shiftOperation(cpu: Cpu, op: number, value: number, count: number, bits: number): number {
  if (cpu.modelLevel > 0) count &= 31;
  if (count === 0) return value;
  const sizeBit = bits - 1;
  const mask = bits === 32 ? -1 : (1 << bits) - 1;
  const msb = bits === 32 ? 0x80000000 : 1 << sizeBit;
  let result: number;
  let carry: number;
  let overflow: boolean;
  switch (op) {
    case 0: { // ROL
      const n = count % bits;
      result = n === 0 ? value : ((value << n) | (value >>> (bits - n))) & mask;
      carry = result & 1;
      overflow = ((result >>> sizeBit) & 1) !== carry;
      cpu.materializeFlags();
      setCarryOverflow(cpu, carry, overflow);
      return result;
    }
    case 1: { // ROR
      const n = count % bits;
      result = n === 0 ? value : ((value >>> n) | (value << (bits - n))) & mask;
      carry = (result >>> sizeBit) & 1;
      overflow = ((result >>> sizeBit) & 1) !== ((result >>> (sizeBit - 1)) & 1);
      cpu.materializeFlags();
      setCarryOverflow(cpu, carry, overflow);
      return result;
    }
    case 2: { // RCL
      cpu.materializeFlags();
      carry = cpu.flags & FLAG_CF;
      result = value;
      const n = count % (bits + 1);
      for (let i = 0; i < n; i++) {
        const out = (result >>> sizeBit) & 1;
        result = ((result << 1) | carry) & mask;
        carry = out;
      }
      overflow = ((result >>> sizeBit) & 1) !== carry;
      setCarryOverflow(cpu, carry, overflow);
      return result >>> 0;
    }
    case 3: { // RCR
      cpu.materializeFlags();
      carry = cpu.flags & FLAG_CF;
      result = value;
      const n = count % (bits + 1);
      for (let i = 0; i < n; i++) {
        const out = result & 1;
        result = ((result >>> 1) | (carry << sizeBit)) & mask;
        carry = out;
      }
      overflow = ((result >>> sizeBit) & 1) !== ((result >>> (sizeBit - 1)) & 1);
      setCarryOverflow(cpu, carry, overflow);
      return result >>> 0;
    }
    case 4: // SHL / SAL
    case 6: // SETMO on the 8086, SHL elsewhere
      if (op === 6 && cpu.modelLevel === 0) {
        result = mask >>> 0;
        cpu.setLogicFlags(result, sizeBit);
        return result;
      }
      if (count <= bits) {
        carry = count === bits + 0 ? value & 1 : (value >>> (bits - count)) & 1;
        result = count === bits ? 0 : (value << count) & mask;
      } else {
        carry = 0;
        result = 0;
      }
      overflow = ((result >>> sizeBit) & 1) !== carry;
      break;
    case 5: // SHR
      if (count <= bits) {
        carry = (value >>> (count - 1)) & 1;
        result = count === bits ? 0 : value >>> count;
      } else {
        carry = 0;
        result = 0;
      }
      overflow = count === 1 ? (value & msb) !== 0 : ((result << 1) ^ result) & msb ? true : false;
      break;
    default: { // SAR
      const signed = bits === 32 ? value | 0 : (value << (32 - bits)) >> (32 - bits);
      if (count < bits) {
        carry = (signed >> (count - 1)) & 1;
        result = (signed >> count) & mask;
      } else {
        carry = signed < 0 ? 1 : 0;
        result = signed < 0 ? mask : 0;
      }
      overflow = false;
    }
  }
  cpu.setResultFlags(result, sizeBit);
  cpu.flags &= ~(FLAG_CF | FLAG_OF | FLAG_AF);
  cpu.flags |= carry;
  if (overflow) cpu.flags |= FLAG_OF;
  // The 8086 and 286 leave AF set after shifts; later CPUs leave it undefined too.
  if (cpu.modelLevel <= 2) cpu.flags |= FLAG_AF;
  return result >>> 0;
}

function setCarryOverflow(cpu: Cpu, carry: number, overflow: boolean): void {
  cpu.flags = (cpu.flags & ~(FLAG_CF | FLAG_OF)) | carry | (overflow ? FLAG_OF : 0);
}

/** Count source: 1 (D0/D1), CL (D2/D3) or an immediate byte (C0/C1). */
function shiftCount(cpu: Cpu): number {
  const opcode = cpu.opcode;
  if (opcode === 0xd0 || opcode === 0xd1) return 1;
  if (opcode === 0xd2 || opcode === 0xd3) return cpu.regs8[4]!;
  return cpu.fetch8();
}

function group2Eb(cpu: Cpu): void {
  cpu.fetchModrm();
  const count = shiftCount(cpu);
  cpu.probeModrmWrite(1);
  cpu.writeModrm8(shiftOperation(cpu, cpu.modrmReg, cpu.readModrm8(), count, 8));
}

function group2Ew(cpu: Cpu): void {
  cpu.fetchModrm();
  const count = shiftCount(cpu);
  cpu.probeModrmWrite(2);
  cpu.writeModrm16(shiftOperation(cpu, cpu.modrmReg, cpu.readModrm16(), count, 16));
}

function group2Ed(cpu: Cpu): void {
  cpu.fetchModrm();
  const count = shiftCount(cpu);
  cpu.probeModrmWrite(4);
  cpu.writeModrm32(shiftOperation(cpu, cpu.modrmReg, cpu.readModrm32() >>> 0, count, 32));
}

// ---- SHLD / SHRD ------------------------------------------------------------------------------

function doubleShift(cpu: Cpu, left: boolean, bits: number): void {
  cpu.fetchModrm();
  const count = (cpu.opcode & 1 ? cpu.regs8[4]! : cpu.fetch8()) & 31;
  cpu.probeModrmWrite(bits / 8);
  const destination = bits === 32 ? cpu.readModrm32() >>> 0 : cpu.readModrm16();
  const source = bits === 32 ? cpu.regs[cpu.modrmReg]! >>> 0 : cpu.regs16[cpu.modrmReg << 1]!;
  if (count === 0) return;
  let result: number;
  let carry: number;
  if (bits === 32) {
    if (left) {
      result = (destination << count) | (source >>> (32 - count));
      carry = (destination >>> (32 - count)) & 1;
    } else {
      result = (destination >>> count) | (source << (32 - count));
      carry = (destination >>> (count - 1)) & 1;
    }
    result |= 0;
  } else {
    // 16-bit: shift the 32-bit concatenation; counts above 16 are undefined on Intel.
    const wide = left ? (destination << 16) | source : (source << 16) | destination;
    if (left) {
      const shifted = count <= 16 ? wide << count : (wide << count) | (destination << (count - 16));
      result = (shifted >>> 16) & 0xffff;
      carry = count <= 16 ? (destination >>> (16 - count)) & 1 : (source >>> (32 - count)) & 1;
    } else {
      result = (wide >>> count) & 0xffff;
      carry = ((wide >>> (count - 1)) & 1);
    }
  }
  const sizeBit = bits - 1;
  if (bits === 32) cpu.writeModrm32(result);
  else cpu.writeModrm16(result);
  cpu.setResultFlags(result, sizeBit);
  cpu.flags &= ~(FLAG_CF | FLAG_OF);
  cpu.flags |= carry;
  if (((result ^ destination) >>> sizeBit) & 1) cpu.flags |= FLAG_OF;
}

function shldEw(cpu: Cpu): void {
  doubleShift(cpu, true, 16);
}
function shldEd(cpu: Cpu): void {
  doubleShift(cpu, true, 32);
}
function shrdEw(cpu: Cpu): void {
  doubleShift(cpu, false, 16);
}
function shrdEd(cpu: Cpu): void {
  doubleShift(cpu, false, 32);
}

// ---- BT / BTS / BTR / BTC ------------------------------------------------------------------------

/**
 * Bit test family. `operation`: 0 BT, 1 BTS, 2 BTR, 3 BTC. With a register bit offset and a
 * memory operand the offset is signed and may address outside the operand (a bit string).
 */
function bitTest(cpu: Cpu, operation: number, bitOffset: number, fromRegister: boolean, bits: number): void {
  let value: number;
  let bit: number;
  let segment = 0;
  let offset = 0;
  const memory = cpu.modrm < 0xc0;
  if (memory && fromRegister) {
    const signedOffset = bits === 32 ? bitOffset | 0 : (bitOffset << 16) >> 16;
    const displacement = Math.floor(signedOffset / bits) * (bits / 8);
    offset = cpu.addressSize32 ? (cpu.eaOffset + displacement) | 0 : (cpu.eaOffset + displacement) & 0xffff;
    bit = signedOffset & (bits - 1);
  } else {
    offset = cpu.eaOffset;
    bit = bitOffset & (bits - 1);
  }
  segment = cpu.eaSegment;
  if (memory) {
    if (operation !== 0) cpu.probeMemWrite(segment, offset, bits / 8);
    value = bits === 32 ? cpu.readMem32(segment, offset) : cpu.readMem16(segment, offset);
  } else {
    value = bits === 32 ? cpu.regs[cpu.modrm & 7]! : cpu.regs16[(cpu.modrm & 7) << 1]!;
  }
  const mask = 1 << bit;
  const carry = (value >>> bit) & 1;
  if (operation !== 0) {
    const result = operation === 1 ? value | mask : operation === 2 ? value & ~mask : value ^ mask;
    if (memory) {
      if (bits === 32) cpu.writeMem32(segment, offset, result);
      else cpu.writeMem16(segment, offset, result);
    } else if (bits === 32) cpu.regs[cpu.modrm & 7] = result;
    else cpu.regs16[(cpu.modrm & 7) << 1] = result;
  }
  cpu.materializeFlags();
  cpu.flags = (cpu.flags & ~FLAG_CF) | carry;
}

function bitTestGv(cpu: Cpu): void {
  cpu.fetchModrm();
  const bits = cpu.operandSize32 ? 32 : 16;
  const offset = bits === 32 ? cpu.regs[cpu.modrmReg]! : cpu.regs16[cpu.modrmReg << 1]!;
  const operation = (cpu.opcode >> 3) & 3; // A3 BT, AB BTS, B3 BTR, BB BTC
  bitTest(cpu, operation, offset, true, bits);
}

function group8(cpu: Cpu): void {
  cpu.fetchModrm();
  const reg = cpu.modrmReg;
  if (reg < 4) cpu.undefinedOpcode();
  const bitOffset = cpu.fetch8();
  bitTest(cpu, reg - 4, bitOffset, false, cpu.operandSize32 ? 32 : 16);
}

// ---- BSF / BSR ------------------------------------------------------------------------------

function bitScan(cpu: Cpu): void {
  cpu.fetchModrm();
  const size32 = cpu.operandSize32 !== 0;
  const value = size32 ? cpu.readModrm32() >>> 0 : cpu.readModrm16();
  cpu.materializeFlags();
  if (value === 0) {
    cpu.flags |= FLAG_ZF;
    return;
  }
  const index = cpu.opcode === 0xbc ? 31 - Math.clz32(value & -value) : 31 - Math.clz32(value);
  cpu.flags &= ~FLAG_ZF;
  if (size32) cpu.regs[cpu.modrmReg] = index;
  else cpu.regs16[cpu.modrmReg << 1] = index;
}

// ---- SETcc -----------------------------------------------------------------------------------

function setcc(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.writeModrm8(conditionHolds(cpu, cpu.opcode & 0xf) ? 1 : 0);
}

export function installShiftsAndBits(table: TableBuilder): void {
  const level = table.modelLevel;
  table.set(0xd0, group2Eb);
  table.setSized(0xd1, group2Ew, group2Ed);
  table.set(0xd2, group2Eb);
  table.setSized(0xd3, group2Ew, group2Ed);
  if (level >= 1) {
    table.set(0xc0, group2Eb);
    table.setSized(0xc1, group2Ew, group2Ed);
  }
  if (level >= 3) {
    table.setSized(TWO_BYTE | 0xa4, shldEw, shldEd);
    table.setSized(TWO_BYTE | 0xa5, shldEw, shldEd);
    table.setSized(TWO_BYTE | 0xac, shrdEw, shrdEd);
    table.setSized(TWO_BYTE | 0xad, shrdEw, shrdEd);
    for (const op of [0xa3, 0xab, 0xb3, 0xbb]) table.set(TWO_BYTE | op, bitTestGv);
    table.set(TWO_BYTE | 0xba, group8);
    table.set(TWO_BYTE | 0xbc, bitScan);
    table.set(TWO_BYTE | 0xbd, bitScan);
    for (let op = 0x90; op < 0xa0; op++) table.set(TWO_BYTE | op, setcc);
  }
}
