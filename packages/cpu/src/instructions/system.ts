/**
 * Flag instructions (CLC STC CMC CLI STI CLD STD), the FPU escapes and WAIT of a CPU with
 * no FPU, and the system instructions of the 0F map: groups 6 and 7 (descriptor tables,
 * LDT/TR, MSW, INVLPG), LAR/LSL/VERR/VERW, ARPL, CLTS, INVD/WBINVD, UD2, MOV to and from
 * control and debug registers, RDTSC, RDMSR/WRMSR and CPUID.
 */
import type { Cpu } from "../cpu.js";
import { descriptorAttributes } from "../cpu.js";
import {
  CR0_EM,
  CR0_MP,
  CR0_PE,
  CR0_PG,
  CR0_TS,
  CR4_DE,
  CR4_PAE,
  CS,
  EAX,
  EBX,
  ECX,
  EDX,
  EFER_NXE,
  ESP,
  FLAG_CF,
  FLAG_DF,
  FLAG_IF,
  FLAG_IOPL,
  FLAG_RF,
  FLAG_VM,
  FLAG_ZF,
  LDTR,
  SEG_ATTR_DPL,
  SEG_ATTR_P,
  SEG_ATTR_S,
  SEG_TYPE_CODE,
  SEG_TYPE_EXPAND_DOWN,
  SEG_TYPE_WRITABLE,
  SS,
  TR,
  VECTOR_GP,
  VECTOR_NM,
  VECTOR_NP,
} from "../registers.js";
import { TWO_BYTE, type TableBuilder } from "./table.js";

// ---- flag instructions -----------------------------------------------------------------------

function clc(cpu: Cpu): void {
  cpu.setFlag(FLAG_CF, false);
}

function stc(cpu: Cpu): void {
  cpu.setFlag(FLAG_CF, true);
}

function cmc(cpu: Cpu): void {
  cpu.setFlag(FLAG_CF, cpu.getCF() === 0);
}

function cld(cpu: Cpu): void {
  cpu.flags &= ~FLAG_DF;
}

function std(cpu: Cpu): void {
  cpu.flags |= FLAG_DF;
}

/** CLI/STI need CPL ≤ IOPL in protected mode (and IOPL 3 in V86 mode, without VME). */
function checkInterruptFlagPrivilege(cpu: Cpu): void {
  if (!cpu.protectedMode) return;
  const iopl = (cpu.flags & FLAG_IOPL) >> 12;
  if (cpu.v86Mode ? iopl !== 3 : cpu.cpl > iopl) cpu.raiseFault(VECTOR_GP, 0);
}

function cli(cpu: Cpu): void {
  checkInterruptFlagPrivilege(cpu);
  cpu.flags &= ~FLAG_IF;
}

function sti(cpu: Cpu): void {
  checkInterruptFlagPrivilege(cpu);
  if (!(cpu.flags & FLAG_IF)) {
    cpu.flags |= FLAG_IF;
    cpu.inhibitInterrupts(1); // interrupts wait until after the next instruction
  }
}

// ---- no FPU -----------------------------------------------------------------------------------

/** D8-DF with no FPU: the 8086 and 286 decode the operand and do nothing; later CPUs fault. */
function fpuEscape(cpu: Cpu): void {
  const modrm = cpu.fetchModrm();
  if (cpu.modelLevel <= 2) {
    if (cpu.modelLevel === 2) {
      if (cpu.cr0 & (CR0_EM | CR0_TS)) cpu.raiseFault(VECTOR_NM);
      // With no coprocessor the 286 still checks the operand against the segment limit.
      if (modrm < 0xc0) cpu.linearFor(cpu.eaSegment, cpu.eaOffset, fpuOperandSize(cpu.opcode, cpu.modrmReg), false);
    }
    return;
  }
  if (cpu.cr0 & (CR0_EM | CR0_TS)) cpu.raiseFault(VECTOR_NM);
  cpu.undefinedOpcode();
}

