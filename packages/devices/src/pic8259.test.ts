import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isDevicesError, Pic8259Pair, type IrqLine } from "./index.js";
import { TestBus } from "./test-utils.js";

const MASTER_COMMAND = 0x20;
const MASTER_DATA = 0x21;
const SLAVE_COMMAND = 0xa0;
const SLAVE_DATA = 0xa1;
const ELCR_MASTER = 0x4d0;
const ELCR_SLAVE = 0x4d1;

const EOI = 0x20;
const READ_IRR = 0x0a;
const READ_ISR = 0x0b;

/** A PIC pair programmed the way a PC BIOS does: vectors 0x08 and 0x70, cascade on IR2, 8086 mode. */
function pcPics(options: { icw1?: number; masterIcw4?: number; slaveIcw4?: number } = {}) {
  const requests: boolean[] = [];
  const pic = new Pic8259Pair({ onInterruptRequest: (pending) => requests.push(pending) });
  const bus = new TestBus(pic.portRanges());
  const icw1 = options.icw1 ?? 0x11;
  bus.outb(MASTER_COMMAND, icw1);
  bus.outb(MASTER_DATA, 0x08);
  bus.outb(MASTER_DATA, 0x04);
  bus.outb(MASTER_DATA, options.masterIcw4 ?? 0x01);
  bus.outb(SLAVE_COMMAND, icw1);
  bus.outb(SLAVE_DATA, 0x70);
  bus.outb(SLAVE_DATA, 0x02);
  bus.outb(SLAVE_DATA, options.slaveIcw4 ?? 0x01);
  const lines = new Map<number, IrqLine>();
  const line = (irq: number) => {
    let l = lines.get(irq);
    if (!l) lines.set(irq, (l = pic.irqLine(irq)));
    return l;
  };
  const raise = (irq: number) => line(irq).setLevel(true);
  const lower = (irq: number) => line(irq).setLevel(false);
  const pulse = (irq: number) => {
    raise(irq);
    lower(irq);
  };
  const readIsr = (command: number) => (bus.outb(command, READ_ISR), bus.inb(command));
  const readIrr = (command: number) => (bus.outb(command, READ_IRR), bus.inb(command));
  return { pic, bus, requests, line, raise, lower, pulse, readIsr, readIrr };
}

