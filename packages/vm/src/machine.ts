import { CallbackList } from "./callbacks.js";
import { VmError, type VmErrorCode } from "./errors.js";
import { isLegalTransition, VmState, vmStateName } from "./states.js";
import {
  checkSavedState,
  FINAL_PASS,
  parseSavedState,
  readAll,
  SavedStateError,
  SavedStateWriter,
  unitKey,
  validateUnit,
  type ParsedSavedState,
  type SavedStateSink,
  type SavedStateSource,
  type SavedStateUnit,
} from "./saved-state.js";
import { mergeStatus, type VmStatus } from "./status.js";
import { sleep, yieldToEventLoop } from "./yield.js";

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
  /**
   * Whether `exit` is the answer to `cancelVcpu` (default: `exitReason === "canceled"`, the
   * WHPX name). Such an exit is not handed to the exit handler when the VM itself cancelled.
   */
  isCancelExit?(exit: Exit): boolean;
  /** Whether the engine lets the guest enter long mode (spec §5.12); absent means false. */
  isLongModeAllowed?(): boolean;
}

/**
 * What the loop does after an exit handler: run on, wait for an interrupt (HLT), power the
 * machine off, or reset it because the guest asked (`"reset"`) or triple-faulted
 * (`"tripleFault"`); both resets ask `getResetInfo` whether the reset is hard or soft.
 */
export type ExitAction = "resume" | "halt" | "powerOff" | "reset" | "tripleFault";

/** Handles one exit; the composition root dispatches to iom, pgm, devices, dbgf. */
export type ExitHandler<Exit extends EngineExit> = (exit: Exit, vcpuIndex: number) => ExitAction | Promise<ExitAction>;

/** An at-state callback: called on every committed transition, in registration order. */
export type StateCallback<U = unknown> = (state: VmState, previous: VmState, user: U, vm: Vm<never>) => void;
/** An at-error callback (spec §6.2). `source` names the operation that failed. */
export type ErrorCallback<U = unknown> = (code: string, source: string, message: string, user: U, vm: Vm<never>) => void;
/** A runtime-error callback (spec §6.3). */
export type RuntimeErrorCallback<U = unknown> = (flags: number, errorId: string, message: string, user: U, vm: Vm<never>) => void;

/** Runtime error flags (spec §6.3). */
export const RuntimeErrorFlags = { none: 0, fatal: 1, suspend: 2, noWait: 4 } as const;

export type SuspendReason = "user" | "reconfig" | "vm" | "runtime-error" | "host-suspend" | "host-battery-low" | "ftm-sync";
export type ResumeReason =
  | "user"
  | "reconfig"
  | "host-resume"
  | "state-restored"
  | "state-saved"
  | "teleported"
  | "teleport-failed"
  | "ftm-sync";
const SUSPEND_REASONS: readonly string[] = ["user", "reconfig", "vm", "runtime-error", "host-suspend", "host-battery-low", "ftm-sync"];
const RESUME_REASONS: readonly string[] = [
  "user",
  "reconfig",
  "host-resume",
  "state-restored",
  "state-saved",
  "teleported",
  "teleport-failed",
  "ftm-sync",
];

export type RendezvousKind = "descending" | "ascending" | "oneByOne" | "allAtOnce" | "once";
/** A vCPU's own run state: stopped (not powered on), started, or waiting for a startup IPI after hot-unplug. */
export type VcpuRunState = "stopped" | "started" | "wait-sipi";

/** What the firmware / chipset says a guest-requested reset or a triple fault should be. */
export interface ResetInfo {
  readonly hard: boolean;
  /** Passed to `VmSubsystem.softReset`. */
  readonly flags: number;
}

/**
 * A subsystem's lifecycle hooks (spec §8), called on vCPU 0 in registration order (so
 * register in the §5.1.2 init order: memory, CPU, I/O, debugger, devices...). `term` runs
 * in reverse order at destroy. Hooks are synchronous: they run inside a state transition.
 */
export interface VmSubsystem {
  readonly name: string;
  powerOn?(): void;
  suspend?(): void;
  resume?(): void;
  powerOff?(): void;
  reset?(): void;
  softReset?(flags: number): void;
  /** Per-vCPU reset on hot-unplug. */
  resetCpu?(vcpuIndex: number): void;
  /** The post-load fix-up round (always delta 0 in this port). */
  relocate?(delta: number): void;
  term?(): void;
}

export interface VmOptions<Exit extends EngineExit> {
  /** Default `<unknown>`. */
  readonly name?: string;
  /** Canonical 8-4-4-4-12 hex form; default all zeros. */
  readonly uuid?: string;
  /** 1-64 virtual CPUs. */
  readonly cpuCount: number;
  readonly engine: ExecutionEngine<Exit>;
  readonly handleExit: ExitHandler<Exit>;
  /**
   * 1-100 (percent), default 100. Below 100 each vCPU rests after every run for as long as
   * keeps its share of wall-clock time at the cap (a run of t ms is followed by a pause of
   * t × (100 − cap) / cap ms).
   */
  readonly executionCap?: number;
  /** Milliseconds from a monotonic clock, for the execution cap (default performance.now). */
  readonly now?: () => number;
  /** Waits `ms` milliseconds, for the execution cap (default setTimeout). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Every hard reset becomes a power off (spec §5.9). Default false. */
  readonly powerOffInsteadOfReset?: boolean;
  /** Called once before a hard reset is turned into a power off. */
  readonly notifyResetTurnedIntoPowerOff?: () => void;
  /** Decides guest-requested and triple-fault resets; default `{ hard: true, flags: 0 }`. */
  readonly getResetInfo?: (tripleFault: boolean) => ResetInfo;
  readonly subsystems?: readonly VmSubsystem[];
  /** Registered as the first at-error callback (spec §5.1 step 2). */
  readonly onError?: ErrorCallback;
  /** `{ core: id, package: 0 }` (multi-core, the default) or `{ core: 0, package: id }`. */
  readonly cpuLayout?: "multi-core" | "single-core";
  /**
   * A description of the machine's configuration (memory size, devices…), written into
   * saved states; a load requires the same text. Default "".
   */
  readonly configuration?: string;
}

export interface SaveOptions {
  readonly sink: SavedStateSink;
  /** Percent 0-100, non-decreasing, 100 at the end of a successful save. Throwing cancels the save with that error. */
  readonly onProgress?: (percent: number) => void;
  /**
   * Teleport: the target runs on where the source stopped. From Running the
   * teleported-and-not-fully-resumed flag is set; from Suspended the live path is taken
   * with the VM already stopped (result status "live-save-suspended-externally").
   */
  readonly teleport?: boolean;
  /** Live passes before the final one at most (default 8). */
  readonly maxLivePasses?: number;
}

export interface SaveResult {
  /** "live-save-suspended-externally" when someone else had suspended the VM during a live save. */
  readonly status: "ok" | "live-save-suspended-externally";
  /** The save suspended the VM; resume it yourself if it should run on (it is never resumed automatically). */
  readonly suspendedByUs: boolean;
}

export interface LoadOptions {
  readonly source: SavedStateSource;
  readonly onProgress?: (percent: number) => void;
  /** The state comes from a teleport: sets the teleported flag on success. */
  readonly teleporting?: boolean;
  /** Refuse inputs larger than this (default 4 GiB). */
  readonly maxBytes?: number;
}

export const MAX_CPUS = 64;
/** `currentVcpuId()` outside vCPU context. */
export const NIL_VCPU = 0xffffffff;
/** `retain()` / `release()` on a freed handle. */
export const INVALID_REFERENCE_COUNT = 0xffffffff;
const ZERO_UUID = "00000000-0000-0000-0000-000000000000";
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Exits handled back to back before one vCPU lets timers and I/O run (one vCPU only). */
const EXITS_PER_YIELD = 1024;

// The console global of browsers and Node (this package's lib settings do not declare it).
declare const console: { error(...data: unknown[]): void };
declare const performance: { now(): number };
declare const setTimeout: (callback: () => void, ms: number) => unknown;

const S = VmState;
/** States in which the machine has stopped for good or needs the user. */
const STOPPED_STATES: readonly VmState[] = [S.Off, S.GuruMeditation, S.FatalError, S.Terminated];
const ALL_STATES = new Set<string>(Object.values(VmState));

/** The six debugger edges dbgf drives through `requestTransition` (spec §2.3). */
const DEBUGGER_EDGES: readonly (readonly [VmState, VmState])[] = [
  [S.Running, S.Debugging],
  [S.RunningLS, S.DebuggingLS],
  [S.Debugging, S.Running],
  [S.DebuggingLS, S.RunningLS],
  [S.GuruMeditation, S.Debugging],
  [S.GuruMeditationLS, S.DebuggingLS],
];

