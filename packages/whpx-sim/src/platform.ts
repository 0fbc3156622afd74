import { Cpu, MemoryAccess, RunExit, defaultCpuid, type AccessSize, type CpuBus } from "@vmmkit/cpu";
import { WhvError } from "./errors.js";
import { DR6_BS, PENDING_DEBUG_MASK, ProcessorState, readRegister, segmentRegister, validateRegisterValue, writeRegister } from "./register-access.js";
import {
  WhvExceptionType,
  WhvMapGpaRangeFlags,
  WhvRegisterName,
  type WhvCapabilityMap,
  type WhvPartitionHandle,
  type WhvPartitionPropertyCode,
  type WhvPartitionPropertyMap,
  type WhvRegisterValues,
  type WhvRunVpExitContext,
  type WhvSimProcessorCounters,
  type WhvSimRunOptions,
  type WhvVpExitContext,
} from "./types.js";
import { translateGva, type WhvTranslateGvaResult } from "./translate.js";
import { yieldToEventLoop } from "./yield.js";

/** Instructions a run executes before it yields to the event loop (and checks for cancel). */
export const SLICE_INSTRUCTIONS = 1 << 18;

const MAX_PROCESSORS = 64;

interface GpaMapping {
  readonly start: number;
  readonly size: number;
  readonly source: Uint8Array;
  readonly flags: number;
}

/** One virtual processor: a CPU whose unmapped accesses and port I/O become exits. */
class VirtualProcessor implements CpuBus {
  readonly cpu: Cpu;
  /** Queued events, pending debug traps and stored MSRs (what the register API reads). */
  readonly state: ProcessorState;
  running = false;
  cancelPending = false;
  /** Inside run but waiting for another processor's exclusive section to end. */
  held = false;
  /** Ends that wait early (a cancel). */
  releaseHold: (() => void) | null = null;
  /** The exit a bus callback recorded before intercepting the instruction. */
  pendingExit: WhvRunVpExitContext | null = null;
  /** While set, the next bus access (the forced instruction fetch) delivers this exception. */
  injecting = false;
  injectVector = 0;
  injectErrorCode = -1;
  /**
   * RIP of an instruction a host single-step left to the VMM (I/O or MMIO exit); if the next
   * step finds RIP moved, the emulator completed it and that was the step. -1 when none.
   */
  stepEmulationRip = -1;
  /** DR6 when the current run started: bits a #DB exit adds are taken back out of it. */
  dr6AtRunStart = 0;

  constructor(readonly partition: Partition) {
    this.cpu = new Cpu({ bus: this });
    this.state = new ProcessorState(this.cpu);
  }

  readPhysical(address: number, size: AccessSize): number {
    if (this.injecting) return this.deliverInjected();
    return this.memoryExit(address, size, this.isFetch(address, size) ? "execute" : "read");
  }

  writePhysical(address: number, value: number, size: AccessSize): void {
    // The first guest write to a clean dirty-tracked page: record it, let later writes run fast.
    if (this.partition.trackFirstWrite(address)) {
      const mapping = this.partition.mappingAt(address)!;
      for (let i = 0; i < size; i++) mapping.source[address + i - mapping.start] = value >>> (8 * i);
      return;
    }
    this.memoryExit(address, size, "write");
  }

  readPort(port: number, size: AccessSize): number {
    return this.ioExit(port, size, false);
  }

  writePort(port: number, _value: number, size: AccessSize): void {
    this.ioExit(port, size, true);
  }

  /** CPUID of a leaf in cpuidExitList: exits before completing, with the results it would give. */
  cpuidExit(values: readonly number[]): never {
    const cpu = this.cpu;
    this.pendingExit = {
      exitReason: "x64Cpuid",
      vpContext: exitVpContext(this, cpu.eip - cpu.instructionStart, cpu.instructionStart),
      cpuidAccess: {
        rax: BigInt(cpu.regs[0]! >>> 0),
        rcx: BigInt(cpu.regs[1]! >>> 0),
        rdx: BigInt(cpu.regs[2]! >>> 0),
        rbx: BigInt(cpu.regs[3]! >>> 0),
        defaultResultRax: BigInt(values[0]! >>> 0),
        defaultResultRbx: BigInt(values[1]! >>> 0),
        defaultResultRcx: BigInt(values[2]! >>> 0),
        defaultResultRdx: BigInt(values[3]! >>> 0),
      },
    };
    return cpu.interceptInstruction();
  }

  /** RDMSR/WRMSR while x64MsrExit is on: exits before the access, the VMM completes it. */
  msrExit(msr: number, write: boolean): never {
    const cpu = this.cpu;
    this.pendingExit = {
      exitReason: "x64MsrAccess",
      vpContext: exitVpContext(this, cpu.eip - cpu.instructionStart, cpu.instructionStart),
      msrAccess: {
        msrNumber: msr >>> 0,
        accessInfo: { isWrite: write },
        rax: BigInt(cpu.regs[0]! >>> 0),
        rdx: BigInt(cpu.regs[2]! >>> 0),
      },
    };
    return cpu.interceptInstruction();
  }

  /** The forced fetch of an injection: the instruction never starts, the exception is delivered. */
  private deliverInjected(): never {
    this.injecting = false;
    this.cpu.requestStop(); // run() returns right after the delivery
    return this.cpu.raiseFault(this.injectVector, this.injectErrorCode);
  }

  /** The CPU fetches instruction bytes that are not executable RAM one byte at a time, at CS:EIP-1. */
  private isFetch(address: number, size: AccessSize): boolean {
    const cpu = this.cpu;
    if (size !== 1) return false;
    const offset = cpu.eip - 1 - cpu.instructionStart;
    if (offset < 0 || offset >= 15) return false;
    return cpu.translateLinear((cpu.segBase[1]! + cpu.eip - 1) | 0) === address;
  }

