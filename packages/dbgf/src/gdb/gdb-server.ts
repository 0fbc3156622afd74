/**
 * The GDB remote serial protocol engine (all-stop mode). It owns no transport: bytes from
 * gdb go in through {@link GdbServer.receive}, replies leave through the `send` callback the
 * caller supplies (a TCP socket in apps/cli, an array in tests). The machine is reached
 * through {@link GdbTarget}; breakpoints and watchpoints are dbgf breakpoints set on the
 * {@link Debugger} the server is given:
 *
 * - Z0 → an int3 breakpoint (0xCC). vmmkit intercepts #BP only while int3 breakpoints are
 *   armed and asks dbgf whose a #BP is (`onInt3Trap`), so a guest's own INT3 is handed back
 *   to the guest. The reason QEMU's WHPX support uses INT1 instead (spec/whpx.md A.2:
 *   WHPX could not re-inject a software exception) does not apply to this accelerator.
 * - Z1 → an execute breakpoint in a DR slot; Z2/Z3/Z4 → write / read-write watchpoints (x86
 *   has no read-only watchpoint, so a read watchpoint is a read-write slot, as gdb's own
 *   x86 native target does it).
 * - Threads are vCPUs: thread id = vCPU index + 1.
 */
import type { Debugger } from "../debugger.js";
import { DbgfError, isDbgfError } from "../errors.js";
import { HardwareAccess, IoAccess, type BreakpointHandle, type BreakpointInfo, type HardwareBreakpointSize } from "../types.js";
import { I386_REGISTERS, i386TargetXml, isTargetRegister, type GdbRegister, type GdbRegisterName } from "./i386-registers.js";
import {
  RspDecoder,
  bytesToHex,
  encodePacket,
  escapeBinary,
  hexToBytes,
  littleEndianHex,
  parseHexNumber,
  parseLittleEndianHex,
  textToHex,
  unescapeBinary,
  type RspInput,
} from "./rsp-codec.js";

/** What a vCPU does when gdb resumes the machine. */
export type GdbResumeAction = "continue" | "step" | "stay";

/** Why the machine stopped, as the target reports it to {@link GdbServer.reportStop}. */
export type GdbStop =
  /** A dbgf breakpoint without an owner (or whose owner said "halt") stopped `cpu`. */
  | { readonly reason: "breakpoint"; readonly cpu: number; readonly handle: BreakpointHandle }
  /** `cpu` finished the single step gdb asked for. */
  | { readonly reason: "step"; readonly cpu: number }
  /** The stop gdb asked for with Ctrl-C. */
  | { readonly reason: "interrupt"; readonly cpu: number }
  /** Any other stop, as a Unix signal number (5 SIGTRAP, 11 SIGSEGV, …). */
  | { readonly reason: "signal"; readonly cpu: number; readonly signal: number }
  /** The guest finished; `status` is the process exit status gdb reports. */
  | { readonly reason: "exited"; readonly status: number };

/**
 * The machine as the server needs it. Calls other than {@link resume} and {@link interrupt}
 * are made only while the machine is stopped.
 */
export interface GdbTarget {
  /** vCPUs; gdb numbers threads from 1. */
  readonly cpuCount: number;
  readRegister(cpu: number, name: GdbRegisterName): number;
  /** Several registers at once (gdb's `g`, after every stop); optional, for speed. */
  readRegisters?(cpu: number, names: readonly GdbRegisterName[]): number[];
  /** Throws (any error) when the value cannot be taken; then nothing changed. */
  writeRegister(cpu: number, name: GdbRegisterName, value: number): void;
  /** Guest-linear bytes through `cpu`'s translation; throws where nothing readable is mapped. */
  readMemory(cpu: number, address: number, length: number): Uint8Array;
  /** Writes guest-linear bytes through `cpu`'s translation; throws if some byte cannot be written. */
  writeMemory(cpu: number, address: number, bytes: Uint8Array): void;
  /** Lets the machine run; one action per vCPU. The target calls `reportStop` when it stops again. */
  resume(actions: readonly GdbResumeAction[]): void;
  /** Ctrl-C: stop the running machine soon (then `reportStop` with reason "interrupt"). */
  interrupt(): void;
  /** The debugger is gone (detach, closed connection): run on freely. */
  detach(): void;
  /** `k`: end the machine. */
  kill(): void;
  /** One line about a vCPU for `info threads`. */
  describeThread?(cpu: number): string;
  /**
   * Machine-level `monitor` commands (state, reset, save…): write text with `print` and
   * resolve true when the command was recognised, false to let the server say it is unknown.
   */
  monitor?(command: string, print: (text: string) => void): Promise<boolean> | boolean;
  /** The help lines of the machine's monitor commands. */
  readonly monitorHelp?: readonly string[];
}

