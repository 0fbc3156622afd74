/**
 * Debugger control of a running machine (all-stop): parks every vCPU when one stops, holds
 * the machine until the debugger resumes it, single-steps one vCPU invisibly, turns #BP/#DB
 * exits into breakpoint stops through dbgf, and hands the guest its own INT3s. It is the
 * `GdbTarget` the protocol engine (@vmmkit/dbgf's GdbServer) drives, and the `DebuggerHost`
 * through which dbgf patches guest memory.
 */
import {
  Debugger,
  IoAccess,
  type DebuggerHost,
  type GdbRegisterName,
  type GdbResumeAction,
  type GdbStop,
  type GdbTarget,
} from "@vmmkit/dbgf";
import type { AccessSize, IoBreakpointChecker, PortAccessDirection, PortAccessPhase, PortSpace } from "@vmmkit/iom";
import { AccessOrigin, AccessResult, AccessType, HandlerKind, type HandlerTypeHandle, type PhysicalMemory } from "@vmmkit/pgm";
import { WhvTranslateGvaFlags, type WhvPartitionHandle, type WhvPlatform, type WhvRegisterName, type WhvRunVpExitContext } from "@vmmkit/whpx-sim";
import { hex } from "../cli-error.js";

const VECTOR_DEBUG = 1;
const VECTOR_BREAKPOINT = 3;
const EFLAGS_TF = 0x100;

/** What the composition root gives the debugger control. */
export interface DebugControlParts {
  readonly platform: WhvPlatform;
  readonly partition: WhvPartitionHandle;
  readonly memory: PhysicalMemory;
  readonly ports: PortSpace;
  readonly cpuCount: number;
  /** Wakes a vCPU that waits in HLT, so it notices a stop request. */
  readonly wake: (vcpu: number) => void;
  /** Ends the machine (gdb's `k`). */
  readonly kill: () => void;
  /** Machine-level monitor commands (VM state, reset…). */
  readonly monitor?: GdbTarget["monitor"];
  readonly monitorHelp?: readonly string[];
}

type StopListener = (stop: GdbStop) => void;

const GENERAL_REGISTERS: Partial<Record<GdbRegisterName, WhvRegisterName>> = {
  eax: "x64Rax",
  ecx: "x64Rcx",
  edx: "x64Rdx",
  ebx: "x64Rbx",
  esp: "x64Rsp",
  ebp: "x64Rbp",
  esi: "x64Rsi",
  edi: "x64Rdi",
  eip: "x64Rip",
  eflags: "x64Rflags",
  cr0: "x64Cr0",
  cr2: "x64Cr2",
  cr3: "x64Cr3",
  cr4: "x64Cr4",
  dr0: "x64Dr0",
  dr1: "x64Dr1",
  dr2: "x64Dr2",
  dr3: "x64Dr3",
  dr6: "x64Dr6",
  dr7: "x64Dr7",
};

const SEGMENT_REGISTERS: Partial<Record<GdbRegisterName, "x64Cs" | "x64Ss" | "x64Ds" | "x64Es" | "x64Fs" | "x64Gs">> = {
  cs: "x64Cs",
  ss: "x64Ss",
  ds: "x64Ds",
  es: "x64Es",
  fs: "x64Fs",
  gs: "x64Gs",
};

export class DebugControl implements GdbTarget {
  readonly debugger: Debugger;
  private readonly debuggerHost: DebuggerHost;
  /** The pgm handler type of MMIO breakpoints over RAM and ROM pages. */
  private readonly mmioHandlerType: HandlerTypeHandle;
  /** Armed MMIO breakpoint ranges: the pgm handlers placed for each, and those over device MMIO. */
  private readonly watched: WatchedRange[] = [];
  readonly cpuCount: number;
  private readonly baseMonitorHelp: readonly string[];
  /** Monitor commands added after construction (by the session that runs the machine). */
  private readonly extraMonitor = new Map<string, { help: string; run: (args: string, print: (text: string) => void) => Promise<void> | void }>();

