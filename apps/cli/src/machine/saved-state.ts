/**
 * Saved states of `vmmkit run`: the units that capture a running machine (every vCPU's
 * registers, guest RAM, machine time, every PC device), the configuration text a load
 * checks, and the transports: a file written atomically and a TCP stream for teleports.
 * The container format itself belongs to @vmmkit/vm.
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { CmosRtc, Kbc8042, Pic8259Pair, Pit8254, Port92, Uart16550, VirtualClock } from "@vmmkit/devices";
import { createRamUnit, SavedStateError, type ParsedSavedState, type SavedStateSink, type SavedStateSource, type SavedStateUnit } from "@vmmkit/vm";
import type { WhvRegisterName, WhvRegisterValue } from "@vmmkit/whpx-sim";
import type { ClockMode } from "./pc-platform.js";
import type { Machine } from "./build-machine.js";

const CONFIGURATION_FORMAT = "vmmkit-run/1";

/** How `vmmkit run` built the machine: everything a restore needs to build it again. */
export interface MachineDescription {
  readonly memoryBytes: number;
  readonly cpuCount: number;
  readonly clock: ClockMode;
  readonly clockMips: number;
  readonly reboot: boolean;
  /** How the image is placed: as a firmware ROM, a multiboot kernel or a raw binary. */
  readonly image: {
    readonly kind: "bios" | "multiboot" | "raw";
    /** SHA-256 of the image file (hex); the "image" section must hash to it. */
    readonly sha256: string;
    readonly loadAddress: number;
    readonly entry: number;
    readonly entryBits: 16 | 32;
    readonly append: string;
  };
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The configuration text of a saved state: canonical JSON of the description. */
export function machineConfiguration(description: MachineDescription): string {
  const { image } = description;
  return JSON.stringify({
    format: CONFIGURATION_FORMAT,
    memoryBytes: description.memoryBytes,
    cpuCount: description.cpuCount,
    clock: description.clock,
    clockMips: description.clockMips,
    reboot: description.reboot,
    image: { kind: image.kind, sha256: image.sha256, loadAddress: image.loadAddress, entry: image.entry, entryBits: image.entryBits, append: image.append },
  });
}

/** Reads the configuration text of a saved state; `ConfigurationMismatch` if it is not one `vmmkit run` wrote. */
export function parseMachineConfiguration(text: string): MachineDescription {
  const refuse = (why: string): never => {
    throw new SavedStateError("ConfigurationMismatch", `the saved state's configuration is not one vmmkit run writes (${why})`);
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refuse("not JSON");
  }
  const object = value as Record<string, unknown>;
  if (object === null || typeof object !== "object") return refuse("not an object");
  if (object.format !== CONFIGURATION_FORMAT) return refuse(`format ${JSON.stringify(object.format)}, expected "${CONFIGURATION_FORMAT}"`);
  const image = object.image as Record<string, unknown> | null;
  const integer = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (!integer(object.memoryBytes) || !integer(object.cpuCount)) return refuse("memory size or CPU count missing");
  if (object.clock !== "virtual" && object.clock !== "realtime") return refuse("unknown clock");
  if (typeof object.clockMips !== "number" || !(object.clockMips > 0)) return refuse("bad clock rate");
  if (typeof object.reboot !== "boolean") return refuse("reboot flag missing");
  if (image === null || typeof image !== "object") return refuse("no image");
  if (image.kind !== "bios" && image.kind !== "multiboot" && image.kind !== "raw") return refuse("unknown image kind");
  if (typeof image.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(image.sha256)) return refuse("bad image hash");
  if (!integer(image.loadAddress) || !integer(image.entry) || (image.entryBits !== 16 && image.entryBits !== 32) || typeof image.append !== "string") {
    return refuse("bad image placement");
  }
  const description: MachineDescription = {
    memoryBytes: object.memoryBytes as number,
    cpuCount: object.cpuCount as number,
    clock: object.clock,
    clockMips: object.clockMips,
    reboot: object.reboot,
    image: {
      kind: image.kind,
      sha256: image.sha256,
      loadAddress: image.loadAddress as number,
      entry: image.entry as number,
      entryBits: image.entryBits,
      append: image.append,
    },
  };
  // The text must be exactly what this vmmkit would write for it (no extra fields).
  if (machineConfiguration(description) !== text) return refuse("unexpected fields or order");
  return description;
}

/** The image bytes a saved state carries (its "image" section), checked against the configuration's hash. */
export function savedImage(parsed: ParsedSavedState, description: MachineDescription): Uint8Array {
  const section = parsed.sections.find((s) => s.unit === IMAGE_UNIT && s.instance === 0);
  if (section === undefined) throw new SavedStateError("MissingUnit", `the saved state has no section for unit "${IMAGE_UNIT}" instance 0`);
  if (sha256(section.payload) !== description.image.sha256) {
    throw new SavedStateError("ConfigurationMismatch", `the image in the saved state (section at offset ${section.offset}) does not match the configuration's SHA-256`, section.offset, IMAGE_UNIT);
  }
  return section.payload;
}

const IMAGE_UNIT = "image";

// Restore order matters: control registers before segments (CS's privilege level follows
// CR0.PE and EFLAGS.VM), RFLAGS before segments, and the event state last (queuing an
// event ends halt-suspend; internalActivityState then puts back what was saved).
const CPU_REGISTERS = [
  "x64Efer",
  "x64Cr4",
  "x64Cr3",
  "x64Cr0",
  "x64Cr2",
  "x64Rflags",
  "x64Es",
  "x64Cs",
  "x64Ss",
  "x64Ds",
  "x64Fs",
  "x64Gs",
  "x64Ldtr",
  "x64Tr",
  "x64Gdtr",
  "x64Idtr",
  "x64Rax",
  "x64Rcx",
  "x64Rdx",
  "x64Rbx",
  "x64Rsp",
  "x64Rbp",
  "x64Rsi",
  "x64Rdi",
  "x64Rip",
  "x64Dr0",
  "x64Dr1",
  "x64Dr2",
  "x64Dr3",
  "x64Dr6",
  "x64Dr7",
  "x64Xcr0",
  "x64Tsc",
  "x64ApicBase",
  "x64Pat",
  "x64SysenterCs",
  "x64SysenterEip",
  "x64SysenterEsp",
  "x64KernelGsBase",
  "x64Star",
  "x64Lstar",
  "x64Cstar",
  "x64Sfmask",
  "x64TscAux",
  "pendingEvent",
  "interruptState",
  "x64DeliverabilityNotifications",
  "x64PendingDebugException",
  "internalActivityState",
] as const satisfies readonly WhvRegisterName[];

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Register values as JSON: bigints become "0x…" strings, records keep their fields. */
function encodeValue(value: unknown): unknown {
  if (typeof value === "bigint") return "0x" + value.toString(16);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, field]) => [key, encodeValue(field)]));
  }
  return value;
}

