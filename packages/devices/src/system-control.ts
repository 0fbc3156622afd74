/**
 * The two PC mechanisms that reset the processor and gate address line 20: port 0x92
 * ("fast A20" and fast reset, system control port A) and the system-control subset of the
 * 8042 keyboard controller (its output port, reached with commands 0xD0/0xD1 and pulsed
 * with 0xF0-0xFF, so 0xFE resets the machine).
 */

import type { A20Target, DevicePortRange, PortHandler } from "./interfaces.js";
import { DevicesError } from "./errors.js";
import { packState, StateReader } from "./state.js";

/**
 * Combines the A20 enables of port 0x92 and the 8042 the way a PC chipset does: A20 is on
 * while either source enables it. Each device gets its own `input()`.
 */
export class A20Gate {
  private readonly inputs: boolean[] = [];
  private combined = false;

  /** `target` is told the combined state now and on every change (`Cpu.setA20` fits). */
  constructor(private readonly target: A20Target) {
    target.setA20(false);
  }

  /** A new source for the gate; it starts disabled. */
  input(): A20Target {
    const index = this.inputs.length;
    this.inputs.push(false);
    return {
      setA20: (enabled: boolean) => {
        this.inputs[index] = enabled;
        this.update();
      },
    };
  }

  /** Whether A20 is enabled now (for re-applying after the CPU's own reset, which enables it). */
  get enabled(): boolean {
    return this.combined;
  }

  /** Each input's enable and the combined state, for a saved state (version 1). */
  saveState(): Uint8Array {
    return packState("A20G", 1, [this.inputs.length, ...this.inputs.map(Number), +this.combined]);
  }

  /**
   * Restores a `saveState()` of a gate with the same number of inputs, and tells the target
   * if the combined state changes. Bad input throws `ERR_DEVICES_INVALID_STATE` and changes nothing.
   */
  loadState(bytes: Uint8Array): void {
    const r = new StateReader("A20 gate", "A20G", 1, bytes);
    r.int("input count", this.inputs.length, this.inputs.length);
    const inputs = this.inputs.map((_, i) => r.bool(`input ${i}`));
    const combined = r.bool("combined");
    r.done();
    inputs.forEach((enabled, i) => (this.inputs[i] = enabled));
    if (combined !== this.combined) {
      this.combined = combined;
      this.target.setA20(combined);
    }
  }

  private update(): void {
    const combined = this.inputs.some((enabled) => enabled);
    if (combined === this.combined) return;
    this.combined = combined;
    this.target.setA20(combined);
  }
}

export interface SystemControlOptions {
  /** Where this device's A20 enable goes: an `A20Gate` input, or the CPU directly. */
  readonly a20?: A20Target;
  /**
   * The device asks for a processor reset. Called during the guest's port write: perform
   * the reset after the current instruction, not from inside the callback.
   */
  readonly onReset?: () => void;
}

const NO_A20: A20Target = { setA20() {} };

/**
 * Port 0x92, system control port A: bit 1 enables A20, a 0-to-1 change of bit 0 resets the
 * processor. The other bits read back as written (as QEMU does; chipsets use bits 6-7 for
 * the disk activity light).
 */
export class Port92 implements PortHandler {
  private value = 0;
  private readonly a20: A20Target;
  private readonly onReset: (() => void) | undefined;

  constructor(options: SystemControlOptions = {}) {
    this.a20 = options.a20 ?? NO_A20;
    this.onReset = options.onReset;
    this.a20.setA20(false);
  }

  portRanges(): DevicePortRange[] {
    return [{ port: 0x92, count: 1, owner: "port92", device: this, maxAccessSize: 1 }];
  }

  readPort(): number {
    return this.value;
  }

  writePort(_offset: number, value: number): void {
    value &= 0xff;
    const old = this.value;
    this.value = value;
    this.a20.setA20((value & 0x02) !== 0);
    if (value & 0x01 && !(old & 0x01)) this.onReset?.();
  }

