/**
 * The PC devices of `vmmkit run` on the port bus, and the machine's clock and interrupt
 * delivery: the 8259A pair feeds the boot processor through the accelerator's pending
 * interruption (or an interrupt-window exit while the guest cannot take one), the 8254,
 * the CMOS RTC and the UART keep time on one clock, which is virtual and deterministic by
 * default (it advances with the instructions the boot processor retires) or the host's.
 */
import {
  A20Gate,
  CmosRtc,
  DebugConsole,
  DebugExit,
  Kbc8042,
  Pic8259Pair,
  Pit8254,
  Port92,
  Uart16550,
  VirtualClock,
  type SerialBackend,
} from "@vmmkit/devices";
import type { PortSpace } from "@vmmkit/iom";
import type { WhvPartitionHandle, WhvPlatform } from "@vmmkit/whpx-sim";

export const COM1_PORT = 0x3f8;
export const DEBUG_EXIT_PORT = 0xf4;
const COM1_IRQ = 4;
const RTC_IRQ = 8;
const EFLAGS_IF = 0x200n;

export type ClockMode = "virtual" | "realtime";

export interface PcPlatformOptions {
  readonly ports: PortSpace;
  readonly platform: WhvPlatform;
  readonly partition: WhvPartitionHandle;
  readonly serial: SerialBackend;
  /** Where bytes written to the debug console (0xE9, 0x402) go; none when absent. */
  readonly debugConsole?: SerialBackend;
  readonly memoryBytes: number;
  /** Processors whose A20 line the gate drives (all of them: the line is the chipset's). */
  readonly cpuCount: number;
  readonly clock: ClockMode;
  /** Virtual clock: nanoseconds of machine time per retired instruction. */
  readonly nanosecondsPerInstruction: number;
  /** Instructions the boot processor has retired (since power-on, across resets). */
  readonly retired: () => number;
  readonly onDebugExit: (status: number) => void;
  /** Port 0x92 bit 0 or the 8042's pulse: the guest wants a processor reset. */
  readonly onReset: () => void;
  /** An interrupt became pending (wake the boot processor if it waits in HLT). */
  readonly onInterruptRequest: () => void;
}

/** What the machine needs from its devices between runs of the boot processor. */
export class PcPlatform {
  readonly clock = new VirtualClock();
  readonly pic: Pic8259Pair;
  readonly pit: Pit8254;
  readonly rtc: CmosRtc;
  readonly uart: Uart16550;
  /** The A20 line: port 0x92 OR the 8042's output port, applied to every processor. */
  readonly a20: A20Gate;
  readonly port92: Port92;
  readonly kbc: Kbc8042;
  /** Machine time skipped while the guest waited in HLT (virtual clock only). */
  private skippedNanoseconds = 0;
  private startedAt = performance.now();
  private readonly boot = 0;

  constructor(private readonly options: PcPlatformOptions) {
    const { ports, clock } = { ports: options.ports, clock: this.clock };
    this.pic = new Pic8259Pair({ onInterruptRequest: (pending) => pending && options.onInterruptRequest() });
    this.pit = new Pit8254({ clock, irq: this.pic.irqLine(0) });
    this.rtc = new CmosRtc({ clock, irq: this.pic.irqLine(RTC_IRQ), memoryBytes: options.memoryBytes });
    this.uart = new Uart16550(options.serial, { clock, irq: this.pic.irqLine(COM1_IRQ), port: COM1_PORT, name: "com1" });
    this.a20 = new A20Gate({ setA20: (enabled) => this.driveA20(enabled) });
    const port92 = (this.port92 = new Port92({ a20: this.a20.input(), onReset: options.onReset }));
    // The 8042 powers on with A20 enabled (as QEMU's does), so kernels above 1 MiB load.
    const kbc = (this.kbc = new Kbc8042({ a20: this.a20.input(), onReset: options.onReset }));
    for (const range of [...this.pic.portRanges(), ...this.pit.portRanges(), ...this.rtc.portRanges(), ...this.uart.portRanges(), ...port92.portRanges(), ...kbc.portRanges()]) {
      ports.register(range);
    }
    ports.register({ port: DEBUG_EXIT_PORT, count: 4, owner: "isa-debug-exit", device: new DebugExit(options.onDebugExit) });
    if (options.debugConsole !== undefined) {
      for (const range of new DebugConsole(options.debugConsole).portRanges()) ports.register(range);
    }
  }

  /** Puts the gate's A20 state on every processor again (after they were re-created, or a restore). */
  applyA20(): void {
    this.driveA20(this.a20.enabled);
  }

