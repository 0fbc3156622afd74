/**
 * Control transfer: Jcc, JMP, CALL, RET (near and far), LOOP/JCXZ, INT n/INT3/INTO/ICEBP,
 * IRET, BOUND, HLT, and groups 4 and 5 (FE, FF).
 *
 * Operand legend (Intel SDM): J = relative offset, A = direct far pointer, E = ModR/M r/m,
 * M = memory only, p = far pointer; b/w/d/v = sizes.
 */
import type { Cpu } from "../cpu.js";
import {
  CS,
  DS,
  ES,
  ESP,
  FS,
  GS,
  FLAG_IF,
  FLAG_IOPL,
  FLAG_NT,
  FLAG_RF,
  FLAG_VM,
  SS,
  TR,
  VECTOR_BP,
  VECTOR_BR,
  VECTOR_DB,
  VECTOR_GP,
  VECTOR_OF,
  VECTOR_TS,
} from "../registers.js";
import { incDecModrm16, incDecModrm32, incDecModrm8 } from "./arithmetic.js";
import { conditionHolds } from "./conditions.js";
import { poppableFlags } from "./data-transfer.js";
import { TWO_BYTE, type TableBuilder } from "./table.js";
import { farTransferThroughSystem, TaskSwitchReason, taskSwitch } from "../far-transfer.js";

/** Near jump to `target` within CS: 16-bit operand size wraps at 64 KiB; the CS limit is checked. */
function branchTo(cpu: Cpu, target: number): void {
  if (!cpu.operandSize32) target &= 0xffff;
  if ((target >>> 0) > (cpu.segLimit[CS]! >>> 0)) cpu.raiseFault(VECTOR_GP, 0);
  cpu.eip = target | 0;
}

// ---- Jcc, JMP, CALL -------------------------------------------------------------------------

function jccShort(cpu: Cpu): void {
  const displacement = cpu.fetchSigned8();
  if (conditionHolds(cpu, cpu.opcode & 0xf)) branchTo(cpu, cpu.eip + displacement);
}

function jccNear16(cpu: Cpu): void {
  const displacement = cpu.fetch16();
  if (conditionHolds(cpu, cpu.opcode & 0xf)) branchTo(cpu, cpu.eip + displacement);
}

function jccNear32(cpu: Cpu): void {
  const displacement = cpu.fetch32();
  if (conditionHolds(cpu, cpu.opcode & 0xf)) branchTo(cpu, cpu.eip + displacement);
}

function jmpShort(cpu: Cpu): void {
  const displacement = cpu.fetchSigned8();
  branchTo(cpu, cpu.eip + displacement);
}

function jmpNear16(cpu: Cpu): void {
  const displacement = cpu.fetch16();
  branchTo(cpu, cpu.eip + displacement);
}

function jmpNear32(cpu: Cpu): void {
  const displacement = cpu.fetch32();
  branchTo(cpu, cpu.eip + displacement);
}

function callNear16(cpu: Cpu): void {
  const displacement = cpu.fetch16();
  const returnAddress = cpu.eip & 0xffff;
  const target = (cpu.eip + displacement) & 0xffff;
  if (target > (cpu.segLimit[CS]! >>> 0)) cpu.raiseFault(VECTOR_GP, 0);
  cpu.push16(returnAddress);
  cpu.eip = target;
}

function callNear32(cpu: Cpu): void {
  const displacement = cpu.fetch32();
  const returnAddress = cpu.eip;
  const target = (cpu.eip + displacement) | 0;
  if ((target >>> 0) > (cpu.segLimit[CS]! >>> 0)) cpu.raiseFault(VECTOR_GP, 0);
  cpu.push32(returnAddress);
  cpu.eip = target;
}

function jmpFar(cpu: Cpu): void {
  const offset = cpu.operandSize32 ? cpu.fetch32() : cpu.fetch16();
  const selector = cpu.fetch16();
  cpu.loadCodeSegment(selector, offset, false);
}

/** Pushes CS:EIP and transfers; the stack is restored if loading the target faults. */
function farCall(cpu: Cpu, selector: number, offset: number): void {
  if (cpu.protectedMode && !cpu.v86Mode && (selector & 0xfffc) !== 0) {
    const { low, high } = cpu.readDescriptor(selector, VECTOR_GP);
    if (!(high & 0x1000)) {
      // A call gate, task gate or TSS: the return address goes wherever the gate decides.
      farTransferThroughSystem(cpu, selector & 0xffff, low, high, true);
      return;
    }
  }
  const returnSelector = cpu.segSelector[CS]!;
  const returnOffset = cpu.eip;
  cpu.saveStackForFault();
  if (cpu.operandSize32) {
    cpu.push32(returnSelector);
    cpu.push32(returnOffset);
  } else {
    cpu.push16(returnSelector);
    cpu.push16(returnOffset & 0xffff);
  }
  cpu.loadCodeSegment(selector, offset, false);
}

