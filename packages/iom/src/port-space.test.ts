import { describe, expect, it } from "vitest";
import { isIomError, PortSpace, type AccessSize, type IomErrorCode, type PortDevice } from "./index.js";

/** Runs `action`, which must throw an IomError with `code`, and returns that error. */
function iomError(code: IomErrorCode, action: () => unknown): Error {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(isIomError(caught), `expected an IomError ${code}, got ${String(caught)}`).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
  return caught as Error;
}

type PortCall = ["in", number, AccessSize] | ["out", number, number, AccessSize];

/** A device that logs every call; by default byte `offset` reads as `base + offset` (mod 256). */
function recordingDevice(base = 0xa0, readValue?: (offset: number, size: AccessSize) => number) {
  const calls: PortCall[] = [];
  const device: PortDevice = {
    readPort(offset, size) {
      calls.push(["in", offset, size]);
      if (readValue) return readValue(offset, size);
      let value = 0;
      for (let i = 0; i < size; i++) value |= ((base + offset + i) & 0xff) << (8 * i);
      return value >>> 0;
    },
    writePort(offset, value, size) {
      calls.push(["out", offset, value, size]);
    },
  };
  return { device, calls };
}

describe("registration", () => {
  it("claims ports for a device and tells which range serves a port", () => {
    const ports = new PortSpace();
    const { device } = recordingDevice();
    const range = ports.register({ port: 0x3f8, count: 8, owner: "com1", device });
    expect(range).toMatchObject({ port: 0x3f8, count: 8, owner: "com1", device, maxAccessSize: 4, context: undefined });
    expect(ports.rangeAt(0x3f8)).toBe(range);
    expect(ports.rangeAt(0x3ff)).toBe(range);
    expect(ports.rangeAt(0x3f7)).toBeUndefined();
    expect(ports.rangeAt(0x400)).toBeUndefined();
  });

  it("accepts ranges that touch without overlapping", () => {
    const ports = new PortSpace();
    const a = ports.register({ port: 0x60, count: 1, owner: "a", device: {} });
    const b = ports.register({ port: 0x61, count: 3, owner: "b", device: {} });
    const c = ports.register({ port: 0x5f, count: 1, owner: "c", device: {} });
    expect([ports.rangeAt(0x5f), ports.rangeAt(0x60), ports.rangeAt(0x61), ports.rangeAt(0x63)]).toEqual([c, a, b, b]);
  });

  it.each([
    ["the same ports", 0x3f8, 8],
    ["its first port", 0x3f0, 9],
    ["its last port", 0x3ff, 4],
    ["one port inside it", 0x3fc, 1],
    ["all of it and more", 0x300, 0x200],
  ])("refuses a range overlapping %s, naming both owners, and changes nothing", (_case, port, count) => {
    const ports = new PortSpace();
    const { device, calls } = recordingDevice();
    const com1 = ports.register({ port: 0x3f8, count: 8, owner: "com1", device });
    const intruder = recordingDevice();

    const error = iomError("ERR_IOM_RANGE_OVERLAP", () => ports.register({ port, count, owner: "intruder", device: intruder.device }));
    expect(error.message).toContain('"intruder"');
    expect(error.message).toContain('0x03f8-0x03ff claimed by "com1"');

    for (let p = port; p < port + count; p++) {
      expect(ports.rangeAt(p)).toBe(p >= 0x3f8 && p <= 0x3ff ? com1 : undefined);
    }
    ports.read(0x3f8, 1);
    ports.read(port, 1);
    expect(intruder.calls).toEqual([]);
    expect(calls.length).toBeGreaterThan(0);
  });

  it.each([
    ["a negative first port", -1, 1],
    ["a first port above 0xFFFF", 0x10000, 1],
    ["a count of zero", 0x80, 0],
    ["a negative count", 0x80, -1],
    ["a fractional first port", 0.5, 1],
    ["a fractional count", 0x80, 1.5],
    ["a NaN count", 0x80, Number.NaN],
    ["a range running past 0xFFFF", 0xffff, 2],
    ["a range running far past 0xFFFF", 0xfff0, 0x20],
  ])("refuses %s", (_case, port, count) => {
    const ports = new PortSpace();
    const error = iomError("ERR_IOM_INVALID_RANGE", () => ports.register({ port, count, owner: "bad", device: {} }));
    expect(error.message).toContain('"bad"');
    expect(ports.rangeAt(0x80)).toBeUndefined();
    expect(ports.rangeAt(0xffff)).toBeUndefined();
    expect(ports.rangeAt(0)).toBeUndefined();
  });

  it("deregisters by first port, returning the range; its ports become unassigned", () => {
    const ports = new PortSpace();
    const { device, calls } = recordingDevice();
    const range = ports.register({ port: 0x70, count: 2, owner: "cmos", device });
    expect(ports.deregister(0x70)).toBe(range);

    expect(ports.rangeAt(0x70)).toBeUndefined();
    expect(ports.read(0x71, 1)).toBe(0xff);
    ports.write(0x70, 0x8f, 1);
    expect(calls).toEqual([]);
    expect([ports.unassignedReads, ports.unassignedWrites]).toEqual([1, 1]);

    // The ports are free to claim again.
    const again = ports.register({ port: 0x70, count: 1, owner: "other", device });
    expect(ports.rangeAt(0x70)).toBe(again);
  });

  it.each([
    ["a port inside a range", 0x3f9],
    ["an unassigned port", 0x80],
    ["a negative port", -1],
    ["a port above 0xFFFF", 0x10000],
  ])("refuses to deregister at %s, changing nothing", (_case, port) => {
    const ports = new PortSpace();
    const range = ports.register({ port: 0x3f8, count: 8, owner: "com1", device: {} });
    const error = iomError("ERR_IOM_NOT_FOUND", () => ports.deregister(port));
    expect(error.message).toMatch(/^no port range starts at 0x/);
    expect(ports.rangeAt(0x3f8)).toBe(range);
    expect(ports.rangeAt(0x3ff)).toBe(range);
  });

  it("refuses to deregister the same range twice", () => {
    const ports = new PortSpace();
    ports.register({ port: 0x80, count: 1, owner: "post", device: {} });
    ports.deregister(0x80);
    iomError("ERR_IOM_NOT_FOUND", () => ports.deregister(0x80));
  });

  it("survives many register/deregister cycles", () => {
    const ports = new PortSpace();
    const { device } = recordingDevice();
    for (let i = 0; i < 0x20000; i++) {
      ports.register({ port: i & 0xffff, count: 1, owner: "cycling", device });
      ports.deregister(i & 0xffff);
    }
    const range = ports.register({ port: 0x1234, count: 1, owner: "last", device });
    expect(ports.rangeAt(0x1234)).toBe(range);
  });

  it("lets every one of the 65536 ports be its own range", () => {
    const ports = new PortSpace();
    const devices: PortDevice[] = [];
    for (let port = 0; port <= 0xffff; port++) {
      const device: PortDevice = { readPort: () => port & 0xff };
      devices.push(device);
      ports.register({ port, count: 1, owner: `port ${port}`, device });
    }
    for (const port of [0, 1, 0x3f8, 0xfffe, 0xffff]) {
      expect(ports.rangeAt(port)?.device).toBe(devices[port]);
      expect(ports.read(port, 1)).toBe(port & 0xff);
    }
    expect(ports.unassignedReads).toBe(0);
  });
});

