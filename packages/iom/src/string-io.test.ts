import { describe, expect, it } from "vitest";
import { isIomError, PortSpace, type AccessSize, type IomErrorCode, type PortDevice } from "./index.js";

/** A FIFO-like device: reads return 0x10, 0x11, 0x12… per unit; writes are collected. */
function fifoDevice(options: { stringUnitsPerCall?: number } = {}) {
  let next = 0x10;
  const written: number[] = [];
  const calls: string[] = [];
  const device: PortDevice = {
    readPort(offset, size) {
      calls.push(`in ${offset}/${size}`);
      return next++ * (size === 1 ? 1 : 0x01010101) >>> 0;
    },
    writePort(offset, value, size) {
      calls.push(`out ${offset}/${size}`);
      written.push(value);
    },
  };
  if (options.stringUnitsPerCall !== undefined) {
    const limit = options.stringUnitsPerCall;
    device.readPortString = (offset, size, buffer, count) => {
      calls.push(`ins ${offset}/${size}×${count}`);
      const units = Math.min(limit, count);
      for (let i = 0; i < units; i++) buffer.fill(next++, i * size, (i + 1) * size);
      return units;
    };
    device.writePortString = (offset, size, buffer, count) => {
      calls.push(`outs ${offset}/${size}×${count}`);
      const units = Math.min(limit, count);
      for (let i = 0; i < units; i++) {
        let value = 0;
        for (let b = 0; b < size; b++) value |= buffer[i * size + b]! << (8 * b);
        written.push(value >>> 0);
      }
      return units;
    };
  }
  return { device, written, calls };
}

function expectIomError(code: IomErrorCode, action: () => unknown): Error {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(isIomError(caught) && caught.code).toBe(code);
  return caught as Error;
}

