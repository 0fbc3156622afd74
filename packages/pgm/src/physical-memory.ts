import { hex, PgmError } from "./errors.js";

export const PAGE_SIZE = 4096;
/** Guest-physical addresses are below 2^52 (x86 MAXPHYADDR). */
export const MAX_PHYSICAL_ADDRESS = 2 ** 52 - 1;

export type AccessSize = 1 | 2 | 4;

export type RangeKind = "ram" | "rom" | "mmio";

/** A device (or anything) behind an MMIO range. Offsets are relative to the range start. */
export interface MmioDevice {
  read(offset: number, size: AccessSize): number;
  write(offset: number, value: number, size: AccessSize): void;
}

/** One registered range of the guest-physical address space. */
export interface PhysicalRange {
  readonly kind: RangeKind;
  readonly start: number;
  readonly size: number;
  /** Inclusive. */
  readonly lastAddress: number;
  readonly description: string;
  /** RAM and ROM backing, `size` bytes; byte i is guest-physical address `start + i`. */
  readonly bytes: Uint8Array | null;
  readonly device: MmioDevice | null;
}

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
   * i). RAM and ROM ranges that fit below this size are views into it, which lets an
   * interpreter use a single typed array for them. Default 0 (every range gets its own buffer).
   */
  readonly arenaSize?: number;
}

/**
 * The guest-physical address space: RAM, ROM and MMIO ranges, and accesses through them.
 * Unassigned addresses read as all-ones and ignore writes, like an ISA bus with nothing on it.
 */
export class PhysicalMemory {
  /** Backing of RAM/ROM ranges below arenaSize. */
  readonly arena: Uint8Array;
  private readonly sortedRanges: PhysicalRange[] = [];
  private readonly listeners: PhysicalMemoryListener[] = [];
  private lastRange: PhysicalRange | null = null;
  /** Accesses to addresses no range covers (reads, writes). */
  unassignedReads = 0;
  unassignedWrites = 0;

  constructor(options: PhysicalMemoryOptions = {}) {
    const arenaSize = options.arenaSize ?? 0;
    if (!Number.isInteger(arenaSize) || arenaSize < 0 || arenaSize % PAGE_SIZE !== 0 || arenaSize > 2 ** 32) {
      throw new PgmError("ERR_PGM_INVALID_ARGUMENT", `arena size ${arenaSize} must be a multiple of 4096 up to 4 GiB`);
    }
    this.arena = new Uint8Array(arenaSize);
  }

  /** All ranges in address order. */
  get ranges(): readonly PhysicalRange[] {
    return this.sortedRanges;
  }

  addListener(listener: PhysicalMemoryListener): void {
    this.listeners.push(listener);
    for (const range of this.sortedRanges) listener.rangeAdded(range);
  }

  /** Adds zero-filled RAM. `start` and `size` are page multiples. */
  addRam(start: number, size: number, description: string): PhysicalRange {
    this.checkNewRange(start, size, description);
    return this.insert({ kind: "ram", start, size, lastAddress: start + size - 1, description, bytes: this.backing(start, size), device: null });
  }

  /**
   * Adds ROM holding `content` (padded with 0xFF to whole pages). Guest writes are ignored;
   * {@link loadBytes} may still fill it (firmware loading, debuggers).
   */
  addRom(start: number, content: Uint8Array, description: string): PhysicalRange {
    const size = Math.ceil(content.length / PAGE_SIZE) * PAGE_SIZE;
    this.checkNewRange(start, size, description);
    const bytes = this.backing(start, size);
    bytes.fill(0xff);
    bytes.set(content);
    return this.insert({ kind: "rom", start, size, lastAddress: start + size - 1, description, bytes, device: null });
  }

  /** Adds an MMIO range served by `device`. */
  addMmio(start: number, size: number, device: MmioDevice, description: string): PhysicalRange {
    this.checkNewRange(start, size, description);
    return this.insert({ kind: "mmio", start, size, lastAddress: start + size - 1, description, bytes: null, device });
  }

  /** Removes the range that starts at `start`. */
  removeRange(start: number): PhysicalRange {
    const index = this.sortedRanges.findIndex((range) => range.start === start);
    if (index < 0) throw new PgmError("ERR_PGM_NOT_FOUND", `no range starts at ${hex(start)}`);
    const [range] = this.sortedRanges.splice(index, 1);
    this.lastRange = null;
    if (range!.bytes && range!.start + range!.size <= this.arena.length) range!.bytes.fill(0);
    for (const listener of this.listeners) listener.rangeRemoved(range!);
    return range!;
  }