/** Bytes of the memory operand of an x87 instruction (D8-DF /reg). */
function fpuOperandSize(opcode: number, reg: number): number {
  switch (opcode) {
    case 0xd8: return 4;
    case 0xd9: return reg === 4 || reg === 6 ? 14 : reg === 5 || reg === 7 ? 2 : 4;
    case 0xda: return 4;
    case 0xdb: return reg === 5 || reg === 7 ? 10 : 4;
    case 0xdc: return 8;
    case 0xdd: return reg === 4 || reg === 6 ? 94 : reg === 7 ? 2 : 8;
    case 0xde: return 2;
    default: return reg === 4 || reg === 6 ? 10 : reg === 5 || reg === 7 ? 8 : 2;
  }
}

function wait(cpu: Cpu): void {
  if ((cpu.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) cpu.raiseFault(VECTOR_NM);
}

// ---- helpers --------------------------------------------------------------------------------

function requireProtectedMode(cpu: Cpu): void {
  if (!cpu.protectedMode || cpu.v86Mode) cpu.undefinedOpcode();
}

function requireRing0(cpu: Cpu): void {
  if (cpu.protectedMode && (cpu.cpl !== 0 || cpu.v86Mode)) cpu.raiseFault(VECTOR_GP, 0);
}

/** Writes a 16-bit value to a ModR/M destination; register forms zero-extend with 32-bit size. */
function storeSelector(cpu: Cpu, value: number): void {
  if (cpu.modrm >= 0xc0 && cpu.operandSize32) cpu.regs[cpu.modrm & 7] = value;
  else cpu.writeModrm16(value);
}

// ---- group 6: SLDT STR LLDT LTR VERR VERW ------------------------------------------------------

function group6(cpu: Cpu): void {
  cpu.fetchModrm();
  requireProtectedMode(cpu);
  switch (cpu.modrmReg) {
    case 0:
      storeSelector(cpu, cpu.segSelector[LDTR]!);
      return;
    case 1:
      storeSelector(cpu, cpu.segSelector[TR]!);
      return;
    case 2: { // LLDT
      requireRing0(cpu);
      const selector = cpu.readModrm16();
      if ((selector & 0xfffc) === 0) {
        cpu.setSegmentCache(LDTR, selector, 0, 0, 0);
        return;
      }
      if (selector & 4) cpu.raiseFault(VECTOR_GP, selector & 0xfffc);
      const { low, high } = cpu.readDescriptor(selector, VECTOR_GP);
      const attributes = descriptorAttributes(high);
      if ((attributes & (SEG_ATTR_S | 0xf)) !== 2) cpu.raiseFault(VECTOR_GP, selector & 0xfffc);
      if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_NP, selector & 0xfffc);
      cpu.setDescriptorCache(LDTR, selector, low, high);
      cpu.segAttributes[LDTR] = attributes; // system segments have no accessed bit
      return;
    }
    case 3: { // LTR
      requireRing0(cpu);
      const selector = cpu.readModrm16();
      if ((selector & 0xfffc) === 0 || selector & 4) cpu.raiseFault(VECTOR_GP, selector & 0xfffc);
      const { low, high } = cpu.readDescriptor(selector, VECTOR_GP);
      const attributes = descriptorAttributes(high);
      const type = attributes & (SEG_ATTR_S | 0xf);
      if (type !== 1 && type !== 9) cpu.raiseFault(VECTOR_GP, selector & 0xfffc);
      if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_NP, selector & 0xfffc);
      // Mark the TSS busy in the GDT.
      cpu.writeLinear32((cpu.gdtBase + (selector & 0xfff8) + 4) | 0, high | 0x200);
      cpu.setDescriptorCache(TR, selector, low, high | 0x200);
      cpu.segAttributes[TR] = attributes | 2;
      return;
    }
    case 4:
    case 5: { // VERR / VERW
      const selector = cpu.readModrm16();
      cpu.materializeFlags();
      cpu.flags &= ~FLAG_ZF;
      const attributes = readableDescriptorAttributes(cpu, selector);
      if (attributes < 0 || !(attributes & SEG_ATTR_S)) return;
      const code = (attributes & SEG_TYPE_CODE) !== 0;
      const conforming = code && (attributes & SEG_TYPE_EXPAND_DOWN) !== 0;
      const dpl = (attributes & SEG_ATTR_DPL) >> 5;
      if (!conforming && (dpl < cpu.cpl || dpl < (selector & 3))) return;
      const ok = cpu.modrmReg === 4 ? !code || (attributes & SEG_TYPE_WRITABLE) !== 0 : !code && (attributes & SEG_TYPE_WRITABLE) !== 0;
      if (ok) cpu.flags |= FLAG_ZF;
      return;
    }
    default:
      cpu.undefinedOpcode();
  }
}