  private memoryExit(address: number, size: number, accessType: "read" | "write" | "execute"): never {
    const cpu = this.cpu;
    const mapped = this.partition.isMapped(address);
    const vpContext = exitVpContext(this, cpu.eip - cpu.instructionStart, cpu.instructionStart);
    const bytes = cpu.peekInstructionBytes(cpu.instructionStart, 16);
    const gva = accessType === "execute" ? (cpu.segBase[1]! + cpu.eip - 1) >>> 0 : guessLinear(cpu, address, size);
    this.pendingExit = {
      exitReason: "memoryAccess",
      vpContext,
      memoryAccess: {
        instructionByteCount: bytes.length,
        instructionBytes: bytes,
        accessInfo: { accessType, gpaUnmapped: !mapped, gvaValid: gva >= 0 && (cpu.cr0 & CR0_PG) !== 0 },
        gpa: BigInt(address),
        gva: gva >= 0 ? BigInt(gva) : 0n,
      },
    };
    return cpu.interceptInstruction();
  }

  private ioExit(port: number, size: AccessSize, isWrite: boolean): never {
    const cpu = this.cpu;
    const opcode = cpu.opcode;
    const stringOp = opcode >= 0x6c && opcode <= 0x6f;
    const vpContext = exitVpContext(this, cpu.eip - cpu.instructionStart, cpu.instructionStart);
    const bytes = cpu.peekInstructionBytes(cpu.instructionStart, 16);
    this.pendingExit = {
      exitReason: "x64IoPortAccess",
      vpContext,
      ioPortAccess: {
        instructionByteCount: bytes.length,
        instructionBytes: bytes,
        accessInfo: { isWrite, accessSize: size, stringOp, repPrefix: stringOp && cpu.prefixRepeat !== 0 },
        portNumber: port,
        rax: BigInt(cpu.regs[0]! >>> 0),
        rcx: BigInt(cpu.regs[1]! >>> 0),
        rsi: BigInt(cpu.regs[6]! >>> 0),
        rdi: BigInt(cpu.regs[7]! >>> 0),
        ds: segmentRegister(cpu, 3),
        es: segmentRegister(cpu, 0),
      },
    };
    return cpu.interceptInstruction();
  }
}

const CR0_PG = 0x80000000 | 0;

/**
 * The linear address of a data access the bus saw only physically: the candidates are the
 * instruction's memory operand, the string registers and the stack; -1 when none maps there.
 */
function guessLinear(cpu: Cpu, physical: number, size: number): number {
  if ((cpu.cr0 & CR0_PG) === 0) return physical;
  const mask = cpu.addressSize32 ? -1 : 0xffff;
  const stackMask = cpu.stackSize32 ? -1 : 0xffff;
  const source = cpu.prefixSegment >= 0 ? cpu.prefixSegment : 3;
  const candidates = [
    cpu.segBase[cpu.eaSegment]! + cpu.eaOffset,
    cpu.segBase[source]! + (cpu.regs[6]! & mask),
    cpu.segBase[0]! + (cpu.regs[7]! & mask),
    cpu.segBase[2]! + ((cpu.regs[4]! - size) & stackMask),
    cpu.segBase[2]! + (cpu.regs[4]! & stackMask),
  ];
  for (const candidate of candidates) {
    for (let delta = 0; delta < Math.max(size, 1); delta++) {
      if (cpu.translateLinear((candidate + delta) | 0) === physical) return (candidate + delta) >>> 0;
    }
  }
  return -1;
}

class Partition {
  readonly handle: WhvPartitionHandle = Object.freeze({}) as WhvPartitionHandle;
  setUp = false;
  deleted = false;
  readonly properties: WhvPartitionPropertyMap = {
    extendedVmExits: {},
    exceptionExitBitmap: 0n,
    processorCount: 1,
    processorFeatures: 0n,
    cpuidExitList: [],
    cpuidResultList: [],
  };
  readonly processors = new Map<number, VirtualProcessor>();
  readonly mappings: GpaMapping[] = [];
  /** The processor of an exclusive section: the others do not execute until it ends. */
  exclusiveOwner: VirtualProcessor | null = null;
  exclusiveEnded: Promise<void> = Promise.resolve();
  endExclusive: () => void = () => {};

  /** One bit per 4 KiB page below 4 GiB, allocated with the first dirty-tracked mapping. */
  dirtyPages: Uint8Array | null = null;

  isMapped(address: number): boolean {
    return this.mappingAt(address) !== undefined;
  }

  mappingAt(address: number): GpaMapping | undefined {
    return this.mappings.find((mapping) => address >= mapping.start && address < mapping.start + mapping.size);
  }

  /**
   * A guest write reached the bus at `address`: if it is the first to a clean page of a
   * writable dirty-tracked mapping, marks the page dirty, gives every processor write access
   * to it again and returns true (the caller completes the write).
   */
  trackFirstWrite(address: number): boolean {
    const dirty = this.dirtyPages;
    if (dirty === null) return false;
    const mapping = this.mappingAt(address);
    const tracked = WhvMapGpaRangeFlags.trackDirtyPages | WhvMapGpaRangeFlags.write;
    if (mapping === undefined || (mapping.flags & tracked) !== tracked) return false;
    const page = Math.floor(address / 4096);
    if ((dirty[page >> 3]! & (1 << (page & 7))) !== 0) return false;
    dirty[page >> 3] = dirty[page >> 3]! | (1 << (page & 7));
    for (const processor of this.processors.values()) processor.cpu.protectMemory(page * 4096, 4096, cpuAccess(mapping.flags));
    return true;
  }

  /** Bytes of [start, end) that some mapping covers (mappings never overlap). */
  mappedBytes(start: number, end: number): number {
    let covered = 0;
    for (const mapping of this.mappings) covered += Math.max(0, Math.min(end, mapping.start + mapping.size) - Math.max(start, mapping.start));
    return covered;
  }

  /**
   * Drops [start, end) from the recorded mappings, splitting the ones it cuts, so the record
   * matches what the processors map page by page (processors created later replay it).
   */
  forgetRange(start: number, end: number): void {
    const kept: GpaMapping[] = [];
    for (const mapping of this.mappings) {
      const mappingEnd = mapping.start + mapping.size;
      if (mappingEnd <= start || mapping.start >= end) {
        kept.push(mapping);
        continue;
      }
      if (mapping.start < start) kept.push({ ...mapping, size: start - mapping.start, source: mapping.source.subarray(0, start - mapping.start) });
      if (mappingEnd > end) kept.push({ ...mapping, start: end, size: mappingEnd - end, source: mapping.source.subarray(end - mapping.start) });
    }
    this.mappings.splice(0, this.mappings.length, ...kept);
  }

