import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { COM_PORTS, Uart16550, UART_CLOCK_HZ, VirtualClock, type SerialBackend, type Uart16550Options } from "./index.js";
import { RecordingIrq } from "./test-utils.js";

// Register offsets from the base port.
const RBR_THR_DLL = 0;
const IER_DLM = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const LCR_DLAB = 0x80;
const LSR_DATA_READY = 0x01;
const LSR_OVERRUN = 0x02;
const LSR_BREAK = 0x10;
const LSR_THRE_TEMT = 0x60;
const LSR_FIFO_ERROR = 0x80;
const MCR_OUT2 = 0x08;
const MCR_LOOPBACK = 0x10;

const IIR_NONE = 0x01;
const IIR_MODEM = 0x00;
const IIR_THRE = 0x02;
const IIR_RDA = 0x04;
const IIR_LINE = 0x06;
const IIR_TIMEOUT = 0x0c;
const IIR_FIFOS = 0xc0;

function uart(options: Uart16550Options = {}) {
  const transmitted: number[] = [];
  const events: string[] = [];
  const backend: SerialBackend = {
    transmit: (byte) => transmitted.push(byte),
    receiveReady: () => events.push("ready"),
    setBreak: (active) => events.push(active ? "break on" : "break off"),
  };
  const irq = new RecordingIrq();
  const com = new Uart16550(backend, { irq, ...options });
  return { com, transmitted, events, irq };
}

