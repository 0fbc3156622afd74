import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Pit8254, PIT_FREQUENCY, VirtualClock } from "./index.js";
import { RecordingIrq, TestBus } from "./test-utils.js";

const COUNTER0 = 0x40;
const COUNTER2 = 0x42;
const CONTROL = 0x43;
const PORT_B = 0x61;

const F = BigInt(PIT_FREQUENCY);
/** Oracle: whole ticks in `ns` nanoseconds. */
const ticksIn = (ns: number) => Number((BigInt(ns) * F) / 1_000_000_000n);
/** Oracle: the first nanosecond at which `ticks` ticks have passed. */
const nsFor = (ticks: number) => Number((BigInt(ticks) * 1_000_000_000n + F - 1n) / F);

function pit() {
  const clock = new VirtualClock();
  const irq = new RecordingIrq();
  const device = new Pit8254({ clock, irq });
  const bus = new TestBus(device.portRanges());
  /** Programs a counter: control word then the count as LSB, MSB. */
  const program = (counter: number, mode: number, count: number, options: { bcd?: boolean } = {}) => {
    bus.outb(CONTROL, (counter << 6) | 0x30 | (mode << 1) | (options.bcd ? 1 : 0));
    bus.outb(COUNTER0 + counter, count & 0xff);
    bus.outb(COUNTER0 + counter, (count >> 8) & 0xff);
  };
  /** Latches and reads a lo/hi counter. */
  const readCount = (counter: number) => {
    bus.outb(CONTROL, counter << 6);
    return bus.inb(COUNTER0 + counter) | (bus.inb(COUNTER0 + counter) << 8);
  };
  const status = (counter: number) => {
    bus.outb(CONTROL, 0xe0 | (2 << counter)); // read-back, status only
    return bus.inb(COUNTER0 + counter);
  };
  const out2 = () => (bus.inb(PORT_B) & 0x20) !== 0;
  return { clock, irq, device, bus, program, readCount, status, out2 };
}