type Pair = readonly [from: VmState, to: VmState];

// The try-set pairs of each operation, in the reference's order (indices matter, spec §5.7).
const POWER_ON_PAIRS: readonly Pair[] = [[S.Created, S.PoweringOn]];
const SUSPEND_PAIRS: readonly Pair[] = [
  [S.Running, S.Suspending],
  [S.RunningLS, S.SuspendingExtLS],
];
const RESUME_PAIRS: readonly Pair[] = [[S.Suspended, S.Resuming]];
const POWER_OFF_PAIRS: readonly Pair[] = [
  [S.Running, S.PoweringOff],
  [S.Suspended, S.PoweringOff],
  [S.Debugging, S.PoweringOff],
  [S.LoadFailure, S.PoweringOff],
  [S.GuruMeditation, S.PoweringOff],
  [S.FatalError, S.PoweringOff],
  [S.Created, S.PoweringOff],
  [S.RunningLS, S.PoweringOffLS],
  [S.DebuggingLS, S.PoweringOffLS],
  [S.GuruMeditationLS, S.PoweringOffLS],
  [S.FatalErrorLS, S.PoweringOffLS],
];
const RESET_PAIRS: readonly Pair[] = [
  [S.Running, S.Resetting],
  [S.Suspended, S.Resetting],
  [S.RunningLS, S.ResettingLS],
];
const SOFT_RESET_PAIRS: readonly Pair[] = [
  [S.Running, S.SoftResetting],
  [S.Suspended, S.SoftResetting],
  [S.RunningLS, S.SoftResettingLS],
];
const SAVE_PAIRS: readonly Pair[] = [
  [S.Suspended, S.Saving],
  [S.Running, S.RunningLS],
];
const LOAD_PAIRS: readonly Pair[] = [
  [S.Created, S.Loading],
  [S.Suspended, S.Loading],
];
// The live-save cleanup after a failed step 1 (spec §5.5 step 4), in order.
const CLEANUP_PAIRS: readonly Pair[] = [
  [S.OffLS, S.Off],
  [S.FatalErrorLS, S.FatalError],
  [S.GuruMeditationLS, S.GuruMeditation],
  [S.SuspendedLS, S.Suspended],
  [S.Saving, S.Suspended],
  [S.SuspendedExtLS, S.Suspended],
  [S.RunningLS, S.Running],
  [S.DebuggingLS, S.Debugging],
];
const LIVE_SAVE_RETRY_MS = 250;
const DEFAULT_MAX_LOAD_BYTES = 2 ** 32;

const FATAL_PAIRS: readonly Pair[] = [
  [S.Running, S.FatalError],
  [S.RunningLS, S.FatalErrorLS],
];

interface VcpuRequest {
  readonly fn: (vcpu: number) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface Vcpu {
  readonly index: number;
  runState: VcpuRunState;
  halted: boolean;
  /** A wake (interrupt, timer) arrived that the next halt must not sleep through. */
  wakePending: boolean;
  inRun: boolean;
  /** The VM cancelled the current run; its cancel exit is the VM's, not the guest's. */
  cancelledByVm: boolean;
  requests: VcpuRequest[];
  signal: (() => void) | null;
  parkedAt: Gate | null;
  exit: boolean;
  exitsSinceYield: number;
}

/** Wraps a progress callback: percentages never go down and each is reported once. */
function progressReporter(onProgress: ((percent: number) => void) | undefined): (percent: number) => void {
  let last = -1;
  return (percent: number) => {
    const value = Math.max(last, Math.min(100, Math.floor(percent)));
    if (value === last) return;
    last = value;
    onProgress?.(value);
  };
}

/** All vCPUs stop at a safe point; the rendezvous workers run while they wait here. */
class Gate {
  private arrivedCount = 0;
  private resolveAll!: () => void;
  private resolveOpen!: () => void;
  readonly allArrived: Promise<void>;
  readonly opened: Promise<void>;

  constructor(private readonly expected: number) {
    this.allArrived = new Promise((resolve) => (this.resolveAll = resolve));
    this.opened = new Promise((resolve) => (this.resolveOpen = resolve));
    if (expected === 0) this.resolveAll();
  }

  arrive(): void {
    if (++this.arrivedCount === this.expected) this.resolveAll();
  }

  open(): void {
    this.resolveOpen();
  }
}

/** The live save in flight, as power off, guru meditation and fatal errors cancel it. */
interface SaveSession {
  cancel(): void;
}

/**
 * A virtual machine (spec/vm.md): the lifecycle state machine, the callback registries,
 * and one async execution loop per vCPU that drives the engine and dispatches its exits.
 *
 * The object is the VM handle: the constructor is `create` (reference count 2: the VM's own
 * and the caller's), `destroy()` drops the VM's and `release()` the caller's.
 */
export class Vm<Exit extends EngineExit = EngineExit> {
  readonly cpuCount: number;
  /** The error that sent the machine to guru meditation, if any. */
  failure: unknown = undefined;

  private readonly vmName: string;
  private readonly vmUuid: string;
  private currentState: VmState = S.Creating;
  private previousState: VmState = S.Creating;
  private readonly engine: ExecutionEngine<Exit>;
  private readonly handleExit: ExitHandler<Exit>;
  private readonly subsystems: readonly VmSubsystem[];
  private readonly getResetInfo: (tripleFault: boolean) => ResetInfo;
  private readonly notifyResetTurnedIntoPowerOff: (() => void) | undefined;
  private readonly cpuLayout: "multi-core" | "single-core";
  private readonly atState = new CallbackList<StateCallback>("state");
  private readonly atError = new CallbackList<ErrorCallback>("error");
  private readonly atRuntimeError = new CallbackList<RuntimeErrorCallback>("runtime error");
  private callbackDepth = 0;
  private readonly vcpus: Vcpu[];
  private readonly loops: Promise<void>[];
  private readonly stoppedWaiters: ((state: VmState) => void)[] = [];
  private currentVcpu = NIL_VCPU;
  private gate: Gate | null = null;
  /** Rendezvous asked for but whose gate has not opened yet: no vCPU starts a new run. */
  private pendingRendezvous = 0;
  private rendezvousTail: Promise<void> = Promise.resolve();
  private references = 2;
  private coreGone = false;

  private executionCapPercent: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private powerOffInsteadOfResetFlag: boolean;
  private suspendReason: SuspendReason | "invalid" = "invalid";
  private resumeReason: ResumeReason | "invalid" = "invalid";
  private teleportedFlag = false;
  private errors = 0;
  private runtimeErrors = 0;
  private resets = 0;
  private softResets = 0;
  private hardResets = 0;
  private lastErrorRecord: { code: string; source: string; message: string } | undefined;
  /** The live save in flight, cancelled by power off, guru meditation and fatal errors. */
  private saveSession: SaveSession | null = null;
  private readonly units = new Map<string, SavedStateUnit>();
  private readonly configuration: string;

