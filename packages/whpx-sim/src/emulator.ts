/**
 * The instruction-emulator helper (WHPX's WinHvEmulation): completes an instruction that
 * caused an I/O-port or memory-access exit, through caller callbacks. Plain IN/OUT take a
 * short path; everything else (string and REP forms, any MMIO instruction) runs the same
 * interpreter on a scratch CPU whose memory and ports are the callbacks.
 */
import { Cpu, RunExit, type AccessSize, type CpuBus } from "@vmmkit/cpu";
import { WhvError } from "./errors.js";
import type {
  WhvEmulatorHandle,
  WhvIoPortAccessContext,
  WhvMemoryAccessContext,
  WhvRegisterName,
  WhvRegisterValues,
  WhvVpExitContext,
  WhvX64SegmentRegister,
} from "./types.js";
import { ProcessorState, readRegister, writeRegister } from "./register-access.js";

export interface WhvEmulatorIoAccessInfo {
  direction: "in" | "out";
  port: number;
  accessSize: AccessSize;
  /** For "out" the value written; an "in" callback stores the value read here. */
  data: number;
}

export interface WhvEmulatorMemoryAccessInfo {
  gpaAddress: bigint;
  direction: "read" | "write";
  accessSize: number;
  /** For "write" the bytes written; a "read" callback fills them. */
  data: Uint8Array;
}

/** Synchronous callbacks; a throw counts as "callback failed". */
export interface WhvEmulatorCallbacks<C> {
  ioPort(context: C, access: WhvEmulatorIoAccessInfo): void;
  memory(context: C, access: WhvEmulatorMemoryAccessInfo): void;
  getVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(context: C, names: N): WhvRegisterValues<N>;
  setVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(context: C, names: N, values: WhvRegisterValues<N>): void;
}

export interface WhvEmulatorStatus {
  emulationSuccessful: boolean;
  internalEmulationFailure: boolean;
  ioPortCallbackFailed: boolean;
  memoryCallbackFailed: boolean;
  translateGvaPageCallbackFailed: boolean;
  translateGvaPageCallbackGpaIsNotAligned: boolean;
  getVirtualProcessorRegistersCallbackFailed: boolean;
  setVirtualProcessorRegistersCallbackFailed: boolean;
  interruptCausedIntercept: boolean;
  guestCannotBeFaulted: boolean;
}

function status(bits: Partial<WhvEmulatorStatus>): WhvEmulatorStatus {
  return {
    emulationSuccessful: false,
    internalEmulationFailure: false,
    ioPortCallbackFailed: false,
    memoryCallbackFailed: false,
    translateGvaPageCallbackFailed: false,
    translateGvaPageCallbackGpaIsNotAligned: false,
    getVirtualProcessorRegistersCallbackFailed: false,
    setVirtualProcessorRegistersCallbackFailed: false,
    interruptCausedIntercept: false,
    guestCannotBeFaulted: false,
    ...bits,
  };
}

/** State the scratch CPU needs to run one instruction the way the guest would. */
const STATE_REGISTERS = [
  "x64Rax", "x64Rcx", "x64Rdx", "x64Rbx", "x64Rsp", "x64Rbp", "x64Rsi", "x64Rdi",
  "x64Cr0", "x64Cr3", "x64Cr4", "x64Efer",
  "x64Es", "x64Cs", "x64Ss", "x64Ds", "x64Fs", "x64Gs", "x64Ldtr", "x64Tr",
  "x64Gdtr", "x64Idtr", "x64Rip", "x64Rflags",
] as const;

/** Always written back; segment registers only when the instruction changed them. */
const RESULT_REGISTERS = ["x64Rax", "x64Rcx", "x64Rdx", "x64Rbx", "x64Rsp", "x64Rbp", "x64Rsi", "x64Rdi", "x64Rip", "x64Rflags"] as const;
const SEGMENT_REGISTERS = ["x64Es", "x64Cs", "x64Ss", "x64Ds", "x64Fs", "x64Gs"] as const;
/** Written back when the instruction changed them (LGDT/LIDT, LLDT/LTR, MOV CR, LMSW from MMIO). */
const SYSTEM_REGISTERS = ["x64Gdtr", "x64Idtr", "x64Ldtr", "x64Tr", "x64Cr0", "x64Cr3", "x64Cr4", "x64Efer"] as const;

