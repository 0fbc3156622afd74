/**
 * The vocabulary of the physical access handler model (spec/pgm.md §0–§1, §6): page and
 * handler states, kinds, origins and results. Numeric `as const` objects so hot paths
 * compare small integers, and the numbers follow VirtualBox's where it has some.
 */

export const PAGE_SIZE = 4096;
/** Guest-physical addresses are below 2^52 (x86 MAXPHYADDR). */
export const MAX_PHYSICAL_ADDRESS = 2 ** 52 - 1;
/** "No address": the start and last address of an unregistered handler. */
export const NIL_ADDRESS = -1;
/** A handler type handle that never resolves (zero-initialised handles are this). */
export const NIL_HANDLER_TYPE = 0 as HandlerTypeHandle;

declare const handlerTypeBrand: unique symbol;
/** Opaque handle of a registered handler type; forged or foreign values are rejected. */
export type HandlerTypeHandle = number & { readonly [handlerTypeBrand]: true };

declare const handlerIdBrand: unique symbol;
/** Opaque id of a handler record; a destroyed handler's id never resolves again. */
export type HandlerId = number & { readonly [handlerIdBrand]: true };

/** What a handler intercepts (spec §1.4). */
export const HandlerKind = {
  /** Writes only; any range of 2 bytes or more (full pages with {@link HandlerTypeFlags.NotInEngine}). */
  Write: 1,
  /** Reads and writes; full pages only. */
  All: 2,
  /** Device MMIO: reads and writes of full pages of an MMIO range. */
  Mmio: 3,
} as const;
export type HandlerKind = (typeof HandlerKind)[keyof typeof HandlerKind];

/** Bits of a handler type's `flags` (spec §1.5); other bits are refused. */
export const HandlerTypeFlags = {
  /** Write callbacks run with the memory lock held (VirtualBox KEEP_LOCK); one thread here, so only recorded. */
  KeepLock: 1,
  /** The user argument is a device index (VirtualBox DEVICE_INDEX); accepted and ignored. */
  DeviceIndex: 2,
  /** The hardware-assisted engine does not enforce this handler (VirtualBox NOT_IN_HM): full pages only, copied to each page. */
  NotInEngine: 4,
} as const;
export const HANDLER_TYPE_FLAGS_MASK = 7;

/** Per-page handler state, ordered by priority: a higher value wins (spec §1.3). */
export const PageHandlerState = {
  None: 0,
  /** A handler covers the page but monitoring is off (temp-off, or an aliased MMIO page). */
  Disabled: 1,
  /** Writes are intercepted, reads are not. */
  Write: 2,
  /** Reads and writes are intercepted. */
  All: 3,
} as const;
export type PageHandlerState = (typeof PageHandlerState)[keyof typeof PageHandlerState];

/** What backs a page (spec §1.2). Alias types only arise from the alias operations. */
export const PageType = {
  Ram: 1,
  Mmio: 2,
  Mmio2: 3,
  /** An MMIO page currently backed by a page of an MMIO2 region. */
  Mmio2AliasMmio: 4,
  /** An MMIO page the engine maps to a host page (APIC access page); PGM accesses still call the handler. */
  SpecialAliasMmio: 5,
  Rom: 6,
  /** Reserved for ROM shadowing; nothing creates it yet. */
  RomShadow: 7,
} as const;
export type PageType = (typeof PageType)[keyof typeof PageType];

/** Allocation state of a page (spec §1.2). RAM, ROM and MMIO2 are allocated up front; MMIO is Zero. */
export const PageAllocState = {
  Zero: 0,
  Allocated: 1,
  WriteMonitored: 2,
  Shared: 3,
  Ballooned: 4,
} as const;
export type PageAllocState = (typeof PageAllocState)[keyof typeof PageAllocState];

/** Access rights the engine should give a page; the same bits as WHPX map flags and the CPU's MemoryAccess. */
export const PageProtection = {
  None: 0,
  Read: 1,
  Write: 2,
  Execute: 4,
} as const;

export const AccessType = {
  Read: 1,
  Write: 2,
} as const;
export type AccessType = (typeof AccessType)[keyof typeof AccessType];

/** Who made an access (VirtualBox PGMACCESSORIGIN, same numbers). */
export const AccessOrigin = {
  /** The instruction emulator (packages/cpu); guest-style `read`/`write` use this. */
  Emulator: 1,
  /** The accelerator's own exit path (packages/whpx-sim). */
  Accelerator: 2,
  /** A device doing DMA. */
  Device: 3,
  Debugger: 4,
  /** Kept for traceability with VirtualBox; nothing here uses them. */
  SegmentManager: 5,
  FaultTolerance: 6,
  Recompiler: 7,
  /** The MMIO dispatcher (IOM). */
  IoManager: 8,
} as const;
export type AccessOrigin = (typeof AccessOrigin)[keyof typeof AccessOrigin];

/** What an access callback answers (spec §6.1). To fail the access, throw. */
export const AccessResult = {
  /** The callback did the whole job; nothing is copied. */
  Handled: 0,
  /** Do the plain access: read the page into the buffer, or write the buffer to the page if it has backing. */
  Default: 1,
} as const;
export type AccessResult = (typeof AccessResult)[keyof typeof AccessResult];

/** What a fault callback answers (spec §6.2). To fail, throw. */
export const FaultResult = {
  /** The callback fixed things up; restart the instruction. */
  Resolved: 0,
  /** Emulate the instruction; its accesses reach the access callback. The default when a type has no fault callback. */
  EmulateInstruction: 1,
} as const;
export type FaultResult = (typeof FaultResult)[keyof typeof FaultResult];

/** Informational successes; failures are thrown as PgmError. */
export type PgmStatus = "OK" | "OK_SHADOW_RESYNC_PENDING" | "OK_ALREADY_ALIASED";

/**
 * Called for an intercepted access of `size` bytes at `address` (within one page and one
 * handler). The data is `buffer[offset … offset + size)`: fill it for a read, read it for a
 * write. `user` is the handler's user argument. Return {@link AccessResult}; throw to fail
 * the access. The callback may call back into PhysicalMemory.
 */
export type AccessCallback = (
  address: number,
  buffer: Uint8Array,
  offset: number,
  size: number,
  accessType: AccessType,
  origin: AccessOrigin,
  user: unknown,
) => AccessResult;

/**
 * Called when an execution path catches a guest access to a handled page as a paging
 * fault (spec §6.2). `context` is whatever that path passes (register state, say).
 */
export type FaultCallback = (
  physicalAddress: number,
  linearAddress: number,
  errorCode: number,
  context: unknown,
  user: unknown,
) => FaultResult;

export function pageOf(address: number): number {
  return address - (address % PAGE_SIZE);
}