  constructor(options: VmOptions<Exit>) {
    const { cpuCount } = options;
    if (options.onError !== undefined && typeof options.onError !== "function") throw new VmError("InvalidPointer", "onError must be a function");
    if (!Number.isInteger(cpuCount) || cpuCount < 1 || cpuCount > MAX_CPUS) {
      throw new VmError("TooManyCpus", `cpu count must be 1-${MAX_CPUS}, got ${String(cpuCount)}`);
    }
    if (typeof options.handleExit !== "function") throw new VmError("InvalidPointer", "handleExit must be a function");
    // Checked here: a missing engine would otherwise surface only at power-on, as a guru meditation.
    if (typeof options.engine?.runVcpu !== "function" || typeof options.engine.cancelVcpu !== "function") {
      throw new VmError("InvalidPointer", "engine must have runVcpu and cancelVcpu functions");
    }
    const cap = options.executionCap ?? 100;
    if (!Number.isInteger(cap) || cap < 1 || cap > 100) throw new VmError("InvalidParameter", `execution cap must be 1-100 (percent), got ${String(cap)}`);
    if (options.uuid !== undefined && !UUID_PATTERN.test(options.uuid)) {
      throw new VmError("InvalidParameter", `uuid must look like ${ZERO_UUID}, got ${JSON.stringify(options.uuid)}`);
    }
    if (options.getResetInfo !== undefined && typeof options.getResetInfo !== "function") throw new VmError("InvalidPointer", "getResetInfo must be a function");
    if (options.notifyResetTurnedIntoPowerOff !== undefined && typeof options.notifyResetTurnedIntoPowerOff !== "function") {
      throw new VmError("InvalidPointer", "notifyResetTurnedIntoPowerOff must be a function");
    }
    if (options.cpuLayout !== undefined && options.cpuLayout !== "multi-core" && options.cpuLayout !== "single-core") {
      throw new VmError("InvalidParameter", `cpuLayout must be "multi-core" or "single-core", got ${String(options.cpuLayout)}`);
    }
    const subsystems = options.subsystems ?? [];
    for (const subsystem of subsystems) {
      if (typeof subsystem?.name !== "string") throw new VmError("InvalidParameter", "every subsystem needs a name");
    }
    this.vmName = options.name ?? "<unknown>";
    this.vmUuid = (options.uuid ?? ZERO_UUID).toLowerCase();
    this.cpuCount = cpuCount;
    this.engine = options.engine;
    this.handleExit = options.handleExit;
    this.subsystems = [...subsystems];
    this.getResetInfo = options.getResetInfo ?? (() => ({ hard: true, flags: 0 }));
    this.notifyResetTurnedIntoPowerOff = options.notifyResetTurnedIntoPowerOff;
    this.cpuLayout = options.cpuLayout ?? "multi-core";
    if (options.configuration !== undefined && typeof options.configuration !== "string") throw new VmError("InvalidParameter", "configuration must be a string");
    this.configuration = options.configuration ?? "";
    this.executionCapPercent = cap;
    this.now = options.now ?? (() => performance.now());
    this.sleep = options.sleep ?? ((ms) => new Promise<void>((resolve) => void setTimeout(resolve, ms)));
    this.powerOffInsteadOfResetFlag = options.powerOffInsteadOfReset ?? false;
    if (options.onError) this.atError.register(options.onError, undefined);
    this.vcpus = Array.from({ length: cpuCount }, (_, index) => ({
      index,
      runState: "stopped" as VcpuRunState,
      halted: false,
      wakePending: false,
      inRun: false,
      cancelledByVm: false,
      requests: [],
      signal: null,
      parkedAt: null,
      exit: false,
      exitsSinceYield: 0,
    }));
    // The vCPU workers live from create to destroy; idle they wait on a promise.
    this.loops = this.vcpus.map((vcpu) => this.vcpuLoop(vcpu));
    this.setState(S.Created, S.Creating);
  }

  // ---- getters ----------------------------------------------------------------------------

  get name(): string {
    return this.vmName;
  }

  get uuid(): string {
    return this.vmUuid;
  }

  /** The current state; Terminated once the VM core is gone (and for any corrupt value). */
  get state(): VmState {
    return ALL_STATES.has(this.currentState) ? this.currentState : S.Terminated;
  }

  get stateName(): string {
    return vmStateName(this.state);
  }

  get previous(): VmState {
    return this.previousState;
  }

  /** 0xFFFFFFFF outside vCPU context (the synchronous part of exit handlers, requests and rendezvous workers). */
  currentVcpuId(): number {
    return this.currentVcpu;
  }

  get errorCount(): number {
    return this.errors;
  }

  get runtimeErrorCount(): number {
    return this.runtimeErrors;
  }

  get resetCount(): number {
    return this.resets;
  }

  get softResetCount(): number {
    return this.softResets;
  }

  get hardResetCount(): number {
    return this.hardResets;
  }

  /** The last reason given to a successful suspend; "invalid" before the first. Not cleared by resume. */
  getSuspendReason(): SuspendReason | "invalid" {
    return this.suspendReason;
  }

  getResumeReason(): ResumeReason | "invalid" {
    return this.resumeReason;
  }

  teleportedAndNotFullyResumedYet(): boolean {
    return this.teleportedFlag;
  }

  /** The last error reported through `setError`. */
  get lastError(): { readonly code: string; readonly source: string; readonly message: string } | undefined {
    return this.lastErrorRecord;
  }

  get executionCap(): number {
    return this.executionCapPercent;
  }

  get powerOffInsteadOfReset(): boolean {
    return this.powerOffInsteadOfResetFlag;
  }

  vcpuRunState(vcpuIndex: number): VcpuRunState {
    return this.vcpu(vcpuIndex).runState;
  }

  /** Whether vCPU `vcpuIndex` is parked after HLT. */
  isHalted(vcpuIndex: number): boolean {
    return this.vcpu(vcpuIndex).halted;
  }

  // ---- handle -------------------------------------------------------------------------------

  /** +1 on the reference count; returns the new count, 0xFFFFFFFF on a freed handle. */
  retain(): number {
    if (this.references === 0) return INVALID_REFERENCE_COUNT;
    if (this.references >= 0xffff) throw new VmError("InvalidParameter", "reference count overflow (65535 references)");
    return ++this.references;
  }

  /** -1 on the reference count; returns the new count, 0xFFFFFFFF on a freed handle. At 0 the handle is freed. */
  release(): number {
    if (this.references === 0) return INVALID_REFERENCE_COUNT;
    return --this.references;
  }

  // ---- callbacks ----------------------------------------------------------------------------

  /** Registers an at-state callback; the same (fn, user) may be registered more than once. */
  registerAtState<U>(fn: StateCallback<U>, user?: U): void {
    this.requireHandle();
    this.atState.register(fn as StateCallback, user);
  }

  /** Removes the earliest registration of exactly (fn, user); `CallbackNotFound` if none. */
  deregisterAtState<U>(fn: StateCallback<U>, user?: U): void {
    this.requireHandle();
    this.atState.deregister(fn as StateCallback, user);
  }

  /**
   * Registers an at-state callback with no user value and returns a function that removes
   * it (`CallbackNotFound` when called again). A non-function is refused with
   * `InvalidParameter` (spec §6.1).
   */
  onStateChange(callback: StateCallback<undefined>): () => void {
    this.registerAtState(callback, undefined);
    return () => this.deregisterAtState(callback, undefined);
  }

  registerAtError<U>(fn: ErrorCallback<U>, user?: U): void {
    this.requireHandle();
    this.atError.register(fn as ErrorCallback, user);
  }

  deregisterAtError<U>(fn: ErrorCallback<U>, user?: U): void {
    this.requireHandle();
    this.atError.deregister(fn as ErrorCallback, user);
  }

  registerRuntimeError<U>(fn: RuntimeErrorCallback<U>, user?: U): void {
    this.requireHandle();
    this.atRuntimeError.register(fn as RuntimeErrorCallback, user);
  }

  deregisterRuntimeError<U>(fn: RuntimeErrorCallback<U>, user?: U): void {
    this.requireHandle();
    this.atRuntimeError.deregister(fn as RuntimeErrorCallback, user);
  }

  /**
   * Reports an error (spec §6.2): keeps it as `lastError`, counts it (even with no callback
   * registered) and calls every at-error callback in order. Returns `code`.
   */
  setError<C extends string>(code: C, source: string, message: string): C {
    this.lastErrorRecord = { code, source, message };
    this.errors++;
    for (const { fn, user } of this.atError.snapshot()) {
      try {
        fn(code, source, message, user, this as unknown as Vm<never>);
      } catch (error) {
        console.error(`vm ${this.vmName}: an error callback threw:`, error);
      }
    }
    return code;
  }

