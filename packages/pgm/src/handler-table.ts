/**
 * The handler pool and the lookup over registered handlers (spec §1.7, §2).
 *
 * Records live in a fixed-capacity pool stored as parallel typed arrays (struct of
 * arrays), so nothing is allocated per handler after construction. Registered handlers
 * are also kept in three parallel arrays sorted by start address; because handlers never
 * intersect, that is also the order of their last addresses, and a binary search answers
 * every lookup in ≤ 17 steps at 65 536 handlers. Inserting and removing shift the tail
 * (a memmove), which the pgm benchmark measures. A one-entry last-hit cache sits in front
 * of {@link lookup}.
 *
 * Internal: not exported from the package.
 */
import { NIL_ADDRESS } from "./constants.js";

/** Ids are `generation * ID_INDEX_SPAN + index`; the pool is at most 65 536 records. */
const ID_INDEX_SPAN = 65536;

/**
 * Fields assigned in the constructor are `declare`d: with define semantics a plain
 * declaration would first create them as `undefined`, and V8 would then give the hot
 * typed-array fields a generic type.
 */
export class HandlerTable {
  declare readonly capacity: number;

  // ---- the pool (indexed by record index) -------------------------------------------------
  /** Registered range, NIL_ADDRESS while unregistered. */
  declare readonly start: Float64Array;
  declare readonly last: Float64Array;
  declare readonly typeIndex: Uint8Array;
  declare readonly tmpOffCount: Int32Array;
  declare readonly aliasedCount: Int32Array;
  declare readonly callCount: Float64Array;
  /** 1 while the record is handed out. */
  declare readonly live: Uint8Array;
  /** 1 when a range owns the handler (a device MMIO range, MMIO2 dirty tracking). */
  declare readonly owned: Uint8Array;
  /** Bumped on every allocation, so the ids of a released record go stale. */
  declare readonly generation: Float64Array;
  declare readonly user: unknown[];
  declare readonly description: string[];
  declare private readonly free: Int32Array;
  private declare freeCount: number;

  // ---- registered handlers sorted by start ------------------------------------------------
  declare readonly sortedStart: Float64Array;
  declare readonly sortedLast: Float64Array;
  declare readonly sortedIndex: Int32Array;
  count = 0;