/** Attributes of a selector's descriptor, or −1 when it is null or outside its table. */
function readableDescriptorAttributes(cpu: Cpu, selector: number): number {
  if ((selector & 0xfffc) === 0) return -1;
  const index = selector & 0xfff8;
  const limit = selector & 4 ? cpu.segLimit[LDTR]! >>> 0 : cpu.gdtLimit;
  if (index + 7 > limit) return -1;
  return descriptorAttributes(cpu.readDescriptor(selector, VECTOR_GP).high);
}

// ---- group 7: SGDT SIDT LGDT LIDT SMSW LMSW INVLPG -----------------------------------------------

function group7(cpu: Cpu): void {
  const modrm = cpu.fetchModrm();
  const reg = cpu.modrmReg;
  if (modrm >= 0xc0 && reg !== 4 && reg !== 6) cpu.undefinedOpcode();
  switch (reg) {
    case 0:
    case 1: { // SGDT / SIDT
      const base = reg === 0 ? cpu.gdtBase : cpu.idtBase;
      const limit = reg === 0 ? cpu.gdtLimit : cpu.idtLimit;
      const next = cpu.addressSize32 ? (cpu.eaOffset + 2) | 0 : (cpu.eaOffset + 2) & 0xffff;
      cpu.probeMemWrite(cpu.eaSegment, cpu.eaOffset, 6);
      cpu.writeMem16(cpu.eaSegment, cpu.eaOffset, limit);
      // 16-bit operand size stores a 24-bit base; the 286 fills the top byte with ones.
      const stored = cpu.operandSize32 ? base : (base & 0xffffff) | (cpu.modelLevel === 2 ? 0xff000000 : 0);
      cpu.writeMem32(cpu.eaSegment, next, stored);
      return;
    }
    case 2:
    case 3: { // LGDT / LIDT
      requireRing0(cpu);
      const limit = cpu.readMem16(cpu.eaSegment, cpu.eaOffset);
      const next = cpu.addressSize32 ? (cpu.eaOffset + 2) | 0 : (cpu.eaOffset + 2) & 0xffff;
      let base = cpu.readMem32(cpu.eaSegment, next);
      if (!cpu.operandSize32) base &= 0xffffff;
      if (reg === 2) {
        cpu.gdtBase = base | 0;
        cpu.gdtLimit = limit;
      } else {
        cpu.idtBase = base | 0;
        cpu.idtLimit = limit;
      }
      return;
    }
    case 4: { // SMSW
      const msw = cpu.modelLevel === 2 ? cpu.cr0 | 0xfff0 : cpu.cr0;
      if (modrm >= 0xc0 && cpu.operandSize32) cpu.regs[modrm & 7] = msw;
      else cpu.writeModrm16(msw & 0xffff);
      return;
    }
    case 6: { // LMSW: sets PE (never clears it), MP, EM, TS
      requireRing0(cpu);
      const value = cpu.readModrm16();
      const cr0 = (cpu.cr0 & ~0xe) | (value & 0xf) | (cpu.cr0 & CR0_PE);
      cpu.writeCr0(cr0);
      return;
    }
    case 7: // INVLPG
      if (cpu.modelLevel < 4) cpu.undefinedOpcode();
      requireRing0(cpu);
      cpu.invalidatePage((cpu.segBase[cpu.eaSegment]! + cpu.eaOffset) | 0);
      return;
    default:
      cpu.undefinedOpcode();
  }
}

// ---- LAR, LSL, ARPL, CLTS --------------------------------------------------------------------

