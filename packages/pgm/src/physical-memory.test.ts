import { describe, expect, it } from "vitest";
import {
  isPgmError,
  MAX_PHYSICAL_ADDRESS,
  PAGE_SIZE,
  PhysicalMemory,
  type AccessSize,
  type MmioDevice,
  type PgmErrorCode,
  type PhysicalMemoryListener,
  type PhysicalRange,
} from "./index.js";

/** Runs `action`, which must throw a PgmError with `code`, and returns that error. */
function pgmError(code: PgmErrorCode, action: () => unknown): Error {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(isPgmError(caught), `expected a PgmError ${code}, got ${String(caught)}`).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
  return caught as Error;
}

type DeviceCall = ["read", number, AccessSize] | ["write", number, number, AccessSize];

/** An MMIO device that logs every call; by default byte `offset` reads as `0xa0 + offset` (mod 256). */
function recordingDevice(readValue = (offset: number, size: AccessSize) => littleEndian(offset, size)) {
  const calls: DeviceCall[] = [];
  const device: MmioDevice = {
    read(offset, size) {
      calls.push(["read", offset, size]);
      return readValue(offset, size);
    },
    write(offset, value, size) {
      calls.push(["write", offset, value, size]);
    },
  };
  return { device, calls };
}

function littleEndian(offset: number, size: AccessSize): number {
  let value = 0;
  for (let i = 0; i < size; i++) value |= ((0xa0 + offset + i) & 0xff) << (8 * i);
  return value >>> 0;
}

function recordingListener() {
  const events: string[] = [];
  const listener: PhysicalMemoryListener = {
    rangeAdded: (range) => events.push(`+${range.description}`),
    rangeRemoved: (range) => events.push(`-${range.description}`),
  };
  return { listener, events };
}

const describeRanges = (memory: PhysicalMemory) => memory.ranges.map((r) => `${r.kind} ${r.description} ${r.start}-${r.lastAddress}`);

