/**
 * Data movement: MOV in every form, XCHG, LEA, PUSH/POP (registers, segments, immediates,
 * memory, all, flags), LES/LDS/LSS/LFS/LGS, MOVZX/MOVSX, XLAT, LAHF/SAHF, CMOVcc, BSWAP,
 * ENTER/LEAVE, SALC.
 *
 * Operand legend (Intel SDM): E = ModR/M r/m, G = ModR/M reg, S = segment register,
 * I = immediate, O = moffs; b = byte, w = word, d = dword.
 */
import type { Cpu } from "../cpu.js";
import {
  CS,
  DS,
  EAX,
  EBP,
  ES,
  ESP,
  FLAG_AC,
  FLAG_CF,
  FLAG_ID,
  FLAG_IF,
  FLAG_IOPL,
  FLAG_NT,
  FLAG_RF,
  FLAG_VM,
  FS,
  GS,
  SS,
  VECTOR_GP,
} from "../registers.js";
import { conditionHolds } from "./conditions.js";
import { TWO_BYTE, type TableBuilder } from "./table.js";

// ---- MOV -----------------------------------------------------------------------------------

function movEbGb(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.writeModrm8(cpu.regs8[cpu.modrmReg8]!);
}

function movEwGw(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.writeModrm16(cpu.regs16[cpu.modrmReg << 1]!);
}

function movEdGd(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.writeModrm32(cpu.regs[cpu.modrmReg]!);
}

function movGbEb(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.regs8[cpu.modrmReg8] = cpu.readModrm8();
}

function movGwEw(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.regs16[cpu.modrmReg << 1] = cpu.readModrm16();
}

function movGdEd(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.regs[cpu.modrmReg] = cpu.readModrm32();
}

/** Segment register number from the reg field; the 8086 has four, aliased twice. */
function segmentFromReg(cpu: Cpu): number {
  const reg = cpu.modrmReg;
  if (cpu.modelLevel === 0) return reg & 3;
  if (reg > 5 || (cpu.modelLevel === 2 && reg > 3)) cpu.undefinedOpcode();
  return reg;
}

function movEwSw(cpu: Cpu): void {
  cpu.fetchModrm();
  const selector = cpu.segSelector[segmentFromReg(cpu)]!;
  // A register destination with a 32-bit operand size receives the zero-extended selector.
  if (cpu.modrm >= 0xc0 && cpu.operandSize32) cpu.regs[cpu.modrm & 7] = selector;
  else cpu.writeModrm16(selector);
}

function movSwEw(cpu: Cpu): void {
  cpu.fetchModrm();
  const segment = segmentFromReg(cpu);
  if (segment === CS && cpu.modelLevel > 0) cpu.undefinedOpcode();
  const selector = cpu.readModrm16();
  if (segment === CS) {
    cpu.setRealModeSegment(CS, selector); // 8086 only
    return;
  }
  cpu.loadSegment(segment, selector);
}

function movAlOb(cpu: Cpu): void {
  const offset = cpu.addressSize32 ? cpu.fetch32() : cpu.fetch16();
  cpu.regs8[0] = cpu.readMem8(cpu.dataSegment(), offset);
}

function movAxOw(cpu: Cpu): void {
  const offset = cpu.addressSize32 ? cpu.fetch32() : cpu.fetch16();
  cpu.regs16[0] = cpu.readMem16(cpu.dataSegment(), offset);
}

function movEaxOd(cpu: Cpu): void {
  const offset = cpu.addressSize32 ? cpu.fetch32() : cpu.fetch16();
  cpu.regs[EAX] = cpu.readMem32(cpu.dataSegment(), offset);
}

function movObAl(cpu: Cpu): void {
  const offset = cpu.addressSize32 ? cpu.fetch32() : cpu.fetch16();
  cpu.writeMem8(cpu.dataSegment(), offset, cpu.regs8[0]!);
}

function movOwAx(cpu: Cpu): void {
  const offset = cpu.addressSize32 ? cpu.fetch32() : cpu.fetch16();
  cpu.writeMem16(cpu.dataSegment(), offset, cpu.regs16[0]!);
}

function movOdEax(cpu: Cpu): void {
  const offset = cpu.addressSize32 ? cpu.fetch32() : cpu.fetch16();
  cpu.writeMem32(cpu.dataSegment(), offset, cpu.regs[EAX]!);
}

