import { VmError } from "./errors.js";
import { isLegalTransition, VmState } from "./states.js";

/** What every exit has; the engine's own exit type carries the rest. */
export interface EngineExit {
  readonly exitReason: string;
}

/**
 * The accelerator as the execution loop sees it (owned here; whpx-sim satisfies it through
 * a two-line adapter in the composition root).
 */
export interface ExecutionEngine<Exit extends EngineExit> {
  /** Runs vCPU `vcpuIndex` until something needs the VMM; resolves with the exit. */
  runVcpu(vcpuIndex: number): Promise<Exit>;
  /** Makes a run of this vCPU (current or next) return promptly. */
  cancelVcpu(vcpuIndex: number): void;
}

/**
 * What the loop does after an exit handler: run on, wait for an interrupt (HLT), or power
 * the machine off.
 */
export type ExitAction = "resume" | "halt" | "powerOff";

/** Handles one exit; the composition root dispatches to iom, pgm, devices, dbgf. */
export type ExitHandler<Exit extends EngineExit> = (exit: Exit, vcpuIndex: number) => ExitAction | Promise<ExitAction>;

export type StateCallback = (state: VmState, previous: VmState) => void;

export interface VmOptions<Exit extends EngineExit> {
  readonly name?: string;
  /** 1-64 virtual CPUs. */
  readonly cpuCount: number;
  readonly engine: ExecutionEngine<Exit>;
  readonly handleExit: ExitHandler<Exit>;
}

export const MAX_CPUS = 64;

// Web Crypto: a global in browsers and in Node 19+.
declare const crypto: { randomUUID(): string };
// The console global of browsers and Node (this package's lib settings do not declare it).
declare const console: { error(...data: unknown[]): void };

/** States in which the machine has stopped for good or needs the user. */
const STOPPED_STATES: readonly VmState[] = [VmState.Off, VmState.GuruMeditation, VmState.FatalError];

/**
 * A virtual machine: the lifecycle state machine and one execution loop per vCPU.
 *
 * This slice implements create → power on → running → power off → off, halting on HLT,
 * at-state callbacks, and guru meditation when an exit handler or the engine fails. The
 * remaining operations of spec/vm.md (suspend, reset, save, rendezvous…) come next.
 */
export class Vm<Exit extends EngineExit = EngineExit> {
  readonly name: string;
  readonly uuid: string;
  readonly cpuCount: number;
  /** The error that sent the machine to guru meditation, if any. */
  failure: unknown = undefined;

  private currentState: VmState = VmState.Creating;
  private previousState: VmState = VmState.Creating;
  private readonly engine: ExecutionEngine<Exit>;
  private readonly handleExit: ExitHandler<Exit>;
  private readonly stateCallbacks: StateCallback[] = [];
  private inCallback = false;
  private loops: Promise<void>[] = [];
  private readonly wakers: ((() => void) | null)[];
  private readonly stoppedWaiters: ((state: VmState) => void)[] = [];

  constructor(options: VmOptions<Exit>) {
    const { cpuCount } = options;
    if (!Number.isInteger(cpuCount) || cpuCount < 1 || cpuCount > MAX_CPUS) {
      throw new VmError("TooManyCpus", `cpu count must be 1-${MAX_CPUS}, got ${String(cpuCount)}`);
    }
    if (typeof options.handleExit !== "function") throw new VmError("InvalidPointer", "handleExit must be a function");
    // Checked here: a missing engine would otherwise surface only at power-on, as a guru meditation.
    if (typeof options.engine?.runVcpu !== "function" || typeof options.engine.cancelVcpu !== "function") {
      throw new VmError("InvalidPointer", "engine must have runVcpu and cancelVcpu functions");
    }
    this.name = options.name ?? "vm";
    this.uuid = crypto.randomUUID();
    this.cpuCount = cpuCount;
    this.engine = options.engine;
    this.handleExit = options.handleExit;
    this.wakers = new Array<(() => void) | null>(cpuCount).fill(null);
    this.setState(VmState.Created, VmState.Creating);
  }

  get state(): VmState {
    return this.currentState;
  }

  get previous(): VmState {
    return this.previousState;
  }

  /** Registers an at-state callback; returns a function that removes it. */
  onStateChange(callback: StateCallback): () => void {
    if (typeof callback !== "function") throw new VmError("InvalidPointer", "state callback must be a function");
    this.stateCallbacks.push(callback);
    return () => {
      const index = this.stateCallbacks.indexOf(callback);
      if (index < 0) throw new VmError("CallbackNotFound", "that state callback is not registered");
      this.stateCallbacks.splice(index, 1);
    };
  }