/** Equal register values: bigints, or the fields of segment and table records. */
function sameRegisterValue(a: unknown, b: unknown): boolean {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) return a === b;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  return Object.keys(x).every((key) => x[key] === y[key] || (typeof x[key] === "number" && typeof y[key] === "number" && (x[key] as number) >>> 0 === (y[key] as number) >>> 0));
}

const FLAG_TF = 0x100;
const SINGLE_STEP = { breakpoint0: false, breakpoint1: false, breakpoint2: false, breakpoint3: false, singleStep: true } as const;

class CallbackFailure {
  constructor(readonly which: keyof WhvEmulatorStatus) {}
}

class Emulator<C> implements CpuBus {
  readonly handle = Object.freeze({}) as WhvEmulatorHandle;
  readonly scratch = new Cpu({ bus: this });
  readonly state = new ProcessorState(this.scratch);
  context: C | undefined;
  private readonly ioInfo: WhvEmulatorIoAccessInfo = { direction: "in", port: 0, accessSize: 1, data: 0 };

  constructor(readonly callbacks: WhvEmulatorCallbacks<C>) {}

  readPhysical(address: number, size: AccessSize): number {
    const data = new Uint8Array(size);
    this.call("memoryCallbackFailed", () => this.callbacks.memory(this.context as C, { gpaAddress: BigInt(address), direction: "read", accessSize: size, data }));
    let value = 0;
    for (let i = 0; i < size; i++) value |= data[i]! << (8 * i);
    return value >>> 0;
  }

  writePhysical(address: number, value: number, size: AccessSize): void {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = value >>> (8 * i);
    this.call("memoryCallbackFailed", () => this.callbacks.memory(this.context as C, { gpaAddress: BigInt(address), direction: "write", accessSize: size, data }));
  }

  readPort(port: number, size: AccessSize): number {
    return this.port("in", port, 0, size);
  }

  writePort(port: number, value: number, size: AccessSize): void {
    this.port("out", port, value, size);
  }

  port(direction: "in" | "out", port: number, value: number, size: AccessSize): number {
    const info = this.ioInfo;
    info.direction = direction;
    info.port = port;
    info.accessSize = size;
    info.data = value;
    this.call("ioPortCallbackFailed", () => this.callbacks.ioPort(this.context as C, info));
    const mask = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return (info.data & mask) >>> 0;
  }

  call(failure: keyof WhvEmulatorStatus, action: () => void): void {
    try {
      action();
    } catch (error) {
      throw new CallbackFailure(failure);
    }
  }
}

/** Creates, runs and destroys instruction emulators (one per virtual processor). */
export class WhvEmulatorApi {
  private readonly emulators = new WeakMap<WhvEmulatorHandle, Emulator<unknown>>();

  createEmulator<C>(callbacks: WhvEmulatorCallbacks<C>): WhvEmulatorHandle {
    const emulator = new Emulator<C>(callbacks);
    this.emulators.set(emulator.handle, emulator as Emulator<unknown>);
    return emulator.handle;
  }

  destroyEmulator(handle: WhvEmulatorHandle): void {
    if (!this.emulators.delete(handle)) throw new WhvError("invalidArg", "not an emulator handle");
  }

