/**
 * The debug console port of Bochs (0xE9) and QEMU's isa-debugcon (0xE9 by default; 0x402
 * is where SeaBIOS and OVMF print): every byte written goes straight to the host, and reads
 * return 0xE9 so a guest can tell the port is there.
 */

import type { DevicePortRange, PortHandler } from "./interfaces.js";
import { packState, StateReader } from "./state.js";
import type { SerialBackend } from "./uart16550.js";

export interface DebugConsoleOptions {
  /** The ports to answer at (default 0xE9 and 0x402). */
  readonly ports?: readonly number[];
  /** What reads return (default 0xE9, QEMU's `readback`). */
  readonly readback?: number;
}

export class DebugConsole implements PortHandler {
  private readonly portList: readonly number[];
  private readonly readback: number;

  /** `output` receives every byte written (a `SerialBackend` such as the terminal). */
  constructor(
    private readonly output: SerialBackend,
    options: DebugConsoleOptions = {},
  ) {
    this.portList = options.ports ?? [0xe9, 0x402];
    this.readback = (options.readback ?? 0xe9) & 0xff;
  }

  /** One byte-wide range per port: a 16-bit OUT writes two bytes, the second to the next port. */
  portRanges(): DevicePortRange[] {
    return this.portList.map((port) => ({ port, count: 1, owner: `debugcon-${port.toString(16)}`, device: this, maxAccessSize: 1 as const }));
  }

  /** The console keeps no state between accesses; this is an empty state (version 1), so a machine can save every device alike. */
  saveState(): Uint8Array {
    return packState("DCON", 1, []);
  }

  /** Checks a `saveState()`; there is nothing to restore. Bad input throws `ERR_DEVICES_INVALID_STATE`. */
  loadState(bytes: Uint8Array): void {
    new StateReader("debug console", "DCON", 1, bytes).done();
  }

  readPort(): number {
    return this.readback;
  }

  writePort(_offset: number, value: number): void {
    this.output.transmit(value & 0xff);
  }
}