export interface GdbServerOptions {
  readonly target: GdbTarget;
  /** The breakpoint manager of the same machine; Z packets become its breakpoints. */
  readonly debugger: Debugger;
  /** Writes bytes to gdb. */
  readonly send: (bytes: Uint8Array) => void;
  /** Largest packet accepted and advertised (bytes of payload); default 16 384. */
  readonly packetSize?: number;
}

type ZType = 0 | 1 | 2 | 3 | 4;

interface GdbBreakpoint {
  readonly type: ZType;
  readonly address: number;
  readonly handle: BreakpointHandle;
  /** False when the breakpoint existed before (another dbgf client's): z leaves it. */
  readonly created: boolean;
}

/** The registers the target supplies, in gdb's order. */
const TARGET_REGISTER_NAMES: readonly GdbRegisterName[] = I386_REGISTERS.filter(isTargetRegister).map((register) => register.name as GdbRegisterName);

const SIGINT = 2;
const SIGTRAP = 5;
const MAX_BREAKPOINT_KIND = 8;

/** One gdb connection's protocol state. */
export class GdbServer {
  private readonly target: GdbTarget;
  private readonly debugger: Debugger;
  private readonly sendBytes: (bytes: Uint8Array) => void;
  private readonly packetSize: number;
  private readonly decoder: RspDecoder;
  private readonly targetXml = i386TargetXml();

  private noAck = false;
  private lastReply: Uint8Array | null = null;
  private running = false;
  private exited: number | null = null;
  private closed = false;
  /** Packets that arrived while the machine ran; handled at the next stop (all-stop mode). */
  private readonly queued: string[] = [];
  /** A monitor command is being answered (it may be asynchronous); later packets wait. */
  private busy = false;
  /** gdb's Hg thread (registers and memory) and Hc thread (c/s), as vCPU indexes; -1 = any/all. */
  private generalCpu = 0;
  private continueCpu = -1;
  private lastStop: GdbStop;
  private readonly breakpoints = new Map<string, GdbBreakpoint>();
  /** Port-I/O and MMIO breakpoints made with `monitor`, cleared on detach like gdb's. */
  private readonly monitorBreakpoints = new Set<BreakpointHandle>();

  constructor(options: GdbServerOptions) {
    this.target = options.target;
    this.debugger = options.debugger;
    this.sendBytes = options.send;
    this.packetSize = options.packetSize ?? 0x4000;
    if (!Number.isInteger(this.packetSize) || this.packetSize < 256 || this.packetSize > 0x10_0000) {
      throw new DbgfError("InvalidParameter", `packetSize must be 256 to 1048576 bytes, got ${String(options.packetSize)}`);
    }
    if (!Number.isInteger(this.target.cpuCount) || this.target.cpuCount < 1) {
      throw new DbgfError("InvalidParameter", `the target must have at least one vCPU, got ${String(this.target.cpuCount)}`);
    }
    this.decoder = new RspDecoder(this.packetSize);
    // The machine is stopped when a debugger attaches.
    this.lastStop = { reason: "signal", cpu: 0, signal: SIGTRAP };
  }

  /** True between a resume and the stop that ends it. */
  get isRunning(): boolean {
    return this.running;
  }

  /** Bytes from gdb, in chunks of any size. Never throws for bad input; bad packets get the protocol's answer. */
  receive(bytes: Uint8Array): void {
    if (this.closed) return;
    this.decoder.push(bytes, (input) => this.onInput(input));
  }

