/**
 * Port I/O: IN, OUT (immediate port and DX), INS and OUTS with REP. Ports go through the
 * CPU's bus; protected mode checks IOPL and the TSS I/O permission bitmap.
 */
import type { Cpu } from "../cpu.js";
import type { AccessSize } from "../cpu-bus.js";
import { ES, FLAG_DF, FLAG_IOPL, TR, VECTOR_GP } from "../registers.js";
import {
  check286Destination,
  check286Source,
  wordAccessWraps286,
  advanceDestination,
  advanceSource,
  destinationIndex,
  iterationAllowance,
  operandSize,
  readSized,
  repeatCount,
  setRepeatCount,
  sourceIndex,
  writeSized,
} from "./strings.js";
import type { TableBuilder } from "./table.js";

/** #GP(0) unless CPL ≤ IOPL (outside V86) or the TSS bitmap allows every byte of the access. */
function checkPortPermission(cpu: Cpu, port: number, size: number): void {
  if (cpu.ioBreakpointsEnabled) cpu.checkIoBreakpoints(port, size);
  if (!cpu.protectedMode) return;
  if (!cpu.v86Mode && cpu.cpl <= (cpu.flags & FLAG_IOPL) >> 12) return;
  const type = cpu.segAttributes[TR]! & 0xf;
  const limit = cpu.segLimit[TR]! >>> 0;
  if ((type !== 0x9 && type !== 0xb) || limit < 103) cpu.raiseFault(VECTOR_GP, 0);
  const base = cpu.segBase[TR]!;
  const bitmapOffset = cpu.readSystem16((base + 102) | 0);
  const byteOffset = bitmapOffset + (port >> 3);
  if (byteOffset + 1 > limit) cpu.raiseFault(VECTOR_GP, 0);
  const bits = cpu.readSystem16((base + byteOffset) | 0);
  const mask = ((1 << size) - 1) << (port & 7);
  if (bits & mask) cpu.raiseFault(VECTOR_GP, 0);
}

function portSize(cpu: Cpu): AccessSize {
  return cpu.opcode & 1 ? (cpu.operandSize32 ? 4 : 2) : 1;
}

function inPort(cpu: Cpu, port: number): void {
  const size = portSize(cpu);
  checkPortPermission(cpu, port, size);
  const value = cpu.bus.readPort(port, size);
  cpu.codeEpoch++; // a device may have written guest RAM (DMA)
  if (size === 1) cpu.regs8[0] = value;
  else if (size === 2) cpu.regs16[0] = value;
  else cpu.regs[0] = value;
}

function outPort(cpu: Cpu, port: number): void {
  const size = portSize(cpu);
  checkPortPermission(cpu, port, size);
  const value = size === 1 ? cpu.regs8[0]! : size === 2 ? cpu.regs16[0]! : cpu.regs[0]! >>> 0;
  cpu.bus.writePort(port, value, size);
  cpu.codeEpoch++;
}

function inImmediate(cpu: Cpu): void {
  inPort(cpu, cpu.fetch8());
}

function outImmediate(cpu: Cpu): void {
  outPort(cpu, cpu.fetch8());
}

function inDx(cpu: Cpu): void {
  inPort(cpu, cpu.regs16[4]!);
}

function outDx(cpu: Cpu): void {
  outPort(cpu, cpu.regs16[4]!);
}

function ins(cpu: Cpu): void {
  const size = operandSize(cpu) as AccessSize;
  const port = cpu.regs16[4]!;
  checkPortPermission(cpu, port, size);
  const delta = cpu.flags & FLAG_DF ? -size : size;
  let count = cpu.prefixRepeat === 0 ? 1 : repeatCount(cpu);
  let allowance = iterationAllowance(cpu);
  while (count !== 0) {
    if (wordAccessWraps286(cpu, destinationIndex(cpu), size)) {
      // Recorded on silicon: a faulting REP INSW has already taken two off the count.
      if (cpu.prefixRepeat !== 0) setRepeatCount(cpu, count - 2);
      check286Destination(cpu, size, delta);
    }
    const offset = destinationIndex(cpu);
    // The destination is checked before the port is read, so a fault loses no input.
    cpu.probeMemWrite(ES, offset, size);
    writeSized(cpu, ES, offset, cpu.bus.readPort(port, size), size);
    cpu.codeEpoch++;
    advanceDestination(cpu, delta);
    count--;
    if (cpu.prefixRepeat === 0) return;
    setRepeatCount(cpu, count);
    if (--allowance === 0 && count !== 0) {
      cpu.eip = cpu.instructionStart;
      return;
    }
  }
}

function outs(cpu: Cpu): void {
  const size = operandSize(cpu) as AccessSize;
  const port = cpu.regs16[4]!;
  checkPortPermission(cpu, port, size);
  const delta = cpu.flags & FLAG_DF ? -size : size;
  const segment = cpu.dataSegment();
  let count = cpu.prefixRepeat === 0 ? 1 : repeatCount(cpu);
  let allowance = iterationAllowance(cpu);
  while (count !== 0) {
    if (wordAccessWraps286(cpu, sourceIndex(cpu), size)) {
      if (cpu.prefixRepeat !== 0) setRepeatCount(cpu, count - 1);
      check286Source(cpu, size, delta);
    }
    const value = readSized(cpu, segment, sourceIndex(cpu), size);
    cpu.bus.writePort(port, size === 4 ? value >>> 0 : value, size);
    cpu.codeEpoch++;
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

export function installInputOutput(table: TableBuilder): void {
  table.set(0xe4, inImmediate);
  table.set(0xe5, inImmediate);
  table.set(0xe6, outImmediate);
  table.set(0xe7, outImmediate);
  table.set(0xec, inDx);
  table.set(0xed, inDx);
  table.set(0xee, outDx);
  table.set(0xef, outDx);
  if (table.modelLevel >= 1) {
    table.set(0x6c, ins);
    table.set(0x6d, ins);
    table.set(0x6e, outs);
    table.set(0x6f, outs);
  }
}