function callFar(cpu: Cpu): void {
  const offset = cpu.operandSize32 ? cpu.fetch32() : cpu.fetch16();
  const selector = cpu.fetch16();
  farCall(cpu, selector, offset);
}

// ---- RET ----------------------------------------------------------------------------------

function retNear16(cpu: Cpu): void {
  const release = cpu.opcode & 1 ? 0 : cpu.fetch16();
  cpu.saveStackForFault();
  const target = cpu.pop16();
  if (target > (cpu.segLimit[CS]! >>> 0)) cpu.raiseFault(VECTOR_GP, 0);
  cpu.adjustStack(release);
  cpu.eip = target;
}

function retNear32(cpu: Cpu): void {
  const release = cpu.opcode & 1 ? 0 : cpu.fetch16();
  cpu.saveStackForFault();
  const target = cpu.pop32();
  if ((target >>> 0) > (cpu.segLimit[CS]! >>> 0)) cpu.raiseFault(VECTOR_GP, 0);
  cpu.adjustStack(release);
  cpu.eip = target;
}

function retFar(cpu: Cpu): void {
  const release = cpu.opcode & 1 ? 0 : cpu.fetch16();
  const size32 = cpu.operandSize32 !== 0;
  cpu.saveStackForFault();
  const offset = size32 ? cpu.pop32() : cpu.pop16();
  const selector = (size32 ? cpu.pop32() : cpu.pop16()) & 0xffff;
  if (cpu.protectedMode && !cpu.v86Mode && (selector & 3) > cpu.cpl) {
    // Return to an outer privilege level: the caller's SS:ESP follows the parameters.
    cpu.adjustStack(release);
    const newEsp = size32 ? cpu.pop32() : cpu.pop16();
    const newSs = (size32 ? cpu.pop32() : cpu.pop16()) & 0xffff;
    cpu.loadCodeSegment(selector, offset, true);
    cpu.loadSegment(SS, newSs);
    if (cpu.stackSize32) cpu.regs[ESP] = newEsp;
    else cpu.regs16[8] = newEsp;
    cpu.adjustStack(release);
    invalidateDataSegmentsForPrivilege(cpu);
    return;
  }
  cpu.loadCodeSegment(selector, offset, true);
  cpu.adjustStack(release);
}

/** After a return to an outer level, data segments the new CPL may not use become null. */
function invalidateDataSegmentsForPrivilege(cpu: Cpu): void {
  for (const segment of [0, 3, 4, 5]) {
    const attributes = cpu.segAttributes[segment]!;
    const dpl = (attributes >> 5) & 3;
    const conformingCode = (attributes & 0xc) === 0xc;
    if (!conformingCode && dpl < cpu.cpl) cpu.setSegmentCache(segment, 0, 0, 0, 0);
  }
}

// ---- LOOP, JCXZ ------------------------------------------------------------------------------

function loopFamily(cpu: Cpu): void {
  const displacement = cpu.fetchSigned8();
  const opcode = cpu.opcode;
  let count: number;
  if (opcode !== 0xe3) {
    if (cpu.addressSize32) count = cpu.regs[1] = cpu.regs[1]! - 1;
    else count = cpu.regs16[2] = cpu.regs16[2]! - 1;
  } else {
    count = cpu.addressSize32 ? cpu.regs[1]! : cpu.regs16[2]!;
  }
  let taken: boolean;
  switch (opcode) {
    case 0xe0: taken = count !== 0 && !cpu.getZF(); break; // LOOPNE
    case 0xe1: taken = count !== 0 && cpu.getZF(); break; // LOOPE
    case 0xe2: taken = count !== 0; break; // LOOP
    default: taken = count === 0; break; // JCXZ / JECXZ
  }
  if (taken) branchTo(cpu, cpu.eip + displacement);
}

// ---- interrupts -----------------------------------------------------------------------------

/** In virtual-8086 mode INT n needs IOPL 3 (no VME support yet): else #GP(0) to the monitor. */
function checkV86InterruptPrivilege(cpu: Cpu): void {
  if (cpu.v86Mode && (cpu.flags & FLAG_IOPL) !== FLAG_IOPL) cpu.raiseFault(VECTOR_GP, 0);
}

function intIb(cpu: Cpu): void {
  const vector = cpu.fetch8();
  checkV86InterruptPrivilege(cpu);
  cpu.softwareInterrupt(vector, false);
}