  /**
   * Raises a runtime error (spec §6.4): the state effect first (fatal: Running → FatalError,
   * RunningLS → FatalErrorLS; suspend: suspend with reason runtime-error if still running;
   * none), then the runtime-error counter and callbacks, which run even if the state effect
   * failed. Resolves with the state effect's status or rejects with its error.
   */
  async setRuntimeError(flags: number, errorId: string, message: string): Promise<VmStatus> {
    this.requireHandle();
    if (!Number.isInteger(flags) || flags < 0 || flags > 7) throw new VmError("InvalidParameter", `runtime error flags must be a combination of 1, 2, 4, got ${String(flags)}`);
    let status: VmStatus = "ok";
    let failure: unknown;
    let failed = false;
    try {
      if (flags & RuntimeErrorFlags.fatal) status = await this.fatalRuntimeError();
      else if (flags & RuntimeErrorFlags.suspend) status = await this.suspendInternal("runtime-error", true);
    } catch (error) {
      failed = true;
      failure = error;
    }
    this.runtimeErrors++;
    for (const { fn, user } of this.atRuntimeError.snapshot()) {
      try {
        fn(flags, errorId, message, user, this as unknown as Vm<never>);
      } catch (error) {
        console.error(`vm ${this.vmName}: a runtime error callback threw:`, error);
      }
    }
    if (failed) throw failure;
    return status;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Created → PoweringOn → Running; every vCPU is started and begins to run. Resolves "ok". */
  async powerOn(): Promise<VmStatus> {
    this.beginStateChange("powerOn");
    this.precheck("powerOn", POWER_ON_PAIRS);
    const last = this.cpuCount - 1;
    return this.rendezvousInternal("descending", true, (v) => {
      if (v === last) this.trySetState("powerOn", POWER_ON_PAIRS);
      this.expectUnstable("powerOn", [S.PoweringOn]);
      this.vcpus[v]!.runState = "started";
      if (v === 0) {
        this.notify("powerOn");
        this.setState(S.Running, S.PoweringOn);
      }
      return "ok";
    });
  }

  /**
   * Suspends a running VM (Running → Suspending → Suspended; RunningLS → SuspendingExtLS →
   * SuspendedExtLS). Resolves "em-suspend".
   */
  async suspend(reason: SuspendReason = "user"): Promise<VmStatus> {
    this.beginStateChange("suspend");
    if (!SUSPEND_REASONS.includes(reason)) throw new VmError("InvalidParameter", `suspend reason must be one of ${SUSPEND_REASONS.join(", ")}, got ${String(reason)}`);
    this.precheck("suspend", SUSPEND_PAIRS);
    return this.suspendInternal(reason, false);
  }

  /** Suspended → Resuming → Running. Resolves "em-resume". */
  async resume(reason: ResumeReason = "user"): Promise<VmStatus> {
    this.beginStateChange("resume");
    if (!RESUME_REASONS.includes(reason)) throw new VmError("InvalidParameter", `resume reason must be one of ${RESUME_REASONS.join(", ")}, got ${String(reason)}`);
    this.precheck("resume", RESUME_PAIRS);
    const last = this.cpuCount - 1;
    return this.rendezvousInternal("descending", true, (v) => {
      if (v === last) {
        this.trySetState("resume", RESUME_PAIRS);
        this.resumeReason = reason;
      }
      this.expectUnstable("resume", [S.Resuming]);
      this.vcpus[v]!.runState = "started";
      if (v === 0) {
        this.notify("resume");
        this.setState(S.Running, S.Resuming);
        this.teleportedFlag = false;
      }
      return "em-resume";
    });
  }

  /**
   * Stops every vCPU and ends in Off (from Running, Suspended, Debugging, LoadFailure,
   * GuruMeditation, FatalError, Created) or OffLS (from the LS variants, cancelling the
   * live save). Resolves "em-off".
   */
  async powerOff(): Promise<VmStatus> {
    this.beginStateChange("powerOff");
    this.precheck("powerOff", POWER_OFF_PAIRS);
    return this.powerOffInternal();
  }

  /**
   * Hard reset: Running → Resetting → Running, Suspended → Resetting → Suspended, RunningLS →
   * ResettingLS → SuspendingLS → SuspendedLS. Every subsystem's `reset` runs on vCPU 0 and
   * every vCPU's pending halt and wake are dropped. With power-off-instead-of-reset it is a
   * power off. Resolves "em-reset" ("em-suspend" during a live save, "em-off" when powered off).
   */
  async reset(): Promise<VmStatus> {
    this.beginStateChange("reset");
    this.precheck("reset", this.powerOffInsteadOfResetFlag ? POWER_OFF_PAIRS : RESET_PAIRS);
    return this.hardReset();
  }

  /** Stored at once, in any state (spec §5.12). */
  setPowerOffInsteadOfReset(enabled: boolean): void {
    this.requireHandle();
    if (typeof enabled !== "boolean") throw new VmError("InvalidParameter", `expected a boolean, got ${typeof enabled}`);
    this.powerOffInsteadOfResetFlag = enabled;
  }

  /**
   * Enters guru meditation (spec §5.10): Running → GuruMeditation or RunningLS →
   * GuruMeditationLS (cancelling the live save); every vCPU drops out of guest code.
   * Returns false, changing and reporting nothing, in any other state.
   */
  enterGuruMeditation(): boolean {
    if (this.coreGone) return false;
    const from = this.currentState;
    if (from !== S.Running && from !== S.RunningLS) return false;
    this.setState(from === S.Running ? S.GuruMeditation : S.GuruMeditationLS, from);
    if (from === S.RunningLS) this.cancelSaveSession();
    for (const vcpu of this.vcpus) this.interrupt(vcpu);
    return true;
  }

  /**
   * The debugger's stop/continue edges (spec §2.3), for packages/dbgf: commits the first
   * pair whose source is the current state and returns its 1-based index; `InvalidVmState`
   * (with an at-error report) if none matches. Any pair that is not one of the six debugger
   * edges is a programming error and throws `InvalidParameter`.
   */
  requestTransition(who: string, pairs: readonly Pair[]): number {
    this.beginStateChange(who);
    for (const [from, to] of pairs) {
      if (!DEBUGGER_EDGES.some(([f, t]) => f === from && t === to)) {
        throw new VmError("InvalidParameter", `${who}: ${String(from)} -> ${String(to)} is not a debugger transition`);
      }
    }
    return this.trySetState(who, pairs);
  }

  /**
   * Destroys an Off VM (spec §5.8): Off → Destroying, a request on every vCPU in reverse
   * order (vCPU 0 runs the subsystems' `term` in reverse registration order), the loops end,
   * Destroying → Terminated, queued requests fail with `RequestKilled`, and the VM's own
   * reference is dropped. Not allowed from vCPU context (`CalledOnVcpu`).
   */
  async destroy(): Promise<void> {
    this.requireHandle();
    if (this.currentVcpu !== NIL_VCPU) throw new VmError("CalledOnVcpu", `destroy must not be called on a vCPU (called on vCPU ${this.currentVcpu})`);
    this.trySetState("destroy", [[S.Off, S.Destroying]]);
    for (let v = this.cpuCount - 1; v >= 0; v--) {
      await this.request(v, () => {
        if (v === 0) {
          for (const subsystem of [...this.subsystems].reverse()) this.callHook(subsystem, "term", () => subsystem.term?.());
        }
        this.vcpus[v]!.exit = true;
        return v === 0 ? "ok" : "em-terminate";
      });
    }
    for (const vcpu of this.vcpus) {
      vcpu.exit = true;
      this.signal(vcpu);
    }
    await Promise.all(this.loops);
    this.killRequests();
    this.setState(S.Terminated, S.Destroying);
    this.coreGone = true;
    if (this.references > 0) this.references--;
  }

  /** Resolves when the machine is Off, in guru meditation, in a fatal error or terminated. */
  whenStopped(): Promise<VmState> {
    if (STOPPED_STATES.includes(this.currentState)) return Promise.resolve(this.currentState);
    return new Promise((resolve) => this.stoppedWaiters.push(resolve));
  }

  /**
   * Wakes a vCPU parked after HLT (an interrupt or timer event arrived). A wake that comes
   * while the vCPU is between its run and its halt is remembered, so it is never lost; a
   * wake for a running vCPU is dropped when it next enters the engine.
   */
  wake(vcpuIndex: number): void {
    const vcpu = this.vcpu(vcpuIndex);
    vcpu.wakePending = true;
    this.signal(vcpu);
  }

  // ---- CPU management -----------------------------------------------------------------------

  /**
   * Queues (without waiting) a request on that vCPU that runs every subsystem's `resetCpu`
   * and leaves it waiting for a startup IPI (`vcpuRunState` "wait-sipi"); no state check.
   */
  hotUnplugCpu(vcpuIndex: number): void {
    this.requireHandle();
    this.vcpu(vcpuIndex);
    void this.request(
      vcpuIndex,
      () => {
        for (const subsystem of this.subsystems) this.callHook(subsystem, "resetCpu", () => subsystem.resetCpu?.(vcpuIndex));
        const vcpu = this.vcpus[vcpuIndex]!;
        vcpu.runState = "wait-sipi";
        vcpu.halted = false;
        return "em-wait-sipi" as VmStatus;
      },
      { wait: false },
    );
  }

  /** Validates the id; plugging in needs nothing more (as in the reference). */
  hotPlugCpu(vcpuIndex: number): void {
    this.requireHandle();
    this.vcpu(vcpuIndex);
  }

  getCpuCoreAndPackageId(vcpuIndex: number): { readonly core: number; readonly package: number } {
    this.requireHandle();
    this.vcpu(vcpuIndex);
    return this.cpuLayout === "multi-core" ? { core: vcpuIndex, package: 0 } : { core: 0, package: vcpuIndex };
  }

  /**
   * Stores the execution cap (1-100 percent) at once, in any state. The loop does not
   * throttle by it yet; it is kept for the front end and saved state.
   */
  setCpuExecutionCap(percent: number): void {
    this.requireHandle();
    if (!Number.isInteger(percent) || percent < 1 || percent > 100) throw new VmError("InvalidParameter", `execution cap must be 1-100 (percent), got ${String(percent)}`);
    this.executionCapPercent = percent;
  }

  /** Asks the engine; false when it cannot say (an interpreter-only engine). */
  isLongModeAllowed(): boolean {
    return typeof this.engine.isLongModeAllowed === "function" ? this.engine.isLongModeAllowed() === true : false;
  }


  // ---- save and load ------------------------------------------------------------------------

  /**
   * Registers a subsystem's saved-state unit. Name and instance must be unique;
   * `SavedStateError` "InvalidUnit" for a malformed unit, `InvalidParameter` for a duplicate.
   */
  registerUnit(unit: SavedStateUnit): void {
    this.requireHandle();
    validateUnit(unit);
    const key = unitKey(unit.name, unit.instance ?? 0);
    if (this.units.has(key)) throw new VmError("InvalidParameter", `a saved-state unit "${unit.name}" instance ${unit.instance ?? 0} is already registered`);
    this.units.set(key, unit);
  }

  /**
   * Saves the VM to `sink` (spec §5.5). From Suspended: Suspended → Saving → Suspended, the
   * whole state in one pass. From Running, a live save: RunningLS while the units' live
   * passes stream (the guest keeps running between passes), then the VM is suspended
   * (SuspendingLS → SuspendedLS → Saving) for the final pass and ends Suspended with
   * `suspendedByUs`. Suspend, reset, power off, guru meditation and fatal errors meanwhile
   * are reconciled as the spec's table says (`LiveSavePoweredOff`, …). Not from vCPU context.
   */
  async save(options: SaveOptions): Promise<SaveResult> {
    this.requireHandle();
    if (this.currentVcpu !== NIL_VCPU) throw new VmError("CalledOnVcpu", `save must not be called on a vCPU (called on vCPU ${this.currentVcpu})`);
    if (this.callbackDepth > 0) throw new VmError("StateChangeFromCallback", "save was called from inside a state callback");
    if (options === null || typeof options !== "object" || typeof options.sink?.write !== "function") throw new VmError("InvalidPointer", "save needs a sink with a write function");
    if (options.onProgress !== undefined && typeof options.onProgress !== "function") throw new VmError("InvalidPointer", "onProgress must be a function");
    const maxLivePasses = options.maxLivePasses ?? 8;
    if (!Number.isInteger(maxLivePasses) || maxLivePasses < 0) throw new VmError("InvalidParameter", `maxLivePasses must be a non-negative integer, got ${String(maxLivePasses)}`);
    const teleport = options.teleport === true;
    const progress = progressReporter(options.onProgress);
    this.precheck(teleport ? "teleport" : "save", SAVE_PAIRS);
    const index = await this.request(0, () => this.trySetState(teleport ? "teleport" : "save", SAVE_PAIRS));
    const writer = new SavedStateWriter(options.sink);
    const units = [...this.units.values()];
    if (index === 1 && !teleport) {
      try {
        await this.request(0, () => this.writeNonLive(writer, units, progress));
      } finally {
        this.setState(S.Suspended, S.Saving);
      }
      return { status: "ok", suspendedByUs: false };
    }
    if (teleport && index === 2) this.teleportedFlag = true;
    return this.liveSave(writer, units, progress, maxLivePasses, teleport);
  }

  /**
   * Loads a saved state (spec §5.6) from Created or Suspended. The whole input is read and
   * checked first (magic, versions, checksums, section sizes, known and complete units,
   * CPU count and configuration, every unit's `check`): a bad input is refused with a
   * `SavedStateError` naming the problem, reported through the at-error path, and changes
   * nothing, not even the state. Then Loading, every unit's `loadPrep` and `load` (in file
   * order), the subsystems' `relocate`, and Suspended; continue with `resume()`. A unit that
   * fails in `load` leaves the VM in LoadFailure, from which only power off is possible.
   */
  async load(options: LoadOptions): Promise<void> {
    this.beginStateChange("load");
    if (options === null || typeof options !== "object" || typeof options.source?.read !== "function") throw new VmError("InvalidPointer", "load needs a source with a read function");
    if (options.onProgress !== undefined && typeof options.onProgress !== "function") throw new VmError("InvalidPointer", "onProgress must be a function");
    const progress = progressReporter(options.onProgress);
    this.precheck("load", LOAD_PAIRS);
    let parsed: ParsedSavedState;
    try {
      const bytes = await readAll(options.source, options.maxBytes ?? DEFAULT_MAX_LOAD_BYTES);
      parsed = parseSavedState(bytes);
      checkSavedState(parsed, this.units, { cpuCount: this.cpuCount, configuration: this.configuration });
    } catch (error) {
      if (error instanceof SavedStateError) this.setError(error.code, "load", error.message);
      throw error;
    }
    progress(10);
    await this.request(0, () => {
      this.trySetState("load", LOAD_PAIRS);
      this.teleportedFlag = options.teleporting === true;
      const errorsBefore = this.errors;
      try {
        for (const unit of this.units.values()) unit.loadPrep?.();
        parsed.sections.forEach((section, i) => {
          this.units.get(unitKey(section.unit, section.instance))!.load(section.payload, section.version, section.pass);
          progress(10 + Math.floor((89 * (i + 1)) / parsed.sections.length));
        });
        for (const subsystem of this.subsystems) this.callHook(subsystem, "relocate", () => subsystem.relocate?.(0));
      } catch (error) {
        this.teleportedFlag = false;
        this.setState(S.LoadFailure, S.Loading);
        if (this.errors === errorsBefore) {
          const reason = error instanceof Error ? error.message : String(error);
          this.setError("LoadFailed", "load", `the saved state could not be loaded (${reason}); it is corrupt or from an incompatible version and should be discarded`);
        }
        throw error;
      }
      this.setState(S.Suspended, S.Loading);
    });
    progress(100);
  }

  /**
   * Writes the machine's state now, with no state change: for a host that itself keeps every
   * vCPU out of the engine for the whole call (a debugger holding the machine at a stop), so
   * the units see a machine at rest without a suspend. The result is an ordinary non-live
   * saved state that `load` accepts. Only while Running or Suspended; not on a vCPU.
   */
  async saveHeld(options: Pick<SaveOptions, "sink" | "onProgress">): Promise<void> {
    this.requireHandle();
    if (this.currentVcpu !== NIL_VCPU) throw new VmError("CalledOnVcpu", `saveHeld must not be called on a vCPU (called on vCPU ${this.currentVcpu})`);
    if (options === null || typeof options !== "object" || typeof options.sink?.write !== "function") throw new VmError("InvalidPointer", "saveHeld needs a sink with a write function");
    const state = this.currentState;
    if (state !== S.Running && state !== S.Suspended) throw new VmError("InvalidVmState", `saveHeld is not allowed in state ${state} (allowed from: ${S.Running}, ${S.Suspended})`);
    await this.writeNonLive(new SavedStateWriter(options.sink), [...this.units.values()], progressReporter(options.onProgress));
  }

  private async writeNonLive(writer: SavedStateWriter, units: readonly SavedStateUnit[], progress: (percent: number) => void): Promise<void> {
    for (const unit of units) unit.savePrep?.(false);
    progress(0);
    await writer.writeHeader(this.savedStateHeader(false, false));
    await this.writeFinalPass(writer, units, progress, 0);
  }

  private async writeFinalPass(writer: SavedStateWriter, units: readonly SavedStateUnit[], progress: (percent: number) => void, from: number): Promise<void> {
    for (let i = 0; i < units.length; i++) {
      const unit = units[i]!;
      await writer.writeSection(unit.name, unit.instance ?? 0, unit.version, FINAL_PASS, await unit.save());
      progress(from + Math.floor(((99 - from) * (i + 1)) / units.length));
    }
    await writer.writeTrailer();
    progress(100);
  }

  private savedStateHeader(live: boolean, teleport: boolean) {
    return { cpuCount: this.cpuCount, uuid: this.vmUuid, name: this.vmName, configuration: this.configuration, live, teleport };
  }

  private async liveSave(
    writer: SavedStateWriter,
    units: readonly SavedStateUnit[],
    progress: (percent: number) => void,
    maxLivePasses: number,
    teleport: boolean,
  ): Promise<SaveResult> {
    let cancelled = false;
    const session: SaveSession = { cancel: () => (cancelled = true) };
    this.saveSession = session;
    let suspendedByUs = false;
    try {
      // Step 1: live passes while the guest runs.
      let step1Error: unknown;
      let step1Failed = false;
      try {
        for (const unit of units) unit.savePrep?.(true);
        progress(0);
        await writer.writeHeader(this.savedStateHeader(true, teleport));
        const liveUnits = units.filter((unit) => typeof unit.liveSave === "function");
        for (let pass = 0; pass < maxLivePasses && liveUnits.length > 0; pass++) {
          if (cancelled) throw new VmError("SaveCancelled", "the save was cancelled");
          let done = true;
          for (const unit of liveUnits) {
            const result = unit.liveSave!(pass);
            await writer.writeSection(unit.name, unit.instance ?? 0, unit.version, pass, result.data);
            done &&= result.done;
          }
          progress(Math.min(50, 10 * (pass + 1)));
          if (done) break;
          await yieldToEventLoop(); // the guest runs between passes
        }
        if (cancelled) throw new VmError("SaveCancelled", "the save was cancelled");
      } catch (error) {
        step1Failed = true;
        step1Error = error;
      }
      if (step1Failed) return await this.liveSaveCleanup(step1Error);

      // Final suspend, unless a teleport from Suspended is already in Saving.
      if (this.currentState !== S.Saving) {
        for (;;) {
          const outcome = await this.liveSaveFinalSuspend();
          if (outcome === "retry") {
            await sleep(LIVE_SAVE_RETRY_MS);
            continue;
          }
          suspendedByUs = outcome === "suspended-by-us";
          break;
        }
      }

      // Step 2: the final pass on vCPU 0, always ending Suspended.
      return await this.request(0, async () => {
        let status: SaveResult["status"] = "ok";
        if (this.currentState === S.SuspendedLS) this.setState(S.Saving, S.SuspendedLS);
        else if (this.currentState === S.SuspendedExtLS) {
          this.setState(S.Saving, S.SuspendedExtLS);
          status = "live-save-suspended-externally";
        } else if (this.currentState === S.Saving) status = "live-save-suspended-externally";
        else throw new VmError("UnexpectedVmState", `live save step 2 found ${this.currentState}`);
        try {
          await this.writeFinalPass(writer, units, progress, 60);
        } finally {
          this.setState(S.Suspended, S.Saving);
        }
        return { status, suspendedByUs };
      });
    } finally {
      if (this.saveSession === session) this.saveSession = null;
    }
  }

  /** The final-suspend rendezvous of a live save (spec §5.5 step 2). */
  private async liveSaveFinalSuspend(): Promise<"suspended-by-us" | "suspended-externally" | "retry"> {
    const last = this.cpuCount - 1;
    let already: "ext" | "ls" | null = null;
    let retry = false;
    await this.rendezvousInternal("descending", true, (v) => {
      if (v === last) {
        const state = this.currentState;
        switch (state) {
          case S.RunningLS:
            this.setState(S.SuspendingLS, S.RunningLS);
            break;
          case S.SuspendedExtLS:
            already = "ext";
            break;
          case S.SuspendedLS:
            already = "ls";
            break;
          case S.DebuggingLS:
            retry = true;
            break;
          case S.OffLS:
            this.setState(S.Off, S.OffLS);
            throw new VmError("LiveSavePoweredOff", "the VM was powered off during the live save");
          case S.FatalErrorLS:
            this.setState(S.FatalError, S.FatalErrorLS);
            throw new VmError("LiveSaveFatalError", "the VM hit a fatal runtime error during the live save");
          case S.GuruMeditationLS:
            this.setState(S.GuruMeditation, S.GuruMeditationLS);
            throw new VmError("LiveSaveGuruMeditation", "the VM entered guru meditation during the live save");
          default:
            throw new VmError("UnexpectedVmState", `the live save's final suspend found ${vmStateName(state)}`);
        }
      }
      if (retry || already !== null) return "ok";
      this.expectUnstable("live save", [S.SuspendingLS]);
      if (v === 0) {
        this.notify("suspend");
        this.setState(S.SuspendedLS, S.SuspendingLS);
      }
      return "em-suspend";
    });
    if (retry) return "retry";
    return already === "ext" ? "suspended-externally" : "suspended-by-us";
  }

  /** After a failed step 1 (spec §5.5 step 4): put the state right, return the error to report. */
  private async liveSaveCleanup(step1Error: unknown): Promise<never> {
    let cleanupError: unknown;
    try {
      await this.rendezvousInternal("once", false, () => {
        const index = this.trySetState("live save cleanup", CLEANUP_PAIRS);
        if (index === 1) throw new VmError("LiveSavePoweredOff", "the VM was powered off during the live save");
        if (index === 2) throw new VmError("LiveSaveFatalError", "the VM hit a fatal runtime error during the live save");
        if (index === 3) throw new VmError("LiveSaveGuruMeditation", "the VM entered guru meditation during the live save");
        return "ok";
      });
    } catch (error) {
      cleanupError = error;
    }
    if (cleanupError !== undefined && step1Error instanceof VmError && step1Error.code === "SaveCancelled") throw cleanupError;
    throw step1Error;
  }

  // ---- rendezvous and requests ------------------------------------------------------------

  /**
   * Stops every vCPU at a safe point (a vCPU inside a run is cancelled; one inside an exit
   * handler finishes it first) and runs `worker` for the vCPUs in the kind's order:
   * descending (n-1 … 0), ascending and oneByOne (0 … n-1), allAtOnce (concurrently), once
   * (vCPU 0 only). One rendezvous at a time; others queue. Resolves with the most urgent
   * status the workers returned, or rejects with the first error; with `stopOnError` (not
   * for allAtOnce / once) the workers after a failure do not run.
   *
   * Do not await this from inside an exit handler: the handler's vCPU cannot stop until the
   * handler returns. Return an ExitAction, or call without awaiting.
   */
  async rendezvous(
    kind: RendezvousKind,
    worker: (vcpuIndex: number) => VmStatus | Promise<VmStatus>,
    options: { readonly stopOnError?: boolean } = {},
  ): Promise<VmStatus> {
    this.requireHandle();
    if (!["descending", "ascending", "oneByOne", "allAtOnce", "once"].includes(kind)) throw new VmError("InvalidParameter", `unknown rendezvous kind ${String(kind)}`);
    if (typeof worker !== "function") throw new VmError("InvalidPointer", "the rendezvous worker must be a function");
    const stopOnError = options.stopOnError ?? false;
    if (stopOnError && (kind === "allAtOnce" || kind === "once")) throw new VmError("InvalidParameter", `stopOnError is only for ordered rendezvous, not ${kind}`);
    return this.rendezvousInternal(kind, stopOnError, worker);
  }

  /**
   * Queues `fn` on vCPU `vcpuIndex`; it runs when that vCPU is at a safe point (between
   * runs, never inside a rendezvous). With `wait` (default) resolves with its result;
   * without, resolves at once (errors are logged). Fails with `RequestKilled` if the VM is
   * destroyed first.
   */
  request<T>(vcpuIndex: number, fn: (vcpuIndex: number) => T | Promise<T>, options: { readonly wait?: boolean } = {}): Promise<T> {
    this.requireHandle();
    const vcpu = this.vcpu(vcpuIndex);
    if (typeof fn !== "function") throw new VmError("InvalidPointer", "the request must be a function");
    const result = new Promise<T>((resolve, reject) => {
      if (vcpu.exit) {
        reject(new VmError("RequestKilled", `vCPU ${vcpuIndex} has ended; the request was not run`));
        return;
      }
      vcpu.requests.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      this.interrupt(vcpu);
    });
    if (options.wait === false) {
      result.catch((error: unknown) => console.error(`vm ${this.vmName}: a request on vCPU ${vcpuIndex} failed:`, error));
      return Promise.resolve(undefined as T);
    }
    return result;
  }

  /** Runs `fn` as an awaited request on every vCPU, one after the other, from n-1 down to 0. */
  async requestAll<T>(fn: (vcpuIndex: number) => T | Promise<T>): Promise<T[]> {
    const results: T[] = [];
    for (let v = this.cpuCount - 1; v >= 0; v--) results.push(await this.request(v, fn));
    return results;
  }

  /**
   * Testing hook assumed by spec §9: sets the state without checks or callbacks. Never use
   * it to drive a real VM.
   */
  forceState(state: VmState): void {
    this.currentState = state;
    for (const vcpu of this.vcpus) this.signal(vcpu);
  }

  // ---- internals: state ---------------------------------------------------------------------

  protected requireHandle(): void {
    if (this.references === 0) throw new VmError("InvalidVmHandle", `the handle of VM "${this.vmName}" has been released`);
    if (this.coreGone) throw new VmError("InvalidVmHandle", `VM "${this.vmName}" has been destroyed`);
  }

  protected beginStateChange(operation: string): void {
    this.requireHandle();
    if (this.callbackDepth > 0) throw new VmError("StateChangeFromCallback", `${operation} was called from inside a state callback`);
  }

  /**
   * Try-set (spec §3.3): commits the first pair whose source is the current state and
   * returns its 1-based index; otherwise reports through the at-error path and throws
   * `InvalidVmState`.
   */
  protected trySetState(who: string, pairs: readonly Pair[]): number {
    const state = this.currentState;
    const index = pairs.findIndex(([from]) => from === state);
    if (index < 0) {
      const expected =
        pairs.length === 1 ? `expected ${pairs[0]![0]}` : `tried ${pairs.map(([from, to]) => `${from} -> ${to}`).join(", ")}`;
      const message = `${who} is not allowed in state ${vmStateName(state)} (${expected})`;
      this.setError("InvalidVmState", who, message);
      throw new VmError("InvalidVmState", message);
    }
    const [from, to] = pairs[index]!;
    this.setState(to, from);
    return index + 1;
  }

  /**
   * Fails fast, exactly as the in-rendezvous try-set would (one at-error report), when no
   * pair can match, so a refused call does not even stop the vCPUs. The try-set inside the
   * rendezvous still decides: the state may change while the rendezvous waits its turn.
   */
  private precheck(who: string, pairs: readonly Pair[]): void {
    if (!pairs.some(([from]) => from === this.currentState)) this.trySetState(who, pairs);
  }

  /** Every participant checks the transitional state the first one set. */
  private expectUnstable(who: string, states: readonly VmState[], code: VmErrorCode = "UnexpectedUnstableState"): VmState {
    const state = this.currentState;
    if (!states.includes(state)) throw new VmError(code, `${who}: found ${vmStateName(state)} instead of ${states.join(" or ")}`);
    return state;
  }

  /** Commits one legal edge and runs the at-state round, synchronously (spec §3.2). */
  protected setState(to: VmState, from: VmState): void {
    if (this.currentState !== from || !isLegalTransition(from, to)) {
      throw new Error(`vm internal error: illegal transition ${this.currentState} -> ${to} (expected from ${from})`);
    }
    this.previousState = from;
    this.currentState = to;
    this.callbackDepth++;
    try {
      for (const { fn, user } of this.atState.snapshot()) {
        // spec §6.1(c): a throwing callback is logged and stops neither the round nor the
        // transition (else power-off would be stranded in PoweringOff, whenStopped never settling).
        try {
          fn(to, from, user, this as unknown as Vm<never>);
        } catch (error) {
          console.error(`vm ${this.vmName}: a state callback threw on ${from} -> ${to}:`, error);
        }
        // A destroy from a callback ends the round (spec §6.1).
        if (this.currentState === S.Destroying && to !== S.Destroying) break;
      }
    } finally {
      this.callbackDepth--;
    }
    for (const vcpu of this.vcpus) this.signal(vcpu);
    if (STOPPED_STATES.includes(this.currentState)) for (const resolve of this.stoppedWaiters.splice(0)) resolve(this.currentState);
  }

  private notify(hook: "powerOn" | "suspend" | "resume" | "powerOff" | "reset"): void {
    for (const subsystem of this.subsystems) this.callHook(subsystem, hook, () => subsystem[hook]?.());
  }

  /** A subsystem hook that throws is a subsystem bug: logged, and the operation goes on. */
  private callHook(subsystem: VmSubsystem, hook: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      console.error(`vm ${this.vmName}: subsystem ${subsystem.name} failed in ${hook}:`, error);
    }
  }

