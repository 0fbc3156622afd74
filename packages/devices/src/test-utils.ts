/** Fakes for the device tests; never exported from the package. */
import type { DevicePortRange, IrqLine } from "./interfaces.js";

/** An IRQ line that remembers its level and every change. */
export class RecordingIrq implements IrqLine {
  level = false;
  readonly changes: boolean[] = [];
  /** Count of low-to-high transitions: what an edge-triggered PIC would latch. */
  risingEdges = 0;
  setLevel(high: boolean): void {
    if (high && !this.level) this.risingEdges++;
    this.level = high;
    this.changes.push(high);
  }
}

/**
 * A byte-wide port bus over device port ranges, as @vmmkit/iom's PortSpace would dispatch
 * (without depending on it): unclaimed ports read 0xFF.
 */
export class TestBus {
  private readonly ranges: DevicePortRange[] = [];
  constructor(...ranges: DevicePortRange[][]) {
    for (const list of ranges) this.ranges.push(...list);
  }
  private find(port: number): DevicePortRange | undefined {
    return this.ranges.find((r) => port >= r.port && port < r.port + r.count);
  }
  inb(port: number): number {
    const range = this.find(port);
    return range ? range.device.readPort(port - range.port, 1) & 0xff : 0xff;
  }
  outb(port: number, value: number): void {
    const range = this.find(port);
    range?.device.writePort(port - range.port, value & 0xff, 1);
  }
}
