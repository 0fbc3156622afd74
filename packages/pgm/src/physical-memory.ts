import {
  AccessOrigin,
  AccessResult,
  AccessType,
  FaultResult,
  HANDLER_TYPE_FLAGS_MASK,
  HandlerKind,
  HandlerTypeFlags,
  MAX_PHYSICAL_ADDRESS,
  NIL_ADDRESS,
  PAGE_SIZE,
  PageAllocState,
  PageHandlerState,
  PageProtection,
  PageType,
  pageOf,
  type AccessCallback,
  type FaultCallback,
  type HandlerId,
  type HandlerTypeHandle,
  type PgmStatus,
} from "./constants.js";
import { checkHandlersAndPagesInSync, type ConsistencyReport } from "./consistency-checker.js";
import { hex, PgmError } from "./errors.js";
import { HandlerTable, maxArmStateOnPage } from "./handler-table.js";
import type { ExecutionEngineHooks, PagingHooks } from "./hooks.js";
import {
  isAliasType,
  MemoryRange,
  SLOW_READ,
  SLOW_WRITE,
  type AccessSize,
  type MmioDevice,
  type PhysicalRange,
} from "./memory-range.js";

export { MAX_PHYSICAL_ADDRESS, PAGE_SIZE } from "./constants.js";
export type { AccessSize, MmioDevice, PhysicalRange, RangeKind } from "./memory-range.js";

/**
 * Told when ranges come and go, so an execution engine can map RAM/ROM into its fast path
 * and leave MMIO and holes to its exit path. Owned here; an accelerator satisfies it.
 */
export interface PhysicalMemoryListener {
  rangeAdded(range: PhysicalRange): void;
  rangeRemoved(range: PhysicalRange): void;
}

export interface PhysicalMemoryOptions {
  /**
   * Bytes of the RAM arena: one ArrayBuffer laid out by physical address (byte i = address
   * i). RAM, ROM and MMIO2 ranges that fit below this size are views into it, which lets an
   * interpreter use a single typed array for them. Default 0 (every range gets its own buffer).
   */
  readonly arenaSize?: number;
  /**
   * Handler records in the pool (VirtualBox "MaxPhysicalAccessHandlers"): 32–65 536,
   * default 6144. Device MMIO ranges and MMIO2 dirty tracking use one record each.
   */
  readonly handlerCapacity?: number;
}

export interface HandlerTypeOptions {
  readonly kind: HandlerKind;
  readonly onAccess: AccessCallback;
  /** Shown in dumps and used as the description of handlers that do not give their own. */
  readonly description: string;
  /** {@link HandlerTypeFlags} bits; default 0. */
  readonly flags?: number;
  /** Optional; without it fault-time handling answers "emulate the instruction". */
  readonly onFault?: FaultCallback;
}

export interface Mmio2Options {
  /**
   * Track which pages the guest writes (a write handler over the whole region that turns
   * itself off per page on the first write); query with {@link PhysicalMemory.collectDirtyPages}.
   */
  readonly dirtyTracking?: boolean;
}

/** A snapshot of one handler record. */
export interface HandlerInfo {
  readonly id: HandlerId;
  readonly type: HandlerTypeHandle;
  readonly kind: HandlerKind;
  readonly registered: boolean;
  /** Inclusive range; NIL_ADDRESS (-1) while unregistered. */
  readonly start: number;
  readonly last: number;
  /** Pages the range touches (0 while unregistered). */
  readonly pageCount: number;
  /** Pages turned off by {@link PhysicalMemory.pageTempOff} until the next reset. */
  readonly tmpOffCount: number;
  /** Pages of this MMIO handler currently aliased. */
  readonly aliasedCount: number;
  /** The user argument; for a range-owned handler, the range. */
  readonly user: unknown;
  readonly description: string;
  /** Access callbacks made so far. */
  readonly callCount: number;
  /** True for the handlers a range owns (device MMIO, MMIO2 dirty tracking); remove the range instead. */
  readonly ownedByRange: boolean;
}

/** A snapshot of one page's state. */
export interface PageInfo {
  /** First address of the page. */
  readonly address: number;
  readonly type: PageType;
  readonly handlerState: PageHandlerState;
  readonly allocState: PageAllocState;
  readonly notInEngine: boolean;
  /** What the attached engine last returned for the page (0 when none). */
  readonly engineState: number;
  /** PageProtection bits an engine should give the page. */
  readonly protection: number;
  /** The bytes behind the page: own backing, an aliased MMIO2 or host page, or null for MMIO. */
  readonly backing: Uint8Array | null;
}

interface HandlerType {
  readonly kind: number;
  readonly flags: number;
  readonly armState: number;
  readonly onAccess: AccessCallback;
  readonly onFault: FaultCallback | null;
  readonly description: string;
}

const USER_TYPE_LIMIT = 32;
const DEVICE_TYPE = 32;
const DIRTY_TYPE = 33;
const TYPE_SLOTS = 34;
const TYPE_INDEX_SPAN = 64;
const MAX_RANGE_SIZE = 2 ** 32;
const DEFAULT_HANDLER_CAPACITY = 6144;

const KIND_NAMES = ["invalid", "write", "all", "mmio"];

/** Stands in for "no last range": it covers no address (last address −1). */
const NO_RANGE = new MemoryRange("mmio", 0, 0, "none", null, null, null, false, null);

/** Fills unused type slots so every record's type resolves (spec §1.5 "dummy type"). */
const DUMMY_TYPE: HandlerType = {
  kind: 0,
  flags: 0,
  armState: PageHandlerState.All,
  onAccess: () => {
    throw new PgmError("ERR_PGM_INTERNAL", "a handler with an unresolvable type was called");
  },
  onFault: null,
  description: "dummy",
};

let nextTypeSalt = 1;

/**
 * The guest-physical address space: RAM, ROM, MMIO and MMIO2 ranges, physical access
 * handlers over them (spec/pgm.md), and accesses through both. Unassigned addresses read as
 * all-ones and ignore writes, like an ISA bus with nothing on it.
 */
export class PhysicalMemory {
  /** Backing of RAM/ROM/MMIO2 ranges below arenaSize. */
  declare readonly arena: Uint8Array;
  /**
   * SLOW_READ | SLOW_WRITE for every page of the arena: the fast path's one lookup. The
   * `slow` array of an arena-backed range is a view into it; every other arena page (holes,
   * MMIO) stays at both bits.
   */
  private declare readonly arenaSlow: Uint8Array;
  private readonly sortedRanges: MemoryRange[] = [];
  private readonly listeners: PhysicalMemoryListener[] = [];
  /**
   * The range of the last lookup. Never null (a sentinel that matches nothing stands in),
   * so the field keeps one type and the fast path skips a check.
   */
  private lastRange: MemoryRange = NO_RANGE;
  /** Accesses to addresses no range covers (reads, writes), counted by `read` and `write`. */
  unassignedReads = 0;
  unassignedWrites = 0;

  private declare readonly table: HandlerTable;
  private readonly types: HandlerType[] = new Array<HandlerType>(TYPE_SLOTS).fill(DUMMY_TYPE);
  private userTypeCount = 0;
  private declare readonly typeSalt: number;
  private creating = true;
  private engine: ExecutionEngineHooks | null = null;
  private paging: PagingHooks | null = null;
  private raisedCount = 0;
  /** Per-nesting-depth 8-byte buffers for guest-style accesses that take the handler path. */
  private readonly scratch: Uint8Array[] = [];
  private scratchDepth = 0;

