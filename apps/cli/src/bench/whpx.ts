/**
 * `vmmkit bench whpx`: what the WHPX-shaped accelerator (@vmmkit/whpx-sim) costs.
 *
 * - ns per I/O-port exit round trip (runVirtualProcessor → x64IoPortAccess → tryIoEmulation →
 *   the next run) and per MMIO exit round trip (memoryAccess → tryMmioEmulation), next to the
 *   same OUT / store served by a bare Cpu's bus without leaving run() (the baseline);
 * - guest MIPS of a loop of RAM reads, writes and fetches through runVirtualProcessor next to
 *   the same loop on a bare Cpu run loop: the fast path never leaves the CPU (target ≥ 0.95).
 */
import { Cpu, MemoryAccess, RunExit, registers, type AccessSize } from "@vmmkit/cpu";
import { WhvEmulatorApi, WhvMapGpaRangeFlags, WhvPlatform, type WhvRegisterName, type WhvRegisterValues } from "@vmmkit/whpx-sim";
import { registerBenchmark, type BenchOptions } from "./registry.js";
import { ratio, type BenchReport, type Measurement } from "./report.js";

const RAM_BYTES = 0x10000;
const CODE = 0x1000;
const MMIO_SEGMENT = 0x2000; // ES: GPA 0x20000, not mapped
const DATA_SEGMENT = 0x200; // DS: GPA 0x2000

/** L: out 0x80, al; jmp L */
const OUT_LOOP = [0xe6, 0x80, 0xeb, 0xfc];
/** L: mov [es:0], al; jmp L */
const MMIO_LOOP = [0x26, 0xa2, 0x00, 0x00, 0xeb, 0xfa];
/** L: lodsw; add [bx], ax; inc bx; and si, 0xfff; and bx, 0xfff; jmp L — RAM reads, writes, fetches. */
const COMPUTE_LOOP = [0xad, 0x01, 0x07, 0x43, 0x81, 0xe6, 0xff, 0x0f, 0x81, 0xe3, 0xff, 0x0f, 0xeb, 0xf2];

let sink = 0;

interface Accelerated {
  readonly platform: WhvPlatform;
  readonly partition: ReturnType<WhvPlatform["createPartition"]>;
  readonly emulatorApi: WhvEmulatorApi;
  readonly emulator: ReturnType<WhvEmulatorApi["createEmulator"]>;
}

function accelerated(code: readonly number[]): Accelerated {
  const platform = new WhvPlatform();
  const partition = platform.createPartition();
  platform.setupPartition(partition);
  const ram = new Uint8Array(RAM_BYTES);
  ram.set(code, CODE);
  platform.mapGpaRange(partition, ram, 0n, BigInt(RAM_BYTES), WhvMapGpaRangeFlags.read | WhvMapGpaRangeFlags.write | WhvMapGpaRangeFlags.execute);
  platform.createVirtualProcessor(partition, 0);
  const segment = (selector: number, attributes: number) => ({ base: BigInt(selector * 16), limit: 0xffff, selector, attributes });
  platform.setVirtualProcessorRegisters(
    partition,
    0,
    ["x64Cs", "x64Ds", "x64Es", "x64Rip", "x64Rax"] as const,
    [segment(0, 0x9b), segment(DATA_SEGMENT, 0x93), segment(MMIO_SEGMENT, 0x93), BigInt(CODE), 0x41n],
  );
  const emulatorApi = new WhvEmulatorApi();
  const emulator = emulatorApi.createEmulator<number>({
    ioPort(_vp, access) {
      sink ^= access.data;
    },
    memory(_vp, access) {
      const address = Number(access.gpaAddress);
      if (address < RAM_BYTES) {
        if (access.direction === "read") access.data.set(ram.subarray(address, address + access.accessSize));
        else ram.set(access.data, address);
      } else {
        sink ^= access.data[0]!; // the MMIO device
      }
    },
    getVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(vp: number, names: N) {
      return platform.getVirtualProcessorRegisters(partition, vp, names);
    },
    setVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(vp: number, names: N, values: WhvRegisterValues<N>) {
      platform.setVirtualProcessorRegisters(partition, vp, names, values);
    },
  });
  return { platform, partition, emulatorApi, emulator };
}

/** `count` exit round trips: run, emulate, run again. */
async function exitRoundTrips(machine: Accelerated, count: number): Promise<void> {
  const { platform, partition, emulatorApi, emulator } = machine;
  for (let i = 0; i < count; i++) {
    const exit = await platform.runVirtualProcessor(partition, 0);
    let ok = false;
    if (exit.exitReason === "x64IoPortAccess") ok = emulatorApi.tryIoEmulation(emulator, 0, exit.vpContext, exit.ioPortAccess).emulationSuccessful;
    else if (exit.exitReason === "memoryAccess") ok = emulatorApi.tryMmioEmulation(emulator, 0, exit.vpContext, exit.memoryAccess).emulationSuccessful;
    if (!ok) throw new Error(`whpx bench: unexpected ${exit.exitReason} exit`);
  }
}

