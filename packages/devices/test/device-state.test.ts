import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  A20Gate,
  CmosRtc,
  DebugConsole,
  isDevicesError,
  Kbc8042,
  Pic8259Pair,
  Pit8254,
  Port92,
  Uart16550,
  VirtualClock,
  type DevicePortRange,
  type IrqLine,
} from "@vmmkit/devices";

/**
 * A device (or a few wired together) with everything it does to the outside world written
 * to `log`: port reads, IRQ changes, bytes sent, resets. Two rigs fed the same operations
 * must write the same log.
 */
interface Rig {
  readonly log: string[];
  apply(op: Op): void;
  save(): Uint8Array[];
  load(states: readonly Uint8Array[]): void;
}

type Op =
  | { readonly kind: "out"; readonly port: number; readonly value: number }
  | { readonly kind: "in"; readonly port: number }
  | { readonly kind: "advance"; readonly ns: number }
  | { readonly kind: "host"; readonly action: number; readonly value: number };

function bus(log: string[], ranges: DevicePortRange[]) {
  const find = (port: number) => ranges.find((r) => port >= r.port && port < r.port + r.count);
  return {
    out(port: number, value: number) {
      const range = find(port);
      range?.device.writePort(port - range.port, value, 1);
    },
    in(port: number) {
      const range = find(port);
      log.push(`in ${port.toString(16)} = ${range ? range.device.readPort(port - range.port, 1) : 0xff}`);
    },
  };
}

function irq(log: string[], name: string): IrqLine {
  return { setLevel: (high) => log.push(`${name} ${high ? "high" : "low"}`) };
}

function clockOps(clock: VirtualClock, op: Op): boolean {
  if (op.kind !== "advance") return false;
  clock.advanceBy(op.ns);
  return true;
}

const RIGS: Record<string, { ports: readonly number[]; maxAdvance: number; build: () => Rig }> = {
  uart: {
    ports: [0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff],
    maxAdvance: 5_000_000,
    build: () => {
      const log: string[] = [];
      const clock = new VirtualClock();
      const uart = new Uart16550(
        { transmit: (b) => log.push(`tx ${b}`), receiveReady: () => log.push("receive ready"), setBreak: (on) => log.push(`break ${on}`) },
        { clock, irq: irq(log, "irq4") },
      );
      const ports = bus(log, uart.portRanges());
      return {
        log,
        apply(op) {
          if (clockOps(clock, op)) return;
          if (op.kind === "out") ports.out(op.port, op.value);
          else if (op.kind === "in") ports.in(op.port);
          else if (op.kind === "host") {
            if (op.action === 0) uart.receive(op.value);
            else if (op.action === 1) uart.receiveBreak();
            else if (op.action === 2) uart.setModemInputs({ cts: (op.value & 1) !== 0, dsr: (op.value & 2) !== 0, ri: (op.value & 4) !== 0, dcd: (op.value & 8) !== 0 });
            else log.push(`space ${uart.receiveSpace()}`);
          }
        },
        save: () => [clock.saveState(), uart.saveState()],
        load([c, u]) {
          clock.loadState(c!);
          uart.loadState(u!);
        },
      };
    },
  },
  pic: {
    ports: [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1],
    maxAdvance: 1,
    build: () => {
      const log: string[] = [];
      const pic = new Pic8259Pair({ onInterruptRequest: (pending) => log.push(`INT ${pending}`) });
      const lines = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((n) => pic.irqLine(n));
      const ports = bus(log, pic.portRanges());
      return {
        log,
        apply(op) {
          if (op.kind === "out") ports.out(op.port, op.value);
          else if (op.kind === "in") ports.in(op.port);
          else if (op.kind === "host") {
            if (op.action === 3) log.push(`ack ${pic.hasPendingInterrupt() ? pic.acknowledge() : "none"}`);
            else lines[op.value % lines.length]!.setLevel(op.action === 0);
          }
        },
        save: () => [pic.saveState()],
        load([p]) {
          pic.loadState(p!);
        },
      };
    },
  },
  pit: {
    ports: [0x40, 0x41, 0x42, 0x43, 0x61],
    maxAdvance: 20_000_000,
    build: () => {
      const log: string[] = [];
      const clock = new VirtualClock();
      const pit = new Pit8254({ clock, irq: irq(log, "irq0") });
      const ports = bus(log, pit.portRanges());
      return {
        log,
        apply(op) {
          if (clockOps(clock, op)) return;
          if (op.kind === "out") ports.out(op.port, op.value);
          else if (op.kind === "in") ports.in(op.port);
          else if (op.kind === "host") log.push(`out${op.action % 3} ${pit.output((op.action % 3) as 0 | 1 | 2)}`);
        },
        save: () => [clock.saveState(), pit.saveState()],
        load([c, p]) {
          clock.loadState(c!);
          pit.loadState(p!);
        },
      };
    },
  },
  cmos: {
    ports: [0x70, 0x71],
    maxAdvance: 700_000_000,
    build: () => {
      const log: string[] = [];
      const clock = new VirtualClock();
      const rtc = new CmosRtc({ clock, irq: irq(log, "irq8"), startTime: Date.UTC(2024, 1, 29, 23, 59, 58, 500), memoryBytes: 32 << 20 });
      const ports = bus(log, rtc.portRanges());
      return {
        log,
        apply(op) {
          if (clockOps(clock, op)) return;
          if (op.kind === "out") ports.out(op.port, op.port === 0x70 ? [0x0a, 0x0b, 0x0c, 0x00, 0x02, 0x04, 0x01, 0x40][op.value & 7]! | (op.value & 0x80) : op.value);
          else if (op.kind === "in") ports.in(op.port);
          else log.push(`nmi ${rtc.nmiEnabled}`);
        },
        save: () => [clock.saveState(), rtc.saveState()],
        load([c, r]) {
          clock.loadState(c!);
          rtc.loadState(r!);
        },
      };
    },
  },
  "system control": {
    ports: [0x60, 0x64, 0x92],
    maxAdvance: 1,
    build: () => {
      const log: string[] = [];
      const gate = new A20Gate({ setA20: (on) => log.push(`A20 ${on}`) });
      const port92 = new Port92({ a20: gate.input(), onReset: () => log.push("reset via 0x92") });
      const kbc = new Kbc8042({ a20: gate.input(), onReset: () => log.push("reset via 8042") });
      const ports = bus(log, [...port92.portRanges(), ...kbc.portRanges()]);
      return {
        log,
        apply(op) {
          if (op.kind === "out") ports.out(op.port, op.port === 0x64 ? [0x20, 0x60, 0xaa, 0xd0, 0xd1, 0xdd, 0xdf, 0xfe, 0xad, 0xae, 0xc0][op.value % 11]! : op.value);
          else if (op.kind === "in") ports.in(op.port);
          else log.push(`A20 now ${gate.enabled}`);
        },
        save: () => [gate.saveState(), port92.saveState(), kbc.saveState()],
        load([g, p, k]) {
          gate.loadState(g!);
          port92.loadState(p!);
          kbc.loadState(k!);
        },
      };
    },
  },
  "debug console": {
    ports: [0xe9, 0x402],
    maxAdvance: 1,
    build: () => {
      const log: string[] = [];
      const console = new DebugConsole({ transmit: (b) => log.push(`tx ${b}`) });
      const ports = bus(log, console.portRanges());
      return {
        log,
        apply(op) {
          if (op.kind === "out") ports.out(op.port, op.value);
          else if (op.kind === "in") ports.in(op.port);
        },
        save: () => [console.saveState()],
        load([d]) {
          console.loadState(d!);
        },
      };
    },
  },
};

