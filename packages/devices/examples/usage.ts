import { DebugExit, Pic8259Pair, Pit8254, Uart16550, VirtualClock, type SerialBackend } from "@vmmkit/devices";

// Machine time is virtual: the host moves the clock (from executed instructions, or from
// the host's own clock), and timers fire only when it does.
const clock = new VirtualClock();
// The two 8259As; the CPU side asks them for a vector when it can take an interrupt.
const pic = new Pic8259Pair();
const pit = new Pit8254({ clock, irq: pic.irqLine(0) });

// Where the guest's serial output goes: a terminal, a file, a socket.
const output: number[] = [];
const terminal: SerialBackend = { transmit: (byte) => output.push(byte) };
const com1 = new Uart16550(terminal, { clock, irq: pic.irqLine(4) });
let exitStatus: number | undefined;
const debugExit = new DebugExit((status) => {
  exitStatus = status;
});

// A minimal byte-wide port bus. With @vmmkit/iom it is one line per device:
// for (const range of device.portRanges()) ports.register(range);
const ranges = [...pic.portRanges(), ...pit.portRanges(), ...com1.portRanges()];
function outb(port: number, value: number): void {
  if (port === 0xf4) debugExit.writePort(0, value);
  const range = ranges.find((r) => port >= r.port && port < r.port + r.count);
  range?.device.writePort(port - range.port, value, 1);
}
function inb(port: number): number {
  const range = ranges.find((r) => port >= r.port && port < r.port + r.count);
  return range ? range.device.readPort(port - range.port, 1) : 0xff;
}

// The guest sets up the PICs (vectors 0x20-0x2F) and the PIT (mode 2, about 1 kHz)...
const setup: [port: number, value: number][] = [
  [0x20, 0x11], [0x21, 0x20], [0x21, 0x04], [0x21, 0x01], // master: ICW1-ICW4
  [0xa0, 0x11], [0xa1, 0x28], [0xa1, 0x02], [0xa1, 0x01], // slave
  [0x43, 0x34], [0x40, 1193 & 0xff], [0x40, 1193 >> 8], // counter 0: mode 2, count 1193
];
for (const [port, value] of setup) outb(port, value);

// ...and its serial driver: 115200 baud, 8 data bits, no parity, 1 stop bit.
outb(0x3fb, 0x80); // LCR: DLAB on, offsets 0 and 1 are the divisor latch
outb(0x3f8, 0x01); // DLL: divisor 1
outb(0x3f9, 0x00); // DLM
outb(0x3fb, 0x03); // LCR: 8N1, DLAB off
for (const character of "ok\n") outb(0x3f8, character.charCodeAt(0));
export const transmitted = String.fromCharCode(...output); // "ok\n"
export const lineStatus = inb(0x3fd); // 0x60: THR and transmitter empty

// A millisecond of machine time later the timer has fired, and the CPU takes IRQ 0.
clock.advanceTo(1_000_000);
export const pending = pic.hasPendingInterrupt(); // true
export const vector = pic.acknowledge(); // 0x20
outb(0x20, 0x20); // EOI
export const nextTimerEvent = clock.nextDeadline(); // 1_998_857 ns: OUT drops before the next tick

com1.receive(0x79); // the host types "y"
export const dataReady = inb(0x3fd) & 0x01; // 1
export const received = inb(0x3f8); // 0x79

outb(0xf4, 0x10); // the guest reports its result and ends the machine
export const status = exitStatus; // 0x21 = (0x10 << 1) | 1
