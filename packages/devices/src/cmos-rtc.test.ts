import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CmosRtc, isDevicesError, NVRAM_SIZE, VirtualClock, type CmosRtcOptions } from "./index.js";
import { RecordingIrq, TestBus } from "./test-utils.js";

const SECONDS = 0x00;
const SECONDS_ALARM = 0x01;
const MINUTES = 0x02;
const MINUTES_ALARM = 0x03;
const HOURS = 0x04;
const HOURS_ALARM = 0x05;
const DAY_OF_WEEK = 0x06;
const DAY_OF_MONTH = 0x07;
const MONTH = 0x08;
const YEAR = 0x09;
const A = 0x0a;
const B = 0x0b;
const C = 0x0c;
const D = 0x0d;
const CENTURY = 0x32;

const SECOND = 1_000_000_000;
/** Oracle: the first ns at which `counts` cycles of the 32.768 kHz time base have passed. */
const nsForCounts = (counts: number) => Number((BigInt(counts) * 1_000_000_000n + 32767n) / 32768n);

function rtc(options: Partial<CmosRtcOptions> = {}) {
  const clock = new VirtualClock();
  const irq = new RecordingIrq();
  const device = new CmosRtc({ clock, irq, ...options });
  const bus = new TestBus(device.portRanges());
  const read = (register: number) => (bus.outb(0x70, register), bus.inb(0x71));
  const write = (register: number, value: number) => {
    bus.outb(0x70, register);
    bus.outb(0x71, value);
  };
  const time = () => [HOURS, MINUTES, SECONDS].map(read);
  const date = () => [DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR].map(read);
  return { clock, irq, device, bus, read, write, time, date };
}

