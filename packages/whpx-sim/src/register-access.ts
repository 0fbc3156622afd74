/**
 * Reading and writing interpreter state under WHPX register names. 32-bit state is
 * zero-extended to the 64-bit values WHPX uses; R8-R15 do not exist on this 32-bit CPU and
 * read as 0 (writes must be 0).
 */
import type { Cpu } from "@vmmkit/cpu";
import { WhvError } from "./errors.js";
import type {
  WhvInternalActivity,
  WhvRegisterName,
  WhvRegisterValue,
  WhvX64DeliverabilityNotifications,
  WhvX64InterruptState,
  WhvX64PendingDebugException,
  WhvX64PendingEvent,
  WhvX64PendingInterruption,
  WhvX64SegmentRegister,
  WhvX64TableRegister,
} from "./types.js";

/** DR6 bits a pending debug exception carries: B0-B3 and BS. */
export const DR6_BS = 0x4000;
export const PENDING_DEBUG_MASK = 0x400f;

/**
 * What a virtual processor holds besides the CPU: events queued by the VMM, debug traps
 * recorded for the guest, and MSRs the 32-bit processor has no use for (kept for the VMM).
 */
export class ProcessorState {
  /** DR6-style bits (B0-B3, BS) of #DB traps recorded for the guest; 0 when none. */
  pendingDebugBits = 0;
  /** True once an exit reported the pending #DB: the next run delivers it whatever the bitmap. */
  pendingDebugReported = false;
  /** An exception the VMM queued (pendingInterruption type 3 / pendingEvent); -1 when none. */
  eventVector = -1;
  /** Its error code, -1 when none is pushed. */
  eventErrorCode = -1;
  /** CR2 for a queued #PF. */
  eventParameter = 0n;
  /** MSR-backed registers with no effect on this processor (64-bit mode, PAT, TSC_AUX, XCR0). */
  readonly storedMsrs = new Map<WhvRegisterName, bigint>();

  constructor(readonly cpu: Cpu) {}
}

const STORED_MSRS: ReadonlySet<WhvRegisterName> = new Set<WhvRegisterName>([
  "x64KernelGsBase",
  "x64Pat",
  "x64Star",
  "x64Lstar",
  "x64Cstar",
  "x64Sfmask",
  "x64TscAux",
  "x64Xcr0",
]);
const MSR_DEFAULTS: Partial<Record<WhvRegisterName, bigint>> = { x64Pat: 0x0007040600070406n, x64Xcr0: 1n };

const GENERAL: Partial<Record<WhvRegisterName, number>> = {
  x64Rax: 0,
  x64Rcx: 1,
  x64Rdx: 2,
  x64Rbx: 3,
  x64Rsp: 4,
  x64Rbp: 5,
  x64Rsi: 6,
  x64Rdi: 7,
};

const SEGMENT: Partial<Record<WhvRegisterName, number>> = {
  x64Es: 0,
  x64Cs: 1,
  x64Ss: 2,
  x64Ds: 3,
  x64Fs: 4,
  x64Gs: 5,
  x64Ldtr: 6,
  x64Tr: 7,
};

const DEBUG: Partial<Record<WhvRegisterName, number>> = { x64Dr0: 0, x64Dr1: 1, x64Dr2: 2, x64Dr3: 3, x64Dr6: 6, x64Dr7: 7 };

export function segmentRegister(cpu: Cpu, segment: number): WhvX64SegmentRegister {
  return {
    base: BigInt(cpu.segBase[segment]! >>> 0),
    limit: cpu.segLimit[segment]! >>> 0,
    selector: cpu.segSelector[segment]!,
    attributes: cpu.segAttributes[segment]!,
  };
}

function u32(value: bigint, name: string): number {
  if (typeof value !== "bigint" || value < 0n || value > 0xffffffffffffffffn) {
    throw new WhvError("invalidArg", `register ${name} needs a 64-bit unsigned bigint, got ${String(value)}`);
  }
  return Number(value & 0xffffffffn) | 0;
}

const u64 = (value: number) => BigInt(value >>> 0);

