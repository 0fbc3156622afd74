import { IomError } from "./errors.js";

export type AccessSize = 1 | 2 | 4;

/**
 * What a device behind a port range implements. `offset` is relative to the first port of
 * the range, `size` is the access size in bytes and `context` is the range's user argument
 * (`PortRangeOptions.context`). Every callback may be absent: reads then float high,
 * writes are dropped, and string transfers fall back to the per-unit callbacks.
 */
export interface PortDevice {
  /** IN: returns the value read (only the low `size` bytes are used). */
  readPort?(offset: number, size: AccessSize, context: unknown): number;
  /** OUT: `value` holds `size` bytes, unsigned. */
  writePort?(offset: number, value: number, size: AccessSize, context: unknown): void;
  /**
   * INS / REP INS: fills up to `count` units of `size` bytes, little-endian, from the start
   * of `buffer`, and returns how many units it transferred (0 to `count`). The port space
   * transfers the rest one unit at a time through `readPort`.
   */
  readPortString?(offset: number, size: AccessSize, buffer: Uint8Array, count: number, context: unknown): number;
  /**
   * OUTS / REP OUTS: consumes up to `count` units of `size` bytes from the start of
   * `buffer` and returns how many it took (0 to `count`); the rest go through `writePort`.
   */
  writePortString?(offset: number, size: AccessSize, buffer: Uint8Array, count: number, context: unknown): number;
}

export interface PortRangeOptions {
  /** First port, 0-0xFFFF. */
  readonly port: number;
  /** Number of ports, at least 1; the range must end at or below 0xFFFF. */
  readonly count: number;
  /** Who owns the range, for messages and statistics ("com1"). */
  readonly owner: string;
  readonly device: PortDevice;
  /**
   * The widest access the device takes in one call (default 4). A wider access is split
   * into accesses of this size, as an 8-bit ISA device sees a 16-bit IN as two byte cycles.
   */
  readonly maxAccessSize?: AccessSize;
  /** Passed as the last argument of every callback (VirtualBox's pvUser). */
  readonly context?: unknown;
}

/** A registered range (returned for deregistration and tools). */
export interface PortRange {
  readonly port: number;
  readonly count: number;
  readonly owner: string;
  readonly device: PortDevice;
  readonly maxAccessSize: AccessSize;
  readonly context: unknown;
}

/** Direction of a port access as the breakpoint checker sees it. */
export type PortAccessDirection = "read" | "write";
/** When the breakpoint checker is asked: before the device sees the access, or after. */
export type PortAccessPhase = "before" | "after";
/** "halt" before an access suppresses it; "halt" after one ends a string transfer there. */
export type IoBreakpointVerdict = "continue" | "halt";

/**
 * The hook a debugger (@vmmkit/dbgf) uses for port-I/O breakpoints. Install it with
 * `PortSpace.setBreakpointChecker` while at least one such breakpoint is armed; with none
 * installed, dispatch pays one null check and nothing else.
 */
export interface IoBreakpointChecker {
  /**
   * Called twice for every guest access (for string I/O: for every unit): "before", with
   * `value` the value to be written (0 for reads), and "after", with the value written or
   * read. `port` and `size` are the access as the guest issued it, before any splitting.
   */
  checkPortAccess(port: number, size: AccessSize, direction: PortAccessDirection, value: number, phase: PortAccessPhase): IoBreakpointVerdict;
}

/** Guest accesses to one port, by access size. */
export interface PortAccessCounts {
  readonly byte: number;
  readonly word: number;
  readonly dword: number;
}

/** The statistics of one port: accesses the guest started there (IN/OUT at that port). */
export interface PortStatistics {
  readonly port: number;
  /** The owner of the range serving the port now, if any. */
  readonly owner: string | undefined;
  readonly reads: PortAccessCounts;
  readonly writes: PortAccessCounts;
}

const PORT_COUNT = 0x10000;
const NO_RANGE = 0;
/** Statistics slots per port: reads of 1, 2, 4 bytes, then writes of 1, 2, 4 bytes. */
const STAT_SLOTS = 6;
const STAT_WRITES = 3;

const hex = (value: number) => "0x" + value.toString(16).padStart(value > 0xff ? 4 : 2, "0");

/** One shape for every registered range, so dispatch reads its fields monomorphically. */
class RegisteredRange implements PortRange {
  /** Inclusive. */
  readonly lastPort: number;
  constructor(
    readonly port: number,
    readonly count: number,
    readonly owner: string,
    readonly device: PortDevice,
    readonly maxAccessSize: AccessSize,
    readonly context: unknown,
  ) {
    this.lastPort = port + count - 1;
  }
}

