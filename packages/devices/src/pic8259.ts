/**
 * The PC's two cascaded Intel 8259A programmable interrupt controllers, with the PIIX-style
 * edge/level control registers (ELCR) at 0x4D0/0x4D1. Register behaviour follows the 8259A
 * datasheet: ICW1-ICW4, OCW1-OCW3, fully nested and rotating priorities, specific and
 * non-specific EOI, automatic EOI, special mask mode, special fully nested mode, poll, and
 * the spurious IRQ 7 / IRQ 15 of an interrupt that went away before it was acknowledged.
 */

import { DevicesError } from "./errors.js";
import type { DevicePortRange, IrqLine, PortHandler } from "./interfaces.js";
import { packState, StateReader } from "./state.js";

const STEP_READY = 0;
const STEP_ICW2 = 1;
const STEP_ICW3 = 2;
const STEP_ICW4 = 3;

/** The slave's INT output drives this master input. */
const CASCADE_IRQ = 2;

/** One 8259A. */
class Pic8259 {
  /** Edge-triggered requests latched on a rising edge (level-triggered ones are derived from `inputs`). */
  private edgeRequests = 0;
  /** Input pin levels, one bit per IR line. */
  private inputs = 0;
  inService = 0;
  interruptMask = 0;
  vectorBase = 0;
  /** The IR line with the lowest priority; priorities rotate from it. */
  private lowestPriority = 7;
  private readInService = false;
  private pollPending = false;
  private specialMask = false;
  private autoEoi = false;
  private rotateOnAutoEoi = false;
  private specialFullyNested = false;
  private levelTriggeredAll = false;
  single = false;
  private needsIcw4 = false;
  private initStep = STEP_READY;
  /** Master: which IR lines have slaves. Slave: its own ID (bits 0-2). */
  cascade = 0;
  /** ELCR bits: 1 = that line is level-triggered. */
  private edgeLevelControl = 0;

  constructor(
    readonly isMaster: boolean,
    /** ELCR bits that exist (IRQ 0, 1, 2, 8 and 13 are always edge-triggered on a PC). */
    private readonly elcrMask: number,
  ) {
    this.reset();
  }

  reset(): void {
    this.edgeRequests = 0;
    this.inService = 0;
    this.interruptMask = 0;
    this.vectorBase = 0;
    this.lowestPriority = 7;
    this.readInService = false;
    this.pollPending = false;
    this.specialMask = false;
    this.autoEoi = false;
    this.rotateOnAutoEoi = false;
    this.specialFullyNested = false;
    this.levelTriggeredAll = false;
    this.single = false;
    this.needsIcw4 = false;
    this.initStep = STEP_READY;
    this.cascade = this.isMaster ? 1 << CASCADE_IRQ : CASCADE_IRQ;
    this.edgeLevelControl = 0;
  }

  snapshot(): number[] {
    return [
      this.edgeRequests,
      this.inputs,
      this.inService,
      this.interruptMask,
      this.vectorBase,
      this.lowestPriority,
      +this.readInService,
      +this.pollPending,
      +this.specialMask,
      +this.autoEoi,
      +this.rotateOnAutoEoi,
      +this.specialFullyNested,
      +this.levelTriggeredAll,
      +this.single,
      +this.needsIcw4,
      this.initStep,
      this.cascade,
      this.edgeLevelControl,
    ];
  }

