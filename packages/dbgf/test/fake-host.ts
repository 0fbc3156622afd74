/**
 * A DebuggerHost over a small guest: physical memory is a Uint8Array, paging is a map of
 * 4 KiB linear pages to physical pages (identity for the first `identityPages` pages), and
 * every hook call is recorded so tests can check what DBGF asked of the machine.
 */
import { expect } from "vitest";
import { Debugger, type CpuVendor, type DebuggerHost, type DebuggerOptions, isDbgfError } from "@vmmkit/dbgf";

export interface ExecutedInstruction {
  cpuId: number;
  linear: bigint;
  bytes: number[];
}

export class FakeHost implements DebuggerHost {
  readonly memory: Uint8Array;
  /** linear page number → physical page number. */
  readonly pages = new Map<bigint, number>();
  /** translate returns the page base (true) or the byte's address (false). */
  returnsPageBase = true;
  readonly failPhysicalRead = new Set<number>();
  readonly failPhysicalWrite = new Set<number>();
  failReload = false;
  failPortNotify = false;
  failMmioArm = false;
  failMmioDisarm = false;
  readonly executed: ExecutedInstruction[] = [];
  readonly reloads: number[] = [];
  readonly portNotifications: boolean[] = [];
  readonly mmioCalls: string[] = [];
  readonly breakpointEvents: [number, number][] = [];
  readonly warnings: string[] = [];
  eventChanges = 0;
  /** Called by executeOne, e.g. to model what the instruction does. */
  onExecute: ((cpuId: number, linear: bigint, bytes: Uint8Array) => void) | undefined;

  constructor(
    readonly cpuCount = 2,
    readonly cpuVendor: CpuVendor = "intel",
    memorySize = 0x10_0000,
    identityPages = 0x100,
  ) {
    this.memory = new Uint8Array(memorySize);
    for (let page = 0n; page < BigInt(identityPages); page++) this.pages.set(page, Number(page));
  }

  map(linear: bigint, physical: number): void {
    this.pages.set(linear >> 12n, Math.floor(physical / 0x1000));
  }

  unmap(linear: bigint): void {
    this.pages.delete(linear >> 12n);
  }

  translate(_cpuId: number, linear: bigint): number {
    const page = this.pages.get(linear >> 12n);
    if (page === undefined) throw new Error(`page fault at ${linear.toString(16)}`);
    return page * 0x1000 + (this.returnsPageBase ? 0 : Number(linear & 0xfffn));
  }

  readPhysical(physicalAddress: number, length: number): Uint8Array {
    for (let i = 0; i < length; i++) {
      if (this.failPhysicalRead.has(physicalAddress + i)) throw new Error(`read error at ${physicalAddress.toString(16)}`);
    }
    if (physicalAddress + length > this.memory.length) throw new Error(`physical ${physicalAddress.toString(16)} is outside RAM`);
    return this.memory.subarray(physicalAddress, physicalAddress + length);
  }

  writePhysical(physicalAddress: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      if (this.failPhysicalWrite.has(physicalAddress + i)) throw new Error(`write error at ${physicalAddress.toString(16)}`);
    }
    this.memory.set(bytes, physicalAddress);
  }

  readLinear(cpuId: number, linear: bigint, length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      const address = linear + BigInt(i);
      const page = this.pages.get(address >> 12n);
      if (page === undefined) throw new Error(`vCPU ${cpuId}: page fault reading ${address.toString(16)}`);
      bytes[i] = this.memory[page * 0x1000 + Number(address & 0xfffn)]!;
    }
    return bytes;
  }

  executeOne(cpuId: number, linear: bigint, bytes: Uint8Array): void {
    this.executed.push({ cpuId, linear, bytes: [...bytes] });
    this.onExecute?.(cpuId, linear, bytes);
  }

  reloadDebugRegisters(cpuId: number): void {
    if (this.failReload && cpuId === this.cpuCount - 1) throw new Error("cannot load debug registers");
    this.reloads.push(cpuId);
  }

  portBreakpointsArmed(armed: boolean): void {
    if (this.failPortNotify) throw new Error("port dispatcher refused");
    this.portNotifications.push(armed);
  }

  armMmioRange(physicalAddress: number, size: number): void {
    if (this.failMmioArm) throw new Error("pgm refused the handler");
    this.mmioCalls.push(`arm ${physicalAddress.toString(16)}+${size.toString(16)}`);
  }

  disarmMmioRange(physicalAddress: number, size: number): void {
    if (this.failMmioDisarm) throw new Error("pgm refused to remove the handler");
    this.mmioCalls.push(`disarm ${physicalAddress.toString(16)}+${size.toString(16)}`);
  }

  raiseBreakpointEvent(cpuId: number, handle: number): void {
    this.breakpointEvents.push([cpuId, handle]);
  }

  debugEventsChanged(): void {
    this.eventChanges++;
  }

  warn(message: string): void {
    this.warnings.push(message);
  }
}

export function setup(options: DebuggerOptions = {}, host = new FakeHost()): { host: FakeHost; dbg: Debugger } {
  return { host, dbg: new Debugger(host, options) };
}

export function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

export function expectDbgfError(action: () => unknown, code: string): void {
  const error = thrown(action);
  expect(isDbgfError(error), `not a DbgfError: ${String(error)}`).toBe(true);
  expect(error).toMatchObject({ name: "DbgfError", code });
}

/** Everything about the breakpoints a caller can see, to check that a refused call changed nothing. */
export function observe(dbg: Debugger, host?: FakeHost): unknown {
  const breakpoints: unknown[] = [];
  dbg.enumerate((handle, info) => void breakpoints.push([handle, info]));
  return {
    breakpoints,
    dr7: dbg.getDr7(),
    int3Armed: dbg.isInt3Armed(),
    portArmed: dbg.isPortIoArmed(),
    nodes: dbg.debug.l2NodesInUse(),
    memory: host ? Buffer.from(host.memory).toString("base64") : undefined,
  };
}