const allOnes = (size: AccessSize) => (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1);
const truncate = (value: number, size: AccessSize) => (size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1));

function storeUnit(buffer: Uint8Array, byteOffset: number, value: number, size: AccessSize): void {
  buffer[byteOffset] = value;
  if (size === 1) return;
  buffer[byteOffset + 1] = value >>> 8;
  if (size === 2) return;
  buffer[byteOffset + 2] = value >>> 16;
  buffer[byteOffset + 3] = value >>> 24;
}

function loadUnit(buffer: Uint8Array, byteOffset: number, size: AccessSize): number {
  if (size === 1) return buffer[byteOffset]!;
  if (size === 2) return buffer[byteOffset]! | (buffer[byteOffset + 1]! << 8);
  return (buffer[byteOffset]! | (buffer[byteOffset + 1]! << 8) | (buffer[byteOffset + 2]! << 16) | (buffer[byteOffset + 3]! << 24)) >>> 0;
}

/** How many units a string callback says it moved, kept within 0..count. */
function clampUnits(done: number, count: number): number {
  return done >= count ? count : done > 0 ? Math.floor(done) : 0;
}

/**
 * The 64 KiB x86 I/O port space. Dispatch is a table lookup per port; ports nobody claims
 * read as all-ones and swallow writes, as on a PC's ISA bus.
 */
export class PortSpace {
  /**
   * Range index per port (0 = unassigned); index i refers to rangesById[i]. 32-bit because
   * 65536 one-port ranges plus the 0 sentinel need ids up to 0x10000.
   */
  private readonly owners = new Uint32Array(PORT_COUNT);
  private readonly rangesById: (RegisteredRange | null)[] = [null];
  private readonly freeIds: number[] = [];
  /** STAT_SLOTS counters per port; doubles, so they do not wrap at 2^32. */
  private readonly accessCounts = new Float64Array(PORT_COUNT * STAT_SLOTS);
  private breakpointChecker: IoBreakpointChecker | null = null;
  /** Unclaimed ports touched by reads, one per port (a 4-byte IN adds up to 4). */
  unassignedReads = 0;
  /** Unclaimed ports touched by writes, one per port. */
  unassignedWrites = 0;

  /** Claims `count` ports starting at `port` for a device. Overlaps are refused. */
  register(options: PortRangeOptions): PortRange {
    const { port, count, owner, device } = options;
    const maxAccessSize = options.maxAccessSize ?? 4;
    if (!Number.isInteger(port) || !Number.isInteger(count) || port < 0 || count < 1 || port + count > PORT_COUNT) {
      throw new IomError("ERR_IOM_INVALID_RANGE", `invalid port range for "${owner}": first ${hex(port)}, count ${count}`);
    }
    if (maxAccessSize !== 1 && maxAccessSize !== 2 && maxAccessSize !== 4) {
      throw new IomError("ERR_IOM_INVALID_ARGUMENT", `invalid maxAccessSize ${String(maxAccessSize)} for "${owner}" at ${hex(port)}: use 1, 2 or 4`);
    }
    for (let p = port; p < port + count; p++) {
      const existing = this.rangesById[this.owners[p]!];
      if (existing) {
        throw new IomError(
          "ERR_IOM_RANGE_OVERLAP",
          `ports ${hex(port)}-${hex(port + count - 1)} for "${owner}" overlap ${hex(existing.port)}-${hex(existing.lastPort)} claimed by "${existing.owner}"`,
        );
      }
    }
    const range = new RegisteredRange(port, count, owner, device, maxAccessSize, options.context);
    const id = this.freeIds.pop() ?? this.rangesById.length;
    this.rangesById[id] = range;
    this.owners.fill(id, port, port + count);
    return range;
  }

  /** Releases the range that starts at `port`. */
  deregister(port: number): PortRange {
    const id = port >= 0 && port < PORT_COUNT ? this.owners[port]! : NO_RANGE;
    const range = this.rangesById[id];
    if (!range || range.port !== port) throw new IomError("ERR_IOM_NOT_FOUND", `no port range starts at ${hex(port)}`);
    this.owners.fill(NO_RANGE, range.port, range.port + range.count);
    this.rangesById[id] = null;
    this.freeIds.push(id);
    return range;
  }

  /** The range serving `port`, if any. */
  rangeAt(port: number): PortRange | undefined {
    return this.rangesById[this.owners[port & 0xffff]!] ?? undefined;
  }