  /** Reads and checks the fields of `snapshot()`; `restore` applies them. */
  read(r: StateReader, name: string): Record<string, number | boolean> {
    return {
      edgeRequests: r.int(`${name} edge requests`, 0, 0xff),
      inputs: r.int(`${name} inputs`, 0, 0xff),
      inService: r.int(`${name} ISR`, 0, 0xff),
      interruptMask: r.int(`${name} IMR`, 0, 0xff),
      vectorBase: r.bits(`${name} vector base`, 0xf8),
      lowestPriority: r.int(`${name} lowest priority`, 0, 7),
      readInService: r.bool(`${name} read ISR`),
      pollPending: r.bool(`${name} poll`),
      specialMask: r.bool(`${name} special mask`),
      autoEoi: r.bool(`${name} auto EOI`),
      rotateOnAutoEoi: r.bool(`${name} rotate on auto EOI`),
      specialFullyNested: r.bool(`${name} special fully nested`),
      levelTriggeredAll: r.bool(`${name} level triggered`),
      single: r.bool(`${name} single`),
      needsIcw4: r.bool(`${name} needs ICW4`),
      initStep: r.int(`${name} initialisation step`, STEP_READY, STEP_ICW4),
      cascade: r.int(`${name} cascade`, 0, 0xff),
      edgeLevelControl: r.bits(`${name} ELCR`, this.elcrMask),
    };
  }

  restore(fields: Record<string, number | boolean>): void {
    Object.assign(this, fields);
  }

  private get levelMask(): number {
    return this.levelTriggeredAll ? 0xff : this.edgeLevelControl;
  }

  /** IRR as the datasheet defines it. */
  get requests(): number {
    const level = this.levelMask;
    return (this.edgeRequests & ~level) | (this.inputs & level);
  }

  setInput(line: number, high: boolean): void {
    const bit = 1 << line;
    const wasHigh = (this.inputs & bit) !== 0;
    if (high) {
      this.inputs |= bit;
      if (!wasHigh) this.edgeRequests |= bit;
    } else {
      this.inputs &= ~bit;
      // The request must stay high until acknowledged; if it drops, the request is gone
      // (and an acknowledge already under way becomes a spurious IRQ 7).
      this.edgeRequests &= ~bit;
    }
  }

  /** The highest-priority line set in `bits`, or -1. */
  private highest(bits: number): number {
    for (let p = 0; p < 8; p++) {
      const line = (this.lowestPriority + 1 + p) & 7;
      if (bits & (1 << line)) return line;
    }
    return -1;
  }

  private priority(line: number): number {
    return (line - this.lowestPriority - 1) & 7;
  }

  /** The line INT is raised for, or -1: the best unmasked request that beats everything in service. */
  pendingLine(): number {
    const candidates = this.requests & ~this.interruptMask;
    if (candidates === 0) return -1;
    const line = this.highest(candidates);
    let blocking = this.specialMask ? this.inService & ~this.interruptMask : this.inService;
    // Special fully nested mode: a slave's own in-service bit does not block its higher requests.
    if (this.isMaster && this.specialFullyNested) blocking &= ~this.cascade;
    const current = this.highest(blocking);
    return current < 0 || this.priority(line) < this.priority(current) ? line : -1;
  }

