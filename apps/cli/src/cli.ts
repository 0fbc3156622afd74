/**
 * The `vmmkit` command line. `runCli` is the whole program minus process.exit, so tests
 * drive exactly what users run.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { CliError } from "./cli-error.js";
import { registerBenchCommand } from "./commands/bench.js";
import { registerCpuTestCommand } from "./commands/cpu-test.js";
import { addSaveOptions, buildDescribedMachine, registerRestoreCommand, runMachineSession } from "./commands/restore.js";
import { MAX_CPUS } from "./machine/build-machine.js";
import { parseGdbEndpoint, type GdbEndpoint } from "./machine/gdb-tcp.js";
import { findMultibootHeader } from "./machine/images.js";
import { sha256, type MachineDescription } from "./machine/saved-state.js";

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Keyboard input for `--serial stdio`; none in tests that do not type. */
  readonly stdin?: NodeJS.ReadableStream;
}

const packageJson = createRequire(import.meta.url)("../package.json") as { version: string };

/** Parses 0x-prefixed hex or decimal integers for address options. */
function parseAddress(value: string): number {
  const text = value.trim().toLowerCase();
  const number = /^0x[0-9a-f]+$/.test(text) ? parseInt(text.slice(2), 16) : /^[0-9]+$/.test(text) ? parseInt(text, 10) : NaN;
  if (!Number.isSafeInteger(number) || number < 0 || number > 0xffffffff) {
    throw new InvalidArgumentError(`"${value}" is not an address (use decimal or 0x hex, below 4 GiB)`);
  }
  return number;
}

/** QEMU-style memory size: a number of MiB, or with a K, M or G suffix. */
export function parseMemorySize(value: string): number {
  const match = /^([0-9]+)([kmg]?)(i?b)?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`"${value}" is not a memory size (examples: 64, 64M, 1G)`);
  const amount = parseInt(match[1]!, 10);
  const unit = (match[2] || "m").toLowerCase();
  const bytes = amount * (unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : 1024 ** 3);
  if (bytes % 4096 !== 0) throw new InvalidArgumentError(`memory size ${value} is not a multiple of 4 KiB`);
  return bytes;
}

function parsePositiveInteger(what: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isSafeInteger(number) || number <= 0) throw new InvalidArgumentError(`${what} must be a positive integer, got "${value}"`);
    return number;
  };
}