function opArb(ports: readonly number[], maxAdvance: number): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("out" as const), port: fc.constantFrom(...ports), value: fc.integer({ min: 0, max: 255 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("in" as const), port: fc.constantFrom(...ports) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("advance" as const), ns: fc.integer({ min: 0, max: maxAdvance }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("host" as const), action: fc.integer({ min: 0, max: 3 }), value: fc.integer({ min: 0, max: 255 }) }) },
  );
}

/** A UART (and its peers) first programmed into a busy state, so the random part starts mid-activity. */
const WARM_UP: Record<string, readonly Op[]> = {
  uart: [
    { kind: "out", port: 0x3fb, value: 0x80 },
    { kind: "out", port: 0x3f8, value: 1 },
    { kind: "out", port: 0x3fb, value: 0x03 },
    { kind: "out", port: 0x3fa, value: 0xc7 },
    { kind: "out", port: 0x3f9, value: 0x0f },
    { kind: "out", port: 0x3fc, value: 0x0b },
    { kind: "host", action: 0, value: 0x41 },
    { kind: "host", action: 0, value: 0x42 },
  ],
  pic: [
    { kind: "out", port: 0x20, value: 0x11 },
    { kind: "out", port: 0x21, value: 0x20 },
    { kind: "out", port: 0x21, value: 0x04 },
    { kind: "out", port: 0x21, value: 0x01 },
    { kind: "host", action: 0, value: 1 },
  ],
  pit: [
    { kind: "out", port: 0x43, value: 0x34 },
    { kind: "out", port: 0x40, value: 0xa9 },
    { kind: "out", port: 0x40, value: 0x04 },
    { kind: "out", port: 0x43, value: 0xb6 },
    { kind: "out", port: 0x42, value: 0x00 },
    { kind: "out", port: 0x42, value: 0x10 },
    { kind: "out", port: 0x61, value: 0x01 },
    { kind: "advance", ns: 1_234_567 },
  ],
  cmos: [
    { kind: "out", port: 0x70, value: 0 }, // register A
    { kind: "out", port: 0x71, value: 0x26 },
    { kind: "out", port: 0x70, value: 1 }, // register B: PIE, UIE
    { kind: "out", port: 0x71, value: 0x52 },
    { kind: "advance", ns: 600_000_000 },
  ],
  "system control": [
    { kind: "out", port: 0x92, value: 0x02 },
    { kind: "out", port: 0x64, value: 4 }, // 0xD1: the next data byte is the output port
  ],
  "debug console": [],
};