describe("the range map", () => {
  it("keeps ranges in address order with inclusive last addresses, and finds them by address", () => {
    const memory = new PhysicalMemory();
    const { device } = recordingDevice();
    memory.addMmio(0x10000, 0x1000, device, "mmio");
    memory.addRam(0, 0x2000, "ram");
    memory.addRom(0x8000, new Uint8Array(1), "rom");

    expect(describeRanges(memory)).toEqual(["ram ram 0-8191", "rom rom 32768-36863", "mmio mmio 65536-69631"]);
    expect(memory.rangeAt(0)?.description).toBe("ram");
    expect(memory.rangeAt(0x1fff)?.description).toBe("ram");
    expect(memory.rangeAt(0x2000)).toBeUndefined();
    expect(memory.rangeAt(0x8fff)?.description).toBe("rom");
    expect(memory.rangeAt(0x10000)?.device).toBe(device);
    expect(memory.rangeAt(0x11000)).toBeUndefined();
  });

  it("accepts ranges that touch without overlapping", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0x1000, 0x1000, "middle");
    memory.addRam(0, 0x1000, "below");
    memory.addRam(0x2000, 0x1000, "above");
    expect(memory.ranges.map((r) => r.description)).toEqual(["below", "middle", "above"]);
  });

  it.each([
    ["the same range", 0x2000, 0x2000],
    ["its start", 0x1000, 0x2000],
    ["its end", 0x3000, 0x2000],
    ["the inside of it", 0x2000, 0x1000],
    ["all of it and more", 0, 0x10000],
  ])("refuses a range overlapping %s, naming both, with the map unchanged", (_case, start, size) => {
    const memory = new PhysicalMemory({ arenaSize: 0x10000 });
    memory.addRam(0x2000, 0x2000, "existing ram");
    memory.write(0x2000, 0x5a, 1);
    const { listener, events } = recordingListener();
    memory.addListener(listener);
    const before = describeRanges(memory);
    const { device } = recordingDevice();
    const last = start + size - 1;

    for (const add of [
      () => memory.addRam(start, size, "new range"),
      () => memory.addRom(start, new Uint8Array(size), "new range"),
      () => memory.addMmio(start, size, device, "new range"),
    ]) {
      const error = pgmError("ERR_PGM_RANGE_OVERLAP", add);
      expect(error.message).toContain(`"new range" 0x${start.toString(16)}-0x${last.toString(16)}`);
      expect(error.message).toContain(`"existing ram" 0x2000-0x3fff`);
    }

    expect(describeRanges(memory)).toEqual(before);
    expect(events).toEqual(["+existing ram"]);
    // The ROM attempt must not have filled the arena around the existing range with 0xFF.
    expect(memory.arena[0x1fff]).toBe(0);
    expect(memory.read(0x2000, 1)).toBe(0x5a);
    expect(memory.arena[0x4000]).toBe(0);
  });

  it.each([
    ["an unaligned start", 0x800, 0x1000],
    ["an unaligned size", 0x1000, 0x800],
    ["a zero size", 0x1000, 0],
    ["a negative size", 0x1000, -0x1000],
    ["a negative start", -0x1000, 0x1000],
    ["a fractional start", 0.5, 0x1000],
    ["a NaN size", 0, Number.NaN],
    ["a start above the address space", 2 ** 52, 0x1000],
    ["an end above the address space", 2 ** 52 - 0x1000, 0x2000],
  ])("refuses %s", (_case, start, size) => {
    const memory = new PhysicalMemory();
    const { listener, events } = recordingListener();
    memory.addListener(listener);
    const { device } = recordingDevice();
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.addRam(start, size, "bad"));
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.addMmio(start, size, device, "bad"));
    expect(memory.ranges).toEqual([]);
    expect(events).toEqual([]);
  });

  it("refuses ROM with no content or at an unaligned start", () => {
    const memory = new PhysicalMemory();
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.addRom(0, new Uint8Array(0), "empty"));
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.addRom(0x10, new Uint8Array(16), "unaligned"));
    expect(memory.ranges).toEqual([]);
  });

  it("accepts a range ending at the last physical address", () => {
    const memory = new PhysicalMemory();
    const { device } = recordingDevice();
    const range = memory.addMmio(2 ** 52 - PAGE_SIZE, PAGE_SIZE, device, "top");
    expect(range.lastAddress).toBe(MAX_PHYSICAL_ADDRESS);
    expect(memory.rangeAt(MAX_PHYSICAL_ADDRESS)).toBe(range);
  });

  it("removes a range by its start, returning it and leaving a hole", () => {
    const memory = new PhysicalMemory();
    const ram = memory.addRam(0, 0x1000, "ram");
    memory.addRam(0x1000, 0x1000, "ram2");
    expect(memory.read(0x10, 1)).toBe(0); // primes the last-hit cache with "ram"
    expect(memory.removeRange(0)).toBe(ram);
    expect(memory.rangeAt(0x10)).toBeUndefined();
    expect(memory.read(0x10, 1)).toBe(0xff);
    expect(memory.ranges.map((r) => r.description)).toEqual(["ram2"]);
  });

  it("refuses to remove at an address where no range starts, changing nothing", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0x1000, 0x2000, "ram");
    const error = pgmError("ERR_PGM_NOT_FOUND", () => memory.removeRange(0x2000));
    expect(error.message).toContain("0x2000");
    pgmError("ERR_PGM_NOT_FOUND", () => memory.removeRange(0));
    expect(memory.ranges.map((r) => r.description)).toEqual(["ram"]);
  });

  it.each([1, -PAGE_SIZE, PAGE_SIZE / 2, 1.5 * PAGE_SIZE, 2 ** 32 + PAGE_SIZE])("refuses an arena of %d bytes", (arenaSize) => {
    pgmError("ERR_PGM_INVALID_ARGUMENT", () => new PhysicalMemory({ arenaSize }));
  });
});