  /** The machine stopped after a resume (or the guest finished); sends the stop reply. */
  reportStop(stop: GdbStop): void {
    if (this.closed) return;
    this.lastStop = stop;
    if (stop.reason === "exited") this.exited = stop.status;
    else this.generalCpu = stop.cpu;
    const wasRunning = this.running;
    this.running = false;
    if (wasRunning || stop.reason === "exited") this.reply(this.stopReply(stop));
    this.drainQueue();
  }

  /**
   * The connection is gone: like a detach, every breakpoint this server made is removed and
   * the machine runs on.
   */
  connectionClosed(): void {
    if (this.closed) return;
    this.removeAllBreakpoints();
    this.closed = true;
    if (this.exited === null) this.target.detach();
  }

  // ---- input -----------------------------------------------------------------------------

  private onInput(input: RspInput): void {
    switch (input.kind) {
      case "ack":
        return;
      case "nack":
        if (this.lastReply !== null) this.sendBytes(this.lastReply);
        return;
      case "interrupt":
        if (this.running) this.target.interrupt();
        return;
      case "bad-checksum":
        if (!this.noAck) this.sendBytes(NACK);
        return;
      case "oversized":
        if (!this.noAck) this.sendBytes(ACK);
        this.reply("E01");
        return;
      case "packet":
        if (!this.noAck) this.sendBytes(ACK);
        if (this.running || this.busy) this.queued.push(input.payload);
        else this.handle(input.payload);
        return;
    }
  }

  private drainQueue(): void {
    while (!this.running && !this.busy && !this.closed && this.queued.length > 0) this.handle(this.queued.shift()!);
  }

  private reply(payload: string): void {
    if (this.closed) return;
    const bytes = encodePacket(payload);
    this.lastReply = bytes;
    this.sendBytes(bytes);
  }

  private handle(packet: string): void {
    let answer: string | null;
    try {
      answer = this.dispatch(packet);
    } catch (error) {
      // A target or dbgf refusal is an error reply, never a dead server.
      answer = errorReply(error);
    }
    if (answer !== null) this.reply(answer);
  }

  /** The reply to one packet, or null when the reply comes later (resume, async monitor). */
  private dispatch(packet: string): string | null {
    if (packet.length === 0) return "";
    if (this.exited !== null) return packet === "?" ? this.stopReply(this.lastStop) : packet[0] === "D" || packet[0] === "k" ? "OK" : "E01";
    const command = packet[0]!;
    const body = packet.slice(1);
    switch (command) {
      case "?":
        return this.stopReply(this.lastStop);
      case "g":
        return body === "" ? this.readAllRegisters() : "E01";
      case "G":
        return this.writeAllRegisters(body);
      case "p":
        return this.readOneRegister(body);
      case "P":
        return this.writeOneRegister(body);
      case "m":
        return this.readMemory(body);
      case "M":
        return this.writeMemoryHex(body);
      case "X":
        return this.writeMemoryBinary(body);
      case "Z":
      case "z":
        return this.breakpointPacket(command === "Z", body);
      case "c":
      case "s":
      case "C":
      case "S":
        return this.legacyResume(command, body);
      case "v":
        return this.vPacket(body);
      case "H":
        return this.setThread(body);
      case "T":
        return this.threadAlive(body);
      case "q":
        return this.query(body);
      case "Q":
        if (body !== "StartNoAckMode") return "";
        // The OK is still acknowledged by gdb; acknowledgements stop after it.
        this.reply("OK");
        this.noAck = true;
        return null;
      case "D":
        this.detach();
        return null;
      case "k":
        this.kill();
        return null;
      default:
        return "";
    }
  }

  // ---- registers -------------------------------------------------------------------------

  private readAllRegisters(): string {
    const cpu = this.generalCpu;
    const values = this.target.readRegisters?.(cpu, TARGET_REGISTER_NAMES);
    let text = "";
    let next = 0;
    for (const register of I386_REGISTERS) {
      if (values !== undefined && isTargetRegister(register)) text += littleEndianHex(values[next++]!, register.bits / 8);
      else text += this.registerHex(cpu, register);
    }
    return text;
  }

