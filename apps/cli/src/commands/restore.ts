/**
 * `vmmkit restore PATH` / `vmmkit restore --teleport-from [HOST:]PORT`, and the part of a
 * run both commands share: serial and debug consoles, the gdb server, the run itself, and
 * the save (to a file, atomically, or over TCP) when the machine stops for one.
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError, type Command } from "commander";
import { isSavedStateError, memorySource, parseSavedState, VmState } from "@vmmkit/vm";
import { CliError } from "../cli-error.js";
import type { CliIo } from "../cli.js";
import { buildMachine, type Machine, type MachineOptions } from "../machine/build-machine.js";
import { listenForGdb, type GdbEndpoint, type GdbListener } from "../machine/gdb-tcp.js";
import { loadMultiboot, loadRaw, loadRom, type LoadedImage } from "../machine/images.js";
import {
  breakpointCount,
  connectTeleportTarget,
  machineConfiguration,
  parseEndpoint,
  parseMachineConfiguration,
  receiveTeleport,
  registerMachineUnits,
  savedImage,
  writeFileAtomically,
  type MachineDescription,
} from "../machine/saved-state.js";
import { openSerialBackend } from "../machine/serial-backends.js";

/** Options of `run` and `restore` that decide what happens around the machine. */
export interface SessionOptions {
  serial: string;
  debugcon: string;
  maxInstructions?: number;
  timeout?: number;
  gdb?: GdbEndpoint;
  waitGdb?: boolean;
  save?: string;
  teleportTo?: string;
  stopAfterInstructions?: number;
}

/** A state-file problem as one line: "[code] message". */
function stateError(what: string, error: unknown): CliError {
  if (isSavedStateError(error)) return new CliError(`${what}: SavedStateError ${error.code}: ${error.message}`);
  return new CliError(`${what}: ${error instanceof Error ? error.message : String(error)}`);
}

/** Places an image into a new machine's memory as `description` says. */
export function imageLoader(bytes: Uint8Array, description: MachineDescription): MachineOptions["load"] {
  const { image } = description;
  return (memory): LoadedImage => {
    if (image.kind === "bios") return loadRom(memory, bytes);
    if (image.kind === "multiboot") return loadMultiboot(memory, bytes, description.memoryBytes, image.append);
    return loadRaw(memory, bytes, image.loadAddress, image.entry, image.entryBits);
  };
}

/**
 * Builds a machine from its description, with its saved-state units registered. `serial`
 * and `debugConsole` as for buildMachine.
 */
export function buildDescribedMachine(
  description: MachineDescription,
  image: Uint8Array,
  consoles: Pick<MachineOptions, "serial" | "debugConsole"> & { waitForDebugger?: boolean },
): Machine {
  const machine = buildMachine({
    memoryBytes: description.memoryBytes,
    serial: consoles.serial,
    ...(consoles.debugConsole !== undefined ? { debugConsole: consoles.debugConsole } : {}),
    clock: description.clock,
    clockMips: description.clockMips,
    load: imageLoader(image, description),
    cpuCount: description.cpuCount,
    waitForDebugger: consoles.waitForDebugger === true,
    noReboot: !description.reboot,
    configuration: machineConfiguration(description),
  });
  registerMachineUnits(machine, image, description);
  return machine;
}

/**
 * Runs a machine built by `build` (given the consoles) until it stops; when it stops for a
 * save (--stop-after-instructions, SIGINT, SIGTERM) writes the state to --save's file or
 * --teleport-to's target and powers it off. Resolves to the process exit status.
 */