export function readRegister(state: ProcessorState, name: WhvRegisterName): WhvRegisterValue {
  const cpu = state.cpu;
  const general = GENERAL[name];
  if (general !== undefined) return u64(cpu.regs[general]!);
  const segment = SEGMENT[name];
  if (segment !== undefined) return segmentRegister(cpu, segment);
  const debug = DEBUG[name];
  if (debug !== undefined) return u64(cpu.dr[debug]!);
  switch (name) {
    case "x64Rip": return u64(cpu.eip);
    case "x64Rflags": return u64(cpu.getFlags());
    case "x64Gdtr": return { base: u64(cpu.gdtBase), limit: cpu.gdtLimit } satisfies WhvX64TableRegister;
    case "x64Idtr": return { base: u64(cpu.idtBase), limit: cpu.idtLimit } satisfies WhvX64TableRegister;
    case "x64Cr0": return u64(cpu.cr0);
    case "x64Cr2": return u64(cpu.cr2);
    case "x64Cr3": return u64(cpu.cr3);
    case "x64Cr4": return u64(cpu.cr4);
    case "x64Cr8": return 0n;
    case "x64Efer": return u64(cpu.efer);
    case "x64Tsc": return BigInt(Math.floor(cpu.instructionsRetired + cpu.tscOffset));
    case "x64ApicBase": return u64(cpu.msrApicBase);
    case "x64SysenterCs": return u64(cpu.msrSysenterCs);
    case "x64SysenterEip": return u64(cpu.msrSysenterEip);
    case "x64SysenterEsp": return u64(cpu.msrSysenterEsp);
    case "interruptState":
      return { interruptShadow: cpu.interruptShadow !== 0, nmiMasked: cpu.nmiMasked } satisfies WhvX64InterruptState;
    case "pendingInterruption":
      if (state.eventVector >= 0) {
        return {
          interruptionPending: true,
          interruptionType: 3,
          deliverErrorCode: state.eventErrorCode >= 0,
          instructionLength: 0,
          nestedEvent: false,
          interruptionVector: state.eventVector,
          errorCode: Math.max(0, state.eventErrorCode),
        } satisfies WhvX64PendingInterruption;
      }
      if (cpu.nmiPending) {
        return { interruptionPending: true, interruptionType: 2, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, interruptionVector: 2, errorCode: 0 } satisfies WhvX64PendingInterruption;
      }
      return {
        interruptionPending: cpu.pendingInterrupt >= 0,
        interruptionType: 0,
        deliverErrorCode: false,
        instructionLength: 0,
        nestedEvent: false,
        interruptionVector: cpu.pendingInterrupt >= 0 ? cpu.pendingInterrupt : 0,
        errorCode: 0,
      } satisfies WhvX64PendingInterruption;
    case "pendingEvent":
      if (state.eventVector >= 0) {
        return {
          eventPending: true,
          eventType: "exception",
          vector: state.eventVector,
          deliverErrorCode: state.eventErrorCode >= 0,
          errorCode: Math.max(0, state.eventErrorCode),
          exceptionParameter: state.eventParameter,
        } satisfies WhvX64PendingEvent;
      }
      if (cpu.pendingInterrupt >= 0) return { eventPending: true, eventType: "extInt", vector: cpu.pendingInterrupt } satisfies WhvX64PendingEvent;
      return { eventPending: false } satisfies WhvX64PendingEvent;
    case "x64DeliverabilityNotifications":
      return { nmiNotification: false, interruptNotification: cpu.interruptWindowExit, interruptPriority: 0 } satisfies WhvX64DeliverabilityNotifications;
    case "internalActivityState":
      return { startupSuspend: false, haltSuspend: cpu.halted, idleSuspend: false } satisfies WhvInternalActivity;
    case "x64PendingDebugException": {
      const bits = state.pendingDebugBits;
      return {
        breakpoint0: (bits & 1) !== 0,
        breakpoint1: (bits & 2) !== 0,
        breakpoint2: (bits & 4) !== 0,
        breakpoint3: (bits & 8) !== 0,
        singleStep: (bits & DR6_BS) !== 0,
      } satisfies WhvX64PendingDebugException;
    }
    default:
      if (STORED_MSRS.has(name)) return state.storedMsrs.get(name) ?? MSR_DEFAULTS[name] ?? 0n;
      return 0n; // R8-R15
  }
}

function pendingDebugBits(value: WhvX64PendingDebugException): number {
  return (
    (value.breakpoint0 ? 1 : 0) |
    (value.breakpoint1 ? 2 : 0) |
    (value.breakpoint2 ? 4 : 0) |
    (value.breakpoint3 ? 8 : 0) |
    (value.singleStep ? DR6_BS : 0)
  );
}

