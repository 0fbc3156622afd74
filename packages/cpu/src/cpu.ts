import type { AccessSize, CpuBus } from "./cpu-bus.js";
import { CpuError, hex } from "./errors.js";
import {
  ARITHMETIC_FLAGS,
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_DE,
  CR4_PAE,
  CR4_PSE,
  CR4_PGE,
  CS,
  DS,
  EFER_NXE,
  ES,
  ESP,
  FLAG_AC,
  FLAG_AF,
  FLAG_CF,
  FLAG_IF,
  FLAG_NT,
  FLAG_OF,
  FLAG_PF,
  FLAG_RF,
  FLAG_SF,
  FLAG_TF,
  FLAG_VM,
  FLAG_ZF,
  FS,
  GS,
  LDTR,
  REAL_MODE_CODE_ATTRIBUTES,
  REAL_MODE_SEGMENT_ATTRIBUTES,
  SEG_ATTR_DB,
  SEG_ATTR_DPL,
  SEG_ATTR_G,
  SEG_ATTR_P,
  SEG_ATTR_S,
  SEG_TYPE_ACCESSED,
  SEG_TYPE_CODE,
  SEG_TYPE_EXPAND_DOWN,
  SEG_TYPE_WRITABLE,
  SS,
  TR,
  VECTOR_DB,
  VECTOR_DF,
  VECTOR_NMI,
  VECTOR_GP,
  VECTOR_NP,
  VECTOR_PF,
  VECTOR_SS,
  VECTOR_TS,
  VECTOR_UD,
} from "./registers.js";
import { instructionTableFor, PREFIX, type InstructionHandler } from "./instructions/table.js";
import { conditionHolds } from "./instructions/conditions.js";
import { shiftOperation } from "./instructions/shifts-and-bits.js";
import { imul16, imul32, multiplyAccumulator } from "./instructions/arithmetic.js";
import { compileRegion, type CompiledBlock, type CompilerRuntime } from "./jit/block-compiler.js";
import { farTransferThroughSystem, readTaskGateTarget, TaskSwitchReason, taskSwitch } from "./far-transfer.js";

/** CPU models whose behaviour differences vmmkit reproduces. */
export type CpuModel = "8086" | "80286" | "80386" | "pentium-pro";

const MODEL_LEVEL: Record<CpuModel, number> = { "8086": 0, "80286": 2, "80386": 3, "pentium-pro": 6 };

/** Why {@link Cpu.run} returned. */
export const RunExit = {
  /** The instruction budget of this call is used up. */
  Budget: 0,
  /** HLT executed; EIP is past it. Call run() again once an interrupt is pending. */
  Halt: 1,
  /** A bus callback called {@link Cpu.interceptInstruction}; EIP is at the instruction. */
  Intercept: 2,
  /** Triple fault: the processor shut down. */
  Shutdown: 3,
  /** An instruction vmmkit does not implement yet; EIP is at it. See `unsupportedReason`. */
  Unsupported: 4,
  /** Interrupts became deliverable while an interrupt-window exit was requested. */
  InterruptWindow: 5,
  /** An exception whose bit is set in `exceptionExitBitmap`; nothing was delivered. */
  Exception: 6,
  /** {@link Cpu.requestStop} was called. */
  Stop: 7,
} as const;
export type RunExit = (typeof RunExit)[keyof typeof RunExit];

// Thrown (never allocated per use) to unwind out of an instruction; caught only in run().
const FAULT_SIGNAL = { signal: "fault" };
const INTERCEPT_SIGNAL = { signal: "intercept" };
const UNSUPPORTED_SIGNAL = { signal: "unsupported" };
const EXCEPTION_EXIT_SIGNAL = { signal: "exception-exit" };

// TLB entry layout: high 20 bits = physical page XOR linear page, low bits = flags.
const TLB_VALID = 1;
const TLB_NO_WRITE = 2; // writes take the slow path (read-only, clean page, not RAM)
const TLB_NO_USER = 4; // supervisor page
const TLB_NO_READ = 8; // not in fast RAM: every access takes the slow path
const TLB_GLOBAL = 16;
/** The linear page holds a data breakpoint: every access takes the slow path, which checks it. */
const TLB_WATCH = 32;
/** PAE with EFER.NXE: an execute-disable page; fetches take the slow path, which faults. */
const TLB_NO_EXEC = 64;
const TLB_FILL_LIMIT = 4096;

// Physical page flags (per 4 KiB frame below 4 GiB).
const PAGE_READ = 1;
const PAGE_WRITE = 2;
const PAGE_EXECUTE = 4;
const PAGE_FAST = 8; // backed by the fast RAM buffer at its own physical address

const PAGE_COUNT_4G = 1 << 20;

// Block compiler: a direct-mapped cache of compiled blocks keyed by physical address, and
// execution counts that decide when a block is worth compiling.
const BLOCK_CACHE_SIZE = 1 << 14;
const BLOCK_CACHE_MASK = BLOCK_CACHE_SIZE - 1;
const HEAT_MASK = 0xffff;
/** Executions of a block start before it is compiled. */
const HOT_THRESHOLD = 40;

const blockSlot = (physical: number) => (physical ^ (physical >>> 13)) & BLOCK_CACHE_MASK;

// DR6 status and DR7 control bits.
const DR6_BD = 0x2000;
const DR6_BS = 0x4000;
const DR6_BT = 0x8000;
const DR7_GD = 0x2000;

/** Values of Cpu.interruptShadow. */
export const SHADOW_STI = 1;
export const SHADOW_MOV_SS = 2;

interface PhysicalMapping {
  readonly start: number;
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly access: number;
}

export interface CpuOptions {
  /** Receives accesses no mapped range serves, and port I/O. */
  readonly bus: CpuBus;
  /** Behaviour to reproduce (default "pentium-pro"). */
  readonly model?: CpuModel;
  /**
   * Compile hot code into JavaScript functions (default: on for the 80386 and later, off for
   * the 8086 and 80286 models, whose conformance runs execute each instruction once).
   */
  readonly jit?: boolean;
}

/**
 * An x86 interpreter. Guest RAM is mapped in with {@link mapMemory}; everything else reaches
 * the {@link CpuBus}. Guest faults are delivered to the guest (or reported as exits), never
 * thrown as JavaScript exceptions.
 */
export class Cpu {
  readonly model: CpuModel;
  /** 0 = 8086, 2 = 80286, 3 = 80386, 6 = Pentium Pro. */
  readonly modelLevel: number;
  bus: CpuBus;

  // ---- registers -----------------------------------------------------------------
  /** EAX…EDI as int32. */
  readonly regs = new Int32Array(8);
  /** 16-bit views: AX = regs16[0], CX = regs16[2], … (index = register * 2). */
  readonly regs16 = new Uint16Array(this.regs.buffer);
  /** 8-bit views: AL = regs8[0], AH = regs8[1], CL = regs8[4], … */
  readonly regs8 = new Uint8Array(this.regs.buffer);
  eip = 0;
  /** EFLAGS with the lazily computed arithmetic bits possibly stale (see flagsChanged). */
  flags = 2;
  /** Which arithmetic flags must be computed from the last operation. */
  flagsChanged = 0;
  lastOp1 = 0;
  lastOp2 = 0;
  lastAddResult = 0;
  lastResult = 0;
  /** Bit index of the sign bit of the last operation: 7, 15 or 31. */
  lastOpSize = 31;

  readonly segSelector = new Uint16Array(8);
  readonly segBase = new Int32Array(8);
  /** Raw 32-bit limit (byte granular, already scaled by G). */
  readonly segLimit = new Int32Array(8);
  readonly segAttributes = new Uint16Array(8);
  /**
   * Highest offset a one-byte access may use without a closer look: the limit for ordinary
   * expand-up segments, −1 for segments that need the full check (expand-down, unusable).
   */
  readonly segFastLimit = new Float64Array(8);

  gdtBase = 0;
  gdtLimit = 0xffff;
  idtBase = 0;
  idtLimit = 0x3ff;
  cr0 = 0;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  efer = 0;
  readonly dr = new Int32Array(8);
  /** Current privilege level. */
  cpl = 0;
  /** 1 when CS is a 32-bit segment. */
  codeSize32 = 0;
  /** 1 when SS is a 32-bit segment (ESP, not SP). */
  stackSize32 = 0;
  /** Mask applied to physical addresses: 1 MiB on the 8086, 16 MiB on the 286; A20. */
  physicalAddressMask = 0xffffffff;
  a20Enabled = true;

  // ---- per-instruction decode state ---------------------------------------------------
  opcode = 0;
  operandSize32 = 0;
  addressSize32 = 0;
  /** Segment override, or −1. */
  prefixSegment = -1;
  /** 0 none, 1 REPNE (F2), 2 REP/REPE (F3). */
  prefixRepeat = 0;
  prefixLock = 0;
  modrm = 0;
  eaSegment = DS;
  eaOffset = 0;
  /** EIP of the first byte (including prefixes) of the instruction executing. */
  instructionStart = 0;

  // ---- events ----------------------------------------------------------------------
  halted = false;
  /** Vector of an external interrupt waiting for IF, or −1. */
  pendingInterrupt = -1;
  /** An NMI waits to be delivered (not maskable by IF; held while one is being handled). */
  nmiPending = false;
  /** An NMI is being handled: further NMIs wait until the next IRET. */
  nmiMasked = false;
  /**
   * Interrupts held off for one instruction: SHADOW_STI after STI, SHADOW_MOV_SS after
   * MOV SS / POP SS (which also delays a single-step trap); 0 when none.
   */
  interruptShadow = 0;
  /** Report {@link RunExit.InterruptWindow} as soon as an interrupt could be delivered. */
  interruptWindowExit = false;
  /** Bit n set: exception n is reported as {@link RunExit.Exception} instead of delivered. */
  exceptionExitBitmap = 0;
  /** Filled for {@link RunExit.Exception}. */
  exitVector = -1;
  exitErrorCode = -1;
  /** True when the exception exit came from INT3, INTO or ICEBP (EIP is at that instruction). */
  exitSoftwareException = false;
  /** Filled for {@link RunExit.Unsupported}. */
  unsupportedReason = "";
  /** Guest instructions completed since creation (a double: it passes 2^31). */
  instructionsRetired = 0;
  /** TSC offset: RDTSC returns instructionsRetired + tscOffset (a virtual clock). */
  tscOffset = 0;
  msrApicBase = 0xfee00000 | 0;
  msrSysenterCs = 0;
  msrSysenterEsp = 0;
  msrSysenterEip = 0;
  /**
   * Answers CPUID instead of the built-in leaves (an accelerator's CPUID result list).
   * Returns [eax, ebx, ecx, edx].
   */
  cpuidHandler: ((leaf: number, subleaf: number) => ArrayLike<number>) | null = null;
  /**
   * Called by RDMSR (`write` false) and WRMSR (true) after the privilege check, before the
   * MSR is read or written: an accelerator may end the run here with interceptInstruction()
   * (an MSR exit), or return to let the processor complete the access itself.
   */
  msrHandler: ((msr: number, write: boolean) => void) | null = null;

  private sliceLimit = 0;
  private stopRequested = false;
  private faultVector = -1;
  private faultErrorCode = -1;
  private deliveringException = -1;
  /** ESP to restore if the current instruction faults after moving the stack pointer. */
  savedEsp = 0;
  private restoreEspOnFault = false;

  // ---- memory ----------------------------------------------------------------------
  private ram: Uint8Array = new Uint8Array(4);
  private ram32: Int32Array = new Int32Array(1);
  private ramBuffer: ArrayBufferLike | null = null;
  private ramByteOffset = 0;
  private readonly physicalPageFlags = new Uint8Array(PAGE_COUNT_4G);
  private readonly physicalPageMapping = new Uint16Array(PAGE_COUNT_4G);
  private readonly mappings: (PhysicalMapping | null)[] = [null];
  private readonly tlb = new Int32Array(PAGE_COUNT_4G);
  private readonly tlbFilled = new Int32Array(TLB_FILL_LIMIT);
  private tlbFilledCount = 0;
  /** AND-mask over a TLB entry that must equal TLB_VALID for a fast read (write). */
  private tlbReadMask = TLB_VALID | TLB_NO_READ | TLB_WATCH;
  private tlbWriteMask = TLB_VALID | TLB_NO_READ | TLB_NO_WRITE | TLB_WATCH;
  // Instruction fetch window: EIP values in [fetchEipStart, fetchEipStart + fetchEipLength)
  // are read from ram[eip + fetchDelta].
  private fetchEipStart = 0;
  private fetchEipLength = 0;
  private fetchDelta = 0;

  private readonly table: readonly InstructionHandler[];

  // ---- block compiler ------------------------------------------------------------------
  private readonly jitEnabled: boolean;
  private readonly blockCache: (CompiledBlock | null)[] = new Array<CompiledBlock | null>(BLOCK_CACHE_SIZE).fill(null);
  private readonly blockHeat = new Uint16Array(HEAT_MASK + 1);
  /** 1 for physical pages holding compiled code: writes to them take the slow path. */
  private readonly codePages = new Uint8Array(PAGE_COUNT_4G);
  private blocksCompiledTotal = 0;
  private readonly pageBlocks = new Map<number, CompiledBlock[]>();
  private activeBlock: CompiledBlock | null = null;
  private readonly compilerRuntime: CompilerRuntime;
  /**
   * Asks a running compiled block to stop after the current instruction: set when a write
   * hit a page with compiled code, an interrupt arrived or a stop was requested.
   */
  leaveBlock = false;
  /** Instructions completed so far in the current slice (RDTSC reads the clock through it). */
  sliceCount = 0;
  /** Set by compiled code: instructions it completed before its current basic block. */
  blockProgress = 0;
  /**
   * Bumped whenever guest RAM may have changed behind the CPU's back: at every run() and
   * after every bus callback. A compiled block from an older epoch is compared with RAM
   * before it runs again, so hosts need not report their writes (invalidateCode is faster).
   */
  codeEpoch = 0;