function movRegIb(cpu: Cpu): void {
  const reg = cpu.opcode & 7;
  cpu.regs8[((reg & 3) << 2) | (reg >> 2)] = cpu.fetch8();
}

function movRegIw(cpu: Cpu): void {
  cpu.regs16[(cpu.opcode & 7) << 1] = cpu.fetch16();
}

function movRegId(cpu: Cpu): void {
  cpu.regs[cpu.opcode & 7] = cpu.fetch32();
}

function movEbIb(cpu: Cpu): void {
  cpu.fetchModrm();
  // The 8086 ignores the reg field; the 286 and later accept only /0.
  if (cpu.modrmReg !== 0 && cpu.modelLevel >= 2) cpu.undefinedOpcode();
  cpu.writeModrm8(cpu.fetch8());
}

function movEwIw(cpu: Cpu): void {
  cpu.fetchModrm();
  if (cpu.modrmReg !== 0 && cpu.modelLevel >= 2) cpu.undefinedOpcode();
  cpu.writeModrm16(cpu.fetch16());
}

function movEdId(cpu: Cpu): void {
  cpu.fetchModrm();
  if (cpu.modrmReg !== 0) cpu.undefinedOpcode();
  cpu.writeModrm32(cpu.fetch32());
}

// ---- XCHG, LEA -----------------------------------------------------------------------------

function xchgEbGb(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.probeModrmWrite(1);
  const reg = cpu.modrmReg8;
  const value = cpu.readModrm8();
  cpu.writeModrm8(cpu.regs8[reg]!);
  cpu.regs8[reg] = value;
}

function xchgEwGw(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.probeModrmWrite(2);
  const reg = cpu.modrmReg << 1;
  const value = cpu.readModrm16();
  cpu.writeModrm16(cpu.regs16[reg]!);
  cpu.regs16[reg] = value;
}

function xchgEdGd(cpu: Cpu): void {
  cpu.fetchModrm();
  cpu.probeModrmWrite(4);
  const reg = cpu.modrmReg;
  const value = cpu.readModrm32();
  cpu.writeModrm32(cpu.regs[reg]!);
  cpu.regs[reg] = value;
}

function xchgAxReg(cpu: Cpu): void {
  const reg = (cpu.opcode & 7) << 1;
  const value = cpu.regs16[reg]!;
  cpu.regs16[reg] = cpu.regs16[0]!;
  cpu.regs16[0] = value;
}

function xchgEaxReg(cpu: Cpu): void {
  const reg = cpu.opcode & 7;
  const value = cpu.regs[reg]!;
  cpu.regs[reg] = cpu.regs[EAX]!;
  cpu.regs[EAX] = value;
}

function nop(): void {}

function leaGwM(cpu: Cpu): void {
  const modrm = cpu.fetchModrm();
  // LEA with a register operand: the 8086 uses the last computed address; later CPUs #UD.
  if (modrm >= 0xc0) {
    if (cpu.modelLevel > 0) cpu.undefinedOpcode();
    return;
  }
  cpu.regs16[cpu.modrmReg << 1] = cpu.eaOffset;
}

function leaGdM(cpu: Cpu): void {
  if (cpu.fetchModrm() >= 0xc0) cpu.undefinedOpcode();
  cpu.regs[cpu.modrmReg] = cpu.eaOffset;
}

// ---- PUSH / POP ---------------------------------------------------------------------------

function pushReg16(cpu: Cpu): void {
  const reg = cpu.opcode & 7;
  if (reg === ESP && cpu.modelLevel === 0) {
    // The 8086 pushes SP after decrementing it.
    cpu.push16((cpu.regs16[8]! - 2) & 0xffff);
    return;
  }
  cpu.push16(cpu.regs16[reg << 1]!);
}

function pushReg32(cpu: Cpu): void {
  cpu.push32(cpu.regs[cpu.opcode & 7]!);
}

function popReg16(cpu: Cpu): void {
  const value = cpu.pop16();
  cpu.regs16[(cpu.opcode & 7) << 1] = value;
}

function popReg32(cpu: Cpu): void {
  const value = cpu.pop32();
  cpu.regs[cpu.opcode & 7] = value;
}

