/**
 * Error names of spec/dbgf.md §10, plus `MmioRangeBusy` (the MMIO counterpart of
 * `PortRangeBusy`; the reference never implemented MMIO breakpoints).
 */
export type DbgfErrorCode =
  | "InvalidParameter"
  | "InvalidFlags"
  | "OutOfRange"
  | "InvalidHandle"
  | "BreakpointNotFound"
  | "NoMoreBreakpointSlots"
  | "NoMoreOwnerHandles"
  | "OwnerBusy"
  | "AddressInUse"
  | "PortRangeBusy"
  | "MmioRangeBusy"
  | "NotSupported"
  | "L1LookupFailed"
  | "L2LookupFailed"
  | "OwnerCallbackWrongStatus"
  | "InternalError"
  | "NoMemory"
  | "InvalidVmHandle";

/**
 * A refused or failed debugger-facility call. When a call is refused because of its
 * arguments, nothing has changed. The lookup failures (`L1LookupFailed`, `L2LookupFailed`),
 * `OwnerCallbackWrongStatus` and `InternalError` are fatal: the VM should stop.
 */
export class DbgfError extends Error {
  override readonly name = "DbgfError";
  constructor(
    readonly code: DbgfErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** True for a DbgfError, also one thrown by another copy of this package. */
export function isDbgfError(value: unknown): value is DbgfError {
  return value instanceof Error && value.name === "DbgfError" && typeof (value as DbgfError).code === "string";
}

/** `0x…` for messages; bigint or number. */
export function hex(value: number | bigint): string {
  return "0x" + value.toString(16);
}