  /** Applies the current mappings and exit properties to a processor's CPU. */
  configure(processor: VirtualProcessor): void {
    for (const mapping of this.mappings) mapInto(processor.cpu, mapping, this.dirtyPages);
    this.applyExitProperties(processor);
  }

  /** True when exceptions of `vector` leave the guest as exception exits. */
  intercepts(vector: number): boolean {
    return this.properties.extendedVmExits.exceptionExit === true && ((this.properties.exceptionExitBitmap >> BigInt(vector)) & 1n) === 1n;
  }

  applyExitProperties(processor: VirtualProcessor): void {
    const exceptionsEnabled = this.properties.extendedVmExits.exceptionExit === true;
    processor.cpu.exceptionExitBitmap = exceptionsEnabled ? Number(this.properties.exceptionExitBitmap & 0xffffffffn) | 0 : 0;
    // WHPX's x64MsrExit: every RDMSR/WRMSR exits (the VMM emulates it and advances RIP).
    processor.cpu.msrHandler = this.properties.extendedVmExits.x64MsrExit === true ? (msr, write) => processor.msrExit(msr, write) : null;
    const results = this.properties.cpuidResultList;
    const exits = this.properties.extendedVmExits.x64CpuidExit === true ? this.properties.cpuidExitList : [];
    if (results.length === 0 && exits.length === 0) {
      processor.cpu.cpuidHandler = null;
      return;
    }
    // Listed leaves are overridden; the others keep the processor's own answer, as in WHPX.
    processor.cpu.cpuidHandler = (leaf: number) => {
      const result = results.find((entry) => entry.function === leaf);
      const values = result ? [result.eax, result.ebx, result.ecx, result.edx] : Array.from(defaultCpuid(leaf));
      if (exits.includes(leaf)) processor.cpuidExit(values);
      return values;
    };
  }
}

function cpuAccess(flags: number): number {
  let access = 0;
  if (flags & WhvMapGpaRangeFlags.read) access |= MemoryAccess.Read;
  if (flags & WhvMapGpaRangeFlags.write) access |= MemoryAccess.Write;
  if (flags & WhvMapGpaRangeFlags.execute) access |= MemoryAccess.Execute;
  return access;
}

/**
 * Maps a range into a CPU. Clean pages of a dirty-tracked range are mapped without write
 * access, so the first guest write to each reaches the bus and is recorded.
 */
function mapInto(cpu: Cpu, mapping: GpaMapping, dirtyPages: Uint8Array | null = null): void {
  const access = cpuAccess(mapping.flags);
  cpu.mapMemory(mapping.start, mapping.source, access);
  if (dirtyPages !== null && mapping.flags & WhvMapGpaRangeFlags.trackDirtyPages && access & MemoryAccess.Write) {
    for (let page = mapping.start / 4096; page < (mapping.start + mapping.size) / 4096; page++) {
      if ((dirtyPages[page >> 3]! & (1 << (page & 7))) === 0) cpu.protectMemory(page * 4096, 4096, access & ~MemoryAccess.Write);
    }
  }
}

function clearDirty(dirty: Uint8Array, start: number, size: number): void {
  for (let page = start / 4096; page < (start + size) / 4096; page++) dirty[page >> 3] = dirty[page >> 3]! & ~(1 << (page & 7));
}

/** The common part of every exit context. */
export function exitVpContext(processor: VirtualProcessor, instructionLength: number, rip: number = processor.cpu.eip): WhvVpExitContext {
  const cpu = processor.cpu;
  return {
    executionState: {
      cpl: cpu.cpl,
      cr0Pe: (cpu.cr0 & 1) !== 0,
      cr0Am: (cpu.cr0 & (1 << 18)) !== 0,
      eferLma: false,
      debugActive: (cpu.dr[7]! & 0xff) !== 0,
      interruptionPending: cpu.pendingInterrupt >= 0 || processor.state.eventVector >= 0,
      interruptShadow: cpu.interruptShadow !== 0,
    },
    instructionLength: instructionLength & 0xf,
    cr8: 0,
    cs: segmentRegister(cpu, 1),
    rip: BigInt(rip >>> 0),
    rflags: BigInt(cpu.getFlags() >>> 0),
  };
}

/** Exception vectors WHPX can intercept: 0-0x13 except 2 (NMI), 9 and 0xF. */
const SUPPORTED_EXCEPTIONS = Object.values(WhvExceptionType).reduce((mask, vector) => mask | (1n << BigInt(vector)), 0n);
const EXCEPTION_NAMES = new Map<number, WhvExceptionType>(
  (Object.keys(WhvExceptionType) as WhvExceptionType[]).map((name) => [WhvExceptionType[name], name]),
);

/** Prefix bytes, to find the length of an INT3 / INTO / ICEBP that an exit left unexecuted. */
const PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);

/**
 * The cause of a #DB trap in DR6 terms (B0-B3, BS), from DR6 before and after it: the CPU
 * replaces B0-B3 with the breakpoints that hit and sets BS for a single-step.
 */
function trapCause(before: number, after: number): number {
  const hits = (after & 0xf) !== (before & 0xf) ? after & 0xf : 0;
  const step = (after & DR6_BS) !== 0 && ((before & DR6_BS) === 0 || hits === 0);
  const cause = hits | (step ? DR6_BS : 0);
  return cause !== 0 ? cause : after & PENDING_DEBUG_MASK;
}

/** DR7 slots that are data or I/O breakpoints (R/W ≠ 00): their #DB is a trap. */
function trapSlots(dr7: number): number {
  let slots = 0;
  for (let i = 0; i < 4; i++) if (((dr7 >>> (16 + i * 4)) & 3) !== 0) slots |= 1 << i;
  return slots;
}

/**
 * A WHPX-shaped accelerator: partitions, GPA mappings, virtual processors and runs that
 * return typed exits, executed by the vmmkit interpreter so it runs wherever JavaScript does.
 * Handle-first functions as in WinHvPlatform; failures throw {@link WhvError}.
 */
export class WhvPlatform {
  private readonly partitions = new WeakMap<WhvPartitionHandle, Partition>();

