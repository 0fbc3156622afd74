/**
 * The devices wired as on a PC, on one virtual clock, with a stand-in for the CPU that
 * takes interrupts from the PIC pair and runs small handlers. Checks the devices against
 * each other: the PIT's rate measured with the RTC, the RTC's rate measured with the PIT,
 * UART interrupts through the PIC, and priorities across the cascade.
 */
import { describe, expect, it } from "vitest";
import { CmosRtc, Pic8259Pair, Pit8254, PIT_FREQUENCY, Uart16550, VirtualClock } from "../src/index.js";
import { TestBus } from "../src/test-utils.js";

const SECOND = 1_000_000_000;

function pc() {
  const clock = new VirtualClock();
  const pic = new Pic8259Pair();
  const pit = new Pit8254({ clock, irq: pic.irqLine(0) });
  const rtc = new CmosRtc({ clock, irq: pic.irqLine(8) });
  const uart = new Uart16550({ transmit: () => {} }, { clock, irq: pic.irqLine(4) });
  const bus = new TestBus(pic.portRanges(), pit.portRanges(), rtc.portRanges(), uart.portRanges());
  // What a BIOS does: vectors 0x08-0x0F and 0x70-0x77, slave on IR2.
  for (const [port, value] of [
    [0x20, 0x11],
    [0x21, 0x08],
    [0x21, 0x04],
    [0x21, 0x01],
    [0xa0, 0x11],
    [0xa1, 0x70],
    [0xa1, 0x02],
    [0xa1, 0x01],
  ] as const) {
    bus.outb(port, value);
  }
  const handlers = new Map<number, () => void>();
  const taken: number[] = [];
  /** Runs the machine to `until`, taking each interrupt as soon as the PIC raises it. */
  const run = (until: number) => {
    for (;;) {
      while (pic.hasPendingInterrupt()) {
        const vector = pic.acknowledge();
        taken.push(vector);
        handlers.get(vector)?.();
      }
      const next = clock.nextDeadline();
      if (next > until) break;
      clock.advanceTo(next);
    }
    clock.advanceTo(until);
  };
  const cmos = (register: number) => (bus.outb(0x70, register), bus.inb(0x71));
  return { clock, pic, pit, rtc, uart, bus, handlers, taken, run, cmos };
}

describe("a PC's devices together", () => {
  it("PIT channel 0 at ~1 kHz counts 1000-1001 ticks per RTC second", () => {
    const m = pc();
    let ticks = 0;
    const ticksAtSecond: number[] = [];
    m.handlers.set(0x08, () => {
      ticks++;
      m.bus.outb(0x20, 0x20);
    });
    m.handlers.set(0x70, () => {
      if (m.cmos(0x0c) & 0x10) ticksAtSecond.push(ticks);
      m.bus.outb(0xa0, 0x20);
      m.bus.outb(0x20, 0x20);
    });
    m.bus.outb(0x70, 0x0a);
    m.bus.outb(0x71, 0x20); // no periodic interrupt
    m.bus.outb(0x70, 0x0b);
    m.bus.outb(0x71, 0x12); // update-ended interrupt, 24-hour BCD
    m.bus.outb(0x43, 0x34); // counter 0, lo/hi, mode 2
    m.bus.outb(0x40, 1193 & 0xff);
    m.bus.outb(0x40, 1193 >> 8);
    m.run(5 * SECOND);
    expect(ticksAtSecond.length).toBe(5);
    const perSecond = ticksAtSecond.slice(1).map((t, i) => t - ticksAtSecond[i]!);
    for (const n of perSecond) expect([1000, 1001]).toContain(n);
    expect(ticks).toBe(Math.floor((5 * PIT_FREQUENCY) / 1193));
  });

  it("the RTC's 1024 Hz periodic interrupt counts 1023-1025 per second measured with the PIT at 100 Hz", () => {
    const m = pc();
    let pitTicks = 0;
    let rtcTicks = 0;
    m.handlers.set(0x08, () => {
      pitTicks++;
      m.bus.outb(0x20, 0x20);
    });
    m.handlers.set(0x70, () => {
      if (m.cmos(0x0c) & 0x40 && pitTicks >= 100 && pitTicks < 200) rtcTicks++;
      m.bus.outb(0xa0, 0x20);
      m.bus.outb(0x20, 0x20);
    });
    m.bus.outb(0x43, 0x34);
    m.bus.outb(0x40, 11932 & 0xff);
    m.bus.outb(0x40, 11932 >> 8);
    m.bus.outb(0x70, 0x0b);
    m.bus.outb(0x71, 0x42); // PIE, rate 6 (1024 Hz) is the default
    m.run(3 * SECOND);
    expect(rtcTicks).toBeGreaterThanOrEqual(1023);
    expect(rtcTicks).toBeLessThanOrEqual(1025);
  });

  it("delivers UART receive interrupts on IRQ 4 (vector 0x0C) and gets every byte to the handler", () => {
    const m = pc();
    const bytes: number[] = [];
    m.handlers.set(0x0c, () => {
      while (m.bus.inb(0x3fd) & 0x01) bytes.push(m.bus.inb(0x3f8));
      m.bus.outb(0x20, 0x20);
    });
    m.bus.outb(0x3fa, 0xc7); // FIFOs on, trigger 14
    m.bus.outb(0x3fc, 0x08); // OUT2: the IRQ reaches the PIC
    m.bus.outb(0x3f9, 0x01); // received-data interrupts
    for (const c of "hello") m.uart.receive(c.charCodeAt(0));
    m.run(SECOND / 100); // below the trigger level: the character timeout delivers them
    expect(String.fromCharCode(...bytes)).toBe("hello");
    expect(m.taken).toEqual([0x0c]);
  });

  it("delivers IRQ 0 before IRQ 8 when both are pending, and nests nothing below the one in service", () => {
    const m = pc();
    m.bus.outb(0x43, 0x34);
    m.bus.outb(0x40, 100);
    m.bus.outb(0x40, 0);
    m.bus.outb(0x70, 0x0b);
    m.bus.outb(0x71, 0x42);
    // No handlers: nothing is acknowledged at the devices, no EOI is sent.
    m.clock.advanceTo(SECOND / 512);
    expect(m.pic.acknowledge()).toBe(0x08);
    expect(m.pic.hasPendingInterrupt()).toBe(false); // IRQ 8 waits behind IR0 in service
    m.bus.outb(0x20, 0x20);
    expect(m.pic.acknowledge()).toBe(0x70);
  });
});
