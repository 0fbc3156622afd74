import { DebugExit, Uart16550, type SerialBackend } from "@vmmkit/devices";

// Where the guest's serial output goes: a terminal, a file, a socket.
const output: number[] = [];
const terminal: SerialBackend = { transmit: (byte) => output.push(byte) };

const com1 = new Uart16550(terminal);
let exitStatus: number | undefined;
const debugExit = new DebugExit((status) => {
  exitStatus = status;
});

// A minimal port dispatcher (@vmmkit/iom's PortSpace does this for a whole machine).
function outb(port: number, value: number): void {
  if (port >= 0x3f8 && port <= 0x3ff) com1.writePort(port - 0x3f8, value);
  else if (port === 0xf4) debugExit.writePort(0, value);
}
function inb(port: number): number {
  return port >= 0x3f8 && port <= 0x3ff ? com1.readPort(port - 0x3f8) : 0xff;
}

// What a guest's serial driver does: 115200 baud, 8 data bits, no parity, 1 stop bit.
outb(0x3fb, 0x80); // LCR: DLAB on, offsets 0 and 1 are the divisor latch
outb(0x3f8, 0x01); // DLL: divisor 1
outb(0x3f9, 0x00); // DLM
outb(0x3fb, 0x03); // LCR: 8N1, DLAB off
for (const character of "ok\n") outb(0x3f8, character.charCodeAt(0));
export const transmitted = String.fromCharCode(...output); // "ok\n"
export const lineStatus = inb(0x3fd); // 0x60: THR and transmitter empty

com1.receive(0x79); // the host types "y"
export const dataReady = inb(0x3fd) & 0x01; // 1
export const received = inb(0x3f8); // 0x79

outb(0xf4, 0x10); // the guest reports its result and ends the machine
export const status = exitStatus; // 0x21 = (0x10 << 1) | 1