function pushIw(cpu: Cpu): void {
  cpu.push16(cpu.fetch16());
}

function pushId(cpu: Cpu): void {
  cpu.push32(cpu.fetch32());
}

function pushIb16(cpu: Cpu): void {
  cpu.push16(cpu.fetchSigned8() & 0xffff);
}

function pushIb32(cpu: Cpu): void {
  cpu.push32(cpu.fetchSigned8());
}

/** POP Ev: the address is computed after ESP moves; ESP is restored if the write faults. */
function popEw(cpu: Cpu): void {
  cpu.saveStackForFault();
  const value = cpu.pop16();
  cpu.fetchModrm();
  if (cpu.modrmReg !== 0 && cpu.modelLevel >= 2) cpu.undefinedOpcode();
  cpu.writeModrm16(value);
}

function popEd(cpu: Cpu): void {
  cpu.saveStackForFault();
  const value = cpu.pop32();
  cpu.fetchModrm();
  if (cpu.modrmReg !== 0) cpu.undefinedOpcode();
  cpu.writeModrm32(value);
}

function segmentForPushPop(opcode: number): number {
  switch (opcode) {
    case 0x06: case 0x07: return ES;
    case 0x0e: case 0x0f: return CS;
    case 0x16: case 0x17: return SS;
    case 0x1e: case 0x1f: return DS;
    case 0xa0: case 0xa1: return FS;
    default: return GS;
  }
}

function pushSegment16(cpu: Cpu): void {
  cpu.push16(cpu.segSelector[segmentForPushPop(cpu.opcode)]!);
}

function pushSegment32(cpu: Cpu): void {
  // Pentium and later write only the low word; the 386 stored the whole dword. Both move ESP by 4.
  const selector = cpu.segSelector[segmentForPushPop(cpu.opcode)]!;
  if (cpu.modelLevel >= 5) {
    const sp = cpu.stackSize32 ? (cpu.regs[ESP]! - 4) | 0 : (cpu.regs16[8]! - 4) & 0xffff;
    cpu.writeMem16(SS, sp, selector);
    if (cpu.stackSize32) cpu.regs[ESP] = sp;
    else cpu.regs16[8] = sp;
  } else {
    cpu.push32(selector);
  }
}

function popSegment16(cpu: Cpu): void {
  const segment = segmentForPushPop(cpu.opcode);
  cpu.saveStackForFault();
  const selector = cpu.pop16();
  if (segment === CS) cpu.setRealModeSegment(CS, selector); // 8086 POP CS
  else cpu.loadSegment(segment, selector);
}

function popSegment32(cpu: Cpu): void {
  const segment = segmentForPushPop(cpu.opcode);
  cpu.saveStackForFault();
  const selector = cpu.pop32() & 0xffff;
  cpu.loadSegment(segment, selector);
}

function pusha16(cpu: Cpu): void {
  const sp = cpu.regs16[8]!;
  for (let reg = 0; reg < 8; reg++) cpu.push16(reg === ESP ? sp : cpu.regs16[reg << 1]!);
}

function pusha32(cpu: Cpu): void {
  const sp = cpu.regs[ESP]!;
  cpu.saveStackForFault();
  for (let reg = 0; reg < 8; reg++) cpu.push32(reg === ESP ? sp : cpu.regs[reg]!);
}

function popa16(cpu: Cpu): void {
  const values = popaScratch;
  cpu.saveStackForFault();
  for (let reg = 7; reg >= 0; reg--) values[reg] = cpu.pop16();
  for (let reg = 0; reg < 8; reg++) if (reg !== ESP) cpu.regs16[reg << 1] = values[reg]!;
}

function popa32(cpu: Cpu): void {
  const values = popaScratch;
  cpu.saveStackForFault();
  for (let reg = 7; reg >= 0; reg--) values[reg] = cpu.pop32();
  for (let reg = 0; reg < 8; reg++) if (reg !== ESP) cpu.regs[reg] = values[reg]!;
}

const popaScratch = new Int32Array(8);

// ---- flags to and from the stack -------------------------------------------------------------

function pushf16(cpu: Cpu): void {
  if (cpu.v86Mode && (cpu.flags & FLAG_IOPL) !== FLAG_IOPL) cpu.raiseFault(VECTOR_GP, 0);
  cpu.push16(cpu.getFlags() & 0xffff);
}