  constructor(options: CpuOptions) {
    this.bus = options.bus;
    this.model = options.model ?? "pentium-pro";
    this.modelLevel = MODEL_LEVEL[this.model];
    if (this.modelLevel === undefined) {
      throw new CpuError("ERR_CPU_INVALID_ARGUMENT", `unknown CPU model "${String(options.model)}"`);
    }
    this.table = instructionTableFor(this.modelLevel);
    this.jitEnabled = options.jit ?? this.modelLevel >= 3;
    this.compilerRuntime = { table: this.table, condition: conditionHolds, shift: shiftOperation, multiplyAccumulator, imul16, imul32 };
    this.reset();
  }

  // =====================================================================================
  // Reset and mode
  // =====================================================================================

  /** Power-on state: real mode at F000:FFF0 with CS base 0xFFFF0000 (0xF0000 before the 286). */
  reset(): void {
    this.regs.fill(0);
    this.regs[2] = this.modelLevel >= 3 ? 0x0633 : 0; // EDX: family/model/stepping signature
    this.flags = 2;
    this.flagsChanged = 0;
    this.cr0 = this.modelLevel >= 3 ? 0x60000010 : 0;
    this.cr2 = 0;
    this.cr3 = 0;
    this.cr4 = 0;
    this.efer = 0;
    this.dr.fill(0);
    this.dr[6] = 0xffff0ff0 | 0;
    this.dr[7] = 0x400;
    this.gdtBase = 0;
    this.gdtLimit = 0xffff;
    this.idtBase = 0;
    this.idtLimit = 0x3ff;
    this.cpl = 0;
    this.halted = false;
    this.pendingInterrupt = -1;
    this.nmiPending = false;
    this.nmiMasked = false;
    this.interruptShadow = 0;
    this.physicalAddressMask = this.modelLevel === 0 ? 0xfffff : this.modelLevel === 2 ? 0xffffff : 0xffffffff;
    this.a20Enabled = true;
    for (let s = 0; s < 6; s++) this.setRealModeSegment(s, 0);
    this.setSegmentCache(LDTR, 0, 0, 0xffff, 0x82 | SEG_ATTR_P);
    this.setSegmentCache(TR, 0, 0, 0xffff, 0x8b | SEG_ATTR_P);
    if (this.modelLevel === 0) {
      this.setRealModeSegment(CS, 0xffff);
      this.eip = 0;
    } else {
      this.setSegmentCache(CS, 0xf000, 0xffff0000 | 0, 0xffff, REAL_MODE_CODE_ATTRIBUTES);
      this.eip = 0xfff0;
    }
    this.updateModeCaches();
    this.flushTlb(true);
    this.syncBreakpoints();
    this.taskSwitchTrap = false;
  }

  /** True when CR0.PE is set (protected mode, including virtual-8086). */
  get protectedMode(): boolean {
    return (this.cr0 & CR0_PE) !== 0;
  }

  /** True in virtual-8086 mode. */
  get v86Mode(): boolean {
    return (this.flags & FLAG_VM) !== 0;
  }

  /** Loads a segment register the way real mode does: base = selector × 16. */
  setRealModeSegment(segment: number, selector: number): void {
    const attributes = segment === CS ? REAL_MODE_CODE_ATTRIBUTES : REAL_MODE_SEGMENT_ATTRIBUTES;
    this.setSegmentCache(segment, selector & 0xffff, (selector & 0xffff) << 4, 0xffff, attributes);
  }

  /**
   * Sets a segment register's selector and hidden descriptor cache directly (loaders,
   * debuggers, the accelerator's register API). `limit` is in bytes; `attributes` uses the
   * WHPX layout (type, S, DPL, P, AVL, L, D/B, G).
   */
  setSegmentCache(segment: number, selector: number, base: number, limit: number, attributes: number): void {
    this.segSelector[segment] = selector;
    this.segBase[segment] = base | 0;
    this.segLimit[segment] = limit | 0;
    this.segAttributes[segment] = attributes;
    this.refreshSegment(segment);
  }

  private refreshSegment(segment: number): void {
    const attributes = this.segAttributes[segment]!;
    const limit = this.segLimit[segment]! >>> 0;
    const usable = (attributes & SEG_ATTR_P) !== 0;
    const expandDown = (attributes & (SEG_TYPE_CODE | SEG_TYPE_EXPAND_DOWN)) === SEG_TYPE_EXPAND_DOWN && (attributes & SEG_ATTR_S) !== 0;
    this.segFastLimit[segment] = usable && !expandDown ? limit : -1;
    if (segment === CS) {
      this.codeSize32 = (attributes & SEG_ATTR_DB) !== 0 && this.protectedMode && !this.v86Mode ? 1 : 0;
      this.invalidateFetch();
    } else if (segment === SS) {
      this.stackSize32 = (attributes & SEG_ATTR_DB) !== 0 && this.protectedMode && !this.v86Mode ? 1 : 0;
    }
  }

  /** Re-derives cached mode bits after CR0, EFLAGS.VM or CPL changes. */
  updateModeCaches(): void {
    this.refreshSegment(CS);
    this.refreshSegment(SS);
    const user = this.cpl === 3 ? TLB_NO_USER : 0;
    this.tlbReadMask = TLB_VALID | TLB_NO_READ | TLB_WATCH | user;
    this.tlbWriteMask = TLB_VALID | TLB_NO_READ | TLB_NO_WRITE | TLB_WATCH | user;
    this.invalidateFetch();
  }

  /** Enables or disables the A20 gate (bit 20 of every physical address). */
  setA20(enabled: boolean): void {
    if (this.a20Enabled === enabled) return;
    this.a20Enabled = enabled;
    const base = this.modelLevel === 0 ? 0xfffff : this.modelLevel === 2 ? 0xffffff : 0xffffffff;
    this.physicalAddressMask = enabled ? base : base & ~0x100000;
    this.flushTlb(true);
  }

  // =====================================================================================
  // Physical memory map
  // =====================================================================================

  /**
   * Maps `bytes` at guest-physical `start` (both 4 KiB aligned in size and address).
   * A later mapping replaces earlier ones page by page.
   *
   * Fast path: views into one ArrayBuffer laid out by physical address (byte i of the
   * buffer is guest-physical address i, as pgm allocates RAM) are read, written and
   * executed straight from the buffer. Any other mapping works too, through a slower path.
   */
  mapMemory(start: number, bytes: Uint8Array, access: number): void {
    const size = bytes.length;
    if (start % 4096 !== 0 || size % 4096 !== 0 || size === 0 || start < 0 || start + size > 0x100000000) {
      throw new CpuError(
        "ERR_CPU_INVALID_MAPPING",
        `cannot map ${hex(size)} bytes at ${hex(start)}: start and size must be non-zero multiples of 4096 below 4 GiB`,
      );
    }
    let fast = false;
    if (bytes.byteOffset - this.ramByteOffset === start && bytes.buffer === this.ramBuffer) fast = true;
    else if (this.ramBuffer === null && bytes.byteOffset === start && bytes.buffer.byteLength % 4 === 0) {
      this.ramBuffer = bytes.buffer;
      this.ramByteOffset = 0;
      this.ram = new Uint8Array(bytes.buffer);
      this.ram32 = new Int32Array(bytes.buffer, 0, bytes.buffer.byteLength >> 2);
      fast = true;
    }
    const index = this.mappings.length;
    if (index > 0xffff) throw new CpuError("ERR_CPU_INVALID_MAPPING", "too many mapped ranges");
    this.invalidateCode(start, size);
    this.mappings.push({ start, size, bytes, access });
    const first = start / 4096;
    const flags = (access & 7) | (fast ? PAGE_FAST : 0);
    for (let page = first; page < first + size / 4096; page++) {
      this.physicalPageMapping[page] = index;
      this.physicalPageFlags[page] = flags;
    }
    this.flushTlb(true);
  }

  /** Removes any mapping of `[start, start + size)`; accesses there reach the bus. */
  unmapMemory(start: number, size: number): void {
    if (start % 4096 !== 0 || size % 4096 !== 0 || start < 0 || start + size > 0x100000000) {
      throw new CpuError("ERR_CPU_INVALID_MAPPING", `cannot unmap ${hex(size)} bytes at ${hex(start)}: not page aligned`);
    }
    for (let page = start / 4096; page < (start + size) / 4096; page++) {
      this.physicalPageMapping[page] = 0;
      this.physicalPageFlags[page] = 0;
    }
    this.invalidateCode(start, size);
    this.flushTlb(true);
  }

  /** Changes the access rights of already-mapped pages (e.g. write-protect a page). */
  protectMemory(start: number, size: number, access: number): void {
    if (start % 4096 !== 0 || size % 4096 !== 0 || start < 0 || start + size > 0x100000000) {
      throw new CpuError("ERR_CPU_INVALID_MAPPING", `cannot protect ${hex(size)} bytes at ${hex(start)}: not page aligned`);
    }
    for (let page = start / 4096; page < (start + size) / 4096; page++) {
      if (this.physicalPageMapping[page] === 0) continue;
      this.physicalPageFlags[page] = (this.physicalPageFlags[page]! & PAGE_FAST) | (access & 7);
    }
    this.flushTlb(true);
  }

  /** Access rights of the page holding `address` (MemoryAccess bits), 0 when unmapped. */
  mappedAccess(address: number): number {
    return this.physicalPageFlags[Math.floor(address / 4096)]! & 7;
  }

  // ---- physical accesses (no paging) ------------------------------------------------

  /** Reads guest-physical memory: mapped ranges directly, anything else through the bus. */
  readPhysical(address: number, size: AccessSize): number {
    let value = 0;
    for (let i = 0; i < size; i++) {
      const a = address + i;
      const page = Math.floor(a / 4096);
      const mapping = page < PAGE_COUNT_4G ? this.mappings[this.physicalPageMapping[page]!] : null;
      if (mapping && this.physicalPageFlags[page]! & PAGE_READ) {
        value |= mapping.bytes[a - mapping.start]! << (8 * i);
      } else if (i === 0 && (address % 4096) + size <= 4096) {
        const whole = this.bus.readPhysical(address, size) >>> 0;
        this.codeEpoch++; // the callback may have written guest RAM
        return whole;
      } else {
        value |= (this.bus.readPhysical(a, 1) & 0xff) << (8 * i);
        this.codeEpoch++;
      }
    }
    return value >>> 0;
  }