  // ---- last-hit cache -----------------------------------------------------------------------
  private cacheIndex = -1;
  private cacheStart = 0;
  private cacheLast = -1;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.start = new Float64Array(capacity).fill(NIL_ADDRESS);
    this.last = new Float64Array(capacity).fill(NIL_ADDRESS);
    this.typeIndex = new Uint8Array(capacity);
    this.tmpOffCount = new Int32Array(capacity);
    this.aliasedCount = new Int32Array(capacity);
    this.callCount = new Float64Array(capacity);
    this.live = new Uint8Array(capacity);
    this.owned = new Uint8Array(capacity);
    this.generation = new Float64Array(capacity);
    this.user = new Array<unknown>(capacity).fill(undefined);
    this.description = new Array<string>(capacity).fill("");
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.freeCount = capacity;
    this.sortedStart = new Float64Array(capacity);
    this.sortedLast = new Float64Array(capacity);
    this.sortedIndex = new Int32Array(capacity);
  }

  get freeRecords(): number {
    return this.freeCount;
  }

  /** Takes a record from the pool (unregistered, counters zero); -1 when the pool is empty. */
  allocate(): number {
    if (this.freeCount === 0) return -1;
    const index = this.free[--this.freeCount]!;
    this.live[index] = 1;
    this.generation[index]! += 1;
    this.start[index] = NIL_ADDRESS;
    this.last[index] = NIL_ADDRESS;
    this.tmpOffCount[index] = 0;
    this.aliasedCount[index] = 0;
    this.callCount[index] = 0;
    this.owned[index] = 0;
    return index;
  }

  /** Returns an unregistered record to the pool. */
  release(index: number): void {
    this.live[index] = 0;
    this.user[index] = undefined;
    this.description[index] = "";
    this.start[index] = NIL_ADDRESS;
    this.last[index] = NIL_ADDRESS;
    this.free[this.freeCount++] = index;
  }

  idOf(index: number): number {
    return this.generation[index]! * ID_INDEX_SPAN + index;
  }

  /** The record an id names, or -1 if the id is malformed or stale. */
  indexOfId(id: unknown): number {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) return -1;
    const index = id % ID_INDEX_SPAN;
    if (index >= this.capacity || this.live[index] !== 1) return -1;
    return this.generation[index] === (id - index) / ID_INDEX_SPAN ? index : -1;
  }

  // ---- lookups ------------------------------------------------------------------------------

  /** Position of the last registered handler with start ≤ address, -1 if none. */
  positionAtOrBelow(address: number): number {
    const starts = this.sortedStart;
    let low = 0;
    let high = this.count - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (starts[middle]! <= address) low = middle + 1;
      else high = middle - 1;
    }
    return high;
  }

  /** The record whose range contains `address`, or -1. Uses and fills the last-hit cache. */
  lookup(address: number): number {
    if (address >= this.cacheStart && address <= this.cacheLast) return this.cacheIndex;
    const position = this.positionAtOrBelow(address);
    if (position < 0 || this.sortedLast[position]! < address) return -1;
    const index = this.sortedIndex[position]!;
    this.cacheIndex = index;
    this.cacheStart = this.sortedStart[position]!;
    this.cacheLast = this.sortedLast[position]!;
    return index;
  }

  /** The handler containing `address`, else the one with the smallest start above it; -1 if none. */
  lookupAtOrAbove(address: number): number {
    const position = this.positionAtOrBelow(address);
    if (position >= 0 && this.sortedLast[position]! >= address) return this.sortedIndex[position]!;
    return position + 1 < this.count ? this.sortedIndex[position + 1]! : -1;
  }

  /** The handler containing `address`, else the one with the largest start below it; -1 if none. */
  lookupAtOrBelow(address: number): number {
    const position = this.positionAtOrBelow(address);
    return position >= 0 ? this.sortedIndex[position]! : -1;
  }

  /** The record registered with exactly this start, or -1. */
  exact(start: number): number {
    const position = this.positionAtOrBelow(start);
    return position >= 0 && this.sortedStart[position] === start ? this.sortedIndex[position]! : -1;
  }

  /** A registered record intersecting `[start, last]`, or -1. Checking the neighbours of `start` suffices. */
  findConflict(start: number, last: number): number {
    const position = this.positionAtOrBelow(start);
    if (position >= 0 && this.sortedLast[position]! >= start) return this.sortedIndex[position]!;
    if (position + 1 < this.count && this.sortedStart[position + 1]! <= last) return this.sortedIndex[position + 1]!;
    return -1;
  }

  // ---- changes ------------------------------------------------------------------------------

  /** Adds a record whose start/last are set and which intersects nothing (checked by the caller). */
  insert(index: number): void {
    const start = this.start[index]!;
    const position = this.positionAtOrBelow(start) + 1;
    const count = this.count;
    if (position < count) {
      this.sortedStart.copyWithin(position + 1, position, count);
      this.sortedLast.copyWithin(position + 1, position, count);
      this.sortedIndex.copyWithin(position + 1, position, count);
    }
    this.sortedStart[position] = start;
    this.sortedLast[position] = this.last[index]!;
    this.sortedIndex[position] = index;
    this.count = count + 1;
  }

  /** Removes the entry for `index`, found by its start; false if the sorted entry is missing or another record's. */
  remove(index: number): boolean {
    const start = this.start[index]!;
    const position = this.positionAtOrBelow(start);
    if (position < 0 || this.sortedStart[position] !== start || this.sortedIndex[position] !== index) return false;
    const count = this.count;
    this.sortedStart.copyWithin(position, position + 1, count);
    this.sortedLast.copyWithin(position, position + 1, count);
    this.sortedIndex.copyWithin(position, position + 1, count);
    this.count = count - 1;
    this.clearCache();
    return true;
  }

  /** Moves a registered record's last address (split, join); its neighbours were checked by the caller. */
  setLast(index: number, last: number): void {
    const position = this.positionAtOrBelow(this.start[index]!);
    this.last[index] = last;
    this.sortedLast[position] = last;
    this.clearCache();
  }

  clearCache(): void {
    this.cacheIndex = -1;
    this.cacheStart = 0;
    this.cacheLast = -1;
  }
}

/** Maximum arm state over the registered handlers touching the page at `pageAddress` (spec §3.4). */
export function maxArmStateOnPage(table: HandlerTable, pageAddress: number, armStateOf: (index: number) => number): number {
  const pageEnd = pageAddress + 4095;
  let position = table.positionAtOrBelow(pageAddress);
  if (position < 0 || table.sortedLast[position]! < pageAddress) position++;
  let state = 0;
  for (; position < table.count && table.sortedStart[position]! <= pageEnd; position++) {
    state = Math.max(state, armStateOf(table.sortedIndex[position]!));
  }
  return state;
}