describe("listeners", () => {
  it("are told about existing ranges on registration, then about each addition and removal", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0x1000, 0x1000, "b");
    memory.addRam(0, 0x1000, "a");
    const { listener, events } = recordingListener();
    memory.addListener(listener);
    expect(events).toEqual(["+a", "+b"]);

    memory.addRom(0x2000, new Uint8Array(1), "c");
    memory.removeRange(0x1000);
    expect(events).toEqual(["+a", "+b", "+c", "-b"]);
  });

  it("receive the removed range object itself, and every listener is told", () => {
    const memory = new PhysicalMemory();
    const removed: PhysicalRange[][] = [[], []];
    for (const list of removed) memory.addListener({ rangeAdded: () => {}, rangeRemoved: (range) => list.push(range) });
    const range = memory.addRam(0, 0x1000, "ram");
    memory.removeRange(0);
    expect(removed).toEqual([[range], [range]]);
    expect(removed[0]![0]).toBe(range);
  });
});

describe("RAM", () => {
  it("starts zeroed", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x2000, "ram");
    expect(memory.read(0x1234, 4)).toBe(0);
    expect(memory.readBytes(0, 0x2000).every((byte) => byte === 0)).toBe(true);
  });

  it("reads and writes 1, 2 and 4 bytes little-endian at any alignment", () => {
    const memory = new PhysicalMemory();
    const ram = memory.addRam(0x10000, 0x2000, "ram");
    memory.write(0x10ffe, 0x12345678, 4); // crosses a page boundary inside one range
    expect([...ram.bytes!.subarray(0xffe, 0x1002)]).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect(memory.read(0x10ffe, 1)).toBe(0x78);
    expect(memory.read(0x10fff, 2)).toBe(0x3456);
    expect(memory.read(0x10ffe, 4)).toBe(0x12345678);

    memory.write(0x10100, 0xbeef, 2);
    expect(memory.readBytes(0x10100, 2)).toEqual(new Uint8Array([0xef, 0xbe]));
    memory.write(0x10200, 0x7f, 1);
    expect(memory.read(0x10200, 1)).toBe(0x7f);
  });

  it("returns 32-bit values unsigned", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram");
    memory.write(0x40, 0xdeadbeef, 4);
    expect(memory.read(0x40, 4)).toBe(0xdeadbeef);
    memory.write(0x80, -1, 4);
    expect(memory.read(0x80, 4)).toBe(0xffffffff);
  });

  it("writes only the bytes of the access size", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram");
    memory.loadBytes(0x100, new Uint8Array([0x11, 0x22, 0x33, 0x44, 0x55]));
    memory.write(0x100, 0xaabbccdd, 1);
    memory.write(0x102, 0xaabbccdd, 2);
    expect(memory.readBytes(0x100, 5)).toEqual(new Uint8Array([0xdd, 0x22, 0xdd, 0xcc, 0x55]));
  });
});

describe("ROM", () => {
  it("holds its content padded with 0xFF to whole pages", () => {
    const memory = new PhysicalMemory();
    const rom = memory.addRom(0xf0000, new Uint8Array([1, 2, 3]), "bios");
    expect(rom.size).toBe(PAGE_SIZE);
    expect(memory.read(0xf0000, 4)).toBe(0xff030201);
    expect(memory.read(0xf0fff, 1)).toBe(0xff);
    expect(memory.addRom(0x100000, new Uint8Array(PAGE_SIZE + 1), "two pages").size).toBe(2 * PAGE_SIZE);
  });

  it("copies its content, so later changes to the source array do not reach the guest", () => {
    const memory = new PhysicalMemory();
    const content = new Uint8Array([0x90]);
    memory.addRom(0, content, "rom");
    content[0] = 0xcc;
    expect(memory.read(0, 1)).toBe(0x90);
  });

  it("ignores guest writes without counting them as unassigned", () => {
    const memory = new PhysicalMemory();
    memory.addRom(0, new Uint8Array([1, 2, 3, 4]), "rom");
    memory.write(0, 0xffffffff, 4);
    memory.write(2, 0, 1);
    expect(memory.read(0, 4)).toBe(0x04030201);
    expect(memory.unassignedWrites).toBe(0);
  });

  it("is filled by loadBytes and read by readBytes", () => {
    const memory = new PhysicalMemory();
    memory.addRom(0xe0000, new Uint8Array(0x1000), "rom");
    memory.loadBytes(0xe0010, new Uint8Array([0xea, 0x5b, 0xe0]));
    expect(memory.read(0xe0010, 4)).toBe(0x00e05bea);
    expect(memory.readBytes(0xe0010, 3)).toEqual(new Uint8Array([0xea, 0x5b, 0xe0]));
  });
});