describe("Pic8259Pair", () => {
  describe("initialisation (ICW1-ICW4)", () => {
    it("delivers the vector base from ICW2 plus the IR line", () => {
      const { pic, bus, raise } = pcPics();
      raise(0);
      expect(pic.hasPendingInterrupt()).toBe(true);
      expect(pic.acknowledge()).toBe(0x08);
      bus.outb(MASTER_COMMAND, EOI);
      raise(14);
      raise(1);
      expect(pic.acknowledge()).toBe(0x09);
      bus.outb(MASTER_COMMAND, EOI);
      expect(pic.acknowledge()).toBe(0x76);
    });

    it("ignores the low three bits of ICW2 (8086 mode)", () => {
      const pic = new Pic8259Pair();
      const bus = new TestBus(pic.portRanges());
      bus.outb(MASTER_COMMAND, 0x13); // single, ICW4 needed
      bus.outb(MASTER_DATA, 0x47);
      bus.outb(MASTER_DATA, 0x01);
      pic.irqLine(3).setLevel(true);
      expect(pic.acknowledge()).toBe(0x43);
    });

    it("takes ICW2-ICW4 on the data port during initialisation, and OCW1 (IMR) after it", () => {
      const { bus } = pcPics();
      expect(bus.inb(MASTER_DATA)).toBe(0x00); // ICW1 cleared the mask
      bus.outb(MASTER_DATA, 0xfb);
      expect(bus.inb(MASTER_DATA)).toBe(0xfb);
      // A new ICW1 clears IMR and expects ICW2 on the data port again.
      bus.outb(MASTER_COMMAND, 0x11);
      expect(bus.inb(MASTER_DATA)).toBe(0x00);
      bus.outb(MASTER_DATA, 0x20); // ICW2
      bus.outb(MASTER_DATA, 0x04); // ICW3
      bus.outb(MASTER_DATA, 0x01); // ICW4
      expect(bus.inb(MASTER_DATA)).toBe(0x00);
      bus.outb(MASTER_DATA, 0x55);
      expect(bus.inb(MASTER_DATA)).toBe(0x55);
    });

    it("skips ICW3 in single mode and ICW4 when ICW1 does not ask for it", () => {
      const pic = new Pic8259Pair();
      const bus = new TestBus(pic.portRanges());
      bus.outb(MASTER_COMMAND, 0x12); // single, no ICW4
      bus.outb(MASTER_DATA, 0x30);
      bus.outb(MASTER_DATA, 0xfe); // already OCW1
      expect(bus.inb(MASTER_DATA)).toBe(0xfe);
    });

    it("clears in-service bits and edge requests, and resets status read to IRR", () => {
      const { pic, bus, raise, readIsr } = pcPics();
      raise(4);
      pic.acknowledge();
      expect(readIsr(MASTER_COMMAND)).toBe(0x10); // leaves OCW3 selecting ISR
      raise(5);
      bus.outb(MASTER_COMMAND, 0x11);
      bus.outb(MASTER_DATA, 0x08);
      bus.outb(MASTER_DATA, 0x04);
      bus.outb(MASTER_DATA, 0x01);
      expect(bus.inb(MASTER_COMMAND)).toBe(0x00); // IRR (not ISR): IR5's request is gone too
      expect(readIsr(MASTER_COMMAND)).toBe(0x00);
      expect(pic.hasPendingInterrupt()).toBe(false);
    });

    it("needs a new rising edge on a line that stayed high across ICW1", () => {
      const { pic, bus, raise, lower } = pcPics();
      raise(6);
      bus.outb(MASTER_COMMAND, 0x11);
      bus.outb(MASTER_DATA, 0x08);
      bus.outb(MASTER_DATA, 0x04);
      bus.outb(MASTER_DATA, 0x01);
      expect(pic.hasPendingInterrupt()).toBe(false);
      lower(6);
      raise(6);
      expect(pic.acknowledge()).toBe(0x0e);
    });
  });

  describe("requests, in-service and EOI", () => {
    it("moves an acknowledged request from IRR to ISR until a non-specific EOI", () => {
      const { pic, bus, raise, readIsr, readIrr } = pcPics();
      raise(1);
      expect(readIrr(MASTER_COMMAND)).toBe(0x02);
      expect(pic.acknowledge()).toBe(0x09);
      expect(readIrr(MASTER_COMMAND)).toBe(0x00);
      expect(readIsr(MASTER_COMMAND)).toBe(0x02);
      bus.outb(MASTER_COMMAND, EOI);
      expect(readIsr(MASTER_COMMAND)).toBe(0x00);
    });

    it("keeps OCW3's register choice for later reads", () => {
      const { pic, bus, raise } = pcPics();
      raise(3);
      bus.outb(MASTER_COMMAND, READ_ISR);
      expect(bus.inb(MASTER_COMMAND)).toBe(0x00);
      pic.acknowledge();
      expect(bus.inb(MASTER_COMMAND)).toBe(0x08);
      expect(bus.inb(MASTER_COMMAND)).toBe(0x08);
    });

    it("lets a higher priority interrupt nest inside a lower one, and holds lower ones until EOI", () => {
      const { pic, bus, raise, readIsr } = pcPics();
      raise(3);
      expect(pic.acknowledge()).toBe(0x0b);
      raise(5); // lower priority than IR3 in service
      expect(pic.hasPendingInterrupt()).toBe(false);
      raise(1); // higher: nests
      expect(pic.hasPendingInterrupt()).toBe(true);
      expect(pic.acknowledge()).toBe(0x09);
      expect(readIsr(MASTER_COMMAND)).toBe(0x0a);
      bus.outb(MASTER_COMMAND, EOI); // ends IR1, the highest in service
      expect(readIsr(MASTER_COMMAND)).toBe(0x08);
      expect(pic.hasPendingInterrupt()).toBe(false);
      bus.outb(MASTER_COMMAND, EOI); // ends IR3
      expect(pic.acknowledge()).toBe(0x0d);
    });

    it("does not deliver a request of the same level as one in service", () => {
      const { pic, bus, raise, lower } = pcPics();
      raise(4);
      pic.acknowledge();
      lower(4);
      raise(4);
      expect(pic.hasPendingInterrupt()).toBe(false);
      bus.outb(MASTER_COMMAND, EOI);
      expect(pic.acknowledge()).toBe(0x0c);
    });

    it("ends exactly the named level with a specific EOI", () => {
      const { pic, bus, raise, readIsr } = pcPics();
      raise(6);
      pic.acknowledge();
      raise(2 + 1); // IR3
      pic.acknowledge();
      expect(readIsr(MASTER_COMMAND)).toBe(0x48);
      bus.outb(MASTER_COMMAND, 0x60 | 6); // specific EOI for IR6, not the highest (IR3)
      expect(readIsr(MASTER_COMMAND)).toBe(0x08);
    });

    it("delivers the highest priority of several requests first (IR0 highest, IR7 lowest)", () => {
      const { pic, bus, raise } = pcPics();
      for (const irq of [7, 5, 3, 4]) raise(irq);
      const order: number[] = [];
      while (pic.hasPendingInterrupt()) {
        order.push(pic.acknowledge() - 0x08);
        bus.outb(MASTER_COMMAND, EOI);
      }
      expect(order).toEqual([3, 4, 5, 7]);
    });

    it("ignores a non-specific EOI with nothing in service, and an OCW2 no-op", () => {
      const { pic, bus, raise, readIsr } = pcPics();
      bus.outb(MASTER_COMMAND, EOI);
      bus.outb(MASTER_COMMAND, 0x40); // no operation
      raise(2 + 3);
      pic.acknowledge();
      bus.outb(MASTER_COMMAND, 0x40);
      expect(readIsr(MASTER_COMMAND)).toBe(0x20);
    });
  });

  describe("masking (OCW1)", () => {
    it("holds a masked request in IRR until unmasked", () => {
      const { pic, bus, raise, readIrr } = pcPics();
      bus.outb(MASTER_DATA, 0x10);
      raise(4);
      expect(pic.hasPendingInterrupt()).toBe(false);
      expect(readIrr(MASTER_COMMAND)).toBe(0x10);
      bus.outb(MASTER_DATA, 0x00);
      expect(pic.acknowledge()).toBe(0x0c);
    });

    it("masks every slave interrupt when the master masks IR2", () => {
      const { pic, bus, raise } = pcPics();
      bus.outb(MASTER_DATA, 0x04);
      raise(12);
      expect(pic.hasPendingInterrupt()).toBe(false);
      bus.outb(MASTER_DATA, 0x00);
      expect(pic.acknowledge()).toBe(0x74);
    });
  });

  describe("edge and level triggering", () => {
    it("edge: a line held high requests once; it must fall and rise to request again", () => {
      const { pic, bus, raise, lower } = pcPics();
      raise(1);
      pic.acknowledge();
      bus.outb(MASTER_COMMAND, EOI);
      expect(pic.hasPendingInterrupt()).toBe(false);
      raise(1); // still high: no edge
      expect(pic.hasPendingInterrupt()).toBe(false);
      lower(1);
      raise(1);
      expect(pic.acknowledge()).toBe(0x09);
    });

    it("edge: a request that goes away before the acknowledge becomes spurious IRQ 7", () => {
      const { pic, raise, lower, readIsr } = pcPics();
      raise(3);
      expect(pic.hasPendingInterrupt()).toBe(true);
      lower(3);
      expect(pic.hasPendingInterrupt()).toBe(false);
      expect(pic.acknowledge()).toBe(0x0f);
      expect(readIsr(MASTER_COMMAND)).toBe(0x00); // spurious: nothing goes in service
    });

    it("edge: a slave request that goes away before the acknowledge becomes the master's spurious IRQ 7", () => {
      // The slave's INT falls with its request, so the master's IR2 is gone too.
      const { pic, raise, lower, readIsr } = pcPics();
      raise(11);
      lower(11);
      expect(pic.acknowledge()).toBe(0x0f);
      expect(readIsr(MASTER_COMMAND)).toBe(0x00);
      expect(readIsr(SLAVE_COMMAND)).toBe(0x00);
    });

    it("level (ELCR): the request follows the line and comes back after EOI while the line stays high", () => {
      const { pic, bus, raise, lower, readIrr } = pcPics();
      bus.outb(ELCR_SLAVE, 0x08); // IRQ 11 level-triggered
      raise(11);
      expect(pic.acknowledge()).toBe(0x73);
      expect(readIrr(SLAVE_COMMAND)).toBe(0x08); // still requested
      bus.outb(SLAVE_COMMAND, EOI);
      bus.outb(MASTER_COMMAND, EOI);
      expect(pic.acknowledge()).toBe(0x73);
      bus.outb(SLAVE_COMMAND, EOI);
      bus.outb(MASTER_COMMAND, EOI);
      lower(11);
      expect(pic.hasPendingInterrupt()).toBe(false);
      expect(readIrr(SLAVE_COMMAND)).toBe(0x00);
    });

    it("level (ICW1 LTIM): every line of that chip is level-triggered", () => {
      const { pic, bus, raise, lower } = pcPics({ icw1: 0x19 });
      raise(5);
      expect(pic.acknowledge()).toBe(0x0d);
      bus.outb(MASTER_COMMAND, EOI);
      expect(pic.hasPendingInterrupt()).toBe(true);
      lower(5);
      expect(pic.hasPendingInterrupt()).toBe(false);
    });

    it("reads back only the ELCR bits a PC has (never IRQ 0, 1, 2, 8 or 13)", () => {
      const { bus } = pcPics();
      bus.outb(ELCR_MASTER, 0xff);
      bus.outb(ELCR_SLAVE, 0xff);
      expect([bus.inb(ELCR_MASTER), bus.inb(ELCR_SLAVE)]).toEqual([0xf8, 0xde]);
    });

    it("needs a fresh edge on a line switched from level to edge", () => {
      const { pic, bus, raise } = pcPics();
      bus.outb(ELCR_MASTER, 0x20);
      bus.outb(MASTER_DATA, 0x20);
      raise(5);
      bus.outb(ELCR_MASTER, 0x00);
      bus.outb(MASTER_DATA, 0x00);
      expect(pic.hasPendingInterrupt()).toBe(false);
    });
  });

  describe("the cascade", () => {
    it("delivers a slave interrupt with the slave's vector and puts IR2 in service on the master", () => {
      const { pic, bus, raise, readIsr } = pcPics();
      raise(10);
      expect(pic.hasPendingInterrupt()).toBe(true);
      expect(pic.acknowledge()).toBe(0x72);
      expect(readIsr(MASTER_COMMAND)).toBe(0x04);
      expect(readIsr(SLAVE_COMMAND)).toBe(0x04);
      // Both need an EOI before another slave interrupt of lower priority gets through.
      raise(15);
      expect(pic.hasPendingInterrupt()).toBe(false);
      bus.outb(SLAVE_COMMAND, EOI);
      expect(pic.hasPendingInterrupt()).toBe(false); // master IR2 still in service
      bus.outb(MASTER_COMMAND, EOI);
      expect(pic.acknowledge()).toBe(0x77);
    });

    it("orders the slave's lines at the master's IR2 priority: above IR3, below IR1", () => {
      const { pic, bus, raise } = pcPics();
      raise(3);
      raise(8);
      raise(1);
      const order: number[] = [];
      while (pic.hasPendingInterrupt()) {
        const vector = pic.acknowledge();
        order.push(vector);
        if (vector >= 0x70) bus.outb(SLAVE_COMMAND, EOI);
        bus.outb(MASTER_COMMAND, EOI);
      }
      expect(order).toEqual([0x09, 0x70, 0x0b]);
    });

    it("in special fully nested mode lets a higher slave interrupt through while IR2 is in service", () => {
      const nested = pcPics({ masterIcw4: 0x11 });
      nested.raise(12);
      expect(nested.pic.acknowledge()).toBe(0x74);
      nested.raise(9);
      expect(nested.pic.hasPendingInterrupt()).toBe(true);
      expect(nested.pic.acknowledge()).toBe(0x71);

      const plain = pcPics();
      plain.raise(12);
      plain.pic.acknowledge();
      plain.raise(9);
      expect(plain.pic.hasPendingInterrupt()).toBe(false);
    });

    it("answers IR2 from the master itself when ICW3 names no slave there", () => {
      const pic = new Pic8259Pair();
      const bus = new TestBus(pic.portRanges());
      bus.outb(MASTER_COMMAND, 0x13); // single mode: no slaves
      bus.outb(MASTER_DATA, 0x08);
      bus.outb(MASTER_DATA, 0x01);
      pic.irqLine(9).setLevel(true); // the slave's INT still drives IR2
      expect(pic.acknowledge()).toBe(0x0a);
    });

    it("floats the bus (vector 0xFF) when the slave's ID does not match the cascade line", () => {
      const { pic, bus, raise } = pcPics();
      bus.outb(SLAVE_COMMAND, 0x11);
      bus.outb(SLAVE_DATA, 0x70);
      bus.outb(SLAVE_DATA, 0x05); // slave ID 5, but it hangs on IR2
      bus.outb(SLAVE_DATA, 0x01);
      raise(9);
      expect(pic.acknowledge()).toBe(0xff);
    });
  });

  describe("automatic EOI and rotation", () => {
    it("with auto-EOI leaves nothing in service after the acknowledge", () => {
      const { pic, raise, readIsr } = pcPics({ masterIcw4: 0x03 });
      raise(4);
      expect(pic.acknowledge()).toBe(0x0c);
      expect(readIsr(MASTER_COMMAND)).toBe(0x00);
      raise(6);
      expect(pic.acknowledge()).toBe(0x0e); // not held back by IR4
    });

    it("rotates on auto-EOI once OCW2 enables it, and stops when OCW2 clears it", () => {
      const { pic, bus, raise, lower } = pcPics({ masterIcw4: 0x03 });
      bus.outb(MASTER_COMMAND, 0x80); // rotate in auto-EOI mode: set
      raise(1);
      expect(pic.acknowledge()).toBe(0x09); // IR1 becomes the lowest priority
      raise(0);
      raise(3);
      expect(pic.acknowledge()).toBe(0x0b); // so IR3 beats IR0; now IR3 is lowest
      expect(pic.acknowledge()).toBe(0x08); // and IR0 is lowest after this one
      bus.outb(MASTER_COMMAND, 0x00); // rotate in auto-EOI mode: clear
      raise(5);
      raise(4);
      expect(pic.acknowledge()).toBe(0x0c);
      lower(4);
      raise(4);
      // Without rotation IR4 keeps its place ahead of IR5 (rotation would have made it lowest).
      expect(pic.acknowledge()).toBe(0x0c);
      expect(pic.acknowledge()).toBe(0x0d);
    });

    it("rotates on a non-specific EOI: the level just served becomes the lowest", () => {
      const { pic, bus, raise, pulse } = pcPics();
      raise(1);
      expect(pic.acknowledge()).toBe(0x09);
      bus.outb(MASTER_COMMAND, 0xa0); // rotate on non-specific EOI
      pulse(1);
      raise(1);
      raise(2 + 4); // IR6
      expect(pic.acknowledge()).toBe(0x0e); // IR6 now outranks IR1
    });

    it("rotates on a specific EOI to the named level", () => {
      const { pic, bus, raise, readIsr } = pcPics();
      raise(0);
      pic.acknowledge();
      bus.outb(MASTER_COMMAND, 0xe0 | 0); // rotate on specific EOI, level 0
      expect(readIsr(MASTER_COMMAND)).toBe(0x00);
      raise(7);
      raise(4);
      expect(pic.acknowledge()).toBe(0x0c); // IR1 is highest now, then on to IR4 before IR7
    });

    it("sets the lowest priority with OCW2 'set priority'", () => {
      const { pic, bus, raise } = pcPics();
      bus.outb(MASTER_COMMAND, 0xc0 | 4); // IR4 lowest, IR5 highest
      raise(3);
      raise(5);
      raise(4);
      const order: number[] = [];
      while (pic.hasPendingInterrupt()) {
        order.push(pic.acknowledge() - 0x08);
        bus.outb(MASTER_COMMAND, EOI);
      }
      expect(order).toEqual([5, 3, 4]);
    });
  });

  describe("special mask mode (OCW3)", () => {
    it("lets lower levels through while the in-service level is masked", () => {
      const { pic, bus, raise } = pcPics();
      raise(3);
      pic.acknowledge();
      raise(5);
      expect(pic.hasPendingInterrupt()).toBe(false);
      bus.outb(MASTER_COMMAND, 0x68); // set special mask mode
      bus.outb(MASTER_DATA, 0x08); // mask IR3, which is in service
      expect(pic.acknowledge()).toBe(0x0d);
      bus.outb(MASTER_COMMAND, 0x48); // reset special mask mode
      bus.outb(MASTER_COMMAND, 0x60 | 5);
      raise(6);
      expect(pic.hasPendingInterrupt()).toBe(false); // IR3 in service blocks again
    });
  });

  describe("poll (OCW3 bit 2)", () => {
    it("makes the next read an acknowledge that returns 0x80 | level", () => {
      const { pic, bus, raise, readIsr } = pcPics();
      raise(5);
      bus.outb(MASTER_COMMAND, 0x0c);
      expect(bus.inb(MASTER_DATA)).toBe(0x85);
      expect(readIsr(MASTER_COMMAND)).toBe(0x20);
      expect(pic.hasPendingInterrupt()).toBe(false);
      // The poll is one read only: the next read is the IMR again.
      expect(bus.inb(MASTER_DATA)).toBe(0x00);
    });

    it("answers 0x07 (bit 7 clear) when nothing is requesting", () => {
      const { bus, readIsr } = pcPics();
      bus.outb(SLAVE_COMMAND, 0x0c);
      expect(bus.inb(SLAVE_COMMAND)).toBe(0x07);
      expect(readIsr(SLAVE_COMMAND)).toBe(0x00);
    });
  });

  describe("the interrupt request output", () => {
    it("reports every change of INT to the host", () => {
      const { pic, bus, raise, lower, requests } = pcPics();
      raise(0);
      lower(0); // request withdrawn
      raise(7);
      pic.acknowledge();
      bus.outb(MASTER_COMMAND, EOI);
      expect(requests).toEqual([true, false, true, false]);
    });
  });

  describe("IRQ lines", () => {
    it("OR several devices sharing one IRQ", () => {
      const { pic, bus } = pcPics();
      bus.outb(ELCR_MASTER, 0x10); // level, so the request follows the wire
      const com1 = pic.irqLine(4);
      const com3 = pic.irqLine(4);
      com1.setLevel(true);
      com3.setLevel(true);
      com1.setLevel(false);
      expect(pic.hasPendingInterrupt()).toBe(true);
      com3.setLevel(false);
      expect(pic.hasPendingInterrupt()).toBe(false);
    });

    it.each([2, 16, -1, 1.5])("refuses IRQ %s", (irq) => {
      const pic = new Pic8259Pair();
      let caught: unknown;
      try {
        pic.irqLine(irq);
      } catch (error) {
        caught = error;
      }
      expect(isDevicesError(caught) && caught.code).toBe("ERR_DEVICES_INVALID_IRQ");
    });
  });

  describe("reset and power-on", () => {
    it("starts as QEMU's reset state: vector base 0, nothing masked, slave on IR2", () => {
      const pic = new Pic8259Pair();
      pic.irqLine(1).setLevel(true);
      expect(pic.acknowledge()).toBe(0x01);
      pic.irqLine(9).setLevel(true);
      expect(pic.hasPendingInterrupt()).toBe(false); // IR1 in service outranks IR2
    });

    it("returns both chips to that state on reset()", () => {
      const { pic, bus } = pcPics();
      bus.outb(MASTER_DATA, 0xff);
      pic.reset();
      expect(bus.inb(MASTER_DATA)).toBe(0x00);
      pic.irqLine(3).setLevel(true);
      expect(pic.acknowledge()).toBe(0x03);
    });
  });

  describe("bad input from the guest", () => {
    it("never throws and always acknowledges with a byte vector", () => {
      const ports = [MASTER_COMMAND, MASTER_DATA, SLAVE_COMMAND, SLAVE_DATA, ELCR_MASTER, ELCR_SLAVE];
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              fc.record({ port: fc.constantFrom(...ports), value: fc.nat(0xff), read: fc.boolean() }),
              fc.record({ irq: fc.constantFrom(0, 1, 3, 4, 7, 8, 9, 12, 15), high: fc.boolean() }),
            ),
            { maxLength: 60 },
          ),
          (operations) => {
            const pic = new Pic8259Pair();
            const bus = new TestBus(pic.portRanges());
            const lines = new Map<number, IrqLine>();
            for (const op of operations) {
              if ("port" in op) {
                if (op.read) expect(bus.inb(op.port)).toBeLessThanOrEqual(0xff);
                else bus.outb(op.port, op.value);
              } else {
                if (!lines.has(op.irq)) lines.set(op.irq, pic.irqLine(op.irq));
                lines.get(op.irq)!.setLevel(op.high);
              }
              if (pic.hasPendingInterrupt()) {
                const vector = pic.acknowledge();
                expect(Number.isInteger(vector) && vector >= 0 && vector <= 0xff).toBe(true);
              }
            }
          },
        ),
      );
    });
  });
});
