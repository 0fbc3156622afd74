/**
 * Protected-mode far transfers through system descriptors (SDM Vol. 3 §5.8 and ch. 7):
 * JMP and CALL through call gates, with the stack switch and parameter copy of a call to
 * an inner privilege level, and hardware task switches: JMP/CALL to a TSS or a task gate,
 * task gates in the IDT, and IRET with EFLAGS.NT back along the task link.
 */
import type { Cpu } from "./cpu.js";
import { descriptorAttributes } from "./cpu.js";
import {
  CR0_PG,
  CR0_TS,
  CS,
  DS,
  ES,
  ESP,
  FLAG_NT,
  FLAG_VM,
  FS,
  GS,
  LDTR,
  SEG_ATTR_DPL,
  SEG_ATTR_G,
  SEG_ATTR_P,
  SEG_ATTR_S,
  SEG_TYPE_CODE,
  SEG_TYPE_EXPAND_DOWN,
  SEG_TYPE_WRITABLE,
  SS,
  TR,
  VECTOR_GP,
  VECTOR_NP,
  VECTOR_SS,
  VECTOR_TS,
} from "./registers.js";

/** What started a task switch: decides the busy bits, NT and the back link. */
export const TaskSwitchReason = { Jump: 0, Call: 1, Iret: 2, Interrupt: 3 } as const;
export type TaskSwitchReason = (typeof TaskSwitchReason)[keyof typeof TaskSwitchReason];

/** Byte-granular limit of a descriptor. */
function descriptorLimit(low: number, high: number): number {
  let limit = (low & 0xffff) | (high & 0xf0000);
  if (descriptorAttributes(high) & SEG_ATTR_G) limit = ((limit << 12) | 0xfff) >>> 0;
  return limit;
}

function descriptorBase(low: number, high: number): number {
  return ((low >>> 16) | ((high & 0xff) << 16) | (high & 0xff000000)) | 0;
}

/**
 * Far JMP or CALL whose selector names a system descriptor (S = 0) in protected mode:
 * a call gate, a task gate or a TSS. Anything else raises #GP(selector).
 */
export function farTransferThroughSystem(cpu: Cpu, selector: number, low: number, high: number, call: boolean): void {
  const attributes = descriptorAttributes(high);
  const dpl = (attributes & SEG_ATTR_DPL) >> 5;
  const rpl = selector & 3;
  const error = selector & 0xfffc;
  const reason = call ? TaskSwitchReason.Call : TaskSwitchReason.Jump;
  switch (attributes & 0xf) {
    case 4:
    case 0xc:
      throughCallGate(cpu, selector, low, high, call);
      return;
    case 1:
    case 9: // an available TSS
      if (dpl < cpu.cpl || dpl < rpl) cpu.raiseFault(VECTOR_GP, error);
      taskSwitch(cpu, selector, low, high, reason, cpu.eip, -1);
      return;
    case 5: { // task gate
      if (dpl < cpu.cpl || dpl < rpl) cpu.raiseFault(VECTOR_GP, error);
      if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_NP, error);
      const tss = readTaskGateTarget(cpu, low >>> 16, VECTOR_GP);
      taskSwitch(cpu, low >>> 16, tss.low, tss.high, reason, cpu.eip, -1);
      return;
    }
    default: // a busy TSS, an LDT, interrupt and trap gates, reserved types
      cpu.raiseFault(VECTOR_GP, error);
  }
}

/** The TSS descriptor a task gate names: in the GDT, an available TSS; else `vector`(selector). */
export function readTaskGateTarget(cpu: Cpu, tssSelector: number, vector: number): { low: number; high: number } {
  const error = tssSelector & 0xfffc;
  if (tssSelector & 4 || error === 0) cpu.raiseFault(vector, error);
  const { low, high } = cpu.readDescriptor(tssSelector, vector);
  const type = (high >> 8) & 0x1f; // S and type: 0x01 / 0x09 available 16- / 32-bit TSS
  if (type !== 1 && type !== 9) cpu.raiseFault(vector, error);
  return { low, high };
}

const parameterScratch = new Int32Array(32);