  /** INTA for `line`: the request moves to in-service (or, with auto-EOI, is done). */
  acknowledge(line: number): void {
    const bit = 1 << line;
    this.edgeRequests &= ~bit;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.lowestPriority = line;
    } else {
      this.inService |= bit;
    }
  }

  readPort(offset: number): number {
    if (this.pollPending) {
      // Poll: this read is the acknowledge; bit 7 says whether there was an interrupt.
      this.pollPending = false;
      const line = this.pendingLine();
      if (line < 0) return 0x07;
      this.acknowledge(line);
      return 0x80 | line;
    }
    if (offset & 1) return this.interruptMask;
    return this.readInService ? this.inService : this.requests;
  }

  writePort(offset: number, value: number): void {
    value &= 0xff;
    if (offset & 1) {
      this.writeData(value);
    } else if (value & 0x10) {
      this.writeIcw1(value);
    } else if (value & 0x08) {
      this.writeOcw3(value);
    } else {
      this.writeOcw2(value);
    }
  }

  writeEdgeLevelControl(value: number): void {
    const newlyEdge = this.edgeLevelControl & ~value & this.elcrMask;
    // A line that becomes edge-triggered needs a fresh rising edge.
    this.edgeRequests &= ~newlyEdge;
    this.edgeLevelControl = value & this.elcrMask;
  }

  readEdgeLevelControl(): number {
    return this.edgeLevelControl;
  }

  private writeIcw1(value: number): void {
    this.levelTriggeredAll = (value & 0x08) !== 0;
    this.single = (value & 0x02) !== 0;
    this.needsIcw4 = (value & 0x01) !== 0;
    // The datasheet's initialisation: edge sense reset, IMR cleared, IR7 lowest priority,
    // special mask off, status read set to IRR, slave address 7.
    this.edgeRequests = 0;
    this.inService = 0;
    this.interruptMask = 0;
    this.lowestPriority = 7;
    this.specialMask = false;
    this.readInService = false;
    this.pollPending = false;
    this.rotateOnAutoEoi = false;
    if (!this.isMaster) this.cascade = 7;
    if (!this.needsIcw4) {
      this.autoEoi = false;
      this.specialFullyNested = false;
    }
    this.initStep = STEP_ICW2;
  }

  private writeData(value: number): void {
    switch (this.initStep) {
      case STEP_ICW2:
        // In 8086 mode the low three bits come from the IR line.
        this.vectorBase = value & 0xf8;
        this.initStep = !this.single ? STEP_ICW3 : this.needsIcw4 ? STEP_ICW4 : STEP_READY;
        return;
      case STEP_ICW3:
        this.cascade = this.isMaster ? value : value & 7;
        this.initStep = this.needsIcw4 ? STEP_ICW4 : STEP_READY;
        return;
      case STEP_ICW4:
        // Bit 0 (8086 mode) and bits 2-3 (buffered mode) change nothing a guest can see here:
        // the vector is always delivered the 8086 way.
        this.autoEoi = (value & 0x02) !== 0;
        this.specialFullyNested = (value & 0x10) !== 0;
        this.initStep = STEP_READY;
        return;
      default:
        this.interruptMask = value; // OCW1
    }
  }

  private writeOcw2(value: number): void {
    const level = value & 7;
    switch (value >> 5) {
      case 0: // rotate in automatic EOI mode (clear)
        this.rotateOnAutoEoi = false;
        return;
      case 1: // non-specific EOI
      case 5: {
        // (rotate on non-specific EOI)
        const line = this.highest(this.inService);
        if (line < 0) return;
        this.inService &= ~(1 << line);
        if (value >> 5 === 5) this.lowestPriority = line;
        return;
      }
      case 3: // specific EOI
        this.inService &= ~(1 << level);
        return;
      case 4: // rotate in automatic EOI mode (set)
        this.rotateOnAutoEoi = true;
        return;
      case 6: // set priority: `level` becomes the lowest
        this.lowestPriority = level;
        return;
      case 7: // rotate on specific EOI
        this.inService &= ~(1 << level);
        this.lowestPriority = level;
        return;
      default: // 2: no operation
        return;
    }
  }

  private writeOcw3(value: number): void {
    if (value & 0x04) this.pollPending = true;
    if (value & 0x02) this.readInService = (value & 0x01) !== 0;
    if (value & 0x40) this.specialMask = (value & 0x20) !== 0;
  }
}

export interface Pic8259PairOptions {
  /**
   * Called when the master's INT output changes: true when an interrupt is waiting for the
   * CPU (the host asks for an interrupt window), false when it went away.
   */
  readonly onInterruptRequest?: (pending: boolean) => void;
}

/** Port handler for one chip's two ports. */
class ChipPorts implements PortHandler {
  constructor(
    private readonly pair: Pic8259Pair,
    private readonly chip: Pic8259,
  ) {}
  readPort(offset: number): number {
    const value = this.chip.readPort(offset);
    this.pair.update(); // a poll read is an acknowledge
    return value;
  }
  writePort(offset: number, value: number): void {
    this.chip.writePort(offset, value);
    this.pair.update();
  }
}