  private listener: StopListener | null = null;
  /** The machine is held for the debugger: no vCPU enters the accelerator. */
  private stopped: boolean;
  /** vCPUs the last resume left stopped (vCont `t` or a step of another thread). */
  private readonly held: Uint8Array;
  private readonly stepping: Uint8Array;
  /** A step-over dbgf asked for (`executeOne`): run one instruction from the original bytes first. */
  private readonly stepOver: Array<{ physical: number; original: number } | null>;
  private readonly waiters: Array<(() => void) | null>;
  private readonly breakpointHit: Int32Array;
  private readonly inRun: Uint8Array;
  private quietWaiter: (() => void) | null = null;
  private interruptRequested = false;
  /** A stop is being collected: other vCPUs' stops in the same window join it. */
  private collecting = false;
  private readonly windowStops: GdbStop[] = [];
  private lastReportedCpu = -1;
  /** A vCPU running alone (the others parked), or -1. */
  private exclusive = -1;
  /** Stops that happened while another was being reported; reported at the next resume. */
  private readonly pendingStops: GdbStop[] = [];
  private ioCpu = 0;
  private exceptionBitmap = 0;

  constructor(
    private readonly parts: DebugControlParts,
    options: { waitForDebugger?: boolean } = {},
  ) {
    this.cpuCount = parts.cpuCount;
    this.baseMonitorHelp = parts.monitorHelp ?? [];
    this.stopped = options.waitForDebugger === true;
    this.held = new Uint8Array(parts.cpuCount);
    this.stepping = new Uint8Array(parts.cpuCount);
    this.inRun = new Uint8Array(parts.cpuCount);
    this.breakpointHit = new Int32Array(parts.cpuCount).fill(-1);
    this.stepOver = new Array<{ physical: number; original: number } | null>(parts.cpuCount).fill(null);
    this.waiters = new Array<(() => void) | null>(parts.cpuCount).fill(null);
    this.mmioHandlerType = parts.memory.registerHandlerType({
      kind: HandlerKind.All,
      description: "dbgf MMIO breakpoint",
      onAccess: (address, buffer, offset, size, type, origin, user) => this.onWatchedAccess(address, buffer, offset, size, type, origin, user as WatchedRange),
    });
    this.debuggerHost = this.host();
    this.debugger = new Debugger(this.debuggerHost, {});
    parts.platform.setPartitionProperty(parts.partition, "extendedVmExits", { exceptionExit: true });
  }

  /** True while a debugger is attached. */
  get attached(): boolean {
    return this.listener !== null;
  }

  /**
   * Attaches a debugger: stops the machine if it runs and resolves when every vCPU is parked.
   * `listener` then hears every stop until {@link detach}.
   */
  async attach(listener: StopListener): Promise<void> {
    this.listener = listener;
    if (this.stopped) return;
    await new Promise<void>((resolve) => {
      this.listener = () => resolve();
      this.interrupt();
    });
    this.listener = listener;
  }

  // ---- hooks for the execution loop -------------------------------------------------------

  /** Awaited before a vCPU enters the accelerator: parks it while the machine is held. */
  async beforeRun(vcpu: number): Promise<void> {
    while (this.stopped || this.held[vcpu] !== 0 || (this.exclusive >= 0 && this.exclusive !== vcpu)) {
      await new Promise<void>((resolve) => (this.waiters[vcpu] = resolve));
    }
    // Breakpoints set by other dbgf clients (not through gdb's resume) take effect here;
    // the bitmap may only change while no vCPU is inside the accelerator.
    if (this.inRun.every((flag) => flag === 0)) this.updateExceptionBitmap();
  }

  /**
   * Whether the next run of `vcpu` is a host single-step (a debugger step, or one
   * instruction from a breakpoint's original bytes): whpx-sim's `singleStep` retires one
   * instruction with interrupts held and without a trap flag the guest could see.
   */
  singleStep(vcpu: number): boolean {
    return this.stepping[vcpu] !== 0 || this.stepOver[vcpu] !== null;
  }

  isStepping(vcpu: number): boolean {
    return this.stepping[vcpu] !== 0;
  }

  /** True while `vcpu` executes one instruction from a breakpoint's original bytes. */
  isSteppingOver(vcpu: number): boolean {
    return this.stepOver[vcpu] !== null;
  }