function larLsl(cpu: Cpu): void {
  cpu.fetchModrm();
  requireProtectedMode(cpu);
  const selector = cpu.readModrm16();
  cpu.materializeFlags();
  cpu.flags &= ~FLAG_ZF;
  const attributes = readableDescriptorAttributes(cpu, selector);
  if (attributes < 0) return;
  const lsl = cpu.opcode === 0x03;
  const dpl = (attributes & SEG_ATTR_DPL) >> 5;
  const conformingCode = (attributes & (SEG_ATTR_S | SEG_TYPE_CODE | SEG_TYPE_EXPAND_DOWN)) === (SEG_ATTR_S | SEG_TYPE_CODE | SEG_TYPE_EXPAND_DOWN);
  if (!conformingCode && (dpl < cpu.cpl || dpl < (selector & 3))) return;
  if (!(attributes & SEG_ATTR_S)) {
    const type = attributes & 0xf;
    const validForLar = [1, 2, 3, 4, 5, 9, 0xb, 0xc].includes(type);
    const validForLsl = [1, 2, 3, 9, 0xb].includes(type);
    if (lsl ? !validForLsl : !validForLar) return;
  }
  const { low, high } = cpu.readDescriptor(selector, VECTOR_GP);
  let result: number;
  if (lsl) {
    result = (low & 0xffff) | (high & 0xf0000);
    if (high & 0x800000) result = (result << 12) | 0xfff;
  } else {
    result = high & 0x00f0ff00;
  }
  if (cpu.operandSize32) cpu.regs[cpu.modrmReg] = result;
  else cpu.regs16[cpu.modrmReg << 1] = result;
  cpu.flags |= FLAG_ZF;
}

function arpl(cpu: Cpu): void {
  cpu.fetchModrm();
  requireProtectedMode(cpu);
  cpu.probeModrmWrite(2);
  const destination = cpu.readModrm16();
  const source = cpu.regs16[cpu.modrmReg << 1]!;
  cpu.materializeFlags();
  if ((destination & 3) < (source & 3)) {
    cpu.writeModrm16((destination & ~3) | (source & 3));
    cpu.flags |= FLAG_ZF;
  } else {
    cpu.flags &= ~FLAG_ZF;
  }
}

function clts(cpu: Cpu): void {
  requireRing0(cpu);
  cpu.cr0 &= ~CR0_TS;
}

function cacheControl(cpu: Cpu): void {
  requireRing0(cpu); // INVD / WBINVD: no caches to manage
}

function ud2(cpu: Cpu): void {
  cpu.undefinedOpcode();
}

/** NOP Ev (0F 1F /0), the P6 family's multi-byte NOP: decodes its operand, touches nothing. */
function nopEv(cpu: Cpu): void {
  cpu.fetchModrm();
  if (cpu.modrmReg !== 0) cpu.undefinedOpcode();
}

// ---- MOV CRn / DRn ------------------------------------------------------------------------------

/**
 * MOV to and from CRn/DRn always name a register: the CPU ignores the ModR/M mod field, so
 * no displacement follows whatever it holds.
 */
function fetchRegisterModrm(cpu: Cpu): number {
  const modrm = cpu.fetch8() | 0xc0;
  cpu.modrm = modrm;
  return modrm;
}

/** Control registers this model has (CR0, CR2, CR3, and CR4 from the Pentium on). */
function controlRegisterExists(cpu: Cpu, reg: number): boolean {
  return reg === 0 || reg === 2 || reg === 3 || (reg === 4 && cpu.modelLevel >= 5);
}

function movFromControl(cpu: Cpu): void {
  fetchRegisterModrm(cpu);
  const reg = cpu.modrmReg;
  if (!controlRegisterExists(cpu, reg)) cpu.undefinedOpcode(); // #UD before the privilege check
  requireRing0(cpu);
  const target = cpu.modrm & 7;
  cpu.regs[target] = reg === 0 ? cpu.cr0 : reg === 2 ? cpu.cr2 : reg === 3 ? cpu.cr3 : cpu.cr4;
}