class EdgeLevelPorts implements PortHandler {
  constructor(
    private readonly pair: Pic8259Pair,
    private readonly chips: readonly [Pic8259, Pic8259],
  ) {}
  readPort(offset: number): number {
    return this.chips[offset & 1]!.readEdgeLevelControl();
  }
  writePort(offset: number, value: number): void {
    this.chips[offset & 1]!.writeEdgeLevelControl(value & 0xff);
    this.pair.update();
  }
}

class PicIrqLine implements IrqLine {
  constructor(
    private readonly pair: Pic8259Pair,
    private readonly irq: number,
    private readonly bit: number,
  ) {}
  setLevel(high: boolean): void {
    this.pair.setSource(this.irq, this.bit, high);
  }
}

/**
 * The master 8259A (ports 0x20-0x21, IRQ 0-7) with the slave (0xA0-0xA1, IRQ 8-15) on its
 * IR2, and the ELCR pair (0x4D0-0x4D1). Devices raise interrupts through `irqLine(irq)`;
 * the CPU side asks `hasPendingInterrupt()` and takes the vector with `acknowledge()`.
 *
 * Before the guest initialises them both chips behave as after an initialisation with
 * vector base 0, nothing masked, edge-triggered, the slave cascaded on IR2 (QEMU's reset
 * state; the datasheet leaves it undefined).
 */
export class Pic8259Pair {
  private readonly master = new Pic8259(true, 0xf8);
  private readonly slave = new Pic8259(false, 0xde);
  /** Per IRQ, one bit per device line driving it high (several devices may share a line). */
  private readonly sources = new Uint32Array(16);
  private readonly linesCreated = new Uint8Array(16);
  private slaveOutput = false;
  private output = false;
  private readonly onInterruptRequest: ((pending: boolean) => void) | undefined;

  /** Ports 0x20-0x21. */
  readonly masterPorts: PortHandler;
  /** Ports 0xA0-0xA1. */
  readonly slavePorts: PortHandler;
  /** Ports 0x4D0-0x4D1: bit n of 0x4D0 makes IRQ n level-triggered, 0x4D1 likewise for IRQ 8-15. */
  readonly edgeLevelPorts: PortHandler;

  constructor(options: Pic8259PairOptions = {}) {
    this.onInterruptRequest = options.onInterruptRequest;
    this.masterPorts = new ChipPorts(this, this.master);
    this.slavePorts = new ChipPorts(this, this.slave);
    this.edgeLevelPorts = new EdgeLevelPorts(this, [this.master, this.slave]);
  }

  /**
   * A new wire into input `irq` (0-15, not 2: on a PC that input is the cascade, and ISA's
   * IRQ 2 pin arrives as IRQ 9). Several lines into one input are OR-ed.
   */
  irqLine(irq: number): IrqLine {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new DevicesError("ERR_DEVICES_INVALID_IRQ", `there is no IRQ ${irq}: the PIC pair has IRQ 0-15`);
    if (irq === CASCADE_IRQ) throw new DevicesError("ERR_DEVICES_INVALID_IRQ", "IRQ 2 is the cascade from the slave PIC; ISA devices wired to IRQ 2 use IRQ 9");
    const bit = this.linesCreated[irq]!;
    if (bit >= 32) throw new DevicesError("ERR_DEVICES_INVALID_IRQ", `IRQ ${irq} already has 32 lines`);
    this.linesCreated[irq] = bit + 1;
    return new PicIrqLine(this, irq, bit);
  }

  /** True while the master's INT output is raised: an interrupt waits for the CPU. */
  hasPendingInterrupt(): boolean {
    return this.output;
  }