  private registerHex(cpu: number, register: GdbRegister): string {
    const bytes = register.bits / 8;
    if (!isTargetRegister(register)) return "xx".repeat(bytes);
    return littleEndianHex(this.target.readRegister(cpu, register.name as GdbRegisterName), bytes);
  }

  private writeAllRegisters(body: string): string {
    let offset = 0;
    const writes: Array<readonly [GdbRegisterName, number]> = [];
    for (const register of I386_REGISTERS) {
      const width = register.bits / 4;
      if (offset + width > body.length) break; // gdb may send a shorter block; the rest stays
      const text = body.slice(offset, offset + width);
      offset += width;
      if (!isTargetRegister(register) || /^x+$/i.test(text)) continue;
      const value = parseLittleEndianHex(text, register.bits / 8);
      if (value === null) return "E01";
      writes.push([register.name as GdbRegisterName, value]);
    }
    if (offset !== body.length && offset < body.length) return "E01";
    for (const [name, value] of writes) this.target.writeRegister(this.generalCpu, name, value);
    return "OK";
  }

  private readOneRegister(body: string): string {
    const number = parseHexNumber(body);
    const register = number === null ? undefined : I386_REGISTERS[number];
    if (register === undefined) return "E01";
    return this.registerHex(this.generalCpu, register);
  }

  private writeOneRegister(body: string): string {
    const equals = body.indexOf("=");
    const number = equals < 0 ? null : parseHexNumber(body.slice(0, equals));
    const register = number === null ? undefined : I386_REGISTERS[number];
    if (register === undefined) return "E01";
    const value = parseLittleEndianHex(body.slice(equals + 1), register.bits / 8);
    if (value === null) return "E01";
    if (!isTargetRegister(register)) return "E01";
    this.target.writeRegister(this.generalCpu, register.name as GdbRegisterName, value);
    return "OK";
  }

  // ---- memory ----------------------------------------------------------------------------

  private parseAddressLength(text: string): readonly [number, number] | null {
    const comma = text.indexOf(",");
    if (comma < 0) return null;
    const address = parseHexNumber(text.slice(0, comma));
    const length = parseHexNumber(text.slice(comma + 1));
    if (address === null || length === null) return null;
    return [address, length];
  }

  private readMemory(body: string): string {
    const parsed = this.parseAddressLength(body);
    if (parsed === null) return "E01";
    const [address, requested] = parsed;
    // Two hex digits per byte must fit in one reply.
    const length = Math.min(requested, Math.floor((this.packetSize - 4) / 2), 0x1_0000_0000 - address);
    const bytes = this.readVisible(address, length);
    return bytes.length === 0 && length > 0 ? "E14" : bytesToHex(bytes);
  }

  /**
   * Guest bytes as a debugger should see them (armed 0xCCs show the original byte), up to
   * the first unreadable page.
   */
  private readVisible(address: number, length: number): Uint8Array {
    try {
      return this.debugger.readLinearMemory(this.generalCpu, BigInt(address), length);
    } catch {
      const parts: Uint8Array[] = [];
      let done = 0;
      while (done < length) {
        const chunk = Math.min(length - done, 0x1000 - ((address + done) & 0xfff));
        try {
          parts.push(this.debugger.readLinearMemory(this.generalCpu, BigInt(address + done), chunk));
        } catch {
          break;
        }
        done += chunk;
      }
      const bytes = new Uint8Array(done);
      let offset = 0;
      for (const part of parts) {
        bytes.set(part, offset);
        offset += part.length;
      }
      return bytes;
    }
  }

  private writeMemoryHex(body: string): string {
    const colon = body.indexOf(":");
    const parsed = colon < 0 ? null : this.parseAddressLength(body.slice(0, colon));
    const bytes = colon < 0 ? null : hexToBytes(body.slice(colon + 1));
    if (parsed === null || bytes === null || bytes.length !== parsed[1]) return "E01";
    return this.writeMemory(parsed[0], bytes);
  }

