export { WhvPlatform, SLICE_INSTRUCTIONS } from "./platform.js";
export { WhvEmulatorApi } from "./emulator.js";
export { WhvTranslateGvaFlags } from "./translate.js";
export type { WhvTranslateGvaResult, WhvTranslateGvaResultCode } from "./translate.js";
export type {
  WhvEmulatorCallbacks,
  WhvEmulatorIoAccessInfo,
  WhvEmulatorMemoryAccessInfo,
  WhvEmulatorStatus,
} from "./emulator.js";
export { WhvError, WhvHresult, isWhvError } from "./errors.js";
export type { WhvErrorCode } from "./errors.js";
export {
  WhvExceptionType,
  WhvMapGpaRangeFlags,
  WhvPartitionPropertyCodes,
  WhvRegisterName,
  exceptionBitmap,
} from "./types.js";
export type {
  WhvCapabilityMap,
  WhvCpuidResult,
  WhvInternalActivity,
  WhvSimFeatures,
  WhvX64CpuidAccessContext,
  WhvX64MsrAccessContext,
  WhvX64PendingDebugException,
  WhvX64PendingEvent,
  WhvEmulatorHandle,
  WhvExtendedVmExits,
  WhvIoPortAccessContext,
  WhvMemoryAccessContext,
  WhvPartitionHandle,
  WhvPartitionPropertyCode,
  WhvPartitionPropertyMap,
  WhvRegisterValue,
  WhvRegisterValueMap,
  WhvRegisterValues,
  WhvRunVpExitContext,
  WhvRunVpExitReason,
  WhvSimProcessorCounters,
  WhvSimRunOptions,
  WhvVpExceptionContext,
  WhvVpExitContext,
  WhvX64DeliverabilityNotifications,
  WhvX64InterruptState,
  WhvX64PendingInterruption,
  WhvX64SegmentRegister,
  WhvX64TableRegister,
} from "./types.js";
