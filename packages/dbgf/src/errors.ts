/** Error names of spec/dbgf.md §10 (the subset this slice raises). */
export type DbgfErrorCode = "InvalidParameter" | "InvalidHandle" | "BreakpointNotFound" | "NoMoreBreakpointSlots";

/** A refused debugger-facility call. Nothing is changed when this is thrown. */
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

export function isDbgfError(value: unknown): value is DbgfError {
  return value instanceof Error && value.name === "DbgfError" && typeof (value as DbgfError).code === "string";
}