describe("MMIO", () => {
  it("passes reads and writes to the device with offsets relative to the range start", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram");
    const { device, calls } = recordingDevice();
    memory.addMmio(0xfee00000, 0x1000, device, "apic");

    expect(memory.read(0xfee00020, 4)).toBe(0xc3c2c1c0);
    expect(memory.read(0xfee00fff, 1)).toBe((0xa0 + 0xfff) & 0xff);
    memory.write(0xfee000b0, 0x1234, 2);
    memory.write(0xfee00000, 0x80, 1);
    expect(calls).toEqual([
      ["read", 0x20, 4],
      ["read", 0xfff, 1],
      ["write", 0xb0, 0x1234, 2],
      ["write", 0, 0x80, 1],
    ]);
    expect(memory.unassignedReads + memory.unassignedWrites).toBe(0);
  });

  it("gives the device only the bytes of the access size", () => {
    const memory = new PhysicalMemory();
    const { device, calls } = recordingDevice();
    memory.addMmio(0, 0x1000, device, "mmio");
    memory.write(0, 0x1234, 1);
    memory.write(0, 0x12345678, 2);
    memory.write(0, -1, 4);
    expect(calls).toEqual([
      ["write", 0, 0x34, 1],
      ["write", 0, 0x5678, 2],
      ["write", 0, 0xffffffff, 4],
    ]);
  });

  it("truncates a device's answer to the access size and returns it unsigned", () => {
    // A device may answer "all ones" as -1 whatever the size; the guest sees only `size` bytes.
    const memory = new PhysicalMemory();
    const { device } = recordingDevice(() => -1);
    memory.addMmio(0x1000, 0x1000, device, "lazy");
    memory.addRam(0, 0x1000, "ram");
    expect(memory.read(0x1000, 1)).toBe(0xff);
    expect(memory.read(0x1000, 2)).toBe(0xffff);
    expect(memory.read(0x1000, 4)).toBe(0xffffffff);
    // Straddling RAM (zero) into the device: the device's byte must not spill into other bytes.
    expect(memory.read(0xfff, 2)).toBe(0xff00);
    expect(memory.read(0xffe, 4)).toBe(0xffff0000);
  });
});

describe("unassigned space", () => {
  it.each([
    [1, 0xff],
    [2, 0xffff],
    [4, 0xffffffff],
  ] as const)("reads all-ones for a %d-byte access and counts it once", (size, expected) => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram");
    expect(memory.read(0x5000, size)).toBe(expected);
    expect(memory.unassignedReads).toBe(1);
    expect(memory.unassignedWrites).toBe(0);
  });

  it("drops writes and counts them", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x4000 });
    memory.addRam(0, 0x1000, "ram");
    memory.write(0x2000, 0x12345678, 4);
    memory.write(0x2004, 0x12, 1);
    expect(memory.unassignedWrites).toBe(2);
    expect(memory.unassignedReads).toBe(0);
    expect(memory.arena.every((byte) => byte === 0)).toBe(true);
    expect(memory.read(0x2000, 4)).toBe(0xffffffff);
  });

  it("is all of an empty address space", () => {
    const memory = new PhysicalMemory();
    expect(memory.read(0, 4)).toBe(0xffffffff);
    expect(memory.read(MAX_PHYSICAL_ADDRESS, 1)).toBe(0xff);
    memory.write(0x7c00, 0, 2);
    expect([memory.unassignedReads, memory.unassignedWrites]).toEqual([2, 1]);
  });
});

