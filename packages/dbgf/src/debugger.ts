/**
 * The debugger facility's breakpoint manager (spec/dbgf.md): owners, int3 / hardware /
 * port-I/O / MMIO breakpoints, hit counting with trigger windows, dispatch to owners or to
 * the debugger, DR7, interrupt breakpoints and the debugger event stream.
 *
 * Layout: every breakpoint is a row of typed-array columns (records.ts); int3 breakpoints
 * are found through the L1/L2 index (int3-index.ts); ports through a 65 536-entry table.
 * The hit paths (onInt3Trap, checkPortIo, checkMmio, checkInstruction) take addresses as
 * numbers, allocate nothing until a hit triggers, and use bigint only in what they hand
 * to owners and hooks.
 */
import { DbgfError, hex } from "./errors.js";
import {
  DEBUG_EVENT_TYPE_COUNT,
  DebugEventType,
  type DebuggerEvent,
  EVENT_STACK_DEPTH,
  type EventStackEntry,
  type InterruptBreakpointConfig,
  MAX_EVENT_ARGS,
} from "./events.js";
import { DR7_FIXED, type GuestDebugContext, guestInstructionBreakpoint, guestIoBreakpoint, guestIoBreakpointBits, lengthEncoding } from "./hardware.js";
import { Int3Index, L1_SIZE } from "./int3-index.js";
import {
  BreakpointRecords,
  FLAG_AFTER,
  FLAG_BEFORE,
  FLAG_ENABLED,
  FLAG_WINDOW,
  hitWindow,
  KIND_HARDWARE,
  KIND_INT3,
  KIND_MMIO,
  KIND_PORT_IO,
  NO_OWNER,
} from "./records.js";
import { SlotPool } from "./slot-pool.js";
import {
  type BreakpointHandle,
  type BreakpointHitCallback,
  type BreakpointInfo,
  type BreakpointOptions,
  type DebuggerHost,
  HARDWARE_SLOT_COUNT,
  HardwareAccess,
  type HardwareBreakpointSize,
  type HitResult,
  type HitWhen,
  IoAccess,
  type IoBreakpointHitCallback,
  NIL,
  type OwnerCallbacks,
  type OwnerHandle,
  type SetResult,
  U64_MAX,
} from "./types.js";

/** Capacities (spec §1). Lower them to exercise exhaustion cheaply; chunk sizes are powers of two. */
export interface DebuggerOptions {
  /** Breakpoint records per chunk; default 65 536. */
  readonly breakpointChunkSize?: number;
  /** Breakpoint chunks; default 16 (1 048 576 breakpoints). */
  readonly breakpointChunks?: number;
  /** L2 tree nodes per chunk; default 65 536. */
  readonly nodeChunkSize?: number;
  /** L2 node chunks; default 16, so every breakpoint can be an int3 in a shared L1 slot. */
  readonly nodeChunks?: number;
  /** Owners; default 32 768. */
  readonly ownerCapacity?: number;
}

/** Result of the instruction and I/O checks (spec §8.4-§8.5). */
export type HardwareCheckResult =
  /** One of DBGF's slots matched: call {@link Debugger.processActiveHit}. */
  | { readonly kind: "dbgf"; readonly handle: BreakpointHandle }
  /** The guest's own debug registers matched: deliver #DB to the guest (DR6/DR7 already updated). */
  | { readonly kind: "guest-trap" }
  | { readonly kind: "none" };

/** Result of {@link Debugger.onDebugTrap}. */
export type DebugTrapResult =
  | { readonly kind: "dbgf"; readonly handle: BreakpointHandle }
  /** The single step DBGF asked for completed; stop the vCPU. */
  | { readonly kind: "stepped" }
  /** The #DB belongs to the guest. */
  | { readonly kind: "not-ours" };

/** What a hit check tells its caller. */
export type TrapResult = "not-ours" | HitResult;

/** Test and tool access to the tables (spec §6.7). */
export interface DebuggerIntrospection {
  /** Raw L1 entry i (0 before the table exists). */
  l1Entry(slot: number): number;
  /** In-order keys (`linear >> 16`) of the tree at L1 slot i; [] when it holds none. */
  treeKeys(slot: number): bigint[];
  l2NodesInUse(): number;
  /** Raw port-table entry (0 before the table exists). */
  portEntry(port: number): number;
  /** Presets a hit counter (tests). */
  setHits(handle: BreakpointHandle, hits: bigint): void;
  /** The vCPU's active breakpoint, or NIL. */
  activeBreakpoint(cpuId: number): BreakpointHandle;
  /** A copy of the vCPU's event stack, bottom first. */
  eventStack(cpuId: number): EventStackEntry[];
  /** Bytes held by DBGF's typed arrays (records, bitmaps, L1, L2, hash, port table). */
  tableBytes(): number;
  /** Checks every structural invariant of the tables; throws a DbgfError naming the first broken one. */
  verify(): void;
}

const DEFAULT_CHUNK_SIZE = 0x1_0000;
const DEFAULT_CHUNKS = 16;
const DEFAULT_OWNER_CAPACITY = 0x8000;

const TRIGGERED = 1;
const DISABLE_DUE = 2;
const HIT_FLAGS = FLAG_BEFORE | FLAG_AFTER;
const PORT_ENTRY = 0x1000_0000;
const INT3_OPCODE = 0xcc;
const MAX_INSTRUCTION_BYTES = 16;
/** x86-64 MAXPHYADDR: physical ranges must end below 2^52. */
const PHYSICAL_LIMIT = 2 ** 52;

const NONE: HardwareCheckResult = Object.freeze({ kind: "none" });
const GUEST_TRAP: HardwareCheckResult = Object.freeze({ kind: "guest-trap" });
const STEPPED: DebugTrapResult = Object.freeze({ kind: "stepped" });
const NOT_OURS: DebugTrapResult = Object.freeze({ kind: "not-ours" });

/** Lanes of the last address given to splitAddress (module scratch, so the hit path allocates nothing). */
let laneLow = 0;
let laneHigh = 0;

function splitAddress(address: bigint | number, what: string): void {
  if (typeof address === "number") {
    if (!(address >= 0 && address <= Number.MAX_SAFE_INTEGER && address % 1 === 0)) {
      throw new DbgfError("InvalidParameter", `${what} must be a non-negative integer below 2^53 (or a bigint), got ${String(address)}`);
    }
    laneLow = address >>> 0;
    laneHigh = (address - laneLow) / 0x1_0000_0000;
  } else {
    if (typeof address !== "bigint" || address < 0n || address > U64_MAX) {
      throw new DbgfError("InvalidParameter", `${what} must be a 64-bit unsigned address, got ${String(address)}`);
    }
    const value = Number(address);
    if (value <= Number.MAX_SAFE_INTEGER) {
      // One conversion and no bigint temporaries for every address below 2^53.
      laneLow = value >>> 0;
      laneHigh = (value - laneLow) / 0x1_0000_0000;
    } else {
      laneLow = Number(address & 0xffff_ffffn);
      laneHigh = Number(address >> 32n);
    }
  }
}

function checkThreshold(name: string, value: bigint): void {
  if (typeof value !== "bigint" || value < 0n || value > U64_MAX) throw new DbgfError("InvalidParameter", `${name} must be a bigint from 0 to 2^64-1, got ${String(value)}`);
}

function joinLanes(low: number, high: number): bigint {
  return high === 0 ? BigInt(low) : (BigInt(high) << 32n) | BigInt(low);
}

function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

function describeCallback(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : String(value);
}

interface ParsedOptions {
  owner: number;
  user: unknown;
  hasUser: boolean;
  flags: number;
  trigger: bigint;
  disable: bigint;
}

/**
 * The breakpoint manager of one VM. Construct it with the {@link DebuggerHost} hooks of
 * the machine; every call is synchronous and complete when it returns (all vCPUs have been
 * told).
 */
export class Debugger {
  /** Table introspection for tests and tools (spec §6.7). */
  readonly debug: DebuggerIntrospection;

  private readonly host: DebuggerHost;
  private readonly cpuCount: number;
  private readonly records: BreakpointRecords;
  private readonly index: Int3Index;
  private readonly ownerCapacity: number;
  private terminated = false;

  // Owners (lazy).
  private owners: SlotPool | null = null;
  private ownerHit: (BreakpointHitCallback | undefined)[] = [];
  private ownerIoHit: (IoBreakpointHitCallback | undefined)[] = [];
  private ownerRefs = new Uint32Array(0);

  // Hardware slots (spec §3.5).
  private readonly slotHandle = new Uint32Array(HARDWARE_SLOT_COUNT).fill(NIL);
  private readonly slotLow = new Uint32Array(HARDWARE_SLOT_COUNT);
  private readonly slotHigh = new Uint32Array(HARDWARE_SLOT_COUNT);
  private readonly slotType = new Uint8Array(HARDWARE_SLOT_COUNT);
  private readonly slotSize = new Uint8Array(HARDWARE_SLOT_COUNT);
  private readonly slotEnabled = new Uint8Array(HARDWARE_SLOT_COUNT);

  // Counters (spec §3.6).
  private enabledHw = 0;
  private enabledHwIo = 0;
  private enabledInt3 = 0;
  private armedPortIo = 0;
  private armedMmio = 0;

  /** Port → PORT_ENTRY | handle, or 0 (lazy, spec §7.1). */
  private portTable: Uint32Array | null = null;
  /** MMIO breakpoints, sorted by physical address; their ranges never overlap. */
  private readonly mmioHandles: number[] = [];

  // Per vCPU.
  private readonly stepping: Uint8Array;
  private readonly activeHandle: Uint32Array;
  /** The before-check of a BEFORE|AFTER I/O breakpoint waiting for its after-check (spec §7.2). */
  private readonly pendingHandle: Uint32Array;
  private readonly pendingAddress: Float64Array;
  private readonly pendingOutcome: Uint8Array;
  private readonly actionPending: Uint8Array;
  private readonly eventStacks: EventStackEntry[][];