function movToControl(cpu: Cpu): void {
  fetchRegisterModrm(cpu);
  const reg = cpu.modrmReg;
  if (!controlRegisterExists(cpu, reg)) cpu.undefinedOpcode();
  requireRing0(cpu);
  const value = cpu.regs[cpu.modrm & 7]!;
  switch (reg) {
    case 0:
      if (value & CR0_PG && !(value & CR0_PE)) cpu.raiseFault(VECTOR_GP, 0);
      if (value & CR0_PG && !(cpu.cr0 & CR0_PG)) checkPdptes(cpu, cpu.cr3, cpu.cr4);
      cpu.writeCr0(value);
      return;
    case 2: cpu.cr2 = value; return;
    case 3:
      if (cpu.cr0 & CR0_PG) checkPdptes(cpu, value, cpu.cr4);
      cpu.writeCr3(value);
      return;
    default:
      if (value & ~SUPPORTED_CR4) cpu.raiseFault(VECTOR_GP, 0);
      if (cpu.cr0 & CR0_PG && value & CR4_PAE && !(cpu.cr4 & CR4_PAE)) checkPdptes(cpu, cpu.cr3, value);
      cpu.writeCr4(value);
      cpu.syncBreakpoints(); // CR4.DE turns I/O breakpoints on or off
      cpu.noteFlagsChanged();
  }
}

/** In PAE mode a MOV that (re)loads the PDPTEs raises #GP(0) when one has reserved bits set. */
function checkPdptes(cpu: Cpu, cr3: number, cr4: number): void {
  if (cr4 & CR4_PAE && !cpu.pdptesValid(cr3)) cpu.raiseFault(VECTOR_GP, 0);
}

/** CR4 bits this CPU implements: TSD, DE, PSE, PAE, PGE. */
const SUPPORTED_CR4 = (1 << 2) | CR4_DE | (1 << 4) | CR4_PAE | (1 << 7);

/**
 * The debug register a MOV names: DR4/DR5 alias DR6/DR7 while CR4.DE is clear and raise
 * #UD when it is set; with DR7.GD set any access raises #DB first (after the CPL check).
 */
function debugRegisterOperand(cpu: Cpu): number {
  fetchRegisterModrm(cpu);
  requireRing0(cpu);
  let reg = cpu.modrmReg;
  if (reg === 4 || reg === 5) {
    if (cpu.cr4 & CR4_DE) cpu.undefinedOpcode();
    reg += 2;
  }
  cpu.checkGeneralDetect();
  return reg;
}

function movFromDebug(cpu: Cpu): void {
  const reg = debugRegisterOperand(cpu);
  cpu.regs[cpu.modrm & 7] = cpu.dr[reg]!;
}

function movToDebug(cpu: Cpu): void {
  const reg = debugRegisterOperand(cpu);
  const value = cpu.regs[cpu.modrm & 7]!;
  if (reg === 6) cpu.dr[6] = (value & 0xe00f) | (0xffff0ff0 | 0);
  else if (reg === 7) cpu.dr[7] = (value & 0xffff2bff) | 0x400;
  else cpu.dr[reg] = value;
  // New breakpoints take effect from the next instruction: end the slice so run() sees them.
  cpu.syncBreakpoints();
  cpu.noteFlagsChanged();
}

// ---- RDTSC, MSRs, CPUID ----------------------------------------------------------------------

function rdtsc(cpu: Cpu): void {
  if (cpu.cr4 & 4 && cpu.protectedMode && cpu.cpl !== 0) cpu.raiseFault(VECTOR_GP, 0);
  const tsc = cpu.instructionsRetired + cpu.sliceCount + cpu.tscOffset;
  cpu.regs[EAX] = tsc % 0x100000000;
  cpu.regs[EDX] = Math.floor(tsc / 0x100000000);
}

const MSR_TSC = 0x10;
const MSR_APIC_BASE = 0x1b;
const MSR_SYSENTER_CS = 0x174;
const MSR_SYSENTER_ESP = 0x175;
const MSR_SYSENTER_EIP = 0x176;
const MSR_EFER = 0xc0000080;