describe("CmosRtc", () => {
  describe("time and date", () => {
    it("starts at 2000-01-01 00:00:00, a Saturday, in BCD and 24-hour mode", () => {
      const { read, time, date } = rtc();
      expect(time()).toEqual([0x00, 0x00, 0x00]);
      expect(date()).toEqual([7, 0x01, 0x01, 0x00]);
      expect(read(CENTURY)).toBe(0x20);
      expect(read(B)).toBe(0x02);
      expect(read(A)).toBe(0x26);
    });

    it("shows the start time it is given, and counts from it with the machine's clock", () => {
      // Thursday 2024-02-29 23:59:58 UTC.
      const { clock, time, date } = rtc({ startTime: Date.UTC(2024, 1, 29, 23, 59, 58) });
      expect(time()).toEqual([0x23, 0x59, 0x58]);
      expect(date()).toEqual([5, 0x29, 0x02, 0x24]);
      clock.advanceTo(2 * SECOND - 1);
      expect(time()).toEqual([0x23, 0x59, 0x59]);
      clock.advanceTo(2 * SECOND);
      expect(time()).toEqual([0x00, 0x00, 0x00]);
      expect(date()).toEqual([6, 0x01, 0x03, 0x24]); // Friday 1 March
    });

    it("aligns its seconds with the start time's fraction of a second", () => {
      const { clock, read } = rtc({ startTime: Date.UTC(2021, 5, 1, 12, 0, 0, 750) });
      clock.advanceTo(SECOND / 4 - 1000);
      expect(read(SECONDS)).toBe(0x00);
      clock.advanceTo(SECOND / 4 + 1000);
      expect(read(SECONDS)).toBe(0x01);
    });

    it("counts months of 30, 31 and 28/29 days and leap years every fourth year, from year 00", () => {
      const { clock, write, date } = rtc();
      /** Sets 23:59:59 on the given BCD date (SET held meanwhile), then lets one second pass. */
      const lastSecondOf = (day: number, month: number, year: number) => {
        write(B, 0x82);
        write(HOURS, 0x23);
        write(MINUTES, 0x59);
        write(SECONDS, 0x59);
        write(DAY_OF_MONTH, day);
        write(MONTH, month);
        write(YEAR, year);
        write(DAY_OF_WEEK, 1);
        write(B, 0x02);
        clock.advanceBy(SECOND);
        return date();
      };
      expect(lastSecondOf(0x28, 0x02, 0x99)).toEqual([2, 0x01, 0x03, 0x99]); // 99 is not a leap year
      expect(lastSecondOf(0x31, 0x12, 0x99)).toEqual([2, 0x01, 0x01, 0x00]); // 99 rolls over to 00
      expect(lastSecondOf(0x28, 0x02, 0x00)).toEqual([2, 0x29, 0x02, 0x00]); // 00 is a leap year
      expect(lastSecondOf(0x29, 0x02, 0x04)).toEqual([2, 0x01, 0x03, 0x04]);
      expect(lastSecondOf(0x30, 0x04, 0x00)).toEqual([2, 0x01, 0x05, 0x00]); // April has 30 days
      expect(lastSecondOf(0x30, 0x05, 0x00)).toEqual([2, 0x31, 0x05, 0x00]); // May has 31
      expect(lastSecondOf(0x31, 0x07, 0x23)).toEqual([2, 0x01, 0x08, 0x23]);
    });

    it("wraps the day of week from 7 to 1 and keeps a day of week that disagrees with the date", () => {
      const { clock, write, read } = rtc(); // Saturday = 7
      clock.advanceTo(86_400 * SECOND);
      expect(read(DAY_OF_WEEK)).toBe(1);
      write(DAY_OF_WEEK, 4); // the chip does not derive it from the date
      clock.advanceTo(2 * 86_400 * SECOND);
      expect(read(DAY_OF_WEEK)).toBe(5);
    });

    it("counts in binary when register B's DM bit is set", () => {
      const { clock, write, time, date } = rtc();
      write(B, 0x86);
      write(HOURS, 23);
      write(MINUTES, 59);
      write(SECONDS, 59);
      write(DAY_OF_MONTH, 31);
      write(MONTH, 12);
      write(YEAR, 19);
      write(B, 0x06);
      clock.advanceTo(SECOND);
      expect(time()).toEqual([0, 0, 0]);
      expect(date().slice(1)).toEqual([1, 1, 20]);
    });

    it("counts 12-hour time with the PM flag in bit 7, BCD and binary", () => {
      const bcd = rtc();
      bcd.write(B, 0x80); // SET, BCD, 12-hour
      bcd.write(HOURS, 0x80 | 0x11); // 11 PM
      bcd.write(MINUTES, 0x59);
      bcd.write(SECONDS, 0x59);
      bcd.write(B, 0x00);
      bcd.clock.advanceTo(SECOND);
      expect(bcd.time()).toEqual([0x12, 0x00, 0x00]); // 12 AM, midnight
      bcd.write(B, 0x80);
      bcd.write(HOURS, 0x11); // 11 AM
      bcd.write(MINUTES, 0x59);
      bcd.write(SECONDS, 0x59);
      bcd.write(B, 0x00);
      bcd.clock.advanceTo(2 * SECOND);
      expect(bcd.time()).toEqual([0x80 | 0x12, 0x00, 0x00]); // 12 PM, noon

      const binary = rtc();
      binary.write(B, 0x84);
      binary.write(HOURS, 0x80 | 12); // 12 PM
      binary.write(MINUTES, 59);
      binary.write(SECONDS, 59);
      binary.write(B, 0x04);
      binary.clock.advanceTo(SECOND);
      expect(binary.time()).toEqual([0x80 | 1, 0, 0]); // 1 PM
    });

    it("keeps the bytes written when the mode bits change (the guest must rewrite the time)", () => {
      const { write, time } = rtc({ startTime: Date.UTC(2020, 0, 1, 13, 45, 30) });
      write(B, 0x06); // binary: the BCD bytes stay as they are
      expect(time()).toEqual([0x13, 0x45, 0x30]);
    });

    it("holds the time while SET is on and resumes from what was written", () => {
      const { clock, write, read, time } = rtc();
      clock.advanceTo(5 * SECOND);
      write(B, 0x82);
      clock.advanceTo(60 * SECOND);
      expect(read(SECONDS)).toBe(0x05);
      write(SECONDS, 0x30);
      write(B, 0x02);
      clock.advanceTo(60 * SECOND + SECOND - 1);
      expect(read(SECONDS)).toBe(0x30);
      clock.advanceTo(61 * SECOND);
      expect(time()).toEqual([0x00, 0x00, 0x31]);
    });

    it("normalises an out-of-range value at the next update instead of failing", () => {
      const { clock, write, read, time } = rtc();
      write(B, 0x82);
      write(MINUTES, 0x75); // 75 minutes
      expect(read(MINUTES)).toBe(0x75); // kept as written
      write(B, 0x02);
      clock.advanceTo(SECOND);
      expect(time()).toEqual([0x01, 0x15, 0x01]);
    });
  });

  describe("register A: divider, rate and update-in-progress", () => {
    it("sets UIP in the last 244 µs before each update", () => {
      const { clock, read } = rtc();
      const uipStart = nsForCounts(32768 - 8);
      clock.advanceTo(uipStart - 1);
      expect(read(A) & 0x80).toBe(0);
      clock.advanceTo(uipStart);
      expect(read(A) & 0x80).toBe(0x80);
      expect(read(SECONDS)).toBe(0x00);
      clock.advanceTo(SECOND);
      expect(read(A) & 0x80).toBe(0);
      expect(read(SECONDS)).toBe(0x01);
    });

    it("never reports UIP while SET holds updates", () => {
      const { clock, read, write } = rtc();
      write(B, 0x82);
      clock.advanceTo(nsForCounts(32768 - 4));
      expect(read(A) & 0x80).toBe(0);
    });

    it("ignores writes to UIP and reads back the other bits", () => {
      const { read, write } = rtc();
      write(A, 0xa3);
      expect(read(A) & 0x7f).toBe(0x23);
    });

    it("keeps time with divider settings 0 and 1 as with 2, and stops it with 3-5", () => {
      const { clock, read, write } = rtc();
      write(A, 0x06); // DV = 000
      clock.advanceTo(SECOND);
      expect(read(SECONDS)).toBe(0x01);
      write(A, 0x16); // DV = 001
      clock.advanceTo(2 * SECOND);
      expect(read(SECONDS)).toBe(0x02);
      expect(read(C) & 0x50).toBe(0x50); // updates and periodic flags until now
      write(A, 0x36); // DV = 011: a test mode, the time base stops
      clock.advanceTo(5 * SECOND);
      expect(read(SECONDS)).toBe(0x02);
      expect(read(C)).toBe(0x00); // no update, no periodic flag while stopped
    });

    it("stops time while the divider is held in reset, and updates half a second after release", () => {
      const { clock, read, write } = rtc();
      write(A, 0x66); // DV = 110: divider reset
      clock.advanceTo(10 * SECOND);
      expect(read(SECONDS)).toBe(0x00);
      write(A, 0x26);
      clock.advanceTo(10 * SECOND + SECOND / 2 - 1);
      expect(read(SECONDS)).toBe(0x00);
      clock.advanceTo(10 * SECOND + SECOND / 2);
      expect(read(SECONDS)).toBe(0x01);
    });
  });

  describe("interrupts on IRQ 8 and register C", () => {
    /** Runs the clock to `until`, reading C whenever IRQ 8 is raised, as a handler would. */
    function serviceInterrupts(r: ReturnType<typeof rtc>, until: number): number[] {
      const flags: number[] = [];
      for (;;) {
        const next = r.clock.nextDeadline();
        if (next > until) break;
        r.clock.advanceTo(next);
        if (r.irq.level) flags.push(r.read(C));
      }
      r.clock.advanceTo(until);
      return flags;
    }

    it.each([
      [0x06, 1024],
      [0x0f, 2],
      [0x03, 8192],
      [0x01, 256],
      [0x02, 128],
    ])("with rate select %i interrupts %i times a second when PIE is set", (rs, perSecond) => {
      const r = rtc();
      r.write(A, 0x20 | rs);
      r.write(B, 0x42);
      const flags = serviceInterrupts(r, SECOND);
      expect(flags.length).toBe(perSecond);
      expect(flags.every((f) => (f & 0xc0) === 0xc0)).toBe(true); // IRQF | PF (and UF at the second)
    });

    it("sets PF without PIE, for polling, and never raises IRQ 8 for it", () => {
      const { clock, irq, read } = rtc();
      clock.advanceTo(nsForCounts(31));
      expect(read(C)).toBe(0x00);
      clock.advanceTo(nsForCounts(32));
      expect(read(C)).toBe(0x40); // PF, no IRQF
      expect(read(C)).toBe(0x00); // cleared by the read
      expect(irq.changes).toEqual([]);
      expect(clock.nextDeadline()).toBe(Number.POSITIVE_INFINITY); // nothing to time
    });

    it("stops periodic interrupts for rate select 0", () => {
      const r = rtc();
      r.write(A, 0x20);
      r.write(B, 0x42);
      expect(serviceInterrupts(r, SECOND)).toEqual([]);
      expect(r.read(C) & 0x40).toBe(0);
    });

    it("holds IRQ 8 high until register C is read", () => {
      const { clock, irq, write, read } = rtc();
      write(B, 0x42);
      clock.advanceTo(10_000_000);
      expect(irq.changes).toEqual([true]);
      expect(read(C)).toBe(0xc0);
      expect(irq.level).toBe(false);
    });

    it("raises an update-ended interrupt once a second with UIE", () => {
      const r = rtc();
      r.write(A, 0x20); // no periodic flag, so C shows only the update
      r.write(B, 0x12);
      const flags = serviceInterrupts(r, 5 * SECOND);
      expect(flags).toEqual([0x90, 0x90, 0x90, 0x90, 0x90]);
    });

    it("clears UIE when SET is written", () => {
      const { read, write } = rtc();
      write(B, 0x92);
      expect(read(B)).toBe(0x82);
    });

    it("raises the alarm interrupt when the time matches the alarm", () => {
      const r = rtc();
      r.write(A, 0x20);
      r.write(SECONDS_ALARM, 0x05);
      r.write(MINUTES_ALARM, 0x00);
      r.write(HOURS_ALARM, 0x00);
      r.write(B, 0x22);
      const flags = serviceInterrupts(r, 10 * SECOND);
      expect(flags).toEqual([0xa0 | 0x10]); // IRQF, AF (and UF, set by every update)
      expect(r.time()).toEqual([0x00, 0x00, 0x10]);
    });

    it("treats alarm bytes 0xC0-0xFF as 'any value'", () => {
      const r = rtc();
      r.write(SECONDS_ALARM, 0x30);
      r.write(MINUTES_ALARM, 0xc0);
      r.write(HOURS_ALARM, 0xff);
      r.write(B, 0x22);
      const flags = serviceInterrupts(r, 3 * 60 * SECOND);
      expect(flags.length).toBe(3); // hh:mm:30 every minute
    });

    it("compares the hour alarm with the PM flag in 12-hour mode", () => {
      const r = rtc({ startTime: Date.UTC(2000, 0, 1, 12, 59, 58) }); // starts in 24-hour mode
      r.write(B, 0x80); // SET, 12-hour
      r.write(HOURS, 0x80 | 0x12);
      r.write(SECONDS_ALARM, 0x00);
      r.write(MINUTES_ALARM, 0x00);
      r.write(HOURS_ALARM, 0x01); // 1 AM: must not match 1 PM
      r.write(B, 0x20);
      expect(serviceInterrupts(r, 4 * SECOND)).toEqual([]);
      r.write(HOURS_ALARM, 0x80 | 0x02); // 2 PM, an hour after the 1 PM just reached
      r.clock.advanceTo(3602 * SECOND - 1);
      expect(r.read(C) & 0x20).toBe(0);
      r.clock.advanceTo(3602 * SECOND);
      expect(r.read(C) & 0x20).toBe(0x20);
    });

    it("notices an alarm that passed while nobody was looking (AIE off), when C is read", () => {
      const { clock, read, write } = rtc();
      write(SECONDS_ALARM, 0x00);
      write(MINUTES_ALARM, 0x30);
      write(HOURS_ALARM, 0x02);
      clock.advanceTo(3 * 3600 * SECOND);
      expect(read(C) & 0x30).toBe(0x30); // AF and UF
      clock.advanceTo(4 * 3600 * SECOND);
      expect(read(C) & 0x30).toBe(0x10); // only UF: 02:30 did not come round again
      clock.advanceTo(30 * 3600 * SECOND);
      expect(read(C) & 0x20).toBe(0x20); // a day later it did
    });

    it("raises IRQ 8 at once when an interrupt is enabled while its flag is already set", () => {
      const { clock, irq, write } = rtc();
      clock.advanceTo(nsForCounts(64)); // PF set, PIE off
      write(B, 0x42);
      expect(irq.level).toBe(true);
    });

    it("ignores writes to C and D; D always reports valid RAM", () => {
      const { clock, read, write } = rtc();
      clock.advanceTo(SECOND);
      write(C, 0x00);
      write(D, 0x00);
      expect(read(C) & 0x10).toBe(0x10);
      expect(read(D)).toBe(0x80);
    });
  });

  describe("ports, NMI mask and RAM", () => {
    it("takes the NMI mask from port 0x70 bit 7 and reads the index port as 0xFF", () => {
      const { device, bus } = rtc();
      expect(device.nmiEnabled).toBe(true);
      bus.outb(0x70, 0x8f);
      expect(device.nmiEnabled).toBe(false);
      expect(bus.inb(0x70)).toBe(0xff);
      bus.outb(0x71, 0x0a); // register 0x0F, shutdown status, is RAM
      bus.outb(0x70, 0x0f);
      expect(device.nmiEnabled).toBe(true);
      expect(bus.inb(0x71)).toBe(0x0a);
    });

    it("stores any byte in the 114 RAM bytes and hands them out with nvram()", () => {
      const { device, read, write } = rtc();
      for (let i = 0x0e; i < 0x80; i++) write(i, (i * 7) & 0xff);
      for (let i = 0x0e; i < 0x80; i++) expect(read(i)).toBe((i * 7) & 0xff);
      const saved = device.nvram();
      expect(saved.length).toBe(NVRAM_SIZE);
      expect(saved[0x40 - 0x0e]).toBe((0x40 * 7) & 0xff);

      // A new RTC started from the saved RAM shows the same bytes (the century comes from the start time).
      const restored = rtc({ nvram: saved });
      expect(restored.read(0x40)).toBe((0x40 * 7) & 0xff);
      expect(restored.read(0x7f)).toBe((0x7f * 7) & 0xff);
      expect(restored.read(CENTURY)).toBe(0x20);
    });

    it("fills the memory-size bytes and their checksum", () => {
      const { read } = rtc({ memoryBytes: 64 * 2 ** 20 });
      const word = (low: number) => read(low) | (read(low + 1) << 8);
      expect(word(0x15)).toBe(640); // KiB of base memory
      expect(word(0x17)).toBe(63 * 1024); // KiB above 1 MiB
      expect(word(0x30)).toBe(63 * 1024);
      expect(word(0x34)).toBe((48 * 2 ** 20) / 65536); // 64 KiB units above 16 MiB
      let sum = 0;
      for (let i = 0x10; i <= 0x2d; i++) sum += read(i);
      expect((read(0x2e) << 8) | read(0x2f)).toBe(sum);
    });

    it("caps extended memory at 65535 KiB and reports memory above 4 GiB", () => {
      const { read } = rtc({ memoryBytes: 5 * 2 ** 30 });
      expect(read(0x17) | (read(0x18) << 8)).toBe(0xffff);
      // Only memory below 4 GiB counts in 0x34-0x35: (4 GiB - 16 MiB) / 64 KiB.
      expect(read(0x34) | (read(0x35) << 8)).toBe((2 ** 32 - 2 ** 24) / 65536);
      expect(read(0x5b) | (read(0x5c) << 8) | (read(0x5d) << 16)).toBe(2 ** 30 / 65536);
    });

    it.each([
      ["nvram of the wrong size", { nvram: new Uint8Array(128) }],
      ["a negative startTime", { startTime: -1 }],
      ["a NaN startTime", { startTime: Number.NaN }],
      ["a fractional memory size", { memoryBytes: 1.5 }],
    ])("refuses %s", (_case, options) => {
      let caught: unknown;
      try {
        rtc(options);
      } catch (error) {
        caught = error;
      }
      expect(isDevicesError(caught) && caught.code).toBe("ERR_DEVICES_INVALID_ARGUMENT");
    });
  });

  describe("reset", () => {
    it("clears the interrupt enables and flags, keeping time, date and RAM", () => {
      const { clock, irq, device, read, write } = rtc();
      write(0x40, 0x5a);
      write(B, 0x7a); // PIE AIE UIE SQWE + 24h
      clock.advanceTo(2 * SECOND);
      expect(irq.level).toBe(true);
      device.reset();
      expect(irq.level).toBe(false);
      expect(read(B)).toBe(0x02);
      expect(read(C)).toBe(0x00);
      expect(read(SECONDS)).toBe(0x02);
      expect(read(0x40)).toBe(0x5a);
    });
  });

  describe("bad input from the guest", () => {
    it("never throws and reads only bytes, whatever is written where", () => {
      fc.assert(
        fc.property(
          fc.array(fc.record({ index: fc.nat(0xff), value: fc.nat(0xff), read: fc.boolean(), wait: fc.nat(3 * SECOND) }), { maxLength: 40 }),
          (operations) => {
            const { clock, bus } = rtc();
            for (const op of operations) {
              bus.outb(0x70, op.index);
              if (op.read) {
                const value = bus.inb(0x71);
                expect(Number.isInteger(value) && value >= 0 && value <= 0xff).toBe(true);
              } else {
                bus.outb(0x71, op.value);
              }
              clock.advanceBy(op.wait);
            }
          },
        ),
      );
    });
  });
});