  /**
   * The CPU's interrupt acknowledge cycle: returns the vector and moves the interrupt to
   * in-service. When the request vanished in the meantime the answer is the spurious vector
   * of IR7 (master base + 7, or slave base + 7 for a slave request, with the master's IR2
   * in service), as on the real part.
   */
  acknowledge(): number {
    const master = this.master;
    const line = master.pendingLine();
    let vector: number;
    if (line < 0) {
      vector = master.vectorBase | 7;
    } else {
      master.acknowledge(line);
      if (!master.single && master.cascade & (1 << line)) {
        const slave = this.slave;
        if (slave.single || slave.cascade !== line) {
          vector = 0xff; // no slave answers to this cascade address: the data bus floats
        } else {
          const slaveLine = slave.pendingLine();
          if (slaveLine < 0) {
            vector = slave.vectorBase | 7;
          } else {
            slave.acknowledge(slaveLine);
            vector = slave.vectorBase | slaveLine;
          }
        }
      } else {
        vector = master.vectorBase | line;
      }
    }
    this.update();
    return vector;
  }

  /** The port ranges to register: master, slave and ELCR, byte-wide. */
  portRanges(): DevicePortRange[] {
    return [
      { port: 0x20, count: 2, owner: "pic-master", device: this.masterPorts, maxAccessSize: 1 },
      { port: 0xa0, count: 2, owner: "pic-slave", device: this.slavePorts, maxAccessSize: 1 },
      { port: 0x4d0, count: 2, owner: "pic-elcr", device: this.edgeLevelPorts, maxAccessSize: 1 },
    ];
  }

  /** Both chips' registers, the input wire levels and the outputs, for a saved state (version 1). */
  saveState(): Uint8Array {
    return packState("8259", 1, [...this.master.snapshot(), ...this.slave.snapshot(), ...this.sources, +this.slaveOutput, +this.output]);
  }

  /**
   * Restores a `saveState()`. The devices' wires keep their bit positions when the machine
   * is built the same way (the same `irqLine` calls in the same order). Bad input throws
   * `ERR_DEVICES_INVALID_STATE` and changes nothing; `onInterruptRequest` is told if the
   * output level changes.
   */
  loadState(bytes: Uint8Array): void {
    const r = new StateReader("PIC pair", "8259", 1, bytes);
    const master = this.master.read(r, "master");
    const slave = this.slave.read(r, "slave");
    const sources: number[] = [];
    for (let irq = 0; irq < 16; irq++) sources.push(r.int(`IRQ ${irq} sources`, 0, 0xffffffff));
    const slaveOutput = r.bool("slave output");
    const output = r.bool("output");
    r.done();
    this.master.restore(master);
    this.slave.restore(slave);
    this.sources.set(sources);
    this.slaveOutput = slaveOutput;
    if (output !== this.output) {
      this.output = output;
      this.onInterruptRequest?.(output);
    }
  }

  /** Machine reset: both chips return to their reset state; input wires keep their levels. */
  reset(): void {
    this.master.reset();
    this.slave.reset();
    this.update();
  }

  /** @internal */
  setSource(irq: number, bit: number, high: boolean): void {
    const before = this.sources[irq]! !== 0;
    if (high) this.sources[irq]! |= 1 << bit;
    else this.sources[irq]! &= ~(1 << bit);
    const after = this.sources[irq]! !== 0;
    if (before === after) return;
    if (irq < 8) this.master.setInput(irq, after);
    else this.slave.setInput(irq - 8, after);
    this.update();
  }

  /** @internal Propagates the slave's INT to the master's IR2 and the master's INT to the host. */
  update(): void {
    const slaveOutput = this.slave.pendingLine() >= 0;
    if (slaveOutput !== this.slaveOutput) {
      this.slaveOutput = slaveOutput;
      this.master.setInput(CASCADE_IRQ, slaveOutput);
    }
    const output = this.master.pendingLine() >= 0;
    if (output !== this.output) {
      this.output = output;
      this.onInterruptRequest?.(output);
    }
  }
}