  constructor(options: PhysicalMemoryOptions = {}) {
    const arenaSize = options.arenaSize ?? 0;
    if (!Number.isInteger(arenaSize) || arenaSize < 0 || arenaSize % PAGE_SIZE !== 0 || arenaSize > 2 ** 32) {
      throw new PgmError("ERR_PGM_INVALID_ARGUMENT", `arena size ${arenaSize} must be a multiple of 4096 up to 4 GiB`);
    }
    const capacity = options.handlerCapacity ?? DEFAULT_HANDLER_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 32 || capacity > 65536) {
      throw new PgmError("ERR_PGM_INVALID_ARGUMENT", `handler capacity ${capacity} must be an integer from 32 to 65536`);
    }
    this.arena = new Uint8Array(arenaSize);
    this.arenaSlow = new Uint8Array(arenaSize / PAGE_SIZE).fill(SLOW_READ | SLOW_WRITE);
    this.table = new HandlerTable(capacity);
    this.typeSalt = nextTypeSalt++;
    this.types[DEVICE_TYPE] = {
      kind: HandlerKind.Mmio,
      flags: 0,
      armState: PageHandlerState.All,
      onAccess: deviceAccess,
      onFault: null,
      description: "MMIO device",
    };
    this.types[DIRTY_TYPE] = {
      kind: HandlerKind.Write,
      flags: HandlerTypeFlags.KeepLock,
      armState: PageHandlerState.Write,
      onAccess: (address, _buffer, _offset, _size, _type, _origin, user) => {
        // First write to a clean page: mark it dirty by turning its monitoring off (spec §5).
        const range = user as MemoryRange;
        range.dirty = true;
        this.pageTempOff(range.start, pageOf(address));
        return AccessResult.Default;
      },
      onFault: null,
      description: "MMIO2 dirty-page tracking",
    };
  }

  /** All ranges in address order. */
  get ranges(): readonly PhysicalRange[] {
    return this.sortedRanges;
  }

  /** Bumped whenever a page's handler state is raised; a CPU may compare it to revalidate cached decisions. */
  get stateGeneration(): number {
    return this.raisedCount;
  }

  addListener(listener: PhysicalMemoryListener): void {
    this.listeners.push(listener);
    for (const range of this.sortedRanges) listener.rangeAdded(range);
  }

  /** Attaches the execution engine told about handler and page changes (null detaches). */
  attachEngine(engine: ExecutionEngineHooks | null): void {
    this.engine = engine;
  }

  /** Attaches the CPU-side caches told when pages get stricter (null detaches). */
  attachPaging(paging: PagingHooks | null): void {
    this.paging = paging;
  }

  // ---- ranges -----------------------------------------------------------------------------

  /** Adds zero-filled RAM. `start` and `size` are page multiples. */
  addRam(start: number, size: number, description: string): PhysicalRange {
    this.checkNewRange(start, size, description);
    return this.insert(new MemoryRange("ram", start, size, description, this.backing(start, size), null, null, false, this.arenaSlowOf(start, size)));
  }

  /**
   * Adds ROM holding `content` (padded with 0xFF to whole pages). Guest writes are ignored
   * unless a write handler takes them; {@link loadBytes} may still fill it.
   */
  addRom(start: number, content: Uint8Array, description: string): PhysicalRange {
    const size = Math.ceil(content.length / PAGE_SIZE) * PAGE_SIZE;
    this.checkNewRange(start, size, description);
    const bytes = this.backing(start, size);
    bytes.fill(0xff);
    bytes.set(content);
    return this.insert(new MemoryRange("rom", start, size, description, bytes, null, null, false, this.arenaSlowOf(start, size)));
  }

  /**
   * Adds an MMIO range. With a device, an MMIO handler owned by the range serves every
   * page through it; with null, the pages read as zeros and drop writes until MMIO
   * handlers are registered over them.
   */
  addMmio(start: number, size: number, device: MmioDevice | null, description: string): PhysicalRange {
    this.checkNewRange(start, size, description);
    const range = new MemoryRange("mmio", start, size, description, null, device, null, false, null);
    if (device === null) return this.insert(range);
    return this.insertWithOwnedHandler(range, DEVICE_TYPE);
  }

  /**
   * Adds an MMIO2 region: device-owned RAM mapped into guest space. `owner` identifies the
   * device (checked by {@link aliasMmio2}); the range object itself is the region's handle.
   */
  addMmio2(start: number, size: number, owner: unknown, description: string, options: Mmio2Options = {}): PhysicalRange {
    this.checkNewRange(start, size, description);
    const dirtyTracking = options.dirtyTracking === true;
    const range = new MemoryRange("mmio2", start, size, description, this.backing(start, size), null, owner, dirtyTracking, this.arenaSlowOf(start, size));
    if (!dirtyTracking) return this.insert(range);
    return this.insertWithOwnedHandler(range, DIRTY_TYPE);
  }

  /**
   * Removes the range that starts at `start`. Handlers registered over it must be gone
   * first (its own device or dirty-tracking handler goes with it); pages of other ranges
   * aliased to an MMIO2 range are restored to plain MMIO.
   */
  removeRange(start: number): PhysicalRange {
    const index = this.sortedRanges.findIndex((range) => range.start === start);
    if (index < 0) throw new PgmError("ERR_PGM_NOT_FOUND", `no range starts at ${hex(start)}`);
    const range = this.sortedRanges[index]!;
    const table = this.table;
    for (let h = table.lookupAtOrAbove(range.start); h >= 0 && table.start[h]! <= range.lastAddress; h = table.lookupAtOrAbove(table.last[h]! + 1)) {
      if (table.owned[h] !== 1) {
        throw new PgmError(
          "ERR_PGM_STILL_REGISTERED",
          `cannot remove "${range.description}" at ${hex(range.start)}: ${this.describeHandler(h)} is still registered over it`,
        );
      }
      if (table.last[h]! >= MAX_PHYSICAL_ADDRESS) break;
    }
    if (range.kind === "mmio2") this.restoreAliasesOf(range);
    if (range.ownedHandler >= 0) {
      const owned = range.ownedHandler;
      this.deregisterRecord(owned);
      table.release(owned);
      range.ownedHandler = -1;
    }
    this.sortedRanges.splice(index, 1);
    this.lastRange = NO_RANGE;
    range.removed = true;
    if (range.slow.buffer === this.arenaSlow.buffer) {
      // Its arena pages are unassigned again; the removed range keeps a copy of its own.
      range.slow = range.slow.slice();
      this.arenaSlowOf(range.start, range.size)!.fill(SLOW_READ | SLOW_WRITE);
    }
    if (range.bytes && range.start + range.size <= this.arena.length) range.bytes.fill(0);
    for (const listener of this.listeners) listener.rangeRemoved(range);
    return range;
  }

  /** The range containing `address`, or undefined for unassigned space. */
  rangeAt(address: number): PhysicalRange | undefined {
    return this.findRange(address);
  }

  /** The state of the page holding `address`, or undefined for unassigned space. */
  pageInfo(address: number): PageInfo | undefined {
    const range = this.findRange(address);
    if (range === undefined) return undefined;
    const page = range.pageIndex(address);
    return {
      address: range.pageAddress(page),
      type: range.pageType[page]! as PageType,
      handlerState: range.handlerState[page]! as PageHandlerState,
      allocState: range.allocState(page) as PageAllocState,
      notInEngine: range.notInEngine(page) === 1,
      engineState: range.engineState(page),
      protection: range.protection(page),
      backing: range.backing(page),
    };
  }

  // ---- guest accesses -------------------------------------------------------------------

  /**
   * Reads 1, 2 or 4 bytes (little-endian) as the guest would, through any handler on the
   * page (origin Emulator). The handler-free path inside the arena is one byte of per-page
   * state and the typed-array access; it does not depend on how many handlers exist.
   */
  read(address: number, size: AccessSize): number {
    // Kept small so it inlines into the caller; everything but the fast path is elsewhere.
    // `address >>> 12` wraps above 4 GiB and truncates fractions: the last test rules those out.
    const page = address >>> 12;
    const slow = this.arenaSlow;
    // Literals, not the named constants: module-level bindings cost a load here.
    if (page < slow.length && (slow[page]! & 1) /* SLOW_READ */ === 0 && (address & 0xfff) + size <= 4096 && address === address >>> 0) {
      const bytes = this.arena;
      if (size === 1) return bytes[address]!;
      if (size === 2) return bytes[address]! | (bytes[address + 1]! << 8);
      return (bytes[address]! | (bytes[address + 1]! << 8) | (bytes[address + 2]! << 16) | (bytes[address + 3]! << 24)) >>> 0;
    }
    return this.readOther(address, size);
  }

  /** Writes 1, 2 or 4 bytes as the guest would, through any handler (ROM ignores it, holes drop it). */
  write(address: number, value: number, size: AccessSize): void {
    const page = address >>> 12;
    const slow = this.arenaSlow;
    if (page < slow.length && (slow[page]! & 2) /* SLOW_WRITE */ === 0 && (address & 0xfff) + size <= 4096 && address === address >>> 0) {
      const bytes = this.arena;
      bytes[address] = value;
      if (size >= 2) bytes[address + 1] = value >>> 8;
      if (size === 4) {
        bytes[address + 2] = value >>> 16;
        bytes[address + 3] = value >>> 24;
      }
      return;
    }
    this.writeOther(address, value, size);
  }

  /**
   * Reads `buffer.length` bytes at `address` through handlers (spec §6.3): unassigned bytes
   * read 0xFF, MMIO pages without a handler read zeros. If a callback throws, the buffer
   * from the failing chunk on is 0xFF and the error propagates.
   */
  readInto(address: number, buffer: Uint8Array, origin: AccessOrigin = AccessOrigin.Device): void {
    if (!(buffer instanceof Uint8Array)) throw new PgmError("ERR_PGM_INVALID_ARGUMENT", "readInto needs a Uint8Array buffer");
    if (buffer.length === 0) return;
    this.checkAccess(address, buffer.length, "read");
    this.readCore(address, buffer, 0, buffer.length, origin);
  }

  /**
   * Writes `buffer` at `address` through handlers (spec §6.4): every handler the write
   * touches is called once per page with exactly its bytes, in address order; the bytes
   * between them are written directly; unassigned bytes are dropped. If a callback throws,
   * earlier chunks stay written, later ones are not, and the error propagates.
   */
  writeFrom(address: number, buffer: Uint8Array, origin: AccessOrigin = AccessOrigin.Device): void {
    if (!(buffer instanceof Uint8Array)) throw new PgmError("ERR_PGM_INVALID_ARGUMENT", "writeFrom needs a Uint8Array buffer");
    if (buffer.length === 0) return;
    this.checkAccess(address, buffer.length, "write");
    this.writeCore(address, buffer, 0, buffer.length, origin);
  }

  /**
   * Copies `bytes` into RAM, ROM or MMIO2 at `address` (image loading, debuggers), bypassing
   * handlers. Throws, and writes nothing, if any byte would land elsewhere.
   */
  loadBytes(address: number, bytes: Uint8Array): void {
    this.forEachBackedChunk(address, bytes.length, "load", (target, offset, from, length) => {
      target.set(bytes.subarray(from, from + length), offset);
    });
  }

  /** Copies guest RAM/ROM/MMIO2 into a new array, bypassing handlers; throws if any byte is not backed. */
  readBytes(address: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.forEachBackedChunk(address, length, "read", (source, offset, to, chunk) => {
      out.set(source.subarray(offset, offset + chunk), to);
    });
    return out;
  }

  // ---- handler types ----------------------------------------------------------------------

  /**
   * Registers a handler type (spec §1.5): up to 32, only until {@link finishCreation}.
   * Checks run in the reference's order: callback and description, kind, flags, state, room.
   */
  registerHandlerType(options: HandlerTypeOptions): HandlerTypeHandle {
    const { kind, onAccess, description, onFault } = options;
    const flags = options.flags ?? 0;
    if (typeof onAccess !== "function" || typeof description !== "string" || description === "" || (onFault !== undefined && typeof onFault !== "function")) {
      throw new PgmError("ERR_PGM_INVALID_CALLBACK", `handler type "${String(description)}" needs an access callback function and a description`);
    }
    if (kind !== HandlerKind.Write && kind !== HandlerKind.All && kind !== HandlerKind.Mmio) {
      throw new PgmError("ERR_PGM_INVALID_KIND", `handler type "${description}": kind ${String(kind)} is not Write (1), All (2) or Mmio (3)`);
    }
    if (!Number.isInteger(flags) || (flags & ~HANDLER_TYPE_FLAGS_MASK) !== 0 || flags < 0) {
      throw new PgmError("ERR_PGM_INVALID_FLAGS", `handler type "${description}": flags ${hex(flags)} has unknown bits (known: 0x7)`);
    }
    if (!this.creating) {
      throw new PgmError("ERR_PGM_WRONG_VM_STATE", `handler type "${description}": types can only be registered before finishCreation()`);
    }
    if (this.userTypeCount >= USER_TYPE_LIMIT) {
      throw new PgmError("ERR_PGM_TYPE_TABLE_FULL", `handler type "${description}": all ${USER_TYPE_LIMIT} type slots are used`);
    }
    const index = this.userTypeCount++;
    this.types[index] = {
      kind,
      flags,
      armState: kind === HandlerKind.Write ? PageHandlerState.Write : PageHandlerState.All,
      onAccess,
      onFault: onFault ?? null,
      description,
    };
    return (this.typeSalt * TYPE_INDEX_SPAN + index) as HandlerTypeHandle;
  }

  /** Ends VM creation: no more handler types can be registered. */
  finishCreation(): void {
    this.creating = false;
  }

  // ---- handler lifecycle ------------------------------------------------------------------

  /** Takes an unregistered handler record from the pool (spec §4.2). */
  createHandler(type: HandlerTypeHandle, user: unknown, description?: string): HandlerId {
    const typeIndex = this.resolveUserType(type);
    return this.allocateHandler(typeIndex, user, description ?? this.types[typeIndex]!.description);
  }

  /** A new unregistered handler with `handler`'s type, user argument and description. */
  duplicateHandler(handler: HandlerId): HandlerId {
    const index = this.recordOf(handler);
    this.assertNotOwned(index, "duplicate");
    return this.allocateHandler(this.table.typeIndex[index]!, this.table.user[index], this.table.description[index]!);
  }

  /**
   * Registers `handler` over `[start, last]` (inclusive) and arms its pages (spec §4.3).
   * On failure the handler stays unregistered and usable.
   */
  registerHandler(handler: HandlerId, start: number, last: number): PgmStatus {
    const index = this.recordOf(handler);
    const table = this.table;
    if (table.start[index] !== NIL_ADDRESS) {
      throw new PgmError("ERR_PGM_ALREADY_REGISTERED", `${this.describeHandler(index)} is already registered`);
    }
    const typeIndex = table.typeIndex[index]!;
    const description = table.description[index]!;
    this.validateHandlerRange(typeIndex, start, last, description);
    const conflict = table.findConflict(start, last);
    if (conflict >= 0) {
      throw new PgmError(
        "ERR_PGM_CONFLICT",
        `cannot register "${description}" at ${hex(start)}-${hex(last)}: it intersects ${this.describeHandler(conflict)}`,
      );
    }
    table.start[index] = start;
    table.last[index] = last;
    table.insert(index);
    const status = this.arm(index, null, 0);
    this.engine?.handlerRegistered(this.types[typeIndex]!.kind as HandlerKind, start, last - start + 1);
    return status;
  }

  /** Deregisters `handler` and disarms its pages; the record survives for reuse (spec §4.4). */
  deregisterHandler(handler: HandlerId): void {
    const index = this.recordOf(handler);
    if (this.table.start[index] === NIL_ADDRESS) {
      throw new PgmError("ERR_PGM_NOT_FOUND", `${this.describeHandler(index)} is not registered`);
    }
    this.assertNotOwned(index, "deregister");
    this.deregisterRecord(index);
  }

  /** Returns an unregistered handler to the pool; null or undefined is accepted (spec §4.5). */
  destroyHandler(handler: HandlerId | null | undefined): PgmStatus {
    if (handler === null || handler === undefined) return "OK";
    const index = this.recordOf(handler);
    if (this.table.start[index] !== NIL_ADDRESS) {
      throw new PgmError("ERR_PGM_STILL_REGISTERED", `cannot destroy ${this.describeHandler(index)}: deregister it first`);
    }
    this.table.release(index);
    return "OK";
  }

  /**
   * Creates and registers a handler over `[start, last]`; on failure nothing is left behind.
   */
  register(start: number, last: number, type: HandlerTypeHandle, user: unknown, description?: string): PgmStatus {
    const handler = this.createHandler(type, user, description);
    try {
      return this.registerHandler(handler, start, last);
    } catch (error) {
      this.destroyHandler(handler);
      throw error;
    }
  }

  /** Deregisters and destroys the handler that starts exactly at `start` (spec §4.6). */
  deregister(start: number): void {
    const index = this.handlerStartingAt(start);
    this.assertNotOwned(index, "deregister");
    this.deregisterRecord(index);
    this.table.release(index);
  }

  /**
   * Moves the handler starting at `currentStart` to `[newStart, newLast]` (spec §4.7). The
   * new range must pass register's checks. **A failure after the handler was found destroys
   * it** (the engine is told the old range was deregistered); register a new one.
   */
  modify(currentStart: number, newStart: number, newLast: number): PgmStatus {
    const index = this.handlerStartingAt(currentStart);
    this.assertNotOwned(index, "modify");
    const table = this.table;
    const oldStart = table.start[index]!;
    const oldLast = table.last[index]!;
    const typeIndex = table.typeIndex[index]!;
    const kind = this.types[typeIndex]!.kind as HandlerKind;
    if (!table.remove(index)) throw this.corruption(index);
    this.disarm(index);
    table.start[index] = NIL_ADDRESS;
    table.last[index] = NIL_ADDRESS;
    try {
      this.validateHandlerRange(typeIndex, newStart, newLast, table.description[index]!);
      const conflict = table.findConflict(newStart, newLast);
      if (conflict >= 0) {
        throw new PgmError("ERR_PGM_CONFLICT", `${hex(newStart)}-${hex(newLast)} intersects ${this.describeHandler(conflict)}`);
      }
    } catch (error) {
      this.notifyDeregistered(kind, oldStart, oldLast);
      table.clearCache();
      const description = table.description[index]!;
      table.release(index);
      if (!(error instanceof PgmError)) throw error;
      throw new PgmError(
        error.code,
        `cannot move "${description}" from ${hex(oldStart)}-${hex(oldLast)}: ${error.message}; the handler was destroyed`,
        { cause: error },
      );
    }
    table.start[index] = newStart;
    table.last[index] = newLast;
    table.insert(index);
    const status = this.arm(index, null, 0);
    this.engine?.handlerModified(kind, oldStart, newStart, newLast - newStart + 1, kind !== HandlerKind.Mmio);
    this.paging?.flushAllTlbs();
    table.clearCache();
    return status;
  }

  /** Replaces the user argument of the handler starting at `start` (spec §4.8). */
  changeUserArgument(start: number, user: unknown): void {
    const index = this.handlerStartingAt(start);
    this.assertNotOwned(index, "change the user argument of");
    this.table.user[index] = user;
  }

  /**
   * Splits the handler starting at `start` in two at `splitAt` (spec §4.9): it keeps
   * `[start, splitAt − 1]`, a new handler with the same type, user argument and description
   * gets `[splitAt, last]`. Page states are unchanged.
   */
  split(start: number, splitAt: number): void {
    if (typeof start !== "number" || typeof splitAt !== "number" || !(start < splitAt)) {
      throw new PgmError("ERR_PGM_INVALID_SPLIT", `cannot split at ${hex(splitAt)}: it must be above the handler start ${hex(start)}`);
    }
    const table = this.table;
    const second = table.allocate();
    if (second < 0) throw this.outOfHandlers(`split the handler at ${hex(start)}`);
    let index: number;
    try {
      index = this.handlerStartingAt(start);
      this.assertNotOwned(index, "split");
      const last = table.last[index]!;
      const where = `cannot split ${this.describeHandler(index)} at ${hex(splitAt)}`;
      if (!Number.isInteger(splitAt) || splitAt > last) throw new PgmError("ERR_PGM_INVALID_SPLIT", `${where}: not inside it`);
      if (splitAt - start < 2 || last - splitAt + 1 < 2) {
        throw new PgmError("ERR_PGM_INVALID_SPLIT", `${where}: each part must keep at least 2 bytes`);
      }
      const needsPages = this.requiresFullPages(table.typeIndex[index]!) || table.tmpOffCount[index]! > 0 || table.aliasedCount[index]! > 0;
      if (needsPages && splitAt % PAGE_SIZE !== 0) {
        throw new PgmError("ERR_PGM_INVALID_SPLIT", `${where}: must be page aligned (full-page type, or pages turned off or aliased)`);
      }
    } catch (error) {
      table.release(second);
      throw error;
    }
    const last = table.last[index]!;
    table.setLast(index, splitAt - 1);
    table.typeIndex[second] = table.typeIndex[index]!;
    table.user[second] = table.user[index];
    table.description[second] = table.description[index]!;
    table.start[second] = splitAt;
    table.last[second] = last;
    table.insert(second);
    this.recountDisabledPages(index);
    this.recountDisabledPages(second);
    table.clearCache();
  }

  /**
   * Joins the handler starting at `start2` onto the adjacent one starting at `start1`
   * (spec §4.10): the first survives with its user argument and description.
   */
  join(start1: number, start2: number): void {
    const first = this.handlerStartingAt(start1);
    const second = this.handlerStartingAt(start2);
    this.assertNotOwned(first, "join");
    this.assertNotOwned(second, "join");
    const table = this.table;
    const where = `cannot join ${this.describeHandler(first)} and ${this.describeHandler(second)}`;
    if (table.last[first]! + 1 !== table.start[second]) {
      throw new PgmError("ERR_PGM_INVALID_JOIN", `${where}: the second must start right after the first`);
    }
    if (table.typeIndex[first] !== table.typeIndex[second]) throw new PgmError("ERR_PGM_JOIN_TYPE_MISMATCH", `${where}: different types`);
    if (table.last[second]! - table.start[first]! >= MAX_RANGE_SIZE) {
      throw new PgmError("ERR_PGM_INVALID_JOIN", `${where}: the union would be 4 GiB or larger`);
    }
    // Contiguous ranges are still distinct: a handler must stay inside one (spec §2.3).
    if (this.findRange(table.start[first]!) !== this.findRange(table.start[second]!)) {
      throw new PgmError("ERR_PGM_INVALID_JOIN", `${where}: they lie in different ranges`);
    }
    const last = table.last[second]!;
    if (!table.remove(second)) throw this.corruption(second);
    table.setLast(first, last);
    table.tmpOffCount[first]! += table.tmpOffCount[second]!;
    table.aliasedCount[first]! += table.aliasedCount[second]!;
    table.release(second);
    table.clearCache();
  }

  // ---- temp-off, reset, aliasing ----------------------------------------------------------

  /**
   * Turns interception off for the page holding `pageAddress` of the full-page write or
   * all-access handler starting at `start`, until {@link reset} (spec §4.13).
   */
  pageTempOff(start: number, pageAddress: number): void {
    const index = this.handlerStartingAt(start);
    const table = this.table;
    const last = table.last[index]!;
    if (!(pageAddress >= start && pageAddress <= last)) {
      throw new PgmError("ERR_PGM_PAGE_OUTSIDE_HANDLER", `page ${hex(pageAddress)} is outside ${this.describeHandler(index)}`);
    }
    const kind = this.types[table.typeIndex[index]!]!.kind;
    if (kind !== HandlerKind.Write && kind !== HandlerKind.All) {
      throw new PgmError("ERR_PGM_WRONG_KIND", `${this.describeHandler(index)} is MMIO: alias its pages instead of turning them off`);
    }
    if (start % PAGE_SIZE !== 0 || (last + 1) % PAGE_SIZE !== 0) {
      throw new PgmError("ERR_PGM_NOT_PAGE_ALIGNED", `${this.describeHandler(index)} does not cover whole pages, so its pages cannot be turned off`);
    }
    const range = this.findRange(pageAddress)!;
    const page = range.pageIndex(pageAddress);
    if (range.handlerState[page] !== PageHandlerState.Disabled) {
      range.setPageState(page, range.pageType[page]!, PageHandlerState.Disabled);
      table.tmpOffCount[index]! += 1;
      this.notifyProtection(range, page);
    }
  }

  /**
   * Puts every page of the handler starting at `start` back into its armed state,
   * cancelling temp-off and aliases (spec §4.11).
   */
  reset(start: number): PgmStatus {
    const index = this.handlerStartingAt(start);
    const table = this.table;
    const kind = this.types[table.typeIndex[index]!]!.kind;
    if (kind === HandlerKind.Write || kind === HandlerKind.All) {
      if (table.tmpOffCount[index]! > 0) this.arm(index, null, 0);
    } else if (kind === HandlerKind.Mmio) {
      if (table.aliasedCount[index]! > 0) {
        const range = this.findRange(start)!;
        const firstPage = range.pageIndex(start);
        const lastPage = range.pageIndex(table.last[index]!);
        let mmio2Restored = false;
        for (let page = firstPage; page <= lastPage && table.aliasedCount[index]! > 0; page++) {
          const type = range.pageType[page]!;
          if (!isAliasType(type)) continue;
          if (type === PageType.Mmio2AliasMmio) mmio2Restored = true;
          this.restoreAlias(range, page, false);
          table.aliasedCount[index]! -= 1;
        }
        if (mmio2Restored) this.paging?.invalidateAllPhysicalTlbs();
      }
    } else {
      throw this.corruption(index);
    }
    table.tmpOffCount[index] = 0;
    table.aliasedCount[index] = 0;
    return "OK";
  }

  /**
   * Re-arms the turned-off pages of the write handler starting at `start` and sets bit
   * `bitOffset + i` of `bitmap` (LSB first in each byte) for each handler page `i` that was
   * off, i.e. written since the last reset (spec §4.12). The caller clears the bitmap.
   */
  resetWithBitmap(start: number, bitmap: Uint8Array, bitOffset: number): void {
    const index = this.handlerStartingAt(start);
    const table = this.table;
    if (this.types[table.typeIndex[index]!]!.kind !== HandlerKind.Write) {
      throw new PgmError("ERR_PGM_WRONG_KIND", `${this.describeHandler(index)} is not a write handler, so it has no dirty pages`);
    }
    const pages = this.pageCountOf(index);
    if (!(bitmap instanceof Uint8Array) || !Number.isInteger(bitOffset) || bitOffset < 0 || (bitOffset + pages) > bitmap.length * 8) {
      throw new PgmError("ERR_PGM_INVALID_ARGUMENT", `a dirty bitmap for ${this.describeHandler(index)} needs bits ${bitOffset} to ${bitOffset + pages - 1}`);
    }
    if (table.tmpOffCount[index]! > 0) {
      this.arm(index, bitmap, bitOffset);
      table.tmpOffCount[index] = 0;
    }
  }

  /**
   * Fills `bitmap` (one bit per page, LSB first) with the pages of the dirty-tracked MMIO2
   * range at `start` written since the last call, and starts tracking afresh (spec §5).
   */
  collectDirtyPages(start: number, bitmap: Uint8Array): void {
    const range = this.sortedRanges.find((candidate) => candidate.start === start);
    if (range === undefined) throw new PgmError("ERR_PGM_NOT_FOUND", `no range starts at ${hex(start)}`);
    if (!range.dirtyTracking) throw new PgmError("ERR_PGM_WRONG_KIND", `"${range.description}" at ${hex(start)} has no dirty-page tracking`);
    if (!(bitmap instanceof Uint8Array) || bitmap.length * 8 < range.pageCount) {
      throw new PgmError("ERR_PGM_INVALID_ARGUMENT", `"${range.description}" needs a bitmap of ${Math.ceil(range.pageCount / 8)} bytes`);
    }
    bitmap.fill(0);
    if (!range.dirty) return;
    this.resetWithBitmap(start, bitmap, 0);
    range.dirty = false;
  }

  /**
   * Backs the page holding `pageAddress` of the MMIO handler starting at `start` with page
   * `floor(regionOffset / 4096)` of the MMIO2 region `region` owned by `owner`, so
   * accesses there no longer reach the handler (spec §4.15).
   */
  aliasMmio2(start: number, pageAddress: number, owner: unknown, region: PhysicalRange, regionOffset: number): PgmStatus {
    this.assertAliasingSupported();
    const target = region instanceof MemoryRange && !region.removed && this.sortedRanges.includes(region) ? region : undefined;
    if (target === undefined || target.kind !== "mmio2") {
      throw new PgmError("ERR_PGM_MMIO2_OUT_OF_RANGE", `${region === null || typeof region !== "object" ? String(region) : `"${region.description}"`} is not an MMIO2 region of this memory`);
    }
    if (target.owner !== owner) throw new PgmError("ERR_PGM_MMIO2_OUT_OF_RANGE", `MMIO2 region "${target.description}" belongs to another owner`);
    if (!Number.isInteger(regionOffset) || regionOffset < 0 || regionOffset >= target.size) {
      throw new PgmError("ERR_PGM_MMIO2_OUT_OF_RANGE", `offset ${hex(regionOffset)} is outside MMIO2 region "${target.description}" (${hex(target.size)} bytes)`);
    }
    const regionPage = Math.floor(regionOffset / PAGE_SIZE);
    if (target.pageType[regionPage] !== PageType.Mmio2) throw new PgmError("ERR_PGM_NOT_MMIO2", `page ${hex(regionOffset)} of "${target.description}" is not MMIO2`);
    const { range, page } = this.aliasablePage(start, pageAddress);
    const type = range.pageType[page]!;
    const index = this.table.exact(start);
    if (type === PageType.Mmio2AliasMmio) {
      const alias = range.aliases.get(page)!;
      if (alias.region === target && alias.regionPage === regionPage) return "OK_ALREADY_ALIASED";
      this.restoreAlias(range, page, false);
      this.table.aliasedCount[index]! -= 1;
      this.paging?.invalidateAllPhysicalTlbs();
    } else if (type !== PageType.Mmio) {
      throw new PgmError("ERR_PGM_NOT_MMIO2", `page ${hex(range.pageAddress(page))} is aliased to a host page, not MMIO`);
    }
    const bytes = target.bytes!.subarray(regionPage * PAGE_SIZE, (regionPage + 1) * PAGE_SIZE);
    this.aliasPage(index, range, page, PageType.Mmio2AliasMmio, { bytes, region: target, regionPage });
    return "OK";
  }

  /**
   * Has the engine map `hostPage` (4096 bytes) at the page holding `pageAddress` of the MMIO
   * handler starting at `start`, while PhysicalMemory's own accesses still call the handler
   * (the APIC access page; spec §4.16). A second call is a no-op, whatever page it names.
   */
  aliasHostPage(start: number, pageAddress: number, hostPage: Uint8Array): PgmStatus {
    this.assertAliasingSupported();
    if (!(hostPage instanceof Uint8Array) || hostPage.length < PAGE_SIZE) {
      throw new PgmError("ERR_PGM_INVALID_ARGUMENT", "the host page must be a Uint8Array of at least 4096 bytes");
    }
    const { range, page } = this.aliasablePage(start, pageAddress);
    const type = range.pageType[page]!;
    if (type === PageType.SpecialAliasMmio) return "OK_ALREADY_ALIASED";
    if (type !== PageType.Mmio) throw new PgmError("ERR_PGM_NOT_MMIO2", `page ${hex(range.pageAddress(page))} is aliased to MMIO2, not MMIO`);
    this.aliasPage(this.table.exact(start), range, page, PageType.SpecialAliasMmio, { bytes: hostPage.subarray(0, PAGE_SIZE), region: null, regionPage: 0 });
    return "OK";
  }

  // ---- queries ------------------------------------------------------------------------------

  /** True if any registered handler covers `address` (spec §4.14). */
  isRegistered(address: number): boolean {
    return typeof address === "number" && this.table.lookup(address) >= 0;
  }

  /**
   * True unless `address` is covered by a write-only handler: whether a direct view of the
   * page may be handed out for reading (spec §4.17; conservative when no handler is found).
   */
  isAllAccess(address: number): boolean {
    const index = this.table.lookup(address);
    return index < 0 || this.types[this.table.typeIndex[index]!]!.kind !== HandlerKind.Write;
  }

  /** The handler covering `address`, or undefined. */
  handlerAt(address: number): HandlerInfo | undefined {
    const index = this.table.lookup(address);
    return index < 0 ? undefined : this.info(index);
  }

  /** A snapshot of a handler record (registered or not). */
  handlerInfo(handler: HandlerId): HandlerInfo {
    return this.info(this.recordOf(handler));
  }

  /** Registered handlers in address order. */
  handlers(): HandlerInfo[] {
    const result: HandlerInfo[] = [];
    for (let position = 0; position < this.table.count; position++) result.push(this.info(this.table.sortedIndex[position]!));
    return result;
  }

  /** Handler records still free in the pool. */
  get freeHandlerRecords(): number {
    return this.table.freeRecords;
  }

  /** One line per registered handler in address order: range, kind, user, description, callback, flags (spec §4.18). */
  describeHandlers(): string[] {
    const lines: string[] = [];
    for (let position = 0; position < this.table.count; position++) {
      const index = this.table.sortedIndex[position]!;
      const handler = this.info(index);
      const type = this.types[this.table.typeIndex[index]!]!;
      const user = typeof handler.user === "number" ? hex(handler.user) : handler.user instanceof MemoryRange ? `range "${handler.user.description}"` : String(handler.user);
      const flags = [type.flags & HandlerTypeFlags.KeepLock ? "keep-lock" : "", type.flags & HandlerTypeFlags.NotInEngine ? "not-in-engine" : ""]
        .filter(Boolean)
        .join(",");
      lines.push(
        `${hex(handler.start)}-${hex(handler.last)} ${KIND_NAMES[handler.kind]} "${handler.description}" user=${user} callback=${type.onAccess.name || "(anonymous)"}${flags ? ` flags=${flags}` : ""} calls=${handler.callCount}`,
      );
    }
    return lines;
  }

  /**
   * Answers a guest access caught as a paging fault on a handled page (spec §6.2): the
   * covering handler's fault callback, or "emulate the instruction".
   */
  handleFault(physicalAddress: number, linearAddress: number, errorCode: number, context?: unknown): FaultResult {
    const index = this.table.lookup(physicalAddress);
    if (index < 0) return FaultResult.EmulateInstruction;
    const onFault = this.types[this.table.typeIndex[index]!]!.onFault;
    if (onFault === null) return FaultResult.EmulateInstruction;
    return onFault(physicalAddress, linearAddress, errorCode, context, this.table.user[index]);
  }

  /** The consistency checker of spec §7: page states against handlers, plus extensions. */
  checkHandlersAndPagesInSync(): ConsistencyReport {
    const types = this.types;
    return checkHandlersAndPagesInSync(
      this.sortedRanges,
      this.table,
      {
        kind: (typeIndex) => types[typeIndex]!.kind,
        armState: (typeIndex) => types[typeIndex]!.armState,
        flags: (typeIndex) => types[typeIndex]!.flags,
      },
      (address) => this.findRange(address),
      this.arenaSlow,
    );
  }

  // ---- internals: access paths --------------------------------------------------------------

  /** `read` for everything but a handler-free access inside the arena. */
  private readOther(address: number, size: AccessSize): number {
    const range = this.findRange(address);
    if (range !== undefined && address + size - 1 <= range.lastAddress) {
      const offset = address - range.start;
      if ((range.slow[Math.floor(offset / PAGE_SIZE)]! & SLOW_READ) === 0 && (offset % PAGE_SIZE) + size <= PAGE_SIZE) {
        // A range outside the arena (or a fast page whose access the caller could not take).
        const bytes = range.data;
        if (size === 1) return bytes[offset]!;
        if (size === 2) return bytes[offset]! | (bytes[offset + 1]! << 8);
        return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
      }
      return this.readSlow(range, address, size);
    }
    if (!range && this.isUnassigned(address, size)) {
      this.unassignedReads++;
      return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    }
    // Straddles a boundary: byte by byte, as a bus would split it.
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.read(address + i, 1) << (8 * i);
    return value >>> 0;
  }

  /** `write` for everything but a handler-free access inside the arena. */
  private writeOther(address: number, value: number, size: AccessSize): void {
    const range = this.findRange(address);
    if (range !== undefined && address + size - 1 <= range.lastAddress) {
      const offset = address - range.start;
      if ((range.slow[Math.floor(offset / PAGE_SIZE)]! & SLOW_WRITE) === 0 && (offset % PAGE_SIZE) + size <= PAGE_SIZE) {
        const bytes = range.data;
        bytes[offset] = value;
        if (size >= 2) bytes[offset + 1] = value >>> 8;
        if (size === 4) {
          bytes[offset + 2] = value >>> 16;
          bytes[offset + 3] = value >>> 24;
        }
      } else {
        this.writeSlow(range, address, value, size);
      }
      return;
    }
    if (!range && this.isUnassigned(address, size)) {
      this.unassignedWrites++;
      return;
    }
    for (let i = 0; i < size; i++) this.write(address + i, (value >>> (8 * i)) & 0xff, 1);
  }

  private readSlow(range: MemoryRange, address: number, size: AccessSize): number {
    if (range.device !== null && this.isPlainDeviceAccess(range, address, size)) {
      // Keep only `size` bytes: a wider answer would spill into neighbours when an access is split.
      const value = range.device.read(address - range.start, size);
      return size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
    }
    const scratch = this.enterScratch();
    try {
      this.readCore(address, scratch, 0, size, AccessOrigin.Emulator);
      if (size === 1) return scratch[0]!;
      if (size === 2) return scratch[0]! | (scratch[1]! << 8);
      return (scratch[0]! | (scratch[1]! << 8) | (scratch[2]! << 16) | (scratch[3]! << 24)) >>> 0;
    } finally {
      this.scratchDepth--;
    }
  }

  private writeSlow(range: MemoryRange, address: number, value: number, size: AccessSize): void {
    if (range.device !== null && this.isPlainDeviceAccess(range, address, size)) {
      range.device.write(address - range.start, size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1), size);
      return;
    }
    const scratch = this.enterScratch();
    try {
      for (let i = 0; i < size; i++) scratch[i] = value >>> (8 * i);
      this.writeCore(address, scratch, 0, size, AccessOrigin.Emulator);
    } finally {
      this.scratchDepth--;
    }
  }

  /** A guest-style access to pages served by the range's own device handler goes to the device whole, as before handlers existed. */
  private isPlainDeviceAccess(range: MemoryRange, address: number, size: number): boolean {
    const first = range.pageIndex(address);
    const last = range.pageIndex(address + size - 1);
    return (
      range.pageType[first] === PageType.Mmio &&
      range.handlerState[first] === PageHandlerState.All &&
      range.pageType[last] === PageType.Mmio &&
      range.handlerState[last] === PageHandlerState.All
    );
  }

  private enterScratch(): Uint8Array {
    let scratch = this.scratch[this.scratchDepth];
    if (scratch === undefined) {
      scratch = new Uint8Array(8);
      this.scratch[this.scratchDepth] = scratch;
    }
    this.scratchDepth++;
    return scratch;
  }

  private readCore(address: number, buffer: Uint8Array, offset: number, length: number, origin: AccessOrigin): void {
    const end = offset + length;
    let done = 0;
    while (done < length) {
      const current = address + done;
      const range = this.findRangeAtOrAbove(current);
      if (range === undefined) {
        buffer.fill(0xff, offset + done, end);
        return;
      }
      if (current < range.start) {
        const gap = Math.min(range.start - current, length - done);
        buffer.fill(0xff, offset + done, offset + done + gap);
        done += gap;
        continue;
      }
      const chunk = Math.min(PAGE_SIZE - (current % PAGE_SIZE), length - done);
      const page = range.pageIndex(current);
      if ((range.slow[page]! & SLOW_READ) === 0) copyFrom(range.bytes!, current - range.start, buffer, offset + done, chunk);
      else this.readPageThroughHandler(range, page, current, buffer, offset + done, chunk, origin, end);
      done += chunk;
    }
  }

  private readPageThroughHandler(
    range: MemoryRange,
    page: number,
    address: number,
    buffer: Uint8Array,
    at: number,
    chunk: number,
    origin: AccessOrigin,
    end: number,
  ): void {
    const type = range.pageType[page]!;
    if (range.handlerState[page] !== PageHandlerState.All && type !== PageType.SpecialAliasMmio) {
      this.copyFromPage(range, page, address, buffer, at, chunk);
      return;
    }
    const table = this.table;
    const index = table.lookup(address);
    if (index < 0) {
      // Inconsistent (a page state without a handler): do the plain access.
      this.copyFromPage(range, page, address, buffer, at, chunk);
      return;
    }
    table.callCount[index]! += 1;
    let result: AccessResult;
    try {
      result = this.types[table.typeIndex[index]!]!.onAccess(address, buffer, at, chunk, AccessType.Read, origin, table.user[index]);
    } catch (error) {
      buffer.fill(0xff, at, end);
      throw error;
    }
    if (result === AccessResult.Default) this.copyFromPage(range, page, address, buffer, at, chunk);
    else if (result !== AccessResult.Handled) {
      buffer.fill(0xff, at, end);
      throw this.badResult(result, address);
    }
  }

  /** The plain read of a page chunk: own backing, alias target, or zeros (MMIO, host-page alias). */
  private copyFromPage(range: MemoryRange, page: number, address: number, buffer: Uint8Array, at: number, chunk: number): void {
    const type = range.pageType[page]!;
    if (type === PageType.Mmio2AliasMmio) {
      copyFrom(range.aliases.get(page)!.bytes, address % PAGE_SIZE, buffer, at, chunk);
    } else if (range.bytes === null || type === PageType.SpecialAliasMmio) {
      buffer.fill(0, at, at + chunk);
    } else {
      copyFrom(range.bytes, address - range.start, buffer, at, chunk);
    }
  }

  private writeCore(address: number, buffer: Uint8Array, offset: number, length: number, origin: AccessOrigin): void {
    let done = 0;
    while (done < length) {
      const current = address + done;
      const range = this.findRangeAtOrAbove(current);
      if (range === undefined) return;
      if (current < range.start) {
        done += Math.min(range.start - current, length - done);
        continue;
      }
      const chunk = Math.min(PAGE_SIZE - (current % PAGE_SIZE), length - done);
      const page = range.pageIndex(current);
      if ((range.slow[page]! & SLOW_WRITE) === 0) copyTo(buffer, offset + done, range.bytes!, current - range.start, chunk);
      else this.writePageThroughHandlers(range, page, current, buffer, offset + done, chunk, origin);
      done += chunk;
    }
  }

  private writePageThroughHandlers(
    range: MemoryRange,
    page: number,
    address: number,
    buffer: Uint8Array,
    at: number,
    chunk: number,
    origin: AccessOrigin,
  ): void {
    if (range.handlerState[page]! < PageHandlerState.Write && range.pageType[page] !== PageType.SpecialAliasMmio) {
      this.copyToPage(range, page, address, buffer, at, chunk);
      return;
    }
    // Every handler intersecting the chunk is called once with exactly its bytes, in
    // address order; gaps between them are written directly. Look up afresh after each
    // callback: it may have changed the handlers.
    const table = this.table;
    let current = address;
    let position = at;
    let remaining = chunk;
    while (remaining > 0) {
      const index = table.lookup(current);
      let part: number;
      if (index >= 0) {
        part = Math.min(table.last[index]! - current + 1, remaining);
        table.callCount[index]! += 1;
        const result = this.types[table.typeIndex[index]!]!.onAccess(current, buffer, position, part, AccessType.Write, origin, table.user[index]);
        if (result === AccessResult.Default) this.copyToPage(range, page, current, buffer, position, part);
        else if (result !== AccessResult.Handled) throw this.badResult(result, current);
      } else {
        const next = table.lookupAtOrAbove(current);
        part = next >= 0 && table.start[next]! - current < remaining ? table.start[next]! - current : remaining;
        this.copyToPage(range, page, current, buffer, position, part);
      }
      current += part;
      position += part;
      remaining -= part;
    }
  }

  /** The plain write of a page chunk; dropped for ROM, MMIO, host-page aliases and removed ranges. */
  private copyToPage(range: MemoryRange, page: number, address: number, buffer: Uint8Array, at: number, chunk: number): void {
    if (range.removed) return;
    const type = range.pageType[page]!;
    if (type === PageType.Ram || type === PageType.Mmio2 || type === PageType.RomShadow) {
      copyTo(buffer, at, range.bytes!, address - range.start, chunk);
    } else if (type === PageType.Mmio2AliasMmio) {
      copyTo(buffer, at, range.aliases.get(page)!.bytes, address % PAGE_SIZE, chunk);
    }
  }

  private badResult(result: unknown, address: number): PgmError {
    return new PgmError(
      "ERR_PGM_INVALID_CALLBACK",
      `the access callback for ${hex(address)} returned ${String(result)}; expected AccessResult.Handled or AccessResult.Default`,
    );
  }

  // ---- internals: page state ----------------------------------------------------------------

  /**
   * Raises every page of a registered handler to its type's arm state (spec §3.2); pages
   * already at or above it are left alone. With a bitmap, sets the bit of each raised page.
   */
  private arm(index: number, bitmap: Uint8Array | null, bitOffset: number): PgmStatus {
    const table = this.table;
    const type = this.types[table.typeIndex[index]!]!;
    const armState = type.armState;
    const notInEngine = type.flags & HandlerTypeFlags.NotInEngine ? 1 : 0;
    const start = table.start[index]!;
    const range = this.findRange(start)!;
    const firstPage = range.pageIndex(start);
    const count = range.pageIndex(table.last[index]!) - firstPage + 1;
    let flushAll = false;
    let resyncPending = false;
    for (let i = 0; i < count; i++) {
      const page = firstPage + i;
      if (range.handlerState[page]! >= armState) continue;
      range.setPageState(page, range.pageType[page]!, armState);
      range.setNotInEngine(page, notInEngine);
      const answer = this.raised(range, page);
      if (answer & 1) flushAll = true;
      if (answer & 2) resyncPending = true;
      this.notifyProtection(range, page);
      if (bitmap !== null) {
        const bit = bitOffset + i;
        bitmap[bit >>> 3]! |= 1 << (bit & 7);
      }
    }
    if (flushAll) this.paging?.flushAllTlbs();
    return resyncPending ? "OK_SHADOW_RESYNC_PENDING" : "OK";
  }

  /** Tells the paging side a page got stricter; answers flushAll (1) | resyncPending (2). */
  private raised(range: MemoryRange, page: number): number {
    this.raisedCount++;
    const answer = this.paging?.pageStateRaised(range.pageAddress(page));
    if (!answer) return 0;
    return (answer.flushAll ? 1 : 0) | (answer.resyncPending ? 2 : 0);
  }

  /**
   * Disarms the pages of a handler already taken out of the lookup (spec §3.3): aliases are
   * restored, pages no other handler touches go to NONE, and the edge pages it shared with
   * neighbours get the neighbours' maximum arm state (the edge recalculation of §3.4).
   */
  private disarm(index: number): void {
    const table = this.table;
    const start = table.start[index]!;
    const range = this.findRange(start)!;
    const firstPage = range.pageIndex(start);
    const lastPage = range.pageIndex(table.last[index]!);
    for (let page = firstPage; page <= lastPage; page++) {
      let notified = false;
      if (isAliasType(range.pageType[page]!)) {
        this.restoreAlias(range, page, false);
        notified = true;
      }
      const edge = page === firstPage || page === lastPage;
      const state = edge ? this.armStateOfPage(range.pageAddress(page)) : PageHandlerState.None;
      const before = range.handlerState[page]!;
      // Only sub-page write handlers share pages, and they never have the flag.
      range.setNotInEngine(page, 0);
      if (before === state) continue;
      range.setPageState(page, range.pageType[page]!, state);
      if (state > before) this.raiseAfterRecalculation(range, page);
      if (!notified || state !== PageHandlerState.None) this.notifyProtection(range, page);
    }
    table.tmpOffCount[index] = 0;
    table.aliasedCount[index] = 0;
  }

  private raiseAfterRecalculation(range: MemoryRange, page: number): void {
    if (this.raised(range, page) & 1) this.paging?.flushAllTlbs();
  }

  private armStateOfPage(pageAddress: number): number {
    return maxArmStateOnPage(this.table, pageAddress, this.armStateOfRecord);
  }

  private readonly armStateOfRecord = (index: number): number => this.types[this.table.typeIndex[index]!]!.armState;

  /** Restores an aliased page to plain MMIO under its handler (spec §4.19). */
  private restoreAlias(range: MemoryRange, page: number, invalidateAll: boolean): void {
    const pageAddress = range.pageAddress(page);
    const old = range.aliases.get(page);
    range.aliases.delete(page);
    // The page goes from direct access back to trapping: drop cached views eagerly.
    this.raiseAfterRecalculation(range, page);
    range.setPageState(page, PageType.Mmio, PageHandlerState.All);
    range.setAllocState(page, PageAllocState.Zero);
    this.paging?.invalidatePageMapping(pageAddress);
    if (invalidateAll) this.paging?.invalidateAllPhysicalTlbs();
    if (this.engine) {
      const answer = this.engine.pageBackingChanged(pageAddress, old?.bytes ?? null, null, PageProtection.None, PageType.Mmio);
      if (typeof answer === "number") range.setEngineState(page, answer);
    }
  }

  /** Before an MMIO2 range goes away: restores every page aliased to it, keeping handler counters true. */
  private restoreAliasesOf(region: MemoryRange): void {
    for (const range of this.sortedRanges) {
      for (const [page, alias] of [...range.aliases]) {
        if (alias.region !== region) continue;
        this.restoreAlias(range, page, true);
        const index = this.table.lookup(range.pageAddress(page));
        if (index >= 0) this.table.aliasedCount[index]! -= 1;
      }
    }
  }

  private aliasablePage(start: number, pageAddress: number): { range: MemoryRange; page: number } {
    const index = this.handlerStartingAt(start);
    const table = this.table;
    const last = table.last[index]!;
    if (!(pageAddress >= start && pageAddress <= last)) {
      throw new PgmError("ERR_PGM_PAGE_OUTSIDE_HANDLER", `page ${hex(pageAddress)} is outside ${this.describeHandler(index)}`);
    }
    if (this.types[table.typeIndex[index]!]!.kind !== HandlerKind.Mmio) {
      throw new PgmError("ERR_PGM_WRONG_KIND", `${this.describeHandler(index)} is not an MMIO handler; only MMIO pages can be aliased`);
    }
    if (start % PAGE_SIZE !== 0 || (last + 1) % PAGE_SIZE !== 0) {
      throw new PgmError("ERR_PGM_NOT_PAGE_ALIGNED", `${this.describeHandler(index)} does not cover whole pages`);
    }
    const range = this.findRange(pageAddress)!;
    return { range, page: range.pageIndex(pageAddress) };
  }

  private aliasPage(index: number, range: MemoryRange, page: number, type: PageType, alias: { bytes: Uint8Array; region: MemoryRange | null; regionPage: number }): void {
    range.aliases.set(page, alias);
    range.setPageState(page, type, PageHandlerState.Disabled);
    range.setAllocState(page, PageAllocState.Allocated);
    this.table.aliasedCount[index]! += 1;
    const pageAddress = range.pageAddress(page);
    this.paging?.invalidatePageMapping(pageAddress);
    if (this.engine) {
      const answer = this.engine.pageBackingChanged(pageAddress, null, alias.bytes, range.protection(page), type);
      if (typeof answer === "number") range.setEngineState(page, answer);
    }
  }

  private assertAliasingSupported(): void {
    if (this.engine?.simplifiedMemoryMode === true) {
      throw new PgmError("ERR_PGM_NOT_SUPPORTED_IN_NEM_MODE", "the attached engine runs in simplified memory mode, which cannot alias pages");
    }
  }

  private notifyProtection(range: MemoryRange, page: number): void {
    if (this.engine === null) return;
    const answer = this.engine.pageProtectionChanged(range.pageAddress(page), range.backing(page), range.protection(page), range.pageType[page]! as PageType);
    if (typeof answer === "number") range.setEngineState(page, answer);
  }

  /** Tells the engine which whole pages a removed handler freed (spec §3.5 range adjustment). */
  private notifyDeregistered(kind: HandlerKind, start: number, last: number): void {
    if (this.engine === null) return;
    let first = start;
    let final = last;
    if (first % PAGE_SIZE !== 0) first = this.pageHasHandler(first) ? pageOf(first) + PAGE_SIZE : pageOf(first);
    if ((final + 1) % PAGE_SIZE !== 0) final = this.pageHasHandler(final) ? pageOf(final) - 1 : pageOf(final) + PAGE_SIZE - 1;
    if (first > final) return;
    const range = this.findRange(start)!;
    const backing = range.bytes === null ? null : range.bytes.subarray(first - range.start, final + 1 - range.start);
    const answer = this.engine.handlerDeregistered(kind, first, final - first + 1, backing);
    if (typeof answer !== "number") return;
    for (let page = range.pageIndex(first); page <= range.pageIndex(final); page++) range.setEngineState(page, answer);
  }

  private pageHasHandler(address: number): boolean {
    const range = this.findRange(address)!;
    return range.handlerState[range.pageIndex(address)] !== PageHandlerState.None;
  }

  /** Takes a registered record out of the lookup and disarms it; the record stays allocated. */
  private deregisterRecord(index: number): void {
    const table = this.table;
    const start = table.start[index]!;
    const last = table.last[index]!;
    if (!table.remove(index)) throw this.corruption(index);
    this.disarm(index);
    this.notifyDeregistered(this.types[table.typeIndex[index]!]!.kind as HandlerKind, start, last);
    table.clearCache();
    table.start[index] = NIL_ADDRESS;
    table.last[index] = NIL_ADDRESS;
  }

  private recountDisabledPages(index: number): void {
    const table = this.table;
    const range = this.findRange(table.start[index]!)!;
    let disabled = 0;
    let aliased = 0;
    for (let page = range.pageIndex(table.start[index]!); page <= range.pageIndex(table.last[index]!); page++) {
      if (isAliasType(range.pageType[page]!)) aliased++;
      else if (range.handlerState[page] === PageHandlerState.Disabled) disabled++;
    }
    table.tmpOffCount[index] = disabled;
    table.aliasedCount[index] = aliased;
  }

  // ---- internals: handlers --------------------------------------------------------------------

  private resolveUserType(type: unknown): number {
    if (typeof type === "number" && Number.isSafeInteger(type) && type > 0) {
      const index = type % TYPE_INDEX_SPAN;
      if ((type - index) / TYPE_INDEX_SPAN === this.typeSalt && index < this.userTypeCount) return index;
    }
    throw new PgmError("ERR_PGM_INVALID_TYPE_HANDLE", `${String(type)} is not a handler type registered with this PhysicalMemory`);
  }

  private allocateHandler(typeIndex: number, user: unknown, description: string): HandlerId {
    const index = this.table.allocate();
    if (index < 0) throw this.outOfHandlers(`create a handler "${description}"`);
    this.table.typeIndex[index] = typeIndex;
    this.table.user[index] = user;
    this.table.description[index] = description;
    return this.table.idOf(index) as HandlerId;
  }

  private outOfHandlers(what: string): PgmError {
    return new PgmError("ERR_PGM_OUT_OF_HANDLERS", `cannot ${what}: all ${this.table.capacity} handler records are in use (handlerCapacity)`);
  }

  private recordOf(handler: HandlerId): number {
    const index = this.table.indexOfId(handler);
    if (index < 0) throw new PgmError("ERR_PGM_NOT_FOUND", `handler id ${String(handler)} does not exist (never created, or destroyed)`);
    return index;
  }

  private handlerStartingAt(start: number): number {
    const index = typeof start === "number" ? this.table.exact(start) : -1;
    if (index < 0) {
      const inside = typeof start === "number" ? this.table.lookup(start) : -1;
      const hint = inside >= 0 ? ` (${hex(start)} is inside ${this.describeHandler(inside)}; pass its start)` : "";
      throw new PgmError("ERR_PGM_NOT_FOUND", `no handler starts at ${typeof start === "number" ? hex(start) : String(start)}${hint}`);
    }
    return index;
  }

  private assertNotOwned(index: number, operation: string): void {
    if (this.table.owned[index] === 1) {
      const range = this.table.user[index] as MemoryRange;
      throw new PgmError("ERR_PGM_WRONG_KIND", `cannot ${operation} ${this.describeHandler(index)}: range "${range.description}" owns it; remove the range instead`);
    }
  }

  private requiresFullPages(typeIndex: number): boolean {
    const type = this.types[typeIndex]!;
    return type.kind !== HandlerKind.Write || (type.flags & HandlerTypeFlags.NotInEngine) !== 0;
  }

  /** Register's range rules 3–6 (spec §4.3); returns the range the handler lies in. */
  private validateHandlerRange(typeIndex: number, start: number, last: number, description: string): MemoryRange {
    const where = `"${description}" at ${hex(start)}-${hex(last)}`;
    if (!Number.isInteger(start) || !Number.isInteger(last) || start < 0 || last > MAX_PHYSICAL_ADDRESS || start >= last || last - start >= MAX_RANGE_SIZE) {
      throw new PgmError("ERR_PGM_INVALID_RANGE", `${where}: a handler needs start < last within 2^52 bytes and below 4 GiB in size`);
    }
    if (this.requiresFullPages(typeIndex) && (start % PAGE_SIZE !== 0 || (last + 1) % PAGE_SIZE !== 0)) {
      throw new PgmError("ERR_PGM_NOT_PAGE_ALIGNED", `${where}: ${KIND_NAMES[this.types[typeIndex]!.kind]} handlers of this type must cover whole pages`);
    }
    const range = this.findRange(start);
    if (range === undefined) throw new PgmError("ERR_PGM_NO_RAM_RANGE", `${where}: ${hex(start)} is not in any range`);
    if (last > range.lastAddress) {
      throw new PgmError("ERR_PGM_NO_RAM_RANGE", `${where}: ends beyond "${range.description}" (${hex(range.start)}-${hex(range.lastAddress)})`);
    }
    if (this.types[typeIndex]!.kind === HandlerKind.Mmio) {
      for (let page = range.pageIndex(start); page <= range.pageIndex(last); page++) {
        const type = range.pageType[page]!;
        if (type !== PageType.Mmio && !isAliasType(type)) {
          throw new PgmError("ERR_PGM_WRONG_PAGE_TYPE", `${where}: MMIO handlers go over MMIO pages, and ${hex(range.pageAddress(page))} is ${range.kind}`);
        }
      }
    }
    return range;
  }

  private pageCountOf(index: number): number {
    const start = this.table.start[index]!;
    return Math.floor((this.table.last[index]! - pageOf(start)) / PAGE_SIZE) + 1;
  }

  private info(index: number): HandlerInfo {
    const table = this.table;
    const registered = table.start[index] !== NIL_ADDRESS;
    const typeIndex = table.typeIndex[index]!;
    return {
      id: table.idOf(index) as HandlerId,
      type: (this.typeSalt * TYPE_INDEX_SPAN + typeIndex) as HandlerTypeHandle,
      kind: this.types[typeIndex]!.kind as HandlerKind,
      registered,
      start: table.start[index]!,
      last: table.last[index]!,
      pageCount: registered ? this.pageCountOf(index) : 0,
      tmpOffCount: table.tmpOffCount[index]!,
      aliasedCount: table.aliasedCount[index]!,
      user: table.user[index],
      description: table.description[index]!,
      callCount: table.callCount[index]!,
      ownedByRange: table.owned[index] === 1,
    };
  }

  private describeHandler(index: number): string {
    const table = this.table;
    const start = table.start[index]!;
    const range = start === NIL_ADDRESS ? "(unregistered)" : `${hex(start)}-${hex(table.last[index]!)}`;
    return `${KIND_NAMES[this.types[table.typeIndex[index]!]!.kind]} handler "${table.description[index]}" ${range}`;
  }

  private corruption(index: number): PgmError {
    return new PgmError("ERR_PGM_INTERNAL", `the handler lookup does not match ${this.describeHandler(index)}`);
  }

  // ---- internals: ranges ----------------------------------------------------------------------

  private findRange(address: number): MemoryRange | undefined {
    const last = this.lastRange;
    if (address >= last.start && address <= last.lastAddress) return last;
    const ranges = this.sortedRanges;
    let low = 0;
    let high = ranges.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const range = ranges[middle]!;
      if (address < range.start) high = middle - 1;
      else if (address > range.lastAddress) low = middle + 1;
      else {
        this.lastRange = range;
        return range;
      }
    }
    return undefined;
  }

  /** The range containing `address`, else the first one above it. */
  private findRangeAtOrAbove(address: number): MemoryRange | undefined {
    const last = this.lastRange;
    if (address >= last.start && address <= last.lastAddress) return last;
    const ranges = this.sortedRanges;
    let low = 0;
    let high = ranges.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (ranges[middle]!.lastAddress < address) low = middle + 1;
      else high = middle - 1;
    }
    return ranges[low];
  }

  private insertWithOwnedHandler(range: MemoryRange, typeIndex: number): PhysicalRange {
    // Take the record first, so a full pool refuses the range before anything changes.
    const index = this.table.allocate();
    if (index < 0) {
      // The range never existed: its arena pages (if any) go back to unassigned.
      range.slow.fill(SLOW_READ | SLOW_WRITE);
      throw this.outOfHandlers(`add "${range.description}", which needs a handler`);
    }
    this.insert(range);
    const table = this.table;
    table.typeIndex[index] = typeIndex;
    table.user[index] = range;
    table.description[index] = range.description;
    table.owned[index] = 1;
    table.start[index] = range.start;
    table.last[index] = range.lastAddress;
    table.insert(index);
    range.ownedHandler = index;
    this.arm(index, null, 0);
    this.engine?.handlerRegistered(this.types[typeIndex]!.kind as HandlerKind, range.start, range.size);
    return range;
  }

  private checkAccess(address: number, length: number, verb: string): void {
    if (!Number.isInteger(address) || address < 0 || address + length - 1 > MAX_PHYSICAL_ADDRESS) {
      throw new PgmError("ERR_PGM_OUT_OF_RANGE", `cannot ${verb} ${length} bytes at ${hex(address)}: outside the physical address space`);
    }
  }

  private forEachBackedChunk(
    address: number,
    length: number,
    verb: string,
    visit: (bytes: Uint8Array, offset: number, position: number, length: number) => void,
  ): void {
    this.checkAccess(address, length, verb);
    // Validate everything first so a failure changes nothing.
    const chunks: [MemoryRange, number, number, number][] = [];
    let position = 0;
    while (position < length) {
      const current = address + position;
      const range = this.findRange(current);
      if (!range || !range.bytes) {
        throw new PgmError(
          "ERR_PGM_OUT_OF_RANGE",
          `cannot ${verb} ${length} bytes at ${hex(address)}: ${hex(current)} is ${range ? `MMIO (${range.description})` : "not RAM or ROM"}`,
        );
      }
      const chunk = Math.min(length - position, range.lastAddress - current + 1);
      chunks.push([range, current - range.start, position, chunk]);
      position += chunk;
    }
    for (const [range, offset, from, chunk] of chunks) visit(range.bytes!, offset, from, chunk);
  }

  private isUnassigned(address: number, size: number): boolean {
    for (let i = 1; i < size; i++) if (this.findRange(address + i)) return false;
    return true;
  }

  private backing(start: number, size: number): Uint8Array {
    if (start + size <= this.arena.length) return this.arena.subarray(start, start + size);
    return new Uint8Array(size);
  }

  /** The arena-wide fast-path bits of a range backed by the arena (same test as `backing`), else null. */
  private arenaSlowOf(start: number, size: number): Uint8Array | null {
    if (start + size > this.arena.length) return null;
    return this.arenaSlow.subarray(start / PAGE_SIZE, (start + size) / PAGE_SIZE);
  }

  private checkNewRange(start: number, size: number, description: string): void {
    if (!Number.isInteger(start) || !Number.isInteger(size) || size <= 0 || start < 0 || start + size - 1 > MAX_PHYSICAL_ADDRESS) {
      throw new PgmError("ERR_PGM_INVALID_RANGE", `invalid range "${description}": start ${hex(start)}, size ${hex(size)}`);
    }
    if (start % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0) {
      throw new PgmError("ERR_PGM_INVALID_RANGE", `range "${description}" at ${hex(start)} (size ${hex(size)}) is not page aligned`);
    }
    if (size > MAX_RANGE_SIZE) {
      throw new PgmError("ERR_PGM_INVALID_RANGE", `range "${description}" at ${hex(start)} is ${hex(size)} bytes; one range holds at most 4 GiB`);
    }
    const last = start + size - 1;
    for (const range of this.sortedRanges) {
      if (start <= range.lastAddress && last >= range.start) {
        throw new PgmError(
          "ERR_PGM_RANGE_OVERLAP",
          `range "${description}" ${hex(start)}-${hex(last)} overlaps "${range.description}" ${hex(range.start)}-${hex(range.lastAddress)}`,
        );
      }
    }
  }

  private insert(range: MemoryRange): PhysicalRange {
    let index = 0;
    while (index < this.sortedRanges.length && this.sortedRanges[index]!.start < range.start) index++;
    this.sortedRanges.splice(index, 0, range);
    for (const listener of this.listeners) listener.rangeAdded(range);
    return range;
  }
}