describe("Pit8254", () => {
  describe("mode 2, rate generator", () => {
    it("raises IRQ 0 once per N ticks: 11932 gives the PC's ~100 Hz", () => {
      const { clock, irq, program, device } = pit();
      program(0, 2, 11932);
      expect(device.output(0)).toBe(true);
      clock.advanceTo(1_000_000_000);
      expect(irq.risingEdges).toBe(Math.floor(PIT_FREQUENCY / 11932));
    });

    it("drops OUT for exactly one tick when the count reaches 1", () => {
      const { clock, irq, program, device } = pit();
      program(0, 2, 5);
      clock.advanceTo(nsFor(4) - 1);
      expect(device.output(0)).toBe(true);
      expect(irq.changes).toEqual([]);
      clock.advanceTo(nsFor(4));
      expect(irq.level).toBe(false);
      expect(device.output(0)).toBe(false);
      clock.advanceTo(nsFor(5) - 1);
      expect(irq.level).toBe(false);
      clock.advanceTo(nsFor(5));
      expect(irq.level).toBe(true);
      expect(irq.changes).toEqual([false, true]);
    });

    it("counts N, N-1 … 1 and reloads", () => {
      const { clock, program, readCount } = pit();
      program(0, 2, 5);
      const seen: number[] = [];
      for (let t = 0; t <= 6; t++) {
        clock.advanceTo(nsFor(t));
        seen.push(readCount(0));
      }
      expect(seen).toEqual([5, 4, 3, 2, 1, 5, 4]);
    });

    it("takes a new count at the next reload, not mid-period", () => {
      const { clock, irq, program, bus } = pit();
      program(0, 2, 100);
      clock.advanceTo(nsFor(30));
      bus.outb(COUNTER0, 10);
      bus.outb(COUNTER0, 0);
      const edgesBefore = irq.risingEdges;
      clock.advanceTo(nsFor(99)); // the old period still runs
      expect(irq.risingEdges).toBe(edgesBefore);
      clock.advanceTo(nsFor(100));
      expect(irq.risingEdges).toBe(edgesBefore + 1);
      clock.advanceTo(nsFor(130));
      expect(irq.risingEdges).toBe(edgesBefore + 4); // then every 10 ticks
    });

    it("treats a count of 0 as 65536", () => {
      const { clock, irq, program, readCount } = pit();
      program(0, 2, 0);
      expect(readCount(0)).toBe(0);
      clock.advanceTo(nsFor(1));
      expect(readCount(0)).toBe(0xffff);
      const edges = irq.risingEdges;
      clock.advanceTo(nsFor(65536));
      expect(irq.risingEdges).toBe(edges + 1);
    });

    it("holds OUT low and raises no interrupt for the illegal count 1", () => {
      const { clock, irq, program } = pit();
      program(0, 2, 1);
      clock.advanceTo(1_000_000);
      expect(irq.level).toBe(false);
      expect(irq.risingEdges).toBe(0);
    });
  });

  describe("mode 3, square wave", () => {
    it("is high for N/2 ticks and low for N/2 with an even count", () => {
      const { clock, device, program } = pit();
      program(0, 3, 8);
      const levels: boolean[] = [];
      for (let t = 0; t < 10; t++) {
        clock.advanceTo(nsFor(t));
        levels.push(device.output(0));
      }
      expect(levels).toEqual([true, true, true, true, false, false, false, false, true, true]);
    });

    it("is high for (N+1)/2 ticks and low for (N-1)/2 with an odd count", () => {
      const { clock, device, program } = pit();
      program(0, 3, 5);
      const levels: boolean[] = [];
      for (let t = 0; t < 6; t++) {
        clock.advanceTo(nsFor(t));
        levels.push(device.output(0));
      }
      expect(levels).toEqual([true, true, true, false, false, true]);
    });

    it("counts down by two in each half", () => {
      const even = pit();
      even.program(0, 3, 6);
      const evenCounts: number[] = [];
      for (let t = 0; t < 6; t++) {
        even.clock.advanceTo(nsFor(t));
        evenCounts.push(even.readCount(0));
      }
      expect(evenCounts).toEqual([6, 4, 2, 6, 4, 2]);

      // Odd counts: the high half runs N, N-1, N-3…, the low half N, N-3, N-5… (datasheet).
      const odd = pit();
      odd.program(0, 3, 7);
      const oddCounts: number[] = [];
      for (let t = 0; t < 7; t++) {
        odd.clock.advanceTo(nsFor(t));
        oddCounts.push(odd.readCount(0));
      }
      expect(oddCounts).toEqual([7, 6, 4, 2, 7, 4, 2]);
    });

    it("produces the BIOS's 18.2 Hz from a count of 65536", () => {
      const { clock, irq, program } = pit();
      program(0, 3, 0);
      clock.advanceTo(10_000_000_000);
      expect(irq.risingEdges).toBe(Math.floor((PIT_FREQUENCY * 10) / 65536));
    });

    it("takes a new count at the end of the current half-cycle", () => {
      const { clock, irq, program, bus } = pit();
      program(0, 3, 100);
      clock.advanceTo(nsFor(10));
      bus.outb(COUNTER0, 20);
      bus.outb(COUNTER0, 0);
      clock.advanceTo(nsFor(49));
      expect(irq.changes).toEqual([]);
      clock.advanceTo(nsFor(50)); // end of the old high half: the low half of the new count
      expect(irq.level).toBe(false);
      clock.advanceTo(nsFor(59));
      expect(irq.level).toBe(false);
      clock.advanceTo(nsFor(60));
      expect(irq.level).toBe(true);
      clock.advanceTo(nsFor(70));
      expect(irq.level).toBe(false);
    });
  });

  describe("mode 0, interrupt on terminal count", () => {
    it("holds OUT low from the control word until N ticks after the count, then high", () => {
      const { clock, irq, program, bus } = pit();
      bus.outb(CONTROL, 0x30);
      expect(irq.level).toBe(false);
      program(0, 0, 1000);
      clock.advanceTo(nsFor(999));
      expect(irq.level).toBe(false);
      clock.advanceTo(nsFor(1000));
      expect(irq.level).toBe(true);
      clock.advanceTo(nsFor(5000));
      expect(irq.risingEdges).toBe(1);
    });

    it("keeps counting down past zero, wrapping to 0xFFFF", () => {
      const { clock, program, readCount } = pit();
      program(0, 0, 3);
      clock.advanceTo(nsFor(3));
      expect(readCount(0)).toBe(0);
      clock.advanceTo(nsFor(5));
      expect(readCount(0)).toBe(0xfffe);
    });

    it("stops counting when the first byte of a new lo/hi count is written", () => {
      const { clock, irq, program, bus, readCount } = pit();
      program(0, 0, 100);
      clock.advanceTo(nsFor(40));
      bus.outb(COUNTER0, 50); // LSB only: counting stops, OUT low
      clock.advanceTo(nsFor(200));
      expect(irq.level).toBe(false);
      expect(readCount(0)).toBe(60);
      bus.outb(COUNTER0, 0); // MSB: counting restarts from 50
      const restart = clock.now();
      clock.advanceTo(restart + nsFor(49));
      expect(irq.level).toBe(false);
      clock.advanceTo(restart + nsFor(50) + 1);
      expect(irq.level).toBe(true);
    });
  });

  describe("modes 1 and 5, gate-triggered (channel 2 through port 0x61)", () => {
    it("mode 1: OUT goes low on the gate's rising edge and high after N ticks; a new edge retriggers", () => {
      const { clock, bus, out2, program } = pit();
      program(2, 1, 10);
      expect(out2()).toBe(true); // not triggered yet
      clock.advanceTo(nsFor(50));
      expect(out2()).toBe(true);
      bus.outb(PORT_B, 0x01); // gate up: trigger
      const t0 = clock.now();
      clock.advanceTo(t0 + nsFor(5));
      expect(out2()).toBe(false);
      bus.outb(PORT_B, 0x00);
      bus.outb(PORT_B, 0x01); // retrigger: the full count again
      const t1 = clock.now();
      clock.advanceTo(t1 + nsFor(9));
      expect(out2()).toBe(false);
      clock.advanceTo(t1 + nsFor(10) + 1);
      expect(out2()).toBe(true);
    });

    it("mode 5: one tick low N ticks after the trigger", () => {
      const { clock, bus, out2, program } = pit();
      program(2, 5, 4);
      bus.outb(PORT_B, 0x01);
      const t0 = clock.now();
      const levels: boolean[] = [];
      for (let t = 0; t < 7; t++) {
        clock.advanceTo(t0 + nsFor(t) + 1);
        levels.push(out2());
      }
      expect(levels).toEqual([true, true, true, true, false, true, true]);
    });
  });

  describe("mode 4, software-triggered strobe", () => {
    it("strobes OUT low for one tick N ticks after the count, once", () => {
      const { clock, irq, device, program } = pit();
      program(0, 4, 3);
      const levels: boolean[] = [];
      for (let t = 0; t < 6; t++) {
        clock.advanceTo(nsFor(t));
        levels.push(device.output(0));
      }
      expect(levels).toEqual([true, true, true, false, true, true]);
      clock.advanceTo(nsFor(200_000));
      expect(irq.changes.filter((level) => !level).length).toBe(1);
    });
  });

  describe("the gate of channel 2", () => {
    it("stops a rate generator with OUT high and reloads it on the rising edge", () => {
      const { clock, bus, program, readCount } = pit();
      bus.outb(PORT_B, 0x01);
      program(2, 2, 100);
      clock.advanceTo(nsFor(30));
      bus.outb(PORT_B, 0x00);
      const frozen = readCount(2);
      expect(frozen).toBe(70);
      clock.advanceTo(nsFor(500));
      expect(readCount(2)).toBe(70);
      expect(bus.inb(PORT_B) & 0x20).toBe(0x20);
      bus.outb(PORT_B, 0x01);
      expect(readCount(2)).toBe(100);
    });

    it("suspends mode 0 counting while low, keeping the count", () => {
      const { clock, bus, program, readCount, out2 } = pit();
      program(2, 0, 100); // gate is low: loaded but not counting
      clock.advanceTo(nsFor(1000));
      expect(readCount(2)).toBe(100);
      bus.outb(PORT_B, 0x01);
      const t0 = clock.now();
      clock.advanceTo(t0 + nsFor(40));
      bus.outb(PORT_B, 0x00);
      clock.advanceTo(t0 + nsFor(400));
      expect(readCount(2)).toBe(60);
      expect(out2()).toBe(false);
    });

    it("is what the classic 'PIT channel 2 delay loop' polls: OUT2 rises after the count", () => {
      // Firmware calibrates delays this way: gate on, speaker off, mode 0, wait for bit 5.
      const { clock, bus } = pit();
      bus.outb(PORT_B, (bus.inb(PORT_B) & ~0x02) | 0x01);
      bus.outb(CONTROL, 0xb0); // counter 2, lo/hi, mode 0
      bus.outb(COUNTER2, 0x9b); // 11931 = 10 ms
      bus.outb(COUNTER2, 0x2e);
      let polls = 0;
      while ((bus.inb(PORT_B) & 0x20) === 0) {
        clock.advanceBy(1000);
        polls++;
      }
      expect(polls).toBe(Math.ceil(nsFor(11931) / 1000));
    });
  });

  describe("port 0x61", () => {
    it("reads back bits 0-3 and toggles the refresh bit every 15.085 µs", () => {
      const { clock, bus } = pit();
      bus.outb(PORT_B, 0xfe);
      expect(bus.inb(PORT_B) & 0x0f).toBe(0x0e);
      expect(bus.inb(PORT_B) & 0x10).toBe(0);
      clock.advanceTo(15_084);
      expect(bus.inb(PORT_B) & 0x10).toBe(0);
      clock.advanceTo(15_085);
      expect(bus.inb(PORT_B) & 0x10).toBe(0x10);
      clock.advanceTo(30_170);
      expect(bus.inb(PORT_B) & 0x10).toBe(0);
      expect(bus.inb(PORT_B) & 0xc0).toBe(0); // no parity or channel check errors
    });
  });

  describe("latch and read-back", () => {
    it("a counter latch holds the count until both bytes are read, ignoring a second latch", () => {
      const { clock, bus, program } = pit();
      program(0, 2, 1000);
      clock.advanceTo(nsFor(100));
      bus.outb(CONTROL, 0x00); // latch counter 0
      clock.advanceTo(nsFor(300));
      bus.outb(CONTROL, 0x00); // ignored: the first latch is unread
      expect(bus.inb(COUNTER0) | (bus.inb(COUNTER0) << 8)).toBe(900);
      // Without a latch the count is read live.
      expect(bus.inb(COUNTER0) | (bus.inb(COUNTER0) << 8)).toBe(700);
    });

    it("read-back returns status (OUT, null count, access, mode, BCD) before the count", () => {
      const { clock, bus, program, status } = pit();
      bus.outb(CONTROL, 0x34); // counter 0, lo/hi, mode 2
      expect(status(0)).toBe(0x80 | 0x40 | 0x30 | 0x04); // OUT high, null count: no count yet
      bus.outb(COUNTER0, 10);
      bus.outb(COUNTER0, 0);
      expect(status(0)).toBe(0x80 | 0x30 | 0x04);
      clock.advanceTo(nsFor(9));
      bus.outb(CONTROL, 0xc2); // read-back counter 0, count and status
      expect(bus.inb(COUNTER0)).toBe(0x30 | 0x04); // OUT low at count 1
      expect(bus.inb(COUNTER0) | (bus.inb(COUNTER0) << 8)).toBe(1);
      program(1, 3, 4, { bcd: true });
      expect(status(1)).toBe(0x80 | 0x30 | 0x06 | 0x01);
    });

    it("read-back latches every selected counter at once", () => {
      const { clock, bus, program } = pit();
      program(0, 2, 1000);
      bus.outb(PORT_B, 0x01);
      program(2, 2, 2000);
      clock.advanceTo(nsFor(10));
      bus.outb(CONTROL, 0xda); // read-back counts of counters 0 and 2
      clock.advanceTo(nsFor(500));
      expect(bus.inb(COUNTER0) | (bus.inb(COUNTER0) << 8)).toBe(990);
      expect(bus.inb(COUNTER2) | (bus.inb(COUNTER2) << 8)).toBe(1990);
    });

    it("reports the programmed mode bits for modes 6 and 7, which run as 2 and 3", () => {
      const { clock, irq, bus, status } = pit();
      bus.outb(CONTROL, 0x3c); // mode 6
      bus.outb(COUNTER0, 4);
      bus.outb(COUNTER0, 0);
      expect(status(0) & 0x0e).toBe(0x0c);
      clock.advanceTo(nsFor(3));
      expect(irq.level).toBe(false); // mode 2's one-tick low pulse
    });
  });

  describe("byte access and BCD", () => {
    it("loads and reads only the low byte, or only the high byte, as programmed", () => {
      const { clock, bus } = pit();
      bus.outb(CONTROL, 0x14); // counter 0, LSB only, mode 2
      bus.outb(COUNTER0, 200);
      clock.advanceTo(nsFor(50));
      expect(bus.inb(COUNTER0)).toBe(150);
      bus.outb(CONTROL, 0x24); // MSB only
      bus.outb(COUNTER0, 0x02); // count 0x0200
      clock.advanceTo(clock.now() + nsFor(0x100));
      expect(bus.inb(COUNTER0)).toBe(0x01);
    });

    it("counts in decimal: a BCD count of 1000 is 1000 ticks, read back as BCD", () => {
      const { clock, irq, program, readCount } = pit();
      program(0, 0, 0x1000, { bcd: true });
      clock.advanceTo(nsFor(1));
      expect(readCount(0)).toBe(0x0999);
      clock.advanceTo(nsFor(999));
      expect(irq.level).toBe(false);
      clock.advanceTo(nsFor(1000));
      expect(irq.level).toBe(true);
      expect(readCount(0)).toBe(0x0000);
      clock.advanceTo(nsFor(1001));
      expect(readCount(0)).toBe(0x9999); // wraps to 9999 in BCD
    });

    it("treats a BCD count of 0 as 10000", () => {
      const { clock, irq, program } = pit();
      program(0, 2, 0, { bcd: true });
      const edges = irq.risingEdges;
      clock.advanceTo(nsFor(10000));
      expect(irq.risingEdges).toBe(edges + 1);
    });
  });

  describe("bad input from the guest", () => {
    it("reads the write-only control port as 0xFF (the bus floats)", () => {
      const { bus } = pit();
      expect(bus.inb(CONTROL)).toBe(0xff);
    });

    it("never throws, reads only bytes and arms the timer only in the future", () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              port: fc.constantFrom(0x40, 0x41, 0x42, 0x43, 0x61),
              value: fc.nat(0xff),
              read: fc.boolean(),
              wait: fc.nat(200_000),
            }),
            { maxLength: 50 },
          ),
          (operations) => {
            const { clock, bus, device } = pit();
            for (const op of operations) {
              if (op.read) {
                const value = bus.inb(op.port);
                expect(Number.isInteger(value) && value >= 0 && value <= 0xff).toBe(true);
              } else {
                bus.outb(op.port, op.value);
              }
              expect(clock.nextDeadline()).toBeGreaterThan(clock.now());
              clock.advanceBy(op.wait);
              expect(typeof device.output(2)).toBe("boolean");
            }
          },
        ),
      );
    });
  });

  describe("power-on and reset", () => {
    it("does not count or interrupt until programmed", () => {
      const { clock, irq } = pit();
      clock.advanceTo(1_000_000_000);
      expect(irq.risingEdges).toBe(0);
      expect(clock.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
    });

    it("reset() stops every channel and clears port 0x61", () => {
      const { clock, irq, bus, program, device } = pit();
      program(0, 2, 100);
      bus.outb(PORT_B, 0x03);
      device.reset();
      const edges = irq.risingEdges;
      clock.advanceTo(1_000_000_000);
      expect(irq.risingEdges).toBe(edges);
      expect(bus.inb(PORT_B) & 0x0f).toBe(0);
    });
  });

  it("uses the oracle's tick arithmetic (sanity)", () => {
    expect(ticksIn(nsFor(1234567))).toBe(1234567);
    expect(ticksIn(nsFor(1234567) - 1)).toBe(1234566);
  });
});