  private writeMemoryBinary(body: string): string {
    const colon = body.indexOf(":");
    const parsed = colon < 0 ? null : this.parseAddressLength(body.slice(0, colon));
    const bytes = colon < 0 ? null : unescapeBinary(body.slice(colon + 1));
    if (parsed === null || bytes === null || bytes.length !== parsed[1]) return "E01";
    return this.writeMemory(parsed[0], bytes);
  }

  private writeMemory(address: number, bytes: Uint8Array): string {
    if (bytes.length === 0) return "OK"; // gdb probes X support with an empty write
    if (address + bytes.length > 0x1_0000_0000) return "E01";
    try {
      this.target.writeMemory(this.generalCpu, address, bytes);
    } catch {
      return "E14";
    }
    return "OK";
  }

  // ---- breakpoints and watchpoints -------------------------------------------------------

  private breakpointPacket(insert: boolean, body: string): string {
    const parts = body.split(";")[0]!.split(",");
    if (parts.length !== 3) return "E01";
    const type = parseHexNumber(parts[0]!);
    const address = parseHexNumber(parts[1]!);
    const kind = parseHexNumber(parts[2]!);
    if (type === null || address === null || kind === null || type > 4 || kind > MAX_BREAKPOINT_KIND) return type !== null && type > 4 ? "" : "E01";
    const key = `${type}:${address}:${kind}`;
    if (!insert) {
      const breakpoint = this.breakpoints.get(key);
      if (breakpoint === undefined) return "OK"; // gdb may remove what it never managed to insert
      this.breakpoints.delete(key);
      if (breakpoint.created && this.debugger.breakpointCount > 0) this.clearQuietly(breakpoint.handle);
      return "OK";
    }
    if (this.breakpoints.has(key)) return "OK";
    const z = type as ZType;
    const result =
      z === 0
        ? this.debugger.setInt3(this.generalCpu, BigInt(address))
        : this.debugger.setHardware(BigInt(address), HARDWARE_ACCESS[z], (z === 1 ? 1 : kind) as HardwareBreakpointSize);
    this.breakpoints.set(key, { type: z, address, handle: result.handle, created: result.status === "created" });
    return "OK";
  }

  private clearQuietly(handle: BreakpointHandle): void {
    try {
      this.debugger.clear(handle);
    } catch (error) {
      if (!isDbgfError(error) || error.code !== "BreakpointNotFound") throw error;
    }
  }

  private removeAllBreakpoints(): void {
    for (const breakpoint of this.breakpoints.values()) if (breakpoint.created) this.clearQuietly(breakpoint.handle);
    for (const handle of this.monitorBreakpoints) this.clearQuietly(handle);
    this.breakpoints.clear();
    this.monitorBreakpoints.clear();
  }

  // ---- execution control -----------------------------------------------------------------

  private legacyResume(command: string, body: string): string | null {
    // c [addr], s [addr], C sig[;addr], S sig[;addr]: the signal is dropped (nothing to deliver it to).
    let addressText = body;
    if (command === "C" || command === "S") {
      const semicolon = body.indexOf(";");
      if (parseHexNumber(semicolon < 0 ? body : body.slice(0, semicolon)) === null) return "E01";
      addressText = semicolon < 0 ? "" : body.slice(semicolon + 1);
    }
    const cpu = this.continueCpu >= 0 ? this.continueCpu : this.generalCpu;
    if (addressText !== "") {
      const address = parseHexNumber(addressText);
      if (address === null) return "E01";
      this.target.writeRegister(cpu, "eip", address);
    }
    const actions: GdbResumeAction[] = [];
    const step = command === "s" || command === "S";
    for (let i = 0; i < this.target.cpuCount; i++) actions.push(step ? (i === cpu ? "step" : "stay") : "continue");
    return this.resume(actions);
  }

  private vPacket(body: string): string | null {
    if (body === "Cont?") return "vCont;c;C;s;S;t";
    if (body.startsWith("Cont;")) return this.vCont(body.slice(5));
    if (body === "MustReplyEmpty") return "";
    if (body.startsWith("Kill")) {
      this.kill();
      return null;
    }
    return "";
  }