  /**
   * Installs the port-I/O breakpoint hook (or removes it with null). A debugger installs it
   * when its first I/O breakpoint is armed and removes it when the last one is disarmed.
   */
  setBreakpointChecker(checker: IoBreakpointChecker | null): void {
    this.breakpointChecker = checker;
  }

  /** IN: reads `size` bytes starting at `port`. */
  read(port: number, size: AccessSize): number {
    port &= 0xffff;
    if (this.breakpointChecker !== null) return this.readChecked(port, size);
    this.accessCounts[port * STAT_SLOTS + (size >> 1)]!++;
    return this.dispatchRead(port, size);
  }

  /** OUT: writes `size` bytes starting at `port`. */
  write(port: number, value: number, size: AccessSize): void {
    port &= 0xffff;
    if (this.breakpointChecker !== null) {
      this.writeChecked(port, truncate(value, size), size);
      return;
    }
    this.accessCounts[port * STAT_SLOTS + STAT_WRITES + (size >> 1)]!++;
    this.dispatchWrite(port, truncate(value, size), size);
  }

  /**
   * INS / REP INS: reads `count` units of `size` bytes from `port` into `buffer`
   * (little-endian, from its start). Uses the device's string callback where it has one.
   * Returns the units transferred: `count`, or fewer when a breakpoint halted the transfer.
   */
  readString(port: number, size: AccessSize, buffer: Uint8Array, count: number = Math.floor(buffer.length / size)): number {
    this.checkStringArguments("readString", port, size, buffer, count);
    port &= 0xffff;
    const checker = this.breakpointChecker;
    if (checker !== null) {
      const slot = port * STAT_SLOTS + (size >> 1);
      for (let i = 0; i < count; i++) {
        if (checker.checkPortAccess(port, size, "read", 0, "before") === "halt") return i;
        this.accessCounts[slot]!++;
        const value = this.dispatchRead(port, size);
        storeUnit(buffer, i * size, value, size);
        if (checker.checkPortAccess(port, size, "read", value, "after") === "halt") return i + 1;
      }
      return count;
    }
    this.accessCounts[port * STAT_SLOTS + (size >> 1)]! += count;
    let done = 0;
    const range = this.rangesById[this.owners[port]!]!;
    if (range !== null && port + size - 1 <= range.lastPort && size <= range.maxAccessSize && range.device.readPortString !== undefined && count > 0) {
      const view = buffer.length === count * size ? buffer : buffer.subarray(0, count * size);
      done = clampUnits(range.device.readPortString(port - range.port, size, view, count, range.context), count);
    }
    for (let i = done; i < count; i++) storeUnit(buffer, i * size, this.dispatchRead(port, size), size);
    return count;
  }

  /**
   * OUTS / REP OUTS: writes `count` units of `size` bytes from `buffer` (little-endian, from
   * its start) to `port`. Returns the units transferred, as `readString` does.
   */
  writeString(port: number, size: AccessSize, buffer: Uint8Array, count: number = Math.floor(buffer.length / size)): number {
    this.checkStringArguments("writeString", port, size, buffer, count);
    port &= 0xffff;
    const checker = this.breakpointChecker;
    if (checker !== null) {
      const slot = port * STAT_SLOTS + STAT_WRITES + (size >> 1);
      for (let i = 0; i < count; i++) {
        const value = loadUnit(buffer, i * size, size);
        if (checker.checkPortAccess(port, size, "write", value, "before") === "halt") return i;
        this.accessCounts[slot]!++;
        this.dispatchWrite(port, value, size);
        if (checker.checkPortAccess(port, size, "write", value, "after") === "halt") return i + 1;
      }
      return count;
    }
    this.accessCounts[port * STAT_SLOTS + STAT_WRITES + (size >> 1)]! += count;
    let done = 0;
    const range = this.rangesById[this.owners[port]!]!;
    if (range !== null && port + size - 1 <= range.lastPort && size <= range.maxAccessSize && range.device.writePortString !== undefined && count > 0) {
      const view = buffer.length === count * size ? buffer : buffer.subarray(0, count * size);
      done = clampUnits(range.device.writePortString(port - range.port, size, view, count, range.context), count);
    }
    for (let i = done; i < count; i++) this.dispatchWrite(port, loadUnit(buffer, i * size, size), size);
    return count;
  }