  /** Completes the IN/OUT/INS/OUTS of an x64IoPortAccess exit. */
  tryIoEmulation<C>(handle: WhvEmulatorHandle, context: C, vpContext: WhvVpExitContext, access: WhvIoPortAccessContext): WhvEmulatorStatus {
    const emulator = this.emulator<C>(handle);
    emulator.context = context;
    if (!access.accessInfo.stringOp && vpContext.instructionLength > 0) {
      // IN/OUT: one port access and two registers, no decoding needed.
      try {
        const size = access.accessInfo.accessSize;
        const mask = size === 4 ? 0xffffffffn : BigInt((1 << (8 * size)) - 1);
        const rip = vpContext.rip + BigInt(vpContext.instructionLength);
        // Under TF the completed instruction owes the guest a single-step trap, and an I/O
        // breakpoint (DR7 R/W = 10 with CR4.DE) on the port a debug trap: the access happened
        // here, not in the processor that would have checked it.
        const trap = (vpContext.rflags & BigInt(FLAG_TF)) !== 0n;
        const hits = this.ioBreakpointHits(emulator, context, access.portNumber, size);
        const pending =
          trap || hits !== 0
            ? { breakpoint0: (hits & 1) !== 0, breakpoint1: (hits & 2) !== 0, breakpoint2: (hits & 4) !== 0, breakpoint3: (hits & 8) !== 0, singleStep: trap }
            : null;
        if (access.accessInfo.isWrite) {
          emulator.port("out", access.portNumber, Number(access.rax & mask), size);
          emulator.call("setVirtualProcessorRegistersCallbackFailed", () => {
            if (pending) emulator.callbacks.setVirtualProcessorRegisters(context, ["x64Rip", "x64PendingDebugException"] as const, [rip, pending]);
            else emulator.callbacks.setVirtualProcessorRegisters(context, ["x64Rip"] as const, [rip]);
          });
        } else {
          const value = BigInt(emulator.port("in", access.portNumber, 0, size));
          const rax = size === 4 ? value : (access.rax & ~mask) | value;
          emulator.call("setVirtualProcessorRegistersCallbackFailed", () => {
            if (pending) emulator.callbacks.setVirtualProcessorRegisters(context, ["x64Rax", "x64Rip", "x64PendingDebugException"] as const, [rax, rip, pending]);
            else emulator.callbacks.setVirtualProcessorRegisters(context, ["x64Rax", "x64Rip"] as const, [rax, rip]);
          });
        }
        return status({ emulationSuccessful: true });
      } catch (failure) {
        return failed(failure);
      }
    }
    return this.emulateOne(emulator, context);
  }

  /**
   * The guest's I/O breakpoints (DR0-DR3 with R/W = 10, enabled in DR7, CR4.DE set) that an
   * access to `[port, port + size)` matches, as DR6 B0-B3 bits. One register read (DR7) when
   * none is enabled.
   */
  private ioBreakpointHits<C>(emulator: Emulator<C>, context: C, port: number, size: number): number {
    let dr7 = 0;
    emulator.call("getVirtualProcessorRegistersCallbackFailed", () => {
      dr7 = Number(emulator.callbacks.getVirtualProcessorRegisters(context, ["x64Dr7"] as const)[0]);
    });
    let candidates = 0;
    for (let slot = 0; slot < 4; slot++) {
      if ((dr7 & (3 << (2 * slot))) !== 0 && ((dr7 >>> (16 + 4 * slot)) & 3) === 2) candidates |= 1 << slot;
    }
    if (candidates === 0) return 0;
    let values: readonly bigint[] = [];
    emulator.call("getVirtualProcessorRegistersCallbackFailed", () => {
      values = emulator.callbacks.getVirtualProcessorRegisters(context, ["x64Cr4", "x64Dr0", "x64Dr1", "x64Dr2", "x64Dr3"] as const);
    });
    if ((Number(values[0]) & 0x8) === 0) return 0; // CR4.DE off: R/W = 10 is undefined, not I/O
    let hits = 0;
    for (let slot = 0; slot < 4; slot++) {
      if ((candidates & (1 << slot)) === 0) continue;
      const length = [1, 2, 8, 4][(dr7 >>> (18 + 4 * slot)) & 3]!;
      const start = Number(values[1 + slot]) & ~(length - 1) & 0xffff;
      if (port < start + length && start < port + size) hits |= 1 << slot;
    }
    return hits;
  }

  /** Completes the instruction of a memoryAccess exit (MMIO). */
  tryMmioEmulation<C>(handle: WhvEmulatorHandle, context: C, _vpContext: WhvVpExitContext, _access: WhvMemoryAccessContext): WhvEmulatorStatus {
    const emulator = this.emulator<C>(handle);
    emulator.context = context;
    return this.emulateOne(emulator, context);
  }