  /** The port's value, for a saved state (version 1). */
  saveState(): Uint8Array {
    return packState("P092", 1, [this.value]);
  }

  /**
   * Restores a `saveState()` and drives the A20 input from it; no reset is triggered. Bad
   * input throws `ERR_DEVICES_INVALID_STATE` and changes nothing.
   */
  loadState(bytes: Uint8Array): void {
    const r = new StateReader("port 0x92", "P092", 1, bytes);
    const value = r.int("value", 0, 0xff);
    r.done();
    this.value = value;
    this.a20.setA20((value & 0x02) !== 0);
  }

  /** Machine reset: the reset bit clears; the A20 bit keeps its value (as in QEMU). */
  reset(): void {
    this.value &= ~0x01;
  }
}

const STATUS_OUTPUT_FULL = 0x01;
const STATUS_SYSTEM_FLAG = 0x04;
const STATUS_LAST_WAS_COMMAND = 0x08;
const STATUS_NOT_INHIBITED = 0x10;

const OUTPUT_RESET = 0x01; // active low: 0 holds the processor in reset
const OUTPUT_A20 = 0x02;
/** The output port after power-on, as QEMU starts it: not in reset, A20 on, the rest high. */
const OUTPUT_POWER_ON = 0xcf;

/**
 * The system-control part of an 8042 keyboard controller at ports 0x60 (data) and 0x64
 * (status/command). There is no keyboard or mouse behind it and it raises no IRQ; firmware
 * and kernels find a controller that passes its self-test and answers:
 *
 * - 0x20 / 0x60: read / write the command byte (bit 2 is the system flag in the status);
 * - 0xAA self-test (answers 0x55, sets the system flag), 0xAB interface test (0x00);
 * - 0xAD / 0xAE and 0xA7 / 0xA8: disable / enable the keyboard and mouse interfaces
 *   (command byte bits 4 and 5);
 * - 0xC0 read the input port (0x80: keyboard not inhibited), 0xE0 read test inputs (0x00);
 * - 0xD0 / 0xD1: read / write the output port: bit 0 low resets the processor, bit 1 is A20;
 * - 0xDD / 0xDF: disable / enable A20;
 * - 0xF0-0xFF: pulse the output port bits whose command bit is 0 (0xFE pulses reset).
 *
 * Other commands, and bytes written to port 0x60 for the absent keyboard, are ignored.
 */
export class Kbc8042 {
  private output = OUTPUT_POWER_ON;
  private commandByte = 0;
  private status = STATUS_NOT_INHIBITED;
  private outputBuffer = 0;
  /** The command waiting for its data byte on port 0x60 (0x60 or 0xD1), or 0. */
  private pendingCommand = 0;
  private readonly a20: A20Target;
  private readonly onReset: (() => void) | undefined;

  /** Port 0x60. */
  readonly dataPort: PortHandler;
  /** Port 0x64. */
  readonly commandPort: PortHandler;

  constructor(options: SystemControlOptions = {}) {
    this.a20 = options.a20 ?? NO_A20;
    this.onReset = options.onReset;
    this.dataPort = { readPort: () => this.readData(), writePort: (_offset, value) => this.writeData(value & 0xff) };
    this.commandPort = { readPort: () => this.status, writePort: (_offset, value) => this.writeCommand(value & 0xff) };
    this.a20.setA20((this.output & OUTPUT_A20) !== 0);
  }

  portRanges(): DevicePortRange[] {
    return [
      { port: 0x60, count: 1, owner: "kbc-data", device: this.dataPort, maxAccessSize: 1 },
      { port: 0x64, count: 1, owner: "kbc-command", device: this.commandPort, maxAccessSize: 1 },
    ];
  }

  /** The output port, command byte, status, output buffer and a command waiting for data, for a saved state (version 1). */
  saveState(): Uint8Array {
    return packState("8042", 1, [this.output, this.commandByte, this.status, this.outputBuffer, this.pendingCommand]);
  }

