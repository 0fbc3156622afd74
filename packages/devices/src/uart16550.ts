/**
 * A 16550A UART (the PC's COM ports), register-level, after the National PC16550D
 * datasheet: the register file with its DLAB switching, the 16-byte receive FIFO with its
 * trigger levels and character timeout, line status (overrun, break) and modem status with
 * delta bits, loopback, scratch, and the four interrupt sources with their priorities
 * (line status, received data / timeout, THR empty, modem status) on an IRQ line that the
 * PC gates with MCR.OUT2.
 *
 * Transmission is instantaneous, as in QEMU: each THR write reaches the backend at once, so
 * the transmitter (and its FIFO) is always empty again and a THR-empty interrupt follows
 * every write. There is no baud-rate pacing in either direction; the divisor only sets the
 * length of the receive timeout.
 */

import type { Clock } from "./clock.js";
import { DISCONNECTED_IRQ, type DevicePortRange, type IrqLine, type PortHandler } from "./interfaces.js";
import { packState, StateReader, TrackedTimer } from "./state.js";

/** The host side of a UART. */
export interface SerialBackend {
  /** Called for every byte the guest transmits. */
  transmit(byte: number): void;
  /**
   * Called when the receiver has room again after it was full (the guest read a byte,
   * reset the FIFO, or left loopback): the host may now `receive` more.
   */
  receiveReady?(): void;
  /** The guest started (true) or ended (false) a break on the line (LCR bit 6). */
  setBreak?(active: boolean): void;
}

export interface Uart16550Options {
  /** Times the receive-FIFO character timeout. Without one it counts as elapsed at once. */
  readonly clock?: Clock;
  /** The interrupt line (IRQ 4 for COM1/COM3, 3 for COM2/COM4). */
  readonly irq?: IrqLine;
  /** First port, for `portRanges()` (default 0x3F8, COM1). */
  readonly port?: number;
  /** Owner name, for `portRanges()` (default "com1"). */
  readonly name?: string;
}

/** The PC's four COM ports: base port and IRQ. */
export const COM_PORTS = [
  { name: "com1", port: 0x3f8, irq: 4 },
  { name: "com2", port: 0x2f8, irq: 3 },
  { name: "com3", port: 0x3e8, irq: 4 },
  { name: "com4", port: 0x2e8, irq: 3 },
] as const;

/** The UART's input clock, Hz (1.8432 MHz: divisor 1 is 115200 baud). */
export const UART_CLOCK_HZ = 1_843_200;
const FIFO_SIZE = 16;
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;

const IER_RECEIVED_DATA = 0x01;
const IER_THR_EMPTY = 0x02;
const IER_LINE_STATUS = 0x04;
const IER_MODEM_STATUS = 0x08;

const IIR_NONE = 0x01;
const IIR_MODEM_STATUS = 0x00;
const IIR_THR_EMPTY = 0x02;
const IIR_RECEIVED_DATA = 0x04;
const IIR_LINE_STATUS = 0x06;
const IIR_TIMEOUT = 0x0c;

const LCR_BREAK = 0x40;
const LCR_DLAB = 0x80;

const MCR_OUT2 = 0x08;
const MCR_LOOPBACK = 0x10;

const LSR_DATA_READY = 0x01;
const LSR_OVERRUN = 0x02;
const LSR_BREAK = 0x10;
const LSR_THR_EMPTY = 0x20;
const LSR_TRANSMITTER_EMPTY = 0x40;
const LSR_FIFO_ERROR = 0x80;

const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;

export class Uart16550 implements PortHandler {
  private divisor = 12; // 9600 baud
  private interruptEnable = 0;
  private lineControl = 0;
  private modemControl = 0;
  private scratch = 0;
  private fifoEnabled = false;
  private triggerLevel = 1;

  private readonly receiveBytes = new Uint8Array(FIFO_SIZE);
  /** Per byte: the LSR error bits (break) that came with it. */
  private readonly receiveErrors = new Uint8Array(FIFO_SIZE);
  private receiveHead = 0;
  private receiveCount = 0;
  /** What RBR shows when nothing is waiting: the last byte read. */
  private lastReceived = 0;
  private overrun = false;
  /** Error bits (PE/FE/BI) of the byte at the top of the receiver, shown in LSR until it is read. */
  private lineErrors = 0;