  // Interrupt breakpoints and selectable events (spec §9).
  private readonly hardInterrupts = new Uint8Array(256);
  private readonly softInterrupts = new Uint8Array(256);
  private hardInterruptCount = 0;
  private softInterruptCount = 0;
  private readonly selectedEvents = new Uint8Array(DEBUG_EVENT_TYPE_COUNT);
  private selectedEventCount = 0;

  private readonly eventQueue: DebuggerEvent[] = [];
  /** The byte written to arm an int3 (the host must not keep the array). */
  private readonly int3Byte = Uint8Array.of(INT3_OPCODE);

  constructor(host: DebuggerHost, options: DebuggerOptions = {}) {
    const cpuCount = host.cpuCount;
    if (!Number.isInteger(cpuCount) || cpuCount < 1 || cpuCount > 4096) {
      throw new DbgfError("InvalidParameter", `host.cpuCount must be an integer from 1 to 4096, got ${String(cpuCount)}`);
    }
    if (host.cpuVendor !== "intel" && host.cpuVendor !== "amd" && host.cpuVendor !== "other") {
      throw new DbgfError("InvalidParameter", `host.cpuVendor must be "intel", "amd" or "other", got ${String(host.cpuVendor)}`);
    }
    const chunkSize = options.breakpointChunkSize ?? DEFAULT_CHUNK_SIZE;
    const chunks = options.breakpointChunks ?? DEFAULT_CHUNKS;
    const nodeChunkSize = options.nodeChunkSize ?? DEFAULT_CHUNK_SIZE;
    const nodeChunks = options.nodeChunks ?? DEFAULT_CHUNKS;
    const ownerCapacity = options.ownerCapacity ?? DEFAULT_OWNER_CAPACITY;
    for (const [name, value] of [
      ["breakpointChunkSize", chunkSize],
      ["nodeChunkSize", nodeChunkSize],
    ] as const) {
      if (!isPowerOfTwo(value) || value > DEFAULT_CHUNK_SIZE) throw new DbgfError("InvalidParameter", `${name} must be a power of two up to 65536, got ${String(value)}`);
    }
    for (const [name, value] of [
      ["breakpointChunks", chunks],
      ["nodeChunks", nodeChunks],
    ] as const) {
      if (!Number.isInteger(value) || value < 1 || value > DEFAULT_CHUNKS) throw new DbgfError("InvalidParameter", `${name} must be an integer from 1 to 16, got ${String(value)}`);
    }
    if (!Number.isInteger(ownerCapacity) || ownerCapacity < 1 || ownerCapacity > DEFAULT_OWNER_CAPACITY) {
      throw new DbgfError("InvalidParameter", `ownerCapacity must be an integer from 1 to 32768, got ${String(ownerCapacity)}`);
    }
    this.host = host;
    this.cpuCount = cpuCount;
    this.ownerCapacity = ownerCapacity;
    this.records = new BreakpointRecords(chunkSize, chunks);
    this.index = new Int3Index(this.records, nodeChunkSize, nodeChunks);
    this.stepping = new Uint8Array(cpuCount);
    this.activeHandle = new Uint32Array(cpuCount).fill(NIL);
    this.pendingHandle = new Uint32Array(cpuCount).fill(NIL);
    this.pendingAddress = new Float64Array(cpuCount);
    this.pendingOutcome = new Uint8Array(cpuCount);
    this.actionPending = new Uint8Array(cpuCount);
    this.eventStacks = Array.from({ length: cpuCount }, () => []);
    this.debug = this.createIntrospection();
  }

  // ---- owners (spec §2) -----------------------------------------------------------------

  /** Creates an owner; returns the lowest free owner handle. At least one callback is required. */
  createOwner(callbacks: OwnerCallbacks): OwnerHandle {
    this.alive();
    const hit = callbacks?.hit;
    const ioHit = callbacks?.ioHit;
    if ((hit !== undefined && typeof hit !== "function") || (ioHit !== undefined && typeof ioHit !== "function")) {
      throw new DbgfError("InvalidParameter", "owner callbacks hit and ioHit must be functions");
    }
    if (hit === undefined && ioHit === undefined) throw new DbgfError("InvalidParameter", "an owner needs a hit or an ioHit callback (or both)");
    if (this.owners === null) {
      this.owners = new SlotPool(this.ownerCapacity, 1, (capacity) => {
        this.ownerHit = new Array<BreakpointHitCallback | undefined>(capacity).fill(undefined);
        this.ownerIoHit = new Array<IoBreakpointHitCallback | undefined>(capacity).fill(undefined);
        this.ownerRefs = new Uint32Array(capacity);
      });
    }
    const owner = this.owners.allocate();
    if (owner < 0) throw new DbgfError("NoMoreOwnerHandles", `all ${this.ownerCapacity} owner handles are in use`);
    this.ownerHit[owner] = hit;
    this.ownerIoHit[owner] = ioHit;
    this.ownerRefs[owner] = 1;
    return owner;
  }

  /** Destroys an owner no breakpoint uses any more. */
  destroyOwner(owner: OwnerHandle): void {
    this.alive();
    this.liveOwnerOrThrow(owner);
    if (this.ownerRefs[owner]! > 1) {
      throw new DbgfError("OwnerBusy", `owner ${owner} is used by ${this.ownerRefs[owner]! - 1} breakpoint(s); clear them first`);
    }
    this.ownerHit[owner] = undefined;
    this.ownerIoHit[owner] = undefined;
    this.ownerRefs[owner] = 0;
    this.owners!.free(owner);
  }

  // ---- setting breakpoints (spec §4) --------------------------------------------------------

  /**
   * A software breakpoint at a linear address: 0xCC is written at the byte `cpuId`'s paging
   * maps it to (when enabled). Setting the same address again returns the existing one.
   */
  setInt3(cpuId: number, address: bigint, options: BreakpointOptions = {}): SetResult {
    this.alive();
    const parsed = this.parseOptions(options);
    this.checkCpu(cpuId);
    if (typeof address !== "bigint") throw new DbgfError("InvalidParameter", `int3 address must be a bigint, got ${String(address)}`);
    splitAddress(address, "int3 address");
    const low = laneLow;
    const high = laneHigh;
    this.index.ensure();
    const physical = this.translate(cpuId, address, low);
    const records = this.records;
    const existing = this.index.lookup(low, high);
    if (existing !== NIL) {
      if (records.physical[existing] !== physical) {
        throw new DbgfError(
          "AddressInUse",
          `int3 breakpoint ${existing} at ${hex(address)} patches physical ${hex(records.physical[existing]!)}; the address now maps to ${hex(physical)}`,
        );
      }
      if ((parsed.flags & FLAG_ENABLED) !== 0 && (records.flags[existing]! & FLAG_ENABLED) === 0) this.arm(existing);
      return { handle: existing, status: "already-exists" };
    }
    const alias = this.index.findPhysical(physical);
    if (alias !== NIL) {
      throw new DbgfError(
        "AddressInUse",
        `physical byte ${hex(physical)} (linear ${hex(address)}) is already patched by int3 breakpoint ${alias} at linear ${hex(joinLanes(records.addressLow[alias]!, records.addressHigh[alias]!))}`,
      );
    }
    const handle = this.allocate(KIND_INT3, parsed);
    records.addressLow[handle] = low;
    records.addressHigh[handle] = high;
    records.physical[handle] = physical;
    try {
      this.index.insert(handle, low, high);
    } catch (error) {
      this.free(handle);
      throw error;
    }
    this.index.addPhysical(handle);
    if ((parsed.flags & FLAG_ENABLED) !== 0) {
      try {
        this.arm(handle);
      } catch (error) {
        this.index.removePhysical(handle);
        this.index.remove(handle, low, high);
        this.free(handle);
        throw error;
      }
    }
    return { handle, status: "created" };
  }

  /**
   * A hardware breakpoint in the lowest free DR slot. `accessType` is the DR7 R/W encoding;
   * execute breakpoints have size 1. An identical one (address, type, size) is returned instead.
   */
  setHardware(address: bigint, accessType: HardwareAccess, size: HardwareBreakpointSize, options: BreakpointOptions = {}): SetResult {
    this.alive();
    if (size !== 1 && size !== 2 && size !== 4 && size !== 8) throw new DbgfError("InvalidParameter", `hardware breakpoint size must be 1, 2, 4 or 8, got ${String(size)}`);
    if (accessType !== 0 && accessType !== 1 && accessType !== 2 && accessType !== 3) {
      throw new DbgfError("InvalidParameter", `hardware breakpoint access type must be 0 (execute), 1 (write), 2 (I/O) or 3 (read/write), got ${String(accessType)}`);
    }
    if (accessType === HardwareAccess.Execute && size !== 1) throw new DbgfError("InvalidParameter", `an execute breakpoint must have size 1, got ${size}`);
    if (typeof address !== "bigint") throw new DbgfError("InvalidParameter", `hardware breakpoint address must be a bigint, got ${String(address)}`);
    splitAddress(address, "hardware breakpoint address");
    const low = laneLow;
    const high = laneHigh;
    const parsed = this.parseOptions(options);
    this.index.ensure();
    for (let slot = 0; slot < HARDWARE_SLOT_COUNT; slot++) {
      const existing = this.slotHandle[slot]!;
      if (existing === NIL || this.slotLow[slot] !== low || this.slotHigh[slot] !== high) continue;
      if (this.slotType[slot] !== accessType || this.slotSize[slot] !== size) continue;
      if ((parsed.flags & FLAG_ENABLED) !== 0 && (this.records.flags[existing]! & FLAG_ENABLED) === 0) this.arm(existing);
      return { handle: existing, status: "already-exists" };
    }
    const handle = this.allocate(KIND_HARDWARE, parsed);
    const slot = this.slotHandle.indexOf(NIL);
    if (slot < 0) {
      this.free(handle);
      throw new DbgfError("NoMoreBreakpointSlots", "all four hardware breakpoint slots (DR0-DR3) are in use");
    }
    const records = this.records;
    records.addressLow[handle] = low;
    records.addressHigh[handle] = high;
    records.access[handle] = accessType | (size << 2) | (slot << 8);
    this.slotLow[slot] = low;
    this.slotHigh[slot] = high;
    this.slotType[slot] = accessType;
    this.slotSize[slot] = size;
    this.slotEnabled[slot] = 0;
    this.slotHandle[slot] = handle;
    if ((parsed.flags & FLAG_ENABLED) !== 0) {
      try {
        this.arm(handle);
      } catch (error) {
        this.freeSlot(slot);
        this.free(handle);
        throw error;
      }
    }
    return { handle, status: "created" };
  }