  /** Brackets the accelerator run, so a stop can wait until no vCPU is inside it. */
  enterRun(vcpu: number): void {
    const over = this.stepOver[vcpu] ?? null;
    if (over !== null) {
      // While the original byte is back, no other vCPU may pass the breakpoint unseen
      // (spec/whpx.md A.8): they hold until the step is over.
      this.parts.platform.beginExclusiveSection(this.parts.partition, vcpu);
      this.parts.memory.loadBytes(over.physical, Uint8Array.of(over.original));
    }
    this.inRun[vcpu] = 1;
  }

  leaveRun(vcpu: number): void {
    this.inRun[vcpu] = 0;
    const over = this.stepOver[vcpu] ?? null;
    if (over !== null) {
      // The guarded instruction ran (or exited to be completed by the VMM): put the 0xCC back.
      this.stepOver[vcpu] = null;
      this.parts.memory.loadBytes(over.physical, Uint8Array.of(0xcc));
      this.parts.platform.endExclusiveSection(this.parts.partition, vcpu);
    }
    if (this.quietWaiter !== null && this.inRun.every((flag) => flag === 0)) {
      const resolve = this.quietWaiter;
      this.quietWaiter = null;
      resolve();
    }
  }

  /**
   * An exit the debugger may own. Resolves to "resume" once handled (after the debugger
   * resumed the machine, for a stop), or null when the exit is not the debugger's.
   */
  async onExit(exit: WhvRunVpExitContext, vcpu: number): Promise<"resume" | null> {
    if (exit.exitReason === "exception") {
      const vector = exit.vpException.exceptionType === "breakpointTrap" ? VECTOR_BREAKPOINT : exit.vpException.exceptionType === "debugTrapOrFault" ? VECTOR_DEBUG : -1;
      if (vector === VECTOR_BREAKPOINT) return this.onBreakpointException(exit, vcpu);
      if (vector === VECTOR_DEBUG) return this.onDebugException(exit, vcpu);
      return null;
    }
    if (exit.exitReason === "canceled" && exit.cancelReason === "user" && this.interruptRequested) {
      this.interruptRequested = false;
      await this.stopMachine({ reason: "interrupt", cpu: vcpu }, vcpu);
      return "resume";
    }
    if (exit.exitReason === "canceled" && exit.cancelReason === "user" && this.stopped) return "resume";
    return null;
  }

  /**
   * After the VMM handled an exit: report a finished single step or a port-I/O breakpoint
   * that fired during the access. Resolves when the machine may go on.
   */
  async afterExit(vcpu: number): Promise<void> {
    const handle = this.breakpointHit[vcpu]!;
    if (handle >= 0) {
      this.breakpointHit[vcpu] = -1;
      this.stepping[vcpu] = 0;
      await this.stopMachine({ reason: "breakpoint", cpu: vcpu, handle }, vcpu);
      return;
    }
    if (this.stepping[vcpu] !== 0) {
      this.stepping[vcpu] = 0;
      await this.stopMachine({ reason: "step", cpu: vcpu }, vcpu);
    }
  }

  /** A machine reset re-created the processors: load dbgf's debug registers into the new ones. */
  processorsRecreated(): void {
    if (!this.debugger.isHwArmed()) return;
    for (let cpu = 0; cpu < this.cpuCount; cpu++) this.debuggerHost.reloadDebugRegisters(cpu);
  }

  /** A breakpoint fired during the exit just handled (a port-I/O one) and is not reported yet. */
  hasBreakpointHit(vcpu: number): boolean {
    return this.breakpointHit[vcpu]! >= 0;
  }

  /** The machine ended (guest exit, power-off): a debugger hears it, nothing stays parked. */
  finished(status: number): void {
    this.listener?.({ reason: "exited", status });
    this.listener = null;
    this.releaseAll();
  }

  // ---- GdbTarget ----------------------------------------------------------------------------

  readRegister(cpu: number, name: GdbRegisterName): number {
    const { platform, partition } = this.parts;
    const segment = SEGMENT_REGISTERS[name];
    if (segment !== undefined) return platform.getVirtualProcessorRegisters(partition, cpu, [segment] as const)[0].selector;
    const general = GENERAL_REGISTERS[name]!;
    let value = Number(platform.getVirtualProcessorRegisters(partition, cpu, [general] as const)[0] as bigint) >>> 0;
    // A step's trap flag is the debugger's, not the guest's.
    if (name === "eflags" && this.stepping[cpu] !== 0) value &= ~EFLAGS_TF;
    return value;
  }

