/**
 * The saved-state container (spec/vm.md §8): a versioned, checksummed format with one
 * section per unit per pass. packages/vm owns the container; every subsystem owns its
 * payload through a `SavedStateUnit`. No I/O here: the front end supplies a sink (file with
 * atomic rename, socket) and a source.
 *
 * Layout (all integers little-endian):
 *
 *   header   magic "VMMKSAVE" · u32 format version · u32 flags (1 live, 2 teleport)
 *            · u32 cpu count · u8[16] VM UUID · u16 name length · name (UTF-8)
 *            · u32 configuration length · configuration (UTF-8) · u32 CRC-32 of the header
 *   section  u32 "SECT" · u8 unit name length · unit name (ASCII) · u32 instance
 *            · u32 unit version · u32 pass (0, 1, … for live passes, FINAL_PASS last)
 *            · u32 payload length · payload · u32 CRC-32 of the section from "SECT" on
 *   trailer  u32 "END." · u32 section count · u32 total file length · u32 CRC-32 of
 *            everything before this field
 */
import { crc32 } from "./crc32.js";

export const SAVED_STATE_MAGIC = "VMMKSAVE";
export const SAVED_STATE_FORMAT_VERSION = 1;
/** The pass number of the final (non-live) section of a unit. */
export const FINAL_PASS = 0xffffffff;
const SECTION_MARKER = 0x54434553; // "SECT"
const TRAILER_MARKER = 0x2e444e45; // "END."
const TRAILER_BYTES = 16;
const MAX_NAME_BYTES = 255;
const FLAG_LIVE = 1;
const FLAG_TELEPORT = 2;

export type SavedStateErrorCode =
  | "Truncated"
  | "BadMagic"
  | "UnsupportedVersion"
  | "HeaderChecksum"
  | "BadSection"
  | "SectionChecksum"
  | "FileChecksum"
  | "TrailingData"
  | "UnknownUnit"
  | "MissingUnit"
  | "UnsupportedUnitVersion"
  | "ConfigurationMismatch"
  | "UnitRejected"
  | "InvalidUnit";

/**
 * A saved state that cannot be loaded (or a unit that cannot be registered). `offset` is
 * the byte offset of the problem in the input and `section` the unit whose section it is,
 * when there is one. Nothing was loaded when this is thrown.
 */
export class SavedStateError extends Error {
  override readonly name = "SavedStateError";
  constructor(
    readonly code: SavedStateErrorCode,
    message: string,
    readonly offset?: number,
    readonly section?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isSavedStateError(value: unknown): value is SavedStateError {
  return value instanceof Error && value.name === "SavedStateError" && typeof (value as SavedStateError).code === "string";
}

/** Where a save goes: the CLI backs it with a temporary file (renamed when complete) or a socket. */
export interface SavedStateSink {
  write(chunk: Uint8Array): void | Promise<void>;
}

/** Where a load reads from: `read()` returns the next chunk, or null at the end. */
export interface SavedStateSource {
  read(): Uint8Array | null | Promise<Uint8Array | null>;
}

/**
 * One subsystem's part of a saved state. `save` gives the final payload (the VM is
 * suspended then); `liveSave` (optional) gives a payload for each live pass while the guest
 * runs. On load, every unit's `check` sees all its sections before any unit's `load` runs,
 * so a payload a unit cannot take must be refused in `check`.
 */
export interface SavedStateUnit {
  /** 1-255 printable ASCII characters. */
  readonly name: string;
  /** Default 0; several instances of one unit (two UARTs) differ here. */
  readonly instance?: number;
  /** The version `save` writes (a positive 32-bit integer). */
  readonly version: number;
  /** Versions `load` accepts; default only `version`. */
  acceptsVersion?(version: number): boolean;
  /** Called once when a save begins; `live` when live passes will precede the final one. */
  savePrep?(live: boolean): void;
  /** A live pass while the guest runs: its payload, and whether the unit is ready for the final pass. */
  liveSave?(pass: number): { readonly data: Uint8Array; readonly done: boolean };
  save(): Uint8Array | Promise<Uint8Array>;
  /** Throws (anything) if this payload cannot be loaded. Must not change anything. */
  check?(payload: Uint8Array, version: number, pass: number): void;
  /** Called once before the unit's first `load` of a restore. */
  loadPrep?(): void;
  load(payload: Uint8Array, version: number, pass: number): void;
}

/** What the header records and a load compares. */
export interface SavedStateHeader {
  readonly cpuCount: number;
  /** Canonical UUID text. */
  readonly uuid: string;
  readonly name: string;
  /** An opaque description of the machine's configuration; a load requires the same text. */
  readonly configuration: string;
  readonly live: boolean;
  readonly teleport: boolean;
}

export interface SavedStateSection {
  readonly unit: string;
  readonly instance: number;
  readonly version: number;
  readonly pass: number;
  readonly payload: Uint8Array;
  /** Offset of the section in the input. */
  readonly offset: number;
}

export interface ParsedSavedState {
  readonly header: SavedStateHeader;
  readonly sections: readonly SavedStateSection[];
}

// Web text codecs: globals in browsers and Node (this package's lib settings do not declare them).
declare const TextEncoder: new () => { encode(text: string): Uint8Array };
declare const TextDecoder: new (label: string, options: { fatal: boolean }) => { decode(bytes: Uint8Array): string };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function unitKey(name: string, instance: number): string {
  return `${name}#${instance}`;
}

/** Checks a unit's shape when it is registered. */
export function validateUnit(unit: SavedStateUnit): void {
  if (unit === null || typeof unit !== "object") throw new SavedStateError("InvalidUnit", "a saved-state unit must be an object");
  if (typeof unit.name !== "string" || !/^[\x20-\x7e]{1,255}$/.test(unit.name)) {
    throw new SavedStateError("InvalidUnit", `unit name must be 1-255 printable ASCII characters, got ${JSON.stringify(unit.name)}`);
  }
  const instance = unit.instance ?? 0;
  if (!isU32(instance)) throw new SavedStateError("InvalidUnit", `unit "${unit.name}": instance must be a 32-bit unsigned integer, got ${String(instance)}`);
  if (!isU32(unit.version) || unit.version === 0) throw new SavedStateError("InvalidUnit", `unit "${unit.name}": version must be 1-0xFFFFFFFF, got ${String(unit.version)}`);
  if (typeof unit.save !== "function" || typeof unit.load !== "function") throw new SavedStateError("InvalidUnit", `unit "${unit.name}" needs save and load functions`);
}

function isU32(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

function uuidBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, "");
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16) || 0;
  return bytes;
}