function bareCpu(code: readonly number[]): Cpu {
  const ram = new Uint8Array(RAM_BYTES);
  ram.set(code, CODE);
  const cpu = new Cpu({
    bus: {
      readPhysical: (_address: number, size: AccessSize) => (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1),
      writePhysical: (_address: number, value: number) => {
        sink ^= value;
      },
      readPort: () => 0xff,
      writePort: (_port: number, value: number) => {
        sink ^= value;
      },
    },
  });
  cpu.mapMemory(0, ram, MemoryAccess.All);
  cpu.setRealModeSegment(registers.CS, 0);
  cpu.setRealModeSegment(registers.DS, DATA_SEGMENT);
  cpu.setRealModeSegment(registers.ES, MMIO_SEGMENT);
  cpu.eip = CODE;
  cpu.regs[0] = 0x41;
  return cpu;
}

function runBare(cpu: Cpu, instructions: number): void {
  const target = cpu.instructionsRetired + instructions;
  while (cpu.instructionsRetired < target) {
    const exit = cpu.run(Math.min(1 << 18, target - cpu.instructionsRetired));
    if (exit !== RunExit.Budget) throw new Error(`whpx bench: the bare CPU stopped with exit ${exit}`);
  }
}

/** Mean ns per operation over `samples` timed calls, with the 95 % relative margin of error. */
async function timeSamples(name: string, samples: number, operations: number, call: () => Promise<void> | void, unit: "ns/op" | "MIPS" = "ns/op"): Promise<Measurement> {
  await call(); // warm-up
  const values: number[] = [];
  for (let sample = 0; sample < samples; sample++) {
    const started = performance.now();
    await call();
    const milliseconds = performance.now() - started;
    values.push(unit === "MIPS" ? operations / milliseconds / 1000 : (milliseconds * 1e6) / operations);
  }
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / Math.max(1, values.length - 1);
  return { name, value: mean, unit, errorPercent: ((1.96 * Math.sqrt(variance / values.length)) / mean) * 100, samples: values.length };
}

export async function runWhpxBenchmark(options: BenchOptions): Promise<BenchReport> {
  const samples = options.quick ? 3 : 12;
  const roundTrips = options.quick ? 200 : 5000;
  const instructions = options.quick ? 200_000 : 20_000_000;

  const io = accelerated(OUT_LOOP);
  const mmio = accelerated(MMIO_LOOP);
  const bareOut = bareCpu(OUT_LOOP);
  const bareStore = bareCpu(MMIO_LOOP);
  const measurements: Measurement[] = [
    await timeSamples("OUT, bare Cpu bus (no exit)", samples, roundTrips * 10, () => runBare(bareOut, roundTrips * 20)),
    await timeSamples("OUT, exit round trip (run, tryIoEmulation, resume)", samples, roundTrips, () => exitRoundTrips(io, roundTrips)),
    await timeSamples("MMIO store, bare Cpu bus (no exit)", samples, roundTrips * 10, () => runBare(bareStore, roundTrips * 20)),
    await timeSamples("MMIO store, exit round trip (run, tryMmioEmulation, resume)", samples, roundTrips, () => exitRoundTrips(mmio, roundTrips)),
  ];

  // Guest MIPS: alternate the two so both see the same machine conditions.
  const bare = bareCpu(COMPUTE_LOOP);
  const machine = accelerated(COMPUTE_LOOP);
  const throughAccelerator = async () => {
    const exit = await machine.platform.runVirtualProcessor(machine.partition, 0, { maxInstructions: instructions });
    if (exit.exitReason !== "canceled") throw new Error(`whpx bench: the compute loop exited with ${exit.exitReason}`);
  };
  const bareValues: Measurement[] = [];
  const acceleratedValues: Measurement[] = [];
  for (let round = 0; round < (options.quick ? 1 : 3); round++) {
    bareValues.push(await timeSamples("bare", samples, instructions, () => runBare(bare, instructions), "MIPS"));
    acceleratedValues.push(await timeSamples("accelerated", samples, instructions, throughAccelerator, "MIPS"));
  }
  const best = (list: Measurement[], name: string): Measurement => ({ ...list.reduce((a, b) => (b.value > a.value ? b : a)), name });
  measurements.push(best(bareValues, "guest MIPS, bare Cpu run loop"), best(acceleratedValues, "guest MIPS, through runVirtualProcessor"));

  const ratios = [
    ratio(measurements, "OUT: exit round trip / bare bus", "OUT, exit round trip (run, tryIoEmulation, resume)", "OUT, bare Cpu bus (no exit)"),
    ratio(measurements, "MMIO store: exit round trip / bare bus", "MMIO store, exit round trip (run, tryMmioEmulation, resume)", "MMIO store, bare Cpu bus (no exit)"),
    ratio(measurements, "guest MIPS: accelerator / bare Cpu", "guest MIPS, through runVirtualProcessor", "guest MIPS, bare Cpu run loop", "≥ 0.95"),
  ];
  return {
    benchmark: "whpx",
    measurements,
    ratios,
    notes: [
      "real-mode guests on one virtual processor; the bare rows run the same code on a Cpu whose bus serves the access inside run()",
      "an I/O round trip uses tryIoEmulation's IN/OUT shortcut; an MMIO round trip decodes and executes the store on the helper's scratch CPU",
      `guest MIPS: ${instructions} instructions of a loop of RAM reads, writes and fetches per sample, best of ${options.quick ? 1 : 3} alternating rounds; runVirtualProcessor yields to the event loop every 2^18 instructions`,
      `(sink ${sink & 1})`,
    ],
  };
}

registerBenchmark({
  name: "whpx",
  description: "ns per I/O-port and MMIO exit round trip through @vmmkit/whpx-sim, and guest MIPS through the accelerator vs a bare Cpu",
  run: runWhpxBenchmark,
});
