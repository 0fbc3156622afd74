/**
 * One range of the physical address space and its per-page state (spec §1.1–1.3, §8).
 *
 * Per-page metadata lives in parallel typed arrays indexed by page-in-range. `slow` is
 * derived from page type and handler state and says which accesses must leave the fast
 * path; every change of type or handler state goes through {@link setPageState} so it
 * never goes stale.
 */
import { PAGE_SIZE, PageAllocState, PageHandlerState, PageProtection, PageType } from "./constants.js";

export type AccessSize = 1 | 2 | 4;

export type RangeKind = "ram" | "rom" | "mmio" | "mmio2";

/** A device (or anything) behind an MMIO range. Offsets are relative to the range start. */
export interface MmioDevice {
  read(offset: number, size: AccessSize): number;
  write(offset: number, value: number, size: AccessSize): void;
}

/** One range of the guest-physical address space. */
export interface PhysicalRange {
  readonly kind: RangeKind;
  readonly start: number;
  readonly size: number;
  /** Inclusive. */
  readonly lastAddress: number;
  readonly description: string;
  /** RAM, ROM and MMIO2 backing, `size` bytes; byte i is guest-physical address `start + i`. Null for MMIO. */
  readonly bytes: Uint8Array | null;
  /** The device behind an MMIO range added with one; otherwise null. */
  readonly device: MmioDevice | null;
}

/** Bit 0 of `slow`: reads of the page need the handler path. */
export const SLOW_READ = 1;
/** Bit 1 of `slow`: writes of the page need the handler path (or are dropped). */
export const SLOW_WRITE = 2;

// Layout of `pageFlags`.
const NOT_IN_ENGINE = 0x01;
const ALLOC_SHIFT = 1;
const ALLOC_MASK = 0x0e;
const ENGINE_SHIFT = 4;
const ENGINE_MASK = 0x30;

/** Where an aliased MMIO page's accesses go instead (spec §4.15, §4.16). */
export interface PageAlias {
  /** 4096 bytes: the MMIO2 page, or the host page. */
  readonly bytes: Uint8Array;
  /** The MMIO2 range and page index for an MMIO2 alias; null for a host-page alias. */
  readonly region: MemoryRange | null;
  readonly regionPage: number;
}

export function isAliasType(type: number): boolean {
  return type === PageType.Mmio2AliasMmio || type === PageType.SpecialAliasMmio;
}

/** Page types whose backing the guest may write. */
function isWritableType(type: number): boolean {
  return (
    type === PageType.Ram ||
    type === PageType.Mmio2 ||
    type === PageType.Mmio2AliasMmio ||
    type === PageType.SpecialAliasMmio ||
    type === PageType.RomShadow
  );
}

export function slowBits(type: number, state: number): number {
  switch (type) {
    case PageType.Ram:
    case PageType.Mmio2:
    case PageType.RomShadow:
      return (state === PageHandlerState.All ? SLOW_READ : 0) | (state >= PageHandlerState.Write ? SLOW_WRITE : 0);
    case PageType.Rom:
      // Guest writes to ROM never land; they go to a handler or are dropped.
      return (state === PageHandlerState.All ? SLOW_READ : 0) | SLOW_WRITE;
    default:
      // MMIO has no backing, and aliased pages are backed elsewhere.
      return SLOW_READ | SLOW_WRITE;
  }
}

/** The protection an engine should give the page (spec §3.5). */
export function protectionOf(type: number, state: number, allocState: number): number {
  const readExecute = PageProtection.Read | PageProtection.Execute;
  if (type === PageType.Mmio) return PageProtection.None;
  if (type === PageType.Rom) return state === PageHandlerState.All ? PageProtection.None : readExecute;
  if (isWritableType(type)) {
    if (state === PageHandlerState.All) return PageProtection.None;
    if (state === PageHandlerState.Write) return readExecute;
    return allocState === PageAllocState.Allocated ? readExecute | PageProtection.Write : readExecute;
  }
  return PageProtection.None;
}

const EMPTY = new Uint8Array(0);

