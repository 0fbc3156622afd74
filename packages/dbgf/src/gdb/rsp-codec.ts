/**
 * Framing of the GDB remote serial protocol: `$payload#xx` packets with a modulo-256
 * checksum, `+`/`-` acknowledgements, the 0x03 interrupt byte, and the `}` escape of
 * binary data. Payloads are kept as "binary strings" (one char per byte, code 0-255) so
 * that hex, text and the binary X packet share one representation without copying.
 */

/** What the decoder found in the byte stream. */
export type RspInput =
  | { readonly kind: "packet"; readonly payload: string }
  /** A packet whose checksum did not match: answer `-` so gdb sends it again. */
  | { readonly kind: "bad-checksum"; readonly payload: string }
  /** A packet longer than the advertised size; its content was dropped. */
  | { readonly kind: "oversized"; readonly length: number }
  | { readonly kind: "ack" }
  | { readonly kind: "nack" }
  /** Ctrl-C (0x03) between packets. */
  | { readonly kind: "interrupt" };

const enum State {
  Idle,
  Payload,
  Checksum1,
  Checksum2,
}

/** Incremental decoder: feed it bytes as they arrive, in chunks of any size. */
export class RspDecoder {
  private state = State.Idle;
  private chunks: string[] = [];
  private chunk = "";
  private length = 0;
  private sum = 0;
  private received = 0;

  constructor(private readonly maxPayload: number) {}

  /** Calls `emit` for every complete item in `bytes` (and in earlier partial input). */
  push(bytes: Uint8Array, emit: (input: RspInput) => void): void {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!;
      switch (this.state) {
        case State.Idle:
          if (byte === 0x24 /* $ */) this.start();
          else if (byte === 0x2b /* + */) emit({ kind: "ack" });
          else if (byte === 0x2d /* - */) emit({ kind: "nack" });
          else if (byte === 0x03) emit({ kind: "interrupt" });
          // Anything else between packets is line noise; gdb's own stub ignores it too.
          break;
        case State.Payload:
          if (byte === 0x23 /* # */) {
            this.flush();
            this.state = State.Checksum1;
          } else if (byte === 0x24) {
            // A new packet start inside a packet: the old one was cut off; start again.
            this.start();
          } else {
            this.sum = (this.sum + byte) & 0xff;
            if (this.length < this.maxPayload) {
              this.chunk += String.fromCharCode(byte);
              if (this.chunk.length >= 4096) this.flush();
            }
            this.length++;
          }
          break;
        case State.Checksum1:
          this.received = hexDigit(byte) << 4;
          this.state = State.Checksum2;
          break;
        case State.Checksum2: {
          const low = hexDigit(byte);
          this.state = State.Idle;
          const payload = this.chunks.join("");
          this.chunks = [];
          if (this.length > this.maxPayload) emit({ kind: "oversized", length: this.length });
          else if (low < 0 || this.received < 0 || (this.received | low) !== this.sum) emit({ kind: "bad-checksum", payload });
          else emit({ kind: "packet", payload });
          break;
        }
      }
    }
  }

  private start(): void {
    this.state = State.Payload;
    this.chunks = [];
    this.chunk = "";
    this.length = 0;
    this.sum = 0;
  }

  private flush(): void {
    if (this.chunk.length > 0) this.chunks.push(this.chunk);
    this.chunk = "";
  }
}

function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  return -0x100; // makes the checksum check fail
}

/** `$payload#xx` as bytes; `payload` must already be escaped if it carries binary data. */
export function encodePacket(payload: string): Uint8Array {
  const bytes = new Uint8Array(payload.length + 4);
  bytes[0] = 0x24;
  let sum = 0;
  for (let i = 0; i < payload.length; i++) {
    const code = payload.charCodeAt(i) & 0xff;
    bytes[i + 1] = code;
    sum += code;
  }
  bytes[payload.length + 1] = 0x23;
  const checksum = (sum & 0xff).toString(16).padStart(2, "0");
  bytes[payload.length + 2] = checksum.charCodeAt(0);
  bytes[payload.length + 3] = checksum.charCodeAt(1);
  return bytes;
}

/** Escapes `$`, `#`, `}` and `*` (the run-length marker) in binary reply data. */
export function escapeBinary(data: string): string {
  return data.replace(/[$#}*]/g, (char) => "}" + String.fromCharCode(char.charCodeAt(0) ^ 0x20));
}

/** Undoes the `}` escape of an X packet's data; null when it ends inside an escape. */
export function unescapeBinary(data: string): Uint8Array | null {
  const bytes = new Uint8Array(data.length);
  let length = 0;
  for (let i = 0; i < data.length; i++) {
    let code = data.charCodeAt(i);
    if (code === 0x7d) {
      if (++i >= data.length) return null;
      code = data.charCodeAt(i) ^ 0x20;
    }
    bytes[length++] = code & 0xff;
  }
  return bytes.subarray(0, length);
}

/** Lower-case hex of bytes, two digits each. */
export function bytesToHex(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += HEX_BYTE[bytes[i]!]!;
  return text;
}

/** Bytes of an even-length hex string; null if it is not one. */
export function hexToBytes(text: string): Uint8Array | null {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** Text as hex of its UTF-8 bytes (qRcmd output, qThreadExtraInfo); no TextEncoder in this package's lib. */
export function textToHex(text: string): string {
  let hex = "";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code < 0x80) hex += HEX_BYTE[code]!;
    else if (code < 0x800) hex += HEX_BYTE[0xc0 | (code >> 6)]! + HEX_BYTE[0x80 | (code & 0x3f)]!;
    else if (code < 0x10000) hex += HEX_BYTE[0xe0 | (code >> 12)]! + HEX_BYTE[0x80 | ((code >> 6) & 0x3f)]! + HEX_BYTE[0x80 | (code & 0x3f)]!;
    else hex += HEX_BYTE[0xf0 | (code >> 18)]! + HEX_BYTE[0x80 | ((code >> 12) & 0x3f)]! + HEX_BYTE[0x80 | ((code >> 6) & 0x3f)]! + HEX_BYTE[0x80 | (code & 0x3f)]!;
  }
  return hex;
}

/** A hex number of at most 8 digits (addresses, lengths, register numbers); null otherwise. */
export function parseHexNumber(text: string): number | null {
  if (!/^[0-9a-fA-F]{1,8}$/.test(text)) return null;
  return parseInt(text, 16);
}

/** A 32-bit value as gdb's target-order (little-endian) hex. */
export function littleEndianHex(value: number, bytes: number): string {
  let text = "";
  for (let i = 0; i < bytes; i++) text += HEX_BYTE[i < 4 ? (value >>> (8 * i)) & 0xff : 0]!;
  return text;
}

/** Parses little-endian hex of `bytes` bytes to a 32-bit value (upper bytes ignored); null if malformed. */
export function parseLittleEndianHex(text: string, bytes: number): number | null {
  if (text.length !== 2 * bytes || !/^[0-9a-fA-F]*$/.test(text)) return null;
  let value = 0;
  for (let i = Math.min(bytes, 4) - 1; i >= 0; i--) value = (value << 8) | parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return value >>> 0;
}

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
