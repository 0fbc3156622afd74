/**
 * The Intel 8254 programmable interval timer at ports 0x40-0x43, clocked at 1.193182 MHz,
 * and the PC's port 0x61 (system control port B), which gates channel 2 and reads its
 * output. Counters and outputs are computed from the clock when asked, not ticked, so a
 * channel costs nothing between accesses; channel 0's output drives IRQ 0 through a timer
 * armed for its next transition.
 *
 * One simplification against the datasheet: a count written to a counter starts counting at
 * the moment of the write, not on the next input clock edge (a difference under one 838 ns
 * tick). Everything else — the six modes, gate behaviour, count reload points, latch and
 * read-back commands, binary and BCD counting, and the lo/hi byte sequencing — follows the
 * 8254 datasheet.
 */

import type { Clock } from "./clock.js";
import { packState, StateReader, TrackedTimer } from "./state.js";
import { DISCONNECTED_IRQ, type DevicePortRange, type IrqLine, type PortHandler } from "./interfaces.js";

/** The PC's PIT input clock, Hz (14.31818 MHz / 12). */
export const PIT_FREQUENCY = 1_193_182;
const NS_PER_SECOND = 1_000_000_000;
/** Port 0x61 bit 4 toggles with each DRAM refresh request, every 15.085 µs. */
const REFRESH_PERIOD_NS = 15_085;

/** Whole PIT ticks in `nanoseconds` (exact for any ns count below 2^53). */
function ticksIn(nanoseconds: number): number {
  const seconds = Math.floor(nanoseconds / NS_PER_SECOND);
  const rest = nanoseconds - seconds * NS_PER_SECOND;
  return seconds * PIT_FREQUENCY + Math.floor((rest * PIT_FREQUENCY) / NS_PER_SECOND);
}

/** The first whole ns at which `ticks` ticks have elapsed. */
function nanosecondsFor(ticks: number): number {
  const seconds = Math.floor(ticks / PIT_FREQUENCY);
  const rest = ticks - seconds * PIT_FREQUENCY;
  return seconds * NS_PER_SECOND + Math.ceil((rest * NS_PER_SECOND) / PIT_FREQUENCY);
}

const toBcd = (value: number) => ((value / 1000) % 10 << 12) | ((value / 100) % 10 << 8) | ((value / 10) % 10 << 4) | value % 10;
/** BCD digits to a number; invalid digits (A-F) count with their binary weight, as the decade counters would see them. */
const fromBcd = (value: number) => (value >> 12) * 1000 + ((value >> 8) & 15) * 100 + ((value >> 4) & 15) * 10 + (value & 15);

const ACCESS_LATCH = 0;
const ACCESS_LOW = 1;
const ACCESS_HIGH = 2;
const ACCESS_LOW_HIGH = 3;

/** One counter of the 8254. */
class PitChannel {
  /** Mode as programmed (0-7; 6 and 7 act as 2 and 3). Power-on: mode 3, nothing counting, OUT high. */
  private programmedMode = 3;
  mode = 3;
  private bcd = false;
  private access = ACCESS_LOW_HIGH;

  /** Count register (CR) as written, in counting units: 1..65536 (binary) or 1..10000 (BCD). */
  private countRegister = 0x10000;
  /** Low byte written so far of a lo/hi count. */
  private writeLowByte = 0;
  private writeHighNext = false;
  private readHighNext = false;

  /** Count latch (OL): -1 when not latched. */
  private latchedCount = -1;
  private latchedHighNext = false;
  private latchedStatus = -1;

  private nullCount = true;
  /** A complete count has been written since the last control word. */
  private hasCount = false;
  gate: boolean;

  /** The counting element (CE) state: initial count N, counting from `startTime`/`startTicks`. */
  private initialCount = 0x10000;
  /** True once a count has been loaded into CE since the last control word (or trigger for modes 1/5). */
  private loaded = false;
  /** False while a low gate holds counting (modes 0, 2, 3, 4) or before the first count. */
  private running = false;
  private startTime = 0;
  private startTicks = 0;
  /** CE contents while not counting. */
  private heldCount = 0;
  /** Modes 2 and 3: a new count waiting for the end of the current period / half-period. */
  private pendingCount = -1;
  private pendingAtTicks = 0;
  private pendingStartTicks = 0;

  constructor(gate: boolean) {
    this.gate = gate;
  }

