/**
 * A 16550A UART (the PC's COM ports), register-level. The host supplies the backend that
 * receives transmitted bytes. Offsets 0-7 from the base port (0x3F8 for COM1).
 *
 * This is the foundation slice: the full register file with its DLAB switching, line and
 * modem status, scratch and loopback; transmission is immediate (the transmitter is always
 * empty). Receive FIFOs, trigger levels and interrupts come with the devices issue.
 */

export interface SerialBackend {
  /** Called for every byte the guest transmits. */
  transmit(byte: number): void;
}

const LSR_DATA_READY = 0x01;
const LSR_THR_EMPTY = 0x20;
const LSR_TRANSMITTER_EMPTY = 0x40;
const MCR_LOOPBACK = 0x10;
const LCR_DLAB = 0x80;

export class Uart16550 {
  private divisor = 12; // 9600 baud
  private interruptEnable = 0;
  private lineControl = 0x03;
  private modemControl = 0;
  private scratch = 0;
  private fifoControl = 0;
  private receiveBuffer: number[] = [];

  constructor(private readonly backend: SerialBackend) {}

  /** Bytes received from the host side (keyboard, socket) for the guest to read. */
  receive(byte: number): void {
    this.receiveBuffer.push(byte & 0xff);
  }

  readPort(offset: number): number {
    const dlab = (this.lineControl & LCR_DLAB) !== 0;
    switch (offset & 7) {
      case 0:
        if (dlab) return this.divisor & 0xff;
        return this.receiveBuffer.shift() ?? 0;
      case 1:
        return dlab ? this.divisor >> 8 : this.interruptEnable;
      case 2:
        // IIR: no interrupt pending; bits 6-7 report enabled FIFOs.
        return 0x01 | (this.fifoControl & 1 ? 0xc0 : 0);
      case 3:
        return this.lineControl;
      case 4:
        return this.modemControl;
      case 5:
        return LSR_THR_EMPTY | LSR_TRANSMITTER_EMPTY | (this.receiveBuffer.length > 0 ? LSR_DATA_READY : 0);
      case 6: {
        // MSR: in loopback the modem-control outputs appear on the inputs.
        if (this.modemControl & MCR_LOOPBACK) {
          const m = this.modemControl;
          return ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
        }
        return 0xb0; // CTS, DSR, DCD asserted: a cable with a ready peer
      }
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
        else if (this.modemControl & MCR_LOOPBACK) this.receiveBuffer.push(value);
        else this.backend.transmit(value);
        return;
      case 1:
        if (dlab) this.divisor = (this.divisor & 0xff) | (value << 8);
        else this.interruptEnable = value & 0x0f;
        return;
      case 2:
        this.fifoControl = value & 0xc9;
        if (value & 0x02) this.receiveBuffer = [];
        return;
      case 3:
        this.lineControl = value;
        return;
      case 4:
        this.modemControl = value & 0x1f;
        return;
      case 7:
        this.scratch = value;
        return;
      default:
        return; // LSR and MSR are read-only
    }
  }
}