function rdmsr(cpu: Cpu): void {
  requireRing0(cpu);
  const msr = cpu.regs[ECX]! >>> 0;
  if (cpu.msrHandler !== null) cpu.msrHandler(msr, false);
  let low: number;
  let high = 0;
  switch (msr) {
    case MSR_TSC: {
      const tsc = cpu.instructionsRetired + cpu.sliceCount + cpu.tscOffset;
      low = tsc % 0x100000000;
      high = Math.floor(tsc / 0x100000000);
      break;
    }
    case MSR_APIC_BASE: low = cpu.msrApicBase; break;
    case MSR_SYSENTER_CS: low = cpu.msrSysenterCs; break;
    case MSR_SYSENTER_ESP: low = cpu.msrSysenterEsp; break;
    case MSR_SYSENTER_EIP: low = cpu.msrSysenterEip; break;
    case MSR_EFER: low = cpu.efer; break;
    default: return cpu.raiseFault(VECTOR_GP, 0);
  }
  cpu.regs[EAX] = low;
  cpu.regs[EDX] = high;
}

function wrmsr(cpu: Cpu): void {
  requireRing0(cpu);
  const msr = cpu.regs[ECX]! >>> 0;
  if (cpu.msrHandler !== null) cpu.msrHandler(msr, true);
  const low = cpu.regs[EAX]!;
  const high = cpu.regs[EDX]!;
  switch (msr) {
    case MSR_TSC:
      cpu.tscOffset = (high >>> 0) * 0x100000000 + (low >>> 0) - cpu.instructionsRetired - cpu.sliceCount;
      return;
    case MSR_APIC_BASE: cpu.msrApicBase = low; return;
    case MSR_SYSENTER_CS: cpu.msrSysenterCs = low & 0xffff; return;
    case MSR_SYSENTER_ESP: cpu.msrSysenterEsp = low; return;
    case MSR_SYSENTER_EIP: cpu.msrSysenterEip = low; return;
    case MSR_EFER:
      // Only NXE exists here (no long mode, no SYSCALL): any other bit raises #GP(0).
      if (low & ~EFER_NXE || high !== 0) cpu.raiseFault(VECTOR_GP, 0);
      cpu.writeEfer(low);
      return;
    default: cpu.raiseFault(VECTOR_GP, 0);
  }
}

// ---- SYSENTER, SYSEXIT -------------------------------------------------------------------------

// Flat 4 GiB segments (WHPX attribute layout): execute/read code and read/write data, with
// DPL 0 for SYSENTER and DPL 3 for SYSEXIT; both accessed, 32-bit, page granular.
const FLAT_CODE = 0xc09b;
const FLAT_DATA = 0xc093;
const DPL3 = 0x60;

/**
 * SYSENTER (Pentium Pro): to CPL 0 at IA32_SYSENTER_CS:EIP with SS = CS + 8 and
 * ESP = IA32_SYSENTER_ESP, flat segments loaded without reading the GDT; clears VM, IF, RF.
 */
function sysenter(cpu: Cpu): void {
  const cs = cpu.msrSysenterCs & 0xfffc;
  if (!cpu.protectedMode || cs === 0) cpu.raiseFault(VECTOR_GP, 0);
  cpu.materializeFlags();
  cpu.flags &= ~(FLAG_VM | FLAG_IF | FLAG_RF);
  cpu.cpl = 0;
  cpu.setSegmentCache(CS, cs, 0, 0xffffffff, FLAT_CODE);
  cpu.setSegmentCache(SS, (cs + 8) & 0xffff, 0, 0xffffffff, FLAT_DATA);
  cpu.regs[ESP] = cpu.msrSysenterEsp;
  cpu.eip = cpu.msrSysenterEip;
  cpu.updateModeCaches();
  cpu.noteFlagsChanged();
}

/** SYSEXIT: from CPL 0 to CPL 3 at (SYSENTER_CS + 16):EDX with SS = SYSENTER_CS + 24, ESP = ECX. */
function sysexit(cpu: Cpu): void {
  const cs = cpu.msrSysenterCs & 0xfffc;
  if (!cpu.protectedMode || cs === 0 || cpu.cpl !== 0 || cpu.v86Mode) cpu.raiseFault(VECTOR_GP, 0);
  cpu.cpl = 3;
  cpu.setSegmentCache(CS, ((cs + 16) | 3) & 0xffff, 0, 0xffffffff, FLAT_CODE | DPL3);
  cpu.setSegmentCache(SS, ((cs + 24) | 3) & 0xffff, 0, 0xffffffff, FLAT_DATA | DPL3);
  cpu.regs[ESP] = cpu.regs[ECX]!;
  cpu.eip = cpu.regs[EDX]!;
  cpu.updateModeCaches();
}