  private emulateOne<C>(emulator: Emulator<C>, context: C): WhvEmulatorStatus {
    const cpu = emulator.scratch;
    const state = emulator.state;
    try {
      let values: readonly unknown[] = [];
      emulator.call("getVirtualProcessorRegistersCallbackFailed", () => {
        values = emulator.callbacks.getVirtualProcessorRegisters(context, STATE_REGISTERS);
      });
      cpu.reset();
      // Control registers first: segment loads and flags depend on the mode.
      STATE_REGISTERS.forEach((name, i) => writeRegister(state, name, values[i] as never));
      // Nothing is delivered inside the helper: a fault goes back to the guest as a pending
      // event, and TF becomes a pending single-step trap after the whole instruction.
      const flags = cpu.getFlags();
      const trap = (flags & FLAG_TF) !== 0;
      if (trap) cpu.setFlags(flags & ~FLAG_TF);
      cpu.exceptionExitBitmap = -1;
      const start = cpu.eip;
      let exit: number = RunExit.Budget;
      // A REP instruction may give way between chunks of iterations; run it to completion.
      do {
        exit = cpu.run(1);
      } while (exit === RunExit.Budget && cpu.eip === start && cpu.prefixRepeat !== 0 && repeatRemains(cpu));
      if (exit === RunExit.Unsupported || exit === RunExit.Shutdown || exit === RunExit.Intercept) return status({ internalEmulationFailure: true });
      const names: WhvRegisterName[] = [...RESULT_REGISTERS];
      const results: unknown[] = RESULT_REGISTERS.map((name) => readRegister(state, name));
      if (trap) results[RESULT_REGISTERS.indexOf("x64Rflags")] = (results[RESULT_REGISTERS.indexOf("x64Rflags")] as bigint) | BigInt(FLAG_TF);
      for (const name of SEGMENT_REGISTERS) {
        const before = values[STATE_REGISTERS.indexOf(name)] as WhvX64SegmentRegister;
        const after = readRegister(state, name) as WhvX64SegmentRegister;
        if (after.selector !== before.selector || after.base !== before.base || after.limit >>> 0 !== before.limit >>> 0 || after.attributes !== before.attributes) {
          names.push(name);
          results.push(after);
        }
      }
      for (const name of SYSTEM_REGISTERS) {
        const before = values[STATE_REGISTERS.indexOf(name)];
        const after = readRegister(state, name);
        if (!sameRegisterValue(before, after)) {
          names.push(name);
          results.push(after);
        }
      }
      if (exit === RunExit.Exception) {
        // The instruction faulted (RIP is back at it, finished REP iterations kept): the guest gets the fault.
        const vector = cpu.exitVector;
        names.push("pendingEvent");
        results.push({
          eventPending: true,
          eventType: "exception",
          vector,
          deliverErrorCode: cpu.exitErrorCode >= 0,
          errorCode: Math.max(0, cpu.exitErrorCode),
          exceptionParameter: vector === 14 ? BigInt(cpu.cr2 >>> 0) : 0n,
        });
      } else if (trap) {
        names.push("x64PendingDebugException");
        results.push(SINGLE_STEP);
      }
      emulator.call("setVirtualProcessorRegistersCallbackFailed", () =>
        emulator.callbacks.setVirtualProcessorRegisters(context, names, results as WhvRegisterValues<WhvRegisterName[]>),
      );
      return status({ emulationSuccessful: true });
    } catch (failure) {
      return failed(failure);
    }
  }

  private emulator<C>(handle: WhvEmulatorHandle): Emulator<C> {
    const emulator = this.emulators.get(handle);
    if (!emulator) throw new WhvError("invalidArg", "not an emulator handle (destroyed?)");
    return emulator as Emulator<C>;
  }
}

function repeatRemains(cpu: Cpu): boolean {
  return (cpu.regs[1]! & (cpu.addressSize32 ? -1 : 0xffff)) !== 0;
}

function failed(failure: unknown): WhvEmulatorStatus {
  if (failure instanceof CallbackFailure) return status({ [failure.which]: true });
  throw failure;
}