  /** Emulator-only breakpoints no longer exist in the reference; always NotSupported (spec §4.4). */
  setRem(): never {
    this.alive();
    throw new DbgfError("NotSupported", "REM (emulator-only) breakpoints are not supported; use setInt3 or setHardware");
  }

  /**
   * A port-I/O breakpoint on ports `port … port + count − 1` (the range may end at 0xFFFF).
   * `access` is IoAccess bits within 0x0707. One breakpoint per port.
   */
  setPortIo(port: number, count: number, access: number, options: BreakpointOptions = {}): SetResult {
    this.alive();
    const parsed = this.parseOptions(options);
    if (!Number.isInteger(access) || access === 0 || (access & ~IoAccess.PortIoMask) !== 0) {
      throw new DbgfError("InvalidFlags", `port-I/O access must be a non-zero combination of the bits 0x0707, got ${hex(Number(access))}`);
    }
    if (parsed.flags === 0) throw new DbgfError("InvalidFlags", "a port-I/O breakpoint needs at least one flag");
    if (!Number.isInteger(port) || port < 0) throw new DbgfError("InvalidParameter", `port must be an integer from 0 to 0xffff, got ${String(port)}`);
    if (!Number.isInteger(count)) throw new DbgfError("InvalidParameter", `port count must be an integer, got ${String(count)}`);
    if (count < 1 || port + count - 1 > 0xffff) {
      throw new DbgfError("OutOfRange", `port range ${hex(port)} + ${count} ports must hold at least one port and end at or below 0xffff`);
    }
    this.index.ensure();
    const table = (this.portTable ??= new Uint32Array(0x1_0000));
    const records = this.records;
    for (let p = port; p < port + count; p++) {
      const entry = table[p]!;
      if (entry === 0) continue;
      const other = entry & 0x0fff_ffff;
      if (records.addressLow[other] === port && records.addressHigh[other] === count && records.access[other] === access) {
        if ((parsed.flags & FLAG_ENABLED) !== 0 && (records.flags[other]! & FLAG_ENABLED) === 0) this.arm(other);
        return { handle: other, status: "already-exists" };
      }
      const otherPort = records.addressLow[other]!;
      throw new DbgfError(
        "PortRangeBusy",
        `port ${hex(p)} of ${hex(port)}-${hex(port + count - 1)} already has port-I/O breakpoint ${other} (${hex(otherPort)}-${hex(otherPort + records.addressHigh[other]! - 1)})`,
      );
    }
    const handle = this.allocate(KIND_PORT_IO, parsed);
    records.addressLow[handle] = port;
    records.addressHigh[handle] = count;
    records.access[handle] = access;
    table.fill(PORT_ENTRY | handle, port, port + count);
    if ((parsed.flags & FLAG_ENABLED) !== 0) {
      try {
        this.arm(handle);
      } catch (error) {
        table.fill(0, port, port + count);
        this.free(handle);
        throw error;
      }
    }
    return { handle, status: "created" };
  }

  /**
   * An MMIO breakpoint on guest-physical bytes `physicalAddress … + size − 1` (below 2^52);
   * `access` is IoAccess bits within 0x1F1F. While armed, the host routes every access to
   * the range through {@link checkMmio}. Ranges of different breakpoints do not overlap.
   */
  setMmio(physicalAddress: bigint, size: number, access: number, options: BreakpointOptions = {}): SetResult {
    this.alive();
    const parsed = this.parseOptions(options);
    if (!Number.isInteger(access) || access === 0 || (access & ~IoAccess.MmioMask) !== 0) {
      throw new DbgfError("InvalidFlags", `MMIO access must be a non-zero combination of the bits 0x1f1f, got ${hex(Number(access))}`);
    }
    if (parsed.flags === 0) throw new DbgfError("InvalidFlags", "an MMIO breakpoint needs at least one flag");
    if (typeof physicalAddress !== "bigint" || physicalAddress < 0n) {
      throw new DbgfError("InvalidParameter", `MMIO physical address must be a non-negative bigint, got ${String(physicalAddress)}`);
    }
    if (!Number.isInteger(size) || size < 0 || size > 0xffff_ffff) throw new DbgfError("InvalidParameter", `MMIO size must be a 32-bit unsigned integer, got ${String(size)}`);
    if (size === 0 || physicalAddress + BigInt(size) > BigInt(PHYSICAL_LIMIT)) {
      throw new DbgfError("OutOfRange", `MMIO range ${hex(physicalAddress)} + ${hex(size)} must hold at least one byte and end below 2^52`);
    }
    const start = Number(physicalAddress);
    const end = start + size - 1;
    this.index.ensure();
    const records = this.records;
    for (const other of this.mmioHandles) {
      const otherStart = records.physical[other]!;
      const otherSize = records.addressLow[other]!;
      if (otherStart > end || otherStart + otherSize - 1 < start) continue;
      if (otherStart === start && otherSize === size && records.access[other] === access) {
        if ((parsed.flags & FLAG_ENABLED) !== 0 && (records.flags[other]! & FLAG_ENABLED) === 0) this.arm(other);
        return { handle: other, status: "already-exists" };
      }
      throw new DbgfError(
        "MmioRangeBusy",
        `MMIO range ${hex(start)}-${hex(end)} overlaps MMIO breakpoint ${other} (${hex(otherStart)}-${hex(otherStart + otherSize - 1)})`,
      );
    }
    const handle = this.allocate(KIND_MMIO, parsed);
    records.physical[handle] = start;
    records.addressLow[handle] = size;
    records.access[handle] = access;
    const position = this.mmioPosition(start);
    this.mmioHandles.splice(position, 0, handle);
    if ((parsed.flags & FLAG_ENABLED) !== 0) {
      try {
        this.arm(handle);
      } catch (error) {
        this.mmioHandles.splice(position, 1);
        this.free(handle);
        throw error;
      }
    }
    return { handle, status: "created" };
  }

  // ---- enable / disable / clear / enumerate (spec §4.8-§4.9) ------------------------------

  enable(handle: BreakpointHandle): "ok" | "already-enabled" {
    this.alive();
    this.liveHandleOrThrow(handle);
    if ((this.records.flags[handle]! & FLAG_ENABLED) !== 0) return "already-enabled";
    this.arm(handle);
    return "ok";
  }

  disable(handle: BreakpointHandle): "ok" | "already-disabled" {
    this.alive();
    this.liveHandleOrThrow(handle);
    if ((this.records.flags[handle]! & FLAG_ENABLED) === 0) return "already-disabled";
    this.disarm(handle, false);
    return "ok";
  }

  /**
   * Removes a breakpoint: disarms it (a failure to restore guest memory is reported to
   * host.warn and does not stop the clear), unlinks it and frees its handle.
   */
  clear(handle: BreakpointHandle): void {
    this.alive();
    this.liveHandleOrThrow(handle);
    const records = this.records;
    if ((records.flags[handle]! & FLAG_ENABLED) !== 0) this.disarm(handle, true);
    switch (records.kind[handle]) {
      case KIND_HARDWARE:
        this.freeSlot(records.access[handle]! >>> 8);
        break;
      case KIND_INT3:
        this.index.removePhysical(handle);
        this.index.remove(handle, records.addressLow[handle]!, records.addressHigh[handle]!);
        break;
      case KIND_PORT_IO: {
        const port = records.addressLow[handle]!;
        this.portTable!.fill(0, port, port + records.addressHigh[handle]!);
        break;
      }
      case KIND_MMIO:
        this.mmioHandles.splice(this.mmioHandles.indexOf(handle), 1);
        break;
    }
    this.free(handle);
  }

  /**
   * Calls `callback` with a snapshot of every breakpoint, in ascending handle order. Returns
   * "stop" when the callback did.
   */
  enumerate(callback: (handle: BreakpointHandle, info: BreakpointInfo) => "stop" | void): "ok" | "stop" {
    this.alive();
    for (let handle = 0; handle < this.records.capacity; handle++) {
      if (!this.records.isLive(handle)) continue;
      if (callback(handle, this.info(handle)) === "stop") return "stop";
    }
    return "ok";
  }

  /** A snapshot of one breakpoint. */
  get(handle: BreakpointHandle): BreakpointInfo {
    this.alive();
    this.liveHandleOrThrow(handle);
    return this.info(handle);
  }

  /** Number of live breakpoints of every type. */
  get breakpointCount(): number {
    return this.records.pool.inUse;
  }

  // ---- int3 hits (spec §5.3-§5.4) ----------------------------------------------------------

  /**
   * The int3 breakpoint at a linear address (enabled or not), or NIL. A number address must
   * be below 2^53; then nothing is allocated.
   */
  lookupInt3(address: bigint | number): BreakpointHandle {
    this.alive();
    splitAddress(address, "address");
    return this.index.lookup(laneLow, laneHigh);
  }

