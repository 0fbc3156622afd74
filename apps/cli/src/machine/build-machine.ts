/**
 * The composition root: wires guest RAM (pgm), port I/O (iom), the PC devices, the
 * WHPX-shaped accelerator (whpx-sim, backed by the cpu package) and the VM lifecycle with
 * its execution loop (vm). Nothing else in vmmkit knows about more than one package.
 */
import type { SerialBackend } from "@vmmkit/devices";
import { PortSpace } from "@vmmkit/iom";
import { AccessOrigin, PhysicalMemory, type PhysicalMemoryListener, type PhysicalRange } from "@vmmkit/pgm";
import { Vm, VmState, type ExecutionEngine, type ExitAction } from "@vmmkit/vm";
import {
  WhvEmulatorApi,
  WhvMapGpaRangeFlags,
  WhvPlatform,
  type WhvEmulatorCallbacks,
  type WhvPartitionHandle,
  type WhvRegisterName,
  type WhvRegisterValues,
  type WhvRunVpExitContext,
} from "@vmmkit/whpx-sim";
import { CliError, hex } from "../cli-error.js";
import { DebugControl } from "./debug-control.js";
import { whpxEngineHooks } from "./engine-hooks.js";
import type { EntryState, LoadedImage } from "./images.js";
import { CONVENTIONAL_MEMORY_END, EXTENDED_MEMORY_START, MAX_MEMORY, MIN_MEMORY } from "./layout.js";
import { PcPlatform, type ClockMode } from "./pc-platform.js";

export { COM1_PORT, DEBUG_EXIT_PORT } from "./pc-platform.js";

/** Why the machine stopped, and the process exit status that reports it. */
export interface RunOutcome {
  /** Process exit status: 0 after HLT with interrupts off, (v << 1) | 1 after isa-debug-exit. */
  status: number;
  reason: "halted" | "debug-exit" | "instruction-limit" | "timeout" | "triple-fault" | "unsupported" | "failure" | "killed" | "reset" | "quit" | "suspended";
  /** A line for the user when the stop was not the guest's own choice. */
  message?: string;
}

export interface MachineOptions {
  readonly memoryBytes: number;
  readonly serial: SerialBackend;
  /** Where the debug console (ports 0xE9 and 0x402) writes; not present when absent. */
  readonly debugConsole?: SerialBackend;
  /** "virtual" (default): machine time follows retired instructions; "realtime": the host's clock. */
  readonly clock?: ClockMode;
  /** Virtual clock speed in guest instructions per microsecond (MIPS); default 100. */
  readonly clockMips?: number;
  /** Places the guest image into memory (after RAM exists) and says how the CPU starts. */
  readonly load: (memory: PhysicalMemory) => LoadedImage;
  /** Virtual processors (default 1); every one starts in the image's entry state. */
  readonly cpuCount?: number;
  /** A triple fault or a guest reset ends the run (QEMU's -no-reboot) instead of resetting the machine. */
  readonly noReboot?: boolean;
  /** Hold every vCPU before its first instruction until a debugger attaches and resumes. */
  readonly waitForDebugger?: boolean;
  /** The configuration text saved states record and a load requires (saved-state.ts builds it). */
  readonly configuration?: string;
}

export interface RunLimits {
  readonly maxInstructions?: number;
  readonly timeoutSeconds?: number;
  /**
   * Suspend the machine (outcome "suspended", VM left Suspended for a save) once the boot
   * processor has retired exactly this many instructions since power-on.
   */
  readonly stopAfterInstructions?: number;
}

/** The parts of a built machine, for the CLI and for tests. */
export interface Machine {
  readonly memory: PhysicalMemory;
  readonly ports: PortSpace;
  readonly platform: WhvPlatform;
  readonly partition: WhvPartitionHandle;
  readonly vm: Vm<WhvRunVpExitContext>;
  readonly image: LoadedImage;
  /** Debugger control: the gdb server's target, with the machine's dbgf breakpoint manager. */
  readonly debug: DebugControl;
  /** The PC devices and the machine clock. */
  readonly devices: PcPlatform;
  /** Powers on, runs until the guest stops (or a limit is hit) and powers off. */
  run(limits?: RunLimits): Promise<RunOutcome>;
  /** Ends the machine from the host (Ctrl-A x): exit status 0. */
  quit(): void;
  /** Guest instructions executed so far (by all vCPUs). */
  instructionsRetired(): number;
  readonly cpuCount: number;
  /** Instructions one vCPU retired since power-on (machine time follows vCPU 0's). */
  instructionsRetiredBy(vcpu: number): number;
  /** Sets that count (a restore), so machine time and instruction limits continue from it. */
  setInstructionsRetiredBy(vcpu: number, count: number): void;
  /**
   * Asks the running machine to suspend at the boot processor's next exit (SIGINT/SIGTERM
   * with --save): `run` then resolves with outcome "suspended".
   */
  requestSuspend(): void;
}