function throughCallGate(cpu: Cpu, gateSelector: number, gateLow: number, gateHigh: number, call: boolean): void {
  const gateAttributes = descriptorAttributes(gateHigh);
  const gateDpl = (gateAttributes & SEG_ATTR_DPL) >> 5;
  if (gateDpl < cpu.cpl || (gateSelector & 3) > gateDpl) cpu.raiseFault(VECTOR_GP, gateSelector & 0xfffc);
  if (!(gateAttributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_NP, gateSelector & 0xfffc);
  const gate32 = (gateAttributes & 0xf) === 0xc;
  const codeSelector = gateLow >>> 16;
  const offset = gate32 ? (gateHigh & 0xffff0000) | (gateLow & 0xffff) : gateLow & 0xffff;
  const parameterCount = gateHigh & 0x1f;
  if ((codeSelector & 0xfffc) === 0) cpu.raiseFault(VECTOR_GP, 0);
  const { low, high } = cpu.readDescriptor(codeSelector, VECTOR_GP);
  const attributes = descriptorAttributes(high);
  const codeDpl = (attributes & SEG_ATTR_DPL) >> 5;
  const conforming = (attributes & SEG_TYPE_EXPAND_DOWN) !== 0;
  if ((attributes & (SEG_ATTR_S | SEG_TYPE_CODE)) !== (SEG_ATTR_S | SEG_TYPE_CODE) || codeDpl > cpu.cpl) {
    cpu.raiseFault(VECTOR_GP, codeSelector & 0xfffc);
  }
  // A JMP through a gate never changes privilege: the target must be at the current level.
  if (!call && !conforming && codeDpl !== cpu.cpl) cpu.raiseFault(VECTOR_GP, codeSelector & 0xfffc);
  if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_NP, codeSelector & 0xfffc);
  if ((offset >>> 0) > descriptorLimit(low, high)) cpu.raiseFault(VECTOR_GP, 0);
  if (!call) {
    cpu.loadCodeSegmentCache(codeSelector, low, high, cpu.cpl);
    cpu.eip = offset | 0;
    return;
  }
  const returnCs = cpu.segSelector[CS]!;
  const returnEip = cpu.eip;
  cpu.saveStackForFault();
  if (!conforming && codeDpl < cpu.cpl) {
    // Inner privilege: the new stack comes from the TSS; it gets the caller's SS:ESP and a
    // copy of the parameters in their original order, then the return address.
    const size = gate32 ? 4 : 2;
    const oldSs = cpu.segSelector[SS]!;
    const oldEsp = cpu.regs[ESP]!;
    const stack32 = cpu.stackSize32 !== 0;
    for (let i = 0; i < parameterCount; i++) {
      const at = stack32 ? (oldEsp + i * size) | 0 : (oldEsp + i * size) & 0xffff;
      parameterScratch[i] = gate32 ? cpu.readMem32(SS, at) : cpu.readMem16(SS, at);
    }
    const { selector: newSs, pointer: newEsp } = cpu.readTssStack(codeDpl);
    const saved = saveStackSegment(cpu);
    try {
      cpu.loadStackSegmentForPrivilege(newSs, codeDpl);
      cpu.regs[ESP] = newEsp;
      cpu.cpl = codeDpl;
      cpu.updateModeCaches();
      if (gate32) {
        cpu.push32(oldSs);
        cpu.push32(oldEsp);
        for (let i = parameterCount - 1; i >= 0; i--) cpu.push32(parameterScratch[i]!);
        cpu.push32(returnCs);
        cpu.push32(returnEip);
      } else {
        cpu.push16(oldSs);
        cpu.push16(oldEsp & 0xffff);
        for (let i = parameterCount - 1; i >= 0; i--) cpu.push16(parameterScratch[i]! & 0xffff);
        cpu.push16(returnCs);
        cpu.push16(returnEip & 0xffff);
      }
    } catch (signal) {
      restoreStackSegment(cpu, saved);
      throw signal;
    }
    cpu.loadCodeSegmentCache(codeSelector, low, high, codeDpl);
  } else {
    if (gate32) {
      cpu.push32(returnCs);
      cpu.push32(returnEip);
    } else {
      cpu.push16(returnCs);
      cpu.push16(returnEip & 0xffff);
    }
    cpu.loadCodeSegmentCache(codeSelector, low, high, cpu.cpl);
  }
  cpu.eip = offset | 0;
}