  private driveA20(enabled: boolean): void {
    const { platform, partition } = this.options;
    for (let vcpu = 0; vcpu < this.options.cpuCount; vcpu++) platform.setVirtualProcessorA20(partition, vcpu, enabled);
  }

  /** Machine time now, in nanoseconds. */
  now(): number {
    if (this.options.clock === "realtime") return Math.floor((performance.now() - this.startedAt) * 1e6);
    return this.options.retired() * this.options.nanosecondsPerInstruction + this.skippedNanoseconds;
  }

  /**
   * What machine time is made of besides retired instructions, for a saved state: the time
   * skipped in HLT (virtual clock) and, for the realtime clock, the time elapsed so far.
   */
  timeState(): { readonly skippedNanoseconds: number; readonly elapsedNanoseconds: number } {
    return { skippedNanoseconds: this.skippedNanoseconds, elapsedNanoseconds: Math.floor((performance.now() - this.startedAt) * 1e6) };
  }

  /** Restores `timeState()`: machine time continues from where it was saved. */
  restoreTime(state: { readonly skippedNanoseconds: number; readonly elapsedNanoseconds: number }): void {
    this.skippedNanoseconds = state.skippedNanoseconds;
    this.startedAt = performance.now() - state.elapsedNanoseconds / 1e6;
  }

  /**
   * A machine reset: the devices go to their reset state (the RTC keeps time, date and its
   * battery-backed RAM); machine time goes on.
   */
  reset(): void {
    this.pic.reset();
    this.pit.reset();
    this.rtc.reset();
    this.uart.reset();
    this.port92.reset();
    this.kbc.reset();
  }

  /** Brings the devices up to the present: timers that are due fire (and raise their IRQs). */
  catchUp(): void {
    const now = this.now();
    if (now > this.clock.now()) this.clock.advanceTo(now);
  }

  /**
   * How many instructions the boot processor may run before the next timer is due (virtual
   * clock), so that it exits in time to take the interrupt; Infinity when no timer is set.
   */
  instructionsUntilNextEvent(): number {
    if (this.options.clock === "realtime") return Number.POSITIVE_INFINITY;
    const deadline = this.clock.nextDeadline();
    if (!Number.isFinite(deadline)) return Number.POSITIVE_INFINITY;
    return Math.max(1, Math.ceil((deadline - this.now()) / this.options.nanosecondsPerInstruction));
  }

  /** Milliseconds of host time until the next timer (realtime clock); Infinity when none. */
  millisecondsUntilNextEvent(): number {
    const deadline = this.clock.nextDeadline();
    if (!Number.isFinite(deadline)) return Number.POSITIVE_INFINITY;
    return Math.max(0, (deadline - this.now()) / 1e6);
  }

  /**
   * The guest halted with interrupts enabled. Virtual clock: jump to the next timer event
   * (true), or report that nothing will ever wake it (false). Realtime: false (wait).
   */
  skipToNextEvent(): boolean {
    if (this.options.clock === "realtime") return false;
    const deadline = this.clock.nextDeadline();
    if (!Number.isFinite(deadline)) return false;
    const now = this.now();
    if (deadline > now) this.skippedNanoseconds += deadline - now;
    this.catchUp();
    return true;
  }

  /** True when the PIC has an interrupt for the CPU. */
  get interruptPending(): boolean {
    return this.pic.hasPendingInterrupt();
  }

  /**
   * Hands a pending PIC interrupt to the boot processor if it can take one now (IF set, no
   * interrupt shadow, nothing injected yet); otherwise asks for an interrupt-window exit.
   */
  deliverInterrupts(): void {
    if (!this.pic.hasPendingInterrupt()) return;
    const { platform, partition } = this.options;
    const [rflags, state, pending] = platform.getVirtualProcessorRegisters(partition, this.boot, ["x64Rflags", "interruptState", "pendingInterruption"] as const);
    if (pending.interruptionPending) return;
    if ((rflags & EFLAGS_IF) !== 0n && !state.interruptShadow) {
      const vector = this.pic.acknowledge();
      platform.setVirtualProcessorRegisters(partition, this.boot, ["pendingInterruption"] as const, [
        { interruptionPending: true, interruptionType: 0, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, interruptionVector: vector, errorCode: 0 },
      ]);
      return;
    }
    platform.setVirtualProcessorRegisters(partition, this.boot, ["x64DeliverabilityNotifications"] as const, [
      { nmiNotification: false, interruptNotification: true, interruptPriority: 0 },
    ]);
  }
}