describe("Uart16550", () => {
  describe("divisor latch", () => {
    it("starts at 12 (9600 baud), read through DLL/DLM while LCR.DLAB is set", () => {
      const { com } = uart();
      com.writePort(LCR, LCR_DLAB | 0x03);
      expect([com.readPort(RBR_THR_DLL), com.readPort(IER_DLM)]).toEqual([12, 0]);
    });

    it("takes DLL and DLM writes while DLAB is set, without transmitting or touching IER", () => {
      const { com, transmitted } = uart();
      com.writePort(IER_DLM, 0x05);
      com.writePort(LCR, LCR_DLAB | 0x03);
      com.writePort(RBR_THR_DLL, 0x80);
      com.writePort(IER_DLM, 0x01); // divisor 0x0180 = 300 baud
      expect([com.readPort(RBR_THR_DLL), com.readPort(IER_DLM)]).toEqual([0x80, 0x01]);
      expect(transmitted).toEqual([]);
      com.writePort(LCR, 0x03);
      expect(com.readPort(IER_DLM)).toBe(0x05);
    });

    it("does not consume received data while DLAB is set", () => {
      const { com } = uart();
      com.receive(0x41);
      com.writePort(LCR, LCR_DLAB);
      expect(com.readPort(RBR_THR_DLL)).toBe(12);
      com.writePort(LCR, 0x03);
      expect(com.readPort(RBR_THR_DLL)).toBe(0x41);
    });
  });

  describe("registers", () => {
    it("comes out of reset with the datasheet's values", () => {
      const { com } = uart();
      expect([IER_DLM, IIR_FCR, LCR, MCR, LSR].map((r) => com.readPort(r))).toEqual([0x00, IIR_NONE, 0x00, 0x00, LSR_THRE_TEMT]);
    });

    it("keeps every LCR bit, the four IER bits and the five MCR bits", () => {
      const { com } = uart();
      com.writePort(LCR, 0x7f);
      com.writePort(IER_DLM, 0xff);
      com.writePort(MCR, 0xef);
      expect([com.readPort(LCR), com.readPort(IER_DLM), com.readPort(MCR)]).toEqual([0x7f, 0x0f, 0x0f]);
    });

    it("stores any byte in the scratch register, whatever DLAB says", () => {
      const { com } = uart();
      com.writePort(SCR, 0xa5);
      com.writePort(LCR, LCR_DLAB);
      expect(com.readPort(SCR)).toBe(0xa5);
      com.writePort(SCR, 0x5a);
      com.writePort(LCR, 0);
      expect(com.readPort(SCR)).toBe(0x5a);
    });

    it("ignores writes to LSR and MSR", () => {
      const { com } = uart();
      com.receive(0x41);
      com.writePort(LSR, 0);
      com.writePort(MSR, 0);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY);
      expect(com.readPort(MSR)).toBe(0xb0);
    });

    it("decodes only the low three bits of the offset and ignores the access size", () => {
      const { com, transmitted } = uart();
      com.writePort(8 + SCR, 0x77);
      expect(com.readPort(16 + SCR)).toBe(0x77);
      const sized = com as { writePort(offset: number, value: number, size: number): void };
      sized.writePort(RBR_THR_DLL, 0x4241, 2);
      expect(transmitted).toEqual([0x41]);
    });

    it("describes its port range: eight byte-wide ports from the base", () => {
      const [com2] = COM_PORTS.filter((c) => c.name === "com2");
      const { com } = uart({ port: com2!.port, name: com2!.name });
      expect(com.portRanges()).toEqual([{ port: 0x2f8, count: 8, owner: "com2", device: com, maxAccessSize: 1 }]);
      expect(uart().com.portRanges()[0]).toMatchObject({ port: 0x3f8, owner: "com1" });
      expect(COM_PORTS.map((c) => [c.port, c.irq])).toEqual([
        [0x3f8, 4],
        [0x2f8, 3],
        [0x3e8, 4],
        [0x2e8, 3],
      ]);
    });
  });

  describe("transmit", () => {
    it("sends every THR byte to the backend, in order, and the transmitter is empty at once", () => {
      const { com, transmitted } = uart();
      for (const byte of [0x48, 0x69, 0x0a, 0x00, 0xff]) {
        com.writePort(RBR_THR_DLL, byte);
        expect(com.readPort(LSR) & LSR_THRE_TEMT).toBe(LSR_THRE_TEMT);
      }
      expect(transmitted).toEqual([0x48, 0x69, 0x0a, 0x00, 0xff]);
    });

    it("tells the backend when the guest starts and ends a break (LCR bit 6)", () => {
      const { com, events } = uart();
      com.writePort(LCR, 0x43);
      com.writePort(LCR, 0x43);
      com.writePort(LCR, 0x03);
      expect(events).toEqual(["break on", "break off"]);
    });
  });

  describe("receive without FIFOs (16450 mode)", () => {
    it("holds one byte; a second one before it is read overruns and replaces it", () => {
      const { com } = uart();
      expect(com.receiveSpace()).toBe(1);
      com.receive(0x31);
      expect(com.receiveSpace()).toBe(0);
      com.receive(0x32);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY | LSR_OVERRUN);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY); // OE clears on read
      expect(com.readPort(RBR_THR_DLL)).toBe(0x32);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT);
    });

    it("returns the last byte again when RBR is read with nothing waiting", () => {
      const { com } = uart();
      expect(com.readPort(RBR_THR_DLL)).toBe(0);
      com.receive(0x5a);
      com.readPort(RBR_THR_DLL);
      expect(com.readPort(RBR_THR_DLL)).toBe(0x5a);
    });

    it("tells the backend when there is room again", () => {
      const { com, events } = uart();
      com.receive(1);
      com.readPort(RBR_THR_DLL);
      expect(events).toEqual(["ready"]);
    });
  });

  describe("the receive FIFO", () => {
    it("holds 16 bytes in order; a 17th is lost with an overrun", () => {
      const { com, events } = uart();
      com.writePort(IIR_FCR, 0x01);
      expect(com.receiveSpace()).toBe(16);
      for (let i = 0; i < 17; i++) com.receive(0x40 + i);
      expect(com.receiveSpace()).toBe(0);
      expect(com.readPort(LSR) & LSR_OVERRUN).toBe(LSR_OVERRUN);
      const bytes: number[] = [];
      while (com.readPort(LSR) & LSR_DATA_READY) bytes.push(com.readPort(RBR_THR_DLL));
      expect(bytes).toEqual(Array.from({ length: 16 }, (_, i) => 0x40 + i));
      expect(events).toEqual(["ready"]);
    });

    it("is emptied by the receive-reset bit and by switching FIFOs on or off", () => {
      const { com } = uart();
      com.writePort(IIR_FCR, 0x01);
      com.receive(1);
      com.writePort(IIR_FCR, 0x03); // receive reset
      expect(com.readPort(LSR) & LSR_DATA_READY).toBe(0);
      com.receive(2);
      com.writePort(IIR_FCR, 0x00); // FIFOs off
      expect(com.readPort(LSR) & LSR_DATA_READY).toBe(0);
      com.receive(3);
      com.writePort(IIR_FCR, 0x01); // on again
      expect(com.readPort(LSR) & LSR_DATA_READY).toBe(0);
    });

    it("keeps its bytes on an FCR write without the reset bit", () => {
      const { com } = uart();
      com.writePort(IIR_FCR, 0x01);
      com.receive(1);
      com.writePort(IIR_FCR, 0xc5); // enable, transmit reset, trigger 14
      expect(com.readPort(RBR_THR_DLL)).toBe(1);
    });

    it("reports enabled FIFOs in IIR bits 6-7", () => {
      const { com } = uart();
      expect(com.readPort(IIR_FCR)).toBe(IIR_NONE);
      com.writePort(IIR_FCR, 0x01);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_NONE);
      com.writePort(IIR_FCR, 0xc6); // bit 0 clear: FIFOs off, other bits not taken
      expect(com.readPort(IIR_FCR)).toBe(IIR_NONE);
    });
  });

  describe("interrupts", () => {
    /** A UART with OUT2 set, as a PC driver leaves it so the IRQ reaches the PIC. */
    function wired(options: Uart16550Options = {}) {
      const u = uart(options);
      u.com.writePort(MCR, MCR_OUT2);
      return u;
    }

    it("signals received data (non-FIFO) until the byte is read", () => {
      const { com, irq } = wired();
      com.writePort(IER_DLM, 0x01);
      expect(irq.level).toBe(false);
      com.receive(0x61);
      expect(irq.level).toBe(true);
      expect(com.readPort(IIR_FCR)).toBe(IIR_RDA);
      com.readPort(RBR_THR_DLL);
      expect(irq.level).toBe(false);
      expect(com.readPort(IIR_FCR)).toBe(IIR_NONE);
    });

    it.each([
      [0x00, 1],
      [0x40, 4],
      [0x80, 8],
      [0xc0, 14],
    ])("with FCR %i signals received data once the FIFO holds its trigger level (%i)", (fcr, level) => {
      const { com, irq } = wired({ clock: new VirtualClock() }); // the clock stands still: no timeout
      com.writePort(IIR_FCR, fcr | 0x01);
      com.writePort(IER_DLM, 0x01);
      for (let i = 1; i < level; i++) com.receive(i);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_NONE); // one byte short
      com.receive(0xff);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_RDA);
      expect(irq.level).toBe(true);
      com.readPort(RBR_THR_DLL); // back below the trigger level
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_NONE);
    });

    it("signals a character timeout four character times after the last FIFO activity", () => {
      const clock = new VirtualClock();
      const { com, irq } = wired({ clock });
      com.writePort(LCR, LCR_DLAB | 0x03);
      com.writePort(RBR_THR_DLL, 1); // 115200 baud, 8N1: 10 bits per character
      com.writePort(LCR, 0x03);
      com.writePort(IIR_FCR, 0x81); // trigger level 8
      com.writePort(IER_DLM, 0x01);
      const fourCharacters = 4 * Math.ceil((10 * 16 * 1e9) / UART_CLOCK_HZ);

      com.receive(0x31);
      com.receive(0x32);
      const lastReceived = clock.now();
      clock.advanceTo(lastReceived + fourCharacters - 1);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_NONE);
      clock.advanceTo(lastReceived + fourCharacters);
      expect(irq.level).toBe(true);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_TIMEOUT);

      // Reading a byte clears the timeout and starts the wait again for the one left.
      expect(com.readPort(RBR_THR_DLL)).toBe(0x31);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_NONE);
      const read = clock.now();
      clock.advanceTo(read + fourCharacters);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_TIMEOUT);
      com.readPort(RBR_THR_DLL);
      clock.advanceTo(read + 10 * fourCharacters);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_NONE); // empty: no timeout
    });

    it("waits longer for the timeout at a slower rate and a longer character", () => {
      const clock = new VirtualClock();
      const { com } = wired({ clock });
      com.writePort(LCR, 0x0f); // 8 data bits, parity, 2 stop bits: 12 bits; divisor 12
      com.writePort(IIR_FCR, 0xc1);
      com.writePort(IER_DLM, 0x01);
      const fourCharacters = 4 * Math.ceil((12 * 16 * 12 * 1e9) / UART_CLOCK_HZ);
      com.receive(1);
      clock.advanceTo(fourCharacters - 1);
      expect(com.readPort(IIR_FCR) & 0x0f).toBe(IIR_NONE);
      clock.advanceTo(fourCharacters);
      expect(com.readPort(IIR_FCR) & 0x0f).toBe(IIR_TIMEOUT);
    });

    it("without a clock counts the timeout as elapsed at once", () => {
      const { com } = wired();
      com.writePort(IIR_FCR, 0xc1);
      com.writePort(IER_DLM, 0x01);
      com.receive(1);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_TIMEOUT);
    });

    it("raises THR empty when it is enabled, clears it on an IIR read, and again after each THR write", () => {
      const { com, irq } = wired();
      com.writePort(IER_DLM, 0x02);
      expect(irq.level).toBe(true);
      expect(com.readPort(IIR_FCR)).toBe(IIR_THRE);
      expect(irq.level).toBe(false);
      expect(com.readPort(IIR_FCR)).toBe(IIR_NONE);
      com.writePort(RBR_THR_DLL, 0x41);
      expect(irq.changes).toEqual([true, false, true]);
      expect(com.readPort(IIR_FCR)).toBe(IIR_THRE);
    });

    it("signals line status for an overrun or a break until LSR is read", () => {
      const { com, irq } = wired();
      com.writePort(IIR_FCR, 0x01);
      com.writePort(IER_DLM, 0x04);
      com.receiveBreak();
      expect(irq.level).toBe(true);
      expect(com.readPort(IIR_FCR)).toBe(IIR_FIFOS | IIR_LINE);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY | LSR_BREAK | LSR_FIFO_ERROR);
      expect(irq.level).toBe(false);
      expect(com.readPort(RBR_THR_DLL)).toBe(0x00); // the break's zero byte
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT);
    });

    it("shows a break in the FIFO when its byte reaches the top, and bit 7 while it waits", () => {
      const { com } = uart();
      com.writePort(IIR_FCR, 0x01);
      com.receive(0x41);
      com.receiveBreak();
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY | LSR_FIFO_ERROR);
      com.readPort(RBR_THR_DLL);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY | LSR_BREAK | LSR_FIFO_ERROR);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY);
    });

    it("signals modem status changes until MSR is read; RI counts only on its trailing edge", () => {
      const { com, irq } = wired();
      com.writePort(IER_DLM, 0x08);
      com.setModemInputs({ cts: false });
      expect(com.readPort(IIR_FCR)).toBe(IIR_MODEM);
      expect(com.readPort(MSR)).toBe(0xa0 | 0x01); // DSR, DCD; delta CTS
      expect(irq.level).toBe(false);
      com.setModemInputs({ ri: true });
      expect(com.readPort(IIR_FCR)).toBe(IIR_NONE);
      com.setModemInputs({ ri: false });
      expect(com.readPort(MSR)).toBe(0xa0 | 0x04); // trailing edge of RI
      com.setModemInputs({ dsr: false, dcd: false });
      expect(com.readPort(MSR)).toBe(0x02 | 0x08);
    });

    it("reports the highest-priority source: line status, data, THR empty, modem status", () => {
      const { com } = wired();
      com.writePort(IER_DLM, 0x0f);
      com.setModemInputs({ cts: false });
      com.receive(1);
      com.receive(2); // overrun
      expect(com.readPort(IIR_FCR)).toBe(IIR_LINE);
      com.readPort(LSR);
      expect(com.readPort(IIR_FCR)).toBe(IIR_RDA);
      com.readPort(RBR_THR_DLL);
      expect(com.readPort(IIR_FCR)).toBe(IIR_THRE);
      expect(com.readPort(IIR_FCR)).toBe(IIR_MODEM);
      com.readPort(MSR);
      expect(com.readPort(IIR_FCR)).toBe(IIR_NONE);
    });

    it("keeps the IRQ line low while OUT2 is clear, as the PC's IRQ buffer is disabled", () => {
      const { com, irq } = uart();
      com.writePort(IER_DLM, 0x01);
      com.receive(1);
      expect(com.readPort(IIR_FCR)).toBe(IIR_RDA);
      expect(irq.level).toBe(false);
      com.writePort(MCR, MCR_OUT2);
      expect(irq.level).toBe(true);
    });
  });

  describe("loopback (MCR bit 4)", () => {
    it("returns THR bytes on RBR instead of transmitting them", () => {
      const { com, transmitted } = uart();
      com.writePort(MCR, MCR_LOOPBACK);
      com.writePort(RBR_THR_DLL, 0xae);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY);
      expect(com.readPort(RBR_THR_DLL)).toBe(0xae);
      expect(transmitted).toEqual([]);
      com.writePort(MCR, 0);
      com.writePort(RBR_THR_DLL, 0x41);
      expect(transmitted).toEqual([0x41]);
    });

    it("disconnects the receiver from the line: host bytes are dropped and there is no room", () => {
      const { com, events } = uart();
      com.writePort(MCR, MCR_LOOPBACK);
      expect(com.receiveSpace()).toBe(0);
      com.receive(0x55);
      com.receiveBreak();
      expect(com.readPort(LSR) & LSR_DATA_READY).toBe(0);
      com.writePort(MCR, 0);
      expect(events).toEqual(["ready"]);
    });

    it.each([
      ["nothing", 0x00, 0x00],
      ["DTR as DSR", 0x01, 0x20],
      ["RTS as CTS", 0x02, 0x10],
      ["OUT1 as RI", 0x04, 0x40],
      ["OUT2 as DCD", 0x08, 0x80],
      ["all four", 0x0f, 0xf0],
    ])("shows %s in MSR, with deltas against the line's CTS, DSR and DCD", (_case, outputs, msr) => {
      const { com } = uart();
      com.writePort(MCR, MCR_LOOPBACK | outputs);
      const before = 0xb0; // CTS, DSR, DCD from the host
      const changed = before ^ msr;
      const deltas = (changed & 0x10 ? 0x01 : 0) | (changed & 0x20 ? 0x02 : 0) | (changed & 0x80 ? 0x08 : 0);
      expect(com.readPort(MSR)).toBe(msr | deltas);
      expect(com.readPort(MSR)).toBe(msr);
    });

    it("raises interrupts internally but not on the IRQ line", () => {
      const { com, irq } = uart();
      com.writePort(MCR, MCR_LOOPBACK | MCR_OUT2);
      com.writePort(IER_DLM, 0x01);
      com.writePort(RBR_THR_DLL, 0x11);
      expect(com.readPort(IIR_FCR)).toBe(IIR_RDA);
      expect(irq.level).toBe(false);
    });

    it("does not pass a break to the backend", () => {
      const { com, events } = uart();
      com.writePort(MCR, MCR_LOOPBACK);
      com.writePort(LCR, 0x40);
      expect(events).toEqual([]);
    });
  });

  describe("reset", () => {
    it("restores the reset values, empties the receiver and keeps divisor and scratch", () => {
      const { com, irq } = uart();
      com.writePort(MCR, MCR_OUT2);
      com.writePort(LCR, LCR_DLAB);
      com.writePort(RBR_THR_DLL, 3);
      com.writePort(LCR, 0x1b);
      com.writePort(SCR, 0x99);
      com.writePort(IIR_FCR, 0x01);
      com.writePort(IER_DLM, 0x0f);
      com.receive(1);
      expect(irq.level).toBe(true);
      com.reset();
      expect(irq.level).toBe(false);
      expect([IER_DLM, IIR_FCR, LCR, MCR, LSR, SCR].map((r) => com.readPort(r))).toEqual([0, IIR_NONE, 0, 0, LSR_THRE_TEMT, 0x99]);
      com.writePort(LCR, LCR_DLAB);
      expect(com.readPort(RBR_THR_DLL)).toBe(3);
    });
  });

  describe("bad input from the guest", () => {
    it("never throws, reads only bytes and keeps the IRQ line in step with IIR and OUT2", () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              fc.record({ offset: fc.nat(7), value: fc.nat(0xff), read: fc.boolean() }),
              fc.record({ receive: fc.nat(0xff) }),
              fc.record({ wait: fc.nat(5_000_000) }),
            ),
            { maxLength: 80 },
          ),
          (operations) => {
            const clock = new VirtualClock();
            const { com, irq } = uart({ clock });
            for (const op of operations) {
              if ("offset" in op) {
                if (op.read) {
                  const value = com.readPort(op.offset);
                  expect(Number.isInteger(value) && value >= 0 && value <= 0xff).toBe(true);
                } else {
                  com.writePort(op.offset, op.value);
                }
              } else if ("receive" in op) {
                com.receive(op.receive);
              } else {
                clock.advanceBy(op.wait);
              }
              // The line is high exactly while IIR reports a source and OUT2 routes it (no loopback).
              const level = irq.level;
              const mcr = com.readPort(MCR);
              const wired = (mcr & MCR_OUT2) !== 0 && (mcr & MCR_LOOPBACK) === 0;
              const pending = (com.readPort(IIR_FCR) & 0x0f) !== IIR_NONE;
              expect(level).toBe(wired && pending);
            }
          },
        ),
      );
    });
  });
});
