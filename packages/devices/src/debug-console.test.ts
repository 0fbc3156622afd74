import { describe, expect, it } from "vitest";
import { DebugConsole } from "./index.js";
import { TestBus } from "./test-utils.js";

function debugConsole(options?: ConstructorParameters<typeof DebugConsole>[1]) {
  const output: number[] = [];
  const device = new DebugConsole({ transmit: (byte) => output.push(byte) }, options);
  return { device, output, bus: new TestBus(device.portRanges()) };
}

describe("DebugConsole", () => {
  it("passes bytes written to 0xE9 or 0x402 straight to the output", () => {
    const { bus, output } = debugConsole();
    for (const c of "hi\n") bus.outb(0xe9, c.charCodeAt(0));
    bus.outb(0x402, 0x21);
    expect(String.fromCharCode(...output)).toBe("hi\n!");
  });

  it("reads 0xE9 so a guest can detect it", () => {
    const { bus } = debugConsole();
    expect(bus.inb(0xe9)).toBe(0xe9);
    expect(bus.inb(0x402)).toBe(0xe9);
  });

  it("registers one byte-wide port per address, at the ports and with the readback it is given", () => {
    const { device, bus } = debugConsole({ ports: [0x510], readback: 0x42 });
    expect(device.portRanges()).toEqual([{ port: 0x510, count: 1, owner: "debugcon-510", device, maxAccessSize: 1 }]);
    expect(bus.inb(0x510)).toBe(0x42);
    expect(bus.inb(0xe9)).toBe(0xff); // not claimed
  });

  it("keeps only the low byte of a value", () => {
    const { device, output } = debugConsole();
    device.writePort(0, 0x1241);
    expect(output).toEqual([0x41]);
  });
});