function queueException(state: ProcessorState, vector: number, errorCode: number, parameter: bigint): void {
  state.eventVector = vector;
  state.eventErrorCode = errorCode;
  state.eventParameter = parameter;
  state.cpu.halted = false; // an event ends halt-suspend, as on the processor
  if (vector === 1) {
    // An injected #DB is the pending debug exception's delivery: it is not delivered twice.
    state.pendingDebugBits = 0;
    state.pendingDebugReported = false;
  }
}

export function writeRegister(state: ProcessorState, name: WhvRegisterName, value: WhvRegisterValue): void {
  const cpu = state.cpu;
  const general = GENERAL[name];
  if (general !== undefined) {
    cpu.regs[general] = u32(value as bigint, name);
    return;
  }
  const segment = SEGMENT[name];
  if (segment !== undefined) {
    const register = value as WhvX64SegmentRegister;
    cpu.setSegmentCache(segment, register.selector & 0xffff, u32(register.base, name), register.limit >>> 0, register.attributes & 0xffff);
    if (segment === 1) {
      cpu.cpl = !cpu.protectedMode ? 0 : cpu.v86Mode ? 3 : register.selector & 3;
      cpu.updateModeCaches();
    }
    return;
  }
  const debug = DEBUG[name];
  if (debug !== undefined) {
    cpu.dr[debug] = u32(value as bigint, name);
    return;
  }
  switch (name) {
    case "x64Rip": cpu.eip = u32(value as bigint, name); return;
    case "x64Rflags": cpu.setFlags(u32(value as bigint, name)); return;
    case "x64Gdtr": {
      const table = value as WhvX64TableRegister;
      cpu.gdtBase = u32(table.base, name);
      cpu.gdtLimit = table.limit & 0xffff;
      return;
    }
    case "x64Idtr": {
      const table = value as WhvX64TableRegister;
      cpu.idtBase = u32(table.base, name);
      cpu.idtLimit = table.limit & 0xffff;
      return;
    }
    case "x64Cr0": cpu.writeCr0(u32(value as bigint, name)); cpu.updateModeCaches(); return;
    case "x64Cr2": cpu.cr2 = u32(value as bigint, name); return;
    case "x64Cr3": cpu.writeCr3(u32(value as bigint, name)); return;
    case "x64Cr4": cpu.writeCr4(u32(value as bigint, name)); return;
    case "x64Cr8": return;
    case "x64Efer": cpu.writeEfer(u32(value as bigint, name)); return;
    case "x64Tsc": cpu.tscOffset = Number(value as bigint) - cpu.instructionsRetired; return;
    case "x64ApicBase": cpu.msrApicBase = u32(value as bigint, name); return;
    case "x64SysenterCs": cpu.msrSysenterCs = u32(value as bigint, name) & 0xffff; return;
    case "x64SysenterEip": cpu.msrSysenterEip = u32(value as bigint, name); return;
    case "x64SysenterEsp": cpu.msrSysenterEsp = u32(value as bigint, name); return;
    case "interruptState":
      cpu.interruptShadow = (value as WhvX64InterruptState).interruptShadow ? 1 : 0;
      cpu.nmiMasked = (value as WhvX64InterruptState).nmiMasked === true;
      return;
    case "pendingInterruption": {
      const pending = value as WhvX64PendingInterruption;
      if (!pending.interruptionPending) {
        cpu.pendingInterrupt = -1;
        cpu.nmiPending = false;
        state.eventVector = -1;
      } else if (pending.interruptionType === 2) {
        cpu.raiseNmi();
      } else if (pending.interruptionType === 3) {
        queueException(state, pending.interruptionVector & 0xff, pending.deliverErrorCode ? pending.errorCode >>> 0 : -1, BigInt(cpu.cr2 >>> 0));
      } else {
        cpu.raiseInterrupt(pending.interruptionVector);
      }
      return;
    }
    case "pendingEvent": {
      const event = value as WhvX64PendingEvent;
      if (!event.eventPending) {
        state.eventVector = -1;
        cpu.pendingInterrupt = -1;
      } else if (event.eventType === "exception") {
        queueException(state, event.vector & 0xff, event.deliverErrorCode ? event.errorCode >>> 0 : -1, event.exceptionParameter);
      } else {
        cpu.raiseInterrupt(event.vector);
      }
      return;
    }
    case "x64DeliverabilityNotifications":
      cpu.interruptWindowExit = (value as WhvX64DeliverabilityNotifications).interruptNotification;
      return;
    case "internalActivityState":
      cpu.halted = (value as WhvInternalActivity).haltSuspend;
      return;
    case "x64PendingDebugException": {
      const bits = pendingDebugBits(value as WhvX64PendingDebugException);
      // Bits the VMM adds are new to the guest: an intercepting bitmap reports them first.
      if ((bits & ~state.pendingDebugBits) !== 0) state.pendingDebugReported = false;
      state.pendingDebugBits = bits;
      return;
    }
    default:
      if (STORED_MSRS.has(name)) {
        state.storedMsrs.set(name, value as bigint);
        return;
      }
      if ((value as bigint) !== 0n) throw new WhvError("invalidArg", `${name} does not exist on a 32-bit processor; only 0 can be written`);
  }
}

