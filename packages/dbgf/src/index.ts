export { Debugger } from "./debugger.js";
export type { DebuggerOptions, DebuggerIntrospection, DebugTrapResult, HardwareCheckResult, TrapResult } from "./debugger.js";
export {
  BreakpointFlags,
  HARDWARE_SLOT_COUNT,
  HardwareAccess,
  IoAccess,
  NIL,
  U64_MAX,
} from "./types.js";
export type {
  BreakpointHandle,
  BreakpointHitCallback,
  BreakpointInfo,
  BreakpointOptions,
  BreakpointType,
  CpuVendor,
  DebuggerHost,
  HardwareBreakpointInfo,
  HardwareBreakpointSize,
  HitResult,
  HitWhen,
  Int3BreakpointInfo,
  IoBreakpointHitCallback,
  MmioBreakpointInfo,
  OwnerCallbacks,
  OwnerHandle,
  PortIoBreakpointInfo,
  SetResult,
} from "./types.js";
export { DEBUG_EVENT_TYPE_COUNT, DebugEventType, exceptionEvent } from "./events.js";
export type { DebuggerEvent, EventStackEntry, EventStackState, InterruptBreakpointConfig, InterruptBreakpointState } from "./events.js";
export { DR7_FIXED, guestInstructionBreakpoint, guestIoBreakpoint, guestIoBreakpointBits } from "./hardware.js";
export type { GuestDebugContext } from "./hardware.js";
export { DbgfError, isDbgfError } from "./errors.js";
export type { DbgfErrorCode } from "./errors.js";
export { GdbServer } from "./gdb/gdb-server.js";
export type { GdbResumeAction, GdbServerOptions, GdbStop, GdbTarget } from "./gdb/gdb-server.js";
export { I386_REGISTERS, SYSTEM_REGISTER_NAMES, i386TargetXml } from "./gdb/i386-registers.js";
export type { GdbRegister, GdbRegisterName } from "./gdb/i386-registers.js";
export { RspDecoder, encodePacket } from "./gdb/rsp-codec.js";
export type { RspInput } from "./gdb/rsp-codec.js";
