import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { A20Gate, Kbc8042, Port92, type A20Target } from "./index.js";
import { TestBus } from "./test-utils.js";

/** Stands in for `Cpu.setA20`: remembers every call. */
function recordingCpu() {
  const calls: boolean[] = [];
  const cpu: A20Target & { readonly calls: boolean[] } = { calls, setA20: (enabled) => void calls.push(enabled) };
  return cpu;
}

function machine() {
  const cpu = recordingCpu();
  const gate = new A20Gate(cpu);
  let resets = 0;
  const onReset = () => void resets++;
  const port92 = new Port92({ a20: gate.input(), onReset });
  const kbc = new Kbc8042({ a20: gate.input(), onReset });
  const bus = new TestBus(port92.portRanges(), kbc.portRanges());
  return { cpu, gate, port92, kbc, bus, resets: () => resets };
}

describe("A20Gate", () => {
  it("enables A20 while either source enables it", () => {
    const cpu = recordingCpu();
    const gate = new A20Gate(cpu);
    const a = gate.input();
    const b = gate.input();
    a.setA20(true);
    b.setA20(true);
    a.setA20(false);
    expect(gate.enabled).toBe(true);
    b.setA20(false);
    expect(gate.enabled).toBe(false);
    expect(cpu.calls).toEqual([false, true, false]); // told at construction, then on each change only
  });
});

describe("Port92", () => {
  it("enables and disables A20 with bit 1 and reads back what was written", () => {
    const { cpu, gate, bus } = machine();
    bus.outb(0x64, 0xdd); // the 8042 disables its A20 output, leaving port 0x92 in charge
    expect(gate.enabled).toBe(false);
    bus.outb(0x92, 0x02);
    expect(gate.enabled).toBe(true);
    expect(bus.inb(0x92)).toBe(0x02);
    bus.outb(0x92, 0xc0);
    expect(gate.enabled).toBe(false);
    expect(bus.inb(0x92)).toBe(0xc0);
    expect(cpu.calls.at(-1)).toBe(false);
  });

  it("resets on a 0-to-1 change of bit 0 only", () => {
    const { bus, resets, port92 } = machine();
    bus.outb(0x92, 0x01);
    expect(resets()).toBe(1);
    bus.outb(0x92, 0x03); // bit 0 still set: no new edge
    expect(resets()).toBe(1);
    port92.reset(); // the machine reset clears bit 0 and keeps A20
    expect(bus.inb(0x92)).toBe(0x02);
    bus.outb(0x92, 0x03);
    expect(resets()).toBe(2);
  });

  it("starts with A20 off, and works without a gate or reset callback", () => {
    const lone = new Port92();
    expect(lone.readPort()).toBe(0x00);
    lone.writePort(0, 0x03);
    expect(lone.readPort()).toBe(0x03);
  });
});

describe("Kbc8042", () => {
  it("starts with A20 on through its output port (0xCF), as QEMU does", () => {
    const { gate, bus } = machine();
    expect(gate.enabled).toBe(true);
    bus.outb(0x64, 0xd0); // read output port
    expect(bus.inb(0x64) & 0x01).toBe(0x01);
    expect(bus.inb(0x60)).toBe(0xcf);
    expect(bus.inb(0x64) & 0x01).toBe(0x00);
  });

  it("sets A20 from bit 1 of a 0xD1 output-port write, as A20 enabling code does", () => {
    const { gate, bus } = machine();
    // The classic sequence: wait for IBF clear, 0xD1, wait, 0xDD (A20 off) / 0xDF (on).
    expect(bus.inb(0x64) & 0x02).toBe(0);
    bus.outb(0x64, 0xd1);
    bus.outb(0x60, 0xdd);
    expect(gate.enabled).toBe(false);
    bus.outb(0x64, 0xd1);
    bus.outb(0x60, 0xdf);
    expect(gate.enabled).toBe(true);
    bus.outb(0x64, 0xff); // a no-op pulse
    expect(gate.enabled).toBe(true);
  });

  it("toggles A20 with commands 0xDD and 0xDF", () => {
    const { gate, bus } = machine();
    bus.outb(0x64, 0xdd);
    expect(gate.enabled).toBe(false);
    bus.outb(0x64, 0xdf);
    expect(gate.enabled).toBe(true);
  });

  it("resets with the pulse command 0xFE, and with an output-port write clearing bit 0", () => {
    const { bus, resets } = machine();
    bus.outb(0x64, 0xfe);
    expect(resets()).toBe(1);
    bus.outb(0x64, 0xfd); // pulses bit 1 only: no reset
    expect(resets()).toBe(1);
    bus.outb(0x64, 0xd1);
    bus.outb(0x60, 0x02);
    expect(resets()).toBe(2);
  });

  it("passes its self-test and interface test, and sets the system flag", () => {
    const { bus } = machine();
    expect(bus.inb(0x64) & 0x04).toBe(0);
    bus.outb(0x64, 0xaa);
    expect(bus.inb(0x60)).toBe(0x55);
    expect(bus.inb(0x64) & 0x04).toBe(0x04);
    bus.outb(0x64, 0xab);
    expect(bus.inb(0x60)).toBe(0x00);
  });

  it("reads and writes the command byte, whose bit 2 is the system flag", () => {
    const { bus } = machine();
    bus.outb(0x64, 0x60);
    bus.outb(0x60, 0x45);
    expect(bus.inb(0x64) & 0x04).toBe(0x04);
    bus.outb(0x64, 0xad); // disable keyboard: bit 4
    bus.outb(0x64, 0xa7); // disable mouse: bit 5
    bus.outb(0x64, 0x20);
    expect(bus.inb(0x60)).toBe(0x75);
    bus.outb(0x64, 0xae);
    bus.outb(0x64, 0xa8);
    bus.outb(0x64, 0x20);
    expect(bus.inb(0x60)).toBe(0x45);
  });

  it("answers the input port and test inputs, and tracks whether a command or data came last", () => {
    const { bus } = machine();
    bus.outb(0x64, 0xc0);
    expect(bus.inb(0x64) & 0x08).toBe(0x08);
    expect(bus.inb(0x60)).toBe(0x80);
    bus.outb(0x64, 0xe0);
    expect(bus.inb(0x60)).toBe(0x00);
    bus.outb(0x60, 0xff); // a byte for the absent keyboard: ignored
    expect(bus.inb(0x64)).toBe(0x10);
  });

  it("returns the last byte again when the output buffer is read empty", () => {
    const { bus } = machine();
    bus.outb(0x64, 0xaa);
    bus.inb(0x60);
    expect(bus.inb(0x60)).toBe(0x55);
  });

  it("returns to its power-on state on reset()", () => {
    const { gate, kbc, bus } = machine();
    bus.outb(0x64, 0xdd);
    bus.outb(0x64, 0xaa);
    kbc.reset();
    expect(gate.enabled).toBe(true);
    expect(bus.inb(0x64)).toBe(0x10);
  });

  it("never throws and reads only bytes, whatever the guest sends", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ port: fc.constantFrom(0x60, 0x64, 0x92), value: fc.nat(0xff), read: fc.boolean() }), { maxLength: 60 }), (operations) => {
        const { bus } = machine();
        for (const op of operations) {
          if (op.read) {
            const value = bus.inb(op.port);
            expect(Number.isInteger(value) && value >= 0 && value <= 0xff).toBe(true);
          } else {
            bus.outb(op.port, op.value);
          }
        }
      }),
    );
  });
});
