import { SlotPool } from "./slot-pool.js";
import { U64_MAX } from "./types.js";

/** Record kinds; the numbers are the reference's breakpoint types (spec §3.1). 0 = free. */
export const KIND_FREE = 0;
export const KIND_HARDWARE = 1;
export const KIND_INT3 = 2;
export const KIND_PORT_IO = 3;
export const KIND_MMIO = 4;

/** Stored flag bits: the public BreakpointFlags (0x7) plus this internal one. */
export const FLAG_ENABLED = 0x1;
export const FLAG_BEFORE = 0x2;
export const FLAG_AFTER = 0x4;
/** The record has a non-default trigger window in {@link BreakpointRecords.windows}. */
export const FLAG_WINDOW = 0x80;

/** `owner` column value for "no owner". */
export const NO_OWNER = 0xffff;

/** Thresholds of a breakpoint with a non-default window, split into 32-bit lanes for the hit path. */
export interface HitWindow {
  readonly trigger: bigint;
  readonly disable: bigint;
  /** max(trigger, 1) */
  readonly triggerLow: number;
  readonly triggerHigh: number;
  /** max(disable, 1); meaningless when disableNever. */
  readonly disableLow: number;
  readonly disableHigh: number;
  /** disable === U64_MAX */
  readonly disableNever: boolean;
}

export function hitWindow(trigger: bigint, disable: bigint): HitWindow {
  const effectiveTrigger = trigger === 0n ? 1n : trigger;
  const effectiveDisable = disable === 0n ? 1n : disable;
  return {
    trigger,
    disable,
    triggerLow: Number(effectiveTrigger & 0xffff_ffffn),
    triggerHigh: Number(effectiveTrigger >> 32n),
    disableLow: Number(effectiveDisable & 0xffff_ffffn),
    disableHigh: Number(effectiveDisable >> 32n),
    disableNever: disable === U64_MAX,
  };
}

/**
 * Every breakpoint's state, one typed-array column per field, indexed by handle (the
 * struct-of-arrays layout keeps a million records at a few dozen bytes each and the hit
 * path free of objects). Columns grow by one chunk when the pool creates one.
 *
 * Column use by kind:
 *
 * | column | hardware | int3 | port-io | mmio |
 * |---|---|---|---|---|
 * | addressLow/High | linear address | linear address | port / count | size / — |
 * | physical | — | physical address | — | physical address |
 * | access | type \| size << 2 \| slot << 8 | — | access bits | access bits |
 * | originalByte | — | saved byte | — | — |
 * | aliasNext | — | next int3 in the same physical-hash bucket | — | — |
 */
export class BreakpointRecords {
  readonly pool: SlotPool;
  kind = new Uint8Array(0);
  flags = new Uint8Array(0);
  owner = new Uint16Array(0);
  originalByte = new Uint8Array(0);
  access = new Uint16Array(0);
  addressLow = new Uint32Array(0);
  addressHigh = new Uint32Array(0);
  physical = new Float64Array(0);
  hitsLow = new Uint32Array(0);
  hitsHigh = new Uint32Array(0);
  aliasNext = new Uint32Array(0);
  /** User arguments, only for breakpoints that were given one. */
  readonly users = new Map<number, unknown>();
  /** Trigger windows, only for breakpoints with non-default thresholds (FLAG_WINDOW). */
  readonly windows = new Map<number, HitWindow>();

  constructor(chunkSize: number, maxChunks: number) {
    this.pool = new SlotPool(chunkSize, maxChunks, (capacity) => this.grow(capacity));
  }

  /** Handles in created chunks (the columns may be longer: see SlotPool.reserve). */
  get capacity(): number {
    return this.pool.capacity;
  }

  /** True when `handle` is an allocated record. */
  isLive(handle: number): boolean {
    return handle < this.kind.length && this.kind[handle] !== KIND_FREE;
  }

  /** Bytes held by the columns and the bitmap (the maps' contents are not counted). */
  get byteLength(): number {
    return (
      this.kind.byteLength +
      this.flags.byteLength +
      this.owner.byteLength +
      this.originalByte.byteLength +
      this.access.byteLength +
      this.addressLow.byteLength +
      this.addressHigh.byteLength +
      this.physical.byteLength +
      this.hitsLow.byteLength +
      this.hitsHigh.byteLength +
      this.aliasNext.byteLength +
      this.pool.byteLength
    );
  }

  /** Clears a record's columns and side entries (the pool index is freed by the caller). */
  wipe(handle: number): void {
    this.kind[handle] = KIND_FREE;
    this.flags[handle] = 0;
    this.owner[handle] = NO_OWNER;
    this.originalByte[handle] = 0;
    this.access[handle] = 0;
    this.addressLow[handle] = 0;
    this.addressHigh[handle] = 0;
    this.physical[handle] = 0;
    this.hitsLow[handle] = 0;
    this.hitsHigh[handle] = 0;
    this.aliasNext[handle] = 0;
    this.users.delete(handle);
    this.windows.delete(handle);
  }

  private grow(capacity: number): void {
    const length = this.pool.reserve(capacity, this.kind.length);
    if (length === this.kind.length) return;
    this.kind = grown(this.kind, new Uint8Array(length));
    this.flags = grown(this.flags, new Uint8Array(length));
    this.owner = grown(this.owner, new Uint16Array(length));
    this.originalByte = grown(this.originalByte, new Uint8Array(length));
    this.access = grown(this.access, new Uint16Array(length));
    this.addressLow = grown(this.addressLow, new Uint32Array(length));
    this.addressHigh = grown(this.addressHigh, new Uint32Array(length));
    this.physical = grown(this.physical, new Float64Array(length));
    this.hitsLow = grown(this.hitsLow, new Uint32Array(length));
    this.hitsHigh = grown(this.hitsHigh, new Uint32Array(length));
    this.aliasNext = grown(this.aliasNext, new Uint32Array(length));
  }
}

/** Copies `old` into the start of `larger` and returns `larger`. */
export function grown<T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(old: T, larger: T): T {
  larger.set(old as never);
  return larger;
}