  private thrEmptyInterrupt = false;
  private timeoutPending = false;
  private readonly timeoutTimer: TrackedTimer | null;

  /** Host-side modem inputs (CTS, DSR, RI, DCD in MSR bit positions): a ready peer. */
  private modemInputs = MSR_CTS | MSR_DSR | MSR_DCD;
  /** The inputs as MSR last showed them, for the delta bits. */
  private visibleInputs = MSR_CTS | MSR_DSR | MSR_DCD;
  private modemDeltas = 0;

  private irqLevel = false;
  private readonly clock: Clock | null;
  private readonly irq: IrqLine;
  private readonly port: number;
  private readonly name: string;

  constructor(
    private readonly backend: SerialBackend,
    options: Uart16550Options = {},
  ) {
    this.clock = options.clock ?? null;
    this.irq = options.irq ?? DISCONNECTED_IRQ;
    this.port = options.port ?? 0x3f8;
    this.name = options.name ?? "com1";
    this.timeoutTimer = this.clock ? new TrackedTimer(this.clock, () => this.characterTimeout()) : null;
  }

  /** The port range to register: 8 byte-wide ports from the base. */
  portRanges(): DevicePortRange[] {
    return [{ port: this.port, count: 8, owner: this.name, device: this, maxAccessSize: 1 }];
  }

  /**
   * A byte arrives on the serial line from the host. When the receiver is full (see
   * `receiveSpace`) the byte is lost and LSR reports an overrun, as on the wire; in loopback
   * the receiver does not listen to the line and the byte is dropped.
   */
  receive(byte: number): void {
    if (this.modemControl & MCR_LOOPBACK) return;
    this.pushReceived(byte & 0xff, 0);
  }

  /** A break condition arrives from the host: a zero byte flagged with BI. */
  receiveBreak(): void {
    if (this.modemControl & MCR_LOOPBACK) return;
    this.pushReceived(0, LSR_BREAK);
  }

  /** How many bytes the receiver can take now without an overrun (0 in loopback). */
  receiveSpace(): number {
    if (this.modemControl & MCR_LOOPBACK) return 0;
    return this.capacity - this.receiveCount;
  }

  /** Sets the modem status inputs from the host side (by default CTS, DSR and DCD are on). */
  setModemInputs(inputs: { readonly cts?: boolean; readonly dsr?: boolean; readonly ri?: boolean; readonly dcd?: boolean }): void {
    const bit = (on: boolean | undefined, mask: number) => (on === undefined ? this.modemInputs & mask : on ? mask : 0);
    this.modemInputs = bit(inputs.cts, MSR_CTS) | bit(inputs.dsr, MSR_DSR) | bit(inputs.ri, MSR_RI) | bit(inputs.dcd, MSR_DCD);
    this.updateModemStatus();
    this.updateIrq();
  }

  /** Master reset: the datasheet's reset values (divisor and scratch keep theirs). */
  reset(): void {
    const spaceBefore = this.receiveSpace();
    this.interruptEnable = 0;
    this.lineControl = 0;
    this.modemControl = 0;
    this.fifoEnabled = false;
    this.triggerLevel = 1;
    this.clearReceiver();
    this.overrun = false;
    this.lineErrors = 0;
    this.thrEmptyInterrupt = false;
    this.visibleInputs = this.modemInputs;
    this.modemDeltas = 0;
    this.updateIrq();
    this.notifyIfSpace(spaceBefore);
  }

  /**
   * The UART's registers, receive FIFO, pending interrupts, modem inputs and the armed
   * character timeout, for a saved state (version 1).
   */
  saveState(): Uint8Array {
    return packState("U550", 1, [
      this.divisor,
      this.interruptEnable,
      this.lineControl,
      this.modemControl,
      this.scratch,
      +this.fifoEnabled,
      this.triggerLevel,
      ...this.receiveBytes,
      ...this.receiveErrors,
      this.receiveHead,
      this.receiveCount,
      this.lastReceived,
      +this.overrun,
      this.lineErrors,
      +this.thrEmptyInterrupt,
      +this.timeoutPending,
      this.timeoutTimer?.deadline ?? Number.POSITIVE_INFINITY,
      this.modemInputs,
      this.visibleInputs,
      this.modemDeltas,
      +this.irqLevel,
    ]);
  }