  /** Every field, in a fixed order, for the saved state. */
  snapshot(): number[] {
    return [
      this.programmedMode,
      this.mode,
      +this.bcd,
      this.access,
      this.countRegister,
      this.writeLowByte,
      +this.writeHighNext,
      +this.readHighNext,
      this.latchedCount,
      +this.latchedHighNext,
      this.latchedStatus,
      +this.nullCount,
      +this.hasCount,
      +this.gate,
      this.initialCount,
      +this.loaded,
      +this.running,
      this.startTime,
      this.startTicks,
      this.heldCount,
      this.pendingCount,
      this.pendingAtTicks,
      this.pendingStartTicks,
    ];
  }

  /** Reads and checks the fields of `snapshot()`; `restore` applies them. */
  static read(r: StateReader, name: string): Record<string, number | boolean> {
    const fields = {
      programmedMode: r.int(`${name} programmed mode`, 0, 7),
      mode: r.int(`${name} mode`, 0, 5),
      bcd: r.bool(`${name} BCD`),
      access: r.int(`${name} access`, 0, 3),
      countRegister: r.int(`${name} count register`, 1, 0x10000),
      writeLowByte: r.int(`${name} low byte`, 0, 0xff),
      writeHighNext: r.bool(`${name} write high next`),
      readHighNext: r.bool(`${name} read high next`),
      latchedCount: r.int(`${name} latched count`, -1, 0xffff),
      latchedHighNext: r.bool(`${name} latched high next`),
      latchedStatus: r.int(`${name} latched status`, -1, 0xff),
      nullCount: r.bool(`${name} null count`),
      hasCount: r.bool(`${name} has count`),
      gate: r.bool(`${name} gate`),
      initialCount: r.int(`${name} initial count`, 1, 0x10000),
      loaded: r.bool(`${name} loaded`),
      running: r.bool(`${name} running`),
      startTime: r.number(`${name} start time`),
      startTicks: r.number(`${name} start ticks`),
      heldCount: r.int(`${name} held count`, 0, 0x10000),
      pendingCount: r.int(`${name} pending count`, -1, 0x10000),
      pendingAtTicks: r.number(`${name} pending at`),
      pendingStartTicks: r.number(`${name} pending start`),
    };
    return fields;
  }

  restore(fields: Record<string, number | boolean>): void {
    Object.assign(this, fields);
  }

  private get modulus(): number {
    return this.bcd ? 10000 : 0x10000;
  }

  /** Elapsed ticks of the current counting segment at `now`. */
  private elapsed(now: number): number {
    return this.running ? this.startTicks + ticksIn(now - this.startTime) : this.startTicks;
  }

  private timeOfTicks(ticks: number): number {
    return this.startTime + nanosecondsFor(ticks - this.startTicks);
  }

  /** Applies a pending reload whose moment has come. */
  sync(now: number): void {
    if (this.pendingCount < 0 || !this.running) return;
    if (this.elapsed(now) < this.pendingAtTicks) return;
    this.startTime = this.timeOfTicks(this.pendingAtTicks);
    this.startTicks = this.pendingStartTicks;
    this.initialCount = this.pendingCount;
    this.pendingCount = -1;
    this.nullCount = false;
  }

  /** OUT at `now` (call `sync` first). */
  output(now: number): boolean {
    if (!this.loaded) return this.mode !== 0; // after a control word: low in mode 0, high otherwise
    const n = this.initialCount;
    const e = this.elapsed(now);
    switch (this.mode) {
      case 0:
      case 1:
        return e >= n;
      case 2:
        if (!this.gate) return true;
        return e % n !== n - 1;
      case 3:
        if (!this.gate) return true;
        return e % n < Math.ceil(n / 2);
      default: // 4, 5
        return e !== n;
    }
  }

  /** The counting element's value at `now`, 0..modulus-1 (call `sync` first). */
  count(now: number): number {
    if (!this.loaded) return this.heldCount;
    const n = this.initialCount;
    const e = this.elapsed(now);
    const m = this.modulus;
    switch (this.mode) {
      case 2:
        return (n - (e % n)) % m;
      case 3: {
        // Counts down by two; an odd count spends one extra clock in the high half.
        const half = Math.ceil(n / 2);
        const phase = e % n;
        let value: number;
        if (n % 2 === 0) value = n - 2 * (phase % half);
        else if (phase < half) value = phase === 0 ? n : n + 1 - 2 * phase;
        else value = phase === half ? n : n - 1 - 2 * (phase - half);
        return value % m;
      }
      default: // 0, 1, 4, 5: count down and wrap past zero
        return (((n - e) % m) + m) % m;
    }
  }