  /** WHvGetCapability: what this platform offers, including the shim's extensions. */
  getCapability<K extends keyof WhvCapabilityMap>(code: K): WhvCapabilityMap[K] {
    const capabilities: WhvCapabilityMap = {
      hypervisorPresent: true,
      extendedVmExits: { x64CpuidExit: true, x64MsrExit: true, exceptionExit: true },
      exceptionExitBitmap: SUPPORTED_EXCEPTIONS,
      simFeatures: { hostSingleStep: true, stickyCancel: true, instructionBudget: true, pendingEventExceptions: true, exclusiveRun: true, a20Gate: true },
    };
    if (!Object.hasOwn(capabilities, code)) throw new WhvError("unknownCapability", `unknown capability "${String(code)}"`);
    return capabilities[code];
  }

  createPartition(): WhvPartitionHandle {
    const partition = new Partition();
    this.partitions.set(partition.handle, partition);
    return partition.handle;
  }

  getPartitionProperty<K extends WhvPartitionPropertyCode>(handle: WhvPartitionHandle, code: K): WhvPartitionPropertyMap[K] {
    const partition = this.partition(handle);
    if (!Object.hasOwn(partition.properties, code)) throw new WhvError("unknownProperty", `unknown partition property "${String(code)}"`);
    return partition.properties[code];
  }

  setPartitionProperty<K extends WhvPartitionPropertyCode>(handle: WhvPartitionHandle, code: K, value: WhvPartitionPropertyMap[K]): void {
    const partition = this.partition(handle);
    if (!Object.hasOwn(partition.properties, code)) throw new WhvError("unknownProperty", `unknown partition property "${String(code)}"`);
    if ((code === "processorCount" || code === "processorFeatures") && partition.setUp) {
      throw new WhvError("invalidArg", `${code} can only be set before the partition is set up`);
    }
    if (code === "processorCount") {
      const count = value as number;
      if (!Number.isInteger(count) || count < 1 || count > MAX_PROCESSORS) {
        throw new WhvError("invalidArg", `processorCount must be 1-${MAX_PROCESSORS}, got ${String(value)}`);
      }
    }
    if (code === "processorFeatures" && (typeof value !== "bigint" || value < 0n || value > 0xffffffffffffffffn)) {
      throw new WhvError("invalidArg", `processorFeatures needs a 64-bit unsigned bigint, got ${String(value)}`);
    }
    if (code === "exceptionExitBitmap") {
      const bitmap = value as bigint;
      if (typeof bitmap !== "bigint" || bitmap < 0n || (bitmap & ~SUPPORTED_EXCEPTIONS) !== 0n) {
        throw new WhvError("invalidArg", `exceptionExitBitmap 0x${String(typeof bitmap === "bigint" ? bitmap.toString(16) : bitmap)} names vectors that cannot be intercepted (0-0x13 except 2, 9 and 0xF)`);
      }
      for (const [index, processor] of partition.processors) {
        // Inside an exclusive section the other processors are held and execute nothing.
        const held = partition.exclusiveOwner !== null && processor !== partition.exclusiveOwner;
        if (processor.running && !held) throw new WhvError("invalidArg", `the exception exit bitmap cannot change while processor ${index} is running`);
      }
    }
    partition.properties[code] = value;
    for (const processor of partition.processors.values()) partition.applyExitProperties(processor);
  }

  setupPartition(handle: WhvPartitionHandle): void {
    const partition = this.partition(handle);
    if (partition.setUp) throw new WhvError("invalidArg", "the partition is already set up");
    partition.setUp = true;
  }

  deletePartition(handle: WhvPartitionHandle): void {
    const partition = this.partition(handle);
    for (const processor of partition.processors.values()) processor.cancelPending = true;
    partition.deleted = true;
    partition.exclusiveOwner = null;
    partition.endExclusive();
    this.partitions.delete(handle);
  }

  /**
   * Maps `source` (kept by reference, not copied) at guest-physical `guestAddress`.
   * Address and size must be page multiples; a later mapping replaces earlier ones.
   */
  mapGpaRange(handle: WhvPartitionHandle, source: Uint8Array, guestAddress: bigint, sizeInBytes: bigint, flags: number): void {
    const partition = this.readyPartition(handle);
    const start = Number(guestAddress);
    const size = Number(sizeInBytes);
    if (start < 0 || start % 4096 !== 0 || size % 4096 !== 0 || size <= 0 || size > source.length || start + size > 2 ** 32) {
      throw new WhvError("invalidArg", `cannot map ${size} bytes at 0x${start.toString(16)}: page-aligned ranges below 4 GiB only`);
    }
    if ((flags & ~0xf) !== 0) throw new WhvError("invalidArg", `unknown map flags 0x${flags.toString(16)} (read 1, write 2, execute 4, trackDirtyPages 8)`);
    const mapping: GpaMapping = { start, size, source: source.subarray(0, size), flags };
    partition.forgetRange(start, start + size); // the new mapping replaces older ones page by page
    partition.mappings.push(mapping);
    if (flags & WhvMapGpaRangeFlags.trackDirtyPages) {
      partition.dirtyPages ??= new Uint8Array(2 ** 20 / 8);
      clearDirty(partition.dirtyPages, start, size); // a new mapping starts clean
    }
    for (const processor of partition.processors.values()) mapInto(processor.cpu, mapping, partition.dirtyPages);
  }

  /**
   * Shim extension: changes the access flags of mapped pages in place (no remap), as pgm's
   * protection changes need; every processor's TLB follows. Every page must be mapped.
   */
  protectGpaRange(handle: WhvPartitionHandle, guestAddress: bigint, sizeInBytes: bigint, flags: number): void {
    const partition = this.readyPartition(handle);
    const start = Number(guestAddress);
    const size = Number(sizeInBytes);
    if (start < 0 || start % 4096 !== 0 || size % 4096 !== 0 || size <= 0 || start + size > 2 ** 32 || (flags & ~0xf) !== 0) {
      throw new WhvError("invalidArg", `cannot protect ${size} bytes at 0x${start.toString(16)} with flags 0x${flags.toString(16)}: page-aligned ranges below 4 GiB, flags read/write/execute/trackDirtyPages`);
    }
    if (partition.mappedBytes(start, start + size) !== size) {
      throw new WhvError("gpaRangeNotFound", `${size} bytes at 0x${start.toString(16)} are not all mapped`);
    }
    const pieces: GpaMapping[] = [];
    for (const mapping of partition.mappings) {
      const from = Math.max(start, mapping.start);
      const to = Math.min(start + size, mapping.start + mapping.size);
      if (from < to) pieces.push({ start: from, size: to - from, source: mapping.source.subarray(from - mapping.start, to - mapping.start), flags });
    }
    partition.forgetRange(start, start + size);
    partition.mappings.push(...pieces);
    if (flags & WhvMapGpaRangeFlags.trackDirtyPages) partition.dirtyPages ??= new Uint8Array(2 ** 20 / 8);
    for (const processor of partition.processors.values()) {
      processor.cpu.protectMemory(start, size, cpuAccess(flags));
      if (flags & WhvMapGpaRangeFlags.trackDirtyPages) for (const piece of pieces) mapInto(processor.cpu, piece, partition.dirtyPages);
    }
  }