  /** `vCont;action[:thread];…`: for each vCPU the leftmost action naming it (or naming none) wins. */
  private vCont(body: string): string | null {
    const actions: Array<GdbResumeAction | null> = new Array<GdbResumeAction | null>(this.target.cpuCount).fill(null);
    for (const item of body.split(";")) {
      const colon = item.indexOf(":");
      const verb = colon < 0 ? item : item.slice(0, colon);
      let action: GdbResumeAction;
      if (verb === "c" || /^C[0-9a-fA-F]{2}$/.test(verb)) action = "continue";
      else if (verb === "s" || /^S[0-9a-fA-F]{2}$/.test(verb)) action = "step";
      else if (verb === "t") action = "stay";
      else return "E01";
      if (colon < 0) {
        for (let i = 0; i < actions.length; i++) actions[i] ??= action;
        continue;
      }
      const thread = this.parseThread(item.slice(colon + 1));
      if (thread === null) return "E01";
      if (thread === -1) for (let i = 0; i < actions.length; i++) actions[i] ??= action;
      else actions[thread] ??= action;
    }
    return this.resume(actions.map((action) => action ?? "stay"));
  }

  private resume(actions: readonly GdbResumeAction[]): string | null {
    if (actions.every((action) => action === "stay")) return "E01";
    this.running = true;
    this.target.resume(actions);
    return null;
  }

  private detach(): void {
    this.removeAllBreakpoints();
    this.reply("OK");
    this.closed = true;
    this.target.detach();
  }

  private kill(): void {
    this.removeAllBreakpoints();
    this.closed = true;
    this.target.kill();
  }

  // ---- threads ---------------------------------------------------------------------------

  /** A thread id: -1 for "all", the vCPU index for 1…n, 0 ("any") as the current vCPU; null if invalid. */
  private parseThread(text: string): number | null {
    if (text === "-1") return -1;
    const id = parseHexNumber(text);
    if (id === null || id > this.target.cpuCount) return null;
    return id === 0 ? this.generalCpuOfLastStop() : id - 1;
  }

  private generalCpuOfLastStop(): number {
    return this.lastStop.reason === "exited" ? 0 : this.lastStop.cpu;
  }

  private setThread(body: string): string {
    const which = body[0];
    const thread = this.parseThread(body.slice(1));
    if ((which !== "g" && which !== "c") || thread === null) return "E01";
    if (which === "g") {
      if (thread === -1) return "E01"; // registers of "all threads" mean nothing
      this.generalCpu = thread;
    } else {
      this.continueCpu = thread;
    }
    return "OK";
  }

  private threadAlive(body: string): string {
    const thread = this.parseThread(body);
    return thread === null || thread === -1 ? "E01" : "OK";
  }

  // ---- queries ---------------------------------------------------------------------------

  private query(body: string): string | null {
    if (body.startsWith("Supported")) {
      return `PacketSize=${this.packetSize.toString(16)};qXfer:features:read+;swbreak+;hwbreak+;vContSupported+;QStartNoAckMode+`;
    }
    if (body === "Attached" || body.startsWith("Attached:")) return "1";
    if (body === "C") return `QC${(this.generalCpuOfLastStop() + 1).toString(16)}`;
    if (body === "fThreadInfo") {
      const ids = Array.from({ length: this.target.cpuCount }, (_, i) => (i + 1).toString(16));
      return `m${ids.join(",")}`;
    }
    if (body === "sThreadInfo") return "l";
    if (body.startsWith("ThreadExtraInfo,")) {
      const thread = this.parseThread(body.slice(16));
      if (thread === null || thread === -1) return "E01";
      return textToHex(this.target.describeThread?.(thread) ?? `vCPU ${thread}`);
    }
    if (body.startsWith("Xfer:features:read:")) return this.readFeatures(body.slice(19));
    if (body.startsWith("Rcmd,")) return this.monitorPacket(body.slice(5));
    return "";
  }