function parseGdbOption(value: string): GdbEndpoint {
  try {
    return parseGdbEndpoint(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function parsePositiveNumber(what: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError(`${what} must be a positive number, got "${value}"`);
    return number;
  };
}

function parseSeconds(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError(`the timeout must be a positive number of seconds, got "${value}"`);
  return number;
}

interface RunOptions {
  bios?: string;
  loadAddress: number;
  entry?: number;
  entryMode: "16" | "32";
  append: string;
  mem: number;
  serial: string;
  maxInstructions?: number;
  timeout?: number;
  smp: number;
  clock: "virtual" | "realtime";
  clockRate: number;
  debugcon: string;
  gdb?: GdbEndpoint;
  waitGdb?: boolean;
  reboot: boolean;
  save?: string;
  teleportTo?: string;
  stopAfterInstructions?: number;
}

function readImage(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (error as Error).message;
    throw new CliError(`cannot read ${what} ${path}: ${reason}`);
  }
}

async function runCommand(imagePath: string | undefined, options: RunOptions, io: CliIo): Promise<number> {
  if (imagePath === undefined && options.bios === undefined) {
    throw new CliError("nothing to run: give an image (raw binary or multiboot kernel) or --bios FILE");
  }
  if (imagePath !== undefined && options.bios !== undefined) {
    throw new CliError("give either an image or --bios, not both (a firmware image is the whole machine's boot code)");
  }
  const bytes = imagePath !== undefined ? readImage(imagePath, "image") : readImage(options.bios!, "firmware image");
  // Everything that decides how the machine is built: a saved state records it.
  const description: MachineDescription = {
    memoryBytes: options.mem,
    cpuCount: options.smp,
    clock: options.clock,
    clockMips: options.clockRate,
    reboot: options.reboot,
    image: {
      kind: options.bios !== undefined ? "bios" : findMultibootHeader(bytes) >= 0 ? "multiboot" : "raw",
      sha256: sha256(bytes),
      loadAddress: options.loadAddress,
      entry: options.entry ?? options.loadAddress,
      entryBits: options.entryMode === "32" ? 32 : 16,
      append: options.append,
    },
  };
  return runMachineSession(options, io, (consoles) => buildDescribedMachine(description, bytes, consoles));
}

export function createProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command();
  program
    .name("vmmkit")
    .description("Build, run and debug x86 virtual machines")
    .version(packageJson.version, "-V, --version", "print the vmmkit version")
    .helpOption("-h, --help", "show help")
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .showHelpAfterError("(vmmkit --help lists the commands)")
    .exitOverride();

  const run = program
    .command("run")
    .description(
      "Run a guest: a raw flat binary, a multiboot v1 kernel (detected by its header, loaded as qemu -kernel does), " +
        "or a firmware ROM with --bios. COM1 goes to the terminal; the exit status is 0 after HLT with interrupts off, " +
        "(v << 1) | 1 after the guest writes v to the isa-debug-exit port 0xF4, 124 when a limit stops the guest, 1 on errors.",
    )
    .argument("[image]", "guest image file")
    .option("--bios <file>", "firmware image (64 KiB - 2 MiB) mapped to end at 4 GiB and at 1 MiB, started at the reset vector")
    .option("--load-address <address>", "where a raw binary is loaded", parseAddress, 0x7c00)
    .option("--entry <address>", "entry point of a raw binary (default: the load address)", parseAddress)
    .addOption(new Option("--entry-mode <bits>", "16: real mode at CS:IP from --entry; 32: flat 32-bit protected mode").choices(["16", "32"]).default("16"))
    .option("--append <command-line>", "multiboot command line passed to the kernel", "")
    .option("--mem <size>", "guest RAM: MiB, or with a K/M/G suffix", parseMemorySize, 64 * 1024 * 1024)
    .option("--serial <target>", "COM1: stdio (the terminal; Ctrl-A x quits), file:PATH (output only), tcp:[HOST:]PORT (a TCP server on 127.0.0.1 unless a host is named) or none", "stdio")
    .option("--max-instructions <count>", "stop after this many guest instructions (exit status 124)", parsePositiveInteger("--max-instructions"))
    .option("--timeout <seconds>", "stop after this many seconds (exit status 124)", parseSeconds)
    .option("--debugcon <target>", "the debug console (ports 0xE9 and 0x402): stdio, file:PATH or none", "none")
    .addOption(new Option("--clock <mode>", "virtual: machine time follows executed instructions (same output every run); realtime: the host's clock").choices(["virtual", "realtime"]).default("virtual"))
    .option("--clock-rate <mips>", "virtual clock speed: guest instructions per microsecond", parsePositiveNumber("--clock-rate"), 100)
    .option("--no-reboot", "end the run when the guest triple-faults or resets the machine, instead of resetting it (as qemu -no-reboot)")
    .option("--smp <count>", `virtual processors (1-${MAX_CPUS}); all start at the image's entry point`, parsePositiveInteger("--smp"), 1)
    .option("--gdb <[host:]port>", "serve the GDB remote protocol on this TCP port (host 127.0.0.1 unless named; port 0 picks a free one)", parseGdbOption)
    .option("--wait-gdb", "hold the guest before its first instruction until gdb attaches and continues");
  addSaveOptions(run).action(async (image: string | undefined, options: RunOptions) => {
      setExitCode(await runCommand(image, options, io));
    });

  registerBenchCommand(program, io);
  registerCpuTestCommand(program, io, setExitCode);
  registerRestoreCommand(program, io, setExitCode);
  return program;
}

/** Runs the CLI with `argv` (without "node" and the script); resolves to the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = createProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync(argv as string[], { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end "successfully"; parse errors were already printed by commander.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof CliError) {
      io.stderr.write(`vmmkit: ${error.message}\n`);
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`vmmkit: internal error: ${message}\n`);
    if (process.env.VMMKIT_DEBUG && error instanceof Error && error.stack) io.stderr.write(error.stack + "\n");
    else io.stderr.write("vmmkit: (set VMMKIT_DEBUG=1 for details; please report this as a bug)\n");
    return 70;
  }
}