  /**
   * Restores a `saveState()` (on the same clock time base): registers, FIFO, the timeout
   * timer and the IRQ line level. Bad input throws `ERR_DEVICES_INVALID_STATE` and changes
   * nothing. The backend is not called.
   */
  loadState(bytes: Uint8Array): void {
    const r = new StateReader(`UART ${this.name}`, "U550", 1, bytes);
    const divisor = r.int("divisor", 0, 0xffff);
    const interruptEnable = r.bits("IER", 0x0f);
    const lineControl = r.int("LCR", 0, 0xff);
    const modemControl = r.bits("MCR", 0x1f);
    const scratch = r.int("SCR", 0, 0xff);
    const fifoEnabled = r.bool("FIFO enabled");
    const triggerLevel = r.oneOf("trigger level", TRIGGER_LEVELS);
    const receiveBytes = r.bytes("receive FIFO", FIFO_SIZE);
    const receiveErrors = r.bytes("receive errors", FIFO_SIZE);
    const receiveHead = r.int("receive head", 0, FIFO_SIZE - 1);
    const receiveCount = r.int("receive count", 0, fifoEnabled ? FIFO_SIZE : 1);
    const lastReceived = r.int("last received", 0, 0xff);
    const overrun = r.bool("overrun");
    const lineErrors = r.bits("line errors", 0x1c);
    const thrEmptyInterrupt = r.bool("THR empty interrupt");
    const timeoutPending = r.bool("timeout pending");
    const timeoutDeadline = r.deadline("timeout deadline");
    const modemInputs = r.bits("modem inputs", 0xf0);
    const visibleInputs = r.bits("visible modem inputs", 0xf0);
    const modemDeltas = r.bits("modem deltas", 0x0f);
    const irqLevel = r.bool("IRQ level");
    r.done();

    this.divisor = divisor;
    this.interruptEnable = interruptEnable;
    this.lineControl = lineControl;
    this.modemControl = modemControl;
    this.scratch = scratch;
    this.fifoEnabled = fifoEnabled;
    this.triggerLevel = triggerLevel;
    this.receiveBytes.set(receiveBytes);
    this.receiveErrors.set(receiveErrors);
    this.receiveHead = receiveHead;
    this.receiveCount = receiveCount;
    this.lastReceived = lastReceived;
    this.overrun = overrun;
    this.lineErrors = lineErrors;
    this.thrEmptyInterrupt = thrEmptyInterrupt;
    this.timeoutPending = timeoutPending;
    this.timeoutTimer?.restore(timeoutDeadline);
    this.modemInputs = modemInputs;
    this.visibleInputs = visibleInputs;
    this.modemDeltas = modemDeltas;
    if (irqLevel !== this.irqLevel) {
      this.irqLevel = irqLevel;
      this.irq.setLevel(irqLevel);
    }
  }

  readPort(offset: number): number {
    const dlab = (this.lineControl & LCR_DLAB) !== 0;
    switch (offset & 7) {
      case 0:
        return dlab ? this.divisor & 0xff : this.readReceiveBuffer();
      case 1:
        return dlab ? this.divisor >> 8 : this.interruptEnable;
      case 2:
        return this.readInterruptIdentification();
      case 3:
        return this.lineControl;
      case 4:
        return this.modemControl;
      case 5:
        return this.readLineStatus();
      case 6:
        return this.readModemStatus();
      default:
        return this.scratch;
    }
  }

  writePort(offset: number, value: number): void {
    value &= 0xff;
    const dlab = (this.lineControl & LCR_DLAB) !== 0;
    switch (offset & 7) {
      case 0:
        if (dlab) this.divisor = (this.divisor & 0xff00) | value;
        else this.writeTransmitHolding(value);
        return;
      case 1:
        if (dlab) this.divisor = (this.divisor & 0xff) | (value << 8);
        else this.writeInterruptEnable(value);
        return;
      case 2:
        this.writeFifoControl(value);
        return;
      case 3:
        this.writeLineControl(value);
        return;
      case 4:
        this.writeModemControl(value);
        return;
      case 7:
        this.scratch = value;
        return;
      default:
        return; // LSR and MSR: the datasheet reserves writes for factory testing
    }
  }