describe("accesses straddling ranges", () => {
  it("split into bytes from RAM into MMIO", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram");
    const { device, calls } = recordingDevice();
    memory.addMmio(0x1000, 0x1000, device, "mmio");
    memory.write(0xffe, 0x1122, 2); // all RAM

    expect(memory.read(0xffe, 4)).toBe(0xa1a01122);
    memory.write(0xfff, 0x33445566, 4);
    expect(memory.read(0xfff, 1)).toBe(0x66);
    expect(calls).toEqual([
      ["read", 0, 1],
      ["read", 1, 1],
      ["write", 0, 0x55, 1],
      ["write", 1, 0x44, 1],
      ["write", 2, 0x33, 1],
    ]);
  });

  it("split into bytes between RAM and unassigned space, counting each unassigned byte", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0x1000, 0x1000, "ram");
    memory.write(0x1000, 0xbbaa, 2);
    memory.write(0x1ffe, 0xddcc, 2);

    expect(memory.read(0xffe, 4)).toBe(0xbbaaffff); // hole, hole, RAM, RAM
    expect(memory.read(0x1ffe, 4)).toBe(0xffffddcc); // RAM, RAM, hole, hole
    expect(memory.unassignedReads).toBe(4);

    memory.write(0x1ffe, 0x44332211, 4);
    expect(memory.read(0x1ffe, 2)).toBe(0x2211);
    expect(memory.unassignedWrites).toBe(2);
  });

  it("split between two adjacent RAM ranges, each getting its bytes", () => {
    const memory = new PhysicalMemory();
    const low = memory.addRam(0, 0x1000, "low");
    const high = memory.addRam(0x1000, 0x1000, "high");
    memory.write(0xffd, 0x44332211, 4);
    expect([...low.bytes!.subarray(0xffd)]).toEqual([0x11, 0x22, 0x33]);
    expect(high.bytes![0]).toBe(0x44);
    expect(memory.read(0xffd, 4)).toBe(0x44332211);
    expect(memory.read(0xfff, 2)).toBe(0x4433);
  });

  it("leave the ROM part of a write unchanged and write the RAM part", () => {
    const memory = new PhysicalMemory();
    memory.addRom(0, new Uint8Array(0x1000).fill(0xee), "rom");
    memory.addRam(0x1000, 0x1000, "ram");
    memory.write(0xffe, 0x44332211, 4);
    expect(memory.read(0xffe, 4)).toBe(0x4433eeee);
  });
});

describe("loadBytes and readBytes", () => {
  it("cross contiguous RAM and ROM ranges", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram 1");
    memory.addRom(0x1000, new Uint8Array(0x1000), "rom");
    memory.addRam(0x2000, 0x1000, "ram 2");
    const image = Uint8Array.from({ length: 0x1010 }, (_, i) => (i * 7) & 0xff);

    memory.loadBytes(0xff8, image);
    expect(memory.readBytes(0xff8, image.length)).toEqual(image);
    expect(memory.read(0x1000, 1)).toBe(image[8]);
    expect(memory.read(0x2000, 1)).toBe(image[0x1008]);
    expect(memory.read(0xff7, 1)).toBe(0);
    expect(memory.read(0x2008, 1)).toBe(0);
  });

  it("return a copy from readBytes", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram");
    memory.readBytes(0, 4).fill(0x99);
    expect(memory.read(0, 4)).toBe(0);
  });

  it("accept zero bytes", () => {
    const memory = new PhysicalMemory();
    memory.loadBytes(0x1000, new Uint8Array(0));
    expect(memory.readBytes(0x1000, 0)).toEqual(new Uint8Array(0));
  });

  it("write nothing when any byte would land in unassigned space", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram");
    memory.addRam(0x2000, 0x1000, "ram 2");
    const error = pgmError("ERR_PGM_OUT_OF_RANGE", () => memory.loadBytes(0xff0, new Uint8Array(0x1020).fill(0x77)));
    expect(error.message).toContain("0x1000 is not RAM or ROM");
    expect(memory.readBytes(0xff0, 0x10).every((byte) => byte === 0)).toBe(true);
    expect(memory.read(0x2000, 1)).toBe(0);
    pgmError("ERR_PGM_OUT_OF_RANGE", () => memory.readBytes(0xff0, 0x20));
  });

  it("write nothing, and do not touch the device, when any byte would land in MMIO", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x1000, "ram");
    const { device, calls } = recordingDevice();
    memory.addMmio(0x1000, 0x1000, device, "uart mmio");
    const error = pgmError("ERR_PGM_OUT_OF_RANGE", () => memory.loadBytes(0xffc, new Uint8Array(8).fill(0x77)));
    expect(error.message).toContain("MMIO (uart mmio)");
    expect(memory.read(0xffc, 4)).toBe(0);
    pgmError("ERR_PGM_OUT_OF_RANGE", () => memory.readBytes(0xffc, 8));
    expect(calls).toEqual([]);
  });

  it.each([
    [-1, 1],
    [0.5, 1],
    [MAX_PHYSICAL_ADDRESS, 2],
  ])("refuse address %d outside the physical address space", (address, length) => {
    const memory = new PhysicalMemory();
    memory.addMmio(2 ** 52 - PAGE_SIZE, PAGE_SIZE, recordingDevice().device, "top");
    memory.addRam(0, 0x1000, "ram");
    pgmError("ERR_PGM_OUT_OF_RANGE", () => memory.loadBytes(address, new Uint8Array(length)));
    pgmError("ERR_PGM_OUT_OF_RANGE", () => memory.readBytes(address, length));
  });
});