  /** Elapsed-tick value of OUT's next change after `now`, or -1 if none is coming. */
  nextTransitionTicks(now: number): number {
    if (!this.loaded || !this.running) return -1;
    const n = this.initialCount;
    const e = this.elapsed(now);
    switch (this.mode) {
      case 0:
      case 1:
        return e < n ? n : -1;
      case 2: {
        if (n < 2) return -1;
        const phase = e % n;
        return phase < n - 1 ? e + (n - 1 - phase) : e + 1;
      }
      case 3: {
        const half = Math.ceil(n / 2);
        if (n - half === 0) return -1;
        const phase = e % n;
        return phase < half ? e + (half - phase) : e + (n - phase);
      }
      default:
        return e < n ? n : e === n ? n + 1 : -1;
    }
  }

  /** The clock time of OUT's next change, or -1. */
  nextTransitionTime(now: number): number {
    const ticks = this.nextTransitionTicks(now);
    return ticks < 0 ? -1 : this.timeOfTicks(ticks);
  }

  writeControl(value: number, now: number): void {
    this.sync(now);
    const access = (value >> 4) & 3;
    if (access === ACCESS_LATCH) {
      this.latchCount(now);
      return;
    }
    // Programming a counter resets its control logic: byte sequencing, latches, OUT.
    if (this.loaded) this.heldCount = this.count(now);
    this.access = access;
    this.programmedMode = (value >> 1) & 7;
    this.mode = this.programmedMode > 5 ? this.programmedMode - 4 : this.programmedMode;
    this.bcd = (value & 1) !== 0;
    this.loaded = false;
    this.running = false;
    this.pendingCount = -1;
    this.nullCount = true;
    this.hasCount = false;
    this.writeHighNext = false;
    this.readHighNext = false;
    this.latchedCount = -1;
    this.latchedStatus = -1;
  }

  latchCount(now: number): void {
    if (this.latchedCount >= 0) return; // a second latch before the first is read is ignored
    this.sync(now);
    this.latchedCount = this.encode(this.count(now));
    this.latchedHighNext = false;
  }

  latchStatus(now: number): void {
    if (this.latchedStatus >= 0) return;
    this.sync(now);
    this.latchedStatus = (this.output(now) ? 0x80 : 0) | (this.nullCount ? 0x40 : 0) | (this.access << 4) | (this.programmedMode << 1) | (this.bcd ? 1 : 0);
  }

  private encode(count: number): number {
    return this.bcd ? toBcd(count) : count;
  }

  read(now: number): number {
    if (this.latchedStatus >= 0) {
      const status = this.latchedStatus;
      this.latchedStatus = -1;
      return status;
    }
    if (this.latchedCount >= 0) {
      const latched = this.latchedCount;
      if (this.access === ACCESS_LOW) {
        this.latchedCount = -1;
        return latched & 0xff;
      }
      if (this.access === ACCESS_HIGH) {
        this.latchedCount = -1;
        return latched >> 8;
      }
      if (!this.latchedHighNext) {
        this.latchedHighNext = true;
        return latched & 0xff;
      }
      this.latchedCount = -1;
      return latched >> 8;
    }
    this.sync(now);
    const value = this.encode(this.count(now));
    if (this.access === ACCESS_LOW) return value & 0xff;
    if (this.access === ACCESS_HIGH) return value >> 8;
    this.readHighNext = !this.readHighNext;
    return this.readHighNext ? value & 0xff : value >> 8;
  }

  write(value: number, now: number): void {
    this.sync(now);
    let raw: number;
    if (this.access === ACCESS_LOW) {
      raw = value;
    } else if (this.access === ACCESS_HIGH) {
      raw = value << 8;
    } else if (!this.writeHighNext) {
      this.writeLowByte = value;
      this.writeHighNext = true;
      // Mode 0: writing the first byte stops the count (OUT goes low until the count is complete).
      if (this.mode === 0 && this.loaded) {
        this.heldCount = this.count(now);
        this.loaded = false;
        this.running = false;
      }
      return;
    } else {
      raw = this.writeLowByte | (value << 8);
      this.writeHighNext = false;
    }
    const units = this.bcd ? fromBcd(raw) : raw;
    this.countRegister = units === 0 ? this.modulus : units;
    this.nullCount = true;
    this.hasCount = true;
    this.countWritten(now);
  }