function pushf32(cpu: Cpu): void {
  if (cpu.v86Mode && (cpu.flags & FLAG_IOPL) !== FLAG_IOPL) cpu.raiseFault(VECTOR_GP, 0);
  cpu.push32(cpu.getFlags() & ~(FLAG_RF | FLAG_VM));
}

/**
 * The bits POPF (and IRET within one privilege level) may change, by model and privilege.
 */
export function poppableFlags(cpu: Cpu, size32: boolean): number {
  let mask = 0x0fd5; // CF PF AF ZF SF TF IF DF OF
  if (cpu.modelLevel >= 2 && cpu.protectedMode) mask |= FLAG_NT;
  if (cpu.modelLevel >= 3) mask |= FLAG_NT;
  if (cpu.modelLevel >= 2 && cpu.protectedMode && cpu.cpl === 0 && !cpu.v86Mode) mask |= FLAG_IOPL;
  if (cpu.modelLevel >= 3 && !cpu.protectedMode) mask |= FLAG_IOPL;
  if (cpu.protectedMode && !cpu.v86Mode && cpu.cpl > ((cpu.flags & FLAG_IOPL) >> 12)) mask &= ~FLAG_IF;
  if (size32) {
    if (cpu.modelLevel >= 4) mask |= FLAG_AC;
    if (cpu.modelLevel >= 5) mask |= FLAG_ID;
  }
  return mask;
}

/** Applies a popped FLAGS/EFLAGS value under the POPF rules. */
export function loadPoppedFlags(cpu: Cpu, value: number, size32: boolean): void {
  const mask = poppableFlags(cpu, size32);
  const current = cpu.getFlags();
  let flags = (current & ~mask) | (value & mask);
  if (cpu.modelLevel === 0) flags |= 0xf000;
  cpu.flags = (flags & ~0x28) | 2;
  cpu.flagsChanged = 0;
  cpu.noteFlagsChanged();
}

function popf16(cpu: Cpu): void {
  if (cpu.v86Mode && (cpu.flags & FLAG_IOPL) !== FLAG_IOPL) cpu.raiseFault(VECTOR_GP, 0);
  loadPoppedFlags(cpu, cpu.pop16(), false);
}

function popf32(cpu: Cpu): void {
  if (cpu.v86Mode && (cpu.flags & FLAG_IOPL) !== FLAG_IOPL) cpu.raiseFault(VECTOR_GP, 0);
  loadPoppedFlags(cpu, cpu.pop32(), true);
}

function sahf(cpu: Cpu): void {
  cpu.materializeFlags();
  cpu.flags = (cpu.flags & ~0xd5) | (cpu.regs8[1]! & 0xd5);
}

function lahf(cpu: Cpu): void {
  cpu.regs8[1] = (cpu.getFlags() & 0xd7) | 2;
}

// ---- far pointers ----------------------------------------------------------------------------

function loadFarPointer(cpu: Cpu, segment: number): void {
  const modrm = cpu.fetchModrm();
  if (modrm >= 0xc0) cpu.undefinedOpcode();
  const offsetSize = cpu.operandSize32 ? 4 : 2;
  const offset = offsetSize === 4 ? cpu.readMem32(cpu.eaSegment, cpu.eaOffset) : cpu.readMem16(cpu.eaSegment, cpu.eaOffset);
  const selectorOffset = cpu.addressSize32 ? (cpu.eaOffset + offsetSize) | 0 : (cpu.eaOffset + offsetSize) & 0xffff;
  const selector = cpu.readMem16(cpu.eaSegment, selectorOffset);
  cpu.loadSegment(segment, selector);
  if (offsetSize === 4) cpu.regs[cpu.modrmReg] = offset;
  else cpu.regs16[cpu.modrmReg << 1] = offset;
}

function les(cpu: Cpu): void {
  loadFarPointer(cpu, ES);
}

function lds(cpu: Cpu): void {
  loadFarPointer(cpu, DS);
}

function lss(cpu: Cpu): void {
  loadFarPointer(cpu, SS);
}

function lfs(cpu: Cpu): void {
  loadFarPointer(cpu, FS);
}

function lgs(cpu: Cpu): void {
  loadFarPointer(cpu, GS);
}