  private get capacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  private pushReceived(byte: number, errors: number): void {
    if (!this.fifoEnabled) {
      // 16450 mode: one holding register; a byte arriving before the last was read overwrites it.
      if (this.receiveCount > 0) this.overrun = true;
      this.receiveHead = 0;
      this.receiveBytes[0] = byte;
      this.receiveErrors[0] = errors;
      this.receiveCount = 1;
      this.lineErrors |= errors;
    } else if (this.receiveCount === FIFO_SIZE) {
      this.overrun = true; // the byte in the shift register is lost; the FIFO keeps its bytes
    } else {
      const slot = (this.receiveHead + this.receiveCount) & (FIFO_SIZE - 1);
      this.receiveBytes[slot] = byte;
      this.receiveErrors[slot] = errors;
      this.receiveCount++;
      if (this.receiveCount === 1) this.lineErrors |= errors;
    }
    this.restartTimeout();
    this.updateIrq();
  }

  private readReceiveBuffer(): number {
    if (this.receiveCount === 0) return this.lastReceived;
    const spaceBefore = this.receiveSpace();
    const byte = this.receiveBytes[this.receiveHead]!;
    this.receiveHead = (this.receiveHead + 1) & (FIFO_SIZE - 1);
    this.receiveCount--;
    this.lastReceived = byte;
    // The next byte's errors show in LSR once it reaches the top.
    if (this.receiveCount > 0) this.lineErrors |= this.receiveErrors[this.receiveHead]!;
    this.timeoutPending = false;
    this.restartTimeout();
    this.updateIrq();
    this.notifyIfSpace(spaceBefore);
    return byte;
  }

  private interruptId(): number {
    const enable = this.interruptEnable;
    if (enable & IER_LINE_STATUS && (this.overrun || this.lineErrors !== 0)) return IIR_LINE_STATUS;
    if (enable & IER_RECEIVED_DATA) {
      if (this.timeoutPending) return IIR_TIMEOUT;
      if (this.receiveCount > 0 && (!this.fifoEnabled || this.receiveCount >= this.triggerLevel)) return IIR_RECEIVED_DATA;
    }
    if (enable & IER_THR_EMPTY && this.thrEmptyInterrupt) return IIR_THR_EMPTY;
    if (enable & IER_MODEM_STATUS && this.modemDeltas !== 0) return IIR_MODEM_STATUS;
    return IIR_NONE;
  }

  private readInterruptIdentification(): number {
    const id = this.interruptId();
    // Reading IIR while it reports THR empty clears that interrupt.
    if (id === IIR_THR_EMPTY) {
      this.thrEmptyInterrupt = false;
      this.updateIrq();
    }
    return id | (this.fifoEnabled ? 0xc0 : 0);
  }

  private readLineStatus(): number {
    let errorInFifo = false;
    if (this.fifoEnabled) {
      for (let i = 0; i < this.receiveCount; i++) if (this.receiveErrors[(this.receiveHead + i) & (FIFO_SIZE - 1)]) errorInFifo = true;
    }
    const value =
      (this.receiveCount > 0 ? LSR_DATA_READY : 0) |
      (this.overrun ? LSR_OVERRUN : 0) |
      this.lineErrors |
      LSR_THR_EMPTY |
      LSR_TRANSMITTER_EMPTY |
      (errorInFifo ? LSR_FIFO_ERROR : 0);
    // Reading LSR clears the error bits (and with them the line status interrupt).
    this.overrun = false;
    this.lineErrors = 0;
    if (this.fifoEnabled && this.receiveCount > 0) this.receiveErrors[this.receiveHead] = 0;
    this.updateIrq();
    return value;
  }

  private readModemStatus(): number {
    const value = this.modemDeltas | this.visibleInputs;
    this.modemDeltas = 0;
    this.updateIrq();
    return value;
  }

  private writeTransmitHolding(value: number): void {
    this.thrEmptyInterrupt = false;
    if (this.modemControl & MCR_LOOPBACK) this.pushReceived(value, 0);
    else this.backend.transmit(value);
    // Sent at once: THR is empty again.
    this.thrEmptyInterrupt = true;
    this.updateIrq();
  }