describe("device state round trips: a device loaded into a fresh instance behaves identically afterwards", { timeout: 60_000 }, () => {
  it.each(Object.keys(RIGS))("%s", (name) => {
    const rig = RIGS[name]!;
    const ops = fc.array(opArb(rig.ports, rig.maxAdvance), { maxLength: 40 });
    fc.assert(
      fc.property(ops, ops, (before, after) => {
        const original = rig.build();
        for (const op of [...WARM_UP[name]!, ...before]) original.apply(op);
        const states = original.save();
        const copy = rig.build();
        copy.load(states);
        expect(copy.save()).toEqual(states);
        original.log.length = 0;
        copy.log.length = 0;
        for (const op of after) {
          original.apply(op);
          copy.apply(op);
        }
        expect(copy.log).toEqual(original.log);
        expect(copy.save()).toEqual(original.save());
      }),
      { numRuns: 150 },
    );
  });

  it("a UART loaded mid-reception delivers the rest of the FIFO, its timeout interrupt included", () => {
    const original = RIGS.uart!.build();
    for (const op of WARM_UP.uart!) original.apply(op);
    const copy = RIGS.uart!.build();
    copy.load(original.save());
    copy.log.length = 0;
    // Four character times at 115200 8N1 later the timeout interrupt is raised; then read the FIFO.
    copy.apply({ kind: "advance", ns: 400_000 });
    for (const port of [0x3fa, 0x3f8, 0x3f8, 0x3fd]) copy.apply({ kind: "in", port });
    // IIR 0xCC: character timeout with FIFOs on (the restored timer fired); then both bytes; LSR 0x60: empty.
    expect(copy.log).toEqual(["in 3fa = 204", "in 3f8 = 65", "in 3f8 = 66", "in 3fd = 96"]);
  });
});

describe("bad device state is refused and changes nothing", () => {
  function devices() {
    const clock = new VirtualClock();
    const gate = new A20Gate({ setA20() {} });
    return [
      new Uart16550({ transmit() {} }, { clock }),
      new Pic8259Pair(),
      new Pit8254({ clock }),
      new CmosRtc({ clock }),
      gate,
      new Port92({ a20: gate.input() }),
      new Kbc8042({ a20: gate.input() }),
      new DebugConsole({ transmit() {} }),
      clock,
    ];
  }

  it.each(devices().map((device) => [device.constructor.name, device] as const))("%s: truncations, another device's state, and values out of range", (_name, device) => {
    const state = device.saveState();
    const others = devices()
      .filter((other) => other.constructor !== device.constructor)
      .map((other) => other.saveState());
    const bad: Uint8Array[] = [];
    for (let length = 0; length < state.length; length++) bad.push(state.subarray(0, length));
    bad.push(...others);
    const longer = new Uint8Array(state.length + 8);
    longer.set(state);
    longer[6] = state[6]! + 1; // one more value than the device reads
    bad.push(longer);
    const newer = state.slice();
    newer[4] = 2; // version 2
    bad.push(newer);
    if (state.length > 8) {
      // (a clock's time may be fractional, so 0.5 is only wrong for the others)
      for (const value of device instanceof VirtualClock ? [Number.NaN, -1, Number.POSITIVE_INFINITY] : [Number.NaN, -1e300, 1e300, 0.5]) {
        const wrong = state.slice();
        new DataView(wrong.buffer).setFloat64(8, value, true);
        bad.push(wrong);
      }
    }
    for (const bytes of bad) {
      let error: unknown;
      try {
        device.loadState(bytes);
      } catch (caught) {
        error = caught;
      }
      expect(isDevicesError(error) && error.code, `accepted ${bytes.length} bytes`).toBe("ERR_DEVICES_INVALID_STATE");
      expect(device.saveState()).toEqual(state);
    }
  });

  it("a PIT state with an impossible count is refused, naming the field", () => {
    const clock = new VirtualClock();
    const pit = new Pit8254({ clock });
    const state = pit.saveState();
    new DataView(state.buffer).setFloat64(8 + 4 * 8, 0x20000, true); // counter 0's count register
    expect(() => pit.loadState(state)).toThrow(/counter 0 count register must be an integer 1-65536/);
  });
});
