import { crc32 } from "./crc32.js";
import type { SavedStateUnit } from "./saved-state.js";

export interface RamUnitOptions {
  /** Default "ram". */
  readonly name?: string;
  readonly instance?: number;
  /** Guest RAM (for example pgm's arena); saved and loaded in place. */
  readonly bytes: Uint8Array;
  /** Default 4096; must divide the RAM size. */
  readonly pageSize?: number;
  /** A live pass with at most this many changed pages ends the live phase (default 64). */
  readonly liveDoneThreshold?: number;
}

const VERSION = 1;
const HEADER_BYTES = 12; // u32 page size · u32 page count · u32 record count
const KIND_ZERO = 0;
const KIND_DATA = 1;

/**
 * A saved-state unit for guest RAM that stores only pages that are not all zero, so an idle
 * guest's state is far smaller than its RAM. Live passes send every non-zero page, then
 * only the pages whose contents changed since they were sent (found by a per-page CRC-32);
 * the final pass (VM suspended) sends what is still different. Loading zeroes the RAM and
 * applies the passes in order.
 *
 * Payload (version 1): u32 page size · u32 page count · u32 record count, then records of
 * u32 page index · u8 kind (0 zero page, 1 data) · page bytes for kind 1.
 */
export function createRamUnit(options: RamUnitOptions): SavedStateUnit {
  const { bytes } = options;
  const pageSize = options.pageSize ?? 4096;
  if (!(bytes instanceof Uint8Array)) throw new TypeError("createRamUnit: bytes must be a Uint8Array");
  if (!Number.isInteger(pageSize) || pageSize < 16 || bytes.length % pageSize !== 0) {
    throw new RangeError(`createRamUnit: page size ${pageSize} must be an integer ≥ 16 dividing the RAM size ${bytes.length}`);
  }
  const pageCount = bytes.length / pageSize;
  const threshold = options.liveDoneThreshold ?? 64;
  // What the receiver has of each page: its CRC, and whether it is known to be zero there.
  const sentCrc = new Uint32Array(pageCount);
  const sentZero = new Uint8Array(pageCount);
  const words = bytes.byteOffset % 4 === 0 && pageSize % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) : null;

  const isZeroPage = (page: number): boolean => {
    if (words !== null) {
      const start = (page * pageSize) >>> 2;
      const end = start + (pageSize >>> 2);
      for (let i = start; i < end; i++) if (words[i] !== 0) return false;
      return true;
    }
    const start = page * pageSize;
    for (let i = start; i < start + pageSize; i++) if (bytes[i] !== 0) return false;
    return true;
  };

  /** Pages that differ from what the receiver has; updates the record of what it has. */
  const changedPages = (): { zero: number[]; data: number[] } => {
    const zero: number[] = [];
    const data: number[] = [];
    for (let page = 0; page < pageCount; page++) {
      if (isZeroPage(page)) {
        if (!sentZero[page]) {
          zero.push(page);
          sentZero[page] = 1;
        }
        continue;
      }
      const crc = crc32(bytes, 0, page * pageSize, (page + 1) * pageSize);
      if (sentZero[page] || sentCrc[page] !== crc) {
        data.push(page);
        sentZero[page] = 0;
        sentCrc[page] = crc;
      }
    }
    return { zero, data };
  };

  const encode = ({ zero, data }: { zero: number[]; data: number[] }): Uint8Array => {
    const out = new Uint8Array(HEADER_BYTES + zero.length * 5 + data.length * (5 + pageSize));
    const view = new DataView(out.buffer);
    view.setUint32(0, pageSize, true);
    view.setUint32(4, pageCount, true);
    view.setUint32(8, zero.length + data.length, true);
    let at = HEADER_BYTES;
    for (const page of zero) {
      view.setUint32(at, page, true);
      out[at + 4] = KIND_ZERO;
      at += 5;
    }
    for (const page of data) {
      view.setUint32(at, page, true);
      out[at + 4] = KIND_DATA;
      out.set(bytes.subarray(page * pageSize, (page + 1) * pageSize), at + 5);
      at += 5 + pageSize;
    }
    return out;
  };

  const check = (payload: Uint8Array): void => {
    if (payload.length < HEADER_BYTES) throw new Error(`RAM payload of ${payload.length} bytes is shorter than its ${HEADER_BYTES}-byte header`);
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const savedPageSize = view.getUint32(0, true);
    const savedPageCount = view.getUint32(4, true);
    if (savedPageSize !== pageSize || savedPageCount !== pageCount) {
      throw new Error(`RAM of ${savedPageCount} pages of ${savedPageSize} bytes was saved; this VM has ${pageCount} pages of ${pageSize} bytes`);
    }
    const records = view.getUint32(8, true);
    let at = HEADER_BYTES;
    for (let i = 0; i < records; i++) {
      if (at + 5 > payload.length) throw new Error(`RAM record ${i} of ${records} is cut off at payload offset ${at}`);
      const page = view.getUint32(at, true);
      const kind = payload[at + 4];
      if (page >= pageCount) throw new Error(`RAM record ${i} names page ${page}, beyond the last page ${pageCount - 1}`);
      if (kind !== KIND_ZERO && kind !== KIND_DATA) throw new Error(`RAM record ${i} has unknown kind ${kind}`);
      at += 5 + (kind === KIND_DATA ? pageSize : 0);
      if (at > payload.length) throw new Error(`RAM record ${i} (page ${page}) is cut off`);
    }
    if (at !== payload.length) throw new Error(`${payload.length - at} bytes after the last RAM record`);
  };

  return {
    name: options.name ?? "ram",
    instance: options.instance ?? 0,
    version: VERSION,
    savePrep() {
      // The receiver starts from all-zero RAM.
      sentZero.fill(1);
      sentCrc.fill(0);
    },
    liveSave() {
      const changes = changedPages();
      return { data: encode(changes), done: changes.data.length + changes.zero.length <= threshold };
    },
    save() {
      return encode(changedPages());
    },
    check,
    loadPrep() {
      bytes.fill(0);
    },
    load(payload: Uint8Array, _version: number, _pass: number) {
      check(payload);
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      const records = view.getUint32(8, true);
      let at = HEADER_BYTES;
      for (let i = 0; i < records; i++) {
        const page = view.getUint32(at, true);
        const kind = payload[at + 4];
        const start = page * pageSize;
        if (kind === KIND_ZERO) {
          bytes.fill(0, start, start + pageSize);
          at += 5;
        } else {
          bytes.set(payload.subarray(at + 5, at + 5 + pageSize), start);
          at += 5 + pageSize;
        }
      }
    },
  };
}