  /**
   * WHvQueryGpaRangeDirtyBitmap: one bit per page of the range (bit n of word n / 64), set for
   * pages the guest wrote since they were mapped or last queried; the query resets them.
   */
  queryGpaRangeDirtyBitmap(handle: WhvPartitionHandle, guestAddress: bigint, sizeInBytes: bigint): BigUint64Array {
    const partition = this.readyPartition(handle);
    const start = Number(guestAddress);
    const size = Number(sizeInBytes);
    if (start < 0 || start % 4096 !== 0 || size % 4096 !== 0 || size <= 0 || start + size > 2 ** 32) {
      throw new WhvError("invalidArg", `cannot query ${size} bytes at 0x${start.toString(16)}: page-aligned ranges below 4 GiB only`);
    }
    const pages = size / 4096;
    const bitmap = new BigUint64Array(Math.ceil(pages / 64));
    const dirty = partition.dirtyPages;
    for (let index = 0; index < pages; index++) {
      const page = start / 4096 + index;
      const mapping = partition.mappingAt(page * 4096);
      if (mapping === undefined || (mapping.flags & WhvMapGpaRangeFlags.trackDirtyPages) === 0) {
        throw new WhvError("gpaRangeNotFound", `page 0x${(page * 4096).toString(16)} is not mapped with trackDirtyPages`);
      }
      if (dirty !== null && (dirty[page >> 3]! & (1 << (page & 7))) !== 0) bitmap[index >> 6] = bitmap[index >> 6]! | (1n << BigInt(index & 63));
    }
    if (dirty !== null) {
      clearDirty(dirty, start, size);
      for (const mapping of partition.mappings) {
        if (!(mapping.flags & WhvMapGpaRangeFlags.trackDirtyPages) || !(mapping.flags & WhvMapGpaRangeFlags.write)) continue;
        const from = Math.max(start, mapping.start);
        const to = Math.min(start + size, mapping.start + mapping.size);
        if (from >= to) continue;
        // Write-protect the now clean pages again, so the next write is seen.
        for (const processor of partition.processors.values()) processor.cpu.protectMemory(from, to - from, cpuAccess(mapping.flags) & ~MemoryAccess.Write);
      }
    }
    return bitmap;
  }

  /** Unmaps page-aligned `[guestAddress, guestAddress + sizeInBytes)`; every page of it must be mapped. */
  unmapGpaRange(handle: WhvPartitionHandle, guestAddress: bigint, sizeInBytes: bigint): void {
    const partition = this.readyPartition(handle);
    const start = Number(guestAddress);
    const size = Number(sizeInBytes);
    if (start < 0 || start % 4096 !== 0 || size % 4096 !== 0 || size <= 0 || start + size > 2 ** 32) {
      throw new WhvError("invalidArg", `cannot unmap ${size} bytes at 0x${start.toString(16)}: page-aligned ranges below 4 GiB only`);
    }
    if (partition.mappedBytes(start, start + size) !== size) {
      throw new WhvError("gpaRangeNotFound", `${size} bytes at 0x${start.toString(16)} are not all mapped`);
    }
    partition.forgetRange(start, start + size);
    for (const processor of partition.processors.values()) processor.cpu.unmapMemory(start, size);
  }

  createVirtualProcessor(handle: WhvPartitionHandle, vpIndex: number): void {
    const partition = this.readyPartition(handle);
    if (!Number.isInteger(vpIndex) || vpIndex < 0 || vpIndex >= partition.properties.processorCount) {
      throw new WhvError("invalidArg", `processor index ${vpIndex} is outside 0-${partition.properties.processorCount - 1}`);
    }
    if (partition.processors.has(vpIndex)) throw new WhvError("vpAlreadyExists", `processor ${vpIndex} already exists`);
    const processor = new VirtualProcessor(partition);
    partition.configure(processor);
    partition.processors.set(vpIndex, processor);
  }

  deleteVirtualProcessor(handle: WhvPartitionHandle, vpIndex: number): void {
    const partition = this.readyPartition(handle);
    if (!partition.processors.delete(vpIndex)) throw new WhvError("vpDoesNotExist", `processor ${vpIndex} does not exist`);
  }

  /**
   * Shim extension: gates address line 20 of a virtual processor, as a PC chipset's A20 gate
   * (port 0x92, the 8042) does. While disabled, bit 20 of every physical address the
   * processor uses is 0, so addresses wrap at 1 MiB as on an 8086. A new processor starts
   * enabled (WHPX has no A20: its processors always see all address lines). Allowed while
   * the processor runs (between slices); cached translations follow at once.
   */
  setVirtualProcessorA20(handle: WhvPartitionHandle, vpIndex: number, enabled: boolean): void {
    const processor = this.processor(handle, vpIndex);
    if (typeof enabled !== "boolean") throw new WhvError("invalidArg", `the A20 state of processor ${vpIndex} must be true or false, got ${String(enabled)}`);
    processor.cpu.setA20(enabled);
  }