// ---- MOVZX / MOVSX --------------------------------------------------------------------------

function movzxGvEb(cpu: Cpu): void {
  cpu.fetchModrm();
  const value = cpu.readModrm8();
  if (cpu.operandSize32) cpu.regs[cpu.modrmReg] = value;
  else cpu.regs16[cpu.modrmReg << 1] = value;
}

function movzxGvEw(cpu: Cpu): void {
  cpu.fetchModrm();
  const value = cpu.readModrm16();
  if (cpu.operandSize32) cpu.regs[cpu.modrmReg] = value;
  else cpu.regs16[cpu.modrmReg << 1] = value;
}

function movsxGvEb(cpu: Cpu): void {
  cpu.fetchModrm();
  const value = (cpu.readModrm8() << 24) >> 24;
  if (cpu.operandSize32) cpu.regs[cpu.modrmReg] = value;
  else cpu.regs16[cpu.modrmReg << 1] = value;
}

function movsxGvEw(cpu: Cpu): void {
  cpu.fetchModrm();
  const value = (cpu.readModrm16() << 16) >> 16;
  if (cpu.operandSize32) cpu.regs[cpu.modrmReg] = value;
  else cpu.regs16[cpu.modrmReg << 1] = value;
}

// ---- XLAT, SALC, CMOVcc, BSWAP ----------------------------------------------------------------

function xlat(cpu: Cpu): void {
  const offset = cpu.addressSize32 ? (cpu.regs[3]! + cpu.regs8[0]!) | 0 : (cpu.regs16[6]! + cpu.regs8[0]!) & 0xffff;
  cpu.regs8[0] = cpu.readMem8(cpu.dataSegment(), offset);
}

/** SALC (undocumented D6): AL = CF ? 0xFF : 0. */
function salc(cpu: Cpu): void {
  cpu.regs8[0] = cpu.getCF() & FLAG_CF ? 0xff : 0;
}

function cmovGwEw(cpu: Cpu): void {
  cpu.fetchModrm();
  const value = cpu.readModrm16();
  if (conditionHolds(cpu, cpu.opcode & 0xf)) cpu.regs16[cpu.modrmReg << 1] = value;
}

function cmovGdEd(cpu: Cpu): void {
  cpu.fetchModrm();
  const value = cpu.readModrm32();
  if (conditionHolds(cpu, cpu.opcode & 0xf)) cpu.regs[cpu.modrmReg] = value;
}

function bswap(cpu: Cpu): void {
  const reg = cpu.opcode & 7;
  const v = cpu.regs[reg]!;
  cpu.regs[reg] = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}

// ---- ENTER / LEAVE -------------------------------------------------------------------------

function enter(cpu: Cpu): void {
  const frameSize = cpu.fetch16();
  const level = cpu.fetch8() & 31;
  cpu.saveStackForFault();
  const size32 = cpu.operandSize32 !== 0;
  const savedEbp = cpu.regs[EBP]!;
  if (size32) cpu.push32(savedEbp);
  else cpu.push16(savedEbp & 0xffff);
  const frameTemp = cpu.stackSize32 ? cpu.regs[ESP]! : cpu.regs16[8]!;
  let ebp = savedEbp;
  if (level > 0) {
    for (let i = 1; i < level; i++) {
      if (cpu.stackSize32) ebp = (ebp - (size32 ? 4 : 2)) | 0;
      else ebp = (ebp & ~0xffff) | ((ebp - (size32 ? 4 : 2)) & 0xffff);
      const offset = cpu.stackSize32 ? ebp : ebp & 0xffff;
      if (size32) cpu.push32(cpu.readMem32(SS, offset));
      else cpu.push16(cpu.readMem16(SS, offset));
    }
    if (size32) cpu.push32(frameTemp);
    else cpu.push16(frameTemp & 0xffff);
  }
  // Touch the bottom of the new frame first so a stack fault leaves everything as it was.
  const newSp = cpu.stackSize32 ? (cpu.regs[ESP]! - frameSize) | 0 : (cpu.regs16[8]! - frameSize) & 0xffff;
  if (frameSize > 0) cpu.probeMemWrite(SS, newSp, 1);
  if (cpu.stackSize32) cpu.regs[ESP] = newSp;
  else cpu.regs16[8] = newSp;
  if (size32) cpu.regs[EBP] = frameTemp;
  else cpu.regs16[10] = frameTemp;
}

