import { describe, expect, it } from "vitest";
import { isIomError, PortSpace, type AccessSize, type PortDevice } from "./index.js";

type Call = ["in", number, AccessSize] | ["out", number, number, AccessSize];

/** Byte-addressed registers behind `count` ports; every call is logged. */
function registerFile(count: number) {
  const bytes = new Uint8Array(count);
  const calls: Call[] = [];
  const device: PortDevice = {
    readPort(offset, size) {
      calls.push(["in", offset, size]);
      let value = 0;
      for (let i = 0; i < size; i++) value |= bytes[offset + i]! << (8 * i);
      return value >>> 0;
    },
    writePort(offset, value, size) {
      calls.push(["out", offset, value, size]);
      for (let i = 0; i < size; i++) bytes[offset + i] = value >>> (8 * i);
    },
  };
  return { device, bytes, calls };
}

describe("maxAccessSize", () => {
  it("splits a word access to a byte-wide device into two byte accesses, low port first", () => {
    // An 8-bit ISA device (a PIC, the CMOS) sees a 16-bit OUT as two byte cycles.
    const ports = new PortSpace();
    const pic = registerFile(2);
    ports.register({ port: 0x20, count: 2, owner: "pic", device: pic.device, maxAccessSize: 1 });
    ports.write(0x20, 0xfb11, 2);
    expect(ports.read(0x20, 2)).toBe(0xfb11);
    expect(pic.calls).toEqual([
      ["out", 0, 0x11, 1],
      ["out", 1, 0xfb, 1],
      ["in", 0, 1],
      ["in", 1, 1],
    ]);
  });

  it("splits a dword access to a word-wide device into two word accesses", () => {
    const ports = new PortSpace();
    const device = registerFile(4);
    ports.register({ port: 0x1f0, count: 4, owner: "wide", device: device.device, maxAccessSize: 2 });
    ports.write(0x1f0, 0x44332211, 4);
    expect(ports.read(0x1f0, 4)).toBe(0x44332211);
    expect(ports.read(0x1f1, 2)).toBe(0x3322);
    expect(device.calls).toEqual([
      ["out", 0, 0x2211, 2],
      ["out", 2, 0x4433, 2],
      ["in", 0, 2],
      ["in", 2, 2],
      ["in", 1, 2],
    ]);
  });

  it("still splits into bytes when a narrow device's access runs past its range", () => {
    const ports = new PortSpace();
    const a = registerFile(2);
    const b = registerFile(2);
    ports.register({ port: 0x60, count: 2, owner: "a", device: a.device, maxAccessSize: 2 });
    ports.register({ port: 0x62, count: 2, owner: "b", device: b.device, maxAccessSize: 2 });
    ports.write(0x61, 0xbbaa, 2);
    expect(a.calls).toEqual([["out", 1, 0xaa, 1]]);
    expect(b.calls).toEqual([["out", 0, 0xbb, 1]]);
  });

  it.each([0, 3, 8, -1, 1.5])("refuses maxAccessSize %s, changing nothing", (maxAccessSize) => {
    const ports = new PortSpace();
    let error: unknown;
    try {
      ports.register({ port: 0x20, count: 2, owner: "pic", device: {}, maxAccessSize: maxAccessSize as AccessSize });
    } catch (caught) {
      error = caught;
    }
    expect(isIomError(error) && error.code).toBe("ERR_IOM_INVALID_ARGUMENT");
    expect((error as Error).message).toContain('"pic"');
    expect(ports.rangeAt(0x20)).toBeUndefined();
  });
});

describe("the range's context", () => {
  it("reaches every callback as its last argument", () => {
    const ports = new PortSpace();
    const seen: unknown[] = [];
    const device: PortDevice = {
      readPort: (_offset, _size, context) => (seen.push(context), 0),
      writePort: (_offset, _value, _size, context) => void seen.push(context),
      readPortString: (_offset, _size, _buffer, count, context) => (seen.push(context), count),
      writePortString: (_offset, _size, _buffer, count, context) => (seen.push(context), count),
    };
    const primary = { name: "primary" };
    const secondary = { name: "secondary" };
    // One device object behind two ranges tells them apart by context, as VirtualBox's pvUser does.
    const range = ports.register({ port: 0x1f0, count: 8, owner: "ide0", device, context: primary });
    ports.register({ port: 0x170, count: 8, owner: "ide1", device, context: secondary });
    expect(range.context).toBe(primary);
    ports.read(0x1f0, 1);
    ports.write(0x170, 0, 1);
    ports.readString(0x1f0, 2, new Uint8Array(4));
    ports.writeString(0x170, 2, new Uint8Array(4));
    expect(seen).toEqual([primary, secondary, primary, secondary]);
  });
});