  private countWritten(now: number): void {
    switch (this.mode) {
      case 0:
      case 4:
        // Loaded at once; counting waits for the gate.
        this.start(now, this.countRegister, 0);
        return;
      case 1:
      case 5:
        // Loaded on the next gate trigger.
        return;
      default: {
        // Modes 2 and 3: the first count starts counting; later ones wait for the reload point.
        if (!this.loaded || !this.running) {
          this.start(now, this.countRegister, 0);
          return;
        }
        const n = this.initialCount;
        const e = this.elapsed(now);
        const phase = e % n;
        if (this.mode === 2) {
          this.pendingAtTicks = e - phase + n;
          this.pendingStartTicks = 0;
        } else {
          const half = Math.ceil(n / 2);
          const inHighHalf = phase < half;
          this.pendingAtTicks = e - phase + (inHighHalf ? half : n);
          // After a reload at the end of the high half the low half follows.
          this.pendingStartTicks = inHighHalf ? Math.ceil(this.countRegister / 2) : 0;
        }
        this.pendingCount = this.countRegister;
      }
    }
  }

  private start(now: number, count: number, startTicks: number): void {
    this.initialCount = count;
    this.loaded = true;
    this.nullCount = false;
    this.pendingCount = -1;
    this.startTime = now;
    this.startTicks = startTicks;
    // Modes 0/2/3/4 count only while the gate is high; 1/5 were just triggered.
    this.running = this.gate || this.mode === 1 || this.mode === 5;
  }

  setGate(high: boolean, now: number): void {
    if (high === this.gate) return;
    this.sync(now);
    const e = this.elapsed(now);
    this.gate = high;
    switch (this.mode) {
      case 0:
      case 4:
        // The gate suspends counting without losing the count.
        if (!this.loaded) return;
        this.startTicks = e;
        this.startTime = now;
        this.running = high;
        return;
      case 1:
      case 5:
        // A rising gate (re)triggers: CR is loaded into CE.
        if (high && this.hasCount) this.start(now, this.countRegister, 0);
        return;
      default:
        // Modes 2/3: a low gate stops counting and forces OUT high; a rising gate reloads.
        if (!this.loaded) return;
        if (high) {
          this.start(now, this.pendingCount >= 0 ? this.pendingCount : this.countRegister, 0);
        } else {
          this.heldCount = this.count(now);
          this.startTicks = e;
          this.startTime = now;
          this.running = false;
        }
    }
  }
}

export interface Pit8254Options {
  readonly clock: Clock;
  /** Where channel 0's output goes: IRQ 0. */
  readonly irq?: IrqLine;
}

class PitPorts implements PortHandler {
  constructor(private readonly pit: Pit8254) {}
  readPort(offset: number): number {
    return this.pit.readRegister(offset & 3);
  }
  writePort(offset: number, value: number): void {
    this.pit.writeRegister(offset & 3, value & 0xff);
  }
}

class PortB implements PortHandler {
  constructor(private readonly pit: Pit8254) {}
  readPort(): number {
    return this.pit.readPortB();
  }
  writePort(_offset: number, value: number): void {
    this.pit.writePortB(value & 0xff);
  }
}

/**
 * The 8254 PIT (ports 0x40-0x43) and port 0x61. Until the guest programs a channel it does
 * not count (the datasheet leaves the power-on state undefined), so IRQ 0 stays quiet.
 */
export class Pit8254 {
  private readonly clock: Clock;
  private readonly channels: readonly [PitChannel, PitChannel, PitChannel];
  private readonly irq: IrqLine;
  private readonly timer: TrackedTimer;
  /**
   * OUT of an unprogrammed counter is high. It is not announced at power-on: the PIC only
   * latches edges that come after it is initialised, and this keeps IRQ 0 quiet until then.
   */
  private irqLevel = true;
  /** Port 0x61 bits 0-3: gate 2, speaker data, parity and channel check enables. */
  private portBControl = 0;

  /** Ports 0x40-0x43: counters 0-2 and the control word. */
  readonly ports: PortHandler;
  /** Port 0x61. */
  readonly portB: PortHandler;