  readRegisters(cpu: number, names: readonly GdbRegisterName[]): number[] {
    const whpxNames = names.map((name) => SEGMENT_REGISTERS[name] ?? GENERAL_REGISTERS[name]!);
    const values = this.parts.platform.getVirtualProcessorRegisters(this.parts.partition, cpu, whpxNames);
    return names.map((name, i) => {
      const value = values[i]!;
      if (typeof value === "object") return (value as { selector: number }).selector;
      let number = Number(value as bigint) >>> 0;
      if (name === "eflags" && this.stepping[cpu] !== 0) number &= ~EFLAGS_TF;
      return number;
    });
  }

  writeRegister(cpu: number, name: GdbRegisterName, value: number): void {
    const { platform, partition } = this.parts;
    const segment = SEGMENT_REGISTERS[name];
    if (segment !== undefined) {
      // gdb edits the selector; a real-mode segment's base follows it, a protected-mode one is refused.
      const [current, cr0] = platform.getVirtualProcessorRegisters(partition, cpu, [segment, "x64Cr0"] as const);
      if ((Number(cr0) & 1) !== 0) throw new Error(`${name} can only be changed in real mode (loading a descriptor is the guest's job)`);
      const selector = value & 0xffff;
      platform.setVirtualProcessorRegisters(partition, cpu, [segment] as const, [{ ...current, selector, base: BigInt(selector * 16) }]);
      return;
    }
    const general = GENERAL_REGISTERS[name]!;
    platform.setVirtualProcessorRegisters(partition, cpu, [general] as const, [BigInt(value >>> 0)]);
  }

  readMemory(cpu: number, address: number, length: number): Uint8Array {
    return this.readLinear(cpu, address, length);
  }

  writeMemory(cpu: number, address: number, bytes: Uint8Array): void {
    // Translate every page first, so a write that cannot complete writes nothing.
    const pieces: Array<readonly [number, Uint8Array]> = [];
    let done = 0;
    while (done < bytes.length) {
      const linear = (address + done) >>> 0;
      const chunk = Math.min(bytes.length - done, 0x1000 - (linear & 0xfff));
      pieces.push([this.translate(cpu, linear), bytes.subarray(done, done + chunk)]);
      done += chunk;
    }
    for (const [physical, piece] of pieces) this.parts.memory.readBytes(physical, piece.length); // throws if not backed
    for (const [physical, piece] of pieces) this.parts.memory.loadBytes(physical, piece);
  }

  resume(actions: readonly GdbResumeAction[]): void {
    // A queued breakpoint stop whose breakpoint gdb has removed meanwhile is dropped: that
    // vCPU's EIP is still at the instruction (the #BP exit did not advance it), so it
    // simply executes it when it runs.
    const live = this.pendingStops.filter((stop) => stop.reason !== "breakpoint" || this.breakpointStillArmed(stop.handle));
    this.pendingStops.splice(0, this.pendingStops.length, ...live);
    const next = this.pendingStops.shift();
    if (next !== undefined) {
      // A second vCPU hit something while the first stop was reported: report it now.
      queueMicrotask(() => this.listener?.(next));
      return;
    }
    for (let vcpu = 0; vcpu < this.cpuCount; vcpu++) {
      const action = actions[vcpu] ?? "stay";
      this.held[vcpu] = action === "stay" ? 1 : 0;
      this.stepping[vcpu] = action === "step" ? 1 : 0;
      this.debugger.setStepping(vcpu, action === "step");
      if (action !== "stay") this.debugger.resume(vcpu, this.readRegister(vcpu, "eip"));
    }
    this.updateExceptionBitmap();
    this.stopped = false;
    for (let vcpu = 0; vcpu < this.cpuCount; vcpu++) if (this.held[vcpu] === 0) this.release(vcpu);
  }

  interrupt(): void {
    if (this.stopped) return;
    this.interruptRequested = true;
    for (let vcpu = 0; vcpu < this.cpuCount; vcpu++) {
      this.parts.platform.cancelRunVirtualProcessor(this.parts.partition, vcpu);
      this.parts.wake(vcpu);
    }
  }

  detach(): void {
    this.listener = null;
    this.pendingStops.length = 0;
    this.stepping.fill(0);
    for (let vcpu = 0; vcpu < this.cpuCount; vcpu++) this.debugger.setStepping(vcpu, false);
    this.updateExceptionBitmap();
    this.releaseAll();
  }

