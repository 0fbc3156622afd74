/**
 * The small interfaces devices consume or offer, declared here so this package depends on
 * no other: the host wires them to the PIC, the CPU and the port bus.
 */

/** One interrupt request wire from a device to an interrupt controller. */
export interface IrqLine {
  /** Drives the wire high (request) or low. Devices call it only when the level changes. */
  setLevel(high: boolean): void;
}

/** A line that goes nowhere, for devices used without an interrupt controller. */
export const DISCONNECTED_IRQ: IrqLine = { setLevel() {} };

/** Where the A20 gate acts: the CPU's physical address masking (`Cpu.setA20` has this shape). */
export interface A20Target {
  setA20(enabled: boolean): void;
}

/**
 * How a device answers the guest's port accesses: `offset` from the first port of its
 * range, `size` in bytes. The shape of `@vmmkit/iom`'s `PortDevice`.
 */
export interface PortHandler {
  readPort(offset: number, size: number): number;
  writePort(offset: number, value: number, size: number): void;
}

/**
 * A port range a device wants on the bus, in the shape `@vmmkit/iom`'s
 * `PortSpace.register` takes: `for (const r of device.portRanges()) ports.register(r)`.
 */
export interface DevicePortRange {
  readonly port: number;
  readonly count: number;
  readonly owner: string;
  readonly device: PortHandler;
  /** 1 for the 8-bit ISA devices here: a wider access reaches them as byte accesses. */
  readonly maxAccessSize: 1 | 2 | 4;
}