describe("readString (INS)", () => {
  it("takes every unit from the string callback when it transfers them all", () => {
    const ports = new PortSpace();
    const { device, calls } = fifoDevice({ stringUnitsPerCall: 100 });
    ports.register({ port: 0x1f0, count: 8, owner: "ide", device });
    const buffer = new Uint8Array(6);
    expect(ports.readString(0x1f0, 2, buffer)).toBe(3);
    expect([...buffer]).toEqual([0x10, 0x10, 0x11, 0x11, 0x12, 0x12]);
    expect(calls).toEqual(["ins 0/2×3"]);
  });

  it("finishes the units the string callback left with per-unit reads", () => {
    const ports = new PortSpace();
    const { device, calls } = fifoDevice({ stringUnitsPerCall: 2 });
    ports.register({ port: 0x1f0, count: 8, owner: "ide", device });
    const buffer = new Uint8Array(4);
    expect(ports.readString(0x1f0, 1, buffer)).toBe(4);
    expect([...buffer]).toEqual([0x10, 0x11, 0x12, 0x13]);
    expect(calls).toEqual(["ins 0/1×4", "in 0/1", "in 0/1"]);
  });

  it("falls back to per-unit reads for a device without a string callback", () => {
    const ports = new PortSpace();
    const { device, calls } = fifoDevice();
    ports.register({ port: 0x1f0, count: 8, owner: "ide", device });
    const buffer = new Uint8Array(8);
    expect(ports.readString(0x1f0, 4, buffer)).toBe(2);
    expect([...buffer]).toEqual([0x10, 0x10, 0x10, 0x10, 0x11, 0x11, 0x11, 0x11]);
    expect(calls).toEqual(["in 0/4", "in 0/4"]);
  });

  it("transfers only `count` units and leaves the rest of the buffer alone", () => {
    const ports = new PortSpace();
    const { device, calls } = fifoDevice({ stringUnitsPerCall: 100 });
    ports.register({ port: 0x1f0, count: 8, owner: "ide", device });
    const buffer = new Uint8Array([9, 9, 9, 9, 9]);
    expect(ports.readString(0x1f0, 1, buffer, 3)).toBe(3);
    expect([...buffer]).toEqual([0x10, 0x11, 0x12, 9, 9]);
    expect(calls).toEqual(["ins 0/1×3"]);
  });

  it("keeps a string callback's claim within 0..count", () => {
    const ports = new PortSpace();
    const calls: string[] = [];
    const device: PortDevice = {
      readPort: () => (calls.push("in"), 0x77),
      readPortString: (_o, _s, _b, count) => count + 5,
      writePortString: () => -3,
      writePort: () => void calls.push("out"),
    };
    ports.register({ port: 0x80, count: 1, owner: "liar", device });
    expect(ports.readString(0x80, 1, new Uint8Array(2))).toBe(2);
    expect(ports.writeString(0x80, 1, new Uint8Array(2))).toBe(2);
    expect(calls).toEqual(["out", "out"]);
  });

  it("reads all-ones from unassigned ports, counting each port byte", () => {
    const ports = new PortSpace();
    const buffer = new Uint8Array(6);
    expect(ports.readString(0x300, 2, buffer)).toBe(3);
    expect([...buffer]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(ports.unassignedReads).toBe(6);
  });

  it("splits units that straddle two ranges into bytes, each unit again from the first port", () => {
    const ports = new PortSpace();
    const low = fifoDevice({ stringUnitsPerCall: 100 });
    const high = fifoDevice({ stringUnitsPerCall: 100 });
    ports.register({ port: 0x100, count: 1, owner: "low", device: low.device });
    ports.register({ port: 0x101, count: 1, owner: "high", device: high.device });
    const buffer = new Uint8Array(4);
    expect(ports.readString(0x100, 2, buffer)).toBe(2);
    expect([...buffer]).toEqual([0x10, 0x10, 0x11, 0x11]);
    expect(low.calls).toEqual(["in 0/1", "in 0/1"]);
    expect(high.calls).toEqual(["in 0/1", "in 0/1"]);
  });
});

describe("writeString (OUTS)", () => {
  it("hands the buffer to the string callback and finishes with per-unit writes", () => {
    const ports = new PortSpace();
    const { device, written, calls } = fifoDevice({ stringUnitsPerCall: 1 });
    ports.register({ port: 0x3f8, count: 8, owner: "com1", device });
    expect(ports.writeString(0x3f8, 2, new Uint8Array([1, 2, 3, 4, 5, 6]))).toBe(3);
    expect(written).toEqual([0x0201, 0x0403, 0x0605]);
    expect(calls).toEqual(["outs 0/2×3", "out 0/2", "out 0/2"]);
  });

  it("writes units one by one to a device without a string callback", () => {
    const ports = new PortSpace();
    const { device, written, calls } = fifoDevice();
    ports.register({ port: 0x3f8, count: 8, owner: "com1", device, maxAccessSize: 1 });
    // Two OUTSW units to a byte-wide device: each unit is two byte cycles, low port first.
    expect(ports.writeString(0x3f8, 2, new TextEncoder().encode("hi!?"))).toBe(2);
    expect(String.fromCharCode(...written)).toBe("hi!?");
    expect(calls).toEqual(["out 0/1", "out 1/1", "out 0/1", "out 1/1"]);
  });

  it("drops writes to unassigned ports, counting each port byte", () => {
    const ports = new PortSpace();
    expect(ports.writeString(0x300, 4, new Uint8Array(8))).toBe(2);
    expect(ports.unassignedWrites).toBe(8);
  });
});

describe("string argument checks", () => {
  it.each([
    ["a count larger than the buffer", 2, 4, 3],
    ["a negative count", 1, 4, -1],
    ["a fractional count", 1, 4, 1.5],
    ["an access size of 3", 3, 6, 2],
  ])("refuses %s, touching no device", (_case, size, bufferLength, count) => {
    const ports = new PortSpace();
    const { device, calls } = fifoDevice({ stringUnitsPerCall: 100 });
    ports.register({ port: 0x1f0, count: 8, owner: "ide", device });
    const buffer = new Uint8Array(bufferLength);
    const read = expectIomError("ERR_IOM_INVALID_ARGUMENT", () => ports.readString(0x1f0, size as AccessSize, buffer, count));
    expect(read.message).toContain("0x01f0");
    expectIomError("ERR_IOM_INVALID_ARGUMENT", () => ports.writeString(0x1f0, size as AccessSize, buffer, count));
    expect(calls).toEqual([]);
    expect(ports.statisticsFor(0x1f0).reads).toEqual({ byte: 0, word: 0, dword: 0 });
  });

  it("accepts a count of zero and transfers nothing", () => {
    const ports = new PortSpace();
    const { device, calls } = fifoDevice({ stringUnitsPerCall: 100 });
    ports.register({ port: 0x1f0, count: 8, owner: "ide", device });
    expect(ports.readString(0x1f0, 2, new Uint8Array(0), 0)).toBe(0);
    expect(ports.writeString(0x1f0, 2, new Uint8Array(0))).toBe(0);
    expect(calls).toEqual([]);
  });
});
