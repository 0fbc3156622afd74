/**
 * String instructions MOVS, CMPS, STOS, LODS, SCAS with REP/REPE/REPNE.
 *
 * Every iteration commits its register updates, so a fault, an intercepted access or a
 * slice boundary between iterations leaves EIP on the instruction with a consistent
 * count: it simply continues when executed again. Long repeats give way after
 * {@link MAX_ITERATIONS_PER_STEP} iterations so interrupts and time slices are not held off.
 */
import type { Cpu } from "../cpu.js";
import { ES, FLAG_DF, FLAG_TF, VECTOR_GP } from "../registers.js";
import type { TableBuilder } from "./table.js";

export const MAX_ITERATIONS_PER_STEP = 4096;

const ESI_16 = 12;
const EDI_16 = 14;

/** Count register value (CX or ECX by address size), as an unsigned number. */
export function repeatCount(cpu: Cpu): number {
  return cpu.addressSize32 ? cpu.regs[1]! >>> 0 : cpu.regs16[2]!;
}

export function setRepeatCount(cpu: Cpu, count: number): void {
  if (cpu.addressSize32) cpu.regs[1] = count;
  else cpu.regs16[2] = count;
}

export function sourceIndex(cpu: Cpu): number {
  return cpu.addressSize32 ? cpu.regs[6]! : cpu.regs16[ESI_16]!;
}

export function destinationIndex(cpu: Cpu): number {
  return cpu.addressSize32 ? cpu.regs[7]! : cpu.regs16[EDI_16]!;
}

export function advanceSource(cpu: Cpu, delta: number): void {
  if (cpu.addressSize32) cpu.regs[6] = cpu.regs[6]! + delta;
  else cpu.regs16[ESI_16] = cpu.regs16[ESI_16]! + delta;
}

export function advanceDestination(cpu: Cpu, delta: number): void {
  if (cpu.addressSize32) cpu.regs[7] = cpu.regs[7]! + delta;
  else cpu.regs16[EDI_16] = cpu.regs16[EDI_16]! + delta;
}

/**
 * How many iterations this execution may run before giving way: 1 under the trap flag and
 * while data or I/O breakpoints are enabled, whose traps come after the iteration that hit.
 */
export function iterationAllowance(cpu: Cpu): number {
  return cpu.flags & FLAG_TF || cpu.watchingData ? 1 : MAX_ITERATIONS_PER_STEP;
}

/**
 * The 286 in real mode faults on a word string access at offset 0xFFFF only after moving
 * the index register of that access (recorded on silicon). Returns true when that applies.
 */
export function wordAccessWraps286(cpu: Cpu, offset: number, size: number): boolean {
  return cpu.modelLevel === 2 && size === 2 && offset === 0xffff && !cpu.addressSize32 && !cpu.protectedMode;
}

function faultAfterSourceAdvance(cpu: Cpu, delta: number): never {
  advanceSource(cpu, delta);
  return cpu.raiseFault(VECTOR_GP, 0);
}

function faultAfterDestinationAdvance(cpu: Cpu, delta: number): never {
  advanceDestination(cpu, delta);
  return cpu.raiseFault(VECTOR_GP, 0);
}

/** Checks the 286 wrap quirk for a source (SI) and destination (DI) access of one iteration. */
function check286Source(cpu: Cpu, size: number, delta: number): void {
  if (wordAccessWraps286(cpu, sourceIndex(cpu), size)) faultAfterSourceAdvance(cpu, delta);
}

function check286Destination(cpu: Cpu, size: number, delta: number): void {
  if (wordAccessWraps286(cpu, destinationIndex(cpu), size)) faultAfterDestinationAdvance(cpu, delta);
}

export { check286Destination, check286Source };

function operandSize(cpu: Cpu): number {
  const opcode = cpu.opcode;
  return opcode & 1 ? (cpu.operandSize32 ? 4 : 2) : 1;
}

function readSized(cpu: Cpu, segment: number, offset: number, size: number): number {
  return size === 1 ? cpu.readMem8(segment, offset) : size === 2 ? cpu.readMem16(segment, offset) : cpu.readMem32(segment, offset);
}

function writeSized(cpu: Cpu, segment: number, offset: number, value: number, size: number): void {
  if (size === 1) cpu.writeMem8(segment, offset, value);
  else if (size === 2) cpu.writeMem16(segment, offset, value);
  else cpu.writeMem32(segment, offset, value);
}

function movs(cpu: Cpu): void {
  const size = operandSize(cpu);
  const delta = cpu.flags & FLAG_DF ? -size : size;
  const sourceSegment = cpu.dataSegment();
  if (cpu.prefixRepeat === 0) {
    check286Source(cpu, size, delta);
    const value = readSized(cpu, sourceSegment, sourceIndex(cpu), size);
    if (wordAccessWraps286(cpu, destinationIndex(cpu), size)) {
      advanceSource(cpu, delta); // the read completed
      faultAfterDestinationAdvance(cpu, delta);
    }
    writeSized(cpu, ES, destinationIndex(cpu), value, size);
    advanceSource(cpu, delta);
    advanceDestination(cpu, delta);
    return;
  }
  let count = repeatCount(cpu);
  let allowance = iterationAllowance(cpu);
  while (count !== 0) {
    if (wordAccessWraps286(cpu, sourceIndex(cpu), size)) {
      setRepeatCount(cpu, count - 1); // recorded on silicon: the faulting iteration is counted
      faultAfterSourceAdvance(cpu, delta);
    }
    const value = readSized(cpu, sourceSegment, sourceIndex(cpu), size);
    if (wordAccessWraps286(cpu, destinationIndex(cpu), size)) {
      setRepeatCount(cpu, count - 1);
      advanceSource(cpu, delta);
      faultAfterDestinationAdvance(cpu, delta);
    }
    writeSized(cpu, ES, destinationIndex(cpu), value, size);
    advanceSource(cpu, delta);
    advanceDestination(cpu, delta);
    setRepeatCount(cpu, --count);
    if (--allowance === 0 && count !== 0) {
      cpu.eip = cpu.instructionStart;
      return;
    }
  }
}