function leave16(cpu: Cpu): void {
  cpu.saveStackForFault();
  if (cpu.stackSize32) cpu.regs[ESP] = cpu.regs[EBP]!;
  else cpu.regs16[8] = cpu.regs16[10]!;
  cpu.regs16[10] = cpu.pop16();
}

function leave32(cpu: Cpu): void {
  cpu.saveStackForFault();
  if (cpu.stackSize32) cpu.regs[ESP] = cpu.regs[EBP]!;
  else cpu.regs16[8] = cpu.regs16[10]!;
  cpu.regs[EBP] = cpu.pop32();
}

export function installDataTransfer(table: TableBuilder): void {
  const level = table.modelLevel;
  table.set(0x88, movEbGb);
  table.setSized(0x89, movEwGw, movEdGd);
  table.set(0x8a, movGbEb);
  table.setSized(0x8b, movGwEw, movGdEd);
  table.set(0x8c, movEwSw);
  table.set(0x8e, movSwEw);
  table.set(0xa0, movAlOb);
  table.setSized(0xa1, movAxOw, movEaxOd);
  table.set(0xa2, movObAl);
  table.setSized(0xa3, movOwAx, movOdEax);
  for (let op = 0xb0; op < 0xb8; op++) table.set(op, movRegIb);
  for (let op = 0xb8; op < 0xc0; op++) table.setSized(op, movRegIw, movRegId);
  table.set(0xc6, movEbIb);
  table.setSized(0xc7, movEwIw, movEdId);
  table.set(0x86, xchgEbGb);
  table.setSized(0x87, xchgEwGw, xchgEdGd);
  table.set(0x90, nop);
  for (let op = 0x91; op < 0x98; op++) table.setSized(op, xchgAxReg, xchgEaxReg);
  table.setSized(0x8d, leaGwM, leaGdM);
  for (let op = 0x50; op < 0x58; op++) table.setSized(op, pushReg16, pushReg32);
  for (let op = 0x58; op < 0x60; op++) table.setSized(op, popReg16, popReg32);
  table.setSized(0x8f, popEw, popEd);
  for (const op of [0x06, 0x0e, 0x16, 0x1e]) table.setSized(op, pushSegment16, pushSegment32);
  for (const op of [0x07, 0x17, 0x1f]) table.setSized(op, popSegment16, popSegment32);
  if (level === 0) table.set(0x0f, popSegment16); // POP CS
  table.setSized(0x9c, pushf16, pushf32);
  table.setSized(0x9d, popf16, popf32);
  table.set(0x9e, sahf);
  table.set(0x9f, lahf);
  table.set(0xc4, les);
  table.set(0xc5, lds);
  table.set(0xd7, xlat);
  table.set(0xd6, salc);
  if (level >= 1) {
    table.setSized(0x60, pusha16, pusha32);
    table.setSized(0x61, popa16, popa32);
    table.setSized(0x68, pushIw, pushId);
    table.setSized(0x6a, pushIb16, pushIb32);
    table.set(0xc8, enter);
    table.setSized(0xc9, leave16, leave32);
  }
  if (level >= 3) {
    for (const op of [0xa0, 0xa8]) table.setSized(TWO_BYTE | op, pushSegment16, pushSegment32);
    for (const op of [0xa1, 0xa9]) table.setSized(TWO_BYTE | op, popSegment16, popSegment32);
    table.set(TWO_BYTE | 0xb2, lss);
    table.set(TWO_BYTE | 0xb4, lfs);
    table.set(TWO_BYTE | 0xb5, lgs);
    table.set(TWO_BYTE | 0xb6, movzxGvEb);
    table.set(TWO_BYTE | 0xb7, movzxGvEw);
    table.set(TWO_BYTE | 0xbe, movsxGvEb);
    table.set(TWO_BYTE | 0xbf, movsxGvEw);
  }
  if (level >= 4) for (let op = 0xc8; op < 0xd0; op++) table.set(TWO_BYTE | op, bswap);
  if (level >= 6) for (let op = 0x40; op < 0x50; op++) table.setSized(TWO_BYTE | op, cmovGwEw, cmovGdEd);
}