  /** Writes guest-physical memory: writable mapped ranges directly, anything else to the bus. */
  writePhysical(address: number, value: number, size: AccessSize): void {
    for (let i = 0; i < size; i++) {
      const a = address + i;
      const page = Math.floor(a / 4096);
      const mapping = page < PAGE_COUNT_4G ? this.mappings[this.physicalPageMapping[page]!] : null;
      if (mapping && this.physicalPageFlags[page]! & PAGE_WRITE) {
        mapping.bytes[a - mapping.start] = value >>> (8 * i);
      } else if (i === 0 && (address % 4096) + size <= 4096) {
        this.bus.writePhysical(address, size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1), size);
        this.codeEpoch++;
        return;
      } else {
        this.bus.writePhysical(a, (value >>> (8 * i)) & 0xff, 1);
        this.codeEpoch++;
      }
    }
  }

  // =====================================================================================
  // TLB and paging
  // =====================================================================================

  /** Drops cached translations; `includeGlobal` also drops global (CR4.PGE) pages. */
  flushTlb(includeGlobal: boolean): void {
    const tlb = this.tlb;
    if (this.tlbFilledCount >= TLB_FILL_LIMIT) {
      tlb.fill(0);
      this.tlbFilledCount = 0;
    } else {
      const filled = this.tlbFilled;
      let kept = 0;
      for (let i = 0; i < this.tlbFilledCount; i++) {
        const page = filled[i]!;
        if (!includeGlobal && tlb[page]! & TLB_GLOBAL) filled[kept++] = page;
        else tlb[page] = 0;
      }
      this.tlbFilledCount = kept;
    }
    this.invalidateFetch();
  }

  /** INVLPG: drops the translation of one linear page. */
  invalidatePage(linear: number): void {
    this.tlb[linear >>> 12] = 0;
    this.invalidateFetch();
  }

  private invalidateFetch(): void {
    this.fetchEipLength = 0;
  }

  /**
   * Translates a linear address for an access (0 read, 1 write, 2 execute) and caches the
   * result. Raises #PF on a paging fault. Returns the TLB entry.
   */
  private fillTlb(linear: number, access: number, user: boolean): number {
    let physicalPage: number;
    let flags = TLB_VALID;
    if (this.cr0 & CR0_PG) {
      physicalPage = this.walkPageTables(linear, access, user);
      flags = this.walkFlags;
    } else {
      physicalPage = (linear & ~0xfff) >>> 0;
    }
    physicalPage = (physicalPage & this.physicalAddressMask) >>> 0;
    const frame = physicalPage >>> 12;
    const pageFlags = this.physicalPageFlags[frame]!;
    if ((pageFlags & (PAGE_FAST | PAGE_READ)) !== (PAGE_FAST | PAGE_READ)) flags |= TLB_NO_READ | TLB_NO_WRITE;
    if (!(pageFlags & PAGE_WRITE) || this.codePages[frame]) flags |= TLB_NO_WRITE;
    if (this.dataBreakpointMask !== 0 && this.pageHasDataBreakpoint(linear >>> 12)) flags |= TLB_WATCH;
    const entry = ((physicalPage ^ (linear & ~0xfff)) & ~0xfff) | flags;
    const page = linear >>> 12;
    if (this.tlb[page] === 0) {
      if (this.tlbFilledCount < TLB_FILL_LIMIT) this.tlbFilled[this.tlbFilledCount] = page;
      this.tlbFilledCount++;
    }
    this.tlb[page] = entry;
    return entry;
  }

  private walkFlags = 0;

  /** Two-level (and PSE) page walk; sets accessed/dirty bits; raises #PF. */
  private walkPageTables(linear: number, access: number, user: boolean): number {
    if (this.cr4 & CR4_PAE) return this.walkPaeTables(linear, access, user);
    const write = access === 1;
    const directoryAddress = ((this.cr3 & ~0xfff) + ((linear >>> 22) << 2)) >>> 0;
    const directoryEntry = this.readPhysical(directoryAddress, 4);
    if (!(directoryEntry & 1)) this.pageFault(linear, 0, write, user, access === 2);
    let writable = (directoryEntry & 2) !== 0;
    let userPage = (directoryEntry & 4) !== 0;
    if (directoryEntry & 0x80 && this.cr4 & CR4_PSE) {
      this.checkPagePermissions(linear, writable, userPage, write, user, access === 2);
      const updated = directoryEntry | 0x20 | (write ? 0x40 : 0);
      if (updated !== directoryEntry) this.writePhysical(directoryAddress, updated, 4);
      this.walkFlags = this.pageTlbFlags(writable, userPage, write || (directoryEntry & 0x40) !== 0, (directoryEntry & 0x100) !== 0);
      return ((directoryEntry & 0xffc00000) | (linear & 0x3ff000)) >>> 0;
    }
    if ((directoryEntry & 0x20) === 0) this.writePhysical(directoryAddress, directoryEntry | 0x20, 4);
    const tableAddress = ((directoryEntry & ~0xfff) + (((linear >>> 12) & 0x3ff) << 2)) >>> 0;
    const tableEntry = this.readPhysical(tableAddress, 4);
    if (!(tableEntry & 1)) this.pageFault(linear, 0, write, user, access === 2);
    writable = writable && (tableEntry & 2) !== 0;
    userPage = userPage && (tableEntry & 4) !== 0;
    this.checkPagePermissions(linear, writable, userPage, write, user, access === 2);
    const updated = tableEntry | 0x20 | (write ? 0x40 : 0);
    if (updated !== tableEntry) this.writePhysical(tableAddress, updated, 4);
    this.walkFlags = this.pageTlbFlags(writable, userPage, write || (tableEntry & 0x40) !== 0, (tableEntry & 0x100) !== 0);
    return (tableEntry & ~0xfff) >>> 0;
  }

  private pageTlbFlags(writable: boolean, userPage: boolean, dirty: boolean, global: boolean): number {
    let flags = TLB_VALID;
    // A clean page stays write-slow so the first write sets its dirty bit.
    const supervisorMayWrite = writable || !(this.cr0 & CR0_WP);
    if (!dirty || !writable || !supervisorMayWrite) flags |= TLB_NO_WRITE;
    if (!userPage) flags |= TLB_NO_USER;
    if (global && this.cr4 & CR4_PGE) flags |= TLB_GLOBAL;
    return flags;
  }

  private checkPagePermissions(linear: number, writable: boolean, userPage: boolean, write: boolean, user: boolean, fetch: boolean, noExecute = false): void {
    if (user && !userPage) this.pageFault(linear, 1, write, user, fetch);
    if (write && !writable && (user || this.cr0 & CR0_WP)) this.pageFault(linear, 1, write, user, fetch);
    if (fetch && noExecute) this.pageFault(linear, 1, write, user, fetch);
  }

  /** #PF with CR2 = `linear`; `present` is bit 0 of the error code (1 also for RSVD faults, bit 3). */
  private pageFault(linear: number, present: number, write: boolean, user: boolean, fetch: boolean): never {
    this.cr2 = linear | 0;
    // I/D (bit 4) is reported for instruction fetches only with PAE and EFER.NXE.
    const instruction = fetch && this.efer & EFER_NXE && this.cr4 & CR4_PAE ? 16 : 0;
    const code = present | (write ? 2 : 0) | (user ? 4 : 0) | instruction;
    return this.raiseFault(VECTOR_PF, code);
  }

  // ---- PAE paging -------------------------------------------------------------------------

  /** The four page-directory-pointer entries, loaded when CR3 is written in PAE mode. */
  private readonly pdpte = new Uint32Array(4);

  /**
   * Reads the PDPTEs at `cr3`; false when a present one has reserved bits set (MOV to CR0,
   * CR3 or CR4 then raises #GP(0)). Bits 32-35 of addresses are ignored: the physical
   * address space ends at 4 GiB.
   */
  pdptesValid(cr3: number): boolean {
    const base = (cr3 & ~0x1f) >>> 0;
    for (let i = 0; i < 4; i++) {
      const low = this.readPhysical((base + i * 8) >>> 0, 4);
      const high = this.readPhysical((base + i * 8 + 4) >>> 0, 4);
      if (low & 1 && (low & 0x1e6 || high & 0xfffffff0)) return false;
    }
    return true;
  }

  /** Loads the PDPTEs when paging with PAE is on (CR3 written, or PG/PAE just enabled). */
  private loadPdptes(): void {
    if (!(this.cr0 & CR0_PG) || !(this.cr4 & CR4_PAE)) return;
    const base = (this.cr3 & ~0x1f) >>> 0;
    for (let i = 0; i < 4; i++) this.pdpte[i] = this.readPhysical((base + i * 8) >>> 0, 4);
  }

  /** Reserved bits of a PAE entry's high dword: 36-62, and 63 (XD) unless EFER.NXE. */
  private paeReserved(high: number): boolean {
    return (high & (this.efer & EFER_NXE ? 0x7ffffff0 : 0xfffffff0)) !== 0;
  }

  /**
   * PAE walk: PDPTE (cached), page directory, page table, with 2 MiB pages (PS) and
   * execute-disable (bit 63 with EFER.NXE); sets accessed/dirty bits; raises #PF.
   */
  private walkPaeTables(linear: number, access: number, user: boolean): number {
    const write = access === 1;
    const fetch = access === 2;
    const nxe = (this.efer & EFER_NXE) !== 0;
    const pointer = this.pdpte[linear >>> 30]!;
    if (!(pointer & 1)) this.pageFault(linear, 0, write, user, fetch);
    const directoryAddress = ((pointer & ~0xfff) + (((linear >>> 21) & 0x1ff) << 3)) >>> 0;
    const directoryEntry = this.readPhysical(directoryAddress, 4);
    const directoryHigh = this.readPhysical((directoryAddress + 4) >>> 0, 4);
    if (!(directoryEntry & 1)) this.pageFault(linear, 0, write, user, fetch);
    if (this.paeReserved(directoryHigh) || (directoryEntry & 0x80 && directoryEntry & 0x1fe000)) this.pageFault(linear, 1 | 8, write, user, fetch);
    let writable = (directoryEntry & 2) !== 0;
    let userPage = (directoryEntry & 4) !== 0;
    let noExecute = nxe && (directoryHigh & 0x80000000) !== 0;
    if (directoryEntry & 0x80) {
      this.checkPagePermissions(linear, writable, userPage, write, user, fetch, noExecute);
      const updated = directoryEntry | 0x20 | (write ? 0x40 : 0);
      if (updated !== directoryEntry) this.writePhysical(directoryAddress, updated, 4);
      this.walkFlags = this.pageTlbFlags(writable, userPage, write || (directoryEntry & 0x40) !== 0, (directoryEntry & 0x100) !== 0) | (noExecute ? TLB_NO_EXEC : 0);
      return ((directoryEntry & 0xffe00000) | (linear & 0x1ff000)) >>> 0;
    }
    if ((directoryEntry & 0x20) === 0) this.writePhysical(directoryAddress, directoryEntry | 0x20, 4);
    const tableAddress = ((directoryEntry & ~0xfff) + (((linear >>> 12) & 0x1ff) << 3)) >>> 0;
    const tableEntry = this.readPhysical(tableAddress, 4);
    const tableHigh = this.readPhysical((tableAddress + 4) >>> 0, 4);
    if (!(tableEntry & 1)) this.pageFault(linear, 0, write, user, fetch);
    if (this.paeReserved(tableHigh)) this.pageFault(linear, 1 | 8, write, user, fetch);
    writable = writable && (tableEntry & 2) !== 0;
    userPage = userPage && (tableEntry & 4) !== 0;
    noExecute = noExecute || (nxe && (tableHigh & 0x80000000) !== 0);
    this.checkPagePermissions(linear, writable, userPage, write, user, fetch, noExecute);
    const updated = tableEntry | 0x20 | (write ? 0x40 : 0);
    if (updated !== tableEntry) this.writePhysical(tableAddress, updated, 4);
    this.walkFlags = this.pageTlbFlags(writable, userPage, write || (tableEntry & 0x40) !== 0, (tableEntry & 0x100) !== 0) | (noExecute ? TLB_NO_EXEC : 0);
    return (tableEntry & ~0xfff) >>> 0;
  }

  /** PAE translation for tools: no side effects, −1 when not present. */
  private translatePae(linear: number): number {
    const pointer = this.pdpte[linear >>> 30]!;
    if (!(pointer & 1)) return -1;
    const directory = this.readPhysical(((pointer & ~0xfff) + (((linear >>> 21) & 0x1ff) << 3)) >>> 0, 4);
    if (!(directory & 1)) return -1;
    if (directory & 0x80) return (((directory & 0xffe00000) | (linear & 0x1fffff)) & this.physicalAddressMask) >>> 0;
    const table = this.readPhysical(((directory & ~0xfff) + (((linear >>> 12) & 0x1ff) << 3)) >>> 0, 4);
    if (!(table & 1)) return -1;
    return (((table & ~0xfff) | (linear & 0xfff)) & this.physicalAddressMask) >>> 0;
  }

  /** Translates a linear address without side effects for tools; −1 when not mapped. */
  translateLinear(linear: number): number {
    if (!(this.cr0 & CR0_PG)) return ((linear >>> 0) & this.physicalAddressMask) >>> 0;
    if (this.cr4 & CR4_PAE) return this.translatePae(linear);
    const directory = this.readPhysical(((this.cr3 & ~0xfff) + ((linear >>> 22) << 2)) >>> 0, 4);
    if (!(directory & 1)) return -1;
    if (directory & 0x80 && this.cr4 & CR4_PSE) return (((directory & 0xffc00000) | (linear & 0x3fffff)) & this.physicalAddressMask) >>> 0;
    const table = this.readPhysical(((directory & ~0xfff) + (((linear >>> 12) & 0x3ff) << 2)) >>> 0, 4);
    if (!(table & 1)) return -1;
    return (((table & ~0xfff) | (linear & 0xfff)) & this.physicalAddressMask) >>> 0;
  }

  // =====================================================================================
  // Linear memory accesses
  // =====================================================================================

  /** Set while descriptor tables or the TSS are accessed: see {@link readSystem32}. */
  private systemAccess = false;

  private get userAccess(): boolean {
    return this.cpl === 3 && !this.systemAccess;
  }

  /**
   * Accesses to the GDT, LDT, IDT and TSS are supervisor accesses at any CPL (SDM Vol. 3
   * §4.6.1), so an OS can keep them in supervisor-only pages while user code runs.
   */
  readSystem32(linear: number): number {
    this.systemAccess = true;
    try {
      return this.readLinear32(linear);
    } finally {
      this.systemAccess = false;
    }
  }

  readSystem16(linear: number): number {
    this.systemAccess = true;
    try {
      return this.readLinear16(linear);
    } finally {
      this.systemAccess = false;
    }
  }

  writeSystem16(linear: number, value: number): void {
    this.systemAccess = true;
    try {
      this.writeLinear16(linear, value);
    } finally {
      this.systemAccess = false;
    }
  }

  writeSystem32(linear: number, value: number): void {
    this.systemAccess = true;
    try {
      this.writeLinear32(linear, value);
    } finally {
      this.systemAccess = false;
    }
  }

  readLinear8(linear: number): number {
    const entry = this.tlb[linear >>> 12]!;
    if ((entry & this.tlbReadMask) === TLB_VALID) return this.ram[(entry & ~0xfff) ^ linear]!;
    return this.readLinearSlow(linear, 1);
  }

  readLinear16(linear: number): number {
    const entry = this.tlb[linear >>> 12]!;
    if ((entry & this.tlbReadMask) === TLB_VALID && (linear & 0xfff) !== 0xfff) {
      const p = (entry & ~0xfff) ^ linear;
      const ram = this.ram;
      return ram[p]! | (ram[p + 1]! << 8);
    }
    return this.readLinearSlow(linear, 2);
  }

  readLinear32(linear: number): number {
    const entry = this.tlb[linear >>> 12]!;
    if ((entry & this.tlbReadMask) === TLB_VALID && (linear & 0xfff) <= 0xffc) {
      const p = (entry & ~0xfff) ^ linear;
      if ((p & 3) === 0) return this.ram32[p >> 2]!;
      const ram = this.ram;
      return ram[p]! | (ram[p + 1]! << 8) | (ram[p + 2]! << 16) | (ram[p + 3]! << 24);
    }
    return this.readLinearSlow(linear, 4) | 0;
  }

  writeLinear8(linear: number, value: number): void {
    const entry = this.tlb[linear >>> 12]!;
    if ((entry & this.tlbWriteMask) === TLB_VALID) {
      this.ram[(entry & ~0xfff) ^ linear] = value;
      return;
    }
    this.writeLinearSlow(linear, value, 1);
  }

  writeLinear16(linear: number, value: number): void {
    const entry = this.tlb[linear >>> 12]!;
    if ((entry & this.tlbWriteMask) === TLB_VALID && (linear & 0xfff) !== 0xfff) {
      const p = (entry & ~0xfff) ^ linear;
      const ram = this.ram;
      ram[p] = value;
      ram[p + 1] = value >> 8;
      return;
    }
    this.writeLinearSlow(linear, value, 2);
  }

  writeLinear32(linear: number, value: number): void {
    const entry = this.tlb[linear >>> 12]!;
    if ((entry & this.tlbWriteMask) === TLB_VALID && (linear & 0xfff) <= 0xffc) {
      const p = (entry & ~0xfff) ^ linear;
      if ((p & 3) === 0) {
        this.ram32[p >> 2] = value;
        return;
      }
      const ram = this.ram;
      ram[p] = value;
      ram[p + 1] = value >> 8;
      ram[p + 2] = value >> 16;
      ram[p + 3] = value >> 24;
      return;
    }
    this.writeLinearSlow(linear, value, 4);
  }

  /**
   * Checks (and caches) that a linear range may be written, raising #PF before anything is
   * changed. Read-modify-write instructions call this first so a fault leaves no trace.
   */
  probeWrite(linear: number, size: number): void {
    this.translateForAccess(linear, 1);
    if (((linear & 0xfff) + size) > 0x1000) this.translateForAccess((linear + size - 1) | 0, 1);
  }

  private translateForAccess(linear: number, access: number): number {
    const user = this.userAccess;
    let entry = this.tlb[linear >>> 12]!;
    const needed = (access === 1 ? this.tlbWriteMask : this.tlbReadMask) & ~(TLB_NO_READ | TLB_WATCH);
    if ((entry & needed) !== TLB_VALID || (access === 1 && entry & TLB_NO_WRITE) || (access === 2 && entry & TLB_NO_EXEC)) {
      entry = this.fillTlb(linear, access, user);
    }
    return ((((entry & ~0xfff) ^ linear) >>> 0) & this.physicalAddressMask) >>> 0;
  }

  private readLinearSlow(linear: number, size: AccessSize): number {
    if (this.dataBreakpointMask !== 0) this.checkDataBreakpoints(linear, size, false);
    if (((linear & 0xfff) + size) <= 0x1000) {
      const physical = this.translateForAccess(linear, 0);
      const entry = this.tlb[linear >>> 12]!;
      if ((entry & this.tlbReadMask) === TLB_VALID) {
        // The fill made the page fast; finish on the fast path.
        return size === 1 ? this.readLinear8(linear) : size === 2 ? this.readLinear16(linear) : this.readLinear32(linear) >>> 0;
      }
      return this.readPhysical(physical, size);
    }
    // Crossing a page: translate both pages first so a #PF leaves nothing half done.
    const firstPhysical = this.translateForAccess(linear, 0);
    const secondLinear = ((linear | 0xfff) + 1) | 0;
    const secondPhysical = this.translateForAccess(secondLinear, 0);
    const firstCount = 0x1000 - (linear & 0xfff);
    let value = 0;
    for (let i = 0; i < size; i++) {
      const physical = i < firstCount ? firstPhysical + i : secondPhysical + (i - firstCount);
      value |= this.readPhysical(physical, 1) << (8 * i);
    }
    return value >>> 0;
  }

  private writeLinearSlow(linear: number, value: number, size: AccessSize): void {
    if (this.dataBreakpointMask !== 0) this.checkDataBreakpoints(linear, size, true);
    if (((linear & 0xfff) + size) <= 0x1000) {
      const physical = this.translateForAccess(linear, 1);
      if (this.codePages[physical >>> 12]) this.invalidateCodeBytes(physical, size);
      const entry = this.tlb[linear >>> 12]!;
      if ((entry & this.tlbWriteMask) === TLB_VALID) {
        if (size === 1) this.writeLinear8(linear, value);
        else if (size === 2) this.writeLinear16(linear, value);
        else this.writeLinear32(linear, value);
        return;
      }
      this.writePhysical(physical, value, size);
      return;
    }
    const firstPhysical = this.translateForAccess(linear, 1);
    const secondPhysical = this.translateForAccess(((linear | 0xfff) + 1) | 0, 1);
    const firstCount = 0x1000 - (linear & 0xfff);
    if (this.codePages[firstPhysical >>> 12]) this.invalidateCodeBytes(firstPhysical, firstCount);
    if (this.codePages[secondPhysical >>> 12]) this.invalidateCodeBytes(secondPhysical, size - firstCount);
    for (let i = 0; i < size; i++) {
      const physical = i < firstCount ? firstPhysical + i : secondPhysical + (i - firstCount);
      this.writePhysical(physical, (value >>> (8 * i)) & 0xff, 1);
    }
  }

  // =====================================================================================
  // Segmented accesses
  // =====================================================================================

  /** Linear address of segment:offset after the limit check for an access of `size` bytes. */
  linearFor(segment: number, offset: number, size: number, write: boolean): number {
    const unsignedOffset = offset >>> 0;
    if (unsignedOffset > this.segFastLimit[segment]! - (size - 1) || (write && !this.segmentWritable(segment))) {
      this.checkSegmentAccessSlow(segment, unsignedOffset, size, write);
    }
    return (this.segBase[segment]! + offset) | 0;
  }

  private segmentWritable(segment: number): boolean {
    // Real mode and V86 segments are always writable; protected-mode checks the type.
    if (!(this.cr0 & CR0_PE) || this.flags & FLAG_VM) return true;
    const attributes = this.segAttributes[segment]!;
    return (attributes & (SEG_TYPE_CODE | SEG_TYPE_WRITABLE)) === SEG_TYPE_WRITABLE;
  }

  private checkSegmentAccessSlow(segment: number, offset: number, size: number, write: boolean): void {
    // The 286 reports every real-mode segment overrun as #GP, even on the stack.
    const vector = segment === SS && (this.modelLevel !== 2 || this.cr0 & CR0_PE) ? VECTOR_SS : VECTOR_GP;
    const attributes = this.segAttributes[segment]!;
    if (!(attributes & SEG_ATTR_P)) this.raiseFault(vector, 0);
    if (write && !this.segmentWritable(segment)) this.raiseFault(vector, 0);
    const limit = this.segLimit[segment]! >>> 0;
    const last = offset + size - 1;
    if ((attributes & (SEG_TYPE_CODE | SEG_TYPE_EXPAND_DOWN)) === SEG_TYPE_EXPAND_DOWN && attributes & SEG_ATTR_S && this.cr0 & CR0_PE) {
      const upper = attributes & SEG_ATTR_DB ? 0xffffffff : 0xffff;
      if (offset <= limit || last > upper) this.raiseFault(vector, 0);
      return;
    }
    if (last > limit) this.raiseFault(vector, 0);
  }

  readMem8(segment: number, offset: number): number {
    return this.readLinear8(this.linearFor(segment, offset, 1, false));
  }

  readMem16(segment: number, offset: number): number {
    const unsignedOffset = offset >>> 0;
    if (unsignedOffset > this.segFastLimit[segment]! - 1 && this.modelLevel === 0) return this.readWrapped16(segment, offset);
    return this.readLinear16(this.linearFor(segment, offset, 2, false));
  }

  readMem32(segment: number, offset: number): number {
    return this.readLinear32(this.linearFor(segment, offset, 4, false));
  }

  writeMem8(segment: number, offset: number, value: number): void {
    this.writeLinear8(this.linearFor(segment, offset, 1, true), value);
  }

  writeMem16(segment: number, offset: number, value: number): void {
    const unsignedOffset = offset >>> 0;
    if (unsignedOffset > this.segFastLimit[segment]! - 1 && this.modelLevel === 0) {
      this.writeWrapped16(segment, offset, value);
      return;
    }
    this.writeLinear16(this.linearFor(segment, offset, 2, true), value);
  }

  writeMem32(segment: number, offset: number, value: number): void {
    this.writeLinear32(this.linearFor(segment, offset, 4, true), value);
  }

  /** The 8086 has no segment limit: a word at offset 0xFFFF wraps to offset 0. */
  private readWrapped16(segment: number, offset: number): number {
    const base = this.segBase[segment]!;
    return this.readLinear8((base + (offset & 0xffff)) | 0) | (this.readLinear8((base + ((offset + 1) & 0xffff)) | 0) << 8);
  }

  private writeWrapped16(segment: number, offset: number, value: number): void {
    const base = this.segBase[segment]!;
    this.writeLinear8((base + (offset & 0xffff)) | 0, value & 0xff);
    this.writeLinear8((base + ((offset + 1) & 0xffff)) | 0, (value >> 8) & 0xff);
  }

  /** Read-modify-write helpers: check writability first so a fault happens before any change. */
  probeMemWrite(segment: number, offset: number, size: number): number {
    const linear = this.linearFor(segment, offset, size, true);
    this.probeWrite(linear, size);
    return linear;
  }

  // ---- stack -------------------------------------------------------------------------

  push16(value: number): void {
    if (this.stackSize32) {
      const sp = (this.regs[ESP]! - 2) | 0;
      this.writeMem16(SS, sp, value);
      this.regs[ESP] = sp;
    } else {
      const sp = (this.regs16[8]! - 2) & 0xffff;
      this.writeMem16(SS, sp, value);
      this.regs16[8] = sp;
    }
  }

  push32(value: number): void {
    if (this.stackSize32) {
      const sp = (this.regs[ESP]! - 4) | 0;
      this.writeMem32(SS, sp, value);
      this.regs[ESP] = sp;
    } else {
      const sp = (this.regs16[8]! - 4) & 0xffff;
      this.writeMem32(SS, sp, value);
      this.regs16[8] = sp;
    }
  }

  pop16(): number {
    if (this.stackSize32) {
      const sp = this.regs[ESP]!;
      const value = this.readMem16(SS, sp);
      this.regs[ESP] = sp + 2;
      return value;
    }
    const sp = this.regs16[8]!;
    const value = this.readMem16(SS, sp);
    this.regs16[8] = sp + 2;
    return value;
  }

  pop32(): number {
    if (this.stackSize32) {
      const sp = this.regs[ESP]!;
      const value = this.readMem32(SS, sp);
      this.regs[ESP] = sp + 4;
      return value;
    }
    const sp = this.regs16[8]!;
    const value = this.readMem32(SS, sp);
    this.regs16[8] = sp + 4;
    return value;
  }

  /** Reads the stack at SP + `displacement` without popping. */
  readStack16(displacement: number): number {
    return this.stackSize32
      ? this.readMem16(SS, (this.regs[ESP]! + displacement) | 0)
      : this.readMem16(SS, (this.regs16[8]! + displacement) & 0xffff);
  }

  readStack32(displacement: number): number {
    return this.stackSize32
      ? this.readMem32(SS, (this.regs[ESP]! + displacement) | 0)
      : this.readMem32(SS, (this.regs16[8]! + displacement) & 0xffff);
  }

  /** Adds to SP or ESP according to the stack size. */
  adjustStack(delta: number): void {
    if (this.stackSize32) this.regs[ESP] = this.regs[ESP]! + delta;
    else this.regs16[8] = this.regs16[8]! + delta;
  }

  /**
   * Remembers ESP so that a fault later in this instruction (after pops or pushes that
   * already moved it) restores it. Far returns, IRET and interrupt delivery use this.
   */
  saveStackForFault(): void {
    this.savedEsp = this.regs[ESP]!;
    this.restoreEspOnFault = true;
  }

  /** After a task switch: the old task's ESP is no longer the one to restore on a fault. */
  abandonStackRestore(): void {
    this.restoreEspOnFault = false;
  }

  // =====================================================================================
  // Instruction fetch
  // =====================================================================================

  fetch8(): number {
    const eip = this.eip;
    if (((eip - this.fetchEipStart) >>> 0) < this.fetchEipLength) {
      this.eip = (eip + 1) | 0;
      return this.ram[(eip + this.fetchDelta) | 0]!;
    }
    return this.fetch8Slow();
  }

  fetch16(): number {
    const low = this.fetch8();
    return low | (this.fetch8() << 8);
  }

  fetch32(): number {
    const eip = this.eip;
    if (((eip - this.fetchEipStart) >>> 0) + 3 < this.fetchEipLength) {
      this.eip = (eip + 4) | 0;
      const p = (eip + this.fetchDelta) | 0;
      const ram = this.ram;
      return ram[p]! | (ram[p + 1]! << 8) | (ram[p + 2]! << 16) | (ram[p + 3]! << 24);
    }
    const b0 = this.fetch8();
    const b1 = this.fetch8();
    const b2 = this.fetch8();
    return b0 | (b1 << 8) | (b2 << 16) | (this.fetch8() << 24);
  }

  /** Fetches a sign-extended byte. */
  fetchSigned8(): number {
    return (this.fetch8() << 24) >> 24;
  }

  /** instructionStart of the prefixed instruction whose fetches are length-limited. */
  private lengthLimitedInstruction = Number.NaN;

  /** Longest instruction the model decodes (prefixes included); longer ones raise #GP. */
  private get maxInstructionLength(): number {
    return this.modelLevel === 2 ? 10 : 15;
  }

  /**
   * Only prefixed instructions can exceed the length limit; for those, shrink the fetch
   * window so the slow path sees the byte that would cross it.
   */
  private limitFetchToInstructionLength(): void {
    this.lengthLimitedInstruction = this.instructionStart;
    const room = (this.instructionStart + this.maxInstructionLength - this.fetchEipStart) | 0;
    if (room < this.fetchEipLength) this.fetchEipLength = room > 0 ? room : 0;
  }

  private fetch8Slow(): number {
    let eip = this.eip;
    if (this.modelLevel >= 2 && ((eip - this.instructionStart) >>> 0) >= this.maxInstructionLength) {
      this.raiseFault(VECTOR_GP, 0);
    }
    if (!this.codeSize32 && (eip >>> 0) > 0xffff) {
      // 16-bit code: IP wraps within the segment on the 8086; later CPUs fault on the limit.
      if (this.modelLevel === 0) eip = this.eip = eip & 0xffff;
    }
    const limit = this.segLimit[CS]! >>> 0;
    if ((eip >>> 0) > limit) this.raiseFault(VECTOR_GP, 0);
    const linear = (this.segBase[CS]! + eip) | 0;
    // Instruction fetches never match data breakpoints: a watched page still fetches fast.
    const fetchMask = (this.tlbReadMask & ~TLB_WATCH) | TLB_NO_EXEC;
    let entry = this.tlb[linear >>> 12]!;
    if ((entry & fetchMask) !== TLB_VALID) {
      const physical = this.translateForAccess(linear, 2);
      entry = this.tlb[linear >>> 12]!;
      const frame = Math.floor(physical / 4096);
      if ((entry & fetchMask) !== TLB_VALID || !(this.physicalPageFlags[frame]! & PAGE_EXECUTE)) {
        // Not fast RAM (ROM alias, MMIO): fetch through the slow path, one byte at a time.
        const mapping = this.mappings[this.physicalPageMapping[frame]!];
        const flags = this.physicalPageFlags[frame]!;
        this.eip = (eip + 1) | 0;
        if (mapping && flags & PAGE_EXECUTE) return mapping.bytes[physical - mapping.start]!;
        const byte = this.bus.readPhysical(physical, 1) & 0xff;
        this.codeEpoch++;
        return byte;
      }
    }
    // Open a window over the rest of this page (bounded by the CS limit).
    const pageOffset = linear & 0xfff;
    let length = 0x1000 - pageOffset;
    const toLimit = limit - (eip >>> 0) + 1;
    if (toLimit < length) length = toLimit;
    if (!this.codeSize32) {
      const toWrap = 0x10000 - (eip & 0xffff);
      if (toWrap < length) length = toWrap;
    }
    if (this.lengthLimitedInstruction === this.instructionStart) {
      const room = (this.instructionStart + this.maxInstructionLength - eip) | 0;
      if (room < length) length = room;
    }
    this.fetchEipStart = eip;
    this.fetchEipLength = length;
    this.fetchDelta = (((entry & ~0xfff) ^ linear) - eip) | 0;
    this.eip = (eip + 1) | 0;
    return this.ram[((entry & ~0xfff) ^ linear) | 0]!;
  }

  /** Reads up to 16 bytes at CS:EIP for tools and exit contexts, without faults. */
  peekInstructionBytes(eip: number, count: number): Uint8Array {
    const out = new Uint8Array(count);
    let n = 0;
    for (; n < count; n++) {
      const linear = (this.segBase[CS]! + ((this.codeSize32 ? eip + n : (eip + n) & 0xffff) | 0)) | 0;
      const physical = this.translateLinear(linear);
      if (physical < 0) break;
      const page = Math.floor(physical / 4096);
      const mapping = this.mappings[this.physicalPageMapping[page]!];
      if (!mapping || !(this.physicalPageFlags[page]! & PAGE_READ)) break;
      out[n] = mapping.bytes[physical - mapping.start]!;
    }
    return out.subarray(0, n);
  }

  // =====================================================================================
  // Flags
  // =====================================================================================

  getCF(): number {
    if (this.flagsChanged & FLAG_CF) {
      const x = this.lastOp1;
      const y = this.lastOp2;
      return ((x ^ ((x ^ y) & (y ^ this.lastAddResult))) >>> this.lastOpSize) & 1;
    }
    return this.flags & FLAG_CF;
  }

  getPF(): boolean {
    if (this.flagsChanged & FLAG_PF) return PARITY[this.lastResult & 0xff] === 1;
    return (this.flags & FLAG_PF) !== 0;
  }

  getAF(): boolean {
    if (this.flagsChanged & FLAG_AF) return ((this.lastOp1 ^ this.lastOp2 ^ this.lastAddResult) & 0x10) !== 0;
    return (this.flags & FLAG_AF) !== 0;
  }

  getZF(): boolean {
    if (this.flagsChanged & FLAG_ZF) return (this.lastResult & ((2 << this.lastOpSize) - 1)) === 0;
    return (this.flags & FLAG_ZF) !== 0;
  }

  getSF(): boolean {
    if (this.flagsChanged & FLAG_SF) return ((this.lastResult >>> this.lastOpSize) & 1) === 1;
    return (this.flags & FLAG_SF) !== 0;
  }

  getOF(): boolean {
    if (this.flagsChanged & FLAG_OF) {
      const z = this.lastAddResult;
      return ((((this.lastOp1 ^ z) & (this.lastOp2 ^ z)) >>> this.lastOpSize) & 1) === 1;
    }
    return (this.flags & FLAG_OF) !== 0;
  }

  /** EFLAGS with every lazily computed bit made current. */
  getFlags(): number {
    if (this.flagsChanged === 0) return this.flags;
    let flags = this.flags & ~ARITHMETIC_FLAGS;
    flags |= this.getCF();
    if (this.getPF()) flags |= FLAG_PF;
    if (this.getAF()) flags |= FLAG_AF;
    if (this.getZF()) flags |= FLAG_ZF;
    if (this.getSF()) flags |= FLAG_SF;
    if (this.getOF()) flags |= FLAG_OF;
    return flags;
  }

  /** Makes the stored flags current (before an instruction sets some flags explicitly). */
  materializeFlags(): void {
    if (this.flagsChanged !== 0) {
      this.flags = this.getFlags();
      this.flagsChanged = 0;
    }
  }

  /**
   * Replaces EFLAGS (all bits, no privilege checks): loaders, debuggers and the accelerator.
   * Instructions use the POPF/IRET rules in the instruction handlers.
   */
  setFlags(value: number): void {
    const fixed = this.modelLevel === 0 ? 0xf002 : 0x0002;
    const writable = this.modelLevel === 0 || this.modelLevel === 2 ? 0x0fd5 | (this.modelLevel === 2 ? 0x7000 : 0) : 0x3f7fd5;
    const before = this.flags;
    this.flags = (value & writable) | fixed;
    this.flagsChanged = 0;
    if ((before ^ this.flags) & FLAG_VM) this.updateModeCaches();
    this.noteFlagsChanged();
  }

  /** After IF or TF may have changed: make the run loop look at pending events. */
  noteFlagsChanged(): void {
    this.sliceLimit = 0;
    this.leaveBlock = true;
  }

  // ---- lazy flag setters used by instruction handlers -----------------------------------

  setAddFlags(op1: number, op2: number, result: number, sizeBit: number): void {
    this.lastOp1 = op1;
    this.lastOp2 = op2;
    this.lastAddResult = result;
    this.lastResult = result;
    this.lastOpSize = sizeBit;
    this.flagsChanged = ARITHMETIC_FLAGS;
  }

  /** For result = op1 − op2: stored as the addition result + op2 = op1. */
  setSubFlags(op1: number, op2: number, result: number, sizeBit: number): void {
    this.lastOp1 = result;
    this.lastOp2 = op2;
    this.lastAddResult = op1;
    this.lastResult = result;
    this.lastOpSize = sizeBit;
    this.flagsChanged = ARITHMETIC_FLAGS;
  }

  /** AND/OR/XOR/TEST: CF = OF = AF = 0, ZF/SF/PF from the result. */
  setLogicFlags(result: number, sizeBit: number): void {
    this.lastResult = result;
    this.lastOpSize = sizeBit;
    this.flags &= ~(FLAG_CF | FLAG_OF | FLAG_AF);
    this.flagsChanged = FLAG_PF | FLAG_ZF | FLAG_SF;
  }

  /** ZF/SF/PF lazily from `result`; the caller has set CF/OF/AF in `flags` itself. */
  setResultFlags(result: number, sizeBit: number): void {
    this.lastResult = result;
    this.lastOpSize = sizeBit;
    this.flagsChanged = FLAG_PF | FLAG_ZF | FLAG_SF;
  }

  /** Sets or clears one flag bit after making the stored flags current. */
  setFlag(mask: number, on: boolean): void {
    this.materializeFlags();
    if (on) this.flags |= mask;
    else this.flags &= ~mask;
  }

  // =====================================================================================
  // Faults, interrupts
  // =====================================================================================

  /** Raises a fault: the instruction is undone and the exception delivered. Never returns. */
  raiseFault(vector: number, errorCode = -1): never {
    this.faultVector = vector;
    this.faultErrorCode = errorCode;
    throw FAULT_SIGNAL;
  }

  /** #UD. */
  undefinedOpcode(): never {
    return this.raiseFault(VECTOR_UD);
  }

  /**
   * Stops the current instruction before it completes, from inside a bus callback:
   * EIP returns to the instruction's first byte and run() returns RunExit.Intercept.
   */
  interceptInstruction(): never {
    throw INTERCEPT_SIGNAL;
  }

  /** An instruction vmmkit does not implement: reported, not executed. */
  unsupported(what: string): never {
    this.unsupportedReason = what;
    throw UNSUPPORTED_SIGNAL;
  }

  /**
   * INT n, INT3, INTO and ICEBP: the interrupt is delivered with the return address past
   * the instruction. INT3/INTO/ICEBP (`exception` true) can instead end run() as
   * RunExit.Exception when their vector is in exceptionExitBitmap; EIP then stays at the
   * instruction, as a hypervisor intercept reports it. ICEBP skips the IDT gate's DPL check.
   */
  softwareInterrupt(vector: number, exception: boolean, icebp = false): void {
    if (exception && this.exceptionExitBitmap & (1 << vector)) {
      this.exitVector = vector;
      this.exitErrorCode = -1;
      this.exitSoftwareException = true;
      throw EXCEPTION_EXIT_SIGNAL;
    }
    if (icebp) this.dr[6] = this.dr[6]! & ~0x400f;
    this.deliverInterrupt(vector, this.eip, -1, !icebp);
  }

  /** Ends run() after the current instruction, with RunExit.Stop. */
  requestStop(): void {
    this.stopRequested = true;
    this.sliceLimit = 0;
    this.leaveBlock = true;
  }

  /** Queues an external (maskable) interrupt; delivered when IF = 1. */
  raiseInterrupt(vector: number): void {
    this.pendingInterrupt = vector & 0xff;
    this.sliceLimit = 0;
    this.leaveBlock = true;
  }

  /**
   * Raises the NMI line: vector 2 is delivered before the next instruction whatever IF says,
   * unless an NMI handler is still running (until its IRET) or a MOV SS/STI shadow is active.
   */
  raiseNmi(): void {
    this.nmiPending = true;
    this.sliceLimit = 0;
    this.leaveBlock = true;
  }

  /** True when an external interrupt could be delivered before the next instruction. */
  get interruptsDeliverable(): boolean {
    return (this.flags & FLAG_IF) !== 0 && this.interruptShadow === 0;
  }

  /**
   * Delivers an interrupt or exception through the IVT (real mode) or IDT.
   * `returnEip` is what the frame holds; `errorCode` ≥ 0 is pushed in protected mode.
   */
  deliverInterrupt(vector: number, returnEip: number, errorCode: number, software: boolean): void {
    this.halted = false;
    if (!(this.cr0 & CR0_PE)) {
      this.deliverRealMode(vector, returnEip);
      return;
    }
    this.deliverProtectedMode(vector, returnEip, errorCode, software);
  }

  private deliverRealMode(vector: number, returnEip: number): void {
    this.pushResumeFlag = false; // the 16-bit FLAGS image has no RF
    if (this.modelLevel >= 2 && vector * 4 + 3 > this.idtLimit) this.raiseFault(VECTOR_GP, vector * 8 + 2);
    const entry = (this.idtBase + vector * 4) | 0;
    const newIp = this.readLinear16(entry);
    const newCs = this.readLinear16((entry + 2) | 0);
    const flags = this.getFlags();
    this.saveStackForFault();
    this.push16(flags);
    this.push16(this.segSelector[CS]!);
    this.push16(returnEip);
    this.flags = flags & ~(FLAG_IF | FLAG_TF | FLAG_AC);
    this.flagsChanged = 0;
    this.setRealModeSegment(CS, newCs);
    this.eip = newIp;
    this.restoreEspOnFault = false;
  }

  /** Set while a fault is delivered: the EFLAGS image pushed has RF set. */
  private pushResumeFlag = false;

  private deliverProtectedMode(vector: number, returnEip: number, errorCode: number, software: boolean): void {
    const idtError = vector * 8 + 2 + (software ? 0 : 1);
    if (vector * 8 + 7 > this.idtLimit) this.raiseFault(VECTOR_GP, idtError);
    const gateLow = this.readSystem32((this.idtBase + vector * 8) | 0);
    const gateHigh = this.readSystem32((this.idtBase + vector * 8 + 4) | 0);
    const type = (gateHigh >> 8) & 0x1f;
    const dpl = (gateHigh >> 13) & 3;
    if (software && dpl < this.cpl) this.raiseFault(VECTOR_GP, idtError);
    if (!(gateHigh & 0x8000)) this.raiseFault(VECTOR_NP, idtError);
    if (type === 5) {
      const tssSelector = gateLow >>> 16;
      const tss = readTaskGateTarget(this, tssSelector, VECTOR_GP);
      this.pushResumeFlag = false;
      taskSwitch(this, tssSelector, tss.low, tss.high, TaskSwitchReason.Interrupt, returnEip, errorCode);
      return;
    }
    const gate32 = type === 0xe || type === 0xf;
    if (!gate32 && type !== 6 && type !== 7) this.raiseFault(VECTOR_GP, idtError);
    const trapGate = type === 0xf || type === 7;
    const selector = (gateLow >>> 16) & 0xffff;
    const offset = gate32 ? (gateHigh & 0xffff0000) | (gateLow & 0xffff) : gateLow & 0xffff;
    if ((selector & 0xfffc) === 0) this.raiseFault(VECTOR_GP, 0);
    // Copy out of the shared scratch: the stack switch below reads another descriptor.
    const { low: codeLow, high: codeHigh } = this.readDescriptor(selector, VECTOR_GP);
    const attributes = descriptorAttributes(codeHigh);
    const codeDpl = (attributes & SEG_ATTR_DPL) >> 5;
    if ((attributes & (SEG_ATTR_S | SEG_TYPE_CODE)) !== (SEG_ATTR_S | SEG_TYPE_CODE) || codeDpl > this.cpl) {
      this.raiseFault(VECTOR_GP, selector & 0xfffc);
    }
    if (!(attributes & SEG_ATTR_P)) this.raiseFault(VECTOR_NP, selector & 0xfffc);
    const flags = this.getFlags() | (this.pushResumeFlag ? FLAG_RF : 0);
    this.pushResumeFlag = false;
    const conforming = (attributes & SEG_TYPE_EXPAND_DOWN) !== 0;
    const fromV86 = (flags & FLAG_VM) !== 0;
    // From virtual-8086 mode only a ring-0 non-conforming handler will do (SDM 20.3.1.1).
    if (fromV86 && (conforming || codeDpl !== 0)) this.raiseFault(VECTOR_GP, selector & 0xfffc);
    this.saveStackForFault();
    const oldCs = this.segSelector[CS]!;
    if (!conforming && codeDpl < this.cpl) {
      // Inner privilege: switch to the stack the TSS holds for the new level.
      const oldSs = this.segSelector[SS]!;
      const oldEsp = this.regs[ESP]!;
      const { selector: newSs, pointer: newEsp } = this.readTssStack(codeDpl);
      const ssBase = this.segBase[SS]!;
      const ssLimit = this.segLimit[SS]!;
      const ssAttributes = this.segAttributes[SS]!;
      const oldCpl = this.cpl;
      try {
        // Leaving V86 first makes the new SS's B bit count (32-bit stack pushes).
        if (fromV86) this.flags &= ~FLAG_VM;
        this.loadStackSegmentForPrivilege(newSs, codeDpl);
        this.regs[ESP] = newEsp;
        this.cpl = codeDpl;
        this.updateModeCaches();
        if (gate32) {
          if (fromV86) {
            // The V86 data segments go on the stack and are nulled below.
            this.push32(this.segSelector[GS]!);
            this.push32(this.segSelector[FS]!);
            this.push32(this.segSelector[DS]!);
            this.push32(this.segSelector[ES]!);
          }
          this.push32(oldSs);
          this.push32(oldEsp);
        } else {
          if (fromV86) {
            this.push16(this.segSelector[GS]!);
            this.push16(this.segSelector[FS]!);
            this.push16(this.segSelector[DS]!);
            this.push16(this.segSelector[ES]!);
          }
          this.push16(oldSs);
          this.push16(oldEsp);
        }
      } catch (signal) {
        // Undo the stack switch so the fault is delivered from the interrupted context.
        this.flags |= flags & FLAG_VM;
        this.setSegmentCache(SS, oldSs, ssBase, ssLimit, ssAttributes);
        this.cpl = oldCpl;
        this.updateModeCaches();
        throw signal;
      }
      if (fromV86) {
        this.setSegmentCache(ES, 0, 0, 0, 0);
        this.setSegmentCache(DS, 0, 0, 0, 0);
        this.setSegmentCache(FS, 0, 0, 0, 0);
        this.setSegmentCache(GS, 0, 0, 0, 0);
      }
    }
    if (gate32) {
      this.push32(flags);
      this.push32(oldCs);
      this.push32(returnEip);
      if (errorCode >= 0) this.push32(errorCode);
    } else {
      this.push16(flags);
      this.push16(oldCs);
      this.push16(returnEip);
      if (errorCode >= 0) this.push16(errorCode);
    }
    this.loadCodeSegmentCache(selector, codeLow, codeHigh, conforming ? this.cpl : codeDpl);
    this.eip = offset | 0;
    this.flags = flags & ~(FLAG_TF | FLAG_NT | FLAG_RF | FLAG_VM) & (trapGate ? ~0 : ~FLAG_IF);
    this.flagsChanged = 0;
    this.updateModeCaches();
    this.restoreEspOnFault = false;
  }

  /** SS:ESP for an inner privilege level from the current TSS (16- or 32-bit). */
  readTssStack(privilege: number): { selector: number; pointer: number } {
    const base = this.segBase[TR]!;
    const tss32 = (this.segAttributes[TR]! & 0xf) === 0x9 || (this.segAttributes[TR]! & 0xf) === 0xb;
    if (tss32) {
      const at = (base + 4 + privilege * 8) | 0;
      return { pointer: this.readSystem32(at), selector: this.readSystem16((at + 4) | 0) };
    }
    const at = (base + 2 + privilege * 4) | 0;
    return { pointer: this.readSystem16(at), selector: this.readSystem16((at + 2) | 0) };
  }

  /** Loads SS for a stack switch to `privilege`, with the #TS/#SS checks of the TSS stack. */
  loadStackSegmentForPrivilege(selector: number, privilege: number): void {
    if ((selector & 0xfffc) === 0) this.raiseFault(VECTOR_TS, selector & 0xfffc);
    const descriptor = this.readDescriptor(selector, VECTOR_TS);
    const attributes = descriptorAttributes(descriptor.high);
    if ((selector & 3) !== privilege || ((attributes & SEG_ATTR_DPL) >> 5) !== privilege) this.raiseFault(VECTOR_TS, selector & 0xfffc);
    if ((attributes & (SEG_ATTR_S | SEG_TYPE_CODE | SEG_TYPE_WRITABLE)) !== (SEG_ATTR_S | SEG_TYPE_WRITABLE)) {
      this.raiseFault(VECTOR_TS, selector & 0xfffc);
    }
    if (!(attributes & SEG_ATTR_P)) this.raiseFault(VECTOR_SS, selector & 0xfffc);
    this.setDescriptorCache(SS, selector, descriptor.low, descriptor.high);
  }

  // =====================================================================================
  // Descriptors
  // =====================================================================================

  private readonly descriptorScratch = { low: 0, high: 0 };

  /** Reads the 8-byte descriptor for a selector from the GDT or LDT; raises `vector` if out of bounds. */
  readDescriptor(selector: number, vector: number): { low: number; high: number } {
    const index = selector & 0xfff8;
    let base: number;
    let limit: number;
    if (selector & 4) {
      base = this.segBase[LDTR]!;
      limit = this.segLimit[LDTR]! >>> 0;
      if (!(this.segAttributes[LDTR]! & SEG_ATTR_P)) this.raiseFault(vector, selector & 0xfffc);
    } else {
      base = this.gdtBase;
      limit = this.gdtLimit;
    }
    if (index + 7 > limit) this.raiseFault(vector, selector & 0xfffc);
    const scratch = this.descriptorScratch;
    scratch.low = this.readSystem32((base + index) | 0);
    scratch.high = this.readSystem32((base + index + 4) | 0);
    return scratch;
  }

  /** Sets the accessed bit of a descriptor in memory. */
  markAccessed(selector: number, high: number): void {
    if (high & 0x100) return;
    const base = selector & 4 ? this.segBase[LDTR]! : this.gdtBase;
    this.writeSystem32((base + (selector & 0xfff8) + 4) | 0, high | 0x100);
  }

  /** Loads a segment's hidden cache from a raw descriptor. */
  setDescriptorCache(segment: number, selector: number, low: number, high: number): void {
    const attributes = descriptorAttributes(high);
    let limit = (low & 0xffff) | (high & 0xf0000);
    if (attributes & SEG_ATTR_G) limit = (limit << 12) | 0xfff;
    const base = ((low >>> 16) | ((high & 0xff) << 16) | (high & 0xff000000)) | 0;
    this.setSegmentCache(segment, selector, base, limit, attributes | SEG_TYPE_ACCESSED);
  }

  /** Loads CS from a descriptor (accessed bit set) and makes `privilege` the CPL. */
  loadCodeSegmentCache(selector: number, low: number, high: number, privilege: number): void {
    this.markAccessed(selector, high);
    this.cpl = privilege;
    this.setDescriptorCache(CS, (selector & 0xfffc) | privilege, low, high);
    this.updateModeCaches();
  }

  /**
   * MOV/POP/LxS to a data segment register (ES, SS, DS, FS, GS) with the protected-mode
   * checks: null selectors, type, privilege, presence.
   */
  loadSegment(segment: number, selector: number): void {
    selector &= 0xffff;
    if (!(this.cr0 & CR0_PE) || this.flags & FLAG_VM) {
      if (this.modelLevel >= 3) {
        // Real mode keeps the cached limit and attributes ("unreal mode"); only base changes.
        this.segSelector[segment] = selector;
        this.segBase[segment] = selector << 4;
        if (this.flags & FLAG_VM) this.setRealModeSegment(segment, selector);
        else this.refreshSegment(segment);
      } else {
        this.setRealModeSegment(segment, selector);
      }
      if (segment === SS) this.inhibitInterrupts();
      return;
    }
    if (segment === CS) throw new CpuError("ERR_CPU_INTERNAL", "loadSegment cannot load CS");
    const rpl = selector & 3;
    if ((selector & 0xfffc) === 0) {
      if (segment === SS) this.raiseFault(VECTOR_GP, 0);
      // A null selector loads an unusable segment; using it faults.
      this.setSegmentCache(segment, selector, 0, 0, 0);
      return;
    }
    const descriptor = this.readDescriptor(selector, VECTOR_GP);
    const { low, high } = descriptor;
    const attributes = descriptorAttributes(high);
    const dpl = (attributes & SEG_ATTR_DPL) >> 5;
    const isCode = (attributes & SEG_TYPE_CODE) !== 0;
    if (!(attributes & SEG_ATTR_S)) this.raiseFault(VECTOR_GP, selector & 0xfffc);
    if (segment === SS) {
      if (isCode || !(attributes & SEG_TYPE_WRITABLE) || rpl !== this.cpl || dpl !== this.cpl) {
        this.raiseFault(VECTOR_GP, selector & 0xfffc);
      }
      if (!(attributes & SEG_ATTR_P)) this.raiseFault(VECTOR_SS, selector & 0xfffc);
    } else {
      if (isCode && !(attributes & SEG_TYPE_WRITABLE)) this.raiseFault(VECTOR_GP, selector & 0xfffc);
      const conformingCode = isCode && (attributes & SEG_TYPE_EXPAND_DOWN) !== 0;
      if (!conformingCode && (rpl > dpl || this.cpl > dpl)) this.raiseFault(VECTOR_GP, selector & 0xfffc);
      if (!(attributes & SEG_ATTR_P)) this.raiseFault(VECTOR_NP, selector & 0xfffc);
    }
    this.markAccessed(selector, high);
    this.setDescriptorCache(segment, selector, low, high);
    if (segment === SS) this.inhibitInterrupts();
  }

  /**
   * Far JMP/RET target: loads CS:EIP. Real mode: base = selector × 16. Protected mode:
   * code segments (direct transfers at the same or a conforming level); a JMP to a call
   * gate, task gate or TSS goes through it (far-transfer.ts).
   */
  loadCodeSegment(selector: number, offset: number, returning: boolean): void {
    selector &= 0xffff;
    if (!(this.cr0 & CR0_PE) || this.flags & FLAG_VM) {
      this.setRealModeSegment(CS, selector);
      if (this.flags & FLAG_VM) this.cpl = 3;
      this.eip = offset | 0;
      return;
    }
    if ((selector & 0xfffc) === 0) this.raiseFault(VECTOR_GP, 0);
    const descriptor = this.readDescriptor(selector, VECTOR_GP);
    const { low, high } = descriptor;
    const attributes = descriptorAttributes(high);
    if (!(attributes & SEG_ATTR_S)) {
      // RET and IRET cannot return through a gate or to a TSS; JMP goes through it.
      if (returning) this.raiseFault(VECTOR_GP, selector & 0xfffc);
      farTransferThroughSystem(this, selector, low, high, false);
      return;
    }
    if (!(attributes & SEG_TYPE_CODE)) this.raiseFault(VECTOR_GP, selector & 0xfffc);
    const dpl = (attributes & SEG_ATTR_DPL) >> 5;
    const rpl = selector & 3;
    const conforming = (attributes & SEG_TYPE_EXPAND_DOWN) !== 0;
    let privilege = this.cpl;
    if (returning) {
      if (rpl < this.cpl) this.raiseFault(VECTOR_GP, selector & 0xfffc);
      if (conforming ? dpl > rpl : dpl !== rpl) this.raiseFault(VECTOR_GP, selector & 0xfffc);
      privilege = rpl;
    } else if (conforming ? dpl > this.cpl : dpl !== this.cpl || rpl > this.cpl) {
      this.raiseFault(VECTOR_GP, selector & 0xfffc);
    }
    if (!(attributes & SEG_ATTR_P)) this.raiseFault(VECTOR_NP, selector & 0xfffc);
    let limit = (low & 0xffff) | (high & 0xf0000);
    if (attributes & SEG_ATTR_G) limit = (limit << 12) | 0xfff;
    if ((offset >>> 0) > (limit >>> 0)) this.raiseFault(VECTOR_GP, 0);
    this.loadCodeSegmentCache(selector, low, high, privilege);
    this.eip = offset | 0;
  }

  /** After MOV SS / POP SS / STI: no interrupt (or trap) before the next instruction ends. */
  inhibitInterrupts(kind: number = SHADOW_MOV_SS): void {
    this.interruptShadow = kind;
    this.sliceLimit = 0;
  }

  /** Writes CR0 with the mode side effects (TLB flush, mode caches, PAE PDPTEs). */
  writeCr0(value: number): void {
    const changed = this.cr0 ^ value;
    this.cr0 = value | (this.modelLevel >= 3 ? 0x10 : 0);
    if (changed & (CR0_PE | CR0_PG | CR0_WP)) {
      if (changed & CR0_PG) this.loadPdptes();
      this.flushTlb(true);
      this.updateModeCaches();
    }
  }

  writeCr3(value: number): void {
    this.cr3 = value;
    this.loadPdptes();
    this.flushTlb(false);
  }

  writeCr4(value: number): void {
    const changed = this.cr4 ^ value;
    this.cr4 = value;
    if (changed & CR4_PAE) this.loadPdptes();
    if (changed & (CR4_PSE | CR4_PGE | CR4_PAE)) this.flushTlb(true);
  }

  /** Writes IA32_EFER (only NXE exists here); NX changes what cached translations allow. */
  writeEfer(value: number): void {
    const changed = this.efer ^ value;
    this.efer = value;
    if (changed & EFER_NXE) this.flushTlb(true);
  }

  // =====================================================================================
  // Debug-register breakpoints
  // =====================================================================================
  //
  // DR0-DR3 and DR7 are plain registers that tools may write directly, so the run loop
  // compares them with the values last applied (syncBreakpoints) while any breakpoint is
  // enabled. With none enabled nothing here runs: the run loop tests one DR7 byte per slice.

  /** DR0-DR3, DR7 and CR4.DE as last applied; a difference means the breakpoints changed. */
  private readonly appliedDebugState = new Int32Array(6);
  /** Bit n: breakpoint n is enabled and matches instruction fetches (R/W = 00). */
  private executeBreakpointMask = 0;
  /** Bit n: breakpoint n is enabled and matches data writes (R/W = 01) or reads and writes (11). */
  private dataBreakpointMask = 0;
  /** Bit n: breakpoint n matches reads too (R/W = 11). */
  private readBreakpointMask = 0;
  /** Bit n: breakpoint n is an enabled I/O breakpoint (R/W = 10 with CR4.DE). */
  private ioBreakpointMask = 0;
  /** First address (aligned down to the length) and length of each breakpoint. */
  private readonly breakpointStart = new Float64Array(4);
  private readonly breakpointLength = new Uint8Array(4);
  /** B0-B3 bits of data and I/O breakpoints the current instruction matched. */
  debugHits = 0;
  /** True while data or I/O breakpoints are enabled: string instructions do one iteration per step. */
  watchingData = false;

  /** Applies DR0-DR3/DR7 after they (or CR4.DE) changed; flushes the TLB for data breakpoints. */
  syncBreakpoints(): void {
    const applied = this.appliedDebugState;
    const dr = this.dr;
    const de = this.cr4 & CR4_DE;
    if (applied[0] === dr[0] && applied[1] === dr[1] && applied[2] === dr[2] && applied[3] === dr[3] && applied[4] === dr[7] && applied[5] === de) {
      return;
    }
    for (let i = 0; i < 4; i++) applied[i] = dr[i]!;
    applied[4] = dr[7]!;
    applied[5] = de;
    const dr7 = dr[7]!;
    const previousData = this.dataBreakpointMask;
    let execute = 0;
    let data = 0;
    let read = 0;
    let io = 0;
    for (let i = 0; i < 4; i++) {
      const lengthCode = (dr7 >>> (18 + i * 4)) & 3;
      const length = lengthCode === 0 ? 1 : lengthCode === 1 ? 2 : lengthCode === 2 ? 8 : 4;
      this.breakpointLength[i] = length;
      this.breakpointStart[i] = ((dr[i]! >>> 0) & ~(length - 1)) >>> 0;
      if (!((dr7 >>> (i * 2)) & 3)) continue;
      switch ((dr7 >>> (16 + i * 4)) & 3) {
        case 0: execute |= 1 << i; break;
        case 1: data |= 1 << i; break;
        case 2: if (de) io |= 1 << i; break; // without CR4.DE the encoding is undefined: ignored
        default: data |= 1 << i; read |= 1 << i;
      }
    }
    this.executeBreakpointMask = execute;
    this.dataBreakpointMask = data;
    this.readBreakpointMask = read;
    this.ioBreakpointMask = io;
    this.watchingData = (data | io) !== 0;
    // Pages holding a data breakpoint get TLB_WATCH at their next fill.
    if (data !== 0 || previousData !== 0) this.flushTlb(true);
  }

  /** Breakpoints among `mask` whose range overlaps [address, address + size). */
  private matchBreakpoints(mask: number, address: number, size: number): number {
    let hits = 0;
    const first = address >>> 0;
    for (let i = 0; i < 4; i++) {
      if (!(mask & (1 << i))) continue;
      const start = this.breakpointStart[i]!;
      // Overlap with wrap-around at 4 GiB: distance from each start to the other, unsigned.
      if ((first - start + 0x100000000) % 0x100000000 < this.breakpointLength[i]! || (start - first + 0x100000000) % 0x100000000 < size) {
        hits |= 1 << i;
      }
    }
    return hits;
  }

  private pageHasDataBreakpoint(page: number): boolean {
    for (let i = 0; i < 4; i++) {
      if (!(this.dataBreakpointMask & (1 << i))) continue;
      const start = this.breakpointStart[i]!;
      // Aligned to its length (at most 8), a breakpoint never spans two pages.
      if (Math.floor(start / 4096) === page) return true;
    }
    return false;
  }

  /** Slow-path memory access on a watched page: records the data breakpoints it matches. */
  private checkDataBreakpoints(linear: number, size: number, write: boolean): void {
    const mask = write ? this.dataBreakpointMask : this.readBreakpointMask;
    if (mask !== 0) this.debugHits |= this.matchBreakpoints(mask, linear, size);
  }

  /** IN/OUT/INS/OUTS: records the I/O breakpoints a port access matches. */
  checkIoBreakpoints(port: number, size: number): void {
    this.debugHits |= this.matchBreakpoints(this.ioBreakpointMask, port, size);
  }

  /** I/O breakpoints are enabled (CR4.DE and an R/W = 10 breakpoint in DR7). */
  get ioBreakpointsEnabled(): boolean {
    return this.ioBreakpointMask !== 0;
  }

  /**
   * MOV to or from a debug register with DR7.GD set: #DB (a fault) with DR6.BD, so a
   * debugger can keep the registers to itself.
   */
  checkGeneralDetect(): void {
    if (this.dr[7]! & DR7_GD) {
      this.dr[6] = this.dr[6]! | DR6_BD;
      this.raiseFault(VECTOR_DB);
    }
  }

  // =====================================================================================
  // The run loop
  // =====================================================================================

  /**
   * Executes up to `maxInstructions` instructions and returns why it stopped. Cheap to call
   * again: all state lives in the object.
   */
  run(maxInstructions: number): RunExit {
    let remaining = maxInstructions;
    this.codeEpoch++; // the host may have written guest RAM since the last run
    for (;;) {
      // Events between instructions: stop requests, interrupts, windows, halts.
      if (this.stopRequested) {
        this.stopRequested = false;
        return RunExit.Stop;
      }
      if (this.nmiPending && !this.nmiMasked && this.interruptShadow === 0) {
        this.nmiPending = false;
        this.nmiMasked = true;
        this.dispatchException(VECTOR_NMI, -1, false, this.eip, true);
        if (this.pendingExit >= 0) return this.takeExit();
      }
      if (this.interruptShadow === 0 && this.flags & FLAG_IF) {
        if (this.interruptWindowExit) return RunExit.InterruptWindow;
        if (this.pendingInterrupt >= 0) {
          const vector = this.pendingInterrupt;
          this.pendingInterrupt = -1;
          this.dispatchException(vector, -1, false, this.eip, true);
          if (this.pendingExit >= 0) return this.takeExit();
        }
      }
      if (this.halted) return RunExit.Halt;
      if (remaining <= 0) return RunExit.Budget;
      const debugEnables = (this.dr[7]! | this.appliedDebugState[4]!) & 0xff;
      if (this.interruptShadow !== 0 || this.flags & (FLAG_TF | FLAG_RF) || this.deferredTrap || debugEnables !== 0 || this.taskSwitchTrap) {
        // One instruction at a time, interpreted, while a shadow, the trap flag, the resume
        // flag or a debug-register breakpoint is in effect.
        if (debugEnables !== 0) this.syncBreakpoints();
        if (this.taskSwitchTrap) {
          // The new task's TSS has its T bit set: #DB (DR6.BT) before its first instruction.
          this.taskSwitchTrap = false;
          this.dr[6] = this.dr[6]! | DR6_BT;
          this.deliverDebugException(0, this.eip);
          if (this.pendingExit >= 0) return this.takeExit();
          continue;
        }
        const resume = this.flags & FLAG_RF;
        if (this.executeBreakpointMask !== 0 && resume === 0) {
          const hits = this.matchBreakpoints(this.executeBreakpointMask, (this.segBase[CS]! + this.eip) | 0, 1);
          if (hits !== 0) {
            // An instruction breakpoint is a fault: EIP stays at the instruction, and the
            // handler sets RF in the pushed EFLAGS to execute it (SDM 17.3.1.1).
            remaining--; // not retired, but counted so a breakpoint on the handler cannot spin forever
            this.deliverDebugException(hits, this.eip);
            if (this.pendingExit >= 0) return this.takeExit();
            continue;
          }
        }
        // RF is cleared at the start of the instruction, after the instruction-breakpoint check.
        this.flags &= ~FLAG_RF;
        const trap = (this.flags & FLAG_TF) !== 0 || this.deferredTrap;
        this.interruptShadow = 0;
        this.sliceLimit = 1;
        this.debugHits = 0;
        this.interpretOnly = true;
        const executed = this.executeSlice();
        remaining -= executed;
        this.instructionsRetired += executed;
        const hits = executed === 1 ? this.debugHits & (this.dataBreakpointMask | this.ioBreakpointMask) : 0;
        this.debugHits = 0;
        if (this.pendingExit >= 0) {
          if (this.pendingExit === RunExit.Intercept) this.flags |= resume; // the instruction runs again
          return this.takeExit();
        }
        let singleStep = false;
        if (trap && executed === 1 && !this.halted) {
          if (this.interruptShadow === SHADOW_MOV_SS && !this.deferredTrap) {
            this.deferredTrap = true; // MOV SS / POP SS: the trap waits one more instruction
          } else {
            this.deferredTrap = false;
            singleStep = true;
          }
        }
        if (hits !== 0 || singleStep) {
          // Data and I/O breakpoints are traps: reported after the instruction, with BS too
          // when single-stepping.
          if (singleStep && hits === 0) this.dr[6] = this.dr[6]! | DR6_BS;
          else this.dr[6] = (this.dr[6]! & ~0xf) | hits | (singleStep ? DR6_BS : 0);
          this.deliverDebugException(0, this.eip);
          if (this.pendingExit >= 0) return this.takeExit();
        }
        continue;
      }
      this.sliceLimit = remaining;
      this.interpretOnly = false;
      const executed = this.executeSlice();
      remaining -= executed;
      this.instructionsRetired += executed;
      if (this.pendingExit >= 0) return this.takeExit();
    }
  }

  private deferredTrap = false;
  /** Set by a task switch to a TSS whose T bit is set; run() raises the #DB trap. */
  taskSwitchTrap = false;
  /** Set for the careful one-instruction slices: compiled blocks do not run. */
  private interpretOnly = false;

  /**
   * Delivers #DB from the run loop: `hits` (B0-B3) replace DR6's breakpoint bits when
   * non-zero. Entering the handler clears DR7.GD so it can use the debug registers.
   */
  private deliverDebugException(hits: number, returnEip: number): void {
    if (hits !== 0) this.dr[6] = (this.dr[6]! & ~0xf) | hits;
    this.dispatchException(VECTOR_DB, -1, false, returnEip, false);
  }
  /** An exit found inside a slice, returned by run(); −1 when none. */
  private pendingExit = -1;

  private takeExit(): RunExit {
    const exit = this.pendingExit as RunExit;
    this.pendingExit = -1;
    return exit;
  }

  /**
   * Runs instructions until `sliceLimit` is reached or something lowers it (an event that
   * needs the outer loop). Compiled blocks run where they exist; everything else is
   * interpreted. Faults are delivered here; exits are left in pendingExit.
   */
  private executeSlice(): number {
    const table = this.table;
    this.sliceCount = 0;
    try {
      if (this.jitEnabled && !this.interpretOnly) {
        while (this.sliceCount < this.sliceLimit) {
          const block = this.findBlock();
          let completed = 0;
          if (block !== null) {
            this.activeBlock = block;
            this.leaveBlock = false;
            completed = block.run(this.sliceLimit - this.sliceCount);
            this.activeBlock = null;
          }
          if (completed === 0) {
            this.step(table);
            completed = 1;
          }
          this.sliceCount += completed;
        }
      } else {
        while (this.sliceCount < this.sliceLimit) {
          this.step(table);
          this.sliceCount++;
        }
      }
      return this.sliceCount;
    } catch (signal) {
      const block = this.activeBlock;
      if (block !== null) {
        // Count the region's instructions that completed before the one that stopped it.
        this.sliceCount += this.blockProgress + (block.indexInBasicBlock.get(this.instructionStart) ?? 0);
        this.activeBlock = null;
      }
      const undo = signal !== FAULT_SIGNAL || !(this.faultVector === 0 && this.modelLevel === 0);
      // The 8086 reports a divide error after the instruction (a trap); later CPUs restart it.
      const returnEip = undo ? this.instructionStart : this.eip;
      if (!undo) this.sliceCount++;
      this.eip = this.instructionStart;
      if (this.restoreEspOnFault) this.regs[ESP] = this.savedEsp;
      this.restoreEspOnFault = false;
      if (signal === FAULT_SIGNAL) {
        this.eip = returnEip;
        // A fault pushes EFLAGS with RF set, so the restarted instruction does not hit an
        // instruction breakpoint again (SDM 17.3.1.1); from the 80386 on.
        this.pushResumeFlag = undo && this.modelLevel >= 3;
        this.dispatchException(this.faultVector, this.faultErrorCode, false, returnEip, false);
      } else if (signal === INTERCEPT_SIGNAL) {
        this.pendingExit = RunExit.Intercept;
      } else if (signal === UNSUPPORTED_SIGNAL) {
        this.pendingExit = RunExit.Unsupported;
      } else if (signal === EXCEPTION_EXIT_SIGNAL) {
        this.pendingExit = RunExit.Exception;
      } else {
        throw signal;
      }
      return this.sliceCount;
    }
  }

  // =====================================================================================
  // Block compiler glue
  // =====================================================================================

  /**
   * The compiled block for CS:EIP, compiling it once it has run often enough; null when the
   * next instruction should be interpreted (cold code, no fast-RAM fetch window yet, or an
   * instruction the compiler leaves to the interpreter).
   */
  private findBlock(): CompiledBlock | null {
    const eip = this.eip;
    if (((eip - this.fetchEipStart) >>> 0) >= this.fetchEipLength) return null;
    const physical = (eip + this.fetchDelta) | 0;
    const slot = blockSlot(physical);
    const block = this.blockCache[slot]!;
    if (
      block !== null &&
      block.physical === physical &&
      block.eip === eip &&
      block.csBase === this.segBase[CS] &&
      block.code32 === this.codeSize32 &&
      block.csLimit === this.segLimit[CS]
    ) {
      if (block.epoch === this.codeEpoch) return block;
      if (this.blockStillMatches(block)) {
        block.epoch = this.codeEpoch;
        return block;
      }
      this.blockCache[slot] = null;
      return null;
    }
    const heatIndex = physical & HEAT_MASK;
    const heat = this.blockHeat[heatIndex]! + 1;
    this.blockHeat[heatIndex] = heat;
    if (heat < HOT_THRESHOLD) return null;
    this.blockHeat[heatIndex] = 0;
    return this.compileAt(physical, eip, slot);
  }

  /** True when guest RAM still holds the bytes a block was compiled from. */
  private blockStillMatches(block: CompiledBlock): boolean {
    const ram = this.ram;
    const bytes = block.bytes;
    const start = block.bytesStart;
    for (let i = 0; i < bytes.length; i++) if (ram[start + i] !== bytes[i]) return false;
    return true;
  }

  private compileAt(physical: number, eip: number, slot: number): CompiledBlock | null {
    const ram = this.ram;
    const pageStart = physical & ~0xfff;
    const block = compileRegion(
      physical,
      eip,
      this.segBase[CS]!,
      this.segLimit[CS]!,
      this.codeSize32,
      { byteAt: (address) => (address >= pageStart && address < pageStart + 0x1000 ? ram[address]! : -1) },
      this.compilerRuntime,
      this,
    );
    if (block === null) return null;
    this.blocksCompiledTotal++;
    block.epoch = this.codeEpoch;
    this.blockCache[slot] = block;
    const frame = physical >>> 12;
    const blocks = this.pageBlocks.get(frame);
    if (blocks) blocks.push(block);
    else this.pageBlocks.set(frame, [block]);
    if (!this.codePages[frame]) {
      // From now on writes to this page must see the slow path, which invalidates its blocks.
      this.codePages[frame] = 1;
      this.flushTlb(true);
    }
    return block;
  }

  /**
   * A guest write to `[physical, physical + size)` on a page holding compiled code: only the
   * blocks compiled from those bytes are dropped, so data that shares a page with code (a
   * variable after a loop, as real-mode programs have) does not cost a recompilation.
   */
  private invalidateCodeBytes(physical: number, size: number): void {
    const frame = physical >>> 12;
    const blocks = this.pageBlocks.get(frame);
    if (!blocks) {
      this.codePages[frame] = 0;
      return;
    }
    const end = physical + size;
    let kept = 0;
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i]!;
      if (block.bytesStart < end && physical < block.bytesStart + block.bytes.length) {
        const slot = blockSlot(block.physical);
        if (this.blockCache[slot] === block) this.blockCache[slot] = null;
        this.leaveBlock = true; // the running block may be the one just written
      } else {
        blocks[kept++] = block;
      }
    }
    blocks.length = kept;
    if (kept === 0) {
      this.pageBlocks.delete(frame);
      this.codePages[frame] = 0;
    }
  }

  private invalidateCodePage(frame: number): void {
    const blocks = this.pageBlocks.get(frame);
    if (blocks) {
      for (const block of blocks) {
        const slot = blockSlot(block.physical);
        if (this.blockCache[slot] === block) this.blockCache[slot] = null;
      }
      this.pageBlocks.delete(frame);
    }
    this.codePages[frame] = 0;
    this.leaveBlock = true;
  }

  /**
   * Drops compiled code derived from guest-physical `[address, address + length)`. Call it
   * after changing guest RAM behind the CPU's back (DMA, a debugger writing memory through
   * the memory map); guest writes through the CPU are tracked automatically.
   */
  invalidateCode(address: number, length: number): void {
    const first = Math.floor(address / 4096);
    const last = Math.floor((address + Math.max(length, 1) - 1) / 4096);
    for (let frame = first; frame <= last && frame < PAGE_COUNT_4G; frame++) {
      if (this.codePages[frame]) this.invalidateCodePage(frame);
    }
  }

  /** Regions compiled since the CPU was created, recompilations included (statistics). */
  get blocksCompiled(): number {
    return this.blocksCompiledTotal;
  }

  /** Number of compiled regions currently cached (for tests and statistics). */
  get compiledBlockCount(): number {
    let count = 0;
    for (const blocks of this.pageBlocks.values()) count += blocks.length;
    return count;
  }

  /**
   * Delivers an exception or interrupt, handling double and triple faults, or reports it as
   * an exit when its bit is set in exceptionExitBitmap (pendingExit is then set).
   */
  private dispatchException(vector: number, errorCode: number, software: boolean, returnEip: number, external: boolean): void {
    if (!external && vector < 32 && this.exceptionExitBitmap & (1 << vector)) {
      this.exitVector = vector;
      this.exitErrorCode = errorCode;
      this.exitSoftwareException = false;
      this.pendingExit = RunExit.Exception;
      this.pushResumeFlag = false;
      return;
    }
    const previous = this.deliveringException;
    this.deliveringException = vector;
    try {
      this.deliverInterrupt(vector, returnEip, this.cr0 & CR0_PE ? errorCode : -1, software);
      this.deliveringException = previous;
      // Entering the #DB handler clears DR7.GD so the handler may use the debug registers.
      if (vector === VECTOR_DB && !external) this.dr[7] = this.dr[7]! & ~DR7_GD;
    } catch (signal) {
      this.pushResumeFlag = false;
      this.deliveringException = previous;
      if (this.restoreEspOnFault) this.regs[ESP] = this.savedEsp;
      this.restoreEspOnFault = false;
      if (signal === UNSUPPORTED_SIGNAL) {
        this.pendingExit = RunExit.Unsupported;
        return;
      }
      if (signal !== FAULT_SIGNAL) throw signal;
      if (vector === VECTOR_DF || previous === VECTOR_DF) {
        this.pendingExit = RunExit.Shutdown;
        return;
      }
      if (!(this.cr0 & CR0_PE) && this.modelLevel < 3) {
        // Real mode on the 8086/286 has no double fault: the new fault is delivered. If it is
        // the vector that just failed, delivering it fails the same way forever: shut down.
        if (this.faultVector === vector) {
          this.pendingExit = RunExit.Shutdown;
          return;
        }
        this.dispatchException(this.faultVector, this.faultErrorCode, false, returnEip, false);
        return;
      }
      // SDM "Conditions for Generating a Double Fault": only contributory-then-contributory
      // and #PF-then-(contributory or #PF) make #DF. After a benign exception or an external
      // interrupt, and for #PF after a contributory one, the new fault is delivered instead.
      const second = this.faultVector;
      const firstContributory = !external && isContributory(vector);
      const firstPageFault = !external && vector === VECTOR_PF;
      if ((firstContributory && isContributory(second)) || (firstPageFault && (isContributory(second) || second === VECTOR_PF))) {
        this.dispatchException(VECTOR_DF, 0, false, returnEip, false);
      } else {
        this.dispatchException(second, this.faultErrorCode, false, returnEip, false);
      }
    }
  }

  /**
   * Executes one instruction (prefixes included). Instruction handlers are looked up by
   * opcode and operand size.
   */
  step(table: readonly InstructionHandler[]): void {
    this.instructionStart = this.eip;
    this.restoreEspOnFault = false;
    let operandSize32 = this.codeSize32;
    let addressSize32 = this.codeSize32;
    this.prefixSegment = -1;
    this.prefixRepeat = 0;
    this.prefixLock = 0;
    let opcode = this.fetch8();
    // Prefix bytes are found through the table too: it holds PREFIX for them.
    let index = opcode | (operandSize32 << 8);
    let handler = table[index]!;
    let prefixes = 0;
    while (handler === PREFIX) {
      switch (opcode) {
        case 0x26: this.prefixSegment = ES; break;
        case 0x2e: this.prefixSegment = CS; break;
        case 0x36: this.prefixSegment = SS; break;
        case 0x3e: this.prefixSegment = DS; break;
        case 0x64: this.prefixSegment = FS; break;
        case 0x65: this.prefixSegment = GS; break;
        case 0x66: operandSize32 = this.codeSize32 ^ 1; break;
        case 0x67: addressSize32 = this.codeSize32 ^ 1; break;
        case 0xf0: this.prefixLock = 1; break;
        case 0xf1: this.prefixLock = 1; break; // 8086: F1 is an alias of LOCK
        case 0xf2: this.prefixRepeat = 1; break;
        case 0xf3: this.prefixRepeat = 2; break;
      }
      if (++prefixes === 1 && this.modelLevel >= 2) this.limitFetchToInstructionLength();
      opcode = this.fetch8();
      index = opcode | (operandSize32 << 8);
      handler = table[index]!;
    }
    this.opcode = opcode;
    this.operandSize32 = operandSize32;
    this.addressSize32 = addressSize32;
    // From the 80386 on, LOCK is #UD unless it precedes a read-modify-write of memory.
    if (this.prefixLock !== 0 && this.modelLevel >= 3 && !this.lockAllowed(opcode)) this.undefinedOpcode();
    handler(this);
  }

  /** Whether LOCK may precede this instruction: a lockable opcode with a memory destination. */
  private lockAllowed(opcode: number): boolean {
    const start = this.eip;
    try {
      let op = opcode;
      if (op === 0x0f) op = 0x100 | this.fetch8();
      const modrm = this.fetch8();
      if (modrm >= 0xc0) return false;
      const reg = (modrm >> 3) & 7;
      if (op < 0x40) return (op & 7) <= 1 && op >> 3 !== 7; // ALU Eb,Gb / Ev,Gv, except CMP
      switch (op) {
        case 0x80: case 0x81: case 0x82: case 0x83: return reg !== 7;
        case 0x86: case 0x87: return true;
        case 0xf6: case 0xf7: return reg === 2 || reg === 3;
        case 0xfe: case 0xff: return reg <= 1;
        case 0x1ab: case 0x1b3: case 0x1bb: case 0x1b0: case 0x1b1: case 0x1c0: case 0x1c1: return true;
        case 0x1ba: return reg >= 5;
        case 0x1c7: return reg === 1;
        default: return false;
      }
    } finally {
      this.eip = start;
    }
  }

  /** Handler of the 0F escape byte: dispatches the second opcode byte. */
  executeTwoByteOpcode(): void {
    const opcode = this.fetch8();
    this.opcode = opcode;
    this.table[0x200 | opcode | (this.operandSize32 << 8)]!(this);
  }

  // =====================================================================================
  // ModR/M decoding
  // =====================================================================================

  /** Fetches a ModR/M byte; for memory forms computes eaSegment/eaOffset. */
  fetchModrm(): number {
    const modrm = this.fetch8();
    this.modrm = modrm;
    if (modrm < 0xc0) {
      if (this.addressSize32) this.decodeAddress32(modrm);
      else this.decodeAddress16(modrm);
    }
    return modrm;
  }

  private decodeAddress16(modrm: number): void {
    const mod = modrm >> 6;
    const rm = modrm & 7;
    const r = this.regs16;
    let offset: number;
    let segment = DS;
    switch (rm) {
      case 0: offset = r[6]! + r[12]!; break; // bx + si
      case 1: offset = r[6]! + r[14]!; break; // bx + di
      case 2: offset = r[10]! + r[12]!; segment = SS; break; // bp + si
      case 3: offset = r[10]! + r[14]!; segment = SS; break; // bp + di
      case 4: offset = r[12]!; break;
      case 5: offset = r[14]!; break;
      case 6:
        if (mod === 0) {
          offset = this.fetch16();
        } else {
          offset = r[10]!;
          segment = SS;
        }
        break;
      default: offset = r[6]!; break;
    }
    if (mod === 1) offset += this.fetchSigned8();
    else if (mod === 2) offset += this.fetch16();
    this.eaOffset = offset & 0xffff;
    this.eaSegment = this.prefixSegment >= 0 ? this.prefixSegment : segment;
  }

  private decodeAddress32(modrm: number): void {
    const mod = modrm >> 6;
    const rm = modrm & 7;
    let offset: number;
    let segment = DS;
    if (rm === 4) {
      const sib = this.fetch8();
      const base = sib & 7;
      const indexRegister = (sib >> 3) & 7;
      if (base === 5 && mod === 0) {
        offset = this.fetch32();
      } else {
        offset = this.regs[base]!;
        if (base === 4 || base === 5) segment = SS;
      }
      if (indexRegister !== 4) offset += this.regs[indexRegister]! << (sib >> 6);
    } else if (rm === 5 && mod === 0) {
      offset = this.fetch32();
    } else {
      offset = this.regs[rm]!;
      if (rm === 5) segment = SS;
    }
    if (mod === 1) offset += this.fetchSigned8();
    else if (mod === 2) offset += this.fetch32();
    this.eaOffset = offset | 0;
    this.eaSegment = this.prefixSegment >= 0 ? this.prefixSegment : segment;
  }

  /** Segment for instructions whose default is DS (string sources, XLAT, moffs). */
  dataSegment(): number {
    return this.prefixSegment >= 0 ? this.prefixSegment : DS;
  }

  // ---- ModR/M operand accessors ---------------------------------------------------------

  /** Byte register index in regs8 for a ModR/M register number. */
  static byteRegister(n: number): number {
    return ((n & 3) << 2) | (n >> 2);
  }

  readModrm8(): number {
    const m = this.modrm;
    if (m >= 0xc0) return this.regs8[((m & 3) << 2) | ((m >> 2) & 1)]!;
    return this.readMem8(this.eaSegment, this.eaOffset);
  }

  readModrm16(): number {
    const m = this.modrm;
    if (m >= 0xc0) return this.regs16[(m & 7) << 1]!;
    return this.readMem16(this.eaSegment, this.eaOffset);
  }

  readModrm32(): number {
    const m = this.modrm;
    if (m >= 0xc0) return this.regs[m & 7]!;
    return this.readMem32(this.eaSegment, this.eaOffset);
  }

  writeModrm8(value: number): void {
    const m = this.modrm;
    if (m >= 0xc0) this.regs8[((m & 3) << 2) | ((m >> 2) & 1)] = value;
    else this.writeMem8(this.eaSegment, this.eaOffset, value);
  }

  writeModrm16(value: number): void {
    const m = this.modrm;
    if (m >= 0xc0) this.regs16[(m & 7) << 1] = value;
    else this.writeMem16(this.eaSegment, this.eaOffset, value);
  }

  writeModrm32(value: number): void {
    const m = this.modrm;
    if (m >= 0xc0) this.regs[m & 7] = value;
    else this.writeMem32(this.eaSegment, this.eaOffset, value);
  }

  /** For read-modify-write forms: check the destination is writable before anything changes. */
  probeModrmWrite(size: number): void {
    if (this.modrm < 0xc0) this.probeMemWrite(this.eaSegment, this.eaOffset, size);
  }

  /** `reg` field as a byte-register index. */
  get modrmReg8(): number {
    const reg = (this.modrm >> 3) & 7;
    return ((reg & 3) << 2) | (reg >> 2);
  }

  /** `reg` field. */
  get modrmReg(): number {
    return (this.modrm >> 3) & 7;
  }
}

/** Attribute word (WHPX layout) from the high dword of a descriptor. */
export function descriptorAttributes(high: number): number {
  return ((high >> 8) & 0xff) | ((high >> 8) & 0xf000);
}

/** #DE, #TS, #NP, #SS, #GP: the exceptions that turn a second fault into #DF. */
function isContributory(vector: number): boolean {
  return vector === 0 || (vector >= VECTOR_TS && vector <= VECTOR_GP);
}

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let bits = i;
  bits ^= bits >> 4;
  bits ^= bits >> 2;
  bits ^= bits >> 1;
  PARITY[i] = (bits & 1) ^ 1;
}

