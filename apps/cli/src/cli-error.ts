/**
 * A problem the user can fix (bad option, unreadable or malformed image). The CLI prints
 * its message on one line and exits with `exitCode`; it never shows a stack trace for it.
 */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export const hex = (value: number) => "0x" + (value >>> 0).toString(16);
