export type CpuErrorCode =
  | "ERR_CPU_INVALID_MAPPING"
  | "ERR_CPU_INVALID_ARGUMENT"
  | "ERR_CPU_INVALID_STATE"
  | "ERR_CPU_INTERNAL";

/** Misuse of the CPU API, or an emulator bug. Guest faults never throw this. */
export class CpuError extends Error {
  override readonly name = "CpuError";
  constructor(
    readonly code: CpuErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isCpuError(value: unknown): value is CpuError {
  return value instanceof Error && value.name === "CpuError" && typeof (value as CpuError).code === "string";
}

export function hex(value: number, digits = 0): string {
  const text = (value < 0 ? value >>> 0 : value).toString(16);
  return "0x" + (digits > 0 ? text.padStart(digits, "0") : text);
}