export async function runMachineSession(
  options: SessionOptions,
  io: CliIo,
  build: (consoles: Pick<MachineOptions, "serial" | "debugConsole"> & { waitForDebugger: boolean }) => Machine | Promise<Machine>,
): Promise<number> {
  if (options.waitGdb === true && options.gdb === undefined) throw new CliError("--wait-gdb needs --gdb [HOST:]PORT to say where gdb connects");
  if (options.save !== undefined && options.teleportTo !== undefined) throw new CliError("give --save or --teleport-to, not both");
  const saving = options.save !== undefined || options.teleportTo !== undefined;
  if (options.stopAfterInstructions !== undefined && !saving) throw new CliError("--stop-after-instructions needs --save PATH or --teleport-to HOST:PORT to say where the state goes");
  let teleport: Awaited<ReturnType<typeof connectTeleportTarget>> | undefined;
  if (options.teleportTo !== undefined) {
    let endpoint: { host: string; port: number };
    try {
      endpoint = parseEndpoint(options.teleportTo, "--teleport-to");
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    try {
      teleport = await connectTeleportTarget(endpoint.host, endpoint.port);
    } catch (error) {
      throw new CliError(`cannot connect to the teleport target ${endpoint.host}:${endpoint.port}: ${(error as Error).message}`);
    }
  }
  const serial = openSerialBackend(options.serial, io.stdout, "--serial", io.stdin ?? null);
  const debugConsole = options.debugcon === "none" ? undefined : openSerialBackend(options.debugcon, io.stdout, "--debugcon");
  // Output without a line end (a prompt) still shows up promptly.
  const flusher = setInterval(() => {
    serial.flush();
    debugConsole?.flush();
  }, 50);
  let gdb: GdbListener | undefined;
  let onSignal: (() => void) | undefined;
  try {
    const machine = await build({ serial, ...(debugConsole !== undefined ? { debugConsole } : {}), waitForDebugger: options.waitGdb === true });
    await serial.connect(machine.devices.uart, {
      quit: () => machine.quit(),
      log: (line) => io.stderr.write(`\r\nvmmkit: ${line}\r\n`),
    });
    if (options.gdb !== undefined) {
      // `monitor save PATH` while gdb holds the machine: every vCPU is parked, so the state is
      // written as it stands, and `vmmkit restore PATH` continues from there.
      machine.debug.addMonitorCommand("save", "save PATH                          write the machine's state to PATH (vmmkit restore PATH continues it)", async (path, print) => {
        if (path.trim() === "") throw new Error("usage: monitor save PATH");
        const breakpoints = breakpointCount(machine);
        if (breakpoints > 0) throw new Error(`${breakpoints} breakpoint(s) are set; delete them first (a saved state keeps none)`);
        const bytes = await writeFileAtomically(path.trim(), (sink) => machine.vm.saveHeld({ sink }));
        print(`saved ${bytes} bytes to ${path.trim()}\n`);
      });
      gdb = await listenForGdb(machine.debug, options.gdb, (line) => io.stderr.write(`vmmkit: ${line}\n`));
      const where = `${options.gdb.host}:${gdb.port}`;
      io.stderr.write(`vmmkit: gdb server listening on ${where}${options.waitGdb === true ? " (waiting for gdb before the first instruction)" : ""}\n`);
    }
    if (saving) {
      onSignal = () => machine.requestSuspend();
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    }
    const outcome = await machine.run({
      ...(options.maxInstructions !== undefined ? { maxInstructions: options.maxInstructions } : {}),
      ...(options.timeout !== undefined ? { timeoutSeconds: options.timeout } : {}),
      ...(options.stopAfterInstructions !== undefined ? { stopAfterInstructions: options.stopAfterInstructions } : {}),
    });
    serial.flush();
    debugConsole?.flush();
    if (outcome.reason === "suspended") return await saveAndPowerOff(machine, options, io, teleport);
    if (outcome.message) io.stderr.write(`vmmkit: ${outcome.message}\n`);
    if (teleport !== undefined) io.stderr.write("vmmkit: the guest stopped before the teleport; nothing was sent\n");
    return outcome.status & 0xff;
  } finally {
    if (onSignal !== undefined) {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    teleport?.destroy();
    clearInterval(flusher);
    serial.close();
    debugConsole?.close();
    await gdb?.close();
  }
}

async function saveAndPowerOff(machine: Machine, options: SessionOptions, io: CliIo, teleport: Awaited<ReturnType<typeof connectTeleportTarget>> | undefined): Promise<number> {
  const { vm } = machine;
  const at = `vCPU 0 at ${machine.instructionsRetiredBy(0)} instructions`;
  try {
    const breakpoints = breakpointCount(machine);
    if (breakpoints > 0) {
      throw new CliError(`cannot save: ${breakpoints} debugger breakpoint${breakpoints === 1 ? " is" : "s are"} set (they live in guest memory and registers); clear them first`);
    }
    if (teleport !== undefined) {
      await vm.save({ sink: teleport.sink, teleport: true });
      await teleport.end();
      io.stderr.write(`vmmkit: teleported the machine to ${options.teleportTo} (${at})\n`);
    } else {
      const path = options.save!;
      let bytes: number;
      try {
        bytes = await writeFileAtomically(path, async (sink) => void (await vm.save({ sink })));
      } catch (error) {
        throw new CliError(`cannot save the machine to ${path}: ${(error as Error).message} (the previous file, if any, is unchanged)`);
      }
      io.stderr.write(`vmmkit: saved the machine state to ${path} (${bytes} bytes, ${at})\n`);
    }
    return 0;
  } finally {
    if (vm.state !== VmState.Off) await vm.powerOff();
  }
}

/** Reads and checks a saved state enough to build its machine: container, configuration, image. */
function describeState(bytes: Uint8Array, what: string): { description: MachineDescription; image: Uint8Array } {
  try {
    const parsed = parseSavedState(bytes);
    const description = parseMachineConfiguration(parsed.header.configuration);
    return { description, image: savedImage(parsed, description) };
  } catch (error) {
    throw stateError(`cannot restore ${what}`, error);
  }
}

interface RestoreOptions extends SessionOptions {
  teleportFrom?: string;
}

async function restoreCommand(path: string | undefined, options: RestoreOptions, io: CliIo): Promise<number> {
  if ((path === undefined) === (options.teleportFrom === undefined)) throw new CliError("give a state file to restore or --teleport-from [HOST:]PORT, one of them");
  let bytes: Uint8Array;
  let what: string;
  if (path !== undefined) {
    what = path;
    try {
      bytes = new Uint8Array(readFileSync(path));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new CliError(`cannot read the state file ${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (error as Error).message}`);
    }
  } else {
    let endpoint: { host: string; port: number };
    try {
      endpoint = parseEndpoint(options.teleportFrom!, "--teleport-from");
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    what = `the teleport from ${endpoint.host}:${endpoint.port}`;
    bytes = await receiveTeleport(endpoint.host, endpoint.port, (port) => io.stderr.write(`vmmkit: waiting for a teleport on ${endpoint.host}:${port}\n`)).catch((error: Error) => {
      throw new CliError(`cannot receive a teleport on ${endpoint.host}:${endpoint.port}: ${error.message}`);
    });
  }
  const { description, image } = describeState(bytes, what);
  // Every check of the load (each unit's too) on a throwaway machine first, so a bad state
  // opens no console or file and runs nothing.
  const load = async (machine: Machine) => {
    try {
      await machine.vm.load({ source: memorySource(bytes), teleporting: options.teleportFrom !== undefined });
    } catch (error) {
      throw stateError(`cannot restore ${what}`, error);
    }
  };
  const probe = buildDescribedMachine(description, image, { serial: { transmit() {} } });
  await load(probe);
  await probe.vm.powerOff();
  return runMachineSession(options, io, async (consoles) => {
    const machine = buildDescribedMachine(description, image, consoles);
    await load(machine);
    return machine;
  });
}

function parsePositiveInteger(what: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isSafeInteger(number) || number <= 0) throw new InvalidArgumentError(`${what} must be a positive integer, got "${value}"`);
    return number;
  };
}

function parseSeconds(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError(`the timeout must be a positive number of seconds, got "${value}"`);
  return number;
}

/** The save options `run` and `restore` share. */
export function addSaveOptions(command: Command): Command {
  return command
    .option("--save <path>", "on SIGINT/SIGTERM or at --stop-after-instructions, suspend the guest, save it to this file (written atomically) and exit 0")
    .option("--teleport-to <[host:]port>", "like --save, but send the state over TCP to a `vmmkit restore --teleport-from` (host 127.0.0.1 unless named)")
    .option("--stop-after-instructions <count>", "with --save or --teleport-to: stop once vCPU 0 has retired exactly this many instructions since power-on", parsePositiveInteger("--stop-after-instructions"));
}

export function registerRestoreCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const command = program
    .command("restore")
    .description(
      "Continue a machine saved by `vmmkit run --save` (or received from `--teleport-to`) where it stopped. The state file carries the image " +
        "and the machine's configuration; a truncated, corrupt or foreign file is refused (exit status 1) before anything runs.",
    )
    .argument("[state-file]", "a file written by --save")
    .option("--teleport-from <[host:]port>", "receive the state from `vmmkit run --teleport-to` on this TCP port (host 127.0.0.1 unless named; port 0 picks a free one)")
    .option("--serial <target>", "COM1: stdio, file:PATH, tcp:[HOST:]PORT or none", "stdio")
    .option("--debugcon <target>", "the debug console (ports 0xE9 and 0x402): stdio, file:PATH or none", "none")
    .option("--max-instructions <count>", "stop once a vCPU has retired this many instructions since the original power-on (exit status 124)", parsePositiveInteger("--max-instructions"))
    .option("--timeout <seconds>", "stop after this many seconds (exit status 124)", parseSeconds);
  addSaveOptions(command).action(async (path: string | undefined, options: RestoreOptions) => {
    setExitCode(await restoreCommand(path, options, io));
  });
}
