/**
 * A small test machine around one Cpu: 1 MiB of RAM at physical 0, a bus that records
 * every access it receives, and helpers that put the CPU into flat 32-bit protected mode
 * with descriptor tables written into RAM the way a guest would lay them out.
 *
 * Physical layout used by the tests (identity = linear in flat mode):
 *   0x00000  real-mode IVT            0x00800  GDT            0x01000  IDT
 *   0x02000  code under test          0x03000  handlers       0x08000  data
 *   0x10000  page directory / tables  0x30000  page frames    0x90000  stack top
 */
import { Cpu, MemoryAccess, RunExit, registers, type AccessSize, type CpuBus, type CpuModel } from "../src/index.js";

const { CS, DS, ES, FS, GS, SS } = registers;

export const RAM_SIZE = 0x100000;
export const GDT_BASE = 0x800;
export const IDT_BASE = 0x1000;
export const CODE = 0x2000;
export const HANDLERS = 0x3000;
export const DATA = 0x8000;
export const STACK_TOP = 0x90000;

/** GDT selectors written by {@link Machine.enterFlatProtectedMode}. */
export const SELECTOR = { code32: 0x08, data32: 0x10, code32User: 0x18 | 3, data32User: 0x20 | 3, code16: 0x28 } as const;

/**
 * Segment attributes in the WHPX layout the CPU uses: type | S << 4 | DPL << 5 | P << 7 |
 * AVL << 12 | L << 13 | D/B << 14 | G << 15. Written out here rather than derived with the
 * CPU's own descriptorAttributes(), so a bug there cannot hide in both places.
 */
export const ATTRIBUTES = {
  code32: 0xc09b, // G, D, P, S, type 0xB (execute/read, accessed)
  data32: 0xc093, // G, B, P, S, type 0x3 (read/write, accessed)
} as const;

export type BusEvent =
  | { readonly kind: "readPhysical" | "readPort"; readonly address: number; readonly size: AccessSize; readonly value: number }
  | { readonly kind: "writePhysical" | "writePort"; readonly address: number; readonly size: AccessSize; readonly value: number };

/** A CpuBus that logs each call; behaviour is swapped per test through the hook fields. */
export class RecordingBus implements CpuBus {
  readonly events: BusEvent[] = [];
  /** Value for reads of unmapped memory (default: all ones, like an empty bus). */
  physicalRead: (address: number, size: AccessSize) => number = (_address, size) => 2 ** (8 * size) - 1;
  portRead: (port: number, size: AccessSize) => number = (_port, size) => 2 ** (8 * size) - 1;
  /** Called before a write or read is logged; may call cpu.interceptInstruction(). */
  beforeAccess: (kind: BusEvent["kind"], address: number, size: AccessSize) => void = () => {};

  readPhysical(address: number, size: AccessSize): number {
    this.beforeAccess("readPhysical", address, size);
    const value = this.physicalRead(address, size);
    this.events.push({ kind: "readPhysical", address, size, value });
    return value;
  }

  writePhysical(address: number, value: number, size: AccessSize): void {
    this.beforeAccess("writePhysical", address, size);
    this.events.push({ kind: "writePhysical", address, size, value });
  }

  readPort(port: number, size: AccessSize): number {
    this.beforeAccess("readPort", port, size);
    const value = this.portRead(port, size);
    this.events.push({ kind: "readPort", address: port, size, value });
    return value;
  }

  writePort(port: number, value: number, size: AccessSize): void {
    this.beforeAccess("writePort", port, size);
    this.events.push({ kind: "writePort", address: port, size, value });
  }
}

