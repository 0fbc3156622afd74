/**
 * `vmmkit bench iom`: the cost of one guest IN or OUT through @vmmkit/iom's PortSpace.
 *
 * - IN and OUT of one byte with 1 registered range and with 100 (accesses spread over all
 *   of them), next to the same loop calling the device directly (the baseline);
 * - the same with a port-I/O breakpoint checker installed, as a debugger does while an I/O
 *   breakpoint is armed on another port: every access then asks it before and after.
 */
import { PortSpace, type IoBreakpointChecker, type IoBreakpointVerdict, type PortDevice } from "@vmmkit/iom";
import { registerBenchmark, type BenchOptions } from "./registry.js";
import { ratio, type BenchReport, type Measurement } from "./report.js";
import { timeOperations, type TimedOperation } from "./timing.js";

const ACCESSES_PER_CALL = 4096;
const RANGE_PORTS = 8;
const FIRST_RANGE = 0x1000;
const RANGE_STRIDE = 0x10;
/** Where the armed breakpoint sits: a port the measured loops never touch. */
const BREAKPOINT_PORT = 0x80;

/** Keeps results alive so the loops cannot be optimised away. */
let sink = 0;

/** A register file behind eight ports: the cheapest useful device. */
class RegisterDevice implements PortDevice {
  private readonly registers = new Uint8Array(RANGE_PORTS);
  readPort(offset: number): number {
    return this.registers[offset]!;
  }
  writePort(offset: number, value: number): void {
    this.registers[offset] = value;
  }
}

/** A debugger-style checker: one table lookup per access, as dbgf's port table does. */
class TableChecker implements IoBreakpointChecker {
  private readonly armed = new Uint8Array(0x10000);
  hits = 0;
  constructor(port: number) {
    this.armed[port] = 1;
  }
  checkPortAccess(port: number): IoBreakpointVerdict {
    if (this.armed[port] === 0) return "continue";
    this.hits++;
    return "continue";
  }
}

function portSpaceWith(rangeCount: number): { ports: PortSpace; devices: RegisterDevice[] } {
  const ports = new PortSpace();
  const devices: RegisterDevice[] = [];
  for (let i = 0; i < rangeCount; i++) {
    const device = new RegisterDevice();
    devices.push(device);
    ports.register({ port: FIRST_RANGE + i * RANGE_STRIDE, count: RANGE_PORTS, owner: `device ${i}`, device, maxAccessSize: 1 });
  }
  return { ports, devices };
}

/** Port numbers visiting every range in turn, each at a varying register. */
function accessPorts(rangeCount: number): Int32Array {
  const ports = new Int32Array(ACCESSES_PER_CALL);
  for (let i = 0; i < ports.length; i++) ports[i] = FIRST_RANGE + (i % rangeCount) * RANGE_STRIDE + ((i >> 3) & (RANGE_PORTS - 1));
  return ports;
}

function readLoop(ports: PortSpace, addresses: Int32Array): () => void {
  return () => {
    let sum = 0;
    for (let i = 0; i < addresses.length; i++) sum += ports.read(addresses[i]!, 1);
    sink ^= sum;
  };
}

function writeLoop(ports: PortSpace, addresses: Int32Array): () => void {
  return () => {
    for (let i = 0; i < addresses.length; i++) ports.write(addresses[i]!, i, 1);
  };
}

export async function runIomBenchmark(options: BenchOptions): Promise<BenchReport> {
  const one = portSpaceWith(1);
  const hundred = portSpaceWith(100);
  const watched = portSpaceWith(100);
  const checker = new TableChecker(BREAKPOINT_PORT);
  watched.ports.setBreakpointChecker(checker);
  const onePorts = accessPorts(1);
  const hundredPorts = accessPorts(100);

  // The baseline: the same loop calling the device of each access directly.
  const directDevices: PortDevice[] = [];
  const directOffsets = new Int32Array(ACCESSES_PER_CALL);
  for (let i = 0; i < ACCESSES_PER_CALL; i++) {
    const port = hundredPorts[i]!;
    directDevices.push(hundred.devices[Math.floor((port - FIRST_RANGE) / RANGE_STRIDE)]!);
    directOffsets[i] = (port - FIRST_RANGE) % RANGE_STRIDE;
  }

  const operations: TimedOperation[] = [
    {
      name: "IN, direct device call",
      run: () => {
        let sum = 0;
        for (let i = 0; i < ACCESSES_PER_CALL; i++) sum += directDevices[i]!.readPort!(directOffsets[i]!, 1, undefined);
        sink ^= sum;
      },
      operationsPerCall: ACCESSES_PER_CALL,
    },
    {
      name: "OUT, direct device call",
      run: () => {
        for (let i = 0; i < ACCESSES_PER_CALL; i++) directDevices[i]!.writePort!(directOffsets[i]!, i & 0xff, 1, undefined);
      },
      operationsPerCall: ACCESSES_PER_CALL,
    },
    { name: "IN, 1 range", run: readLoop(one.ports, onePorts), operationsPerCall: ACCESSES_PER_CALL },
    { name: "OUT, 1 range", run: writeLoop(one.ports, onePorts), operationsPerCall: ACCESSES_PER_CALL },
    { name: "IN, 100 ranges", run: readLoop(hundred.ports, hundredPorts), operationsPerCall: ACCESSES_PER_CALL },
    { name: "OUT, 100 ranges", run: writeLoop(hundred.ports, hundredPorts), operationsPerCall: ACCESSES_PER_CALL },
    { name: "IN, 100 ranges, I/O breakpoint armed elsewhere", run: readLoop(watched.ports, hundredPorts), operationsPerCall: ACCESSES_PER_CALL },
    { name: "OUT, 100 ranges, I/O breakpoint armed elsewhere", run: writeLoop(watched.ports, hundredPorts), operationsPerCall: ACCESSES_PER_CALL },
  ];
  const measured: Measurement[] = await timeOperations(operations, options);
  if (checker.hits !== 0) throw new Error(`iom bench: the breakpoint on port ${BREAKPOINT_PORT} was hit ${checker.hits} times`);
  if (watched.ports.statisticsFor(hundredPorts[0]!).writes.byte === 0) throw new Error("iom bench: the watched port space saw no writes");

  const ratios = (["IN", "OUT"] as const).flatMap((access) => [
    ratio(measured, `${access}: 1 range / direct call`, `${access}, 1 range`, `${access}, direct device call`),
    ratio(measured, `${access}: 100 ranges / 1 range`, `${access}, 100 ranges`, `${access}, 1 range`, "≈ 1 (one table lookup whatever the count)"),
    ratio(measured, `${access}: breakpoint armed / none`, `${access}, 100 ranges, I/O breakpoint armed elsewhere`, `${access}, 100 ranges`),
  ]);
  return {
    benchmark: "iom",
    measurements: measured,
    ratios,
    notes: [
      `${ACCESSES_PER_CALL} one-byte accesses per timed call; ranges of ${RANGE_PORTS} byte-wide ports; the 100-range loops visit every range in turn`,
      "every range's device is the same class, so the device call stays monomorphic here; a machine's mix of devices makes it megamorphic in both the direct and the dispatched loop",
      "without a breakpoint checker, dispatch pays one null check; the armed rows show a checker with one table lookup, called before and after each access",
      `per-port statistics are counted in every dispatched row (sink ${sink & 1})`,
    ],
  };
}

registerBenchmark({
  name: "iom",
  description: "ns per IN and OUT through @vmmkit/iom with 1 and 100 port ranges, and with an I/O breakpoint armed elsewhere",
  run: runIomBenchmark,
});