interface SavedStack {
  selector: number;
  base: number;
  limit: number;
  attributes: number;
  cpl: number;
}

function saveStackSegment(cpu: Cpu): SavedStack {
  return { selector: cpu.segSelector[SS]!, base: cpu.segBase[SS]!, limit: cpu.segLimit[SS]!, attributes: cpu.segAttributes[SS]!, cpl: cpu.cpl };
}

/** Undoes a stack switch when a push onto the new stack faulted (ESP is restored by run()). */
function restoreStackSegment(cpu: Cpu, saved: SavedStack): void {
  cpu.setSegmentCache(SS, saved.selector, saved.base, saved.limit, saved.attributes);
  cpu.cpl = saved.cpl;
  cpu.updateModeCaches();
}

// ---- task switches ------------------------------------------------------------------------

/** Offsets in a 32-bit TSS, and in a 16-bit one. */
const TSS32 = { eip: 0x20, eflags: 0x24, regs: 0x28, segments: 0x48, ldt: 0x60, cr3: 0x1c, trap: 0x64, limit: 0x67 } as const;
const TSS16 = { eip: 0x0e, eflags: 0x10, regs: 0x12, segments: 0x22, ldt: 0x2a, limit: 0x2b } as const;

const newRegisters = new Int32Array(8);
const newSegments = new Uint16Array(6);

/**
 * Switches to the task whose TSS descriptor is `low`/`high` (SDM §7.3): checks the new TSS,
 * saves the current task's state in its TSS, updates busy bits, NT and the back link,
 * loads TR, CR3, the LDT, the registers and the segments of the new task, sets CR0.TS and
 * pushes `errorCode` (≥ 0) for an exception. `returnEip` is the EIP saved for the old task.
 *
 * Faults found before the old state is saved leave everything as it was; faults loading
 * the new task's segments are raised in the new task (its EIP is reported).
 */
