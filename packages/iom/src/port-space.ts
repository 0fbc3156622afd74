import { IomError } from "./errors.js";

export type AccessSize = 1 | 2 | 4;

/**
 * What a device behind a port range implements. `offset` is relative to the first port of
 * the range. Either callback may be absent: reads then float high, writes are dropped.
 */
export interface PortDevice {
  readPort?(offset: number, size: AccessSize): number;
  writePort?(offset: number, value: number, size: AccessSize): void;
}

export interface PortRangeOptions {
  /** First port, 0-0xFFFF. */
  readonly port: number;
  /** Number of ports, at least 1; the range must end at or below 0xFFFF. */
  readonly count: number;
  /** Who owns the range, for messages and statistics ("com1"). */
  readonly owner: string;
  readonly device: PortDevice;
}

/** A registered range (returned for deregistration and tools). */
export interface PortRange {
  readonly port: number;
  readonly count: number;
  readonly owner: string;
  readonly device: PortDevice;
}

const PORT_COUNT = 0x10000;
const NO_RANGE = 0;

const hex = (value: number) => "0x" + value.toString(16).padStart(value > 0xff ? 4 : 2, "0");

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
  private readonly rangesById: (PortRange | null)[] = [null];
  private readonly freeIds: number[] = [];
  unassignedReads = 0;
  unassignedWrites = 0;

  /** Claims `count` ports starting at `port` for a device. Overlaps are refused. */
  register(options: PortRangeOptions): PortRange {
    const { port, count, owner, device } = options;
    if (!Number.isInteger(port) || !Number.isInteger(count) || port < 0 || count < 1 || port + count > PORT_COUNT) {
      throw new IomError("ERR_IOM_INVALID_RANGE", `invalid port range for "${owner}": first ${hex(port)}, count ${count}`);
    }
    for (let p = port; p < port + count; p++) {
      const existing = this.rangesById[this.owners[p]!];
      if (existing) {
        throw new IomError(
          "ERR_IOM_RANGE_OVERLAP",
          `ports ${hex(port)}-${hex(port + count - 1)} for "${owner}" overlap ${hex(existing.port)}-${hex(existing.port + existing.count - 1)} claimed by "${existing.owner}"`,
        );
      }
    }
    const range: PortRange = { port, count, owner, device };
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

  /** IN: reads `size` bytes starting at `port`. */
  read(port: number, size: AccessSize): number {
    port &= 0xffff;
    const range = this.rangesById[this.owners[port]!];
    if (range && port + size <= range.port + range.count) {
      const device = range.device;
      if (device.readPort) {
        // Keep only `size` bytes: a wider answer would spill into neighbours when an access is split.
        const value = device.readPort(port - range.port, size);
        return size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
      }
      return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    }
    if (size === 1) {
      this.unassignedReads++;
      return 0xff;
    }
    // The access straddles ranges (or a hole): split into bytes as the bus does.
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.read((port + i) & 0xffff, 1) << (8 * i);
    return value >>> 0;
  }

  /** OUT: writes `size` bytes starting at `port`. */
  write(port: number, value: number, size: AccessSize): void {
    port &= 0xffff;
    const range = this.rangesById[this.owners[port]!];
    if (range && port + size <= range.port + range.count) {
      range.device.writePort?.(port - range.port, size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1), size);
      return;
    }
    if (size === 1) {
      this.unassignedWrites++;
      return;
    }
    for (let i = 0; i < size; i++) this.write((port + i) & 0xffff, (value >>> (8 * i)) & 0xff, 1);
  }
}
