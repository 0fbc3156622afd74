import { describe, expect, it } from "vitest";
import { DebugExit } from "./index.js";

describe("DebugExit", () => {
  it.each([
    [0x00, 0x01],
    [0x01, 0x03],
    [0x10, 0x21],
    [0x7f, 0xff],
    [0xff, 0x1ff],
  ])("reports status (v << 1) | 1 for a write of %d", (value, status) => {
    const statuses: number[] = [];
    new DebugExit((s) => statuses.push(s)).writePort(0, value);
    expect(statuses).toEqual([status]);
  });

  it("reports each write, at any offset of its ports", () => {
    const statuses: number[] = [];
    const device = new DebugExit((s) => statuses.push(s));
    device.writePort(0, 1);
    device.writePort(3, 2);
    expect(statuses).toEqual([3, 5]);
  });

  it("reads 0xFF without reporting an exit", () => {
    const statuses: number[] = [];
    const device = new DebugExit((s) => statuses.push(s));
    expect(device.readPort()).toBe(0xff);
    expect(statuses).toEqual([]);
  });
});
