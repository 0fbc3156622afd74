export type PgmErrorCode =
  | "ERR_PGM_INVALID_RANGE"
  | "ERR_PGM_RANGE_OVERLAP"
  | "ERR_PGM_NOT_FOUND"
  | "ERR_PGM_OUT_OF_RANGE"
  | "ERR_PGM_INVALID_ARGUMENT";

/** Invalid use of the physical memory map. The map is unchanged when this is thrown. */
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
  return "0x" + value.toString(16);
}