  /**
   * WHvTranslateGva: a guest-virtual address of `vpIndex` to a guest-physical one through its
   * paging structures (read from the mapped RAM; two-level with PSE, or PAE with NX), checking
   * the access `flags` asks about (WhvTranslateGvaFlags). Accessed and dirty bits are left
   * alone and nothing is cached.
   */
  translateGva(handle: WhvPartitionHandle, vpIndex: number, gva: bigint, flags: number): WhvTranslateGvaResult {
    const processor = this.processor(handle, vpIndex);
    if (typeof gva !== "bigint" || gva < 0n || gva > 0xffffffffn) throw new WhvError("invalidArg", `GVA ${String(gva)} is not a 32-bit address`);
    if (!Number.isInteger(flags) || (flags & ~0xf) !== 0) throw new WhvError("invalidArg", `translate flags 0x${Number(flags).toString(16)} are not WhvTranslateGvaFlags`);
    const cpu = processor.cpu;
    const partition = processor.partition;
    return translateGva(
      {
        cr0: cpu.cr0,
        cr3: cpu.cr3,
        cr4: cpu.cr4,
        efer: cpu.efer,
        cpl: cpu.cpl,
        readDword: (gpa) => {
          const mapping = partition.mappingAt(gpa);
          if (mapping === undefined || gpa + 4 > mapping.start + mapping.size) return null;
          const at = gpa - mapping.start;
          const bytes = mapping.source;
          return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
        },
      },
      Number(gva),
      flags,
    );
  }

  /** Shim extension: whether address line 20 of a virtual processor is enabled. */
  getVirtualProcessorA20(handle: WhvPartitionHandle, vpIndex: number): boolean {
    return this.processor(handle, vpIndex).cpu.a20Enabled;
  }

  /** Reads registers by WHPX name; one unknown name fails the whole batch. */
  getVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(
    handle: WhvPartitionHandle,
    vpIndex: number,
    names: N,
  ): WhvRegisterValues<N> {
    const processor = this.processor(handle, vpIndex);
    checkNames(names);
    return names.map((name) => readRegister(processor.state, name)) as WhvRegisterValues<N>;
  }

  /** Writes registers by WHPX name; the batch is validated as a whole before anything changes. */
  setVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(
    handle: WhvPartitionHandle,
    vpIndex: number,
    names: N,
    values: WhvRegisterValues<N>,
  ): void {
    const processor = this.processor(handle, vpIndex);
    if (processor.running) throw new WhvError("invalidVpState", `processor ${vpIndex} is running`);
    checkNames(names);
    if (values.length !== names.length) throw new WhvError("invalidArg", `${names.length} register names but ${values.length} values`);
    names.forEach((name, i) => validateRegisterValue(name, values[i]!));
    names.forEach((name, i) => writeRegister(processor.state, name, values[i]!));
  }

  /**
   * Runs a virtual processor until something needs the VMM, yielding to the event loop
   * every {@link SLICE_INSTRUCTIONS} instructions so cancel and other processors can run.
   */
  async runVirtualProcessor(handle: WhvPartitionHandle, vpIndex: number, options: WhvSimRunOptions = {}): Promise<WhvRunVpExitContext> {
    const processor = this.processor(handle, vpIndex);
    if (processor.running) throw new WhvError("invalidVpState", `processor ${vpIndex} is already running`);
    const partition = processor.partition;
    const cpu = processor.cpu;
    let budget = options.maxInstructions ?? Number.POSITIVE_INFINITY;
    if (options.singleStep !== true) processor.stepEmulationRip = -1;
    processor.running = true;
    processor.dr6AtRunStart = cpu.dr[6]!;
    try {
      if (!stateIsValid(cpu)) return { exitReason: "invalidVpRegisterValue", vpContext: exitVpContext(processor, 0) };
      for (;;) {
        if (processor.cancelPending) {
          processor.cancelPending = false;
          return { exitReason: "canceled", vpContext: exitVpContext(processor, 0), cancelReason: "user" };
        }
        if (partition.exclusiveOwner !== null && partition.exclusiveOwner !== processor) {
          processor.held = true;
          await new Promise<void>((resolve) => {
            processor.releaseHold = resolve;
            void partition.exclusiveEnded.then(resolve);
          });
          processor.releaseHold = null;
          processor.held = false;
          continue;
        }
        if (budget <= 0) return { exitReason: "canceled", vpContext: exitVpContext(processor, 0), cancelReason: "instructionBudget" };
        const event = this.deliverQueuedEvents(processor);
        if (event !== null && event !== true) return event;
        if (options.singleStep === true) return this.hostStep(processor, options, event === true);
        const before = cpu.instructionsRetired;
        const exit = cpu.run(Math.min(SLICE_INSTRUCTIONS, budget));
        budget -= cpu.instructionsRetired - before;
        switch (exit) {
          case RunExit.Budget:
          case RunExit.Stop:
            await yieldToEventLoop();
            continue;
          case RunExit.Exception:
            return this.exceptionExit(processor);
          default:
            return this.otherExit(processor, exit);
        }
      }
    } finally {
      processor.running = false;
    }
  }

  /**
   * Makes a run return a canceled exit: at once if it is waiting between slices, otherwise
   * (sticky) at the start of the next run.
   */
  cancelRunVirtualProcessor(handle: WhvPartitionHandle, vpIndex: number): void {
    const processor = this.processor(handle, vpIndex);
    processor.cancelPending = true;
    processor.releaseHold?.();
  }

  /**
   * Shim extension: starts an exclusive section for `vpIndex`. Until
   * {@link endExclusiveSection}, no other processor of the partition executes an
   * instruction: runs in progress hold at their next slice boundary, new runs before their
   * first; a cancel still ends them. The exception exit bitmap may change meanwhile.
   */
  beginExclusiveSection(handle: WhvPartitionHandle, vpIndex: number): void {
    const processor = this.processor(handle, vpIndex);
    const partition = processor.partition;
    if (partition.exclusiveOwner !== null) {
      throw new WhvError("invalidVpState", `an exclusive section is already open (for processor ${this.indexOf(partition, partition.exclusiveOwner)})`);
    }
    partition.exclusiveOwner = processor;
    partition.exclusiveEnded = new Promise<void>((resolve) => (partition.endExclusive = resolve));
  }

  /** Shim extension: ends the exclusive section `vpIndex` opened; held processors go on. */
  endExclusiveSection(handle: WhvPartitionHandle, vpIndex: number): void {
    const processor = this.processor(handle, vpIndex);
    const partition = processor.partition;
    if (partition.exclusiveOwner !== processor) throw new WhvError("invalidArg", `processor ${vpIndex} has no exclusive section open`);
    partition.exclusiveOwner = null;
    partition.endExclusive();
  }

