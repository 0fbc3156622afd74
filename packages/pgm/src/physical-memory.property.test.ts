import fc from "fast-check";
import { expect, it } from "vitest";
import { PhysicalMemory, type AccessSize } from "./index.js";

const accessSize = fc.constantFrom<AccessSize>(1, 2, 4);

it("round-trips random writes through RAM at any address and size (arena and own buffers)", () => {
  // Two adjacent RAM ranges: the first is a view into the arena, the second ends beyond the
  // arena and has its own buffer, so accesses also straddle that seam.
  const SPACE = 0x4000;
  const nearSeam = fc.integer({ min: 0x1ff0, max: 0x2010 });
  const write = fc.record({
    address: fc.oneof(nearSeam, fc.integer({ min: 0, max: SPACE - 4 })),
    size: accessSize,
    value: fc.integer({ min: 0, max: 0xffffffff }),
  });

  fc.assert(
    fc.property(fc.array(write, { maxLength: 60 }), (writes) => {
      const memory = new PhysicalMemory({ arenaSize: 0x3000 });
      memory.addRam(0, 0x2000, "arena ram");
      memory.addRam(0x2000, 0x2000, "own buffer");
      const model = new Uint8Array(SPACE);

      for (const { address, size, value } of writes) {
        memory.write(address, value, size);
        for (let i = 0; i < size; i++) model[address + i] = value >>> (8 * i);
        const expected = size === 4 ? value : value & ((1 << (8 * size)) - 1);
        expect(memory.read(address, size)).toBe(expected);
      }
      // Deep-equality of 16 KiB per run is slow; the first differing address says as much.
      const actual = memory.readBytes(0, SPACE);
      expect(actual.findIndex((byte, i) => byte !== model[i])).toBe(-1);
      expect(memory.unassignedReads + memory.unassignedWrites).toBe(0);
    }),
  );
});

it("reads across range boundaries equal the same read done byte by byte", () => {
  // RAM | ROM | hole | MMIO | RAM | hole, each one page.
  const memory = new PhysicalMemory();
  memory.addRam(0x0000, 0x1000, "ram");
  memory.addRom(0x1000, Uint8Array.from({ length: 0x1000 }, (_, i) => (i * 3) & 0xff), "rom");
  memory.addMmio(
    0x3000,
    0x1000,
    {
      read(offset, size) {
        let value = 0;
        for (let i = 0; i < size; i++) value |= (((offset + i) ^ 0x5a) & 0xff) << (8 * i);
        return value;
      },
      write() {},
    },
    "mmio",
  );
  memory.addRam(0x4000, 0x1000, "ram 2");
  memory.loadBytes(0, Uint8Array.from({ length: 0x1000 }, (_, i) => (i * 7) & 0xff));
  memory.loadBytes(0x4000, Uint8Array.from({ length: 0x1000 }, (_, i) => (i * 11) & 0xff));

  const boundary = fc.constantFrom(0x1000, 0x2000, 0x3000, 0x4000, 0x5000);
  const address = fc.oneof(
    fc.tuple(boundary, fc.integer({ min: -3, max: 0 })).map(([edge, delta]) => edge + delta),
    fc.integer({ min: 0, max: 0x5ffc }),
  );

  fc.assert(
    fc.property(address, accessSize, (start, size) => {
      let byteByByte = 0;
      for (let i = 0; i < size; i++) byteByByte |= memory.read(start + i, 1) << (8 * i);
      expect(memory.read(start, size)).toBe(byteByByte >>> 0);
    }),
  );
});
