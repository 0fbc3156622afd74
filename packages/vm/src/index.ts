export { INVALID_REFERENCE_COUNT, MAX_CPUS, NIL_VCPU, RuntimeErrorFlags, Vm } from "./machine.js";
export type {
  EngineExit,
  ErrorCallback,
  ExecutionEngine,
  ExitAction,
  ExitHandler,
  LoadOptions,
  RendezvousKind,
  ResetInfo,
  ResumeReason,
  RuntimeErrorCallback,
  SaveOptions,
  SaveResult,
  StateCallback,
  SuspendReason,
  VcpuRunState,
  VmOptions,
  VmSubsystem,
} from "./machine.js";
export { mergeStatus } from "./status.js";
export type { VmStatus } from "./status.js";
export { isLegalTransition, VM_TRANSITIONS, VmState, vmStateName } from "./states.js";
export type { LegalTarget } from "./states.js";
export { isVmError, VmError } from "./errors.js";
export type { VmErrorCode } from "./errors.js";
export {
  checkSavedState,
  FINAL_PASS,
  isSavedStateError,
  MemorySink,
  memorySource,
  parseSavedState,
  SAVED_STATE_FORMAT_VERSION,
  SAVED_STATE_MAGIC,
  SavedStateError,
  SavedStateWriter,
} from "./saved-state.js";
export type {
  ParsedSavedState,
  SavedStateErrorCode,
  SavedStateHeader,
  SavedStateSection,
  SavedStateSink,
  SavedStateSource,
  SavedStateUnit,
} from "./saved-state.js";
export { createRamUnit } from "./ram-unit.js";
export type { RamUnitOptions } from "./ram-unit.js";
export { crc32 } from "./crc32.js";