function stos(cpu: Cpu): void {
  const size = operandSize(cpu);
  const delta = cpu.flags & FLAG_DF ? -size : size;
  const value = size === 1 ? cpu.regs8[0]! : size === 2 ? cpu.regs16[0]! : cpu.regs[0]!;
  if (cpu.prefixRepeat === 0) {
    check286Destination(cpu, size, delta);
    writeSized(cpu, ES, destinationIndex(cpu), value, size);
    advanceDestination(cpu, delta);
    return;
  }
  let count = repeatCount(cpu);
  let allowance = iterationAllowance(cpu);
  while (count !== 0) {
    check286Destination(cpu, size, delta);
    writeSized(cpu, ES, destinationIndex(cpu), value, size);
    advanceDestination(cpu, delta);
    setRepeatCount(cpu, --count);
    if (--allowance === 0 && count !== 0) {
      cpu.eip = cpu.instructionStart;
      return;
    }
  }
}

function lods(cpu: Cpu): void {
  const size = operandSize(cpu);
  const delta = cpu.flags & FLAG_DF ? -size : size;
  const segment = cpu.dataSegment();
  let count = cpu.prefixRepeat === 0 ? 1 : repeatCount(cpu);
  let allowance = iterationAllowance(cpu);
  while (count !== 0) {
    check286Source(cpu, size, delta);
    const value = readSized(cpu, segment, sourceIndex(cpu), size);
    if (size === 1) cpu.regs8[0] = value;
    else if (size === 2) cpu.regs16[0] = value;
    else cpu.regs[0] = value;
    advanceSource(cpu, delta);
    count--;
    if (cpu.prefixRepeat === 0) return;
    setRepeatCount(cpu, count);
    if (--allowance === 0 && count !== 0) {
      cpu.eip = cpu.instructionStart;
      return;
    }
  }
}

function compareFlags(cpu: Cpu, a: number, b: number, size: number): void {
  const result = size === 4 ? (a - b) | 0 : a - b;
  cpu.setSubFlags(a, b, result, size * 8 - 1);
}

/** REPE stops when ZF = 0, REPNE when ZF = 1. */
function repeatEnds(cpu: Cpu): boolean {
  return cpu.prefixRepeat === 2 ? !cpu.getZF() : cpu.getZF();
}

function cmps(cpu: Cpu): void {
  const size = operandSize(cpu);
  const delta = cpu.flags & FLAG_DF ? -size : size;
  const sourceSegment = cpu.dataSegment();
  let count = cpu.prefixRepeat === 0 ? 1 : repeatCount(cpu);
  let allowance = iterationAllowance(cpu);
  while (count !== 0) {
    // The 286 reads ES:DI before DS:SI; its wrap fault shows which index already moved.
    check286Destination(cpu, size, delta);
    if (wordAccessWraps286(cpu, sourceIndex(cpu), size)) {
      advanceDestination(cpu, delta);
      faultAfterSourceAdvance(cpu, delta);
    }
    const a = readSized(cpu, sourceSegment, sourceIndex(cpu), size);
    const b = readSized(cpu, ES, destinationIndex(cpu), size);
    advanceSource(cpu, delta);
    advanceDestination(cpu, delta);
    compareFlags(cpu, a, b, size);
    count--;
    if (cpu.prefixRepeat === 0) return;
    setRepeatCount(cpu, count);
    if (repeatEnds(cpu)) return;
    if (--allowance === 0 && count !== 0) {
      cpu.eip = cpu.instructionStart;
      return;
    }
  }
}

function scas(cpu: Cpu): void {
  const size = operandSize(cpu);
  const delta = cpu.flags & FLAG_DF ? -size : size;
  const accumulator = size === 1 ? cpu.regs8[0]! : size === 2 ? cpu.regs16[0]! : cpu.regs[0]!;
  let count = cpu.prefixRepeat === 0 ? 1 : repeatCount(cpu);
  let allowance = iterationAllowance(cpu);
  while (count !== 0) {
    check286Destination(cpu, size, delta);
    const b = readSized(cpu, ES, destinationIndex(cpu), size);
    advanceDestination(cpu, delta);
    compareFlags(cpu, accumulator, b, size);
    count--;
    if (cpu.prefixRepeat === 0) return;
    setRepeatCount(cpu, count);
    if (repeatEnds(cpu)) return;
    if (--allowance === 0 && count !== 0) {
      cpu.eip = cpu.instructionStart;
      return;
    }
  }
}

export function installStrings(table: TableBuilder): void {
  table.set(0xa4, movs);
  table.set(0xa5, movs);
  table.set(0xa6, cmps);
  table.set(0xa7, cmps);
  table.set(0xaa, stos);
  table.set(0xab, stos);
  table.set(0xac, lods);
  table.set(0xad, lods);
  table.set(0xae, scas);
  table.set(0xaf, scas);
}

export { readSized, writeSized, operandSize };