/** Raw 8-byte segment descriptor as [low dword, high dword]. */
export function segmentDescriptor(base: number, limit: number, access: number, flags: number): [number, number] {
  const low = ((limit & 0xffff) | ((base & 0xffff) << 16)) >>> 0;
  const high = (((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | (flags << 20) | (base & 0xff000000)) >>> 0;
  return [low, high];
}

export class Machine {
  readonly bus = new RecordingBus();
  readonly cpu: Cpu;
  readonly ram = new Uint8Array(RAM_SIZE);
  readonly view = new DataView(this.ram.buffer);

  constructor(model: CpuModel = "pentium-pro") {
    this.cpu = new Cpu({ bus: this.bus, model });
    this.cpu.mapMemory(0, this.ram, MemoryAccess.All);
  }

  load(address: number, bytes: readonly number[]): void {
    this.ram.set(bytes, address);
  }

  /** A 32-bit register as an unsigned number. */
  regs32(register: number): number {
    return this.cpu.regs[register]! >>> 0;
  }

  read32(address: number): number {
    return this.view.getUint32(address, true);
  }

  write32(address: number, value: number): void {
    this.view.setUint32(address, value >>> 0, true);
  }

  /** Real mode, CS = DS = ES = SS = 0, SP = 0x7000 (the CPU is fresh from reset otherwise). */
  enterRealMode(): void {
    const cpu = this.cpu;
    for (const segment of [ES, CS, SS, DS, FS, GS]) cpu.setRealModeSegment(segment, 0);
    cpu.regs[registers.ESP] = 0x7000;
  }

  /**
   * Flat 32-bit ring-0 protected mode: a GDT in RAM (null, code, data, user code, user
   * data, 16-bit code), CR0.PE set, segment caches loaded as a far jump and MOV would
   * load them, ESP at STACK_TOP, an empty IDT of 256 not-present gates.
   */
  enterFlatProtectedMode(): void {
    const cpu = this.cpu;
    const gdt = [
      [0, 0],
      segmentDescriptor(0, 0xfffff, 0x9a, 0xc), // 0x08 ring-0 code, 4 GiB, 32-bit
      segmentDescriptor(0, 0xfffff, 0x92, 0xc), // 0x10 ring-0 data
      segmentDescriptor(0, 0xfffff, 0xfa, 0xc), // 0x18 ring-3 code
      segmentDescriptor(0, 0xfffff, 0xf2, 0xc), // 0x20 ring-3 data
      segmentDescriptor(0, 0xffff, 0x9a, 0x0), // 0x28 ring-0 code, 64 KiB, 16-bit
    ];
    gdt.forEach(([low, high], index) => {
      this.write32(GDT_BASE + index * 8, low!);
      this.write32(GDT_BASE + index * 8 + 4, high!);
    });
    cpu.gdtBase = GDT_BASE;
    cpu.gdtLimit = gdt.length * 8 - 1;
    cpu.idtBase = IDT_BASE;
    cpu.idtLimit = 256 * 8 - 1;
    this.ram.fill(0, IDT_BASE, IDT_BASE + 256 * 8);
    cpu.writeCr0(cpu.cr0 | 1);
    cpu.setSegmentCache(CS, SELECTOR.code32, 0, 0xffffffff, ATTRIBUTES.code32);
    for (const segment of [ES, SS, DS, FS, GS]) cpu.setSegmentCache(segment, SELECTOR.data32, 0, 0xffffffff, ATTRIBUTES.data32);
    cpu.regs[registers.ESP] = STACK_TOP;
  }

  /** A 32-bit interrupt (or trap) gate in the IDT, DPL 0 unless given. */
  setGate(vector: number, offset: number, { trap = false, dpl = 0, selector = SELECTOR.code32 as number } = {}): void {
    const low = ((offset & 0xffff) | (selector << 16)) >>> 0;
    const high = ((offset & 0xffff0000) | 0x8000 | (dpl << 13) | ((trap ? 0xf : 0xe) << 8)) >>> 0;
    this.write32(IDT_BASE + vector * 8, low);
    this.write32(IDT_BASE + vector * 8 + 4, high);
  }

  /** Real-mode IVT entry. */
  setVector(vector: number, segment: number, offset: number): void {
    this.view.setUint16(vector * 4, offset, true);
    this.view.setUint16(vector * 4 + 2, segment, true);
  }

  /** Runs from `eip` (CS unchanged) until something ends run(). */
  runAt(eip: number, budget = 10_000): RunExit {
    this.cpu.halted = false;
    this.cpu.eip = eip;
    return this.cpu.run(budget);
  }
}

/** Little-endian bytes of a 32-bit value, for hand-assembled immediates. */
export function le32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

export function le16(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff];
}

/** The six arithmetic flags as booleans, for readable failure messages. */
export interface ArithmeticFlags {
  CF: boolean;
  PF: boolean;
  AF: boolean;
  ZF: boolean;
  SF: boolean;
  OF: boolean;
}

export const FLAG_BITS: Record<keyof ArithmeticFlags, number> = { CF: 0x1, PF: 0x4, AF: 0x10, ZF: 0x40, SF: 0x80, OF: 0x800 };

export function decodeFlags(eflags: number): ArithmeticFlags {
  return {
    CF: (eflags & FLAG_BITS.CF) !== 0,
    PF: (eflags & FLAG_BITS.PF) !== 0,
    AF: (eflags & FLAG_BITS.AF) !== 0,
    ZF: (eflags & FLAG_BITS.ZF) !== 0,
    SF: (eflags & FLAG_BITS.SF) !== 0,
    OF: (eflags & FLAG_BITS.OF) !== 0,
  };
}

export function encodeFlags(flags: ArithmeticFlags): number {
  let value = 0;
  for (const name of Object.keys(FLAG_BITS) as (keyof ArithmeticFlags)[]) if (flags[name]) value |= FLAG_BITS[name];
  return value;
}

const EXIT_NAMES = Object.fromEntries(Object.entries(RunExit).map(([name, value]) => [value, name]));

/** Describes why run() ended, so a failed expectation says more than a number. */
export function describeExit(cpu: Cpu, exit: RunExit): string {
  let text = `${EXIT_NAMES[exit]} at eip ${(cpu.eip >>> 0).toString(16)}`;
  if (exit === RunExit.Exception) text += ` (vector ${cpu.exitVector}, error code ${cpu.exitErrorCode})`;
  if (exit === RunExit.Unsupported) text += ` (${cpu.unsupportedReason})`;
  return text;
}