// INT3 and INTO are not IOPL-sensitive in V86 mode (only INT n is): they go to the IDT,
// where the gate's DPL decides.
function int3(cpu: Cpu): void {
  cpu.softwareInterrupt(VECTOR_BP, true);
}

function into(cpu: Cpu): void {
  if (!cpu.getOF()) return;
  cpu.softwareInterrupt(VECTOR_OF, true);
}

/** ICEBP / INT1 (F1): a #DB trap without the IDT gate's privilege check. */
function icebp(cpu: Cpu): void {
  cpu.softwareInterrupt(VECTOR_DB, true, true);
}

function iret(cpu: Cpu): void {
  const size32 = cpu.operandSize32 !== 0;
  cpu.nmiMasked = false; // IRET ends NMI blocking, even if it then faults (SDM 6.7.1)
  if (!cpu.protectedMode) {
    cpu.saveStackForFault();
    const offset = size32 ? cpu.pop32() : cpu.pop16();
    const selector = (size32 ? cpu.pop32() : cpu.pop16()) & 0xffff;
    const flags = size32 ? cpu.pop32() : cpu.pop16();
    if ((offset >>> 0) > (cpu.segLimit[CS]! >>> 0) && cpu.modelLevel >= 3) cpu.raiseFault(VECTOR_GP, 0);
    cpu.setRealModeSegment(CS, selector);
    cpu.eip = offset;
    setIretFlags(cpu, flags, size32);
    return;
  }
  if (cpu.v86Mode) {
    if ((cpu.flags & FLAG_IOPL) !== FLAG_IOPL) cpu.raiseFault(VECTOR_GP, 0);
    cpu.saveStackForFault();
    const offset = size32 ? cpu.pop32() : cpu.pop16();
    const selector = (size32 ? cpu.pop32() : cpu.pop16()) & 0xffff;
    const flags = size32 ? cpu.pop32() : cpu.pop16();
    cpu.setRealModeSegment(CS, selector);
    cpu.eip = offset;
    setIretFlags(cpu, flags, size32);
    return;
  }
  if (cpu.flags & FLAG_NT) {
    // Return to the task in the back link of the current TSS; it must be a busy TSS in the GDT.
    const link = cpu.readSystem16(cpu.segBase[TR]!);
    if (link & 4 || (link & 0xfffc) === 0) cpu.raiseFault(VECTOR_TS, link & 0xfffc);
    const { low, high } = cpu.readDescriptor(link, VECTOR_TS);
    const type = (high >> 8) & 0x1f;
    if (type !== 3 && type !== 0xb) cpu.raiseFault(VECTOR_TS, link & 0xfffc);
    taskSwitch(cpu, link, low, high, TaskSwitchReason.Iret, cpu.eip, -1);
    return;
  }
  cpu.saveStackForFault();
  const offset = size32 ? cpu.pop32() : cpu.pop16();
  const selector = (size32 ? cpu.pop32() : cpu.pop16()) & 0xffff;
  const flags = size32 ? cpu.pop32() : cpu.pop16();
  if (size32 && flags & FLAG_VM && cpu.cpl === 0) {
    iretToV86(cpu, offset, selector, flags);
    return;
  }
  const previousCpl = cpu.cpl;
  if ((selector & 3) > cpu.cpl) {
    const newEsp = size32 ? cpu.pop32() : cpu.pop16();
    const newSs = (size32 ? cpu.pop32() : cpu.pop16()) & 0xffff;
    cpu.loadCodeSegment(selector, offset, true);
    cpu.loadSegment(SS, newSs);
    if (cpu.stackSize32) cpu.regs[ESP] = newEsp;
    else cpu.regs16[8] = newEsp;
    setProtectedIretFlags(cpu, flags, size32, previousCpl);
    invalidateDataSegmentsForPrivilege(cpu);
    return;
  }
  cpu.loadCodeSegment(selector, offset, true);
  setProtectedIretFlags(cpu, flags, size32, previousCpl);
}

/**
 * IRETD at CPL 0 with VM set in the popped EFLAGS: the frame continues with ESP, SS, ES,
 * DS, FS and GS, all loaded the real-mode way; CPL becomes 3.
 */