  /**
   * A #BP from a one-byte 0xCC at `pc` (the address of the 0xCC itself) on `cpuId`.
   * "not-ours": deliver #BP to the guest. Otherwise the hit has been counted and dispatched:
   * "resume" (the guarded instruction has been executed when the hit triggered an owner or
   * was silent) or "halt" (the vCPU stops; see {@link resume}).
   */
  onInt3Trap(cpuId: number, pc: bigint | number): TrapResult {
    this.alive();
    this.checkCpu(cpuId);
    splitAddress(pc, "pc");
    const low = laneLow;
    const high = laneHigh;
    const handle = this.index.lookup(low, high);
    if (handle === NIL || (this.records.flags[handle]! & FLAG_ENABLED) === 0) return "not-ours";
    return this.processExecution(cpuId, handle, low, high, true, true);
  }

  /**
   * Lets a stopped vCPU continue. If it stopped at an enabled int3 or execute-type hardware
   * breakpoint and `pc` is still that address, the guarded instruction is executed once first
   * ("stepped-over"), so the breakpoint does not fire again at once. Also ends the vCPU's
   * current debug event (spec §9.3).
   */
  resume(cpuId: number, pc: bigint | number): "stepped-over" | "continue" {
    this.alive();
    this.checkCpu(cpuId);
    splitAddress(pc, "pc");
    const low = laneLow;
    const high = laneHigh;
    const handle = this.activeHandle[cpuId]!;
    this.activeHandle[cpuId] = NIL;
    this.actionPending[cpuId] = 0;
    for (const entry of this.eventStacks[cpuId]!) if (entry.state === "current") entry.state = "ignore";
    if (handle === NIL || !this.records.isLive(handle)) return "continue";
    const records = this.records;
    if ((records.flags[handle]! & FLAG_ENABLED) === 0) return "continue";
    const kind = records.kind[handle];
    const executes = kind === KIND_INT3 || (kind === KIND_HARDWARE && (records.access[handle]! & 3) === HardwareAccess.Execute);
    if (!executes || records.addressLow[handle] !== low || records.addressHigh[handle] !== high) return "continue";
    this.executeGuarded(cpuId, low, high, kind === KIND_INT3, records.originalByte[handle]!);
    return "stepped-over";
  }

  // ---- hardware breakpoints (spec §8) -----------------------------------------------------

  /** DR7 for DBGF's slots: 0x2700 plus G_i, R/W_i and LEN_i of every enabled slot. */
  getDr7(): number {
    this.alive();
    let dr7 = DR7_FIXED;
    for (let slot = 0; slot < HARDWARE_SLOT_COUNT; slot++) {
      if (this.slotHandle[slot] === NIL || this.slotEnabled[slot] === 0) continue;
      dr7 |= 1 << (2 * slot + 1);
      dr7 |= this.slotType[slot]! << (16 + 4 * slot);
      dr7 |= lengthEncoding(this.slotSize[slot]!) << (18 + 4 * slot);
    }
    return dr7 >>> 0;
  }

  /** DR0-DR3: the slot's address, enabled or not; 0n for a free slot. */
  getDr(slot: number): bigint {
    this.alive();
    if (!Number.isInteger(slot) || slot < 0 || slot >= HARDWARE_SLOT_COUNT) throw new DbgfError("InvalidParameter", `there is no DR${String(slot)}; slots are 0-3`);
    return this.slotHandle[slot] === NIL ? 0n : joinLanes(this.slotLow[slot]!, this.slotHigh[slot]!);
  }

  /** Some hardware slot is enabled: load DBGF's DR0-DR3/DR7. */
  isHwArmed(): boolean {
    return this.enabledHw > 0;
  }

  /** Some enabled hardware slot has the I/O type. */
  isHwIoArmed(): boolean {
    return this.enabledHwIo > 0;
  }

  /** Some int3 breakpoint is armed: intercept #BP. */
  isInt3Armed(): boolean {
    return this.enabledInt3 > 0;
  }

  /** Some port-I/O breakpoint is armed: call checkPortIo around port accesses. */
  isPortIoArmed(): boolean {
    return this.armedPortIo > 0;
  }

  /** Some MMIO breakpoint is armed. */
  isMmioArmed(): boolean {
    return this.armedMmio > 0;
  }

  /**
   * The instruction-boundary check (spec §8.4): DBGF's execute slots first, then the
   * guest's. Call it before executing the instruction at `pc` when {@link isHwArmed} or the
   * guest's DR7 enables a breakpoint.
   */
  checkInstruction(cpuId: number, context: GuestDebugContext, pc: bigint | number): HardwareCheckResult {
    this.alive();
    this.checkCpu(cpuId);
    splitAddress(pc, "pc");
    if (this.enabledHw > 0) {
      for (let slot = 0; slot < HARDWARE_SLOT_COUNT; slot++) {
        const handle = this.slotHandle[slot]!;
        if (handle === NIL || this.slotEnabled[slot] === 0 || this.slotType[slot] !== HardwareAccess.Execute || this.slotSize[slot] !== 1) continue;
        if (this.slotLow[slot] !== laneLow || this.slotHigh[slot] !== laneHigh) continue;
        return this.detectHardware(cpuId, handle);
      }
    }
    if ((context.dr7 & 0xff) === 0) return NONE;
    return guestInstructionBreakpoint(context, joinLanes(laneLow, laneHigh), this.host.cpuVendor) ? GUEST_TRAP : NONE;
  }

  /** The port-access check (spec §8.5) for `[port, port + size − 1]`: DBGF's I/O slots, then the guest's. */
  checkIo(cpuId: number, context: GuestDebugContext, port: number, size: number): HardwareCheckResult {
    this.alive();
    this.checkCpu(cpuId);
    this.checkPortAccess(port, size);
    const handle = this.dbgfIoSlot(port, size);
    if (handle !== NIL) return this.detectHardware(cpuId, handle);
    return guestIoBreakpoint(context, port, size) ? GUEST_TRAP : NONE;
  }

  /**
   * The reporting variant (spec §8.6): 0x4000_0000 for a DBGF match (recorded as the active
   * breakpoint), else the matched guest I/O slots in bits 25-28, else 0. DR6/DR7 unchanged.
   */
  checkIo2(cpuId: number, context: GuestDebugContext, port: number, size: number): number {
    this.alive();
    this.checkCpu(cpuId);
    this.checkPortAccess(port, size);
    const handle = this.dbgfIoSlot(port, size);
    if (handle !== NIL) {
      this.detectHardware(cpuId, handle);
      return 0x4000_0000;
    }
    return guestIoBreakpointBits(context, port, size);
  }

  /** A #DB with DBGF's debug registers loaded (spec §8.7): whose is it? */
  onDebugTrap(cpuId: number, dr6: number): DebugTrapResult {
    this.alive();
    this.checkCpu(cpuId);
    if ((dr6 & 0xf) !== 0 && this.enabledHw > 0) {
      for (let slot = 0; slot < HARDWARE_SLOT_COUNT; slot++) {
        if ((dr6 & (1 << slot)) !== 0 && this.slotHandle[slot] !== NIL) return this.detectHardware(cpuId, this.slotHandle[slot]!);
      }
    }
    if ((dr6 & 0x4000) !== 0 && this.stepping[cpuId] !== 0) {
      this.stepping[cpuId] = 0;
      this.eventQueue.push({ kind: "stepped", cpuId });
      return STEPPED;
    }
    return NOT_OURS;
  }

  /**
   * Counts and dispatches the hardware hit a check just detected on `cpuId` (spec §5.3).
   * Execute breakpoints run the instruction once when the owner resumes; data and I/O
   * breakpoints (traps, the access already happened) call the owner once with "after".
   */
  processActiveHit(cpuId: number): HitResult {
    this.alive();
    this.checkCpu(cpuId);
    const handle = this.activeHandle[cpuId]!;
    const records = this.records;
    if (handle === NIL || !records.isLive(handle) || records.kind[handle] !== KIND_HARDWARE) {
      throw new DbgfError("BreakpointNotFound", `vCPU ${cpuId} has no detected hardware breakpoint hit to process`);
    }
    const executes = (records.access[handle]! & 3) === HardwareAccess.Execute;
    const result = this.processExecution(cpuId, handle, records.addressLow[handle]!, records.addressHigh[handle]!, executes, false);
    if (result === "resume") this.activeHandle[cpuId] = NIL;
    return result;
  }

  /** Single-stepping flag of a vCPU (spec §8.8); port-I/O and MMIO breakpoints do not fire while set. */
  setStepping(cpuId: number, stepping: boolean): void {
    this.alive();
    this.checkCpu(cpuId);
    this.stepping[cpuId] = stepping ? 1 : 0;
  }

  isStepping(cpuId: number): boolean {
    this.alive();
    this.checkCpu(cpuId);
    return this.stepping[cpuId] !== 0;
  }

  // ---- port I/O and MMIO hits (spec §7) -------------------------------------------------------

  /**
   * Called by the port dispatcher before (`before`) and after each guest port access while
   * {@link isPortIoArmed}. `access` is the one IoAccess bit of the access; `value` the value
   * written, or for reads the value read (after) or 0 (before).
   */
  checkPortIo(cpuId: number, port: number, access: number, value: number, before: boolean): TrapResult {
    this.alive();
    this.checkCpu(cpuId);
    if (before) this.pendingHandle[cpuId] = NIL;
    if (this.stepping[cpuId] !== 0) return "not-ours";
    const table = this.portTable;
    if (table === null) return "not-ours";
    const entry = table[port & 0xffff]!;
    if (entry === 0) return "not-ours";
    const handle = entry & 0x0fff_ffff;
    const records = this.records;
    if (entry >>> 28 !== 1 || handle >= records.kind.length || records.kind[handle] !== KIND_PORT_IO) {
      throw new DbgfError("L1LookupFailed", `port table entry for ${hex(port)} is invalid (${hex(entry)})`);
    }
    const flags = records.flags[handle]!;
    if ((flags & FLAG_ENABLED) === 0) return "not-ours";
    const first = records.addressLow[handle]!;
    if (port < first || port > first + records.addressHigh[handle]! - 1) return "not-ours";
    if ((records.access[handle]! & access) === 0) return "not-ours";
    if ((flags & (before ? FLAG_BEFORE : FLAG_AFTER)) === 0) return "not-ours";
    return this.processIo(cpuId, handle, before, access, port, value);
  }