  private writeInterruptEnable(value: number): void {
    const enabling = value & ~this.interruptEnable;
    this.interruptEnable = value & 0x0f;
    // Enabling the THR-empty interrupt while THR is empty raises it at once.
    if (enabling & IER_THR_EMPTY) this.thrEmptyInterrupt = true;
    this.updateIrq();
  }

  private writeFifoControl(value: number): void {
    const spaceBefore = this.receiveSpace();
    const enable = (value & 0x01) !== 0;
    if (enable !== this.fifoEnabled) {
      // Switching the FIFOs on or off empties them.
      this.fifoEnabled = enable;
      this.clearReceiver();
    }
    // FCR bits 1-7 are only taken while bit 0 is set. Bit 2 (transmit FIFO reset) has nothing
    // to clear, and bit 3 (DMA mode) only changes the RXRDY/TXRDY pins, which a PC leaves open.
    if (enable) {
      if (value & 0x02) this.clearReceiver();
      this.triggerLevel = TRIGGER_LEVELS[value >> 6]!;
    }
    this.updateIrq();
    this.notifyIfSpace(spaceBefore);
  }

  private writeLineControl(value: number): void {
    const breakChanged = (value ^ this.lineControl) & LCR_BREAK;
    this.lineControl = value;
    if (breakChanged && !(this.modemControl & MCR_LOOPBACK)) this.backend.setBreak?.((value & LCR_BREAK) !== 0);
  }

  private writeModemControl(value: number): void {
    const spaceBefore = this.receiveSpace();
    this.modemControl = value & 0x1f;
    this.updateModemStatus();
    this.updateIrq();
    this.notifyIfSpace(spaceBefore);
  }

  /** The modem inputs MSR shows: the host's, or in loopback the MCR outputs wired back. */
  private updateModemStatus(): void {
    let inputs = this.modemInputs;
    const m = this.modemControl;
    if (m & MCR_LOOPBACK) {
      // DTR -> DSR, RTS -> CTS, OUT1 -> RI, OUT2 -> DCD.
      inputs = ((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
    }
    const changed = inputs ^ this.visibleInputs;
    let deltas = 0;
    if (changed & MSR_CTS) deltas |= 0x01;
    if (changed & MSR_DSR) deltas |= 0x02;
    if (changed & MSR_RI && !(inputs & MSR_RI)) deltas |= 0x04; // trailing edge of RI only
    if (changed & MSR_DCD) deltas |= 0x08;
    this.modemDeltas |= deltas;
    this.visibleInputs = inputs;
  }

  private clearReceiver(): void {
    this.receiveHead = 0;
    this.receiveCount = 0;
    this.timeoutPending = false;
    this.timeoutTimer?.disarm();
  }

  /** Length of one character on the line at the current divisor and format, in ns. */
  private characterTimeNs(): number {
    const lcr = this.lineControl;
    const dataBits = 5 + (lcr & 3);
    const stopBits = lcr & 0x04 ? (dataBits === 5 ? 1.5 : 2) : 1;
    const bits = 1 + dataBits + (lcr & 0x08 ? 1 : 0) + stopBits;
    const divisor = this.divisor === 0 ? 0x10000 : this.divisor;
    return Math.ceil((bits * 16 * divisor * 1e9) / UART_CLOCK_HZ);
  }

  /** Restarts the four-character timeout after receiver activity (FIFO mode only). */
  private restartTimeout(): void {
    if (!this.fifoEnabled || this.receiveCount === 0) {
      this.timeoutTimer?.disarm();
      return;
    }
    if (this.clock === null || this.timeoutTimer === null) {
      this.timeoutPending = true;
      return;
    }
    this.timeoutTimer.arm(this.clock.now() + 4 * this.characterTimeNs());
  }

  private characterTimeout(): void {
    if (!this.fifoEnabled || this.receiveCount === 0) return;
    this.timeoutPending = true;
    this.updateIrq();
  }

  private notifyIfSpace(spaceBefore: number): void {
    if (spaceBefore === 0 && this.receiveSpace() > 0) this.backend.receiveReady?.();
  }

  private updateIrq(): void {
    // On a PC the INTR pin reaches the PIC through a buffer enabled by OUT2, which loopback
    // forces inactive.
    const m = this.modemControl;
    const level = this.interruptId() !== IIR_NONE && (m & MCR_OUT2) !== 0 && (m & MCR_LOOPBACK) === 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.irq.setLevel(level);
  }
}