export const MAX_CPUS = 16;

const NO_PENDING_DEBUG = { breakpoint0: false, breakpoint1: false, breakpoint2: false, breakpoint3: false, singleStep: false } as const;
/** Longest run of the boot processor between timer checks with the realtime clock. */
const REALTIME_SLICE_INSTRUCTIONS = 20_000;

export function buildMachine(options: MachineOptions): Machine {
  const { memoryBytes } = options;
  const cpuCount = options.cpuCount ?? 1;
  if (!Number.isInteger(cpuCount) || cpuCount < 1 || cpuCount > MAX_CPUS) throw new CliError(`--smp must be 1 to ${MAX_CPUS} processors, got ${cpuCount}`);
  if (!Number.isInteger(memoryBytes) || memoryBytes < MIN_MEMORY || memoryBytes > MAX_MEMORY || memoryBytes % 4096 !== 0) {
    throw new CliError(`--mem must be between ${MIN_MEMORY / 2 ** 20} MiB and ${MAX_MEMORY / 2 ** 20} MiB, got ${memoryBytes} bytes`);
  }

  // ---- guest physical memory -----------------------------------------------------------
  const memory = new PhysicalMemory({ arenaSize: memoryBytes });
  memory.addRam(0, CONVENTIONAL_MEMORY_END, "conventional memory");
  memory.addRam(EXTENDED_MEMORY_START, memoryBytes - EXTENDED_MEMORY_START, "extended memory");
  const image = options.load(memory);

  // ---- accelerator: RAM and ROM are mapped for the fast path; everything else exits ------
  const platform = new WhvPlatform();
  const partition = platform.createPartition();
  platform.setPartitionProperty(partition, "processorCount", cpuCount);
  platform.setupPartition(partition);
  const mapper: PhysicalMemoryListener = {
    rangeAdded(range: PhysicalRange) {
      if (!range.bytes) return; // MMIO stays unmapped: accesses exit to the VMM
      const flags =
        range.kind === "ram"
          ? WhvMapGpaRangeFlags.read | WhvMapGpaRangeFlags.write | WhvMapGpaRangeFlags.execute
          : WhvMapGpaRangeFlags.read | WhvMapGpaRangeFlags.execute;
      platform.mapGpaRange(partition, range.bytes, BigInt(range.start), BigInt(range.size), flags);
    },
    rangeRemoved(range: PhysicalRange) {
      if (range.bytes) platform.unmapGpaRange(partition, BigInt(range.start), BigInt(range.size));
    },
  };
  for (let vcpu = 0; vcpu < cpuCount; vcpu++) platform.createVirtualProcessor(partition, vcpu);
  memory.addListener(mapper);
  memory.attachEngine(whpxEngineHooks(memory, platform, partition)); // handler state → page protection in whpx-sim
  for (let vcpu = 0; vcpu < cpuCount; vcpu++) applyEntryState(platform, partition, vcpu, image.entry);

  // ---- devices on the port bus ---------------------------------------------------------
  let outcome: RunOutcome | null = null;
  const ports = new PortSpace();
  const clockMips = options.clockMips ?? 100;
  if (!(clockMips > 0) || !Number.isFinite(clockMips)) throw new CliError(`--clock-rate must be a positive number of MIPS, got ${clockMips}`);
  const devices = new PcPlatform({
    ports,
    platform,
    partition,
    serial: options.serial,
    ...(options.debugConsole !== undefined ? { debugConsole: options.debugConsole } : {}),
    memoryBytes,
    cpuCount,
    clock: options.clock ?? "virtual",
    nanosecondsPerInstruction: 1000 / clockMips,
    retired: () => retired(0),
    onDebugExit: (status) => {
      outcome ??= { status, reason: "debug-exit" };
    },
    onReset: () => {
      // Called inside the port write: the reset happens once the instruction completed.
      if (options.noReboot === true) outcome ??= { status: 0, reason: "reset", message: "the guest reset the machine (--no-reboot)" };
      else resetRequested = true;
    },
    onInterruptRequest: () => vm.wake(0),
  });

  // ---- the instruction emulator completes I/O and MMIO exits through these callbacks ---
  const emulatorApi = new WhvEmulatorApi();
  const callbacks: WhvEmulatorCallbacks<number> = {
    ioPort(_vcpu, access) {
      if (access.direction === "in") access.data = ports.read(access.port, access.accessSize);
      else ports.write(access.port, access.data, access.accessSize);
    },
    memory(_vcpu, access) {
      // One call per access, so a handler or device sees the guest's access size (pgm
      // splits it only where it crosses a page or handler boundary).
      const address = Number(access.gpaAddress);
      const bytes = access.data.subarray(0, access.accessSize);
      const write = access.direction === "write";
      const perform = () => (write ? memory.writeFrom(address, bytes, AccessOrigin.Emulator) : memory.readInto(address, bytes, AccessOrigin.Emulator));
      if (debug.watchingMmio) debug.watchDeviceAccess(address, bytes, write, perform);
      else perform();
    },
    getVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(vcpu: number, names: N) {
      return platform.getVirtualProcessorRegisters(partition, vcpu, names);
    },
    setVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(vcpu: number, names: N, values: WhvRegisterValues<N>) {
      platform.setVirtualProcessorRegisters(partition, vcpu, names, values);
    },
  };
  const emulator = emulatorApi.createEmulator(callbacks);

  // ---- the VM and its execution loop ---------------------------------------------------
  let instructionBudget = Number.POSITIVE_INFINITY;
  // The stop point for a save (boot processor's retired instructions), and whether the
  // suspend for it (or for a signal) was asked for.
  let stopAfter = Number.POSITIVE_INFINITY;
  let suspendRequested = false;
  let resolveSuspended: (() => void) | undefined;
  // Instructions since power-on: a reset re-creates the processors, whose counts start again.
  const retiredBeforeReset = new Float64Array(cpuCount);
  const retired = (vcpu: number): number => platform.getVirtualProcessorCounters(partition, vcpu).instructionsRetired + retiredBeforeReset[vcpu]!;
  let resetRequested = false;
  const engine: ExecutionEngine<WhvRunVpExitContext> = {
    runVcpu: async (vcpu) => {
      await debug.beforeRun(vcpu);
      let limit = Math.max(0, instructionBudget - retired(vcpu));
      // Nothing more runs on the boot processor once the suspend for a save was asked for.
      if (vcpu === 0) limit = suspendRequested ? 0 : Math.min(limit, Math.max(0, stopAfter - retired(0)));
      let kick: ReturnType<typeof setTimeout> | undefined;
      if (vcpu === 0) {
        // Timers that are due fire now; their interrupt goes in before the guest runs on.
        devices.catchUp();
        devices.deliverInterrupts();
        limit = Math.min(limit, devices.instructionsUntilNextEvent());
        if (options.clock === "realtime" && Number.isFinite(devices.millisecondsUntilNextEvent())) {
          // Host timers fire a millisecond late at best: short slices let due timers be
          // noticed between them, and the kick ends a slice that runs long.
          limit = Math.min(limit, REALTIME_SLICE_INSTRUCTIONS);
          kick = setTimeout(() => platform.cancelRunVirtualProcessor(partition, 0), devices.millisecondsUntilNextEvent());
        }
      }
      debug.enterRun(vcpu);
      try {
        return await platform.runVirtualProcessor(partition, vcpu, { maxInstructions: limit, singleStep: debug.singleStep(vcpu) });
      } finally {
        debug.leaveRun(vcpu);
        if (kick !== undefined) clearTimeout(kick);
      }
    },
    cancelVcpu: (vcpu) => platform.cancelRunVirtualProcessor(partition, vcpu),
  };

  /**
   * The boot processor at an exit that is complete (the action is resume or halt) and at or
   * past the stop point, or with a suspend requested: it parks and the VM is suspended from
   * outside the vCPU loop; `run` resolves with "suspended".
   */
  const suspendIfDue = (action: ExitAction, vcpu: number): ExitAction => {
    if (vcpu !== 0 || (action !== "resume" && action !== "halt") || outcome !== null) return action;
    if (!suspendRequested && retired(0) < stopAfter) return action;
    if (!suspendRequested) {
      suspendRequested = true;
      setImmediate(() => {
        if (vm.state !== VmState.Running || outcome !== null) return;
        vm.suspend("user").then(
          () => {
            outcome ??= { status: 0, reason: "suspended" };
            resolveSuspended?.();
          },
          () => undefined, // the VM left Running meanwhile (power off, guru): run reports that
        );
      });
    }
    return "halt";
  };

  const handleExit = async (exit: WhvRunVpExitContext, vcpu: number): Promise<ExitAction> => suspendIfDue(await handleAnyExit(exit, vcpu), vcpu);

  const handleAnyExit = async (exit: WhvRunVpExitContext, vcpu: number): Promise<ExitAction> => {
    if (exit.exitReason === "exception" && exit.vpException.exceptionType === "debugTrapOrFault") {
      // whpx-sim keeps an intercepted #DB trap pending for the guest; the debugger decides
      // (DebugControl re-injects a #DB that is the guest's own).
      platform.setVirtualProcessorRegisters(partition, vcpu, ["x64PendingDebugException"] as const, [NO_PENDING_DEBUG]);
    }
    const owned = await debug.onExit(exit, vcpu);
    if (owned !== null) return outcome ? "powerOff" : owned;
    // A cancel is sticky: one sent for a run that ended anyway arrives with the next run,
    // which then retired nothing (so it is no debugger step either). Run again.
    if (exit.exitReason === "canceled" && exit.cancelReason === "user") return outcome ? "powerOff" : "resume";
    if (exit.exitReason === "canceled" && exit.cancelReason === "instructionBudget" && retired(vcpu) < instructionBudget) {
      // A debugger step or a timer deadline ended the run, not --max-instructions.
      await debug.afterExit(vcpu);
      return outcome ? "powerOff" : "resume";
    }
    debug.setIoCpu(vcpu);
    let action = handleMachineExit(exit, vcpu);
    // A port-I/O breakpoint on the access that ended the guest still stops it first.
    if (action === "powerOff" && !debug.hasBreakpointHit(vcpu)) return action;
    if (resetRequested && action !== "powerOff") {
      resetRequested = false;
      action = "reset";
    }
    await debug.afterExit(vcpu);
    return outcome ? "powerOff" : action;
  };

  const handleMachineExit = (exit: WhvRunVpExitContext, vcpu: number): ExitAction => {
    switch (exit.exitReason) {
      case "x64IoPortAccess": {
        const status = emulatorApi.tryIoEmulation(emulator, vcpu, exit.vpContext, exit.ioPortAccess);
        if (!status.emulationSuccessful) throw new Error(`port ${hex(exit.ioPortAccess.portNumber)} access could not be emulated`);
        return outcome ? "powerOff" : "resume";
      }
      case "memoryAccess": {
        const status = emulatorApi.tryMmioEmulation(emulator, vcpu, exit.vpContext, exit.memoryAccess);
        if (!status.emulationSuccessful) throw new Error(`memory access at ${hex(Number(exit.memoryAccess.gpa))} could not be emulated`);
        return outcome ? "powerOff" : "resume";
      }
      case "x64Halt":
        if ((exit.vpContext.rflags & 0x200n) === 0n) {
          outcome ??= { status: 0, reason: "halted" };
          return "powerOff";
        }
        // Waiting for an interrupt: with a virtual clock, time jumps to the next timer event.
        if (vcpu !== 0) return "halt";
        if (devices.interruptPending || devices.skipToNextEvent()) return "resume";
        if (options.clock === "realtime") {
          if (devices.millisecondsUntilNextEvent() <= 0) return "resume"; // already due
          setImmediate(wakeAtNextEvent); // after the loop has started to wait
        }
        return "halt"; // woken by serial input, a debugger, or (realtime) the timer above
      case "x64InterruptWindow":
        return "resume"; // the next run delivers the interrupt that waited for it
      case "canceled":
        if (exit.cancelReason === "instructionBudget" && retired(vcpu) >= instructionBudget) {
          outcome ??= { status: 124, reason: "instruction-limit", message: `stopped after ${instructionBudget} instructions (--max-instructions)` };
          return "powerOff";
        }
        return "resume";
      case "unrecoverableException":
        if (options.noReboot !== true) return "tripleFault"; // the VM resets the machine (resetMachine)
        outcome ??= { status: 1, reason: "triple-fault", message: `the guest triple-faulted (shutdown) at ${exitLocation(exit)}` };
        return "powerOff";
      case "unsupportedFeature":
        outcome ??= {
          status: 1,
          reason: "unsupported",
          message: `the guest used something vmmkit does not implement yet at ${exitLocation(exit)}: ${exit.unsupportedFeature.description}`,
        };
        return "powerOff";
      default:
        outcome ??= { status: 1, reason: "failure", message: `unexpected ${exit.exitReason} exit at ${exitLocation(exit)}` };
        return "powerOff";
    }
  };

  /**
   * A machine reset (triple fault, port 0x92, the 8042), as QEMU does it for -kernel: the
   * processors start again in the image's entry state, the image is loaded again (the rest
   * of RAM keeps its contents, as on a real PC), and the devices are reset. Armed int3
   * breakpoints are taken out around the reload and put back into the fresh code.
   */
  const resetMachine = (): void => {
    const dbg = debug.debugger;
    const int3s: number[] = [];
    dbg.enumerate((handle, info) => {
      if (info.type === "int3" && info.enabled) int3s.push(handle);
    });
    for (const handle of int3s) dbg.disable(handle);
    options.load(memory);
    for (const handle of int3s) dbg.enable(handle);
    for (let vcpu = 0; vcpu < cpuCount; vcpu++) {
      retiredBeforeReset[vcpu] = retired(vcpu);
      platform.deleteVirtualProcessor(partition, vcpu);
      platform.createVirtualProcessor(partition, vcpu);
      applyEntryState(platform, partition, vcpu, image.entry);
    }
    debug.processorsRecreated();
    devices.reset();
    devices.applyA20(); // new processors start with A20 on; the gate may say otherwise
  };

  const vm = new Vm<WhvRunVpExitContext>({
    name: "vmmkit",
    cpuCount,
    engine,
    handleExit,
    subsystems: [{ name: "pc", reset: resetMachine }],
    ...(options.configuration !== undefined ? { configuration: options.configuration } : {}),
  });

  /** Realtime clock, boot processor halted: wake it when the next timer is due, to the tick. */
  const wakeAtNextEvent = (): void => {
    const wait = devices.millisecondsUntilNextEvent();
    if (!Number.isFinite(wait)) return;
    // setTimeout is coarse (a millisecond or more); the last stretch is polled.
    if (wait > 2) setTimeout(wakeAtNextEvent, wait - 1.5);
    else if (wait > 0) setImmediate(wakeAtNextEvent);
    else vm.wake(0);
  };

  const debug = new DebugControl(
    {
      platform,
      partition,
      memory,
      ports,
      cpuCount,
      wake: (vcpu) => vm.wake(vcpu),
      kill: () => {
        outcome ??= { status: 1, reason: "killed", message: "the debugger killed the guest" };
        if (vm.state === VmState.Running) void vm.powerOff();
      },
      monitorHelp: [
        "state                              the VM's lifecycle state and where each vCPU is",
        "reset                              reset the machine (as a triple fault would); gdb: flushregs after it",
      ],
      monitor: (command, print) => {
        if (command === "reset") {
          // Every vCPU is parked for the debugger: the reset happens now, and the machine
          // starts from the image's entry when gdb resumes it.
          resetMachine();
          print(`machine reset: the image is loaded again and every vCPU is at its entry point\n`);
          return true;
        }
        if (command !== "state") return false;
        const lines = [`VM state: ${vm.state}`];
        for (let vcpu = 0; vcpu < cpuCount; vcpu++) lines.push(`  ${debug.describeThread(vcpu)}, ${retired(vcpu)} instructions retired`);
        print(lines.join("\n") + "\n");
        return true;
      },
    },
    { waitForDebugger: options.waitForDebugger === true },
  );

  const run = async (limits: RunLimits = {}): Promise<RunOutcome> => {
    if (limits.maxInstructions !== undefined) instructionBudget = limits.maxInstructions;
    if (limits.stopAfterInstructions !== undefined) stopAfter = limits.stopAfterInstructions;
    const suspended = new Promise<void>((resolve) => (resolveSuspended = resolve));
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (limits.timeoutSeconds !== undefined) {
      timer = setTimeout(() => {
        outcome ??= { status: 124, reason: "timeout", message: `the guest did not finish within ${limits.timeoutSeconds} s (--timeout)` };
        if (vm.state === VmState.Running) void vm.powerOff();
      }, limits.timeoutSeconds * 1000);
    }
    try {
      // A restored machine is Suspended: it goes on where it was saved.
      if (vm.state === VmState.Suspended) await vm.resume();
      else await vm.powerOn();
      const state = await Promise.race([vm.whenStopped(), suspended.then(() => VmState.Suspended)]);
      if (state === VmState.GuruMeditation) {
        const detail = vm.failure instanceof Error ? vm.failure.message : String(vm.failure);
        outcome ??= { status: 1, reason: "failure", message: `the VM stopped on an internal error: ${detail}` };
        await vm.powerOff();
      }
    } finally {
      if (timer) clearTimeout(timer);
    }
    const result = outcome ?? { status: 1, reason: "failure", message: "the VM stopped without a reason" };
    debug.finished(result.status);
    return result;
  };

  return {
    memory,
    ports,
    platform,
    partition,
    vm,
    image,
    debug,
    devices,
    run,
    quit: () => {
      outcome ??= { status: 0, reason: "quit" };
      debug.detach();
      if (vm.state === VmState.Running) void vm.powerOff();
    },
    instructionsRetired: () => {
      let total = 0;
      for (let vcpu = 0; vcpu < cpuCount; vcpu++) total += retired(vcpu);
      return total;
    },
    cpuCount,
    instructionsRetiredBy: (vcpu) => retired(vcpu),
    setInstructionsRetiredBy: (vcpu, count) => {
      retiredBeforeReset[vcpu] = count - platform.getVirtualProcessorCounters(partition, vcpu).instructionsRetired;
    },
    requestSuspend: () => {
      if (vm.state !== VmState.Running || suspendRequested) return;
      // The boot processor's next exit is the stop point: end its run now, or wake it from HLT.
      stopAfter = 0;
      platform.cancelRunVirtualProcessor(partition, 0);
      vm.wake(0);
    },
  };
}

