/**
 * Public vocabulary of the debugger facility: constants, breakpoint descriptions, owner
 * callbacks and the host interface DBGF calls (spec/dbgf.md §0-§4).
 */

/** "No handle", for breakpoint and owner handles alike. */
export const NIL = 0xffff_ffff;

/** 2^64 − 1: the largest hit counter and threshold, and the "never" hit-disable value. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** A breakpoint handle: `(chunk << 16) | index` with the default chunk size (spec §1). */
export type BreakpointHandle = number;
/** An owner handle: the owner's index in the owner table. */
export type OwnerHandle = number;

/** Breakpoint flags (spec §3.2). */
export const BreakpointFlags = {
  /** Armed. Requested at creation; the stored flags get it only once arming succeeded. */
  Enabled: 0x1,
  /** Call the owner before the instruction or access executes. */
  HitBefore: 0x2,
  /** Call the owner after the instruction or access executed. */
  HitAfter: 0x4,
  /** Enabled | HitBefore: what `set*` uses when no flags are given. */
  Default: 0x3,
} as const;

/** I/O access bits (spec §3.3); a check reports exactly one of them. */
export const IoAccess = {
  ReadByte: 0x0001,
  ReadWord: 0x0002,
  ReadDword: 0x0004,
  /** MMIO only. */
  ReadQword: 0x0008,
  /** MMIO only: a read of another size. */
  ReadOther: 0x0010,
  WriteByte: 0x0100,
  WriteWord: 0x0200,
  WriteDword: 0x0400,
  /** MMIO only. */
  WriteQword: 0x0800,
  /** MMIO only: a write of another size. */
  WriteOther: 0x1000,
  AnyRead: 0x001f,
  AnyWrite: 0x1f00,
  /** Every bit valid for port I/O (byte, word and dword; spec §12 Q7). */
  PortIoMask: 0x0707,
  /** Every bit valid for MMIO. */
  MmioMask: 0x1f1f,
} as const;

/** DR7 R/W encodings of a hardware breakpoint: 0 execute, 1 write, 2 I/O (needs CR4.DE), 3 read or write. */
export const HardwareAccess = { Execute: 0, Write: 1, Io: 2, ReadWrite: 3 } as const;
export type HardwareAccess = (typeof HardwareAccess)[keyof typeof HardwareAccess];

export type HardwareBreakpointSize = 1 | 2 | 4 | 8;

/** Number of hardware breakpoint slots (DR0-DR3), shared by every vCPU. */
export const HARDWARE_SLOT_COUNT = 4;

export type BreakpointType = "hardware" | "int3" | "port-io" | "mmio";

interface BreakpointInfoCommon {
  readonly handle: BreakpointHandle;
  /** The owner, or NIL. */
  readonly owner: OwnerHandle;
  /** BreakpointFlags bits; Enabled reflects whether it is armed now. */
  readonly flags: number;
  readonly enabled: boolean;
  /** Qualifying hits so far, saturating at U64_MAX. */
  readonly hits: bigint;
  readonly hitTrigger: bigint;
  readonly hitDisable: bigint;
}

/** A DR0-DR3 breakpoint. */
export interface HardwareBreakpointInfo extends BreakpointInfoCommon {
  readonly type: "hardware";
  /** Linear address (a port number for the I/O type). */
  readonly address: bigint;
  /** 0-3. */
  readonly slot: number;
  readonly accessType: HardwareAccess;
  readonly size: HardwareBreakpointSize;
}

/** A software breakpoint: 0xCC patched into guest memory while enabled. */
export interface Int3BreakpointInfo extends BreakpointInfoCommon {
  readonly type: "int3";
  readonly address: bigint;
  readonly physicalAddress: bigint;
  /** The byte saved when it was last armed (0 before the first arming). */
  readonly originalByte: number;
}

/** A port-I/O breakpoint on ports `port … port + count − 1`. */
export interface PortIoBreakpointInfo extends BreakpointInfoCommon {
  readonly type: "port-io";
  readonly port: number;
  readonly count: number;
  /** IoAccess bits. */
  readonly access: number;
}

/** An MMIO breakpoint on guest-physical bytes `physicalAddress … physicalAddress + size − 1`. */
export interface MmioBreakpointInfo extends BreakpointInfoCommon {
  readonly type: "mmio";
  readonly physicalAddress: bigint;
  readonly size: number;
  /** IoAccess bits. */
  readonly access: number;
}

/** A snapshot of a breakpoint's public state (spec §3.4). */
export type BreakpointInfo = HardwareBreakpointInfo | Int3BreakpointInfo | PortIoBreakpointInfo | MmioBreakpointInfo;

