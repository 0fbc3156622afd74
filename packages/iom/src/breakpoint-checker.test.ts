import { describe, expect, it } from "vitest";
import { PortSpace, type AccessSize, type IoBreakpointChecker, type IoBreakpointVerdict, type PortDevice } from "./index.js";

type Check = [port: number, size: AccessSize, direction: string, value: number, phase: string];

/** A checker that logs every question and halts where `halt` says so. */
function recordingChecker(halt: (check: Check) => boolean = () => false) {
  const checks: Check[] = [];
  const checker: IoBreakpointChecker = {
    checkPortAccess(port, size, direction, value, phase): IoBreakpointVerdict {
      const check: Check = [port, size, direction, value, phase];
      checks.push(check);
      return halt(check) ? "halt" : "continue";
    },
  };
  return { checker, checks };
}

function counterDevice() {
  const log: string[] = [];
  let next = 0x40;
  const device: PortDevice = {
    readPort: (offset, size) => (log.push(`in ${offset}/${size}`), next++),
    writePort: (offset, value, size) => void log.push(`out ${offset}=${value.toString(16)}/${size}`),
  };
  return { device, log };
}

describe("the I/O breakpoint hook", () => {
  it("is not consulted until installed", () => {
    const ports = new PortSpace();
    const { checker, checks } = recordingChecker();
    ports.read(0x80, 1);
    ports.setBreakpointChecker(checker);
    ports.read(0x80, 1);
    expect(checks.length).toBe(2);
  });

  it("asks before and after each access, with the value read or written and the access as issued", () => {
    const ports = new PortSpace();
    const { device } = counterDevice();
    ports.register({ port: 0x3f8, count: 8, owner: "com1", device, maxAccessSize: 1 });
    const { checker, checks } = recordingChecker();
    ports.setBreakpointChecker(checker);

    expect(ports.read(0x3fd, 1)).toBe(0x40);
    ports.write(0x3f8, 0x1234, 2); // split into two byte writes, but checked as one word access
    ports.write(0x3f8, 0x1ff, 1); // the checker sees the value truncated to the access size
    expect(checks).toEqual([
      [0x3fd, 1, "read", 0, "before"],
      [0x3fd, 1, "read", 0x40, "after"],
      [0x3f8, 2, "write", 0x1234, "before"],
      [0x3f8, 2, "write", 0x1234, "after"],
      [0x3f8, 1, "write", 0xff, "before"],
      [0x3f8, 1, "write", 0xff, "after"],
    ]);
  });

  it("suppresses an access halted before it happens: the device never sees it and it is not counted", () => {
    const ports = new PortSpace();
    const { device, log } = counterDevice();
    ports.register({ port: 0x60, count: 1, owner: "kbc", device });
    const { checker } = recordingChecker(([, , , , phase]) => phase === "before");
    ports.setBreakpointChecker(checker);

    expect(ports.read(0x60, 1)).toBe(0xff);
    expect(ports.read(0x60, 2)).toBe(0xffff);
    ports.write(0x60, 0xfe, 1);
    expect(log).toEqual([]);
    expect(ports.statisticsFor(0x60).reads).toEqual({ byte: 0, word: 0, dword: 0 });
    expect(ports.statisticsFor(0x60).writes.byte).toBe(0);
  });

  it("lets an access halted after it happens complete", () => {
    const ports = new PortSpace();
    const { device, log } = counterDevice();
    ports.register({ port: 0x60, count: 1, owner: "kbc", device });
    const { checker } = recordingChecker(([, , , , phase]) => phase === "after");
    ports.setBreakpointChecker(checker);
    expect(ports.read(0x60, 1)).toBe(0x40);
    ports.write(0x60, 0xd1, 1);
    expect(log).toEqual(["in 0/1", "out 0=d1/1"]);
    expect(ports.statisticsFor(0x60).reads.byte).toBe(1);
  });

  it("checks every unit of a string transfer and stops it where the checker halts", () => {
    const ports = new PortSpace();
    const stringCalls: number[] = [];
    const { device, log } = counterDevice();
    device.readPortString = (_offset, _size, _buffer, count) => (stringCalls.push(count), count);
    ports.register({ port: 0x1f0, count: 8, owner: "ide", device });

    // Halt before the third unit: two units are transferred, one unit at a time.
    const before = recordingChecker(([, , , , phase]) => phase === "before" && before.checks.filter((c) => c[4] === "before").length === 3);
    ports.setBreakpointChecker(before.checker);
    const buffer = new Uint8Array(8);
    expect(ports.readString(0x1f0, 2, buffer)).toBe(2);
    expect([...buffer]).toEqual([0x40, 0, 0x41, 0, 0, 0, 0, 0]);
    expect(log).toEqual(["in 0/2", "in 0/2"]);
    expect(stringCalls).toEqual([]); // the checked path goes unit by unit
    expect(ports.statisticsFor(0x1f0).reads.word).toBe(2);

    // Halt after the first unit of a write: that unit is done, the transfer ends there.
    const after = recordingChecker(([, , , , phase]) => phase === "after");
    ports.setBreakpointChecker(after.checker);
    expect(ports.writeString(0x1f0, 1, new Uint8Array([7, 8, 9]))).toBe(1);
    expect(log.slice(2)).toEqual(["out 0=7/1"]);
    expect(after.checks).toEqual([
      [0x1f0, 1, "write", 7, "before"],
      [0x1f0, 1, "write", 7, "after"],
    ]);
  });

  it("checks accesses to unassigned ports as well", () => {
    const ports = new PortSpace();
    const { checker, checks } = recordingChecker();
    ports.setBreakpointChecker(checker);
    expect(ports.read(0x80, 4)).toBe(0xffffffff);
    expect(checks).toEqual([
      [0x80, 4, "read", 0, "before"],
      [0x80, 4, "read", 0xffffffff, "after"],
    ]);
  });

  it("is no longer consulted once removed", () => {
    const ports = new PortSpace();
    const { checker, checks } = recordingChecker(() => true);
    ports.setBreakpointChecker(checker);
    ports.read(0x80, 1);
    ports.setBreakpointChecker(null);
    ports.read(0x80, 1);
    ports.writeString(0x80, 1, new Uint8Array(3));
    expect(checks.length).toBe(1);
    expect(ports.statisticsFor(0x80).writes.byte).toBe(3);
  });
});
