export type IomErrorCode = "ERR_IOM_INVALID_RANGE" | "ERR_IOM_RANGE_OVERLAP" | "ERR_IOM_NOT_FOUND" | "ERR_IOM_INVALID_ARGUMENT";

/** Invalid use of the port space. Nothing is changed when this is thrown. */
export class IomError extends Error {
  override readonly name = "IomError";
  constructor(
    readonly code: IomErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isIomError(value: unknown): value is IomError {
  return value instanceof Error && value.name === "IomError" && typeof (value as IomError).code === "string";
}