function iretToV86(cpu: Cpu, offset: number, selector: number, flags: number): void {
  const esp = cpu.pop32();
  const ss = cpu.pop32() & 0xffff;
  const es = cpu.pop32() & 0xffff;
  const ds = cpu.pop32() & 0xffff;
  const fs = cpu.pop32() & 0xffff;
  const gs = cpu.pop32() & 0xffff;
  cpu.setFlags(flags); // CPL 0: every flag, VM included, comes from the frame
  cpu.cpl = 3;
  cpu.setRealModeSegment(CS, selector);
  cpu.setRealModeSegment(SS, ss);
  cpu.setRealModeSegment(ES, es);
  cpu.setRealModeSegment(DS, ds);
  cpu.setRealModeSegment(FS, fs);
  cpu.setRealModeSegment(GS, gs);
  cpu.regs[ESP] = esp;
  cpu.eip = offset & 0xffff;
  cpu.updateModeCaches();
}

function setIretFlags(cpu: Cpu, value: number, size32: boolean): void {
  const mask = poppableFlags(cpu, size32) | (size32 && cpu.modelLevel >= 3 ? FLAG_RF : 0);
  let flags = (cpu.getFlags() & ~mask) | (value & mask);
  if (cpu.modelLevel === 0) flags |= 0xf000;
  cpu.flags = (flags & ~0x28) | 2;
  cpu.flagsChanged = 0;
  cpu.noteFlagsChanged();
}

/** IRET in protected mode: IOPL only at CPL 0 and IF only at CPL ≤ IOPL, judged at the old CPL. */
function setProtectedIretFlags(cpu: Cpu, value: number, size32: boolean, previousCpl: number): void {
  let mask = 0x0fd5 | FLAG_NT | (size32 ? FLAG_RF | 0x40000 | 0x200000 : 0);
  if (previousCpl === 0) mask |= FLAG_IOPL;
  if (previousCpl > ((cpu.flags & FLAG_IOPL) >> 12)) mask &= ~FLAG_IF;
  if (!size32) mask &= 0xffff;
  const flags = (cpu.getFlags() & ~mask) | (value & mask);
  cpu.flags = (flags & ~0x28) | 2;
  cpu.flagsChanged = 0;
  cpu.noteFlagsChanged();
}

// ---- BOUND, HLT -------------------------------------------------------------------------------

function bound16(cpu: Cpu): void {
  if (cpu.fetchModrm() >= 0xc0) cpu.undefinedOpcode();
  const index = (cpu.regs16[cpu.modrmReg << 1]! << 16) >> 16;
  const lower = (cpu.readMem16(cpu.eaSegment, cpu.eaOffset) << 16) >> 16;
  const upperOffset = cpu.addressSize32 ? (cpu.eaOffset + 2) | 0 : (cpu.eaOffset + 2) & 0xffff;
  const upper = (cpu.readMem16(cpu.eaSegment, upperOffset) << 16) >> 16;
  if (index < lower || index > upper) cpu.raiseFault(VECTOR_BR);
}

function bound32(cpu: Cpu): void {
  if (cpu.fetchModrm() >= 0xc0) cpu.undefinedOpcode();
  const index = cpu.regs[cpu.modrmReg]!;
  const lower = cpu.readMem32(cpu.eaSegment, cpu.eaOffset);
  const upperOffset = cpu.addressSize32 ? (cpu.eaOffset + 4) | 0 : (cpu.eaOffset + 4) & 0xffff;
  const upper = cpu.readMem32(cpu.eaSegment, upperOffset);
  if (index < lower || index > upper) cpu.raiseFault(VECTOR_BR);
}

function hlt(cpu: Cpu): void {
  if (cpu.protectedMode && cpu.cpl !== 0) cpu.raiseFault(VECTOR_GP, 0);
  cpu.halted = true;
  cpu.noteFlagsChanged();
}

// ---- groups 4 and 5 ---------------------------------------------------------------------------

function group4(cpu: Cpu): void {
  cpu.fetchModrm();
  const reg = cpu.modrmReg;
  if (reg > 1) cpu.undefinedOpcode();
  incDecModrm8(cpu, reg === 0);
}

