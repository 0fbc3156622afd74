import { describe, expect, it } from "vitest";
import { PortSpace } from "./index.js";

describe("per-port statistics", () => {
  it("count each guest access at the port it starts at, by direction and size", () => {
    const ports = new PortSpace();
    ports.register({ port: 0x3f8, count: 8, owner: "com1", device: { readPort: () => 0 } });
    ports.read(0x3fd, 1);
    ports.read(0x3fd, 1);
    ports.read(0x3fd, 2);
    ports.write(0x3fd, 0, 4);
    ports.write(0x3f8, 0x41, 1);

    expect(ports.statisticsFor(0x3fd)).toEqual({
      port: 0x3fd,
      owner: "com1",
      reads: { byte: 2, word: 1, dword: 0 },
      writes: { byte: 0, word: 0, dword: 1 },
    });
    // The dword write at 0x3fd covered 0x3fe-0x400 too, but the guest started it at 0x3fd.
    expect(ports.statisticsFor(0x3fe).writes).toEqual({ byte: 0, word: 0, dword: 0 });
    expect(ports.statisticsFor(0x3f8).writes).toEqual({ byte: 1, word: 0, dword: 0 });
  });

  it("count one access once even when the bus splits it", () => {
    const ports = new PortSpace();
    ports.register({ port: 0x20, count: 2, owner: "pic", device: {}, maxAccessSize: 1 });
    ports.write(0x20, 0xffff, 2);
    ports.read(0x21, 2); // half the pic, half unassigned
    expect(ports.statisticsFor(0x20).writes).toEqual({ byte: 0, word: 1, dword: 0 });
    expect(ports.statisticsFor(0x21).writes).toEqual({ byte: 0, word: 0, dword: 0 });
    expect(ports.statisticsFor(0x21).reads).toEqual({ byte: 0, word: 1, dword: 0 });
    expect(ports.statisticsFor(0x22).reads).toEqual({ byte: 0, word: 0, dword: 0 });
    expect(ports.unassignedReads).toBe(1);
  });

  it("count unassigned ports too, with no owner", () => {
    const ports = new PortSpace();
    ports.write(0x80, 0x12, 1); // the POST code port nobody claims
    expect(ports.statisticsFor(0x80)).toEqual({
      port: 0x80,
      owner: undefined,
      reads: { byte: 0, word: 0, dword: 0 },
      writes: { byte: 1, word: 0, dword: 0 },
    });
  });

  it("count every unit of a string transfer", () => {
    const ports = new PortSpace();
    ports.register({ port: 0x1f0, count: 8, owner: "ide", device: {} });
    ports.readString(0x1f0, 2, new Uint8Array(512));
    ports.writeString(0x1f0, 4, new Uint8Array(16));
    expect(ports.statisticsFor(0x1f0)).toMatchObject({ reads: { byte: 0, word: 256, dword: 0 }, writes: { byte: 0, word: 0, dword: 4 } });
  });

  it("list the ports accessed, in port order, and reset to zero", () => {
    const ports = new PortSpace();
    ports.register({ port: 0x60, count: 1, owner: "kbc", device: {} });
    ports.read(0x64, 1);
    ports.write(0x60, 0xd1, 1);
    ports.read(0xffff, 1);
    expect(ports.statistics().map((s) => [s.port, s.owner])).toEqual([
      [0x60, "kbc"],
      [0x64, undefined],
      [0xffff, undefined],
    ]);

    ports.resetStatistics();
    expect(ports.statistics()).toEqual([]);
    expect([ports.unassignedReads, ports.unassignedWrites]).toEqual([0, 0]);
    expect(ports.statisticsFor(0x60).writes.byte).toBe(0);
  });

  it("take port numbers modulo 0x10000, as dispatch does", () => {
    const ports = new PortSpace();
    ports.read(0x10080, 1);
    expect(ports.statisticsFor(0x80).reads.byte).toBe(1);
    expect(ports.statisticsFor(0x10080).reads.byte).toBe(1);
  });

  it("keep a port's counts when its range is deregistered", () => {
    const ports = new PortSpace();
    ports.register({ port: 0x70, count: 2, owner: "cmos", device: {} });
    ports.write(0x70, 0x0a, 1);
    ports.deregister(0x70);
    expect(ports.statisticsFor(0x70)).toMatchObject({ owner: undefined, writes: { byte: 1 } });
  });
});