function uuidText(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Writes a container to a sink, section by section, keeping the running whole-file CRC. */
export class SavedStateWriter {
  private fileCrc = 0;
  private length = 0;
  private sectionCount = 0;

  constructor(private readonly sink: SavedStateSink) {}

  async writeHeader(header: SavedStateHeader): Promise<void> {
    const name = encoder.encode(header.name);
    const configuration = encoder.encode(header.configuration);
    if (name.length > 0xffff) throw new RangeError("VM name too long for a saved state");
    const bytes = new Uint8Array(8 + 4 + 4 + 4 + 16 + 2 + name.length + 4 + configuration.length + 4);
    const view = new DataView(bytes.buffer);
    bytes.set(encoder.encode(SAVED_STATE_MAGIC), 0);
    let at = 8;
    view.setUint32(at, SAVED_STATE_FORMAT_VERSION, true);
    view.setUint32((at += 4), (header.live ? FLAG_LIVE : 0) | (header.teleport ? FLAG_TELEPORT : 0), true);
    view.setUint32((at += 4), header.cpuCount, true);
    bytes.set(uuidBytes(header.uuid), (at += 4));
    view.setUint16((at += 16), name.length, true);
    bytes.set(name, (at += 2));
    view.setUint32((at += name.length), configuration.length, true);
    bytes.set(configuration, (at += 4));
    at += configuration.length;
    view.setUint32(at, crc32(bytes, 0, 0, at), true);
    await this.emit(bytes);
  }

  async writeSection(unit: string, instance: number, version: number, pass: number, payload: Uint8Array): Promise<void> {
    const name = encoder.encode(unit);
    if (name.length === 0 || name.length > MAX_NAME_BYTES) throw new RangeError(`unit name "${unit}" must be 1-255 bytes`);
    const head = new Uint8Array(4 + 1 + name.length + 16);
    const view = new DataView(head.buffer);
    view.setUint32(0, SECTION_MARKER, true);
    head[4] = name.length;
    head.set(name, 5);
    let at = 5 + name.length;
    view.setUint32(at, instance, true);
    view.setUint32((at += 4), version, true);
    view.setUint32((at += 4), pass, true);
    view.setUint32((at += 4), payload.length, true);
    const crc = new Uint8Array(4);
    new DataView(crc.buffer).setUint32(0, crc32(payload, crc32(head)), true);
    await this.emit(head);
    await this.emit(payload);
    await this.emit(crc);
    this.sectionCount++;
  }

  async writeTrailer(): Promise<void> {
    const bytes = new Uint8Array(TRAILER_BYTES);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, TRAILER_MARKER, true);
    view.setUint32(4, this.sectionCount, true);
    view.setUint32(8, this.length + TRAILER_BYTES, true);
    view.setUint32(12, crc32(bytes, this.fileCrc, 0, 12), true);
    await this.emit(bytes);
  }

  private async emit(bytes: Uint8Array): Promise<void> {
    this.fileCrc = crc32(bytes, this.fileCrc);
    this.length += bytes.length;
    await this.sink.write(bytes);
  }
}

