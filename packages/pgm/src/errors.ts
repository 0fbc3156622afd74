/**
 * Error codes. The range-map codes came first; the handler codes follow spec/pgm.md §0.1
 * (its `ERR_X` is `ERR_PGM_X` here).
 */
export type PgmErrorCode =
  // the range map and bulk copies
  | "ERR_PGM_INVALID_RANGE"
  | "ERR_PGM_RANGE_OVERLAP"
  | "ERR_PGM_NOT_FOUND"
  | "ERR_PGM_OUT_OF_RANGE"
  | "ERR_PGM_INVALID_ARGUMENT"
  // handler types
  | "ERR_PGM_INVALID_TYPE_HANDLE"
  | "ERR_PGM_INVALID_KIND"
  | "ERR_PGM_INVALID_FLAGS"
  | "ERR_PGM_INVALID_CALLBACK"
  | "ERR_PGM_WRONG_VM_STATE"
  | "ERR_PGM_TYPE_TABLE_FULL"
  // handlers
  | "ERR_PGM_OUT_OF_HANDLERS"
  | "ERR_PGM_ALREADY_REGISTERED"
  | "ERR_PGM_STILL_REGISTERED"
  | "ERR_PGM_NOT_PAGE_ALIGNED"
  | "ERR_PGM_NO_RAM_RANGE"
  | "ERR_PGM_CONFLICT"
  | "ERR_PGM_PAGE_OUTSIDE_HANDLER"
  | "ERR_PGM_WRONG_KIND"
  | "ERR_PGM_INVALID_SPLIT"
  | "ERR_PGM_INVALID_JOIN"
  | "ERR_PGM_JOIN_TYPE_MISMATCH"
  | "ERR_PGM_WRONG_PAGE_TYPE"
  // aliasing
  | "ERR_PGM_NOT_MMIO2"
  | "ERR_PGM_MMIO2_OUT_OF_RANGE"
  | "ERR_PGM_NOT_SUPPORTED_IN_NEM_MODE"
  // corruption detected
  | "ERR_PGM_INTERNAL";

/**
 * Invalid use of physical memory or its handlers. The state is unchanged when this is
 * thrown, with one documented exception: a failed `modify` destroys the handler it moved
 * (spec §4.7).
 */
export class PgmError extends Error {
  override readonly name = "PgmError";
  constructor(
    readonly code: PgmErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isPgmError(value: unknown): value is PgmError {
  return value instanceof Error && value.name === "PgmError" && typeof (value as PgmError).code === "string";
}

export function hex(value: number): string {
  return value < 0 ? "-0x" + (-value).toString(16) : "0x" + value.toString(16);
}
