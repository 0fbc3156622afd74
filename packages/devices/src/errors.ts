export type DevicesErrorCode = "ERR_DEVICES_INVALID_ARGUMENT" | "ERR_DEVICES_INVALID_IRQ" | "ERR_DEVICES_INVALID_STATE";

/**
 * Invalid configuration or host-side use of a device (never the guest's doing: whatever a
 * guest writes to a device's ports is handled as the hardware would). Nothing is changed
 * when this is thrown.
 */
export class DevicesError extends Error {
  override readonly name = "DevicesError";
  constructor(
    readonly code: DevicesErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isDevicesError(value: unknown): value is DevicesError {
  return value instanceof Error && value.name === "DevicesError" && typeof (value as DevicesError).code === "string";
}
