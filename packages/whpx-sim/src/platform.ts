import { Cpu, MemoryAccess, RunExit, defaultCpuid, type AccessSize, type CpuBus } from "@vmmkit/cpu";
import { WhvError } from "./errors.js";
import { readRegister, validateRegisterValue, writeRegister } from "./register-access.js";
import {
  WhvExceptionType,
  WhvMapGpaRangeFlags,
  WhvRegisterName,
  type WhvPartitionHandle,
  type WhvPartitionPropertyCode,
  type WhvPartitionPropertyMap,
  type WhvRegisterValues,
  type WhvRunVpExitContext,
  type WhvSimProcessorCounters,
  type WhvSimRunOptions,
  type WhvVpExitContext,
} from "./types.js";
import { segmentRegister } from "./register-access.js";
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
  running = false;
  cancelPending = false;
  /** The exit a bus callback recorded before intercepting the instruction. */
  pendingExit: WhvRunVpExitContext | null = null;

  constructor(readonly partition: Partition) {
    this.cpu = new Cpu({ bus: this });
  }

  readPhysical(address: number, size: AccessSize): number {
    return this.memoryExit(address, size, "read");
  }

  writePhysical(address: number): void {
    this.memoryExit(address, 0, "write");
  }

  readPort(port: number, size: AccessSize): number {
    return this.ioExit(port, size, false);
  }

  writePort(port: number, _value: number, size: AccessSize): void {
    this.ioExit(port, size, true);
  }

  private memoryExit(address: number, _size: number, accessType: "read" | "write"): never {
    const cpu = this.cpu;
    const mapped = this.partition.isMapped(address);
    const vpContext = exitVpContext(cpu, cpu.eip - cpu.instructionStart, cpu.instructionStart);
    const bytes = cpu.peekInstructionBytes(cpu.instructionStart, 16);
    this.pendingExit = {
      exitReason: "memoryAccess",
      vpContext,
      memoryAccess: {
        instructionByteCount: bytes.length,
        instructionBytes: bytes,
        accessInfo: { accessType, gpaUnmapped: !mapped, gvaValid: false },
        gpa: BigInt(address),
        gva: 0n,
      },
    };
    return cpu.interceptInstruction();
  }

  private ioExit(port: number, size: AccessSize, isWrite: boolean): never {
    const cpu = this.cpu;
    const opcode = cpu.opcode;
    const stringOp = opcode >= 0x6c && opcode <= 0x6f;
    const vpContext = exitVpContext(cpu, cpu.eip - cpu.instructionStart, cpu.instructionStart);
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

class Partition {
  readonly handle: WhvPartitionHandle = Object.freeze({}) as WhvPartitionHandle;
  setUp = false;
  deleted = false;
  readonly properties: WhvPartitionPropertyMap = {
    extendedVmExits: {},
    exceptionExitBitmap: 0n,
    processorCount: 1,
    cpuidExitList: [],
    cpuidResultList: [],
  };
  readonly processors = new Map<number, VirtualProcessor>();
  readonly mappings: GpaMapping[] = [];

  isMapped(address: number): boolean {
    return this.mappings.some((mapping) => address >= mapping.start && address < mapping.start + mapping.size);
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
    for (const mapping of this.mappings) mapInto(processor.cpu, mapping);
    this.applyExitProperties(processor);
  }

  applyExitProperties(processor: VirtualProcessor): void {
    const exceptionsEnabled = this.properties.extendedVmExits.exceptionExit === true;
    processor.cpu.exceptionExitBitmap = exceptionsEnabled ? Number(this.properties.exceptionExitBitmap & 0xffffffffn) | 0 : 0;
    const results = this.properties.cpuidResultList;
    // Listed leaves are overridden; the others keep the processor's own answer, as in WHPX.
    processor.cpu.cpuidHandler =
      results.length === 0
        ? null
        : (leaf: number) => {
            const result = results.find((entry) => entry.function === leaf);
            return result ? [result.eax, result.ebx, result.ecx, result.edx] : defaultCpuid(leaf);
          };
  }
}

function mapInto(cpu: Cpu, mapping: GpaMapping): void {
  let access = 0;
  if (mapping.flags & WhvMapGpaRangeFlags.read) access |= MemoryAccess.Read;
  if (mapping.flags & WhvMapGpaRangeFlags.write) access |= MemoryAccess.Write;
  if (mapping.flags & WhvMapGpaRangeFlags.execute) access |= MemoryAccess.Execute;
  cpu.mapMemory(mapping.start, mapping.source, access);
}

/** The common part of every exit context. */
export function exitVpContext(cpu: Cpu, instructionLength: number, rip: number = cpu.eip): WhvVpExitContext {
  return {
    executionState: {
      cpl: cpu.cpl,
      cr0Pe: (cpu.cr0 & 1) !== 0,
      cr0Am: (cpu.cr0 & (1 << 18)) !== 0,
      eferLma: false,
      debugActive: (cpu.dr[7]! & 0xff) !== 0,
      interruptionPending: cpu.pendingInterrupt >= 0,
      interruptShadow: cpu.interruptShadow !== 0,
    },
    instructionLength: instructionLength & 0xf,
    cr8: 0,
    cs: segmentRegister(cpu, 1),
    rip: BigInt(rip >>> 0),
    rflags: BigInt(cpu.getFlags() >>> 0),
  };
}

/**
 * A WHPX-shaped accelerator: partitions, GPA mappings, virtual processors and runs that
 * return typed exits, executed by the vmmkit interpreter so it runs wherever JavaScript does.
 * Handle-first functions as in WinHvPlatform; failures throw {@link WhvError}.
 */
export class WhvPlatform {
  private readonly partitions = new WeakMap<WhvPartitionHandle, Partition>();

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
    if (code === "processorCount") {
      if (partition.setUp) throw new WhvError("invalidArg", "processorCount can only be set before the partition is set up");
      const count = value as number;
      if (!Number.isInteger(count) || count < 1 || count > MAX_PROCESSORS) {
        throw new WhvError("invalidArg", `processorCount must be 1-${MAX_PROCESSORS}, got ${String(value)}`);
      }
    }
    if (code === "exceptionExitBitmap") {
      for (const processor of partition.processors.values()) {
        if (processor.running) throw new WhvError("invalidArg", "the exception exit bitmap cannot change while a processor is running");
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
    const mapping: GpaMapping = { start, size, source: source.subarray(0, size), flags };
    partition.forgetRange(start, start + size); // the new mapping replaces older ones page by page
    partition.mappings.push(mapping);
    for (const processor of partition.processors.values()) mapInto(processor.cpu, mapping);
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

  /** Reads registers by WHPX name; one unknown name fails the whole batch. */
  getVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(
    handle: WhvPartitionHandle,
    vpIndex: number,
    names: N,
  ): WhvRegisterValues<N> {
    const processor = this.processor(handle, vpIndex);
    checkNames(names);
    return names.map((name) => readRegister(processor.cpu, name)) as WhvRegisterValues<N>;
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
    names.forEach((name, i) => writeRegister(processor.cpu, name, values[i]!));
  }

  /**
   * Runs a virtual processor until something needs the VMM, yielding to the event loop
   * every {@link SLICE_INSTRUCTIONS} instructions so cancel and other processors can run.
   */
  async runVirtualProcessor(handle: WhvPartitionHandle, vpIndex: number, options: WhvSimRunOptions = {}): Promise<WhvRunVpExitContext> {
    const processor = this.processor(handle, vpIndex);
    if (processor.running) throw new WhvError("invalidVpState", `processor ${vpIndex} is already running`);
    const cpu = processor.cpu;
    let budget = options.maxInstructions ?? Number.POSITIVE_INFINITY;
    processor.running = true;
    try {
      for (;;) {
        if (processor.cancelPending) {
          processor.cancelPending = false;
          return { exitReason: "canceled", vpContext: exitVpContext(cpu, 0), cancelReason: "user" };
        }
        if (budget <= 0) return { exitReason: "canceled", vpContext: exitVpContext(cpu, 0), cancelReason: "instructionBudget" };
        const before = cpu.instructionsRetired;
        const exit = cpu.run(Math.min(SLICE_INSTRUCTIONS, budget));
        budget -= cpu.instructionsRetired - before;
        switch (exit) {
          case RunExit.Budget:
          case RunExit.Stop:
            await yieldToEventLoop();
            continue;
          case RunExit.Halt:
            return { exitReason: "x64Halt", vpContext: exitVpContext(cpu, 0) };
          case RunExit.Intercept: {
            const pending = processor.pendingExit!;
            processor.pendingExit = null;
            return pending;
          }
          case RunExit.Shutdown:
            return { exitReason: "unrecoverableException", vpContext: exitVpContext(cpu, 0) };
          case RunExit.Unsupported:
            return {
              exitReason: "unsupportedFeature",
              vpContext: exitVpContext(cpu, 0),
              unsupportedFeature: { featureCode: "intercept", featureParameter: 0n, description: cpu.unsupportedReason },
            };
          case RunExit.InterruptWindow:
            cpu.interruptWindowExit = false;
            return { exitReason: "x64InterruptWindow", vpContext: exitVpContext(cpu, 0), interruptWindow: { deliverableType: "interrupt" } };
          case RunExit.Exception:
            return this.exceptionExit(cpu);
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
    this.processor(handle, vpIndex).cancelPending = true;
  }

  /** Shim extension: counters of a processor. */
  getVirtualProcessorCounters(handle: WhvPartitionHandle, vpIndex: number): WhvSimProcessorCounters {
    return { instructionsRetired: this.processor(handle, vpIndex).cpu.instructionsRetired };
  }

  private exceptionExit(cpu: Cpu): WhvRunVpExitContext {
    const vector = cpu.exitVector;
    const bytes = cpu.peekInstructionBytes(cpu.eip, 16);
    const name = (Object.keys(WhvExceptionType) as WhvExceptionType[]).find((key) => WhvExceptionType[key] === vector) ?? "generalProtectionFault";
    const context = exitVpContext(cpu, 0);
    return {
      exitReason: "exception",
      vpContext: context,
      vpException: {
        instructionByteCount: bytes.length,
        instructionBytes: bytes,
        exceptionInfo: { errorCodeValid: cpu.exitErrorCode >= 0, softwareException: cpu.exitSoftwareException },
        exceptionType: name,
        errorCode: cpu.exitErrorCode >= 0 ? cpu.exitErrorCode : 0,
        exceptionParameter: vector === 14 ? BigInt(cpu.cr2 >>> 0) : vector === 1 ? BigInt(cpu.dr[6]! >>> 0) : 0n,
      },
    };
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

function checkNames(names: readonly string[]): void {
  for (const name of names) {
    if (!Object.hasOwn(WhvRegisterName, name)) throw new WhvError("invalidVpRegisterName", `unknown or unsupported register name "${name}"`);
  }
}