  private cancelSaveSession(): void {
    this.saveSession?.cancel();
  }

  private async powerOffInternal(): Promise<VmStatus> {
    const last = this.cpuCount - 1;
    return this.rendezvousInternal("descending", true, (v) => {
      if (v === last) {
        const index = this.trySetState("powerOff", POWER_OFF_PAIRS);
        if (index >= 7) this.cancelSaveSession();
      }
      const state = this.expectUnstable("powerOff", [S.PoweringOff, S.PoweringOffLS], "InvalidVmState");
      const vcpu = this.vcpus[v]!;
      vcpu.runState = "stopped";
      vcpu.halted = false;
      if (v === 0) {
        this.notify("powerOff");
        if (state === S.PoweringOffLS) this.setState(S.OffLS, S.PoweringOffLS);
        else this.setState(S.Off, S.PoweringOff);
      }
      return "em-off";
    });
  }

  private async suspendInternal(reason: SuspendReason, onlyIfRunning: boolean): Promise<VmStatus> {
    const last = this.cpuCount - 1;
    let skipped = false;
    const status = await this.rendezvousInternal("descending", true, (v) => {
      if (v === last) {
        // spec §6.4 port decision: a runtime-error suspend checks the state here, inside the rendezvous.
        if (onlyIfRunning && this.currentState !== S.Running && this.currentState !== S.RunningLS) skipped = true;
        else {
          this.trySetState("suspend", SUSPEND_PAIRS);
          this.suspendReason = reason;
        }
      }
      if (skipped) return "ok";
      const state = this.expectUnstable("suspend", [S.Suspending, S.SuspendingExtLS]);
      if (v === 0) {
        this.notify("suspend");
        if (state === S.Suspending) this.setState(S.Suspended, S.Suspending);
        else this.setState(S.SuspendedExtLS, S.SuspendingExtLS);
      }
      return "em-suspend";
    });
    return skipped ? "ok" : status;
  }