  /**
   * Restores a `saveState()` and drives the A20 input from the output port; no reset is
   * triggered. Bad input throws `ERR_DEVICES_INVALID_STATE` and changes nothing.
   */
  loadState(bytes: Uint8Array): void {
    const r = new StateReader("8042", "8042", 1, bytes);
    const output = r.int("output port", 0, 0xff);
    const commandByte = r.int("command byte", 0, 0xff);
    const status = r.int("status", 0, 0xff);
    const outputBuffer = r.int("output buffer", 0, 0xff);
    const pendingCommand = r.oneOf("pending command", [0, 0x60, 0xd1]);
    r.done();
    if (!(output & OUTPUT_RESET)) throw new DevicesError("ERR_DEVICES_INVALID_STATE", "8042 state: the output port holds the processor in reset (bit 0 clear); nothing was changed");
    this.output = output;
    this.commandByte = commandByte;
    this.status = status;
    this.outputBuffer = outputBuffer;
    this.pendingCommand = pendingCommand;
    this.a20.setA20((output & OUTPUT_A20) !== 0);
  }

  /** Power-on state: output port 0xCF (A20 on), command byte 0, nothing buffered. */
  reset(): void {
    this.commandByte = 0;
    this.status = STATUS_NOT_INHIBITED;
    this.outputBuffer = 0;
    this.pendingCommand = 0;
    this.setOutputPort(OUTPUT_POWER_ON);
  }

  private readData(): number {
    this.status &= ~STATUS_OUTPUT_FULL;
    return this.outputBuffer;
  }

  private respond(value: number): void {
    this.outputBuffer = value;
    this.status |= STATUS_OUTPUT_FULL;
  }

  private writeData(value: number): void {
    this.status &= ~STATUS_LAST_WAS_COMMAND;
    const command = this.pendingCommand;
    this.pendingCommand = 0;
    if (command === 0x60) {
      this.commandByte = value;
      this.status = (this.status & ~STATUS_SYSTEM_FLAG) | (value & STATUS_SYSTEM_FLAG);
    } else if (command === 0xd1) {
      this.setOutputPort(value);
    }
  }

  private writeCommand(command: number): void {
    this.status |= STATUS_LAST_WAS_COMMAND;
    this.pendingCommand = 0;
    switch (command) {
      case 0x20:
        this.respond(this.commandByte);
        return;
      case 0x60:
      case 0xd1:
        this.pendingCommand = command;
        return;
      case 0xa7:
        this.commandByte |= 0x20;
        return;
      case 0xa8:
        this.commandByte &= ~0x20;
        return;
      case 0xaa:
        this.status |= STATUS_SYSTEM_FLAG;
        this.respond(0x55);
        return;
      case 0xab:
        this.respond(0x00);
        return;
      case 0xad:
        this.commandByte |= 0x10;
        return;
      case 0xae:
        this.commandByte &= ~0x10;
        return;
      case 0xc0:
        this.respond(0x80);
        return;
      case 0xd0:
        this.respond(this.output);
        return;
      case 0xdd:
        this.setOutputPort(this.output & ~OUTPUT_A20);
        return;
      case 0xdf:
        this.setOutputPort(this.output | OUTPUT_A20);
        return;
      case 0xe0:
        this.respond(0x00);
        return;
      default:
        // 0xF0-0xFF pulse output bits 0-3 low where the command has a 0; only bit 0 (reset) matters.
        if (command >= 0xf0 && !(command & OUTPUT_RESET)) this.onReset?.();
    }
  }

  private setOutputPort(value: number): void {
    this.output = value;
    this.a20.setA20((value & OUTPUT_A20) !== 0);
    if (!(value & OUTPUT_RESET)) {
      this.output |= OUTPUT_RESET; // the reset line is released once the processor has been reset
      this.onReset?.();
    }
  }
}