  constructor(options: Pit8254Options) {
    this.clock = options.clock;
    this.irq = options.irq ?? DISCONNECTED_IRQ;
    // Channels 0 and 1 have their gates tied high on a PC; channel 2's is port 0x61 bit 0.
    this.channels = [new PitChannel(true), new PitChannel(true), new PitChannel(false)];
    this.timer = new TrackedTimer(this.clock, () => this.updateIrq());
    this.ports = new PitPorts(this);
    this.portB = new PortB(this);
  }

  /** The port ranges to register: 0x40-0x43 and 0x61, byte-wide. */
  portRanges(): DevicePortRange[] {
    return [
      { port: 0x40, count: 4, owner: "pit", device: this.ports, maxAccessSize: 1 },
      { port: 0x61, count: 1, owner: "pit-port-b", device: this.portB, maxAccessSize: 1 },
    ];
  }

  /** OUT of channel `index` (0-2) now. */
  output(index: 0 | 1 | 2): boolean {
    const now = this.clock.now();
    const channel = this.channels[index];
    channel.sync(now);
    return channel.output(now);
  }

  /** @internal */
  readRegister(register: number): number {
    if (register === 3) return 0xff; // the control word register cannot be read: the bus floats
    return this.channels[register]!.read(this.clock.now());
  }

  /** @internal */
  writeRegister(register: number, value: number): void {
    const now = this.clock.now();
    if (register < 3) {
      this.channels[register]!.write(value, now);
      if (register === 0) this.updateIrq();
      return;
    }
    const select = value >> 6;
    if (select === 3) {
      // Read-back: bit 5 clear latches counts, bit 4 clear latches status, bits 1-3 pick counters.
      for (let i = 0; i < 3; i++) {
        if (!(value & (2 << i))) continue;
        const channel = this.channels[i]!;
        if (!(value & 0x20)) channel.latchCount(now);
        if (!(value & 0x10)) channel.latchStatus(now);
      }
      return;
    }
    this.channels[select]!.writeControl(value, now);
    if (select === 0) this.updateIrq();
  }

  /** @internal */
  readPortB(): number {
    const now = this.clock.now();
    const channel2 = this.channels[2];
    channel2.sync(now);
    const refresh = Math.floor(now / REFRESH_PERIOD_NS) & 1;
    return this.portBControl | (refresh << 4) | (channel2.output(now) ? 0x20 : 0);
  }

  /** @internal */
  writePortB(value: number): void {
    this.portBControl = value & 0x0f;
    this.channels[2].setGate((value & 1) !== 0, this.clock.now());
  }

  /** The three counters, port 0x61, the IRQ 0 level and the armed timer, for a saved state (version 1). */
  saveState(): Uint8Array {
    return packState("8254", 1, [
      ...this.channels.flatMap((channel) => channel.snapshot()),
      this.portBControl,
      +this.irqLevel,
      this.timer.deadline,
    ]);
  }

  /**
   * Restores a `saveState()` taken on the same clock time base (restore the clock first).
   * Bad input throws `ERR_DEVICES_INVALID_STATE` and changes nothing.
   */
  loadState(bytes: Uint8Array): void {
    const r = new StateReader("PIT", "8254", 1, bytes);
    const channels = [0, 1, 2].map((i) => PitChannel.read(r, `counter ${i}`));
    const portBControl = r.int("port 0x61 control", 0, 0x0f);
    const irqLevel = r.bool("IRQ 0 level");
    const deadline = r.deadline("timer deadline");
    r.done();
    this.channels.forEach((channel, i) => channel.restore(channels[i]!));
    this.portBControl = portBControl;
    this.timer.restore(deadline);
    if (irqLevel !== this.irqLevel) {
      this.irqLevel = irqLevel;
      this.irq.setLevel(irqLevel);
    }
  }

  /** Machine reset: every channel back to its unprogrammed state, port 0x61 cleared. */
  reset(): void {
    const now = this.clock.now();
    this.portBControl = 0;
    for (const channel of this.channels) channel.writeControl(0x36, now); // the power-on state: mode 3, lo/hi, binary, no count
    this.channels[2].setGate(false, now);
    this.updateIrq();
  }

  /** Sets IRQ 0 to channel 0's output now and arms the timer for its next change. */
  private updateIrq(): void {
    const now = this.clock.now();
    const channel = this.channels[0];
    channel.sync(now);
    const level = channel.output(now);
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.setLevel(level);
    }
    const next = channel.nextTransitionTime(now);
    if (next < 0) this.timer.disarm();
    else this.timer.arm(next);
  }
}