function checkVector(vector: number, exception: boolean): void {
  const limit = exception ? 31 : 255;
  if (!Number.isInteger(vector) || vector < 0 || vector > limit) {
    throw new WhvError("invalidArg", `vector ${String(vector)} is outside 0-${limit}${exception ? " (exceptions are vectors 0-31)" : ""}`);
  }
}

/** Checks a value's shape and range without changing anything (for all-or-nothing batches). */
export function validateRegisterValue(name: WhvRegisterName, value: WhvRegisterValue): void {
  if (GENERAL[name] !== undefined || DEBUG[name] !== undefined) {
    u32(value as bigint, name);
    return;
  }
  if (SEGMENT[name] !== undefined) {
    const register = value as WhvX64SegmentRegister;
    if (typeof register !== "object" || register === null) throw new WhvError("invalidArg", `register ${name} needs a segment record`);
    u32(register.base, name);
    return;
  }
  switch (name) {
    case "x64Gdtr":
    case "x64Idtr": {
      const table = value as WhvX64TableRegister;
      if (typeof table !== "object" || table === null) throw new WhvError("invalidArg", `register ${name} needs a table record`);
      u32(table.base, name);
      return;
    }
    case "x64DeliverabilityNotifications":
    case "x64PendingDebugException":
      if (typeof value !== "object" || value === null) throw new WhvError("invalidArg", `register ${name} needs a record`);
      return;
    case "interruptState":
      if (typeof value !== "object" || value === null) throw new WhvError("invalidArg", `register ${name} needs a record`);
      return;
    case "internalActivityState": {
      const activity = value as WhvInternalActivity;
      if (typeof activity !== "object" || activity === null) throw new WhvError("invalidArg", `register ${name} needs a record`);
      if (activity.startupSuspend || activity.idleSuspend) throw new WhvError("invalidArg", "only haltSuspend can be set (no startup or idle suspend on this processor)");
      return;
    }
    case "pendingInterruption": {
      const pending = value as WhvX64PendingInterruption;
      if (typeof pending !== "object" || pending === null) throw new WhvError("invalidArg", `register ${name} needs a record`);
      if (pending.interruptionPending) {
        if (pending.interruptionType !== 0 && pending.interruptionType !== 2 && pending.interruptionType !== 3) {
          throw new WhvError("invalidArg", `interruption type ${String(pending.interruptionType)} cannot be injected: 0 (external interrupt), 2 (NMI) or 3 (exception)`);
        }
        if (pending.interruptionType === 2 && pending.interruptionVector !== 2) throw new WhvError("invalidArg", `an NMI has vector 2, not ${String(pending.interruptionVector)}`);
        checkVector(pending.interruptionVector, pending.interruptionType === 3);
      }
      return;
    }
    case "pendingEvent": {
      const event = value as WhvX64PendingEvent;
      if (typeof event !== "object" || event === null) throw new WhvError("invalidArg", `register ${name} needs a record`);
      if (event.eventPending) {
        if (event.eventType !== "exception" && event.eventType !== "extInt") {
          throw new WhvError("invalidArg", `pending event type ${String((event as { eventType: unknown }).eventType)} is neither "exception" nor "extInt"`);
        }
        checkVector(event.vector, event.eventType === "exception");
        if (event.eventType === "exception") u32(event.exceptionParameter, name);
      }
      return;
    }
    case "x64R8": case "x64R9": case "x64R10": case "x64R11":
    case "x64R12": case "x64R13": case "x64R14": case "x64R15":
      if (value !== 0n) throw new WhvError("invalidArg", `${name} does not exist on a 32-bit processor; only 0 can be written`);
      return;
    default:
      u32(value as bigint, name);
  }
}