  /** Shim extension: counters of a processor. */
  getVirtualProcessorCounters(handle: WhvPartitionHandle, vpIndex: number): WhvSimProcessorCounters {
    return { instructionsRetired: this.processor(handle, vpIndex).cpu.instructionsRetired };
  }

  // ---- events ------------------------------------------------------------------------------

  /**
   * Delivers what the VMM queued before the processor goes on: an exception (pendingEvent /
   * pendingInterruption type 3), else a #DB trap recorded in x64PendingDebugException. A trap
   * an exit has not reported yet is reported first when #DB is intercepted. Returns true when
   * an event was delivered, an exit, or null when nothing was queued.
   */
  private deliverQueuedEvents(processor: VirtualProcessor): WhvRunVpExitContext | true | null {
    const state = processor.state;
    const cpu = processor.cpu;
    if (state.eventVector >= 0) {
      const vector = state.eventVector;
      if (vector === 14) cpu.cr2 = Number(state.eventParameter & 0xffffffffn) | 0;
      state.eventVector = -1;
      return this.inject(processor, vector, state.eventErrorCode);
    }
    if (state.pendingDebugBits === 0) return null;
    const bits = state.pendingDebugBits;
    if (!state.pendingDebugReported && processor.partition.intercepts(1)) {
      state.pendingDebugReported = true;
      return this.debugExit(processor, bits, false);
    }
    state.pendingDebugBits = 0;
    state.pendingDebugReported = false;
    const dr6 = cpu.dr[6]!;
    cpu.dr[6] = ((bits & 0xf) !== 0 ? (dr6 & ~0xf) | (bits & 0xf) : dr6) | (bits & DR6_BS);
    return this.inject(processor, 1, -1);
  }

  /**
   * Delivers exception `vector` to the guest with the return address at RIP, whatever the
   * bitmap. The CPU offers no injection call, so the processor's next instruction fetch is
   * forced through the bus (its page is made non-executable for one run(1)) and the bus
   * callback raises the exception there, before any byte is executed.
   */
  private inject(processor: VirtualProcessor, vector: number, errorCode: number): WhvRunVpExitContext | true {
    const cpu = processor.cpu;
    const bitmap = cpu.exceptionExitBitmap;
    const pending = cpu.pendingInterrupt;
    const window = cpu.interruptWindowExit;
    cpu.exceptionExitBitmap = 0;
    cpu.pendingInterrupt = -1;
    cpu.interruptWindowExit = false;
    cpu.halted = false;
    const physical = cpu.translateLinear((cpu.segBase[1]! + cpu.eip) | 0);
    let page = -1;
    let access = 0;
    if (physical >= 0) {
      access = cpu.mappedAccess(physical);
      if (access & MemoryAccess.Execute) {
        page = physical - (physical % 4096);
        cpu.protectMemory(page, 4096, access & ~MemoryAccess.Execute);
      }
    }
    processor.injecting = true;
    processor.injectVector = vector;
    processor.injectErrorCode = errorCode;
    let exit: RunExit;
    try {
      exit = cpu.run(1);
    } finally {
      if (page >= 0) cpu.protectMemory(page, 4096, access);
      cpu.exceptionExitBitmap = bitmap;
      if (cpu.pendingInterrupt < 0) cpu.pendingInterrupt = pending;
      cpu.interruptWindowExit = window;
    }
    if (processor.injecting) {
      // Something faulted before the fetch (a code page not present): deliver at the next run.
      processor.injecting = false;
      processor.state.eventVector = vector;
      processor.state.eventErrorCode = errorCode;
    }
    if (exit === RunExit.Shutdown) return this.otherExit(processor, exit);
    return true;
  }

  // ---- host single-step ---------------------------------------------------------------------

  /**
   * One instruction (or one REP iteration, or one event) with every exception intercepted, so
   * nothing runs past it; the debugger's stepping never shows in RFLAGS. A fault the partition
   * does not intercept is delivered and the step stops at the handler's first instruction.
   */
  private hostStep(processor: VirtualProcessor, options: WhvSimRunOptions, eventDelivered: boolean): WhvRunVpExitContext {
    const cpu = processor.cpu;
    if (eventDelivered) return this.stepExit(processor);
    const emulated = processor.stepEmulationRip;
    processor.stepEmulationRip = -1;
    if (emulated >= 0 && emulated !== cpu.eip) return this.stepExit(processor); // the emulator completed the step
    const suppress = options.suppressInterrupts !== false;
    if (!suppress && cpu.pendingInterrupt >= 0 && cpu.interruptsDeliverable && !cpu.interruptWindowExit) {
      cpu.run(0); // delivers the interrupt and stops before the handler's first instruction
      return this.stepExit(processor);
    }
    if (cpu.halted) return this.stepExit(processor); // nothing to execute while interrupts are held
    const bitmap = cpu.exceptionExitBitmap;
    const pending = cpu.pendingInterrupt;
    const nmi = cpu.nmiPending;
    const window = cpu.interruptWindowExit;
    const watching = cpu.watchingData;
    const dr6 = cpu.dr[6]!;
    const retired = cpu.instructionsRetired;
    cpu.exceptionExitBitmap = -1;
    cpu.watchingData = true; // a REP string instruction gives way after each iteration
    if (suppress) {
      cpu.pendingInterrupt = -1;
      cpu.nmiPending = false; // NMIs are held too (spec D.2 #22)
      cpu.interruptWindowExit = false;
    }
    let exit: RunExit;
    try {
      exit = cpu.run(1);
    } finally {
      cpu.exceptionExitBitmap = bitmap;
      cpu.watchingData = watching;
      if (suppress) {
        if (cpu.pendingInterrupt < 0) cpu.pendingInterrupt = pending;
        cpu.nmiPending ||= nmi;
        cpu.interruptWindowExit = window;
      }
    }
    switch (exit) {
      case RunExit.Budget:
      case RunExit.Halt:
      case RunExit.Stop:
        return this.stepExit(processor);
      case RunExit.Intercept:
        processor.stepEmulationRip = cpu.eip;
        return this.otherExit(processor, exit);
      case RunExit.Exception:
        break;
      default:
        return this.otherExit(processor, exit);
    }
    const vector = cpu.exitVector;
    const software = cpu.exitSoftwareException;
    if (vector === 1 && !software && cpu.instructionsRetired !== retired) {
      // The guest's own trap (its TF, a data breakpoint) after the stepped instruction: it
      // stays pending for the guest, delivered by the next run.
      processor.state.pendingDebugBits |= trapCause(dr6, cpu.dr[6]!);
      processor.state.pendingDebugReported = true;
      return this.stepExit(processor);
    }
    if (processor.partition.intercepts(vector)) return this.exceptionExit(processor);
    if (software) {
      // INT3 / INTO / ICEBP stopped at the instruction: the guest's frame points past it.
      const bytes = cpu.peekInstructionBytes(cpu.eip, 15);
      let length = 1;
      while (length < bytes.length && PREFIXES.has(bytes[length - 1]!)) length++;
      cpu.eip = (cpu.eip + length) | 0;
      if (vector === 1) cpu.dr[6] = cpu.dr[6]! & ~PENDING_DEBUG_MASK;
    }
    const delivered = this.inject(processor, vector, cpu.exitErrorCode);
    return delivered === true ? this.stepExit(processor) : delivered;
  }

