/**
 * The WHPX-shaped types: register names and values, exit contexts, properties. Names are
 * WHPX's minus the "WHv"/"Register" prefixes, camelCased (WHvX64RegisterRip -> x64Rip);
 * 64-bit values are bigint, as at every WHPX boundary.
 */

export interface WhvPartitionHandle {
  readonly __brand: "WhvPartition";
}

export interface WhvEmulatorHandle {
  readonly __brand: "WhvEmulator";
}

// ---- properties ----------------------------------------------------------------------

export interface WhvExtendedVmExits {
  x64CpuidExit?: boolean;
  x64MsrExit?: boolean;
  exceptionExit?: boolean;
}

export interface WhvCpuidResult {
  readonly function: number;
  readonly eax: number;
  readonly ebx: number;
  readonly ecx: number;
  readonly edx: number;
}

export interface WhvPartitionPropertyMap {
  extendedVmExits: WhvExtendedVmExits;
  /** Bit n set: exception vector n exits instead of being delivered (needs exceptionExit). */
  exceptionExitBitmap: bigint;
  processorCount: number;
  /** Set-up time only; stored for the VMM (CPUID does not follow it yet). */
  processorFeatures: bigint;
  /** Leaves whose CPUID exits `x64Cpuid` while `extendedVmExits.x64CpuidExit` is on. */
  cpuidExitList: readonly number[];
  cpuidResultList: readonly WhvCpuidResult[];
}

export type WhvPartitionPropertyCode = keyof WhvPartitionPropertyMap;

/** Numeric codes of the properties (for traces and a possible native backend). */
export const WhvPartitionPropertyCodes: Record<WhvPartitionPropertyCode, number> = {
  extendedVmExits: 0x1,
  exceptionExitBitmap: 0x2,
  processorCount: 0x1fff,
  processorFeatures: 0x1001,
  cpuidExitList: 0x1003,
  cpuidResultList: 0x1004,
};

export const WhvExceptionType = {
  divideErrorFault: 0x0,
  debugTrapOrFault: 0x1,
  breakpointTrap: 0x3,
  overflowTrap: 0x4,
  boundRangeFault: 0x5,
  invalidOpcodeFault: 0x6,
  deviceNotAvailableFault: 0x7,
  doubleFaultAbort: 0x8,
  invalidTaskStateSegmentFault: 0xa,
  segmentNotPresentFault: 0xb,
  stackFault: 0xc,
  generalProtectionFault: 0xd,
  pageFault: 0xe,
  floatingPointErrorFault: 0x10,
  alignmentCheckFault: 0x11,
  machineCheckAbort: 0x12,
  simdFloatingPointFault: 0x13,
} as const;
export type WhvExceptionType = keyof typeof WhvExceptionType;

/** Builds an exception exit bitmap from exception names. */
export function exceptionBitmap(...types: WhvExceptionType[]): bigint {
  return types.reduce((mask, type) => mask | (1n << BigInt(WhvExceptionType[type])), 0n);
}

export const WhvMapGpaRangeFlags = { none: 0, read: 1, write: 2, execute: 4, trackDirtyPages: 8 } as const;

// ---- registers -------------------------------------------------------------------------

export const WhvRegisterName = {
  x64Rax: 0x00,
  x64Rcx: 0x01,
  x64Rdx: 0x02,
  x64Rbx: 0x03,
  x64Rsp: 0x04,
  x64Rbp: 0x05,
  x64Rsi: 0x06,
  x64Rdi: 0x07,
  x64R8: 0x08,
  x64R9: 0x09,
  x64R10: 0x0a,
  x64R11: 0x0b,
  x64R12: 0x0c,
  x64R13: 0x0d,
  x64R14: 0x0e,
  x64R15: 0x0f,
  x64Rip: 0x10,
  x64Rflags: 0x11,
  x64Es: 0x12,
  x64Cs: 0x13,
  x64Ss: 0x14,
  x64Ds: 0x15,
  x64Fs: 0x16,
  x64Gs: 0x17,
  x64Ldtr: 0x18,
  x64Tr: 0x19,
  x64Idtr: 0x1a,
  x64Gdtr: 0x1b,
  x64Cr0: 0x1c,
  x64Cr2: 0x1d,
  x64Cr3: 0x1e,
  x64Cr4: 0x1f,
  x64Cr8: 0x20,
  x64Dr0: 0x21,
  x64Dr1: 0x22,
  x64Dr2: 0x23,
  x64Dr3: 0x24,
  x64Dr6: 0x25,
  x64Dr7: 0x26,
  x64Xcr0: 0x27,
  x64Tsc: 0x2000,
  x64Efer: 0x2001,
  x64KernelGsBase: 0x2002,
  x64ApicBase: 0x2003,
  x64Pat: 0x2004,
  x64SysenterCs: 0x2005,
  x64SysenterEip: 0x2006,
  x64SysenterEsp: 0x2007,
  x64Star: 0x2008,
  x64Lstar: 0x2009,
  x64Cstar: 0x200a,
  x64Sfmask: 0x200b,
  x64TscAux: 0x207b,
  pendingInterruption: 0x80000000,
  interruptState: 0x80000001,
  pendingEvent: 0x80000002,
  x64DeliverabilityNotifications: 0x80000004,
  internalActivityState: 0x80000005,
  x64PendingDebugException: 0x80000006,
} as const;
export type WhvRegisterName = keyof typeof WhvRegisterName;