  /** The range containing `address`, or undefined for unassigned space. */
  rangeAt(address: number): PhysicalRange | undefined {
    const last = this.lastRange;
    if (last && address >= last.start && address <= last.lastAddress) return last;
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

  // ---- guest accesses -------------------------------------------------------------------

  /** Reads 1, 2 or 4 bytes (little-endian) as the guest would. */
  read(address: number, size: AccessSize): number {
    const range = this.rangeAt(address);
    if (range && address + size - 1 <= range.lastAddress) {
      if (range.bytes) {
        const offset = address - range.start;
        const bytes = range.bytes;
        if (size === 1) return bytes[offset]!;
        if (size === 2) return bytes[offset]! | (bytes[offset + 1]! << 8);
        return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
      }
      // Keep only `size` bytes: a wider answer would spill into neighbours when an access is split.
      const value = range.device!.read(address - range.start, size);
      return size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
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

  /** Writes 1, 2 or 4 bytes as the guest would (ROM ignores it, holes drop it). */
  write(address: number, value: number, size: AccessSize): void {
    const range = this.rangeAt(address);
    if (range && address + size - 1 <= range.lastAddress) {
      if (range.kind === "ram") {
        const offset = address - range.start;
        const bytes = range.bytes!;
        bytes[offset] = value;
        if (size >= 2) bytes[offset + 1] = value >>> 8;
        if (size === 4) {
          bytes[offset + 2] = value >>> 16;
          bytes[offset + 3] = value >>> 24;
        }
      } else if (range.kind === "mmio") {
        range.device!.write(address - range.start, size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1), size);
      }
      return;
    }
    if (!range && this.isUnassigned(address, size)) {
      this.unassignedWrites++;
      return;
    }
    for (let i = 0; i < size; i++) this.write(address + i, (value >>> (8 * i)) & 0xff, 1);
  }

  /**
   * Copies `bytes` into RAM or ROM at `address` (image loading, debuggers). Throws, and
   * writes nothing, if any byte would land outside RAM/ROM.
   */
  loadBytes(address: number, bytes: Uint8Array): void {
    this.forEachBackedChunk(address, bytes.length, "load", (target, offset, from, length) => {
      target.set(bytes.subarray(from, from + length), offset);
    });
  }

  /** Copies guest RAM/ROM into a new array; throws if any byte is not RAM/ROM. */
  readBytes(address: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.forEachBackedChunk(address, length, "read", (source, offset, to, chunk) => {
      out.set(source.subarray(offset, offset + chunk), to);
    });
    return out;
  }

  // ---- internals ---------------------------------------------------------------------------

  private forEachBackedChunk(
    address: number,
    length: number,
    verb: string,
    visit: (bytes: Uint8Array, offset: number, position: number, length: number) => void,
  ): void {
    if (!Number.isInteger(address) || address < 0 || address + length - 1 > MAX_PHYSICAL_ADDRESS) {
      throw new PgmError("ERR_PGM_OUT_OF_RANGE", `cannot ${verb} ${length} bytes at ${hex(address)}: outside the physical address space`);
    }
    // Validate everything first so a failure changes nothing.
    const chunks: [PhysicalRange, number, number, number][] = [];
    let position = 0;
    while (position < length) {
      const current = address + position;
      const range = this.rangeAt(current);
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
    for (let i = 1; i < size; i++) if (this.rangeAt(address + i)) return false;
    return true;
  }

  private backing(start: number, size: number): Uint8Array {
    if (start + size <= this.arena.length) return this.arena.subarray(start, start + size);
    return new Uint8Array(size);
  }

  private checkNewRange(start: number, size: number, description: string): void {
    if (!Number.isInteger(start) || !Number.isInteger(size) || size <= 0 || start < 0 || start + size - 1 > MAX_PHYSICAL_ADDRESS) {
      throw new PgmError("ERR_PGM_INVALID_RANGE", `invalid range "${description}": start ${hex(start)}, size ${hex(size)}`);
    }
    if (start % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0) {
      throw new PgmError("ERR_PGM_INVALID_RANGE", `range "${description}" at ${hex(start)} (size ${hex(size)}) is not page aligned`);
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

  private insert(range: PhysicalRange): PhysicalRange {
    let index = 0;
    while (index < this.sortedRanges.length && this.sortedRanges[index]!.start < range.start) index++;
    this.sortedRanges.splice(index, 0, range);
    for (const listener of this.listeners) listener.rangeAdded(range);
    return range;
  }
}