export class MemoryRange implements PhysicalRange {
  // All fields are `declare`d and assigned in the constructor: with define semantics a
  // plain declaration would first create them as `undefined`, and V8 would then give the
  // fields the fast path reads (start, lastAddress, slow, data) a generic type.
  declare readonly kind: RangeKind;
  declare readonly start: number;
  declare readonly size: number;
  declare readonly lastAddress: number;
  declare readonly description: string;
  declare readonly bytes: Uint8Array | null;
  declare readonly device: MmioDevice | null;
  /** Owner of an MMIO2 region (checked when aliasing); null otherwise. */
  declare readonly owner: unknown;
  declare readonly dirtyTracking: boolean;
  declare readonly pageCount: number;
  declare readonly pageType: Uint8Array;
  declare readonly handlerState: Uint8Array;
  /** notInEngine (bit 0), allocState (bits 1-3), engineState (bits 4-5). */
  declare readonly pageFlags: Uint8Array;
  /**
   * SLOW_READ | SLOW_WRITE per page. For a range backed by the arena this is a view into
   * PhysicalMemory's arena-wide table (the fast path reads that table), so it is assigned
   * once more, to a private copy, when the range is removed.
   */
  declare slow: Uint8Array;
  /** `bytes`, or an empty array for MMIO: one field type for the fast path. */
  declare readonly data: Uint8Array;
  /** Aliased MMIO pages by page index. */
  declare readonly aliases: Map<number, PageAlias>;
  /** Record index of the handler this range owns (device MMIO, MMIO2 dirty tracking), or -1. */
  declare ownedHandler: number;
  /** MMIO2 dirty tracking: a page was written since the last query. */
  declare dirty: boolean;
  declare removed: boolean;

  constructor(
    kind: RangeKind,
    start: number,
    size: number,
    description: string,
    bytes: Uint8Array | null,
    device: MmioDevice | null,
    owner: unknown,
    dirtyTracking: boolean,
    slow: Uint8Array | null,
  ) {
    // The fast path's fields first.
    this.start = start;
    this.lastAddress = start + size - 1;
    const pages = size / PAGE_SIZE;
    const type =
      kind === "ram" ? PageType.Ram : kind === "rom" ? PageType.Rom : kind === "mmio2" ? PageType.Mmio2 : PageType.Mmio;
    this.slow = (slow ?? new Uint8Array(pages)).fill(slowBits(type, PageHandlerState.None));
    this.data = bytes ?? EMPTY;
    this.kind = kind;
    this.size = size;
    this.description = description;
    this.bytes = bytes;
    this.device = device;
    this.owner = owner;
    this.dirtyTracking = dirtyTracking;
    this.pageCount = pages;
    this.pageType = new Uint8Array(pages).fill(type);
    this.handlerState = new Uint8Array(pages);
    const allocState = kind === "mmio" ? PageAllocState.Zero : PageAllocState.Allocated;
    this.pageFlags = new Uint8Array(pages).fill(allocState << ALLOC_SHIFT);
    this.aliases = new Map();
    this.ownedHandler = -1;
    this.dirty = false;
    this.removed = false;
  }

  /** The one place page type and handler state change, so `slow` follows them. */
  setPageState(page: number, type: number, state: number): void {
    this.pageType[page] = type;
    this.handlerState[page] = state;
    this.slow[page] = slowBits(type, state);
  }

  notInEngine(page: number): number {
    return this.pageFlags[page]! & NOT_IN_ENGINE;
  }

  setNotInEngine(page: number, value: number): void {
    this.pageFlags[page] = (this.pageFlags[page]! & ~NOT_IN_ENGINE) | (value ? NOT_IN_ENGINE : 0);
  }

  allocState(page: number): number {
    return (this.pageFlags[page]! & ALLOC_MASK) >> ALLOC_SHIFT;
  }

  setAllocState(page: number, value: number): void {
    this.pageFlags[page] = (this.pageFlags[page]! & ~ALLOC_MASK) | (value << ALLOC_SHIFT);
  }

  engineState(page: number): number {
    return (this.pageFlags[page]! & ENGINE_MASK) >> ENGINE_SHIFT;
  }

  setEngineState(page: number, value: number): void {
    this.pageFlags[page] = (this.pageFlags[page]! & ~ENGINE_MASK) | ((value & 3) << ENGINE_SHIFT);
  }

  protection(page: number): number {
    return protectionOf(this.pageType[page]!, this.handlerState[page]!, this.allocState(page));
  }

  pageAddress(page: number): number {
    return this.start + page * PAGE_SIZE;
  }

  /** Page index of an address inside the range. */
  pageIndex(address: number): number {
    return Math.floor((address - this.start) / PAGE_SIZE);
  }

  /** The bytes currently behind a page: own backing, alias target, or null (MMIO). */
  backing(page: number): Uint8Array | null {
    const type = this.pageType[page]!;
    if (isAliasType(type)) return this.aliases.get(page)?.bytes ?? null;
    if (this.bytes === null) return null;
    return this.bytes.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  }
}
