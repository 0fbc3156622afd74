/**
 * The saved-state encoding of the devices: a 4-character tag, a u16 version, a u16 value
 * count, then that many float64 values (integers, 0/1 flags, timer deadlines with Infinity
 * for "disarmed"), little-endian. Every `loadState` reads and checks all its values before it
 * changes anything, and refuses bad input with `ERR_DEVICES_INVALID_STATE`.
 */
import type { Clock, ClockTimer } from "./clock.js";
import { DevicesError } from "./errors.js";

const HEADER_BYTES = 8;

export function packState(tag: string, version: number, values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES + values.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 4; i++) bytes[i] = tag.charCodeAt(i);
  view.setUint16(4, version, true);
  view.setUint16(6, values.length, true);
  values.forEach((value, i) => view.setFloat64(HEADER_BYTES + i * 8, value, true));
  return bytes;
}

/** Reads the values of a device state in order, checking each; `done()` checks nothing is left. */
export class StateReader {
  private index = 0;
  private readonly values: Float64Array;

  constructor(
    private readonly device: string,
    tag: string,
    version: number,
    bytes: Uint8Array,
  ) {
    if (!(bytes instanceof Uint8Array)) this.fail(`expected the bytes of a saved state, got ${typeof bytes}`);
    if (bytes.length < HEADER_BYTES) this.fail(`${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
    const actualTag = String.fromCharCode(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
    if (actualTag !== tag) this.fail(`the state is tagged "${actualTag}", not "${tag}" (is it another device's?)`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const actualVersion = view.getUint16(4, true);
    if (actualVersion !== version) this.fail(`state version ${actualVersion} is not supported (this version reads ${version})`);
    const count = view.getUint16(6, true);
    if (bytes.length !== HEADER_BYTES + count * 8) this.fail(`${count} values need ${HEADER_BYTES + count * 8} bytes, got ${bytes.length}`);
    this.values = new Float64Array(count);
    for (let i = 0; i < count; i++) this.values[i] = view.getFloat64(HEADER_BYTES + i * 8, true);
  }

  int(name: string, min: number, max: number): number {
    const value = this.next(name);
    if (!Number.isInteger(value) || value < min || value > max) this.fail(`${name} must be an integer ${min}-${max}, got ${value}`);
    return value;
  }

  /** One of the listed values. */
  oneOf(name: string, allowed: readonly number[]): number {
    const value = this.next(name);
    if (!allowed.includes(value)) this.fail(`${name} must be one of ${allowed.join(", ")}, got ${value}`);
    return value;
  }

  /** An integer using only the bits of `mask`. */
  bits(name: string, mask: number): number {
    const value = this.next(name);
    if (!Number.isInteger(value) || value < 0 || (value & ~mask) !== 0 || value > mask) this.fail(`${name} must use only bits 0x${mask.toString(16)}, got ${value}`);
    return value;
  }

  bool(name: string): boolean {
    return this.int(name, 0, 1) === 1;
  }

  /** A time in ns (≥ 0), or Infinity for a disarmed timer. */
  deadline(name: string): number {
    const value = this.next(name);
    if (!(value >= 0)) this.fail(`${name} must be a time ≥ 0 ns or Infinity, got ${value}`);
    return value;
  }

  /** A finite number (a fraction, a rate). */
  number(name: string): number {
    const value = this.next(name);
    if (!Number.isFinite(value)) this.fail(`${name} must be a finite number, got ${value}`);
    return value;
  }

  bytes(name: string, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(`${name}[${i}]`, 0, 255);
    return out;
  }

  done(): void {
    if (this.index !== this.values.length) this.fail(`${this.values.length - this.index} values left over after the last field`);
  }

  private next(name: string): number {
    if (this.index >= this.values.length) this.fail(`the state ends before ${name}`);
    return this.values[this.index++]!;
  }

  private fail(reason: string): never {
    throw new DevicesError("ERR_DEVICES_INVALID_STATE", `${this.device} state: ${reason}; nothing was changed`);
  }
}

/** A clock timer that remembers its deadline, so a device can save it (Infinity when disarmed). */
export class TrackedTimer {
  deadline = Number.POSITIVE_INFINITY;
  private readonly timer: ClockTimer;

  constructor(clock: Clock, onExpire: () => void) {
    this.timer = clock.createTimer(() => {
      this.deadline = Number.POSITIVE_INFINITY;
      onExpire();
    });
  }

  arm(deadline: number): void {
    this.timer.arm(deadline);
    this.deadline = deadline;
  }

  disarm(): void {
    this.deadline = Number.POSITIVE_INFINITY;
    this.timer.disarm();
  }

  /** Re-arms (or disarms) to a loaded deadline. */
  restore(deadline: number): void {
    if (deadline === Number.POSITIVE_INFINITY) this.disarm();
    else this.arm(deadline);
  }
}
