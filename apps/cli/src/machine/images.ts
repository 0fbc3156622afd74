/**
 * Guest image formats: raw flat binaries, firmware ROMs at the reset vector, and multiboot
 * v1 kernels (ELF or a.out-kludge), the way QEMU's -bios and -kernel load them.
 */
import type { PhysicalMemory } from "@vmmkit/pgm";
import { CliError, hex } from "../cli-error.js";
import { CONVENTIONAL_MEMORY_END, EXTENDED_MEMORY_START, FOUR_GIB, LOW_BIOS_WINDOW } from "./layout.js";

/** How the boot processor starts. */
export type EntryState =
  | { readonly mode: "reset" }
  | { readonly mode: "real"; readonly cs: number; readonly ip: number }
  | {
      readonly mode: "flat32";
      readonly eip: number;
      readonly eax?: number;
      readonly ebx?: number;
      /** Guest-physical address of a GDT with a flat code (0x08) and data (0x10) segment. */
      readonly gdtAddress: number;
    };

export interface LoadedImage {
  readonly format: "raw" | "rom" | "multiboot";
  readonly entry: EntryState;
  readonly description: string;
}

/** Where the loader writes its own data for the guest (GDT, multiboot information). */
export const LOADER_DATA = 0x1000;
const LOADER_GDT = LOADER_DATA;
const MULTIBOOT_INFO = LOADER_DATA + 0x100;
const MULTIBOOT_MMAP = MULTIBOOT_INFO + 0x100;
const MULTIBOOT_LOADER_NAME = MULTIBOOT_INFO + 0x400;
const LOADER_DATA_END = LOADER_DATA + 0x1000;

const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
const MULTIBOOT_BOOT_MAGIC = 0x2badb002;
const MULTIBOOT_SEARCH_BYTES = 8192;
/** Required-feature bits vmmkit honours: 0 (page-aligned modules), 1 (memory info), 2 (video, best effort). */
const MULTIBOOT_SUPPORTED_REQUIRED = 0x7;

/** Writes a three-entry flat GDT (null, code 0x08, data 0x10) at `address`. */
export function writeFlatGdt(memory: PhysicalMemory, address: number): void {
  const gdt = new Uint8Array(24);
  const view = new DataView(gdt.buffer);
  view.setUint32(8, 0x0000ffff, true);
  view.setUint32(12, 0x00cf9a00, true);
  view.setUint32(16, 0x0000ffff, true);
  view.setUint32(20, 0x00cf9200, true);
  memory.loadBytes(address, gdt);
}

/** A raw flat binary at `loadAddress`, entered at `entry` in real or flat 32-bit mode. */
export function loadRaw(memory: PhysicalMemory, image: Uint8Array, loadAddress: number, entry: number, entryBits: 16 | 32): LoadedImage {
  if (image.length === 0) throw new CliError("the image is empty");
  requireRam(memory, loadAddress, image.length, "the image");
  if (entryBits === 16 && entry >= EXTENDED_MEMORY_START) {
    throw new CliError(`a 16-bit entry point must be below 1 MiB, got ${hex(entry)} (use --entry-mode 32 for code above 1 MiB)`);
  }
  if (entryBits === 32 && loadAddress < LOADER_DATA_END && loadAddress + image.length > LOADER_DATA) {
    throw new CliError(`a 32-bit raw image must not overlap the loader's data at ${hex(LOADER_DATA)}-${hex(LOADER_DATA_END - 1)}`);
  }
  memory.loadBytes(loadAddress, image);
  if (entryBits === 16) {
    const cs = entry <= 0xffff ? 0 : (entry >>> 4) & 0xf000;
    return {
      format: "raw",
      entry: { mode: "real", cs, ip: entry - cs * 16 },
      description: `raw binary at ${hex(loadAddress)}, entered at ${hex(cs)}:${hex(entry - cs * 16)} in real mode`,
    };
  }
  writeFlatGdt(memory, LOADER_GDT);
  return {
    format: "raw",
    entry: { mode: "flat32", eip: entry, gdtAddress: LOADER_GDT },
    description: `raw binary at ${hex(loadAddress)}, entered at ${hex(entry)} in 32-bit protected mode`,
  };
}

/**
 * A firmware image (64 KiB - 2 MiB) mapped so it ends at 4 GiB, with its last 128 KiB (or
 * all of it, if smaller) also ending at 1 MiB; the CPU starts at the reset vector.
 */