/**
 * Parses and checks a whole saved state: magic, format version, header CRC, every section's
 * framing and CRC, the trailer's section count, length and whole-file CRC. Throws a
 * `SavedStateError` naming the offset (and section) of the first problem.
 */
export function parseSavedState(bytes: Uint8Array): ParsedSavedState {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (at: number, count: number, what: string, section?: string) => {
    if (at + count > bytes.length) {
      throw new SavedStateError("Truncated", `saved state ends at byte ${bytes.length} inside ${what} (needs ${at + count} bytes)`, bytes.length, section);
    }
  };
  need(0, 8, "the magic");
  if (decoderLatin1(bytes, 0, 8) !== SAVED_STATE_MAGIC) throw new SavedStateError("BadMagic", `not a vmmkit saved state (magic at offset 0 is not "${SAVED_STATE_MAGIC}")`, 0);
  need(8, 4, "the header");
  const formatVersion = view.getUint32(8, true);
  if (formatVersion !== SAVED_STATE_FORMAT_VERSION) {
    throw new SavedStateError("UnsupportedVersion", `saved-state format version ${formatVersion} at offset 8 is not supported (this vmmkit reads version ${SAVED_STATE_FORMAT_VERSION})`, 8);
  }
  need(12, 4 + 4 + 16 + 2, "the header");
  const flags = view.getUint32(12, true);
  const cpuCount = view.getUint32(16, true);
  const uuid = uuidText(bytes.subarray(20, 36));
  const nameLength = view.getUint16(36, true);
  need(38, nameLength + 4, "the header");
  const nameBytes = bytes.subarray(38, 38 + nameLength);
  let at = 38 + nameLength;
  const configurationLength = view.getUint32(at, true);
  need(at + 4, configurationLength + 4, "the header");
  const configurationBytes = bytes.subarray(at + 4, at + 4 + configurationLength);
  at += 4 + configurationLength;
  const headerCrc = view.getUint32(at, true);
  if (crc32(bytes, 0, 0, at) !== headerCrc) throw new SavedStateError("HeaderChecksum", `header checksum mismatch (CRC-32 at offset ${at})`, at);
  if (flags & ~(FLAG_LIVE | FLAG_TELEPORT)) throw new SavedStateError("BadSection", `unknown header flags 0x${flags.toString(16)} at offset 12`, 12);
  const name = decodeText(nameBytes, 38, "the VM name");
  const configuration = decodeText(configurationBytes, 42 + nameLength, "the configuration");
  at += 4;

  const sections: SavedStateSection[] = [];
  for (;;) {
    need(at, 4, "a section or the trailer");
    const marker = view.getUint32(at, true);
    if (marker === TRAILER_MARKER) break;
    if (marker !== SECTION_MARKER) throw new SavedStateError("BadSection", `expected a section or the trailer at offset ${at}`, at);
    const start = at;
    need(at, 5, "a section header");
    const unitLength = bytes[at + 4]!;
    need(at, 5 + unitLength + 16, "a section header");
    if (unitLength === 0) throw new SavedStateError("BadSection", `section at offset ${at} has an empty unit name`, at);
    const unit = decoderLatin1(bytes, at + 5, at + 5 + unitLength);
    if (!/^[\x20-\x7e]+$/.test(unit)) throw new SavedStateError("BadSection", `section at offset ${at} has a unit name that is not printable ASCII`, at);
    at += 5 + unitLength;
    const instance = view.getUint32(at, true);
    const version = view.getUint32(at + 4, true);
    const pass = view.getUint32(at + 8, true);
    const payloadLength = view.getUint32(at + 12, true);
    at += 16;
    need(at, payloadLength + 4, `the payload of section "${unit}" (${payloadLength} bytes)`, unit);
    const payload = bytes.subarray(at, at + payloadLength);
    at += payloadLength;
    if (crc32(bytes, 0, start, at) !== view.getUint32(at, true)) {
      throw new SavedStateError("SectionChecksum", `section "${unit}" (instance ${instance}, pass ${passName(pass)}) at offset ${start}: checksum mismatch`, start, unit);
    }
    at += 4;
    sections.push({ unit, instance, version, pass, payload, offset: start });
  }
  need(at, TRAILER_BYTES, "the trailer");
  const sectionCount = view.getUint32(at + 4, true);
  const totalLength = view.getUint32(at + 8, true);
  const fileCrc = view.getUint32(at + 12, true);
  if (crc32(bytes, 0, 0, at + 12) !== fileCrc) throw new SavedStateError("FileChecksum", `whole-file checksum mismatch (CRC-32 at offset ${at + 12})`, at + 12);
  if (sectionCount !== sections.length) {
    throw new SavedStateError("BadSection", `the trailer at offset ${at} counts ${sectionCount} sections, the file has ${sections.length}`, at);
  }
  if (totalLength !== at + TRAILER_BYTES) throw new SavedStateError("BadSection", `the trailer at offset ${at} gives length ${totalLength}, the file is ${at + TRAILER_BYTES} bytes`, at);
  if (bytes.length !== at + TRAILER_BYTES) {
    throw new SavedStateError("TrailingData", `${bytes.length - at - TRAILER_BYTES} bytes after the end of the saved state (offset ${at + TRAILER_BYTES})`, at + TRAILER_BYTES);
  }
  return {
    header: { cpuCount, uuid, name, configuration, live: (flags & FLAG_LIVE) !== 0, teleport: (flags & FLAG_TELEPORT) !== 0 },
    sections,
  };
}