  kill(): void {
    this.listener = null;
    this.releaseAll();
    this.parts.kill();
  }

  describeThread(cpu: number): string {
    const [rip, cs] = this.parts.platform.getVirtualProcessorRegisters(this.parts.partition, cpu, ["x64Rip", "x64Cs"] as const);
    return `vCPU ${cpu} at ${hex(cs.selector)}:${hex(Number(rip))}`;
  }

  get monitorHelp(): readonly string[] {
    return [...this.baseMonitorHelp, ...[...this.extraMonitor.values()].map((command) => command.help)];
  }

  /** Adds a `monitor NAME …` command; `run` gets the rest of the line. */
  addMonitorCommand(name: string, help: string, run: (args: string, print: (text: string) => void) => Promise<void> | void): void {
    this.extraMonitor.set(name, { help, run });
  }

  monitor(command: string, print: (text: string) => void): Promise<boolean> | boolean {
    const space = command.indexOf(" ");
    const extra = this.extraMonitor.get(space < 0 ? command : command.slice(0, space));
    if (extra !== undefined) {
      const done = extra.run(space < 0 ? "" : command.slice(space + 1), print);
      return done instanceof Promise ? done.then(() => true) : true;
    }
    return this.parts.monitor?.(command, print) ?? false;
  }


  // ---- the IoBreakpointChecker for iom -----------------------------------------------------

  /** Port-I/O breakpoints: iom asks this only while dbgf has one armed. */
  readonly ioChecker: IoBreakpointChecker = {
    checkPortAccess: (port: number, size: AccessSize, direction: PortAccessDirection, value: number, phase: PortAccessPhase) => {
      const access = direction === "read" ? (size === 1 ? IoAccess.ReadByte : size === 2 ? IoAccess.ReadWord : IoAccess.ReadDword) : size === 1 ? IoAccess.WriteByte : size === 2 ? IoAccess.WriteWord : IoAccess.WriteDword;
      const result = this.debugger.checkPortIo(this.ioCpu, port, access, value, phase === "before");
      // A stop is reported after the instruction completes (trap semantics), so the access is never suppressed.
      return result === "halt" && phase === "after" ? "halt" : "continue";
    },
  };

  /** Which vCPU the port accesses being emulated belong to. */
  setIoCpu(vcpu: number): void {
    this.ioCpu = vcpu;
  }

  // ---- MMIO breakpoints -----------------------------------------------------------------------

  /**
   * Watches guest-physical `[address, address + size)`. RAM and ROM pages get an all-access
   * pgm handler (the engine hooks then make every guest access to them exit); device MMIO
   * already exits, and `watchDeviceAccess` checks it. A page someone else handles is refused.
   */
  private armMmio(address: number, size: number): void {
    const { memory } = this.parts;
    const range: WatchedRange = { start: address, last: address + size - 1, handlers: [] };
    try {
      for (let page = Math.floor(range.start / 4096) * 4096; page <= range.last; page += 4096) {
        const backing = memory.rangeAt(page);
        if (backing === undefined) throw new Error(`nothing is mapped at ${hex(page)}, so no guest access there can be watched`);
        if (backing.kind === "mmio") continue;
        if (memory.isRegistered(page)) throw new Error(`${hex(page)} already has a physical access handler`);
        memory.register(page, page + 4095, this.mmioHandlerType, range, `MMIO breakpoint ${hex(range.start)}-${hex(range.last)}`);
        range.handlers.push(page);
      }
    } catch (error) {
      for (const page of range.handlers) memory.deregister(page);
      throw error;
    }
    this.watched.push(range);
  }

  private disarmMmio(address: number, size: number): void {
    const index = this.watched.findIndex((range) => range.start === address && range.last === address + size - 1);
    if (index < 0) return;
    const [range] = this.watched.splice(index, 1);
    for (const page of range!.handlers) this.parts.memory.deregister(page);
  }

  /** True while MMIO breakpoints are armed: the emulator's memory callback then reports device accesses. */
  get watchingMmio(): boolean {
    return this.watched.length > 0;
  }