function group5Ew(cpu: Cpu): void {
  cpu.fetchModrm();
  switch (cpu.modrmReg) {
    case 0: incDecModrm16(cpu, true); return;
    case 1: incDecModrm16(cpu, false); return;
    case 2: { // CALL near Ev
      const target = cpu.readModrm16();
      if (target > (cpu.segLimit[CS]! >>> 0)) cpu.raiseFault(VECTOR_GP, 0);
      cpu.push16(cpu.eip & 0xffff);
      cpu.eip = target;
      return;
    }
    case 3: { // CALL far Mp
      if (cpu.modrm >= 0xc0) cpu.undefinedOpcode();
      const offset = cpu.readMem16(cpu.eaSegment, cpu.eaOffset);
      const selector = cpu.readMem16(cpu.eaSegment, nextOffset(cpu, 2));
      farCall(cpu, selector, offset);
      return;
    }
    case 4: branchTo(cpu, cpu.readModrm16()); return;
    case 5: {
      if (cpu.modrm >= 0xc0) cpu.undefinedOpcode();
      const offset = cpu.readMem16(cpu.eaSegment, cpu.eaOffset);
      const selector = cpu.readMem16(cpu.eaSegment, nextOffset(cpu, 2));
      cpu.loadCodeSegment(selector, offset, false);
      return;
    }
    case 6: { // PUSH Ev
      const value = cpu.readModrm16();
      // PUSH SP through the ModR/M form: the 8086 pushes the decremented SP here too.
      cpu.push16(cpu.modrm >= 0xc0 && (cpu.modrm & 7) === 4 && cpu.modelLevel === 0 ? (value - 2) & 0xffff : value);
      return;
    }
    default:
      if (cpu.modelLevel === 0) {
        // The 8086 decodes /7 as PUSH (the decremented SP for PUSH SP).
        const value = cpu.readModrm16();
        cpu.push16(cpu.modrm >= 0xc0 && (cpu.modrm & 7) === 4 ? (value - 2) & 0xffff : value);
        return;
      }
      cpu.undefinedOpcode();
  }
}

function group5Ed(cpu: Cpu): void {
  cpu.fetchModrm();
  switch (cpu.modrmReg) {
    case 0: incDecModrm32(cpu, true); return;
    case 1: incDecModrm32(cpu, false); return;
    case 2: {
      const target = cpu.readModrm32();
      if ((target >>> 0) > (cpu.segLimit[CS]! >>> 0)) cpu.raiseFault(VECTOR_GP, 0);
      cpu.push32(cpu.eip);
      cpu.eip = target;
      return;
    }
    case 3: {
      if (cpu.modrm >= 0xc0) cpu.undefinedOpcode();
      const offset = cpu.readMem32(cpu.eaSegment, cpu.eaOffset);
      const selector = cpu.readMem16(cpu.eaSegment, nextOffset(cpu, 4));
      farCall(cpu, selector, offset);
      return;
    }
    case 4: branchTo(cpu, cpu.readModrm32()); return;
    case 5: {
      if (cpu.modrm >= 0xc0) cpu.undefinedOpcode();
      const offset = cpu.readMem32(cpu.eaSegment, cpu.eaOffset);
      const selector = cpu.readMem16(cpu.eaSegment, nextOffset(cpu, 4));
      cpu.loadCodeSegment(selector, offset, false);
      return;
    }
    case 6: cpu.push32(cpu.readModrm32()); return;
    default: cpu.undefinedOpcode();
  }
}

/** Offset of the selector word of an m16:16 / m16:32 operand. */
function nextOffset(cpu: Cpu, delta: number): number {
  return cpu.addressSize32 ? (cpu.eaOffset + delta) | 0 : (cpu.eaOffset + delta) & 0xffff;
}

export function installControlTransfer(table: TableBuilder): void {
  const level = table.modelLevel;
  for (let op = 0x70; op < 0x80; op++) table.set(op, jccShort);
  if (level === 0) for (let op = 0x60; op < 0x70; op++) table.set(op, jccShort);
  table.set(0xeb, jmpShort);
  table.setSized(0xe9, jmpNear16, jmpNear32);
  table.setSized(0xe8, callNear16, callNear32);
  table.set(0xea, jmpFar);
  table.set(0x9a, callFar);
  table.setSized(0xc2, retNear16, retNear32);
  table.setSized(0xc3, retNear16, retNear32);
  table.set(0xca, retFar);
  table.set(0xcb, retFar);
  if (level === 0) {
    // The 8086 decodes C0/C1 as RET and C8/C9 as RETF.
    table.setSized(0xc0, retNear16, retNear32);
    table.setSized(0xc1, retNear16, retNear32);
    table.set(0xc8, retFar);
    table.set(0xc9, retFar);
  }
  for (let op = 0xe0; op < 0xe4; op++) table.set(op, loopFamily);
  table.set(0xcc, int3);
  table.set(0xcd, intIb);
  table.set(0xce, into);
  table.set(0xcf, iret);
  table.set(0xf4, hlt);
  table.set(0xfe, group4);
  table.setSized(0xff, group5Ew, group5Ed);
  if (level >= 1) table.setSized(0x62, bound16, bound32);
  if (level >= 3) {
    table.set(0xf1, icebp);
    for (let op = 0x80; op < 0x90; op++) table.setSized(TWO_BYTE | op, jccNear16, jccNear32);
  }
}