/** Decodes `encoded` in the shape of `template` (a value read from a processor); throws naming the field. */
function decodeValue(encoded: unknown, template: unknown, where: string): unknown {
  if (typeof template === "bigint") {
    if (typeof encoded !== "string" || !/^0x[0-9a-f]{1,16}$/.test(encoded)) throw new Error(`${where} is not a 64-bit value`);
    return BigInt(encoded);
  }
  if (template !== null && typeof template === "object") {
    if (encoded === null || typeof encoded !== "object") throw new Error(`${where} is not a record`);
    const fields = encoded as Record<string, unknown>;
    // The pending event is a union: its fields follow its own eventPending/eventType.
    const shape = where.endsWith("pendingEvent") ? pendingEventTemplate(fields) : (template as Record<string, unknown>);
    const keys = Object.keys(shape);
    if (Object.keys(fields).length !== keys.length || !keys.every((key) => key in fields)) throw new Error(`${where} has fields ${Object.keys(fields).join(", ")}, expected ${keys.join(", ")}`);
    return Object.fromEntries(keys.map((key) => [key, decodeValue(fields[key], shape[key], `${where}.${key}`)]));
  }
  if (typeof encoded !== typeof template) throw new Error(`${where} is a ${typeof encoded}, expected a ${typeof template}`);
  return encoded;
}

function pendingEventTemplate(fields: Record<string, unknown>): Record<string, unknown> {
  if (fields.eventPending === false) return { eventPending: false };
  if (fields.eventType === "extInt") return { eventPending: true, eventType: "extInt", vector: 0 };
  if (fields.eventType === "exception") return { eventPending: true, eventType: "exception", vector: 0, deliverErrorCode: false, errorCode: 0, exceptionParameter: 0n };
  throw new Error(`pendingEvent has an unknown event ${JSON.stringify(fields.eventType)}`);
}

interface CpuPayload {
  readonly retired: number;
  readonly registers: Record<string, unknown>;
}