  /**
   * A guest access to device MMIO the emulator is completing: dbgf's MMIO breakpoints are
   * checked before and after it, as the pgm handler does for RAM pages.
   */
  watchDeviceAccess(address: number, bytes: Uint8Array, write: boolean, access: () => void): void {
    // RAM and ROM pages are checked by the pgm handler; only device MMIO is checked here.
    if (this.watched.length === 0 || this.parts.memory.rangeAt(address)?.kind !== "mmio") access();
    else this.checkedAccess(address, bytes, write, access);
  }

  private onWatchedAccess(address: number, buffer: Uint8Array, offset: number, size: number, type: AccessType, origin: AccessOrigin, range: WatchedRange): AccessResult {
    // Only the guest's own accesses, and only those that touch the breakpoint's bytes.
    if (origin !== AccessOrigin.Emulator || address > range.last || address + size - 1 < range.start) return AccessResult.Default;
    const bytes = buffer.subarray(offset, offset + size);
    const write = type === AccessType.Write;
    this.checkedAccess(address, bytes, write, () => {
      if (write) this.parts.memory.loadBytes(address, bytes);
      else bytes.set(this.parts.memory.readBytes(address, size));
    });
    return AccessResult.Handled;
  }

  private checkedAccess(address: number, bytes: Uint8Array, write: boolean, access: () => void): void {
    let value = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
    // A stop is reported after the instruction (trap semantics), so the access is never held back.
    this.debugger.checkMmio(this.ioCpu, address, bytes.length, write, write ? value : 0n, true);
    access();
    let after = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) after = (after << 8n) | BigInt(bytes[i]!);
    this.debugger.checkMmio(this.ioCpu, address, bytes.length, write, after, false);
  }

  // ---- internals -------------------------------------------------------------------------

  private async onBreakpointException(exit: WhvRunVpExitContext & { exitReason: "exception" }, vcpu: number): Promise<"resume"> {
    const pc = Number(exit.vpContext.rip);
    const result = this.debugger.onInt3Trap(vcpu, pc);
    if (result === "halt") {
      this.stepping[vcpu] = 0;
      const handle = this.breakpointHit[vcpu]!;
      this.breakpointHit[vcpu] = -1;
      await this.stopMachine({ reason: "breakpoint", cpu: vcpu, handle: handle >= 0 ? handle : this.debugger.lookupInt3(pc) }, vcpu);
      return "resume";
    }
    if (result === "not-ours") await this.deliverGuestBreakpoint(vcpu);
    return "resume";
  }

  private async onDebugException(exit: WhvRunVpExitContext & { exitReason: "exception" }, vcpu: number): Promise<"resume"> {
    if (exit.vpException.sim?.hostSingleStep === true) {
      // The end of a host single-step: a debugger step is reported, a step-over is silent.
      if (this.stepping[vcpu] !== 0) {
        this.stepping[vcpu] = 0;
        this.debugger.setStepping(vcpu, false);
        await this.stopMachine({ reason: "step", cpu: vcpu }, vcpu);
      }
      return "resume";
    }
    const dr6 = Number(exit.vpException.exceptionParameter);
    const result = this.debugger.onDebugTrap(vcpu, dr6);
    if (result.kind === "dbgf") {
      const hit = this.debugger.processActiveHit(vcpu);
      if (hit === "halt") {
        const handle = this.breakpointHit[vcpu]!;
        this.breakpointHit[vcpu] = -1;
        this.stepping[vcpu] = 0;
        await this.stopMachine({ reason: "breakpoint", cpu: vcpu, handle }, vcpu);
      }
      return "resume";
    }
    // Not the debugger's: the guest gets its #DB.
    this.injectException(vcpu, VECTOR_DEBUG);
    return "resume";
  }

  /**
   * The guest's own INT3 while #BP exits are on: the INT3 is executed again with #BP not
   * intercepted, so the guest's handler gets it exactly as without a debugger. The exit
   * bitmap may change only while no vCPU runs, so the others are parked meanwhile.
   */
  private async deliverGuestBreakpoint(vcpu: number): Promise<void> {
    const { platform, partition } = this.parts;
    this.exclusive = vcpu;
    for (let other = 0; other < this.cpuCount; other++) {
      if (other !== vcpu && this.inRun[other] !== 0) platform.cancelRunVirtualProcessor(partition, other);
    }
    if (this.inRun.some((flag) => flag !== 0)) await new Promise<void>((resolve) => (this.quietWaiter = resolve));
    const bitmap = this.exceptionBitmap;
    platform.setPartitionProperty(partition, "exceptionExitBitmap", BigInt(bitmap & ~(1 << VECTOR_BREAKPOINT)));
    try {
      const before = platform.getVirtualProcessorCounters(partition, vcpu).instructionsRetired;
      // A stale (sticky) cancel may end the first try before the INT3 executes.
      for (let attempt = 0; attempt < 2 && platform.getVirtualProcessorCounters(partition, vcpu).instructionsRetired === before; attempt++) {
        const exit = await platform.runVirtualProcessor(partition, vcpu, { singleStep: true });
        const stepped = exit.exitReason === "exception" && exit.vpException.sim?.hostSingleStep === true;
        if (!stepped && exit.exitReason !== "canceled") throw new Error(`delivering the guest's INT3 ended with a ${exit.exitReason} exit`);
      }
    } finally {
      platform.setPartitionProperty(partition, "exceptionExitBitmap", BigInt(bitmap));
      this.exclusive = -1;
      for (let other = 0; other < this.cpuCount; other++) if (other !== vcpu && !this.stopped && this.held[other] === 0) this.release(other);
    }
  }

  private injectException(vcpu: number, vector: number): void {
    const { platform, partition } = this.parts;
    platform.setVirtualProcessorRegisters(partition, vcpu, ["pendingInterruption"] as const, [
      {
        interruptionPending: true,
        interruptionType: 3,
        deliverErrorCode: false,
        instructionLength: 0,
        nestedEvent: false,
        interruptionVector: vector,
        errorCode: 0,
      },
    ]);
  }

  /**
   * Parks every vCPU, tells the debugger, and resolves when the debugger lets `vcpu` run
   * again. Stops that happen in the same window (other vCPUs finishing their slice) are
   * collected first and one is reported: a step or a trap first, else the breakpoint hit of
   * the vCPU after the last one reported, so no vCPU starves (gdbserver picks at random for
   * the same reason). The other breakpoint hits are dropped: their EIP is still at the
   * breakpoint, so they hit it again when they run.
   */
  private async stopMachine(stop: GdbStop, vcpu: number): Promise<void> {
    if (this.listener === null) return; // no debugger (it detached meanwhile): run on
    if (this.stopped && !this.collecting) {
      this.pendingStops.push(stop);
    } else {
      this.windowStops.push(stop);
      if (!this.collecting) {
        this.collecting = true;
        this.stopped = true;
        // Only vCPUs inside the accelerator need a cancel; the others park in beforeRun. (A
        // cancel is sticky: sent to a parked vCPU it would eat that vCPU's next run.)
        for (let other = 0; other < this.cpuCount; other++) {
          if (other !== vcpu && this.inRun[other] !== 0) this.parts.platform.cancelRunVirtualProcessor(this.parts.partition, other);
        }
        if (this.inRun.some((flag) => flag !== 0)) await new Promise<void>((resolve) => (this.quietWaiter = resolve));
        // Let the exits those vCPUs brought back be handled (they may add stops).
        if (this.cpuCount > 1) await new Promise<void>((resolve) => setImmediate(resolve));
        this.collecting = false;
        const chosen = this.chooseStop(this.windowStops);
        for (const other of this.windowStops) if (other !== chosen && !this.isRepeatable(other)) this.pendingStops.push(other);
        this.windowStops.length = 0;
        if (chosen.reason !== "exited") this.lastReportedCpu = chosen.cpu;
        this.listener?.(chosen);
      }
    }
    await this.beforeRun(vcpu);
  }

  private chooseStop(stops: readonly GdbStop[]): GdbStop {
    const firm = stops.find((stop) => !this.isRepeatable(stop));
    if (firm !== undefined) return firm;
    let best = stops[0]!;
    let bestDistance = Number.POSITIVE_INFINITY;
    for (const stop of stops) {
      if (stop.reason === "exited") continue;
      const distance = (stop.cpu - this.lastReportedCpu - 1 + this.cpuCount) % this.cpuCount;
      if (distance < bestDistance) {
        best = stop;
        bestDistance = distance;
      }
    }
    return best;
  }

  /** A stop that happens again by itself if dropped: an execute breakpoint hit (EIP unchanged) or a Ctrl-C. */
  private isRepeatable(stop: GdbStop): boolean {
    if (stop.reason === "interrupt") return true;
    if (stop.reason !== "breakpoint") return false;
    try {
      const info = this.debugger.get(stop.handle);
      return info.type === "int3" || (info.type === "hardware" && info.accessType === 0);
    } catch {
      return true;
    }
  }

  private breakpointStillArmed(handle: number): boolean {
    try {
      return this.debugger.get(handle).enabled;
    } catch {
      return false;
    }
  }

  private release(vcpu: number): void {
    const waiter = this.waiters[vcpu];
    this.waiters[vcpu] = null;
    waiter?.();
  }

  private releaseAll(): void {
    this.stopped = false;
    this.interruptRequested = false;
    this.held.fill(0);
    for (let vcpu = 0; vcpu < this.cpuCount; vcpu++) this.release(vcpu);
  }

  /** #BP exits while int3 breakpoints are armed, #DB exits while hardware ones are; nothing otherwise. */
  private updateExceptionBitmap(): void {
    let bitmap = 0;
    if (this.debugger.isInt3Armed()) bitmap |= 1 << VECTOR_BREAKPOINT;
    if (this.debugger.isHwArmed()) bitmap |= 1 << VECTOR_DEBUG;
    if (bitmap === this.exceptionBitmap) return;
    this.exceptionBitmap = bitmap;
    this.parts.platform.setPartitionProperty(this.parts.partition, "exceptionExitBitmap", BigInt(bitmap));
  }

  /** Linear → physical through `cpu`'s paging, as the debugger sees it (no privilege checks). */
  private translate(cpu: number, linear: number): number {
    const result = this.parts.platform.translateGva(this.parts.partition, cpu, BigInt(linear >>> 0), WhvTranslateGvaFlags.privilegeExempt);
    if (result.resultCode !== "success") throw new Error(`${hex(linear)} cannot be translated: ${result.resultCode}`);
    return Number(result.gpa);
  }

  private readLinear(cpu: number, linear: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const address = (linear + done) >>> 0;
      const chunk = Math.min(length - done, 0x1000 - (address & 0xfff));
      out.set(this.parts.memory.readBytes(this.translate(cpu, address), chunk), done);
      done += chunk;
    }
    return out;
  }

  private host(): DebuggerHost {
    return {
      cpuCount: this.parts.cpuCount,
      cpuVendor: "intel",
      translate: (cpu, linear) => this.translate(cpu, Number(linear)),
      readPhysical: (address, length) => this.parts.memory.readBytes(address, length),
      writePhysical: (address, bytes) => this.parts.memory.loadBytes(address, bytes),
      readLinear: (cpu, linear, length) => this.readLinear(cpu, Number(linear), length),
      executeOne: (cpu, linear, bytes) => {
        // Done at the vCPU's next run: the original byte goes back for one instruction.
        this.stepOver[cpu] = { physical: this.translate(cpu, Number(linear)), original: bytes[0]! };
      },
      reloadDebugRegisters: (cpu) => {
        const { platform, partition } = this.parts;
        const values = [0, 1, 2, 3].map((slot) => this.debugger.getDr(slot));
        platform.setVirtualProcessorRegisters(partition, cpu, ["x64Dr0", "x64Dr1", "x64Dr2", "x64Dr3", "x64Dr7"] as const, [
          values[0]!,
          values[1]!,
          values[2]!,
          values[3]!,
          BigInt(this.debugger.getDr7()),
        ]);
      },
      portBreakpointsArmed: (armed) => this.parts.ports.setBreakpointChecker(armed ? this.ioChecker : null),
      armMmioRange: (address, size) => this.armMmio(address, size),
      disarmMmioRange: (address, size) => this.disarmMmio(address, size),
      raiseBreakpointEvent: (cpu, handle) => {
        this.breakpointHit[cpu] = handle;
      },
      debugEventsChanged: () => {},
    };
  }
}

/** An armed MMIO breakpoint range and the page-aligned pgm handlers that watch it. */
interface WatchedRange {
  readonly start: number;
  readonly last: number;
  /** First pages of the handlers registered for it (RAM/ROM pages); device MMIO needs none. */
  readonly handlers: number[];
}