describe("dispatch", () => {
  it("calls the device with offsets relative to its first port and the access size", () => {
    const ports = new PortSpace();
    const { device, calls } = recordingDevice();
    ports.register({ port: 0x3f8, count: 8, owner: "com1", device });

    expect(ports.read(0x3fd, 1)).toBe(0xa5);
    expect(ports.read(0x3f8, 2)).toBe(0xa1a0);
    expect(ports.read(0x3fc, 4)).toBe(0xa7a6a5a4);
    ports.write(0x3fb, 0x83, 1);
    ports.write(0x3f8, 0x0102, 2);
    ports.write(0x3f8, 0x01020304, 4);
    expect(calls).toEqual([
      ["in", 5, 1],
      ["in", 0, 2],
      ["in", 4, 4],
      ["out", 3, 0x83, 1],
      ["out", 0, 0x0102, 2],
      ["out", 0, 0x01020304, 4],
    ]);
    expect(ports.unassignedReads + ports.unassignedWrites).toBe(0);
  });

  it("gives the device only the bytes of the access size, unsigned", () => {
    const ports = new PortSpace();
    const { device, calls } = recordingDevice();
    ports.register({ port: 0x80, count: 4, owner: "post", device });
    ports.write(0x80, 0x1234, 1);
    ports.write(0x80, 0x12345678, 2);
    ports.write(0x80, -1, 4);
    expect(calls).toEqual([
      ["out", 0, 0x34, 1],
      ["out", 0, 0x5678, 2],
      ["out", 0, 0xffffffff, 4],
    ]);
  });

  it("truncates a device's answer to the access size and returns it unsigned", () => {
    // A device may answer "all ones" as -1 whatever the size; IN sees only `size` bytes.
    const ports = new PortSpace();
    ports.register({ port: 0x60, count: 1, owner: "zero", device: { readPort: () => 0 } });
    ports.register({ port: 0x61, count: 2, owner: "lazy", device: recordingDevice(0, () => -1).device });
    expect(ports.read(0x61, 1)).toBe(0xff);
    expect(ports.read(0x61, 2)).toBe(0xffff);
    // Split across both devices: the lazy byte must not spill over the other byte.
    expect(ports.read(0x60, 2)).toBe(0xff00);
    expect(ports.read(0x60, 4)).toBe(0xffffff00);
  });

  it("reads all-ones for a device without readPort and ignores writes to one without writePort", () => {
    const ports = new PortSpace();
    ports.register({ port: 0x92, count: 4, owner: "write-only", device: {} });
    expect(ports.read(0x92, 1)).toBe(0xff);
    expect(ports.read(0x92, 2)).toBe(0xffff);
    expect(ports.read(0x92, 4)).toBe(0xffffffff);
    ports.write(0x92, 1, 1);
    // The ports are assigned, so nothing counts as unassigned.
    expect(ports.unassignedReads + ports.unassignedWrites).toBe(0);
  });

  it("masks the port number to 16 bits", () => {
    const ports = new PortSpace();
    const { device, calls } = recordingDevice();
    ports.register({ port: 0x3f8, count: 8, owner: "com1", device });
    ports.read(0x103f9, 1);
    ports.write(0x103f8, 0x41, 1);
    expect(ports.rangeAt(0x103f8)?.owner).toBe("com1");
    expect(calls).toEqual([
      ["in", 1, 1],
      ["out", 0, 0x41, 1],
    ]);
  });
});

