/**
 * `vmmkit bench gdb`: the gdb stub of `vmmkit run --gdb` on guests/gdb-target.
 *
 * - Debian's gdb (a separate process) timing `stepi N` as one command, from gdb's Python;
 * - a raw remote-protocol client: `s` packets per second and `c` → stop latency at a
 *   breakpoint hit every two instructions (the guest's spin loop);
 * - the baseline, measured in the same run with the same client: a trivial RSP server on
 *   loopback that answers every packet at once (the transport floor of a Node stub).
 * The stub, the floor server and the raw client share this process's event loop; gdb does not.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection, createServer, type Socket } from "node:net";
import { Writable } from "node:stream";
import { encodePacket, RspDecoder, type RspInput } from "@vmmkit/dbgf";
import { runCli } from "../cli.js";
import { repositoryFile } from "./guest-workloads.js";
import { registerBenchmark, type BenchOptions } from "./registry.js";
import { ratio, type BenchReport, type Measurement } from "./report.js";

class Sink extends Writable {
  text = "";
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

/** A raw RSP client: one packet out, wait for its reply packet. */
class RawClient {
  private readonly decoder = new RspDecoder(1 << 20);
  private waiting: ((payload: string) => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) =>
      this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length), (input: RspInput) => {
        if (input.kind !== "packet") return;
        const resolve = this.waiting;
        this.waiting = null;
        resolve?.(input.payload);
      }),
    );
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: "127.0.0.1", port, noDelay: true }, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  request(payload: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.socket.write(encodePacket(payload));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

function symbolAddress(elf: Uint8Array, name: string): number {
  // The ELF32 symbol table: find .symtab and its string table through the section headers.
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const sectionOffset = view.getUint32(0x20, true);
  const sectionSize = view.getUint16(0x2e, true);
  const sectionCount = view.getUint16(0x30, true);
  for (let i = 0; i < sectionCount; i++) {
    const header = sectionOffset + i * sectionSize;
    if (view.getUint32(header + 4, true) !== 2) continue; // SHT_SYMTAB
    const offset = view.getUint32(header + 0x10, true);
    const size = view.getUint32(header + 0x14, true);
    const strings = sectionOffset + view.getUint32(header + 0x18, true) * sectionSize;
    const stringsOffset = view.getUint32(strings + 0x10, true);
    for (let symbol = offset; symbol < offset + size; symbol += 16) {
      let end = stringsOffset + view.getUint32(symbol, true);
      let text = "";
      while (elf[end] !== 0) text += String.fromCharCode(elf[end++]!);
      if (text === name) return view.getUint32(symbol + 4, true);
    }
  }
  throw new Error(`gdb bench: symbol ${name} is not in the guest ELF`);
}

async function startStub(image: string): Promise<{ port: number; finished: Promise<number> }> {
  const stderr = new Sink();
  const finished = runCli(["run", image, "--gdb", "0", "--wait-gdb", "--serial", "none"], { stdout: new Sink(), stderr });
  for (let tries = 0; tries < 500; tries++) {
    const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr.text);
    if (match) return { port: Number(match[1]), finished };
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`gdb bench: vmmkit did not start its gdb server: ${stderr.text}`);
}

/** The transport floor: answers every packet with a stop reply at once. */
async function startFloorServer(): Promise<{ port: number; close: () => void }> {
  const server = createServer({ noDelay: true }, (socket) => {
    const decoder = new RspDecoder(1 << 20);
    socket.on("data", (chunk: Buffer) =>
      decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length), (input) => {
        if (input.kind === "packet") socket.write(encodePacket("T05thread:1;"));
      }),
    );
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  return { port: typeof address === "object" && address !== null ? address.port : 0, close: () => server.close() };
}

async function timeRequests(client: RawClient, payload: string, count: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const reply = await client.request(payload);
    if (!reply.startsWith("T")) throw new Error(`gdb bench: "${payload}" answered "${reply}"`);
  }
  return (performance.now() - start) / 1000;
}