describe("the arena", () => {
  it("backs RAM and ROM below its size: range bytes are views into it at byteOffset == address", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x20000 });
    const ram = memory.addRam(0x1000, 0x2000, "ram");
    const rom = memory.addRom(0x10000, new Uint8Array([0xea]), "rom");
    for (const range of [ram, rom]) {
      expect(range.bytes!.buffer).toBe(memory.arena.buffer);
      expect(range.bytes!.byteOffset).toBe(range.start);
      expect(range.bytes!.length).toBe(range.size);
    }
    memory.write(0x1234, 0xcafe, 2);
    expect(memory.arena[0x1234]).toBe(0xfe);
    expect(memory.arena[0x1235]).toBe(0xca);
    expect(memory.arena[0x10000]).toBe(0xea);
    expect(memory.arena[0x10001]).toBe(0xff);
    memory.arena[0x10fff] = 0x42; // the interpreter's fast path writes the arena directly
    expect(memory.read(0x10fff, 1)).toBe(0x42);
  });

  it("is 0 bytes by default, so every range gets its own buffer", () => {
    const memory = new PhysicalMemory();
    expect(memory.arena.length).toBe(0);
    const a = memory.addRam(0, 0x1000, "a");
    const b = memory.addRam(0x1000, 0x1000, "b");
    expect(a.bytes!.buffer).not.toBe(b.bytes!.buffer);
  });

  it("does not back ranges that end beyond it", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x2000 });
    const straddling = memory.addRam(0x1000, 0x2000, "straddling");
    const above = memory.addRam(0x4000, 0x1000, "above");
    expect(straddling.bytes!.buffer).not.toBe(memory.arena.buffer);
    expect(above.bytes!.buffer).not.toBe(memory.arena.buffer);
    memory.write(0x1000, 0xff, 1);
    expect(memory.arena[0x1000]).toBe(0);
  });

  it("is not written through MMIO or unassigned space", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x4000 });
    memory.addMmio(0x1000, 0x1000, recordingDevice().device, "mmio");
    memory.write(0x1000, 0xffffffff, 4);
    memory.write(0x3000, 0xffffffff, 4);
    expect(memory.arena.every((byte) => byte === 0)).toBe(true);
  });

  it("is zeroed where a removed range was, so RAM added there later starts zeroed", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x4000 });
    memory.addRam(0, 0x1000, "neighbour");
    memory.write(0xfff, 0x11, 1);
    memory.addRom(0x1000, new Uint8Array([1, 2, 3]), "rom");
    memory.removeRange(0x1000);
    expect(memory.arena.subarray(0x1000, 0x2000).every((byte) => byte === 0)).toBe(true);
    expect(memory.read(0x1000, 1)).toBe(0xff);
    memory.addRam(0x1000, 0x1000, "ram");
    expect(memory.read(0x1000, 4)).toBe(0);
    expect(memory.read(0xfff, 1)).toBe(0x11);
  });
  it("serves a range that straddles its end from the range's own buffer, and its arena pages stay unassigned", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x2000 });
    memory.addRam(0x1000, 0x2000, "straddling");
    memory.write(0x1ffe, 0x12345678, 4); // crosses into the page beyond the arena
    expect(memory.read(0x1ffe, 4)).toBe(0x12345678);
    expect(memory.read(0x1000, 2)).toBe(0);
    expect(memory.arena.every((byte) => byte === 0)).toBe(true);
    expect(memory.read(0x0ffe, 2)).toBe(0xffff); // a hole inside the arena
    expect(memory.checkHandlersAndPagesInSync().findings).toEqual([]);
  });

  it("is not aliased by addresses at or above 4 GiB, or negative ones", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x2000 });
    memory.addRam(0, 0x2000, "low");
    memory.addRam(2 ** 32, 0x1000, "high");
    memory.write(0x100, 0x11, 1);
    memory.write(2 ** 32 + 0x100, 0x22, 1);
    expect(memory.read(0x100, 1)).toBe(0x11);
    expect(memory.read(2 ** 32 + 0x100, 1)).toBe(0x22);
    expect(memory.read(2 ** 32 + 0x1100, 1)).toBe(0xff); // 0x1100 in the arena is RAM, this is a hole
    memory.write(2 ** 32 + 0x1100, 0x33, 1);
    expect(memory.arena[0x1100]).toBe(0);
    expect(memory.read(-4096, 1)).toBe(0xff);
  });

  it("stops serving a removed range's pages directly, and serves them again once RAM is back", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x3000 });
    const removed = memory.addRam(0x1000, 0x1000, "ram");
    memory.write(0x1000, 0xaa, 1);
    memory.removeRange(0x1000);
    expect(memory.read(0x1000, 1)).toBe(0xff);
    memory.write(0x1000, 0x55, 1);
    expect(memory.arena[0x1000]).toBe(0);
    expect(removed.bytes![0]).toBe(0);
    memory.addMmio(0x1000, 0x1000, null, "mmio"); // MMIO without a device reads zeros
    expect(memory.read(0x1000, 4)).toBe(0);
    expect(memory.checkHandlersAndPagesInSync().findings).toEqual([]);
  });

  it("is checked by the consistency checker: a hole marked fast is reported", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x3000 });
    memory.addRam(0, 0x1000, "ram");
    memory["arenaSlow"][2] = 0; // behind the memory's back: the hole at 0x2000 looks like RAM
    const report = memory.checkHandlersAndPagesInSync();
    expect(report.extensionErrorCount).toBe(1);
    expect(report.findings).toEqual(["(extension) arena page 0x2000 belongs to no arena-backed range but is not marked slow"]);
  });

  it("leaves no trace of an MMIO2 range refused for want of a handler record", () => {
    const memory = new PhysicalMemory({ arenaSize: 0x40000, handlerCapacity: 32 });
    memory.addRam(0, 0x20000, "ram");
    for (let i = 0; i < 32; i++) memory.addMmio(0x100000 + i * 0x1000, 0x1000, recordingDevice().device, `device ${i}`);
    pgmError("ERR_PGM_OUT_OF_HANDLERS", () => memory.addMmio2(0x20000, 0x10000, "owner", "vram", { dirtyTracking: true }));
    expect(memory.read(0x20000, 4)).toBe(0xffffffff);
    memory.write(0x20000, 0x1234, 2);
    expect(memory.arena[0x20000]).toBe(0);
    expect(memory.checkHandlersAndPagesInSync().findings).toEqual([]);
  });
});