export function taskSwitch(
  cpu: Cpu,
  selector: number,
  low: number,
  high: number,
  reason: TaskSwitchReason,
  returnEip: number,
  errorCode: number,
): void {
  const error = selector & 0xfffc;
  const attributes = descriptorAttributes(high);
  const type = attributes & 0xf;
  const new32 = (type & 8) !== 0;
  if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_NP, error);
  if (descriptorLimit(low, high) < (new32 ? TSS32.limit : TSS16.limit)) cpu.raiseFault(VECTOR_TS, error);
  const busy = (type & 2) !== 0;
  if (reason === TaskSwitchReason.Iret ? !busy : busy) cpu.raiseFault(reason === TaskSwitchReason.Iret ? VECTOR_TS : VECTOR_GP, error);
  const newBase = descriptorBase(low, high);

  // Read the new task's state first: a page fault here leaves the old task untouched.
  let newEip: number;
  let newFlags: number;
  let newLdt: number;
  let newCr3 = cpu.cr3;
  let trap = false;
  if (new32) {
    newEip = cpu.readSystem32((newBase + TSS32.eip) | 0);
    newFlags = cpu.readSystem32((newBase + TSS32.eflags) | 0);
    for (let r = 0; r < 8; r++) newRegisters[r] = cpu.readSystem32((newBase + TSS32.regs + r * 4) | 0);
    for (let s = 0; s < 6; s++) newSegments[s] = cpu.readSystem16((newBase + TSS32.segments + s * 4) | 0);
    newLdt = cpu.readSystem16((newBase + TSS32.ldt) | 0);
    newCr3 = cpu.readSystem32((newBase + TSS32.cr3) | 0);
    trap = (cpu.readSystem16((newBase + TSS32.trap) | 0) & 1) !== 0;
  } else {
    newEip = cpu.readSystem16((newBase + TSS16.eip) | 0);
    newFlags = cpu.readSystem16((newBase + TSS16.eflags) | 0);
    // A 16-bit TSS holds the low halves; the 80386 sets the upper halves to ones (as Bochs does).
    for (let r = 0; r < 8; r++) newRegisters[r] = 0xffff0000 | cpu.readSystem16((newBase + TSS16.regs + r * 2) | 0);
    for (let s = 0; s < 4; s++) newSegments[s] = cpu.readSystem16((newBase + TSS16.segments + s * 2) | 0);
    newSegments[FS] = 0;
    newSegments[GS] = 0;
    newLdt = cpu.readSystem16((newBase + TSS16.ldt) | 0);
  }

  // Save the current task in its TSS.
  const oldSelector = cpu.segSelector[TR]!;
  const oldBase = cpu.segBase[TR]!;
  const old32 = (cpu.segAttributes[TR]! & 8) !== 0;
  let oldFlags = cpu.getFlags();
  if (reason === TaskSwitchReason.Iret) oldFlags &= ~FLAG_NT;
  if (old32) {
    cpu.writeSystem32((oldBase + TSS32.eip) | 0, returnEip);
    cpu.writeSystem32((oldBase + TSS32.eflags) | 0, oldFlags);
    for (let r = 0; r < 8; r++) cpu.writeSystem32((oldBase + TSS32.regs + r * 4) | 0, cpu.regs[r]!);
    for (let s = 0; s < 6; s++) cpu.writeSystem16((oldBase + TSS32.segments + s * 4) | 0, cpu.segSelector[s]!);
  } else {
    cpu.writeSystem16((oldBase + TSS16.eip) | 0, returnEip & 0xffff);
    cpu.writeSystem16((oldBase + TSS16.eflags) | 0, oldFlags & 0xffff);
    for (let r = 0; r < 8; r++) cpu.writeSystem16((oldBase + TSS16.regs + r * 2) | 0, cpu.regs16[r * 2]!);
    for (let s = 0; s < 4; s++) cpu.writeSystem16((oldBase + TSS16.segments + s * 2) | 0, cpu.segSelector[s]!);
  }

  // Busy bits (type bit 1 of the descriptors in the GDT), the back link and NT.
  if (reason === TaskSwitchReason.Jump || reason === TaskSwitchReason.Iret) setBusy(cpu, oldSelector, false);
  if (reason !== TaskSwitchReason.Iret) setBusy(cpu, selector, true);
  if (reason === TaskSwitchReason.Call || reason === TaskSwitchReason.Interrupt) {
    cpu.writeSystem16(newBase, oldSelector);
    newFlags |= FLAG_NT;
  }

  // Commit: from here on, the new task runs, and faults belong to it.
  cpu.setDescriptorCache(TR, selector, low, high | 0x200);
  cpu.segAttributes[TR] = attributes | 2;
  cpu.cr0 |= CR0_TS;
  if (new32 && cpu.cr0 & CR0_PG) cpu.writeCr3(newCr3);
  cpu.dr[7] = cpu.dr[7]! & ~0x155; // local breakpoint enables (L0-L3, LE) belong to the old task
  cpu.setFlags(newFlags);
  cpu.regs.set(newRegisters);
  cpu.eip = newEip;
  cpu.instructionStart = newEip;
  cpu.abandonStackRestore();
  for (let s = 0; s < 6; s++) cpu.segSelector[s] = newSegments[s]!;
  cpu.segSelector[LDTR] = newLdt;
  loadTaskLdt(cpu, newLdt);
  if (newFlags & FLAG_VM) {
    for (let s = 0; s < 6; s++) cpu.setRealModeSegment(s, newSegments[s]!);
    cpu.cpl = 3;
    cpu.updateModeCaches();
  } else {
    loadTaskCode(cpu, newSegments[CS]!);
    loadTaskStack(cpu, newSegments[SS]!);
    for (const segment of [ES, DS, FS, GS]) loadTaskData(cpu, segment, newSegments[segment]!);
  }
  cpu.noteFlagsChanged();
  if (errorCode >= 0) {
    if (new32) cpu.push32(errorCode);
    else cpu.push16(errorCode);
  }
  // The T bit of a 32-bit TSS asks for a debug trap when the task is entered.
  if (trap) cpu.taskSwitchTrap = true;
}