/** One vCPU: every register the accelerator exposes, and the instructions it retired since power-on. */
function cpuUnit(machine: Machine, vcpu: number): SavedStateUnit {
  const { platform, partition } = machine;
  const read = () => platform.getVirtualProcessorRegisters(partition, vcpu, CPU_REGISTERS) as WhvRegisterValue[];
  const decode = (payload: Uint8Array): { retired: number; values: WhvRegisterValue[] } => {
    const parsed = JSON.parse(decoder.decode(payload)) as CpuPayload;
    if (parsed === null || typeof parsed !== "object") throw new Error("the CPU payload is not a record");
    if (!Number.isSafeInteger(parsed.retired) || parsed.retired < 0) throw new Error("the retired-instruction count is not a count");
    const registers = parsed.registers;
    if (registers === null || typeof registers !== "object" || Object.keys(registers).length !== CPU_REGISTERS.length) {
      throw new Error(`the CPU payload must have the ${CPU_REGISTERS.length} registers ${CPU_REGISTERS.join(", ")}`);
    }
    const template = read();
    const values = CPU_REGISTERS.map((name, i) => {
      if (!(name in registers)) throw new Error(`register ${name} is missing`);
      return decodeValue(registers[name], template[i], name) as WhvRegisterValue;
    });
    return { retired: parsed.retired, values };
  };
  return {
    name: "cpu",
    instance: vcpu,
    version: 1,
    save() {
      const values = read();
      const registers = Object.fromEntries(CPU_REGISTERS.map((name, i) => [name, encodeValue(values[i])]));
      return encoder.encode(JSON.stringify({ retired: machine.instructionsRetiredBy(vcpu), registers } satisfies CpuPayload));
    },
    check(payload) {
      decode(payload);
    },
    load(payload) {
      const { retired, values } = decode(payload);
      platform.setVirtualProcessorRegisters(partition, vcpu, CPU_REGISTERS, values as never);
      machine.setInstructionsRetiredBy(vcpu, retired);
    },
  };
}

/** Machine time besides retired instructions (time skipped in HLT, realtime elapsed). */
function timeUnit(machine: Machine): SavedStateUnit {
  const decode = (payload: Uint8Array) => {
    if (payload.length !== 16) throw new Error(`the machine-time payload has ${payload.length} bytes, expected 16`);
    const view = new DataView(payload.buffer, payload.byteOffset, 16);
    const state = { skippedNanoseconds: view.getFloat64(0, true), elapsedNanoseconds: view.getFloat64(8, true) };
    if (!(state.skippedNanoseconds >= 0) || !(state.elapsedNanoseconds >= 0)) throw new Error("machine time must be a non-negative number of nanoseconds");
    return state;
  };
  return {
    name: "machine-time",
    version: 1,
    save() {
      const state = machine.devices.timeState();
      const bytes = new Uint8Array(16);
      const view = new DataView(bytes.buffer);
      view.setFloat64(0, state.skippedNanoseconds, true);
      view.setFloat64(8, state.elapsedNanoseconds, true);
      return bytes;
    },
    check: (payload) => void decode(payload),
    load: (payload) => machine.devices.restoreTime(decode(payload)),
  };
}

interface Stateful {
  saveState(): Uint8Array;
  loadState(bytes: Uint8Array): void;
}

/** A device's own saveState/loadState; `scratch` builds a throwaway instance that `check` loads into. */
function deviceUnit(name: string, device: Stateful, scratch: () => Stateful): SavedStateUnit {
  return {
    name,
    version: 1,
    save: () => device.saveState(),
    check: (payload) => scratch().loadState(payload),
    load: (payload) => device.loadState(payload),
  };
}

const silentSerial = { transmit() {} };

/**
 * Registers every unit of a `vmmkit run` machine with its VM, in restore order: the image
 * (checked against the configuration), each vCPU, RAM, machine time, the clock, then the
 * devices (which re-arm their timers against the restored clock).
 */
export function registerMachineUnits(machine: Machine, image: Uint8Array, description: MachineDescription): void {
  const { vm, devices } = machine;
  vm.registerUnit({
    name: IMAGE_UNIT,
    version: 1,
    save: () => image,
    check(payload) {
      if (sha256(payload) !== description.image.sha256) throw new Error("the image does not match the configuration's SHA-256");
    },
    load() {}, // the machine was built from these bytes
  });
  for (let vcpu = 0; vcpu < machine.cpuCount; vcpu++) vm.registerUnit(cpuUnit(machine, vcpu));
  vm.registerUnit(createRamUnit({ bytes: machine.memory.arena }));
  vm.registerUnit(timeUnit(machine));
  vm.registerUnit(deviceUnit("clock", devices.clock, () => new VirtualClock()));
  vm.registerUnit(
    deviceUnit("pic", devices.pic, () => {
      const pic = new Pic8259Pair();
      // The same wires in the same order as PcPlatform, so the bit positions match.
      for (const irq of [0, 8, 4]) pic.irqLine(irq);
      return pic;
    }),
  );
  vm.registerUnit(deviceUnit("pit", devices.pit, () => new Pit8254({ clock: new VirtualClock() })));
  vm.registerUnit(deviceUnit("rtc", devices.rtc, () => new CmosRtc({ clock: new VirtualClock(), memoryBytes: description.memoryBytes })));
  vm.registerUnit(deviceUnit("uart", devices.uart, () => new Uart16550(silentSerial, { clock: new VirtualClock() })));
  vm.registerUnit(deviceUnit("port92", devices.port92, () => new Port92({ onReset() {} })));
  const kbc = deviceUnit("kbc", devices.kbc, () => new Kbc8042({ onReset() {} }));
  // The last of the two A20 sources: put the gate's state on the processors (the gate only
  // tells them about changes, and restored processors start with A20 on).
  vm.registerUnit({ ...kbc, load: (payload, version, pass) => (kbc.load(payload, version, pass), devices.applyA20()) });
}

