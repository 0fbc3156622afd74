/**
 * Test fixtures: a set-up partition with one processor and 64 KiB of RAM at GPA 0, real-mode
 * segment values, and an instruction emulator whose callbacks log what they are asked to do.
 * Everything goes through the package's public entry point.
 */
import { expect } from "vitest";
import {
  WhvEmulatorApi,
  WhvMapGpaRangeFlags,
  WhvPlatform,
  isWhvError,
  type WhvEmulatorIoAccessInfo,
  type WhvEmulatorMemoryAccessInfo,
  type WhvErrorCode,
  type WhvPartitionHandle,
  type WhvPartitionPropertyMap,
  type WhvRegisterName,
  type WhvRegisterValues,
  type WhvRunVpExitContext,
  type WhvSimRunOptions,
  type WhvX64SegmentRegister,
} from "@vmmkit/whpx-sim";

export const RAM_SIZE = 0x10000;
/** Where test code is loaded (CS = 0, so linear = physical = offset). */
export const CODE = 0x1000;
export const RWX = WhvMapGpaRangeFlags.read | WhvMapGpaRangeFlags.write | WhvMapGpaRangeFlags.execute;

/** A real-mode segment register value for `selector`. */
export function realSegment(selector: number, code = false): WhvX64SegmentRegister {
  return { base: BigInt(selector * 16), limit: 0xffff, selector, attributes: code ? 0x9b : 0x93 };
}

/** Flat 4 GiB 32-bit segments, as a loader leaves protected mode (no GDT needed to run). */
export const FLAT_CODE: WhvX64SegmentRegister = { base: 0n, limit: 0xffffffff, selector: 0x08, attributes: 0xc09b };
export const FLAT_DATA: WhvX64SegmentRegister = { base: 0n, limit: 0xffffffff, selector: 0x10, attributes: 0xc093 };

export interface Guest {
  readonly platform: WhvPlatform;
  readonly partition: WhvPartitionHandle;
  readonly ram: Uint8Array;
  /** Copies `code` to CODE and points CS:IP (real mode, CS = 0) at it. */
  load(code: readonly number[]): void;
  run(options?: WhvSimRunOptions): Promise<WhvRunVpExitContext>;
  get<const N extends readonly WhvRegisterName[]>(names: N): WhvRegisterValues<N>;
  set<const N extends readonly WhvRegisterName[]>(names: N, values: WhvRegisterValues<N>): void;
  retired(): number;
}

export function createGuest(properties: Partial<WhvPartitionPropertyMap> = {}): Guest {
  const platform = new WhvPlatform();
  const partition = platform.createPartition();
  for (const [code, value] of Object.entries(properties)) {
    platform.setPartitionProperty(partition, code as keyof WhvPartitionPropertyMap, value as never);
  }
  platform.setupPartition(partition);
  const ram = new Uint8Array(RAM_SIZE);
  platform.mapGpaRange(partition, ram, 0n, BigInt(RAM_SIZE), RWX);
  platform.createVirtualProcessor(partition, 0);
  const guest: Guest = {
    platform,
    partition,
    ram,
    load(code) {
      ram.set(code, CODE);
      guest.set(["x64Cs", "x64Rip"], [realSegment(0, true), BigInt(CODE)]);
    },
    run: (options = {}) => platform.runVirtualProcessor(partition, 0, options),
    get: (names) => platform.getVirtualProcessorRegisters(partition, 0, names),
    set: (names, values) => platform.setVirtualProcessorRegisters(partition, 0, names, values),
    retired: () => platform.getVirtualProcessorCounters(partition, 0).instructionsRetired,
  };
  return guest;
}

/** Narrows an exit to one reason, failing the test otherwise. */
export function expectExit<R extends WhvRunVpExitContext["exitReason"]>(
  exit: WhvRunVpExitContext,
  reason: R,
): Extract<WhvRunVpExitContext, { exitReason: R }> {
  expect(exit.exitReason).toBe(reason);
  return exit as Extract<WhvRunVpExitContext, { exitReason: R }>;
}

/** Runs `action` and checks it throws a WhvError with this code and HRESULT. */
export function expectWhvError(action: () => unknown, code: WhvErrorCode, hresult: number): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expectIsWhvError(thrown, code, hresult);
}

/** Awaits `promise` and checks it rejects with a WhvError with this code and HRESULT. */
export async function expectWhvRejection(promise: Promise<unknown>, code: WhvErrorCode, hresult: number): Promise<void> {
  let thrown: unknown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  expectIsWhvError(thrown, code, hresult);
}

function expectIsWhvError(thrown: unknown, code: WhvErrorCode, hresult: number): void {
  expect(isWhvError(thrown), `expected a WhvError, got ${String(thrown)}`).toBe(true);
  expect(thrown).toMatchObject({ name: "WhvError", code, hresult });
}

export interface LoggingEmulator {
  readonly api: WhvEmulatorApi;
  readonly handle: ReturnType<WhvEmulatorApi["createEmulator"]>;
  /** Copies of the I/O accesses, in order. */
  readonly io: WhvEmulatorIoAccessInfo[];
  /** Copies of the memory accesses at or above MMIO_BASE, in order (RAM reads are not logged). */
  readonly mmio: WhvEmulatorMemoryAccessInfo[];
}

/** GPAs from here on are not RAM: the emulator's memory callback serves them. */
export const MMIO_BASE = 0x20000;

export interface EmulatorBehaviour {
  /** Value an IN returns (default 0xff…). */
  readonly portIn?: (port: number, size: number) => number;
  /** Bytes an MMIO read returns (default 0xff…). */
  readonly mmioRead?: (gpa: number, size: number) => number[];
  readonly failPort?: boolean;
  readonly failMemory?: boolean;
}

/** An emulator whose memory callback serves the guest's RAM below MMIO_BASE and logs the rest. */
export function createLoggingEmulator(guest: Guest, behaviour: EmulatorBehaviour = {}): LoggingEmulator {
  const { platform, partition, ram } = guest;
  const io: WhvEmulatorIoAccessInfo[] = [];
  const mmio: WhvEmulatorMemoryAccessInfo[] = [];
  const api = new WhvEmulatorApi();
  const handle = api.createEmulator<number>({
    ioPort(_vp, access) {
      if (behaviour.failPort) throw new Error("port callback fails");
      if (access.direction === "in") access.data = behaviour.portIn?.(access.port, access.accessSize) ?? 2 ** (8 * access.accessSize) - 1;
      io.push({ ...access });
    },
    memory(_vp, access) {
      const gpa = Number(access.gpaAddress);
      if (gpa < MMIO_BASE) {
        if (access.direction === "read") access.data.set(ram.subarray(gpa, gpa + access.accessSize));
        else ram.set(access.data, gpa);
        return;
      }
      if (behaviour.failMemory) throw new Error("memory callback fails");
      if (access.direction === "read") access.data.set(behaviour.mmioRead?.(gpa, access.accessSize) ?? new Array<number>(access.accessSize).fill(0xff));
      mmio.push({ ...access, data: access.data.slice() });
    },
    getVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(vp: number, names: N) {
      return platform.getVirtualProcessorRegisters(partition, vp, names);
    },
    setVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(vp: number, names: N, values: WhvRegisterValues<N>) {
      platform.setVirtualProcessorRegisters(partition, vp, names, values);
    },
  });
  return { api, handle, io, mmio };
}