  private readFeatures(body: string): string {
    const colon = body.indexOf(":");
    if (colon < 0) return "E01";
    if (body.slice(0, colon) !== "target.xml") return "E00";
    const range = this.parseAddressLength(body.slice(colon + 1));
    if (range === null) return "E01";
    const [offset, length] = range;
    if (offset > this.targetXml.length) return "E01";
    // Room for the escapes: a chunk of n characters becomes at most 2n.
    const chunk = this.targetXml.slice(offset, offset + Math.min(length, Math.floor((this.packetSize - 8) / 2)));
    const last = offset + chunk.length >= this.targetXml.length;
    return (last ? "l" : "m") + escapeBinary(chunk);
  }

  // ---- monitor commands ------------------------------------------------------------------

  private monitorPacket(hex: string): string | null {
    const bytes = hexToBytes(hex);
    if (bytes === null) return "E01";
    let command = "";
    for (const byte of bytes) command += String.fromCharCode(byte);
    command = command.trim();
    const print = (text: string): void => this.reply(`O${textToHex(text)}`);
    const own = this.ownMonitorCommand(command, print);
    if (own !== undefined) return own;
    const machine = this.target.monitor?.(command, print) ?? false;
    if (typeof machine === "boolean") return machine ? "OK" : this.unknownMonitor(command, print);
    this.busy = true;
    machine.then(
      (known) => this.finishMonitor(known ? "OK" : this.unknownMonitor(command, print)),
      (error: unknown) => {
        print(`error: ${error instanceof Error ? error.message : String(error)}\n`);
        this.finishMonitor("E01");
      },
    );
    return null;
  }

  private finishMonitor(answer: string): void {
    this.busy = false;
    this.reply(answer);
    this.drainQueue();
  }

  private unknownMonitor(command: string, print: (text: string) => void): string {
    print(`unknown monitor command "${command}"; try "monitor help"\n`);
    return "OK";
  }

  /** The breakpoint commands; undefined when `command` is not one of them. */
  private ownMonitorCommand(command: string, print: (text: string) => void): string | undefined {
    const words = command.split(/\s+/);
    const name = words[0] ?? "";
    try {
      switch (name) {
        case "help":
          print(
            [
              "breakpoints                        list every breakpoint with its hit count",
              "break-io PORT[-LAST] [r|w|rw]      stop on guest port I/O (default rw)",
              "break-mmio ADDRESS SIZE [r|w|rw]   stop on guest-physical accesses (default rw)",
              "delete HANDLE                      remove a breakpoint made with break-io/break-mmio",
              ...(this.target.monitorHelp ?? []),
            ].join("\n") + "\n",
          );
          return "OK";
        case "breakpoints":
          print(this.describeBreakpoints());
          return "OK";
        case "break-io": {
          const range = /^(0x[0-9a-f]+|\d+)(?:-(0x[0-9a-f]+|\d+))?$/i.exec(words[1] ?? "");
          const access = accessBits(words[2] ?? "rw", IoAccess.PortIoMask);
          if (range === null || access === null || words.length > 3) {
            print("usage: break-io PORT[-LAST] [r|w|rw]\n");
            return "E01";
          }
          const first = Number(range[1]);
          const last = range[2] === undefined ? first : Number(range[2]);
          const result = this.debugger.setPortIo(first, last - first + 1, access);
          this.monitorBreakpoints.add(result.handle);
          print(`breakpoint ${result.handle}: ports ${hexText(first)}-${hexText(last)} (${words[2] ?? "rw"})\n`);
          return "OK";
        }
        case "break-mmio": {
          const address = /^(0x[0-9a-f]+|\d+)$/i.test(words[1] ?? "") ? Number(words[1]) : null;
          const size = /^(0x[0-9a-f]+|\d+)$/i.test(words[2] ?? "") ? Number(words[2]) : null;
          const access = accessBits(words[3] ?? "rw", IoAccess.MmioMask);
          if (address === null || size === null || access === null || words.length > 4) {
            print("usage: break-mmio ADDRESS SIZE [r|w|rw]\n");
            return "E01";
          }
          const result = this.debugger.setMmio(BigInt(address), size, access);
          this.monitorBreakpoints.add(result.handle);
          print(`breakpoint ${result.handle}: physical ${hexText(address)}+${size} (${words[3] ?? "rw"})\n`);
          return "OK";
        }
        case "delete": {
          const handle = /^\d+$/.test(words[1] ?? "") ? Number(words[1]) : null;
          if (handle === null || !this.monitorBreakpoints.has(handle)) {
            print(`no breakpoint ${words[1] ?? ""} made with break-io or break-mmio\n`);
            return "E01";
          }
          this.debugger.clear(handle);
          this.monitorBreakpoints.delete(handle);
          return "OK";
        }
        default:
          return undefined;
      }
    } catch (error) {
      print(`error: ${error instanceof Error ? error.message : String(error)}\n`);
      return "E01";
    }
  }