  private async fatalRuntimeError(): Promise<VmStatus> {
    const last = this.cpuCount - 1;
    return this.rendezvousInternal("descending", true, (v) => {
      if (v === last) {
        const index = this.trySetState("setRuntimeError", FATAL_PAIRS);
        if (index === 2) this.cancelSaveSession();
      }
      return "em-suspend";
    });
  }

  private async hardReset(): Promise<VmStatus> {
    if (this.powerOffInsteadOfResetFlag) {
      if (this.notifyResetTurnedIntoPowerOff) {
        try {
          this.notifyResetTurnedIntoPowerOff();
        } catch (error) {
          console.error(`vm ${this.vmName}: notifyResetTurnedIntoPowerOff threw:`, error);
        }
      }
      return this.powerOffInternal();
    }
    const last = this.cpuCount - 1;
    return this.rendezvousInternal("descending", true, (v) => {
      if (v === last) {
        this.trySetState("reset", RESET_PAIRS);
        this.resets++;
        this.hardResets++;
      }
      const state = this.expectUnstable("reset", [S.Resetting, S.ResettingLS]);
      const vcpu = this.vcpus[v]!;
      // Pending forced actions go (a reset CPU is not halted); queued requests stay.
      vcpu.halted = false;
      vcpu.wakePending = false;
      if (v !== 0) return state === S.Resetting ? "em-reset" : "em-suspend";
      this.notify("reset");
      if (state === S.Resetting) {
        this.setState(this.previousState === S.Suspended ? S.Suspended : S.Running, S.Resetting);
        return "em-reset";
      }
      this.setState(S.SuspendingLS, S.ResettingLS);
      this.notify("suspend");
      this.setState(S.SuspendedLS, S.SuspendingLS);
      return "em-suspend";
    });
  }