/**
 * Feature bits (leaf 1 EDX) of what this interpreter implements: DE, PSE, TSC, MSR, PAE,
 * CX8, SEP, PGE, CMOV. Bit 0 (FPU) is clear: there is no x87.
 */
export const CPUID_FEATURES_EDX = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15);
/** Leaf 0x80000001 EDX: NX (execute-disable pages with PAE and EFER.NXE). */
export const CPUID_EXTENDED_FEATURES_EDX = 1 << 20;

function cpuid(cpu: Cpu): void {
  const leaf = cpu.regs[EAX]! >>> 0;
  const result = cpu.cpuidHandler ? cpu.cpuidHandler(leaf, cpu.regs[ECX]! >>> 0) : defaultCpuid(leaf);
  cpu.regs[EAX] = result[0]!;
  cpu.regs[EBX] = result[1]!;
  cpu.regs[ECX] = result[2]!;
  cpu.regs[EDX] = result[3]!;
}

const cpuidResult = new Int32Array(4);

/** CPUID as this interpreter reports itself: vendor "GenuineIntel", family 6 model 1. */
export function defaultCpuid(leaf: number): Int32Array {
  const r = cpuidResult;
  r.fill(0);
  if (leaf === 0) {
    r[0] = 1;
    r[1] = 0x756e6547; // "Genu"
    r[3] = 0x49656e69; // "ineI"
    r[2] = 0x6c65746e; // "ntel"
  } else if (leaf === 1) {
    r[0] = 0x0619;
    r[3] = CPUID_FEATURES_EDX;
  } else if (leaf === 0x80000000) {
    r[0] = 0x80000001 | 0; // highest extended leaf
  } else if (leaf === 0x80000001) {
    r[3] = CPUID_EXTENDED_FEATURES_EDX;
  }
  return r;
}

export function installSystem(table: TableBuilder): void {
  const level = table.modelLevel;
  table.set(0xf5, cmc);
  table.set(0xf8, clc);
  table.set(0xf9, stc);
  table.set(0xfa, cli);
  table.set(0xfb, sti);
  table.set(0xfc, cld);
  table.set(0xfd, std);
  table.set(0x9b, wait);
  for (let op = 0xd8; op < 0xe0; op++) table.set(op, fpuEscape);
  if (level >= 2) {
    table.set(TWO_BYTE | 0x00, group6);
    table.set(TWO_BYTE | 0x01, group7);
    table.set(TWO_BYTE | 0x02, larLsl);
    table.set(TWO_BYTE | 0x03, larLsl);
    table.set(TWO_BYTE | 0x06, clts);
    table.set(0x63, arpl);
  }
  if (level >= 3) {
    table.set(TWO_BYTE | 0x20, movFromControl);
    table.set(TWO_BYTE | 0x22, movToControl);
    table.set(TWO_BYTE | 0x21, movFromDebug);
    table.set(TWO_BYTE | 0x23, movToDebug);
  }
  if (level >= 4) {
    table.set(TWO_BYTE | 0x08, cacheControl);
    table.set(TWO_BYTE | 0x09, cacheControl);
  }
  if (level >= 5) {
    table.set(TWO_BYTE | 0x0b, ud2);
    table.set(TWO_BYTE | 0x30, wrmsr);
    table.set(TWO_BYTE | 0x31, rdtsc);
    table.set(TWO_BYTE | 0x32, rdmsr);
    table.set(TWO_BYTE | 0xa2, cpuid);
  }
  if (level >= 6) {
    table.set(TWO_BYTE | 0x1f, nopEv);
    table.set(TWO_BYTE | 0x34, sysenter);
    table.set(TWO_BYTE | 0x35, sysexit);
  }
}