export interface WhvX64SegmentRegister {
  base: bigint;
  limit: number;
  selector: number;
  /** type:4 S:1 DPL:2 P:1 reserved:4 AVL:1 L:1 D/B:1 G:1 */
  attributes: number;
}

export interface WhvX64TableRegister {
  base: bigint;
  limit: number;
}

export interface WhvX64InterruptState {
  interruptShadow: boolean;
  nmiMasked: boolean;
}

export interface WhvX64PendingInterruption {
  interruptionPending: boolean;
  /** 0 external interrupt, 2 NMI, 3 hardware exception. */
  interruptionType: 0 | 2 | 3;
  deliverErrorCode: boolean;
  instructionLength: number;
  nestedEvent: boolean;
  interruptionVector: number;
  errorCode: number;
}

/** WHvRegisterPendingEvent: an exception (with CR2 for #PF in exceptionParameter) or an external interrupt. */
export type WhvX64PendingEvent =
  | { eventPending: false }
  | { eventPending: true; eventType: "exception"; vector: number; deliverErrorCode: boolean; errorCode: number; exceptionParameter: bigint }
  | { eventPending: true; eventType: "extInt"; vector: number };

export interface WhvInternalActivity {
  startupSuspend: boolean;
  /** HLT executed; cleared when an interrupt or event is delivered. */
  haltSuspend: boolean;
  idleSuspend: boolean;
}

/** Debug traps recorded for the guest (DR6 B0-B3 and BS): delivered as #DB by the next run unless cleared. */
export interface WhvX64PendingDebugException {
  breakpoint0: boolean;
  breakpoint1: boolean;
  breakpoint2: boolean;
  breakpoint3: boolean;
  singleStep: boolean;
}

export interface WhvX64DeliverabilityNotifications {
  nmiNotification: boolean;
  interruptNotification: boolean;
  interruptPriority: number;
}

type SegmentName = "x64Es" | "x64Cs" | "x64Ss" | "x64Ds" | "x64Fs" | "x64Gs" | "x64Ldtr" | "x64Tr";
type TableName = "x64Idtr" | "x64Gdtr";
type EventName =
  | "pendingInterruption"
  | "interruptState"
  | "pendingEvent"
  | "x64DeliverabilityNotifications"
  | "internalActivityState"
  | "x64PendingDebugException";

export type WhvRegisterValueMap = { [K in Exclude<WhvRegisterName, SegmentName | TableName | EventName>]: bigint } & {
  [K in SegmentName]: WhvX64SegmentRegister;
} & { [K in TableName]: WhvX64TableRegister } & {
  interruptState: WhvX64InterruptState;
  pendingInterruption: WhvX64PendingInterruption;
  pendingEvent: WhvX64PendingEvent;
  x64DeliverabilityNotifications: WhvX64DeliverabilityNotifications;
  internalActivityState: WhvInternalActivity;
  x64PendingDebugException: WhvX64PendingDebugException;
};

export type WhvRegisterValue = WhvRegisterValueMap[WhvRegisterName];

/** Values for a tuple of names, in the same order. */
export type WhvRegisterValues<N extends readonly WhvRegisterName[]> = {
  -readonly [I in keyof N]: WhvRegisterValueMap[N[I] & WhvRegisterName];
};

// ---- exits -----------------------------------------------------------------------------

export interface WhvVpExitContext {
  executionState: {
    cpl: number;
    cr0Pe: boolean;
    cr0Am: boolean;
    eferLma: boolean;
    debugActive: boolean;
    interruptionPending: boolean;
    interruptShadow: boolean;
  };
  /** Length of the intercepted instruction (0 when not known). */
  instructionLength: number;
  cr8: number;
  cs: WhvX64SegmentRegister;
  rip: bigint;
  rflags: bigint;
}