describe("unassigned ports", () => {
  it.each([
    [1, 0xff],
    [2, 0xffff],
    [4, 0xffffffff],
  ] as const)("read all-ones for a %d-byte access, counting each port", (size, expected) => {
    const ports = new PortSpace();
    expect(ports.read(0x80, size)).toBe(expected);
    expect(ports.unassignedReads).toBe(size);
    expect(ports.unassignedWrites).toBe(0);
  });

  it("drop writes, counting each port", () => {
    const ports = new PortSpace();
    const { device, calls } = recordingDevice();
    ports.register({ port: 0x84, count: 1, owner: "neighbour", device });
    ports.write(0x80, 0x12345678, 4);
    ports.write(0x85, 0x12, 1);
    expect(ports.unassignedWrites).toBe(5);
    expect(ports.unassignedReads).toBe(0);
    expect(calls).toEqual([]);
  });
});

describe("accesses straddling ranges", () => {
  it("split into one-byte accesses per port between two devices", () => {
    const ports = new PortSpace();
    const a = recordingDevice(0x10);
    const b = recordingDevice(0x20);
    ports.register({ port: 0x60, count: 2, owner: "a", device: a.device });
    ports.register({ port: 0x62, count: 2, owner: "b", device: b.device });

    expect(ports.read(0x61, 2)).toBe(0x2011);
    ports.write(0x61, 0xbbaa, 2);
    expect(ports.read(0x60, 4)).toBe(0x21201110); // also split: the dword spans two ranges
    expect(a.calls).toEqual([
      ["in", 1, 1],
      ["out", 1, 0xaa, 1],
      ["in", 0, 1],
      ["in", 1, 1],
    ]);
    expect(b.calls).toEqual([
      ["in", 0, 1],
      ["out", 0, 0xbb, 1],
      ["in", 0, 1],
      ["in", 1, 1],
    ]);
    expect(ports.unassignedReads + ports.unassignedWrites).toBe(0);
  });

  it("split into bytes between a device and unassigned ports", () => {
    const ports = new PortSpace();
    const { device, calls } = recordingDevice();
    ports.register({ port: 0x71, count: 1, owner: "one port", device });
    expect(ports.read(0x70, 4)).toBe(0xffffa0ff);
    ports.write(0x70, 0x44332211, 4);
    expect(calls).toEqual([
      ["in", 0, 1],
      ["out", 0, 0x22, 1],
    ]);
    expect([ports.unassignedReads, ports.unassignedWrites]).toEqual([3, 3]);
  });
});

describe("the top of the port space", () => {
  it("serves a range ending at 0xFFFF, up to and including its last port", () => {
    const ports = new PortSpace();
    const { device, calls } = recordingDevice(0);
    const range = ports.register({ port: 0xfff8, count: 8, owner: "top", device });
    expect(range.port + range.count - 1).toBe(0xffff);
    expect(ports.rangeAt(0xffff)).toBe(range);
    expect(ports.read(0xfffc, 4)).toBe(0x07060504);
    expect(ports.read(0xffff, 1)).toBe(7);
    ports.write(0xffff, 0x5a, 1);
    expect(calls).toEqual([
      ["in", 4, 4],
      ["in", 7, 1],
      ["out", 7, 0x5a, 1],
    ]);
    expect(ports.deregister(0xfff8)).toBe(range);
    expect(ports.read(0xffff, 1)).toBe(0xff);
  });

  it("wraps the bytes of a wide access at 0xFFFF around to port 0", () => {
    const ports = new PortSpace();
    const top = recordingDevice(0x10);
    const bottom = recordingDevice(0x20);
    ports.register({ port: 0xffff, count: 1, owner: "top", device: top.device });
    ports.register({ port: 0, count: 1, owner: "bottom", device: bottom.device });
    expect(ports.read(0xffff, 2)).toBe(0x2010);
    ports.write(0xffff, 0xbbaa, 2);
    expect(top.calls).toEqual([
      ["in", 0, 1],
      ["out", 0, 0xaa, 1],
    ]);
    expect(bottom.calls).toEqual([
      ["in", 0, 1],
      ["out", 0, 0xbb, 1],
    ]);
  });

  it("accepts a single-port range at 0xFFFF", () => {
    const ports = new PortSpace();
    const range = ports.register({ port: 0xffff, count: 1, owner: "last", device: { readPort: () => 0x42 } });
    expect(ports.rangeAt(0xffff)).toBe(range);
    expect(ports.read(0xffff, 1)).toBe(0x42);
  });
});