  /**
   * Called by the physical handler {@link DebuggerHost.armMmioRange} placed, before and after
   * each guest access to an armed MMIO breakpoint's range. `size` in bytes (1, 2, 4, 8, or
   * another size); `value` as for checkPortIo.
   */
  checkMmio(cpuId: number, physicalAddress: number, size: number, write: boolean, value: bigint, before: boolean): TrapResult {
    this.alive();
    this.checkCpu(cpuId);
    if (before) this.pendingHandle[cpuId] = NIL;
    if (this.stepping[cpuId] !== 0) return "not-ours";
    const handle = this.mmioAt(physicalAddress, physicalAddress + (size > 0 ? size : 1) - 1);
    if (handle === NIL) return "not-ours";
    const records = this.records;
    const flags = records.flags[handle]!;
    if ((flags & FLAG_ENABLED) === 0) return "not-ours";
    const sizeBit = size === 1 ? 0x1 : size === 2 ? 0x2 : size === 4 ? 0x4 : size === 8 ? 0x8 : 0x10;
    const access = write ? sizeBit << 8 : sizeBit;
    if ((records.access[handle]! & access) === 0) return "not-ours";
    if ((flags & (before ? FLAG_BEFORE : FLAG_AFTER)) === 0) return "not-ours";
    return this.processIo(cpuId, handle, before, access, physicalAddress, value);
  }

  // ---- debugger memory view -----------------------------------------------------------------

