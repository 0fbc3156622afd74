/**
 * The compute workloads of `vmmkit bench cpu` (guests/bench32 and guests/bench16), run on a
 * bare Cpu or through the whole machine, with their checksums checked against the
 * references the guest build recorded (a native run of the C code, a Python model).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Cpu, MemoryAccess, RunExit, type AccessSize } from "@vmmkit/cpu";
import { PhysicalMemory } from "@vmmkit/pgm";
import { buildMachine, type Machine } from "../machine/build-machine.js";
import { loadMultiboot, loadRaw, type EntryState, type LoadedImage } from "../machine/images.js";
import { CONVENTIONAL_MEMORY_END, EXTENDED_MEMORY_START } from "../machine/layout.js";

export interface GuestWorkload {
  readonly name: "bench32" | "bench16";
  /** What the workload exercises, for reports. */
  readonly description: string;
}

export const WORKLOADS: readonly GuestWorkload[] = [
  { name: "bench32", description: "32-bit protected mode, gcc -O2 C: CRC-32, sieve, insertion sort" },
  { name: "bench16", description: "16-bit real mode: LODSB CRC-16, MOVSW copy, 32-bit ROL/IMUL hash, far/near calls" },
];

export interface WorkloadRun {
  readonly instructions: number;
  readonly milliseconds: number;
  readonly checksum: string;
  readonly output: string;
}

export const MEMORY_BYTES = 32 * 1024 * 1024;
const BENCH16_ITERATIONS_OFFSET = 10;

/** Finds a file of the repository by walking up from this module (works from src and dist). */
export function repositoryFile(relative: string): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 8; depth++) {
    const candidate = join(directory, relative);
    if (existsSync(candidate)) return candidate;
    directory = dirname(directory);
  }
  throw new Error(`cannot find ${relative} above ${dirname(fileURLToPath(import.meta.url))}`);
}

/** The reference checksum recorded by guests/build.sh for `iterations`, if any. */
export function expectedChecksum(workload: GuestWorkload["name"], iterations: number): string | undefined {
  const lines = readFileSync(repositoryFile(`guests/${workload}/expected.txt`), "utf8").trim().split("\n");
  return lines.map((line) => line.split(" ")).find(([count]) => Number(count) === iterations)?.[1];
}

function imageFor(workload: GuestWorkload["name"], iterations: number): Uint8Array {
  if (workload === "bench32") return new Uint8Array(readFileSync(repositoryFile("guests/bench32/bench32.elf")));
  const image = new Uint8Array(readFileSync(repositoryFile("guests/bench16/bench16.bin")));
  if (new TextDecoder().decode(image.subarray(2, 10)) !== "vmmkit16") throw new Error("bench16.bin lacks its signature");
  new DataView(image.buffer, image.byteOffset).setUint32(BENCH16_ITERATIONS_OFFSET, iterations, true);
  return image;
}

function load(workload: GuestWorkload["name"], iterations: number, memory: PhysicalMemory): LoadedImage {
  const image = imageFor(workload, iterations);
  return workload === "bench32"
    ? loadMultiboot(memory, image, MEMORY_BYTES, `iterations=${iterations}`)
    : loadRaw(memory, image, 0x7c00, 0x7c00, 16);
}

function checksumOf(output: string, workload: string): string {
  const match = new RegExp(`${workload} done iterations=\\S+ checksum=([0-9a-f]{8})`).exec(output);
  if (!match) throw new Error(`${workload} did not report a checksum; its output was: ${JSON.stringify(output)}`);
  return match[1]!;
}

/** Runs a workload on a bare Cpu (no accelerator, no VM loop): the interpreter's own speed. */
export function runOnBareCpu(workload: GuestWorkload["name"], iterations: number, jit: boolean): WorkloadRun {
  const memory = new PhysicalMemory({ arenaSize: MEMORY_BYTES });
  memory.addRam(0, CONVENTIONAL_MEMORY_END, "conventional memory");
  memory.addRam(EXTENDED_MEMORY_START, MEMORY_BYTES - EXTENDED_MEMORY_START, "extended memory");
  const image = load(workload, iterations, memory);
  let output = "";
  let finished = false;
  const cpu: Cpu = new Cpu({
    jit,
    bus: {
      readPhysical: (_address: number, size: AccessSize) => (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1),
      writePhysical: () => {},
      readPort: (port: number) => (port === 0x3fd ? 0x60 : 0xff), // COM1 line status: transmitter empty
      writePort: (port: number, value: number) => {
        if (port === 0x3f8) output += String.fromCharCode(value);
        if (port === 0xf4) {
          finished = true;
          cpu.requestStop();
        }
      },
    },
  });
  cpu.mapMemory(0, memory.arena, MemoryAccess.All);
  enter(cpu, image.entry);
  const started = performance.now();
  while (!finished) {
    const exit = cpu.run(1 << 22);
    if (exit !== RunExit.Budget && exit !== RunExit.Stop) throw new Error(`${workload} stopped with exit ${exit} at 0x${(cpu.eip >>> 0).toString(16)}`);
  }
  const milliseconds = performance.now() - started;
  return { instructions: cpu.instructionsRetired, milliseconds, checksum: checksumOf(output, workload), output };
}

/** Runs a workload as `vmmkit run` does: pgm, whpx-sim, the VM execution loop, the devices. */
export async function runOnMachine(workload: GuestWorkload["name"], iterations: number, prepare?: (machine: Machine) => void): Promise<WorkloadRun> {
  let output = "";
  const machine = buildMachine({
    memoryBytes: MEMORY_BYTES,
    serial: { transmit: (byte) => (output += String.fromCharCode(byte)) },
    load: (memory) => load(workload, iterations, memory),
  });
  prepare?.(machine);
  const started = performance.now();
  const outcome = await machine.run();
  const milliseconds = performance.now() - started;
  if (outcome.reason !== "debug-exit") throw new Error(`${workload} ended with ${outcome.reason}: ${outcome.message ?? ""}`);
  return { instructions: machine.instructionsRetired(), milliseconds, checksum: checksumOf(output, workload), output };
}

function enter(cpu: Cpu, entry: EntryState): void {
  if (entry.mode === "real") {
    for (const segment of [0, 2, 3, 4, 5]) cpu.setRealModeSegment(segment, 0);
    cpu.setRealModeSegment(1, entry.cs);
    cpu.eip = entry.ip;
    return;
  }
  if (entry.mode !== "flat32") throw new Error("the CPU workloads start in real mode or flat 32-bit mode");
  cpu.gdtBase = entry.gdtAddress;
  cpu.gdtLimit = 23;
  cpu.writeCr0(0x11);
  cpu.setSegmentCache(1, 0x08, 0, 0xffffffff, 0xc09b);
  for (const segment of [0, 2, 3, 4, 5]) cpu.setSegmentCache(segment, 0x10, 0, 0xffffffff, 0xc093);
  cpu.updateModeCaches();
  cpu.eip = entry.eip;
  cpu.regs[0] = entry.eax ?? 0;
  cpu.regs[3] = entry.ebx ?? 0;
}
