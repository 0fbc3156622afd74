/**
 * What the interpreter calls when an access leaves its own fast paths. The CPU owns this
 * interface; memory maps and port dispatchers (pgm, iom, whpx-sim, your own code) satisfy
 * it structurally without importing the CPU.
 *
 * Sizes are in bytes. Values are unsigned (`0 … 2^(8·size) − 1`). Physical addresses are
 * plain numbers below 2^36.
 *
 * A callback may stop the current instruction before it completes by calling
 * {@link Cpu.interceptInstruction}: the instruction is then undone (EIP back at its first
 * byte, nothing committed) and `run()` returns {@link RunExit.Intercept}. This is how an
 * accelerator turns an access into a VM exit.
 */
export interface CpuBus {
  /** A read of guest-physical memory that no mapped range serves (MMIO, unassigned). */
  readPhysical(address: number, size: AccessSize): number;
  /** A write of guest-physical memory that no writable mapped range serves. */
  writePhysical(address: number, value: number, size: AccessSize): void;
  /** IN, INS. */
  readPort(port: number, size: AccessSize): number;
  /** OUT, OUTS. */
  writePort(port: number, value: number, size: AccessSize): void;
}

export type AccessSize = 1 | 2 | 4;

/** Access rights of a mapped physical range; combine with `|`. */
export const MemoryAccess = {
  None: 0,
  Read: 1,
  Write: 2,
  Execute: 4,
  All: 7,
} as const;