export function loadRom(memory: PhysicalMemory, image: Uint8Array): LoadedImage {
  const size = image.length;
  if (size < 64 * 1024 || size > 2 * 1024 * 1024 || size % 4096 !== 0) {
    throw new CliError(`a firmware image must be 64 KiB to 2 MiB and a multiple of 4 KiB; this one is ${size} bytes`);
  }
  memory.addRom(FOUR_GIB - size, image, "firmware (high)");
  const lowSize = Math.min(size, LOW_BIOS_WINDOW);
  memory.addRom(EXTENDED_MEMORY_START - lowSize, image.subarray(size - lowSize), "firmware (below 1 MiB)");
  return { format: "rom", entry: { mode: "reset" }, description: `firmware of ${size / 1024} KiB at the reset vector` };
}

/** Finds a valid multiboot v1 header in the first 8 KiB; returns its offset or −1. */
export function findMultibootHeader(image: Uint8Array): number {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const end = Math.min(image.length, MULTIBOOT_SEARCH_BYTES) - 12;
  for (let offset = 0; offset <= end; offset += 4) {
    if (view.getUint32(offset, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = view.getUint32(offset + 4, true);
    const checksum = view.getUint32(offset + 8, true);
    if (((MULTIBOOT_HEADER_MAGIC + flags + checksum) >>> 0) === 0) return offset;
  }
  return -1;
}

/**
 * A multiboot v1 kernel, as `qemu-system-i386 -kernel` loads it: segments copied to their
 * physical addresses, the information block (memory sizes, memory map, loader name) built
 * below 1 MiB, and the CPU in flat 32-bit protected mode with EAX = 0x2BADB002 and EBX
 * pointing at the information block.
 */
export function loadMultiboot(memory: PhysicalMemory, image: Uint8Array, memoryBytes: number, commandLine: string): LoadedImage {
  const headerOffset = findMultibootHeader(image);
  if (headerOffset < 0) throw new CliError("not a multiboot kernel: no valid multiboot header in the first 8 KiB");
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const flags = view.getUint32(headerOffset + 4, true);
  const unsupported = flags & 0xffff & ~MULTIBOOT_SUPPORTED_REQUIRED;
  if (unsupported !== 0) throw new CliError(`the multiboot header requires features vmmkit does not provide (flags ${hex(unsupported)})`);

  let entry: number;
  const segments: { address: number; bytes: Uint8Array; zeroBytes: number }[] = [];
  if (flags & 0x10000) {
    // The a.out kludge: addresses come from the header itself.
    if (image.length < headerOffset + 32) throw new CliError("truncated multiboot header (address fields missing)");
    const headerAddress = view.getUint32(headerOffset + 12, true);
    const loadAddress = view.getUint32(headerOffset + 16, true);
    const loadEnd = view.getUint32(headerOffset + 20, true);
    const bssEnd = view.getUint32(headerOffset + 24, true);
    entry = view.getUint32(headerOffset + 28, true);
    const fileStart = headerOffset - (headerAddress - loadAddress);
    const loadLength = loadEnd === 0 ? image.length - fileStart : loadEnd - loadAddress;
    if (fileStart < 0 || loadLength < 0 || fileStart + loadLength > image.length) {
      throw new CliError("malformed multiboot header: its load addresses do not match the file");
    }
    segments.push({
      address: loadAddress,
      bytes: image.subarray(fileStart, fileStart + loadLength),
      zeroBytes: bssEnd > loadAddress + loadLength ? bssEnd - (loadAddress + loadLength) : 0,
    });
  } else {
    entry = parseElfSegments(image, segments);
  }

  // Validate everything before the first byte is written.
  for (const segment of segments) {
    const length = segment.bytes.length + segment.zeroBytes;
    if (segment.address < LOADER_DATA_END && segment.address + length > LOADER_DATA) {
      throw new CliError(`the kernel segment at ${hex(segment.address)} overlaps the loader's data at ${hex(LOADER_DATA)}`);
    }
    requireRam(memory, segment.address, length, `the kernel segment at ${hex(segment.address)}`);
  }
  for (const segment of segments) {
    memory.loadBytes(segment.address, segment.bytes);
    if (segment.zeroBytes > 0) memory.loadBytes(segment.address + segment.bytes.length, new Uint8Array(segment.zeroBytes));
  }
  writeFlatGdt(memory, LOADER_GDT);
  writeMultibootInfo(memory, memoryBytes, commandLine);
  return {
    format: "multiboot",
    entry: { mode: "flat32", eip: entry, eax: MULTIBOOT_BOOT_MAGIC, ebx: MULTIBOOT_INFO, gdtAddress: LOADER_GDT },
    description: `multiboot kernel entered at ${hex(entry)}`,
  };
}

function parseElfSegments(image: Uint8Array, segments: { address: number; bytes: Uint8Array; zeroBytes: number }[]): number {
  if (image.length < 52 || image[0] !== 0x7f || image[1] !== 0x45 || image[2] !== 0x4c || image[3] !== 0x46) {
    throw new CliError("the multiboot header asks for ELF loading but the file is not an ELF image");
  }
  if (image[4] !== 1 || image[5] !== 1) throw new CliError("only 32-bit little-endian ELF multiboot kernels are supported");
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (view.getUint16(18, true) !== 3) throw new CliError("the ELF image is not for i386 (e_machine is not 3)");
  const entry = view.getUint32(24, true);
  const programHeaders = view.getUint32(28, true);
  const entrySize = view.getUint16(42, true);
  const count = view.getUint16(44, true);
  if (entrySize < 32 || programHeaders + count * entrySize > image.length) {
    throw new CliError("truncated ELF image: the program headers lie past the end of the file");
  }
  for (let i = 0; i < count; i++) {
    const header = programHeaders + i * entrySize;
    if (view.getUint32(header, true) !== 1) continue; // PT_LOAD only
    const offset = view.getUint32(header + 4, true);
    const physicalAddress = view.getUint32(header + 12, true);
    const fileSize = view.getUint32(header + 16, true);
    const memorySize = view.getUint32(header + 20, true);
    if (offset + fileSize > image.length) throw new CliError(`truncated ELF image: segment ${i} lies past the end of the file`);
    if (memorySize < fileSize) throw new CliError(`malformed ELF image: segment ${i} has a memory size below its file size`);
    segments.push({ address: physicalAddress, bytes: image.subarray(offset, offset + fileSize), zeroBytes: memorySize - fileSize });
  }
  if (segments.length === 0) throw new CliError("the ELF image has no loadable segments");
  return entry;
}

function writeMultibootInfo(memory: PhysicalMemory, memoryBytes: number, commandLine: string): void {
  const mapEntries: [number, number, number][] = [
    [0, 0x9fc00, 1],
    [0x9fc00, CONVENTIONAL_MEMORY_END - 0x9fc00, 2],
    [0xf0000, 0x10000, 2],
    [EXTENDED_MEMORY_START, memoryBytes - EXTENDED_MEMORY_START, 1],
  ];
  const map = new DataView(new ArrayBuffer(mapEntries.length * 24));
  mapEntries.forEach(([base, length, type], i) => {
    map.setUint32(i * 24, 20, true); // size of the rest of the entry
    map.setUint32(i * 24 + 4, base, true);
    map.setUint32(i * 24 + 12, length, true);
    map.setUint32(i * 24 + 20, type, true);
  });
  memory.loadBytes(MULTIBOOT_MMAP, new Uint8Array(map.buffer));
  const encoder = new TextEncoder();
  const name = encoder.encode("vmmkit\0");
  memory.loadBytes(MULTIBOOT_LOADER_NAME, name);
  const commandLineAddress = MULTIBOOT_LOADER_NAME + 0x20;
  memory.loadBytes(commandLineAddress, encoder.encode(commandLine.slice(0, 0x3c0) + "\0"));

  const info = new DataView(new ArrayBuffer(88));
  info.setUint32(0, (1 << 0) | (1 << 2) | (1 << 6) | (1 << 9), true); // mem, cmdline, mmap, loader name
  info.setUint32(4, 640, true); // mem_lower, KiB
  info.setUint32(8, (memoryBytes - EXTENDED_MEMORY_START) / 1024, true); // mem_upper, KiB above 1 MiB
  info.setUint32(16, commandLineAddress, true);
  info.setUint32(44, map.byteLength, true);
  info.setUint32(48, MULTIBOOT_MMAP, true);
  info.setUint32(64, MULTIBOOT_LOADER_NAME, true);
  memory.loadBytes(MULTIBOOT_INFO, new Uint8Array(info.buffer));
}

function requireRam(memory: PhysicalMemory, address: number, length: number, what: string): void {
  const last = address + length - 1;
  for (let at = address; at <= last; ) {
    const range = memory.rangeAt(at);
    if (!range || range.kind !== "ram") {
      throw new CliError(`${what} (${length} bytes at ${hex(address)}) does not fit in guest RAM: ${hex(at)} is not RAM; try a larger --mem`);
    }
    at = range.lastAddress + 1;
  }
}