function exitLocation(exit: WhvRunVpExitContext): string {
  return `${hex(exit.vpContext.cs.selector)}:${hex(Number(exit.vpContext.rip))}`;
}

/** Puts the boot processor into the state the image format asks for. */
function applyEntryState(platform: WhvPlatform, partition: WhvPartitionHandle, vcpu: number, entry: EntryState): void {
  if (entry.mode === "reset") return; // a new processor starts at the reset vector
  if (entry.mode === "real") {
    const cs = { base: BigInt(entry.cs * 16), limit: 0xffff, selector: entry.cs, attributes: 0x9b };
    platform.setVirtualProcessorRegisters(partition, vcpu, ["x64Cs", "x64Rip"] as const, [cs, BigInt(entry.ip)]);
    return;
  }
  // Flat 32-bit protected mode, as a multiboot loader leaves it: 4 GiB code and data
  // segments from a small GDT the loader wrote, paging off, interrupts off.
  const code = { base: 0n, limit: 0xffffffff, selector: 0x08, attributes: 0xc09b };
  const data = { base: 0n, limit: 0xffffffff, selector: 0x10, attributes: 0xc093 };
  platform.setVirtualProcessorRegisters(
    partition,
    vcpu,
    ["x64Cr0", "x64Gdtr", "x64Cs", "x64Ds", "x64Es", "x64Ss", "x64Fs", "x64Gs", "x64Rip", "x64Rflags", "x64Rax", "x64Rbx"] as const,
    [
      0x11n, // PE, ET
      { base: BigInt(entry.gdtAddress), limit: 23 },
      code,
      data,
      data,
      data,
      data,
      data,
      BigInt(entry.eip >>> 0),
      0x2n,
      BigInt((entry.eax ?? 0) >>> 0),
      BigInt((entry.ebx ?? 0) >>> 0),
    ],
  );
}