  /** Accesses the guest started at `port` (modulo 0x10000), by direction and size. */
  statisticsFor(port: number): PortStatistics {
    port &= 0xffff;
    const base = port * STAT_SLOTS;
    const c = this.accessCounts;
    return {
      port,
      owner: this.rangeAt(port)?.owner,
      reads: { byte: c[base]!, word: c[base + 1]!, dword: c[base + 2]! },
      writes: { byte: c[base + STAT_WRITES]!, word: c[base + STAT_WRITES + 1]!, dword: c[base + STAT_WRITES + 2]! },
    };
  }

  /** The statistics of every port the guest has accessed, in port order. */
  statistics(): PortStatistics[] {
    const result: PortStatistics[] = [];
    const c = this.accessCounts;
    for (let port = 0; port < PORT_COUNT; port++) {
      const base = port * STAT_SLOTS;
      if (c[base]! + c[base + 1]! + c[base + 2]! + c[base + 3]! + c[base + 4]! + c[base + 5]! !== 0) result.push(this.statisticsFor(port));
    }
    return result;
  }

  /** Zeroes every per-port counter and the unassigned-port counters. */
  resetStatistics(): void {
    this.accessCounts.fill(0);
    this.unassignedReads = 0;
    this.unassignedWrites = 0;
  }

  private readChecked(port: number, size: AccessSize): number {
    const checker = this.breakpointChecker!;
    // A halt before the access suppresses it: the device never sees it and it is not counted.
    if (checker.checkPortAccess(port, size, "read", 0, "before") === "halt") return allOnes(size);
    this.accessCounts[port * STAT_SLOTS + (size >> 1)]!++;
    const value = this.dispatchRead(port, size);
    checker.checkPortAccess(port, size, "read", value, "after");
    return value;
  }

  private writeChecked(port: number, value: number, size: AccessSize): void {
    const checker = this.breakpointChecker!;
    if (checker.checkPortAccess(port, size, "write", value, "before") === "halt") return;
    this.accessCounts[port * STAT_SLOTS + STAT_WRITES + (size >> 1)]!++;
    this.dispatchWrite(port, value, size);
    checker.checkPortAccess(port, size, "write", value, "after");
  }

  private dispatchRead(port: number, size: AccessSize): number {
    const range = this.rangesById[this.owners[port]!]!;
    if (range !== null && port + size - 1 <= range.lastPort) {
      if (size <= range.maxAccessSize) {
        const device = range.device;
        // Keep only `size` bytes: a wider answer would spill into neighbours when an access is split.
        return device.readPort !== undefined ? truncate(device.readPort(port - range.port, size, range.context), size) : allOnes(size);
      }
      // Inside one range but wider than the device takes: accesses of its width.
      return this.splitRead(port, size, range.maxAccessSize);
    }
    if (size === 1) {
      this.unassignedReads++;
      return 0xff;
    }
    // The access straddles ranges (or a hole): split into bytes as the bus does.
    return this.splitRead(port, size, 1);
  }

  private splitRead(port: number, size: AccessSize, unit: AccessSize): number {
    let value = 0;
    for (let i = 0; i < size; i += unit) value |= this.dispatchRead((port + i) & 0xffff, unit) << (8 * i);
    return value >>> 0;
  }

  private dispatchWrite(port: number, value: number, size: AccessSize): void {
    const range = this.rangesById[this.owners[port]!]!;
    if (range !== null && port + size - 1 <= range.lastPort) {
      if (size <= range.maxAccessSize) {
        range.device.writePort?.(port - range.port, value, size, range.context);
        return;
      }
      this.splitWrite(port, value, size, range.maxAccessSize);
      return;
    }
    if (size === 1) {
      this.unassignedWrites++;
      return;
    }
    this.splitWrite(port, value, size, 1);
  }

  private splitWrite(port: number, value: number, size: AccessSize, unit: AccessSize): void {
    const mask = unit === 1 ? 0xff : 0xffff;
    for (let i = 0; i < size; i += unit) this.dispatchWrite((port + i) & 0xffff, (value >>> (8 * i)) & mask, unit);
  }

  private checkStringArguments(method: string, port: number, size: AccessSize, buffer: Uint8Array, count: number): void {
    if (size !== 1 && size !== 2 && size !== 4) {
      throw new IomError("ERR_IOM_INVALID_ARGUMENT", `${method} at port ${hex(port & 0xffff)}: size ${String(size)} is not 1, 2 or 4`);
    }
    if (!Number.isInteger(count) || count < 0 || count * size > buffer.length) {
      throw new IomError(
        "ERR_IOM_INVALID_ARGUMENT",
        `${method} at port ${hex(port & 0xffff)}: ${String(count)} units of ${size} bytes do not fit a ${buffer.length}-byte buffer`,
      );
    }
  }
}