  private describeBreakpoints(): string {
    const lines: string[] = [];
    this.debugger.enumerate((handle, info) => {
      lines.push(`${String(handle).padStart(4)}  ${describe(info).padEnd(44)} ${info.enabled ? "enabled " : "disabled"}  hits ${info.hits}`);
    });
    return lines.length === 0 ? "no breakpoints\n" : lines.join("\n") + "\n";
  }

  // ---- stop replies ----------------------------------------------------------------------

  private stopReply(stop: GdbStop): string {
    if (stop.reason === "exited") return `W${(stop.status & 0xff).toString(16).padStart(2, "0")}`;
    const thread = `thread:${(stop.cpu + 1).toString(16)};`;
    switch (stop.reason) {
      case "interrupt":
        return `T${hexByte(SIGINT)}${thread}`;
      case "step":
        return `T${hexByte(SIGTRAP)}${thread}`;
      case "signal":
        return `T${hexByte(stop.signal)}${thread}`;
      case "breakpoint":
        return `T${hexByte(SIGTRAP)}${thread}${this.breakpointStopDetail(stop.handle)}`;
    }
  }

  /** swbreak / hwbreak / watch:addr for gdb's own breakpoints; nothing for others. */
  private breakpointStopDetail(handle: BreakpointHandle): string {
    for (const breakpoint of this.breakpoints.values()) {
      if (breakpoint.handle !== handle) continue;
      const address = breakpoint.address.toString(16);
      switch (breakpoint.type) {
        case 0:
          return "swbreak:;";
        case 1:
          return "hwbreak:;";
        case 2:
          return `watch:${address};`;
        case 3:
          return `rwatch:${address};`;
        case 4:
          return `awatch:${address};`;
      }
    }
    return "";
  }
}

const HARDWARE_ACCESS: Record<ZType, HardwareAccess> = {
  0: HardwareAccess.Execute,
  1: HardwareAccess.Execute,
  2: HardwareAccess.Write,
  3: HardwareAccess.ReadWrite,
  4: HardwareAccess.ReadWrite,
};

const ACK = new Uint8Array([0x2b]);
const NACK = new Uint8Array([0x2d]);

function hexByte(value: number): string {
  return value.toString(16).padStart(2, "0");
}

function hexText(value: number): string {
  return `0x${value.toString(16)}`;
}

function accessBits(text: string, mask: number): number | null {
  const read = IoAccess.AnyRead & mask;
  const write = IoAccess.AnyWrite & mask;
  if (text === "r") return read;
  if (text === "w") return write;
  if (text === "rw") return read | write;
  return null;
}

function describe(info: BreakpointInfo): string {
  switch (info.type) {
    case "int3":
      return `int3 at ${hexText(Number(info.address))}`;
    case "hardware": {
      const kinds = ["execute", "write", "I/O", "read/write"];
      return `hardware ${kinds[info.accessType]} at ${hexText(Number(info.address))} (${info.size} bytes, DR${info.slot})`;
    }
    case "port-io":
      return `port I/O ${hexText(info.port)}-${hexText(info.port + info.count - 1)}`;
    case "mmio":
      return `MMIO ${hexText(Number(info.physicalAddress))}+${info.size}`;
  }
}

/** E NN for a refused call: 16 (EINVAL, 22) for dbgf's refusals, 01 otherwise. */
function errorReply(error: unknown): string {
  if (isDbgfError(error)) return "E16";
  return "E01";
}