  /** Guest-physical bytes as the guest wrote them: armed int3 bytes read as their original byte. */
  readPhysicalMemory(physicalAddress: bigint, length: number): Uint8Array {
    this.alive();
    this.checkMemoryRange(physicalAddress, length);
    const start = Number(physicalAddress);
    const bytes = Uint8Array.from(this.host.readPhysical(start, length));
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === INT3_OPCODE) bytes[i] = this.unpatched(start + i, INT3_OPCODE);
    return bytes;
  }

  /** Guest memory by linear address under `cpuId`'s paging, with armed int3 bytes shown as their original byte. */
  readLinearMemory(cpuId: number, linear: bigint, length: number): Uint8Array {
    this.alive();
    this.checkCpu(cpuId);
    if (typeof linear !== "bigint" || linear < 0n || linear > U64_MAX) throw new DbgfError("InvalidParameter", `linear address must be a 64-bit unsigned bigint, got ${String(linear)}`);
    if (!Number.isInteger(length) || length < 0) throw new DbgfError("InvalidParameter", `length must be a non-negative integer, got ${String(length)}`);
    const bytes = Uint8Array.from(this.host.readLinear(cpuId, linear, length));
    let page = -1n;
    let pageBase = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== INT3_OPCODE) continue;
      const address = BigInt.asUintN(64, linear + BigInt(i));
      if (address >> 12n !== page) {
        page = address >> 12n;
        pageBase = this.translate(cpuId, address & ~0xfffn, 0);
      }
      bytes[i] = this.unpatched(pageBase + Number(address & 0xfffn), INT3_OPCODE);
    }
    return bytes;
  }

  // ---- interrupt breakpoints and events (spec §9) ------------------------------------------------

  /** Enables or disables interrupt breakpoints per vector; all entries are validated first. */
  configureInterrupts(configs: readonly InterruptBreakpointConfig[]): void {
    this.alive();
    if (!Array.isArray(configs)) throw new DbgfError("InvalidParameter", "configureInterrupts takes an array of { vector, hard?, soft? }");
    const states = new Set([undefined, "enable", "disable", "keep"]);
    for (const config of configs) {
      const vector = config?.vector;
      if (!Number.isInteger(vector) || vector < 0 || vector > 255) throw new DbgfError("InvalidParameter", `interrupt vector must be 0-255, got ${String(vector)}`);
      if (!states.has(config.hard) || !states.has(config.soft)) {
        throw new DbgfError("InvalidParameter", `vector ${hex(vector)}: hard and soft must be "enable", "disable" or "keep"`);
      }
    }
    let changed = false;
    const apply = (bits: Uint8Array, vector: number, state: string | undefined): number => {
      if (state === "enable" && bits[vector] === 0) {
        bits[vector] = 1;
        changed = true;
        return 1;
      }
      if (state === "disable" && bits[vector] === 1) {
        bits[vector] = 0;
        changed = true;
        return -1;
      }
      return 0;
    };
    for (const config of configs) {
      this.hardInterruptCount += apply(this.hardInterrupts, config.vector, config.hard);
      this.softInterruptCount += apply(this.softInterrupts, config.vector, config.soft);
    }
    if (this.selectEvent(DebugEventType.HardwareInterrupt, this.hardInterruptCount > 0)) changed = true;
    if (this.selectEvent(DebugEventType.SoftwareInterrupt, this.softInterruptCount > 0)) changed = true;
    if (changed) this.host.debugEventsChanged();
  }

  /** Selects or deselects one event type (DebugEventType). */
  configureEvent(type: number, enabled: boolean): void {
    this.alive();
    this.checkEventType(type);
    if (this.selectEvent(type, enabled)) this.host.debugEventsChanged();
  }

  isEventSelected(type: number): boolean {
    this.alive();
    this.checkEventType(type);
    return this.selectedEvents[type] !== 0;
  }

  get selectedEventTotal(): number {
    return this.selectedEventCount;
  }

  /** Whether a break on the vector as a hardware (`hard`) or software (`soft`) interrupt is set. */
  isInterruptBreakpoint(vector: number, kind: "hard" | "soft"): boolean {
    this.alive();
    if (!Number.isInteger(vector) || vector < 0 || vector > 255) throw new DbgfError("InvalidParameter", `interrupt vector must be 0-255, got ${String(vector)}`);
    return (kind === "hard" ? this.hardInterrupts : this.softInterrupts)[vector] !== 0;
  }

  /** Number of vectors with a hardware / software interrupt breakpoint. */
  interruptBreakpointCount(kind: "hard" | "soft"): number {
    return kind === "hard" ? this.hardInterruptCount : this.softInterruptCount;
  }

  /** spec §9.2: is the event type selected (and, for interrupts, the vector `argument`)? */
  isGenericEventEnabled(type: number, argument: bigint): boolean {
    this.alive();
    if (!Number.isInteger(type) || type < 0 || type >= DEBUG_EVENT_TYPE_COUNT || this.selectedEvents[type] === 0) return false;
    if (type === DebugEventType.HardwareInterrupt || type === DebugEventType.SoftwareInterrupt) {
      if (typeof argument !== "bigint" || argument < 0n || argument >= 256n) return false;
      return (type === DebugEventType.HardwareInterrupt ? this.hardInterrupts : this.softInterrupts)[Number(argument)] !== 0;
    }
    return true;
  }

  /**
   * Raises a generic event on `cpuId` at instruction `rip` (spec §9.3). "ignored" when it is
   * not selected or was already shown for this instruction; "raised" when the debugger should
   * stop the vCPU (the event is queued and the vCPU's action-pending flag set).
   */
  raiseGenericEvent(cpuId: number, type: number, context: unknown, args: readonly bigint[], rip: bigint): "ignored" | "raised" {
    this.alive();
    this.checkCpu(cpuId);
    if (!this.isGenericEventEnabled(type, args[0] ?? 0n)) return "ignored";
    const stack = this.eventStacks[cpuId]!;
    for (let i = stack.length - 1; i >= 0; i--) {
      const entry = stack[i]!;
      if (entry.type === type && entry.state === "ignore" && entry.rip === rip) {
        entry.state = "restorable";
        return "ignored";
      }
    }
    const kept = stack.filter((entry) => entry.rip === rip && (entry.state === "ignore" || entry.state === "restorable"));
    for (const entry of kept) entry.state = "ignore";
    stack.length = 0;
    stack.push(...kept);
    const entry: EventStackEntry = { type, rip, args: args.slice(0, MAX_EVENT_ARGS), context, state: "current" };
    if (stack.length >= EVENT_STACK_DEPTH) stack[stack.length - 1] = entry;
    else stack.push(entry);
    this.actionPending[cpuId] = 1;
    this.eventQueue.push({ kind: "event", cpuId, type, rip, args: entry.args });
    return "raised";
  }

  /** The vCPU has a debug event the debugger has not resumed from yet. */
  isActionPending(cpuId: number): boolean {
    this.alive();
    this.checkCpu(cpuId);
    return this.actionPending[cpuId] !== 0;
  }

  /** The VM reports a stop the debugger asked for, a power-off or a fatal error. */
  reportEvent(kind: "halted" | "powering-off" | "fatal-error", cpuId: number): void {
    this.alive();
    this.checkCpu(cpuId);
    if (kind !== "halted" && kind !== "powering-off" && kind !== "fatal-error") throw new DbgfError("InvalidParameter", `unknown VM event kind ${String(kind)}`);
    this.eventQueue.push({ kind, cpuId });
  }

  /** The oldest debugger event not read yet, or undefined. */
  nextEvent(): DebuggerEvent | undefined {
    this.alive();
    return this.eventQueue.shift();
  }

  get pendingEventCount(): number {
    return this.eventQueue.length;
  }

  // ---- lifecycle (spec §11) ---------------------------------------------------------------

  /** Releases every table; afterwards every call throws InvalidVmHandle. Guest memory is not touched. */
  terminate(): void {
    this.alive();
    this.terminated = true;
    this.portTable = null;
    this.index.l1 = null;
    this.mmioHandles.length = 0;
    this.eventQueue.length = 0;
  }

  // ---- internals ---------------------------------------------------------------------------

  private alive(): void {
    if (this.terminated) throw new DbgfError("InvalidVmHandle", "this debugger has been terminated");
  }

  private checkCpu(cpuId: number): void {
    if (!(cpuId >= 0 && cpuId < this.cpuCount && cpuId % 1 === 0)) {
      throw new DbgfError("InvalidParameter", `vCPU ${String(cpuId)} does not exist (0-${this.cpuCount - 1})`);
    }
  }

  private checkPortAccess(port: number, size: number): void {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff || (size !== 1 && size !== 2 && size !== 4)) {
      throw new DbgfError("InvalidParameter", `port access ${String(port)}/${String(size)} needs a port 0-0xffff and size 1, 2 or 4`);
    }
  }

  private checkEventType(type: number): void {
    if (!Number.isInteger(type) || type < 0 || type >= DEBUG_EVENT_TYPE_COUNT) {
      throw new DbgfError("InvalidParameter", `event type must be an integer from 0 to ${DEBUG_EVENT_TYPE_COUNT - 1}, got ${String(type)}`);
    }
  }

  private checkMemoryRange(physicalAddress: bigint, length: number): void {
    if (typeof physicalAddress !== "bigint" || physicalAddress < 0n) throw new DbgfError("InvalidParameter", `physical address must be a non-negative bigint, got ${String(physicalAddress)}`);
    if (!Number.isInteger(length) || length < 0) throw new DbgfError("InvalidParameter", `length must be a non-negative integer, got ${String(length)}`);
    if (physicalAddress + BigInt(length) > BigInt(PHYSICAL_LIMIT)) throw new DbgfError("OutOfRange", `physical range ${hex(physicalAddress)} + ${hex(length)} ends beyond 2^52`);
  }

  private selectEvent(type: number, enabled: boolean): boolean {
    const now = enabled ? 1 : 0;
    if (this.selectedEvents[type] === now) return false;
    this.selectedEvents[type] = now;
    this.selectedEventCount += enabled ? 1 : -1;
    return true;
  }

  /** Guest-physical address of `linear`'s byte, with the page offset kept (spec §4.2 step 2). */
  private translate(cpuId: number, linear: bigint, low: number): number {
    const physical = this.host.translate(cpuId, linear);
    if (typeof physical !== "number" || !(physical >= 0 && physical < PHYSICAL_LIMIT) || physical % 1 !== 0) {
      throw new DbgfError("InvalidParameter", `host.translate(${cpuId}, ${hex(linear)}) returned ${String(physical)}, not a physical address below 2^52`);
    }
    // Paging keeps the low 12 bits, so this is right whether the host returned the byte's address or its page's.
    return physical - (physical % 0x1000) + (low & 0xfff);
  }

  /** The original byte of the armed int3 breakpoint patching this physical byte, or `byte`. */
  private unpatched(physical: number, byte: number): number {
    const handle = this.index.findPhysical(physical);
    return handle !== NIL && (this.records.flags[handle]! & FLAG_ENABLED) !== 0 ? this.records.originalByte[handle]! : byte;
  }

  private parseOptions(options: BreakpointOptions): ParsedOptions {
    if (options === null || typeof options !== "object") throw new DbgfError("InvalidParameter", "breakpoint options must be an object");
    const owner = options.owner ?? NIL;
    const hasUser = options.user !== undefined;
    if (hasUser && owner === NIL) throw new DbgfError("InvalidParameter", "a user argument needs an owner to receive it");
    const flags = options.flags ?? FLAG_ENABLED | FLAG_BEFORE;
    if (!Number.isInteger(flags) || (flags & ~0x7) !== 0 || flags < 0) throw new DbgfError("InvalidFlags", `breakpoint flags must be within 0x7, got ${String(flags)}`);
    const trigger = options.hitTrigger ?? 0n;
    const disable = options.hitDisable ?? U64_MAX;
    checkThreshold("hitTrigger", trigger);
    checkThreshold("hitDisable", disable);
    if (trigger > disable) throw new DbgfError("InvalidParameter", `hitTrigger ${trigger} is above hitDisable ${disable}`);
    return { owner, user: options.user, hasUser, flags, trigger, disable };
  }

  private liveOwnerOrThrow(owner: number): void {
    if (owner === NIL) throw new DbgfError("InvalidHandle", "NIL is not an owner");
    if (this.owners === null || !Number.isInteger(owner) || !this.owners.isAllocated(owner)) {
      throw new DbgfError("InvalidHandle", `owner ${String(owner)} does not exist`);
    }
  }

  private liveHandleOrThrow(handle: number): void {
    if (handle === NIL) throw new DbgfError("InvalidHandle", "NIL is not a breakpoint");
    if (!Number.isInteger(handle) || handle < 0) throw new DbgfError("InvalidHandle", `${String(handle)} is not a breakpoint handle`);
    if (!this.records.pool.isAllocated(handle)) throw new DbgfError("BreakpointNotFound", `breakpoint ${handle} does not exist`);
  }

  /** Retains the owner (if any) and takes the lowest free handle; nothing changes on failure. */
  private allocate(kind: number, parsed: ParsedOptions): number {
    const owner = parsed.owner;
    if (owner !== NIL) {
      this.liveOwnerOrThrow(owner);
      const io = kind === KIND_PORT_IO || kind === KIND_MMIO;
      if (io ? this.ownerIoHit[owner] === undefined : this.ownerHit[owner] === undefined) {
        throw new DbgfError("InvalidHandle", `owner ${owner} has no ${io ? "ioHit" : "hit"} callback, which ${io ? "I/O" : "execution"} breakpoints need`);
      }
      this.ownerRefs[owner]!++;
    }
    let handle: number;
    try {
      handle = this.records.pool.allocate();
      if (handle < 0) throw new DbgfError("NoMoreBreakpointSlots", `all ${this.records.pool.maxCapacity} breakpoint handles are in use`);
    } catch (error) {
      if (owner !== NIL) this.ownerRefs[owner]!--;
      throw error;
    }
    const records = this.records;
    records.kind[handle] = kind;
    records.flags[handle] = parsed.flags & HIT_FLAGS;
    records.owner[handle] = owner === NIL ? NO_OWNER : owner;
    records.hitsLow[handle] = 0;
    records.hitsHigh[handle] = 0;
    if (parsed.trigger !== 0n || parsed.disable !== U64_MAX) {
      records.flags[handle]! |= FLAG_WINDOW;
      records.windows.set(handle, hitWindow(parsed.trigger, parsed.disable));
    }
    if (parsed.hasUser) records.users.set(handle, parsed.user);
    return handle;
  }

  /** Releases the owner, wipes the record, frees the handle and forgets vCPU references to it. */
  private free(handle: number): void {
    const owner = this.records.owner[handle]!;
    if (owner !== NO_OWNER) this.ownerRefs[owner]!--;
    this.records.wipe(handle);
    this.records.pool.free(handle);
    for (let cpu = 0; cpu < this.cpuCount; cpu++) {
      if (this.activeHandle[cpu] === handle) this.activeHandle[cpu] = NIL;
      if (this.pendingHandle[cpu] === handle) this.pendingHandle[cpu] = NIL;
    }
  }

  private freeSlot(slot: number): void {
    this.slotLow[slot] = 0;
    this.slotHigh[slot] = 0;
    this.slotType[slot] = 0;
    this.slotSize[slot] = 0;
    this.slotEnabled[slot] = 0;
    this.slotHandle[slot] = NIL;
  }

  private recountHardware(): void {
    let enabled = 0;
    let io = 0;
    for (let slot = 0; slot < HARDWARE_SLOT_COUNT; slot++) {
      if (this.slotHandle[slot] === NIL || this.slotEnabled[slot] === 0) continue;
      enabled++;
      if (this.slotType[slot] === HardwareAccess.Io) io++;
    }
    this.enabledHw = enabled;
    this.enabledHwIo = io;
  }

  private reloadAllDebugRegisters(): void {
    for (let cpu = 0; cpu < this.cpuCount; cpu++) this.host.reloadDebugRegisters(cpu);
  }

  /** Arms a disabled breakpoint (spec §4.7); on failure it stays disabled and the error propagates. */
  private arm(handle: number): void {
    const records = this.records;
    switch (records.kind[handle]) {
      case KIND_INT3: {
        const physical = records.physical[handle]!;
        const original = this.host.readPhysical(physical, 1)[0];
        if (original === undefined) throw new DbgfError("InternalError", `host.readPhysical(${hex(physical)}, 1) returned no byte`);
        this.host.writePhysical(physical, this.int3Byte);
        records.originalByte[handle] = original;
        records.flags[handle]! |= FLAG_ENABLED;
        this.enabledInt3++;
        return;
      }
      case KIND_HARDWARE: {
        const slot = records.access[handle]! >>> 8;
        records.flags[handle]! |= FLAG_ENABLED;
        this.slotEnabled[slot] = 1;
        this.recountHardware();
        try {
          this.reloadAllDebugRegisters();
        } catch (error) {
          records.flags[handle]! &= ~FLAG_ENABLED;
          this.slotEnabled[slot] = 0;
          this.recountHardware();
          throw error;
        }
        return;
      }
      case KIND_PORT_IO:
        records.flags[handle]! |= FLAG_ENABLED;
        this.armedPortIo++;
        try {
          this.host.portBreakpointsArmed(true);
        } catch (error) {
          records.flags[handle]! &= ~FLAG_ENABLED;
          this.armedPortIo--;
          throw error;
        }
        return;
      case KIND_MMIO:
        this.host.armMmioRange(records.physical[handle]!, records.addressLow[handle]!);
        records.flags[handle]! |= FLAG_ENABLED;
        this.armedMmio++;
        return;
    }
  }

  /**
   * Disarms an enabled breakpoint (spec §4.7). With `forced` (clear), hook failures are
   * reported to host.warn and the breakpoint is disarmed anyway; otherwise a failure
   * propagates and it stays enabled.
   */
  private disarm(handle: number, forced: boolean): void {
    const records = this.records;
    switch (records.kind[handle]) {
      case KIND_INT3: {
        const physical = records.physical[handle]!;
        try {
          // A byte the guest overwrote stays as the guest wrote it (spec §12 Q9).
          if (this.host.readPhysical(physical, 1)[0] === INT3_OPCODE) this.host.writePhysical(physical, Uint8Array.of(records.originalByte[handle]!));
        } catch (error) {
          if (!forced) throw error;
          this.warn(handle, `restoring the original byte at physical ${hex(physical)}`, error);
        }
        records.flags[handle]! &= ~FLAG_ENABLED;
        this.enabledInt3--;
        return;
      }
      case KIND_HARDWARE: {
        const slot = records.access[handle]! >>> 8;
        records.flags[handle]! &= ~FLAG_ENABLED;
        this.slotEnabled[slot] = 0;
        this.recountHardware();
        try {
          this.reloadAllDebugRegisters();
        } catch (error) {
          if (forced) {
            this.warn(handle, "reloading the debug registers", error);
            return;
          }
          records.flags[handle]! |= FLAG_ENABLED;
          this.slotEnabled[slot] = 1;
          this.recountHardware();
          throw error;
        }
        return;
      }
      case KIND_PORT_IO:
        records.flags[handle]! &= ~FLAG_ENABLED;
        this.armedPortIo--;
        if (this.armedPortIo !== 0) return;
        try {
          this.host.portBreakpointsArmed(false);
        } catch (error) {
          if (forced) {
            this.warn(handle, "telling the port dispatcher", error);
            return;
          }
          records.flags[handle]! |= FLAG_ENABLED;
          this.armedPortIo++;
          throw error;
        }
        return;
      case KIND_MMIO: {
        const physical = records.physical[handle]!;
        try {
          this.host.disarmMmioRange(physical, records.addressLow[handle]!);
        } catch (error) {
          if (!forced) throw error;
          this.warn(handle, `removing the MMIO handler at ${hex(physical)}`, error);
        }
        records.flags[handle]! &= ~FLAG_ENABLED;
        this.armedMmio--;
        return;
      }
    }
  }

  private warn(handle: number, what: string, error: unknown): void {
    this.host.warn?.(`clearing breakpoint ${handle}: ${what} failed; continuing`, error);
  }

  /** Counts a hit (saturating) and evaluates the trigger window: TRIGGERED | DISABLE_DUE bits (spec §5.1-§5.2). */
  private countHit(handle: number): number {
    const records = this.records;
    let low = records.hitsLow[handle]!;
    let high = records.hitsHigh[handle]!;
    if (low !== 0xffff_ffff) low++;
    else if (high !== 0xffff_ffff) {
      low = 0;
      high++;
    }
    records.hitsLow[handle] = low;
    records.hitsHigh[handle] = high;
    if ((records.flags[handle]! & FLAG_WINDOW) === 0) return TRIGGERED;
    const window = records.windows.get(handle)!;
    const reachedDisable = !window.disableNever && (high > window.disableHigh || (high === window.disableHigh && low >= window.disableLow));
    const reachedTrigger = high > window.triggerHigh || (high === window.triggerHigh && low >= window.triggerLow);
    const pastDisable = !window.disableNever && (high > window.disableHigh || (high === window.disableHigh && low > window.disableLow));
    return (reachedTrigger && !pastDisable ? TRIGGERED : 0) | (reachedDisable ? DISABLE_DUE : 0);
  }

  /** Auto-disable after a dispatch (spec §5.2), if the callbacks left the breakpoint in place and enabled. */
  private autoDisable(handle: number, kind: number): void {
    const records = this.records;
    if (records.kind[handle] === kind && (records.flags[handle]! & FLAG_ENABLED) !== 0) this.disarm(handle, false);
  }

  /** The breakpoint's owner if it is live, else NIL. */
  private ownerOf(handle: number): number {
    const owner = this.records.owner[handle]!;
    return owner !== NO_OWNER && this.owners !== null && this.owners.isAllocated(owner) ? owner : NIL;
  }

  /** Stops the vCPU at a breakpoint: active breakpoint, one debugger event, the host told (spec §5.5). */
  private stop(cpuId: number, handle: number): "halt" {
    this.activeHandle[cpuId] = handle;
    this.eventQueue.push({ kind: "breakpoint", cpuId, handle });
    this.host.raiseBreakpointEvent(cpuId, handle);
    return "halt";
  }

  private checkResult(result: unknown, owner: number, handle: number, when: HitWhen): HitResult {
    if (result === "resume" || result === "halt") return result;
    throw new DbgfError("OwnerCallbackWrongStatus", `owner ${owner} returned ${describeCallback(result)} for breakpoint ${handle} (${when}); expected "resume" or "halt"`);
  }

  private callHit(cpuId: number, owner: number, handle: number, when: HitWhen): HitResult {
    const hit = this.ownerHit[owner]!;
    return this.checkResult(hit(cpuId, this.records.users.get(handle), handle, this.info(handle), when), owner, handle, when);
  }

  /** Count, window, dispatch and auto-disable for int3 and hardware hits (spec §5.4). */
  private processExecution(cpuId: number, handle: number, low: number, high: number, executes: boolean, int3: boolean): HitResult {
    const records = this.records;
    const kind = records.kind[handle]!;
    const original = records.originalByte[handle]!;
    const outcome = this.countHit(handle);
    let result: HitResult = "resume";
    if ((outcome & TRIGGERED) === 0) {
      if (executes) this.executeGuarded(cpuId, low, high, int3, original);
    } else {
      const owner = this.ownerOf(handle);
      const flags = records.flags[handle]!;
      if (owner === NIL || this.ownerHit[owner] === undefined) {
        result = this.stop(cpuId, handle);
      } else if (!executes) {
        // Data and I/O hardware breakpoints are traps: the access is done, one "after" call.
        if ((flags & HIT_FLAGS) !== 0 && this.callHit(cpuId, owner, handle, "after") === "halt") result = this.stop(cpuId, handle);
      } else if ((flags & FLAG_BEFORE) !== 0 && this.callHit(cpuId, owner, handle, "before") === "halt") {
        result = this.stop(cpuId, handle);
      } else {
        this.executeGuarded(cpuId, low, high, int3, original);
        if ((flags & FLAG_AFTER) !== 0 && this.callHit(cpuId, owner, handle, "after") === "halt") result = this.stop(cpuId, handle);
      }
    }
    if ((outcome & DISABLE_DUE) !== 0) this.autoDisable(handle, kind);
    return result;
  }

  /**
   * Executes the instruction at `pc` once from its original bytes (spec §5.4 step 3): up to
   * 16 bytes, or up to the page end when the next page is unreadable.
   */
  private executeGuarded(cpuId: number, low: number, high: number, int3: boolean, original: number): void {
    const pc = joinLanes(low, high);
    let bytes: Uint8Array;
    try {
      bytes = this.host.readLinear(cpuId, pc, MAX_INSTRUCTION_BYTES);
    } catch (error) {
      const toPageEnd = 0x1000 - (low & 0xfff);
      if (toPageEnd >= MAX_INSTRUCTION_BYTES) throw error;
      bytes = this.host.readLinear(cpuId, pc, toPageEnd);
    }
    if (bytes.length === 0) throw new DbgfError("InternalError", `host.readLinear(${cpuId}, ${hex(pc)}) returned no bytes`);
    const instruction = bytes.slice(0, MAX_INSTRUCTION_BYTES);
    if (int3) instruction[0] = original;
    this.host.executeOne(cpuId, pc, instruction);
  }

  /** Count, window, before/after pairing, dispatch and auto-disable for port-I/O and MMIO hits (spec §7.2, §5.6). */
  private processIo(cpuId: number, handle: number, before: boolean, access: number, address: number, value: number | bigint): HitResult {
    const records = this.records;
    const kind = records.kind[handle]!;
    const paired = (records.flags[handle]! & HIT_FLAGS) === HIT_FLAGS;
    if (!before && paired && this.pendingHandle[cpuId] === handle && this.pendingAddress[cpuId] === address) {
      // The after-check of an access whose before-check counted it: reuse that decision.
      const outcome = this.pendingOutcome[cpuId]!;
      this.pendingHandle[cpuId] = NIL;
      const result = (outcome & TRIGGERED) !== 0 ? this.dispatchIo(cpuId, handle, "after", access, address, value) : "resume";
      if ((outcome & DISABLE_DUE) !== 0) this.autoDisable(handle, kind);
      return result;
    }
    const outcome = this.countHit(handle);
    const deferred = before && paired;
    if (deferred) {
      this.pendingHandle[cpuId] = handle;
      this.pendingAddress[cpuId] = address;
      this.pendingOutcome[cpuId] = outcome;
    }
    const result = (outcome & TRIGGERED) !== 0 ? this.dispatchIo(cpuId, handle, before ? "before" : "after", access, address, value) : "resume";
    if (deferred && result === "halt") this.pendingHandle[cpuId] = NIL;
    if ((outcome & DISABLE_DUE) !== 0 && (!deferred || result === "halt")) this.autoDisable(handle, kind);
    return result;
  }

  private dispatchIo(cpuId: number, handle: number, when: HitWhen, access: number, address: number, value: number | bigint): HitResult {
    const owner = this.ownerOf(handle);
    const ioHit = owner === NIL ? undefined : this.ownerIoHit[owner];
    if (ioHit === undefined) return this.stop(cpuId, handle);
    const bigValue = typeof value === "bigint" ? value : BigInt(value >>> 0);
    const result = ioHit(cpuId, this.records.users.get(handle), handle, this.info(handle), when, access, BigInt(address), bigValue);
    return this.checkResult(result, owner, handle, when) === "halt" ? this.stop(cpuId, handle) : "resume";
  }

  /** A hardware slot matched: remember it as the vCPU's active breakpoint and stop single-stepping (spec §8.4). */
  private detectHardware(cpuId: number, handle: number): { readonly kind: "dbgf"; readonly handle: number } {
    this.activeHandle[cpuId] = handle;
    this.stepping[cpuId] = 0;
    return { kind: "dbgf", handle };
  }

  /** DBGF's first enabled I/O slot overlapping the port access, or NIL (spec §8.5 step 1). */
  private dbgfIoSlot(port: number, size: number): number {
    if (this.enabledHwIo === 0) return NIL;
    for (let slot = 0; slot < HARDWARE_SLOT_COUNT; slot++) {
      if (this.slotHandle[slot] === NIL || this.slotEnabled[slot] === 0 || this.slotType[slot] !== HardwareAccess.Io || this.slotHigh[slot] !== 0) continue;
      const slotSize = this.slotSize[slot]!;
      const first = (this.slotLow[slot]! & ~(slotSize - 1)) >>> 0;
      if (first <= port + size - 1 && port <= first + slotSize - 1) return this.slotHandle[slot]!;
    }
    return NIL;
  }

  /** Index in mmioHandles where a range starting at `start` belongs. */
  private mmioPosition(start: number): number {
    const handles = this.mmioHandles;
    let low = 0;
    let high = handles.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.records.physical[handles[middle]!]! < start) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The MMIO breakpoint whose range overlaps `[first, last]` (the lowest one), or NIL. */
  private mmioAt(first: number, last: number): number {
    const handles = this.mmioHandles;
    const records = this.records;
    // Ranges are disjoint and sorted, so their ends are sorted too: find the first ending at or after `first`.
    let low = 0;
    let high = handles.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const handle = handles[middle]!;
      if (records.physical[handle]! + records.addressLow[handle]! - 1 < first) low = middle + 1;
      else high = middle;
    }
    if (low === handles.length) return NIL;
    const handle = handles[low]!;
    return records.physical[handle]! <= last ? handle : NIL;
  }

  /**
   * A frozen snapshot of a live breakpoint's public state. Each type is one object literal
   * with a fixed property order, so snapshots share a few hidden classes (freezing objects
   * built by spreading was 50× slower).
   */
  private info(handle: number): BreakpointInfo {
    const records = this.records;
    const flags = records.flags[handle]!;
    const window = (flags & FLAG_WINDOW) !== 0 ? records.windows.get(handle) : undefined;
    const stored = records.owner[handle]!;
    const owner = stored === NO_OWNER ? NIL : stored;
    const publicFlags = flags & 0x7;
    const enabled = (flags & FLAG_ENABLED) !== 0;
    const hits = joinLanes(records.hitsLow[handle]!, records.hitsHigh[handle]!);
    const hitTrigger = window === undefined ? 0n : window.trigger;
    const hitDisable = window === undefined ? U64_MAX : window.disable;
    switch (records.kind[handle]) {
      case KIND_HARDWARE: {
        const packed = records.access[handle]!;
        return Object.freeze({
          handle,
          owner,
          flags: publicFlags,
          enabled,
          hits,
          hitTrigger,
          hitDisable,
          type: "hardware" as const,
          address: joinLanes(records.addressLow[handle]!, records.addressHigh[handle]!),
          slot: packed >>> 8,
          accessType: (packed & 3) as HardwareAccess,
          size: ((packed >>> 2) & 0xf) as HardwareBreakpointSize,
        });
      }
      case KIND_INT3:
        return Object.freeze({
          handle,
          owner,
          flags: publicFlags,
          enabled,
          hits,
          hitTrigger,
          hitDisable,
          type: "int3" as const,
          address: joinLanes(records.addressLow[handle]!, records.addressHigh[handle]!),
          physicalAddress: BigInt(records.physical[handle]!),
          originalByte: records.originalByte[handle]!,
        });
      case KIND_PORT_IO:
        return Object.freeze({
          handle,
          owner,
          flags: publicFlags,
          enabled,
          hits,
          hitTrigger,
          hitDisable,
          type: "port-io" as const,
          port: records.addressLow[handle]!,
          count: records.addressHigh[handle]!,
          access: records.access[handle]!,
        });
      case KIND_MMIO:
        return Object.freeze({
          handle,
          owner,
          flags: publicFlags,
          enabled,
          hits,
          hitTrigger,
          hitDisable,
          type: "mmio" as const,
          physicalAddress: BigInt(records.physical[handle]!),
          size: records.addressLow[handle]!,
          access: records.access[handle]!,
        });
      default:
        throw new DbgfError("InternalError", `breakpoint ${handle} has no valid type (${records.kind[handle]})`);
    }
  }

  private createIntrospection(): DebuggerIntrospection {
    return {
      l1Entry: (slot) => {
        if (!Number.isInteger(slot) || slot < 0 || slot >= L1_SIZE) throw new DbgfError("InvalidParameter", `L1 slot must be 0-0xffff, got ${String(slot)}`);
        return this.index.l1?.[slot] ?? 0;
      },
      treeKeys: (slot) => this.index.treeKeys(slot),
      l2NodesInUse: () => this.index.nodes.inUse,
      portEntry: (port) => this.portTable?.[port] ?? 0,
      setHits: (handle, hits) => {
        this.liveHandleOrThrow(handle);
        if (typeof hits !== "bigint" || hits < 0n || hits > U64_MAX) throw new DbgfError("InvalidParameter", `hits must be a bigint from 0 to 2^64-1, got ${String(hits)}`);
        this.records.hitsLow[handle] = Number(hits & 0xffff_ffffn);
        this.records.hitsHigh[handle] = Number(hits >> 32n);
      },
      activeBreakpoint: (cpuId) => {
        this.checkCpu(cpuId);
        return this.activeHandle[cpuId]!;
      },
      eventStack: (cpuId) => {
        this.checkCpu(cpuId);
        return this.eventStacks[cpuId]!.map((entry) => ({ ...entry }));
      },
      tableBytes: () => this.records.byteLength + this.index.byteLength + (this.portTable?.byteLength ?? 0),
      verify: () => this.verify(),
    };
  }

  private verify(): void {
    const records = this.records;
    const fail = (what: string): never => {
      throw new DbgfError("InternalError", what);
    };
    const reachable = this.index.verify();
    const seen = new Set<number>();
    for (const handle of reachable) {
      if (seen.has(handle)) fail(`int3 breakpoint ${handle} is reachable twice`);
      seen.add(handle);
    }
    let int3 = 0;
    let enabledInt3 = 0;
    let armedPortIo = 0;
    let armedMmio = 0;
    let live = 0;
    for (let handle = 0; handle < records.capacity; handle++) {
      const allocated = records.pool.isAllocated(handle);
      if (allocated !== records.isLive(handle)) fail(`breakpoint ${handle}: bitmap and kind column disagree`);
      if (!allocated) continue;
      live++;
      const enabled = (records.flags[handle]! & FLAG_ENABLED) !== 0;
      const kind = records.kind[handle];
      if (kind === KIND_INT3) {
        int3++;
        if (enabled) enabledInt3++;
        if (!seen.has(handle)) fail(`int3 breakpoint ${handle} is not reachable from L1`);
        if (this.index.findPhysical(records.physical[handle]!) !== handle) fail(`int3 breakpoint ${handle} is missing from the physical index`);
      } else if (kind === KIND_PORT_IO) {
        if (enabled) armedPortIo++;
        const port = records.addressLow[handle]!;
        for (let p = port; p < port + records.addressHigh[handle]!; p++) if (this.portTable![p] !== (PORT_ENTRY | handle)) fail(`port ${hex(p)} does not name breakpoint ${handle}`);
      } else if (kind === KIND_MMIO) {
        if (enabled) armedMmio++;
        if (!this.mmioHandles.includes(handle)) fail(`MMIO breakpoint ${handle} is not in the range list`);
      } else if (kind === KIND_HARDWARE) {
        const slot = records.access[handle]! >>> 8;
        if (this.slotHandle[slot] !== handle || (this.slotEnabled[slot] === 1) !== enabled) fail(`hardware breakpoint ${handle} and slot ${slot} disagree`);
      }
      const owner = records.owner[handle]!;
      if (owner !== NO_OWNER && !this.owners?.isAllocated(owner)) fail(`breakpoint ${handle} names the dead owner ${owner}`);
    }
    if (live !== records.pool.inUse) fail(`${records.pool.inUse} handles counted in use, ${live} allocated`);
    if (seen.size !== int3) fail(`${seen.size} int3 breakpoints reachable from L1, ${int3} exist`);
    if (enabledInt3 !== this.enabledInt3 || armedPortIo !== this.armedPortIo || armedMmio !== this.armedMmio) fail("armed counters disagree with the records");
    if (this.portTable !== null) {
      for (let port = 0; port < 0x1_0000; port++) {
        const entry = this.portTable[port]!;
        if (entry !== 0 && records.kind[entry & 0x0fff_ffff] !== KIND_PORT_IO) fail(`port ${hex(port)} names ${hex(entry)}, not a port-I/O breakpoint`);
      }
    }
    for (let i = 1; i < this.mmioHandles.length; i++) {
      const previous = this.mmioHandles[i - 1]!;
      if (records.physical[previous]! + records.addressLow[previous]! > records.physical[this.mmioHandles[i]!]!) fail("MMIO ranges overlap or are out of order");
    }
    if (this.owners !== null) {
      const references = new Uint32Array(this.ownerCapacity);
      for (let handle = 0; handle < records.capacity; handle++) if (records.isLive(handle) && records.owner[handle] !== NO_OWNER) references[records.owner[handle]!]!++;
      for (let owner = 0; owner < this.ownerCapacity; owner++) {
        const expected = this.owners.isAllocated(owner) ? references[owner]! + 1 : 0;
        if (this.ownerRefs[owner] !== expected) fail(`owner ${owner} counts ${this.ownerRefs[owner]} references, expected ${expected}`);
      }
    }
  }
}