  /** Soft reset (spec §5.9), only on vCPU 0: devices and CPU, not memory; pending actions stay. */
  private async softReset(flags: number, callerVcpu: number): Promise<VmStatus> {
    if (callerVcpu !== 0) {
      const message = `a soft reset must run on vCPU 0, not vCPU ${callerVcpu === NIL_VCPU ? "(none)" : callerVcpu}`;
      this.setError("WrongVcpu", "softReset", message);
      throw new VmError("WrongVcpu", message);
    }
    const last = this.cpuCount - 1;
    return this.rendezvousInternal("descending", true, (v) => {
      if (v === last) {
        this.trySetState("softReset", SOFT_RESET_PAIRS);
        this.resets++;
        this.softResets++;
      }
      const state = this.expectUnstable("softReset", [S.SoftResetting, S.SoftResettingLS]);
      if (v === 0) {
        for (const subsystem of this.subsystems) this.callHook(subsystem, "softReset", () => subsystem.softReset?.(flags));
        if (state === S.SoftResettingLS) this.setState(S.RunningLS, S.SoftResettingLS);
        else this.setState(this.previousState === S.Suspended ? S.Suspended : S.Running, S.SoftResetting);
      }
      return "em-reschedule";
    });
  }

  /** A reset the guest asked for, or a triple fault: the firmware decides hard or soft. */
  private async guestReset(vcpuIndex: number, tripleFault: boolean): Promise<VmStatus> {
    const info = this.getResetInfo(tripleFault);
    return info.hard ? this.hardReset() : this.softReset(info.flags, vcpuIndex);
  }