function passName(pass: number): string {
  return pass === FINAL_PASS ? "final" : String(pass);
}

function decoderLatin1(bytes: Uint8Array, start: number, end: number): string {
  let text = "";
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

function decodeText(bytes: Uint8Array, offset: number, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch (error) {
    throw new SavedStateError("BadSection", `${what} at offset ${offset} is not valid UTF-8`, offset, undefined, { cause: error });
  }
}

/**
 * Checks a parsed saved state against the units that would load it: every section belongs
 * to a registered unit in a version it accepts and passes that unit's `check`; every
 * registered unit has a section; the CPU count and configuration match.
 */
export function checkSavedState(
  parsed: ParsedSavedState,
  units: ReadonlyMap<string, SavedStateUnit>,
  expected: { readonly cpuCount: number; readonly configuration: string },
): void {
  const { header } = parsed;
  if (header.cpuCount !== expected.cpuCount) {
    throw new SavedStateError("ConfigurationMismatch", `the saved state is for ${header.cpuCount} vCPUs, this VM has ${expected.cpuCount}`, 16);
  }
  if (header.configuration !== expected.configuration) {
    throw new SavedStateError(
      "ConfigurationMismatch",
      `the saved state's configuration ${JSON.stringify(header.configuration)} differs from this VM's ${JSON.stringify(expected.configuration)}`,
    );
  }
  const seen = new Set<string>();
  for (const section of parsed.sections) {
    const key = unitKey(section.unit, section.instance);
    const unit = units.get(key);
    if (unit === undefined) {
      throw new SavedStateError("UnknownUnit", `section at offset ${section.offset} is for unit "${section.unit}" instance ${section.instance}, which this VM does not have`, section.offset, section.unit);
    }
    const accepts = unit.acceptsVersion ? unit.acceptsVersion(section.version) : section.version === unit.version;
    if (!accepts) {
      throw new SavedStateError(
        "UnsupportedUnitVersion",
        `unit "${section.unit}" cannot load its version ${section.version} (section at offset ${section.offset}; it writes version ${unit.version})`,
        section.offset,
        section.unit,
      );
    }
    try {
      unit.check?.(section.payload, section.version, section.pass);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new SavedStateError("UnitRejected", `unit "${section.unit}" rejects its section at offset ${section.offset}: ${reason}`, section.offset, section.unit, { cause: error });
    }
    seen.add(key);
  }
  for (const [key, unit] of units) {
    if (!seen.has(key)) throw new SavedStateError("MissingUnit", `the saved state has no section for unit "${unit.name}" instance ${unit.instance ?? 0}`);
  }
}

/** A sink that keeps everything in memory; `bytes()` joins what was written. */
export class MemorySink implements SavedStateSink {
  private readonly chunks: Uint8Array[] = [];
  private total = 0;

  write(chunk: Uint8Array): void {
    this.chunks.push(chunk.slice());
    this.total += chunk.length;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.total);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

/** A source over bytes in memory (read in one chunk). */
export function memorySource(bytes: Uint8Array): SavedStateSource {
  let done = false;
  return {
    read() {
      if (done) return null;
      done = true;
      return bytes;
    },
  };
}

export async function readAll(source: SavedStateSource, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const chunk = await source.read();
    if (chunk === null) break;
    if (!(chunk instanceof Uint8Array)) throw new TypeError("a saved-state source must return Uint8Array chunks or null");
    total += chunk.length;
    if (total > maxBytes) throw new SavedStateError("BadSection", `the saved state is larger than the limit of ${maxBytes} bytes`, maxBytes);
    chunks.push(chunk);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
