import { describe, expect, it } from "vitest";
import { Uart16550, type SerialBackend } from "./index.js";

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
const LSR_THRE_TEMT = 0x60;
const MCR_LOOPBACK = 0x10;

/** How @vmmkit/iom's PortSpace calls a device: with the access size as the last argument. */
interface SizedPortDevice {
  readPort(offset: number, size: number): number;
  writePort(offset: number, value: number, size: number): void;
}

function uart() {
  const transmitted: number[] = [];
  const backend: SerialBackend = { transmit: (byte) => transmitted.push(byte) };
  return { uart: new Uart16550(backend), transmitted };
}

describe("Uart16550", () => {
  describe("divisor latch", () => {
    it("starts at 12 (9600 baud), read through DLL/DLM while LCR.DLAB is set", () => {
      const { uart: com } = uart();
      com.writePort(LCR, LCR_DLAB | 0x03);
      expect([com.readPort(RBR_THR_DLL), com.readPort(IER_DLM)]).toEqual([12, 0]);
    });

    it("takes DLL and DLM writes while DLAB is set, without transmitting or touching IER", () => {
      const { uart: com, transmitted } = uart();
      com.writePort(IER_DLM, 0x05);
      com.writePort(LCR, LCR_DLAB | 0x03);
      com.writePort(RBR_THR_DLL, 0x01); // 115200 baud
      com.writePort(IER_DLM, 0x00);
      expect([com.readPort(RBR_THR_DLL), com.readPort(IER_DLM)]).toEqual([0x01, 0x00]);
      com.writePort(RBR_THR_DLL, 0x80);
      com.writePort(IER_DLM, 0x01); // divisor 0x0180 = 300 baud
      expect([com.readPort(RBR_THR_DLL), com.readPort(IER_DLM)]).toEqual([0x80, 0x01]);
      expect(transmitted).toEqual([]);
      expect(com.readPort(LCR)).toBe(LCR_DLAB | 0x03);

      com.writePort(LCR, 0x03);
      expect(com.readPort(IER_DLM)).toBe(0x05);
      expect(com.readPort(LCR)).toBe(0x03);
    });

    it("does not consume received data while DLAB is set", () => {
      const { uart: com } = uart();
      com.receive(0x41);
      com.writePort(LCR, LCR_DLAB);
      expect(com.readPort(RBR_THR_DLL)).toBe(12);
      com.writePort(LCR, 0x03);
      expect(com.readPort(LSR) & LSR_DATA_READY).toBe(LSR_DATA_READY);
      expect(com.readPort(RBR_THR_DLL)).toBe(0x41);
    });
  });

  describe("transmit and receive", () => {
    it("sends every THR byte to the backend, in order, as 8 bits", () => {
      const { uart: com, transmitted } = uart();
      for (const byte of [0x48, 0x69, 0x0a, 0x00, 0xff]) com.writePort(RBR_THR_DLL, byte);
      com.writePort(RBR_THR_DLL, 0x141);
      expect(transmitted).toEqual([0x48, 0x69, 0x0a, 0x00, 0xff, 0x41]);
    });

    it("always reports THR and transmitter empty, since transmission is immediate", () => {
      const { uart: com } = uart();
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT);
      com.writePort(RBR_THR_DLL, 0x41);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT);
    });

    it("sets data ready while received bytes wait, and hands them out in order", () => {
      const { uart: com } = uart();
      com.receive(0x31);
      com.receive(0x232); // masked to a byte
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY);
      expect(com.readPort(RBR_THR_DLL)).toBe(0x31);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY);
      expect(com.readPort(RBR_THR_DLL)).toBe(0x32);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT);
    });
  });

  describe("registers", () => {
    it("keeps only the four defined IER bits", () => {
      const { uart: com } = uart();
      com.writePort(IER_DLM, 0xff);
      expect(com.readPort(IER_DLM)).toBe(0x0f);
    });

    it("reports no pending interrupt in IIR, with bits 6-7 set while FIFOs are enabled", () => {
      const { uart: com } = uart();
      expect(com.readPort(IIR_FCR)).toBe(0x01);
      com.writePort(IIR_FCR, 0x01);
      expect(com.readPort(IIR_FCR)).toBe(0xc1);
      com.writePort(IIR_FCR, 0x00);
      expect(com.readPort(IIR_FCR)).toBe(0x01);
    });

    it("clears received data on an FCR receive reset", () => {
      const { uart: com, transmitted } = uart();
      com.receive(1);
      com.receive(2);
      com.writePort(IIR_FCR, 0x07); // enable FIFOs, reset receive and transmit FIFOs
      expect(com.readPort(LSR) & LSR_DATA_READY).toBe(0);
      com.receive(3);
      expect(com.readPort(RBR_THR_DLL)).toBe(3);
      expect(transmitted).toEqual([]);
    });

    it("keeps received data on an FCR write without the receive-reset bit", () => {
      const { uart: com } = uart();
      com.receive(1);
      com.writePort(IIR_FCR, 0xc5); // enable, transmit reset, trigger level 14
      expect(com.readPort(RBR_THR_DLL)).toBe(1);
    });

    it("keeps only the five defined MCR bits", () => {
      const { uart: com } = uart();
      com.writePort(MCR, 0xff);
      expect(com.readPort(MCR)).toBe(0x1f);
    });

    it("stores any byte in the scratch register, whatever DLAB says", () => {
      const { uart: com } = uart();
      com.writePort(SCR, 0xa5);
      expect(com.readPort(SCR)).toBe(0xa5);
      com.writePort(LCR, LCR_DLAB);
      expect(com.readPort(SCR)).toBe(0xa5);
      com.writePort(SCR, 0x5a);
      com.writePort(LCR, 0);
      expect(com.readPort(SCR)).toBe(0x5a);
    });

    it("ignores writes to the read-only LSR and MSR", () => {
      const { uart: com } = uart();
      com.receive(0x41);
      com.writePort(LSR, 0);
      com.writePort(MSR, 0);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY);
      expect(com.readPort(MSR)).toBe(0xb0);
    });

    it("reports CTS, DSR and DCD in MSR outside loopback", () => {
      const { uart: com } = uart();
      com.writePort(MCR, 0x0f);
      expect(com.readPort(MSR)).toBe(0xb0);
    });

    it("answers reads of every register, with and without DLAB, without throwing or transmitting", () => {
      const { uart: com, transmitted } = uart();
      for (const lcr of [0x03, LCR_DLAB | 0x03]) {
        com.writePort(LCR, lcr);
        for (let offset = 0; offset < 8; offset++) {
          const value = com.readPort(offset);
          expect(Number.isInteger(value) && value >= 0 && value <= 0xff, `offset ${offset} read ${value}`).toBe(true);
        }
      }
      expect(transmitted).toEqual([]);
    });

    it("serves a wider access from the one register at its offset, as a port dispatcher would call it", () => {
      const { uart: com, transmitted } = uart();
      const device: SizedPortDevice = com;
      device.writePort(RBR_THR_DLL, 0x4241, 2);
      device.writePort(SCR, 0x12345678, 4);
      expect(transmitted).toEqual([0x41]);
      expect(device.readPort(SCR, 4)).toBe(0x78);
      expect(device.readPort(LSR, 2)).toBe(LSR_THRE_TEMT);
    });

    it("decodes only the low three bits of the offset", () => {
      const { uart: com } = uart();
      com.writePort(8 + SCR, 0x77);
      expect(com.readPort(SCR)).toBe(0x77);
      expect(com.readPort(16 + SCR)).toBe(0x77);
    });
  });

  describe("loopback (MCR bit 4)", () => {
    it("returns THR bytes on RBR instead of transmitting them", () => {
      const { uart: com, transmitted } = uart();
      com.writePort(MCR, MCR_LOOPBACK);
      com.writePort(RBR_THR_DLL, 0xae);
      com.writePort(RBR_THR_DLL, 0x155);
      expect(com.readPort(LSR)).toBe(LSR_THRE_TEMT | LSR_DATA_READY);
      expect(com.readPort(RBR_THR_DLL)).toBe(0xae);
      expect(com.readPort(RBR_THR_DLL)).toBe(0x55);
      expect(transmitted).toEqual([]);

      com.writePort(MCR, 0);
      com.writePort(RBR_THR_DLL, 0x41);
      expect(transmitted).toEqual([0x41]);
      expect(com.readPort(LSR) & LSR_DATA_READY).toBe(0);
    });

    it.each([
      ["nothing", 0x00, 0x00],
      ["DTR as DSR", 0x01, 0x20],
      ["RTS as CTS", 0x02, 0x10],
      ["OUT1 as RI", 0x04, 0x40],
      ["OUT2 as DCD", 0x08, 0x80],
      ["all four", 0x0f, 0xf0],
    ])("shows %s in MSR", (_case, outputs, msr) => {
      const { uart: com } = uart();
      com.writePort(MCR, MCR_LOOPBACK | outputs);
      expect(com.readPort(MSR)).toBe(msr);
    });
  });
});
