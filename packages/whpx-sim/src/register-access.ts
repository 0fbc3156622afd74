/**
 * Reading and writing interpreter state under WHPX register names. 32-bit state is
 * zero-extended to the 64-bit values WHPX uses; R8-R15 do not exist on this 32-bit CPU and
 * read as 0 (writes must be 0).
 */
import type { Cpu } from "@vmmkit/cpu";
import { WhvError } from "./errors.js";
import type {
  WhvRegisterName,
  WhvRegisterValue,
  WhvX64DeliverabilityNotifications,
  WhvX64InterruptState,
  WhvX64PendingInterruption,
  WhvX64SegmentRegister,
  WhvX64TableRegister,
} from "./types.js";

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

export function readRegister(cpu: Cpu, name: WhvRegisterName): WhvRegisterValue {
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
      return { interruptShadow: cpu.interruptShadow !== 0, nmiMasked: false } satisfies WhvX64InterruptState;
    case "pendingInterruption":
      return {
        interruptionPending: cpu.pendingInterrupt >= 0,
        interruptionType: 0,
        deliverErrorCode: false,
        instructionLength: 0,
        nestedEvent: false,
        interruptionVector: cpu.pendingInterrupt >= 0 ? cpu.pendingInterrupt : 0,
        errorCode: 0,
      } satisfies WhvX64PendingInterruption;
    case "x64DeliverabilityNotifications":
      return { nmiNotification: false, interruptNotification: cpu.interruptWindowExit, interruptPriority: 0 } satisfies WhvX64DeliverabilityNotifications;
    default:
      return 0n; // R8-R15
  }
}

export function writeRegister(cpu: Cpu, name: WhvRegisterName, value: WhvRegisterValue): void {
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
    case "x64Efer": cpu.efer = u32(value as bigint, name); return;
    case "x64Tsc": cpu.tscOffset = Number(value as bigint) - cpu.instructionsRetired; return;
    case "x64ApicBase": cpu.msrApicBase = u32(value as bigint, name); return;
    case "x64SysenterCs": cpu.msrSysenterCs = u32(value as bigint, name) & 0xffff; return;
    case "x64SysenterEip": cpu.msrSysenterEip = u32(value as bigint, name); return;
    case "x64SysenterEsp": cpu.msrSysenterEsp = u32(value as bigint, name); return;
    case "interruptState":
      cpu.interruptShadow = (value as WhvX64InterruptState).interruptShadow ? 1 : 0;
      return;
    case "pendingInterruption": {
      const pending = value as WhvX64PendingInterruption;
      if (pending.interruptionPending && pending.interruptionType !== 0) {
        throw new WhvError("invalidArg", "only external interrupts (type 0) can be injected so far");
      }
      if (pending.interruptionPending) cpu.raiseInterrupt(pending.interruptionVector);
      else cpu.pendingInterrupt = -1;
      return;
    }
    case "x64DeliverabilityNotifications":
      cpu.interruptWindowExit = (value as WhvX64DeliverabilityNotifications).interruptNotification;
      return;
    default:
      if ((value as bigint) !== 0n) throw new WhvError("invalidArg", `${name} does not exist on a 32-bit processor; only 0 can be written`);
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
    case "interruptState":
    case "x64DeliverabilityNotifications":
      if (typeof value !== "object" || value === null) throw new WhvError("invalidArg", `register ${name} needs a record`);
      return;
    case "pendingInterruption": {
      const pending = value as WhvX64PendingInterruption;
      if (typeof pending !== "object" || pending === null) throw new WhvError("invalidArg", `register ${name} needs a record`);
      if (pending.interruptionPending && pending.interruptionType !== 0) {
        throw new WhvError("invalidArg", "only external interrupts (type 0) can be injected so far");
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