export interface WithInstruction {
  instructionByteCount: number;
  instructionBytes: Uint8Array;
}

export interface WhvMemoryAccessContext extends WithInstruction {
  accessInfo: { accessType: "read" | "write" | "execute"; gpaUnmapped: boolean; gvaValid: boolean };
  gpa: bigint;
  gva: bigint;
}

export interface WhvIoPortAccessContext extends WithInstruction {
  accessInfo: { isWrite: boolean; accessSize: 1 | 2 | 4; stringOp: boolean; repPrefix: boolean };
  portNumber: number;
  rax: bigint;
  rcx: bigint;
  rsi: bigint;
  rdi: bigint;
  ds: WhvX64SegmentRegister;
  es: WhvX64SegmentRegister;
}

export interface WhvVpExceptionContext extends WithInstruction {
  exceptionInfo: { errorCodeValid: boolean; softwareException: boolean };
  exceptionType: WhvExceptionType;
  errorCode: number;
  /** CR2 for #PF; for #DB the DR6-style cause bits (B0-B3, BS 0x4000). */
  exceptionParameter: bigint;
  /** Shim extension: set on the exit that ends a host single-step (run option `singleStep`). */
  sim?: { hostSingleStep: true };
}

/** An RDMSR or WRMSR that exited (x64MsrExit): RAX/RDX hold the value for a write. */
export interface WhvX64MsrAccessContext {
  msrNumber: number;
  accessInfo: { isWrite: boolean };
  rax: bigint;
  rdx: bigint;
}

export interface WhvX64CpuidAccessContext {
  rax: bigint;
  rcx: bigint;
  rdx: bigint;
  rbx: bigint;
  /** What the processor (with cpuidResultList applied) would return. */
  defaultResultRax: bigint;
  defaultResultRcx: bigint;
  defaultResultRdx: bigint;
  defaultResultRbx: bigint;
}

type Exit<R extends string, X = object> = { exitReason: R; vpContext: WhvVpExitContext } & X;

export type WhvRunVpExitContext =
  | Exit<"memoryAccess", { memoryAccess: WhvMemoryAccessContext }>
  | Exit<"x64IoPortAccess", { ioPortAccess: WhvIoPortAccessContext }>
  | Exit<"unrecoverableException">
  | Exit<"invalidVpRegisterValue">
  | Exit<"x64Halt">
  | Exit<"unsupportedFeature", { unsupportedFeature: { featureCode: "intercept" | "taskSwitchTss"; featureParameter: bigint; description: string } }>
  | Exit<"x64InterruptWindow", { interruptWindow: { deliverableType: "interrupt" | "nmi" | "exception" } }>
  | Exit<"x64Cpuid", { cpuidAccess: WhvX64CpuidAccessContext }>
  | Exit<"x64MsrAccess", { msrAccess: WhvX64MsrAccessContext }>
  | Exit<"exception", { vpException: WhvVpExceptionContext }>
  | Exit<"canceled", { cancelReason: "user" | "instructionBudget" }>;

export type WhvRunVpExitReason = WhvRunVpExitContext["exitReason"];

/** Shim extensions to a run (WHPX has no such options); see `getCapability("simFeatures")`. */
export interface WhvSimRunOptions {
  /** Stop after this many instructions with a canceled / instructionBudget exit. */
  readonly maxInstructions?: number;
  /**
   * Host single-step, invisible to the guest: retire one instruction (one iteration of a REP
   * string instruction) or deliver one event, then return an `exception` exit
   * (debugTrapOrFault, `sim.hostSingleStep`) whatever the exception bitmap.
   */
  readonly singleStep?: boolean;
  /** With `singleStep`: hold external interrupts (default true); they stay pending, not lost. */
  readonly suppressInterrupts?: boolean;
}

/** Shim capabilities a VMM can check before relying on the extensions. */
export interface WhvSimFeatures {
  readonly hostSingleStep: boolean;
  readonly stickyCancel: boolean;
  readonly instructionBudget: boolean;
  readonly pendingEventExceptions: boolean;
  readonly exclusiveRun: boolean;
  /** `setVirtualProcessorA20` / `getVirtualProcessorA20` gate address line 20. */
  readonly a20Gate: boolean;
}

export interface WhvCapabilityMap {
  hypervisorPresent: boolean;
  extendedVmExits: Required<WhvExtendedVmExits>;
  exceptionExitBitmap: bigint;
  simFeatures: WhvSimFeatures;
}

/** Shim extension: counters of a virtual processor. */
export interface WhvSimProcessorCounters {
  /** Instructions retired since the processor was created. */
  readonly instructionsRetired: number;
}