async function gdbStepi(image: string, spinFlag: number, steps: number): Promise<number> {
  const stub = await startStub(image);
  const script = [
    "set var *(int*)${SPIN} = 1",
    "python",
    "import time",
    "gdb.execute('stepi 10')",
    "start = time.perf_counter()",
    `gdb.execute('stepi ${steps}')`,
    "print('GDBSTEPI %f' % (time.perf_counter() - start))",
    "end",
    "kill",
  ]
    .join("\n")
    .replace("${SPIN}", `0x${spinFlag.toString(16)}`);
  const directory = mkdtempSync(join(tmpdir(), "vmmkit-bench-gdb-"));
  const scriptPath = join(directory, "stepi.gdb");
  writeFileSync(scriptPath, script + "\n");
  const output = await new Promise<string>((resolve, reject) => {
    const gdb = spawn("gdb", ["-batch", "-nx", "-ex", "set pagination off", "-ex", `target remote 127.0.0.1:${stub.port}`, "-x", scriptPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    gdb.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
    gdb.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
    gdb.on("error", (error) => reject(new Error(`gdb bench: cannot run gdb (${error.message}); install Debian's gdb`)));
    gdb.on("close", () => resolve(text));
  });
  rmSync(directory, { recursive: true, force: true });
  await stub.finished;
  const match = /GDBSTEPI ([0-9.]+)/.exec(output);
  if (!match) throw new Error(`gdb bench: gdb did not report its stepi time:\n${output}`);
  return steps / Number(match[1]);
}

export async function runGdbBenchmark(options: BenchOptions): Promise<BenchReport> {
  const image = repositoryFile("guests/gdb-target/gdb-target.elf");
  const elf = new Uint8Array(readFileSync(image));
  const spinLoop = symbolAddress(elf, "spin_loop");
  const spinFlag = symbolAddress(elf, "spin");
  const steps = options.quick ? 50 : 2000;
  const continues = options.quick ? 20 : 500;
  const floorRequests = options.quick ? 50 : 5000;

  // Raw protocol against the stub: steps, then continue → breakpoint in the spin loop.
  const stub = await startStub(image);
  const client = await RawClient.connect(stub.port);
  await client.request("qSupported");
  // The guest spins once it reaches its spin loop, so any number of steps stays inside it.
  const spinHex = spinFlag.toString(16);
  await client.request(`M${spinHex},4:01000000`);
  const stepSeconds = await timeRequests(client, "s", steps);
  await client.request(`Z0,${spinLoop.toString(16)},1`);
  await client.request("c"); // reach the spin loop
  const continueSeconds = await timeRequests(client, "c", continues);
  await client.request(`z0,${spinLoop.toString(16)},1`);
  await client.request(`M${spinHex},4:00000000`);
  await client.request("D");
  client.close();
  const status = await stub.finished;
  if (status !== 33) throw new Error(`gdb bench: the guest ended with status ${status}, not 33`);

  // The floor, with the same client.
  const floor = await startFloorServer();
  const floorClient = await RawClient.connect(floor.port);
  const floorSeconds = await timeRequests(floorClient, "s", floorRequests);
  floorClient.close();
  floor.close();

  const measurements: Measurement[] = [
    { name: "raw RSP s packets", value: steps / stepSeconds, unit: "steps/s" },
    { name: "raw RSP c to a breakpoint two instructions on", value: (continueSeconds / continues) * 1000, unit: "ms" },
    { name: "transport floor: trivial RSP server round trips", value: floorRequests / floorSeconds, unit: "round trips/s" },
  ];
  const ratios = [ratio(measurements, "raw s packets / transport floor", "raw RSP s packets", "transport floor: trivial RSP server round trips", "→ 1")];
  const notes = [
    "stub, floor server and raw client share one Node event loop; gdb runs as its own process",
    "QEMU's gdbstub on this machine (shared/anchors RESULTS-2026-11-22, not this run): gdb stepi 2000 ≈ 2300-2500 steps/s, raw s ≈ 4200-5500/s, continue to a nearby breakpoint ≈ 1.0 ms; run shared/anchors/run.sh --candidate-gdb for a same-run comparison",
  ];
  try {
    const stepi = await gdbStepi(image, spinFlag, steps);
    measurements.push({ name: `gdb stepi ${steps} (one command)`, value: stepi, unit: "steps/s" });
    ratios.push(ratio(measurements, "gdb stepi / transport floor", `gdb stepi ${steps} (one command)`, "transport floor: trivial RSP server round trips"));
  } catch (error) {
    notes.push(`gdb stepi not measured: ${(error as Error).message}`);
  }
  return { benchmark: "gdb", measurements, ratios, notes };
}

registerBenchmark({
  name: "gdb",
  description: "the gdb stub: stepi/s with Debian's gdb, raw s packets/s and continue→stop latency, against a loopback transport floor",
  run: runGdbBenchmark,
});
