/** WHPX error classes, with the HRESULT values of the Windows SDK (winerror.h). */
export const WhvHresult = {
  invalidArg: 0x80070057,
  unknownCapability: 0x80370300,
  insufficientBuffer: 0x80370301,
  unknownProperty: 0x80370302,
  unsupportedHypervisorConfig: 0x80370303,
  invalidPartitionConfig: 0x80370304,
  gpaRangeNotFound: 0x80370305,
  vpAlreadyExists: 0x80370306,
  vpDoesNotExist: 0x80370307,
  invalidVpState: 0x80370308,
  invalidVpRegisterName: 0x80370309,
} as const;

export type WhvErrorCode = keyof typeof WhvHresult;

/** A failed WHPX call: `code` names the HRESULT class, `hresult` carries its number. */
export class WhvError extends Error {
  override readonly name = "WhvError";
  readonly hresult: number;
  constructor(
    readonly code: WhvErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.hresult = WhvHresult[code];
  }
}

export function isWhvError(value: unknown): value is WhvError {
  return value instanceof Error && value.name === "WhvError" && typeof (value as WhvError).code === "string";
}