function setBusy(cpu: Cpu, selector: number, busy: boolean): void {
  if ((selector & 0xfffc) === 0) return; // TR never loaded (still the reset value): no descriptor
  const at = (cpu.gdtBase + (selector & 0xfff8) + 4) | 0;
  const high = cpu.readSystem32(at);
  cpu.writeSystem32(at, busy ? high | 0x200 : high & ~0x200);
}

function loadTaskLdt(cpu: Cpu, selector: number): void {
  if ((selector & 0xfffc) === 0) {
    cpu.setSegmentCache(LDTR, selector, 0, 0, 0);
    return;
  }
  if (selector & 4) cpu.raiseFault(VECTOR_TS, selector & 0xfffc);
  const { low, high } = cpu.readDescriptor(selector, VECTOR_TS);
  const attributes = descriptorAttributes(high);
  if ((attributes & (SEG_ATTR_S | 0xf)) !== 2) cpu.raiseFault(VECTOR_TS, selector & 0xfffc);
  if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_TS, selector & 0xfffc);
  cpu.setDescriptorCache(LDTR, selector, low, high);
  cpu.segAttributes[LDTR] = attributes;
}

function loadTaskCode(cpu: Cpu, selector: number): void {
  const error = selector & 0xfffc;
  if (error === 0) cpu.raiseFault(VECTOR_TS, 0);
  const { low, high } = cpu.readDescriptor(selector, VECTOR_TS);
  const attributes = descriptorAttributes(high);
  const dpl = (attributes & SEG_ATTR_DPL) >> 5;
  const rpl = selector & 3;
  if ((attributes & (SEG_ATTR_S | SEG_TYPE_CODE)) !== (SEG_ATTR_S | SEG_TYPE_CODE)) cpu.raiseFault(VECTOR_TS, error);
  if (attributes & SEG_TYPE_EXPAND_DOWN ? dpl > rpl : dpl !== rpl) cpu.raiseFault(VECTOR_TS, error);
  if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_NP, error);
  cpu.loadCodeSegmentCache(selector, low, high, rpl);
}

function loadTaskStack(cpu: Cpu, selector: number): void {
  const error = selector & 0xfffc;
  if (error === 0) cpu.raiseFault(VECTOR_TS, 0);
  const { low, high } = cpu.readDescriptor(selector, VECTOR_TS);
  const attributes = descriptorAttributes(high);
  const dpl = (attributes & SEG_ATTR_DPL) >> 5;
  if ((attributes & (SEG_ATTR_S | SEG_TYPE_CODE | SEG_TYPE_WRITABLE)) !== (SEG_ATTR_S | SEG_TYPE_WRITABLE)) cpu.raiseFault(VECTOR_TS, error);
  if (dpl !== cpu.cpl || (selector & 3) !== cpu.cpl) cpu.raiseFault(VECTOR_TS, error);
  if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_SS, error);
  cpu.markAccessed(selector, high);
  cpu.setDescriptorCache(SS, selector, low, high);
}

function loadTaskData(cpu: Cpu, segment: number, selector: number): void {
  const error = selector & 0xfffc;
  if (error === 0) {
    cpu.setSegmentCache(segment, selector, 0, 0, 0);
    return;
  }
  const { low, high } = cpu.readDescriptor(selector, VECTOR_TS);
  const attributes = descriptorAttributes(high);
  const dpl = (attributes & SEG_ATTR_DPL) >> 5;
  const code = (attributes & SEG_TYPE_CODE) !== 0;
  if (!(attributes & SEG_ATTR_S) || (code && !(attributes & SEG_TYPE_WRITABLE))) cpu.raiseFault(VECTOR_TS, error);
  const conformingCode = code && (attributes & SEG_TYPE_EXPAND_DOWN) !== 0;
  if (!conformingCode && (dpl < cpu.cpl || dpl < (selector & 3))) cpu.raiseFault(VECTOR_TS, error);
  if (!(attributes & SEG_ATTR_P)) cpu.raiseFault(VECTOR_NP, error);
  cpu.markAccessed(selector, high);
  cpu.setDescriptorCache(segment, selector, low, high);
}