  /** The exit that ends a host single-step: #DB-shaped, with BS and the sim marker. */
  private stepExit(processor: VirtualProcessor): WhvRunVpExitContext {
    const exit = this.debugExit(processor, DR6_BS, false);
    if (exit.exitReason === "exception") exit.vpException.sim = { hostSingleStep: true };
    return exit;
  }

  private debugExit(processor: VirtualProcessor, cause: number, software: boolean): WhvRunVpExitContext {
    const cpu = processor.cpu;
    const bytes = cpu.peekInstructionBytes(cpu.eip, 16);
    return {
      exitReason: "exception",
      vpContext: exitVpContext(processor, 0),
      vpException: {
        instructionByteCount: bytes.length,
        instructionBytes: bytes,
        exceptionInfo: { errorCodeValid: false, softwareException: software },
        exceptionType: "debugTrapOrFault",
        errorCode: 0,
        exceptionParameter: BigInt(cause),
      },
    };
  }

  // ---- exits ---------------------------------------------------------------------------------

  private exceptionExit(processor: VirtualProcessor): WhvRunVpExitContext {
    const cpu = processor.cpu;
    const vector = cpu.exitVector;
    if (vector === 1 && !cpu.exitSoftwareException) {
      const dr6 = cpu.dr[6]!;
      const cause = trapCause(processor.dr6AtRunStart, dr6);
      if ((cause & DR6_BS) !== 0 || (cause & trapSlots(cpu.dr[7]!)) !== 0) {
        // A trap (TF, data or I/O breakpoint): recorded as pending (DR6 already shows it); the
        // next run delivers it to the guest unless the VMM clears it.
        processor.state.pendingDebugBits |= cause;
        processor.state.pendingDebugReported = true;
        return this.debugExit(processor, cause, false);
      }
    }
    const bytes = cpu.peekInstructionBytes(cpu.eip, 16);
    return {
      exitReason: "exception",
      vpContext: exitVpContext(processor, 0),
      vpException: {
        instructionByteCount: bytes.length,
        instructionBytes: bytes,
        exceptionInfo: { errorCodeValid: cpu.exitErrorCode >= 0, softwareException: cpu.exitSoftwareException },
        exceptionType: EXCEPTION_NAMES.get(vector) ?? "generalProtectionFault",
        errorCode: cpu.exitErrorCode >= 0 ? cpu.exitErrorCode : 0,
        exceptionParameter: vector === 14 ? BigInt(cpu.cr2 >>> 0) : vector === 1 ? BigInt(cpu.dr[6]! & PENDING_DEBUG_MASK) : 0n,
      },
    };
  }

  private otherExit(processor: VirtualProcessor, exit: RunExit): WhvRunVpExitContext {
    const cpu = processor.cpu;
    switch (exit) {
      case RunExit.Halt:
        return { exitReason: "x64Halt", vpContext: exitVpContext(processor, 0) };
      case RunExit.Intercept: {
        const pending = processor.pendingExit!;
        processor.pendingExit = null;
        return pending;
      }
      case RunExit.Shutdown:
        return { exitReason: "unrecoverableException", vpContext: exitVpContext(processor, 0) };
      case RunExit.InterruptWindow:
        cpu.interruptWindowExit = false;
        return { exitReason: "x64InterruptWindow", vpContext: exitVpContext(processor, 0), interruptWindow: { deliverableType: "interrupt" } };
      default:
        return {
          exitReason: "unsupportedFeature",
          vpContext: exitVpContext(processor, 0),
          unsupportedFeature: { featureCode: "intercept", featureParameter: 0n, description: cpu.unsupportedReason },
        };
    }
  }

  private indexOf(partition: Partition, processor: VirtualProcessor): number {
    for (const [index, candidate] of partition.processors) if (candidate === processor) return index;
    return -1;
  }

  private partition(handle: WhvPartitionHandle): Partition {
    const partition = this.partitions.get(handle);
    if (!partition) throw new WhvError("invalidArg", "not a partition handle (deleted, or from another platform)");
    return partition;
  }

  private readyPartition(handle: WhvPartitionHandle): Partition {
    const partition = this.partition(handle);
    if (!partition.setUp) throw new WhvError("invalidArg", "the partition is not set up yet (call setupPartition first)");
    return partition;
  }

  private processor(handle: WhvPartitionHandle, vpIndex: number): VirtualProcessor {
    const processor = this.readyPartition(handle).processors.get(vpIndex);
    if (!processor) throw new WhvError("vpDoesNotExist", `processor ${vpIndex} does not exist`);
    return processor;
  }
}

/** Register state the processor refuses to run (VT-x's guest-state checks, for what exists here). */
function stateIsValid(cpu: Cpu): boolean {
  const cr0 = cpu.cr0;
  if (cr0 & CR0_PG && !(cr0 & 1)) return false; // paging without protected mode
  if (cr0 & (1 << 29) && !(cr0 & (1 << 30))) return false; // NW without CD
  if (cr0 & CR0_PG && cpu.cr4 & 0x20 && !cpu.pdptesValid(cpu.cr3)) return false; // PAE with reserved PDPTE bits
  return true;
}

function checkNames(names: readonly string[]): void {
  for (const name of names) {
    if (!Object.hasOwn(WhvRegisterName, name)) throw new WhvError("invalidVpRegisterName", `unknown or unsupported register name "${name}"`);
  }
}