/** The MMIO handler of a range added with a device: turns buffer accesses into device calls of 4, 2 or 1 bytes. */
function deviceAccess(
  address: number,
  buffer: Uint8Array,
  offset: number,
  size: number,
  accessType: AccessType,
  _origin: AccessOrigin,
  user: unknown,
): AccessResult {
  const range = user as MemoryRange;
  const device = range.device!;
  const base = address - range.start;
  for (let done = 0; done < size; ) {
    const part: AccessSize = size - done >= 4 ? 4 : size - done >= 2 ? 2 : 1;
    if (accessType === AccessType.Read) {
      const value = device.read(base + done, part);
      for (let i = 0; i < part; i++) buffer[offset + done + i] = value >>> (8 * i);
    } else {
      let value = 0;
      for (let i = 0; i < part; i++) value |= buffer[offset + done + i]! << (8 * i);
      device.write(base + done, value >>> 0, part);
    }
    done += part;
  }
  return AccessResult.Handled;
}

function copyFrom(source: Uint8Array, from: number, target: Uint8Array, to: number, length: number): void {
  if (length <= 16) for (let i = 0; i < length; i++) target[to + i] = source[from + i]!;
  else target.set(source.subarray(from, from + length), to);
}

function copyTo(source: Uint8Array, from: number, target: Uint8Array, to: number, length: number): void {
  copyFrom(source, from, target, to, length);
}

/**
 * For tests of the consistency checker only (not exported from the package): forces a
 * page's handler state and not-in-engine bit behind the handlers' back.
 */
export function corruptPageForTesting(memory: PhysicalMemory, address: number, change: { handlerState?: number; notInEngine?: number }): void {
  const range = memory["findRange"](address)!;
  const page = range.pageIndex(address);
  if (change.handlerState !== undefined) range.setPageState(page, range.pageType[page]!, change.handlerState);
  if (change.notInEngine !== undefined) range.setNotInEngine(page, change.notInEngine);
}