/**
 * Refuses to save a machine with dbgf breakpoints set: int3 breakpoints are bytes in guest
 * RAM and hardware ones live in debug registers, and a restored machine has no debugger
 * session that owns them.
 */
export function breakpointCount(machine: Machine): number {
  let count = 0;
  machine.debug.debugger.enumerate(() => void count++);
  return count;
}

// ---- transports ------------------------------------------------------------------------

/** Test hooks between the steps of an atomic write. */
export interface AtomicWriteHooks {
  afterWrite?(): void;
  afterSync?(): void;
}

/**
 * Writes a file atomically: everything goes to a temporary file in the same directory,
 * which is flushed to disk and then renamed over `path`. If anything fails (or the process
 * dies) before the rename, `path` still holds what it held before; the temporary file is
 * removed on failure.
 */
export async function writeFileAtomically(path: string, produce: (sink: SavedStateSink) => Promise<void>, hooks: AtomicWriteHooks = {}): Promise<number> {
  const target = resolve(path);
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  const fd = openSync(temporary, "w", 0o644);
  let open = true;
  let written = 0;
  try {
    await produce({
      write(chunk) {
        for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at, chunk.length - at);
        written += chunk.length;
      },
    });
    hooks.afterWrite?.();
    fsyncSync(fd);
    hooks.afterSync?.();
    closeSync(fd);
    open = false;
    renameSync(temporary, target);
  } catch (error) {
    if (open) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // already gone
    }
    throw error;
  }
  // The rename itself reaches the disk with the directory.
  try {
    const directory = openSync(dirname(target), "r");
    try {
      fsyncSync(directory);
    } finally {
      closeSync(directory);
    }
  } catch {
    // some file systems cannot sync a directory; the rename is still atomic
  }
  return written;
}

/** [HOST:]PORT of --teleport-to / --teleport-from (host 127.0.0.1 unless named). */
export function parseEndpoint(text: string, option: string): { host: string; port: number } {
  const match = /^(?:(.*):)?([0-9]{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new Error(`${option} wants [HOST:]PORT (for example 4444 or 127.0.0.1:4444), got "${text}"`);
  const host = match[1] === undefined || match[1] === "" ? "127.0.0.1" : match[1].replace(/^\[(.*)\]$/, "$1");
  return { host, port };
}

/** Connects to a teleport target; the sink writes with backpressure and `end()` closes cleanly. */
export async function connectTeleportTarget(host: string, port: number): Promise<{ sink: SavedStateSink; end(): Promise<void>; destroy(): void }> {
  const socket: Socket = await new Promise((resolvePromise, reject) => {
    const connection = createConnection({ host, port }, () => {
      connection.off("error", reject);
      resolvePromise(connection);
    });
    connection.once("error", reject);
  });
  let failure: Error | null = null;
  socket.on("error", (error) => (failure = error));
  return {
    sink: {
      write(chunk) {
        if (failure) throw failure;
        if (socket.write(chunk)) return;
        return new Promise<void>((resolvePromise, reject) => {
          socket.once("drain", resolvePromise);
          socket.once("close", () => reject(failure ?? new Error("the teleport target closed the connection")));
        });
      },
    },
    end: () =>
      new Promise<void>((resolvePromise, reject) => {
        if (failure) return reject(failure);
        socket.once("error", reject);
        socket.end(() => resolvePromise());
      }),
    destroy: () => socket.destroy(),
  };
}

/**
 * Listens on host:port for one teleport source and reads its whole stream. `onListening`
 * gets the port (useful with 0). Resolves to the bytes once the source closed its side.
 */
export function receiveTeleport(host: string, port: number, onListening: (port: number) => void): Promise<Uint8Array> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer((socket) => {
      server.close();
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("error", reject);
      socket.on("end", () => {
        socket.end();
        resolvePromise(new Uint8Array(Buffer.concat(chunks)));
      });
    });
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address();
      onListening(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}

/** A source over bytes already in memory. */
export function bytesSource(bytes: Uint8Array): SavedStateSource {
  let done = false;
  return {
    read() {
      if (done) return null;
      done = true;
      return bytes;
    },
  };
}