  // ---- internals: vCPUs ---------------------------------------------------------------------

  private vcpu(vcpuIndex: number): Vcpu {
    const vcpu = Number.isInteger(vcpuIndex) ? this.vcpus[vcpuIndex] : undefined;
    if (vcpu === undefined) throw new VmError("InvalidCpuId", `vCPU ${String(vcpuIndex)} does not exist (cpu count ${this.cpuCount})`);
    return vcpu;
  }

  private signal(vcpu: Vcpu): void {
    const signal = vcpu.signal;
    vcpu.signal = null;
    signal?.();
  }

  /** Gets a vCPU to its safe point promptly: cancel its run, wake it from halt or idle. */
  private interrupt(vcpu: Vcpu): void {
    if (vcpu.inRun && !vcpu.cancelledByVm) {
      vcpu.cancelledByVm = true;
      this.engine.cancelVcpu(vcpu.index);
    }
    this.signal(vcpu);
  }

  private mayExecute(vcpu: Vcpu): boolean {
    const state = this.currentState;
    return (
      (state === S.Running || state === S.RunningLS) &&
      vcpu.runState === "started" &&
      !vcpu.halted &&
      this.pendingRendezvous === 0 &&
      !vcpu.exit
    );
  }

  private isCancelExit(exit: Exit): boolean {
    return typeof this.engine.isCancelExit === "function" ? this.engine.isCancelExit(exit) : exit.exitReason === "canceled";
  }

  /** Runs the synchronous part of `fn` in vCPU `v`'s context. */
  private async onVcpu<T>(v: number, fn: () => T | Promise<T>): Promise<T> {
    const saved = this.currentVcpu;
    this.currentVcpu = v;
    let result: T | Promise<T>;
    try {
      result = fn();
    } finally {
      this.currentVcpu = saved;
    }
    return await result;
  }

  private async rendezvousInternal(
    kind: RendezvousKind,
    stopOnError: boolean,
    worker: (vcpuIndex: number) => VmStatus | Promise<VmStatus>,
  ): Promise<VmStatus> {
    // Counted before waiting for the mutex: from now on no vCPU starts another run.
    this.pendingRendezvous++;
    let unlock!: () => void;
    const previous = this.rendezvousTail;
    this.rendezvousTail = new Promise<void>((resolve) => (unlock = resolve));
    let gate: Gate | null = null;
    try {
      await previous;
      if (this.vcpus.some((vcpu) => vcpu.exit)) throw new VmError("InvalidVmHandle", `VM "${this.vmName}" is being destroyed`);
      gate = new Gate(this.cpuCount);
      this.gate = gate;
      for (const vcpu of this.vcpus) this.interrupt(vcpu);
      await gate.allArrived;
      return await this.runWorkers(kind, stopOnError, worker);
    } finally {
      this.pendingRendezvous--;
      if (gate !== null) {
        this.gate = null;
        gate.open();
      }
      for (const vcpu of this.vcpus) this.signal(vcpu);
      unlock();
    }
  }

  private async runWorkers(
    kind: RendezvousKind,
    stopOnError: boolean,
    worker: (vcpuIndex: number) => VmStatus | Promise<VmStatus>,
  ): Promise<VmStatus> {
    const ids = this.vcpus.map((vcpu) => vcpu.index);
    let merged: VmStatus = "ok";
    let failed = false;
    let firstError: unknown;
    const record = (outcome: { ok: true; status: VmStatus } | { ok: false; error: unknown }) => {
      if (outcome.ok) merged = mergeStatus(merged, outcome.status);
      else if (!failed) {
        failed = true;
        firstError = outcome.error;
      }
    };
    const run = (v: number) =>
      this.onVcpu(v, () => worker(v)).then(
        (status) => ({ ok: true as const, status }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    if (kind === "allAtOnce") {
      for (const outcome of await Promise.all(ids.map(run))) record(outcome);
    } else if (kind === "once") {
      record(await run(0));
    } else {
      const order = kind === "descending" ? ids.reverse() : ids;
      for (const v of order) {
        if (failed && stopOnError) break;
        record(await run(v));
      }
    }
    if (failed) throw firstError;
    return merged;
  }

  private async serviceRequest(vcpu: Vcpu, request: VcpuRequest): Promise<void> {
    try {
      request.resolve(await this.onVcpu(vcpu.index, () => request.fn(vcpu.index)));
    } catch (error) {
      request.reject(error);
    }
  }

  private killRequests(): void {
    for (const vcpu of this.vcpus) {
      for (const request of vcpu.requests.splice(0)) request.reject(new VmError("RequestKilled", `VM "${this.vmName}" was destroyed before the request ran on vCPU ${vcpu.index}`));
    }
  }

  /** A failure in the engine or an exit handler: guru meditation, and everyone stops. */
  private loopFailure(error: unknown): void {
    if (this.currentState !== S.Running && this.currentState !== S.RunningLS) return;
    this.failure = error;
    this.enterGuruMeditation();
  }

  /** Starts an operation a vCPU asked for without waiting on it (the vCPU must get to its safe point). */
  private startFromVcpu(operation: () => Promise<VmStatus>): void {
    operation().catch((error: unknown) => {
      // A refused transition was already reported through the at-error path.
      if (!(error instanceof VmError)) console.error(`vm ${this.vmName}: an operation a vCPU started failed:`, error);
    });
  }

  private async vcpuLoop(vcpu: Vcpu): Promise<void> {
    const v = vcpu.index;
    for (;;) {
      const gate = this.gate;
      if (gate !== null && vcpu.parkedAt !== gate) {
        vcpu.parkedAt = gate;
        gate.arrive();
        await gate.opened;
        continue;
      }
      // A destroyed vCPU's worker ends; whatever is still queued is killed by destroy.
      if (vcpu.exit) return;
      const request = vcpu.requests.shift();
      if (request !== undefined) {
        await this.serviceRequest(vcpu, request);
        continue;
      }
      if (vcpu.halted && vcpu.wakePending) vcpu.halted = false;
      if (!this.mayExecute(vcpu)) {
        await new Promise<void>((resolve) => (vcpu.signal = resolve));
        continue;
      }
      // A wake that came before this run is moot: the engine sees the interrupt state itself.
      vcpu.wakePending = false;
      vcpu.inRun = true;
      let exit: Exit;
      const capped = this.executionCapPercent < 100;
      const started = capped ? this.now() : 0;
      try {
        exit = await this.engine.runVcpu(v);
      } catch (error) {
        vcpu.inRun = false;
        vcpu.cancelledByVm = false;
        this.loopFailure(error);
        continue;
      }
      vcpu.inRun = false;
      if (capped) {
        const ran = this.now() - started;
        const rest = (ran * (100 - this.executionCapPercent)) / this.executionCapPercent;
        if (rest > 0) await this.sleep(rest);
      }
      const cancelled = vcpu.cancelledByVm;
      vcpu.cancelledByVm = false;
      if (cancelled && this.isCancelExit(exit)) continue;
      // The VM left Running meanwhile (guru on another vCPU, a debugger stop): the exit is dropped,
      // which is safe because an intercepted instruction has not retired.
      if (this.currentState !== S.Running && this.currentState !== S.RunningLS) continue;
      let action: ExitAction;
      try {
        action = await this.onVcpu(v, () => this.handleExit(exit, v));
      } catch (error) {
        this.loopFailure(error);
        continue;
      }
      if (this.currentState !== S.Running && this.currentState !== S.RunningLS) continue;
      switch (action) {
        case "resume":
          break;
        case "halt":
          vcpu.halted = true;
          break;
        case "powerOff":
          this.startFromVcpu(() => this.powerOffInternal());
          break;
        case "reset":
        case "tripleFault":
          this.startFromVcpu(() => this.guestReset(v, action === "tripleFault"));
          break;
        default:
          this.loopFailure(new VmError("InvalidParameter", `exit handler returned ${JSON.stringify(action)} on vCPU ${v}, not an ExitAction`));
      }
      // Round-robin: with several vCPUs every exit lets the others (and timers) have a turn.
      if (this.cpuCount > 1 || ++vcpu.exitsSinceYield >= EXITS_PER_YIELD) {
        vcpu.exitsSinceYield = 0;
        await yieldToEventLoop();
      }
    }
  }
}
