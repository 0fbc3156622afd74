import { describe, expect, it } from "vitest";
import { isDbgfError } from "./errors.js";
import { SlotPool } from "./slot-pool.js";

describe("SlotPool", () => {
  it("hands out the lowest free index, chunk by chunk, and creates chunks only when the earlier ones are full", () => {
    const capacities: number[] = [];
    const pool = new SlotPool(40, 3, (capacity) => capacities.push(capacity));
    const first = Array.from({ length: 40 }, () => pool.allocate());
    expect(first).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(capacities).toEqual([40]);
    expect(pool.allocate()).toBe(40); // a chunk size that is not a multiple of 32: padding bits are never handed out
    expect(capacities).toEqual([40, 80]);
    expect([1, 2, 3, 4, 5].map(() => pool.allocate())).toEqual([41, 42, 43, 44, 45]);
    pool.free(7);
    pool.free(3);
    pool.free(45);
    expect([pool.allocate(), pool.allocate(), pool.allocate()]).toEqual([3, 7, 45]);
    while (pool.allocate() >= 0);
    expect(pool.inUse).toBe(120);
    expect(pool.capacity).toBe(120);
    expect(capacities).toEqual([40, 80, 120]);
    expect(pool.isAllocated(119)).toBe(true);
    expect(pool.isAllocated(120)).toBe(false);
    expect(pool.isAllocated(-1)).toBe(false);
  });

  it("reserve grows columns by at least half, in whole chunks, up to the maximum", () => {
    const pool = new SlotPool(0x1_0000, 16, () => undefined);
    expect(pool.reserve(0x1_0000, 0)).toBe(0x1_0000);
    expect(pool.reserve(0x2_0000, 0x1_0000)).toBe(0x2_0000);
    expect(pool.reserve(0x4_0000, 0x3_0000)).toBe(0x5_0000);
    expect(pool.reserve(0xe_0000, 0xc_0000)).toBe(0x10_0000);
    expect(pool.reserve(0x3_0000, 0x5_0000)).toBe(0x5_0000);
  });

  it("turns a failed column allocation into NoMemory and commits nothing", () => {
    let fail = true;
    const pool = new SlotPool(32, 2, () => {
      if (fail) throw new RangeError("Array buffer allocation failed");
    });
    let error: unknown;
    try {
      pool.allocate();
    } catch (caught) {
      error = caught;
    }
    expect(isDbgfError(error) && error.code).toBe("NoMemory");
    expect([pool.chunks, pool.capacity, pool.inUse]).toEqual([0, 0, 0]);
    fail = false;
    expect(pool.allocate()).toBe(0);
  });
});