export type HitWhen = "before" | "after";
/** `resume`: the owner handled the hit, the guest continues. `halt`: stop and report to the debugger. */
export type HitResult = "resume" | "halt";

/** Called when an execution breakpoint (int3, hardware) of the owner triggers. */
export type BreakpointHitCallback = (
  cpuId: number,
  user: unknown,
  handle: BreakpointHandle,
  info: Readonly<BreakpointInfo>,
  when: HitWhen,
) => HitResult;

/**
 * Called when an I/O breakpoint (port I/O, MMIO) of the owner triggers. `access` is the one
 * IoAccess bit of the access, `address` the port or physical address, `value` the written
 * value (for reads: the value read, in the "after" call only; otherwise 0n).
 */
export type IoBreakpointHitCallback = (
  cpuId: number,
  user: unknown,
  handle: BreakpointHandle,
  info: Readonly<BreakpointInfo>,
  when: HitWhen,
  access: number,
  address: bigint,
  value: bigint,
) => HitResult;

export interface OwnerCallbacks {
  readonly hit?: BreakpointHitCallback;
  readonly ioHit?: IoBreakpointHitCallback;
}

/** Options common to every `set*` call (spec §4). */
export interface BreakpointOptions {
  /** Who handles hits; without one every triggering hit stops the VM. */
  readonly owner?: OwnerHandle;
  /** Passed to the owner's callbacks; only allowed together with an owner. */
  readonly user?: unknown;
  /** BreakpointFlags; default Enabled | HitBefore. */
  readonly flags?: number;
  /** First hit number that triggers (0 and 1 both mean the first); default 0n. */
  readonly hitTrigger?: bigint;
  /** Hit number after which the breakpoint disables itself; default U64_MAX (never). */
  readonly hitDisable?: bigint;
}

export interface SetResult {
  readonly handle: BreakpointHandle;
  readonly status: "created" | "already-exists";
}

export type CpuVendor = "intel" | "amd" | "other";

/**
 * What DBGF needs from the machine around it (spec §0). The package that wires the machine
 * implements it; DBGF imports none of those packages. Every call is synchronous; a hook
 * that fails throws, and DBGF either propagates the error unchanged or, where the spec
 * says so (clear), reports it through {@link warn} and carries on.
 */
export interface DebuggerHost {
  /** Number of vCPUs; cpu ids are 0 … cpuCount − 1. */
  readonly cpuCount: number;
  /** Decides how guest DR6 is filled for matching execute breakpoints (spec §8.4). */
  readonly cpuVendor: CpuVendor;
  /**
   * Guest-physical address of a linear address under `cpuId`'s paging; throws when it is
   * not mapped. Returning the page base is fine: DBGF keeps the page offset itself.
   */
  translate(cpuId: number, linear: bigint): number;
  /** Reads guest-physical bytes (the int3 original byte, debugger reads). */
  readPhysical(physicalAddress: number, length: number): Uint8Array;
  /** Writes guest-physical bytes (0xCC and its restore). DBGF may reuse `bytes` afterwards. */
  writePhysical(physicalAddress: number, bytes: Uint8Array): void;
  /** Reads guest memory by linear address; throws if any byte is unreadable. */
  readLinear(cpuId: number, linear: bigint, length: number): Uint8Array;
  /**
   * Executes one instruction at `linear` on `cpuId` whose first bytes are `bytes` (the
   * original instruction under an int3); any further byte comes from guest memory.
   */
  executeOne(cpuId: number, linear: bigint, bytes: Uint8Array): void;
  /** DBGF's DR0-DR3/DR7 changed (see getDr/getDr7): load them into this vCPU. Called for every vCPU. */
  reloadDebugRegisters(cpuId: number): void;
  /**
   * Port-I/O breakpoints armed (true: on every arming) or none left (false). While armed,
   * the port dispatcher calls {@link Debugger.checkPortIo} before and after each access.
   */
  portBreakpointsArmed(armed: boolean): void;
  /**
   * Put an all-access physical handler over the range that calls
   * {@link Debugger.checkMmio} around every access, before any device handler there.
   */
  armMmioRange(physicalAddress: number, size: number): void;
  /** Remove what {@link armMmioRange} put over this range. */
  disarmMmioRange(physicalAddress: number, size: number): void;
  /** A breakpoint stopped `cpuId`: stop the VM and tell the debugger. */
  raiseBreakpointEvent(cpuId: number, handle: BreakpointHandle): void;
  /** The interrupt breakpoints or selected events changed: re-read them (spec §9.1). */
  debugEventsChanged(): void;
  /** Optional: errors DBGF ignores on purpose (a failed restore while clearing). */
  warn?(message: string, error: unknown): void;
}
