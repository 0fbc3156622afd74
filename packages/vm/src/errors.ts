/** The error codes of spec/vm.md §0.1 (plus the saved-state codes of this package). */
export type VmErrorCode =
  | "InvalidVmHandle"
  | "InvalidPointer"
  | "InvalidParameter"
  | "TooManyCpus"
  | "InvalidVmState"
  | "UnexpectedUnstableState"
  | "UnexpectedVmState"
  | "CalledOnVcpu"
  | "CallbackNotFound"
  | "InvalidCpuId"
  | "LiveSavePoweredOff"
  | "LiveSaveFatalError"
  | "LiveSaveGuruMeditation"
  | "SaveCancelled"
  | "RequestKilled"
  | "StateChangeFromCallback"
  | "WrongVcpu"
  | "NotImplemented";

/** A refused VM operation (spec/vm.md §0.1). The VM is unchanged when this is thrown. */
export class VmError extends Error {
  override readonly name = "VmError";
  constructor(
    readonly code: VmErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isVmError(value: unknown): value is VmError {
  return value instanceof Error && value.name === "VmError" && typeof (value as VmError).code === "string";
}