  /** Created → PoweringOn → Running, and starts every vCPU's execution loop. */
  async powerOn(): Promise<void> {
    this.refuseInsideCallback("powerOn");
    this.requireState("powerOn", [VmState.Created]);
    this.setState(VmState.PoweringOn, VmState.Created);
    this.setState(VmState.Running, VmState.PoweringOn);
    this.loops = [];
    for (let vcpu = this.cpuCount - 1; vcpu >= 0; vcpu--) this.loops.push(this.executionLoop(vcpu));
  }

  /**
   * Stops every vCPU and ends in Off. Allowed from Created, Running, Suspended, Debugging,
   * GuruMeditation, FatalError and LoadFailure (spec §2.4).
   */
  async powerOff(): Promise<void> {
    this.refuseInsideCallback("powerOff");
    const from = this.requireState("powerOff", [
      VmState.Created,
      VmState.Running,
      VmState.Suspended,
      VmState.Debugging,
      VmState.GuruMeditation,
      VmState.FatalError,
      VmState.LoadFailure,
    ]);
    this.setState(VmState.PoweringOff, from);
    for (let vcpu = 0; vcpu < this.cpuCount; vcpu++) {
      this.engine.cancelVcpu(vcpu);
      this.wake(vcpu);
    }
    await Promise.all(this.loops);
    this.loops = [];
    this.setState(VmState.Off, VmState.PoweringOff);
  }

  /** Resolves when the machine is Off, in guru meditation or in a fatal error. */
  whenStopped(): Promise<VmState> {
    if (STOPPED_STATES.includes(this.currentState)) return Promise.resolve(this.currentState);
    return new Promise((resolve) => this.stoppedWaiters.push(resolve));
  }

  /** Wakes a vCPU waiting after HLT (an interrupt or timer event arrived). */
  wake(vcpuIndex: number): void {
    if (!Number.isInteger(vcpuIndex) || vcpuIndex < 0 || vcpuIndex >= this.cpuCount) {
      throw new VmError("InvalidCpuId", `vCPU ${vcpuIndex} does not exist (cpu count ${this.cpuCount})`);
    }
    const waker = this.wakers[vcpuIndex];
    this.wakers[vcpuIndex] = null;
    waker?.();
  }

  // ---- internals ------------------------------------------------------------------------

  private async executionLoop(vcpu: number): Promise<void> {
    try {
      while (this.currentState === VmState.Running) {
        const exit = await this.engine.runVcpu(vcpu);
        if (this.currentState !== VmState.Running) return;
        const action = await this.handleExit(exit, vcpu);
        if (this.currentState !== VmState.Running) return;
        if (action === "powerOff") {
          void this.powerOff();
          return;
        }
        if (action === "halt") await new Promise<void>((resolve) => (this.wakers[vcpu] = resolve));
      }
    } catch (error) {
      if (this.currentState !== VmState.Running) return;
      this.failure = error;
      this.setState(VmState.GuruMeditation, VmState.Running);
      for (let other = 0; other < this.cpuCount; other++) {
        this.engine.cancelVcpu(other);
        this.wake(other);
      }
    }
  }

  private requireState(operation: string, allowed: readonly VmState[]): VmState {
    const state = this.currentState;
    if (!allowed.includes(state)) {
      throw new VmError("InvalidVmState", `${operation} is not allowed in state ${state} (allowed from: ${allowed.join(", ")})`);
    }
    return state;
  }

  private refuseInsideCallback(operation: string): void {
    if (this.inCallback) throw new VmError("StateChangeFromCallback", `${operation} was called from inside a state callback`);
  }

  /** Commits one legal edge and runs the at-state callbacks, synchronously. */
  private setState(to: VmState, from: VmState): void {
    if (this.currentState !== from || !isLegalTransition(from, to)) {
      throw new VmError("InvalidVmState", `internal: illegal transition ${this.currentState} -> ${to} (expected from ${from})`);
    }
    this.previousState = from;
    this.currentState = to;
    this.inCallback = true;
    try {
      for (const callback of this.stateCallbacks.slice()) {
        // spec §6.1(c): a throwing callback is logged and stops neither the round nor the
        // transition (else power-off would be stranded in PoweringOff, whenStopped never settling).
        try {
          callback(to, from);
        } catch (error) {
          console.error(`vm ${this.name}: a state callback threw on ${from} -> ${to}:`, error);
        }
      }
    } finally {
      this.inCallback = false;
    }
    if (STOPPED_STATES.includes(to)) for (const resolve of this.stoppedWaiters.splice(0)) resolve(to);
  }
}
