/**
 * `vmmkit bench gdb`: the gdb stub of `vmmkit run --gdb` on guests/gdb-target.
 *
 * - Debian's gdb (a separate process) timing `stepi N` as one command, from gdb's Python;
 * - a raw remote-protocol client: `s` packets per second and `c` → stop latency at a
 *   breakpoint hit every two instructions (the guest's spin loop);
 * - the baselines, measured in the same run with the same client and script: QEMU's gdbstub
 *   on the same guest (where qemu-system-i386 is installed), and a trivial RSP server on
 *   loopback that answers every packet at once (the transport floor of a Node stub).
 * The stub, the floor server and the raw client share this process's event loop; gdb and
 * QEMU do not.
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
import { ratio, type BenchReport, type Measurement, type Ratio } from "./report.js";

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

/** A gdb stub to measure: where it listens and how to wait for it to end. */
interface Stub {
  readonly port: number;
  finished: Promise<unknown>;
  stop(): void;
}

async function startVmmkitStub(image: string): Promise<Stub> {
  const stub = await startStub(image);
  return { port: stub.port, finished: stub.finished, stop: () => {} };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === "object" && address !== null ? address.port : 0;
}

/** QEMU (TCG) with its gdbstub, stopped before the first instruction, like `--wait-gdb`. */
async function startQemuStub(image: string): Promise<Stub | null> {
  const port = await freePort();
  const qemu = spawn(
    "qemu-system-i386",
    ["-M", "pc", "-m", "64", "-display", "none", "-serial", "null", "-monitor", "none", "-nic", "none", "-no-reboot"]
      .concat(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", image, "-gdb", `tcp:127.0.0.1:${port}`, "-S"]),
    { stdio: "ignore" },
  );
  const finished = new Promise<unknown>((resolve) => {
    qemu.on("exit", resolve);
    qemu.on("error", resolve);
  });
  for (let tries = 0; tries < 200; tries++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return { port, finished, stop: () => qemu.kill("SIGKILL") };
    if (qemu.exitCode !== null) return null;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  qemu.kill("SIGKILL");
  return null;
}

interface StubNumbers {
  readonly stepsPerSecond: number;
  readonly continueMs: number;
}

/**
 * The raw protocol, the same for every stub: stop at the spin loop, make the guest spin
 * there, then time `s` packets and `c` to the breakpoint two instructions on.
 */
async function measureRaw(stub: Stub, spinLoop: number, spinFlag: number, steps: number, continues: number): Promise<StubNumbers> {
  const client = await RawClient.connect(stub.port);
  await client.request("qSupported");
  const site = spinLoop.toString(16);
  await client.request(`Z0,${site},1`);
  await client.request("c"); // the first stop at the spin loop: the kernel is loaded
  await client.request(`M${spinFlag.toString(16)},4:01000000`);
  const stepSeconds = await timeRequests(client, "s", steps);
  const continueSeconds = await timeRequests(client, "c", continues);
  await client.request(`z0,${site},1`);
  await client.request(`M${spinFlag.toString(16)},4:00000000`);
  await client.request("D"); // the guest runs to its end
  client.close();
  await Promise.race([stub.finished, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  stub.stop();
  return { stepsPerSecond: steps / stepSeconds, continueMs: (continueSeconds / continues) * 1000 };
}

/** Debian's gdb: `stepi N` as one command, timed from gdb's Python, in the spin loop. */
async function gdbStepi(stub: Stub, image: string, steps: number): Promise<number> {
  const script = [
    "break *spin_loop",
    "continue",
    "set var *(int*)&spin = 1",
    "delete",
    "python",
    "import time",
    "gdb.execute('stepi 10')",
    "start = time.perf_counter()",
    `gdb.execute('stepi ${steps}')`,
    "print('GDBSTEPI %f' % (time.perf_counter() - start))",
    "end",
    "kill",
  ].join("\n");
  const directory = mkdtempSync(join(tmpdir(), "vmmkit-bench-gdb-"));
  const scriptPath = join(directory, "stepi.gdb");
  writeFileSync(scriptPath, script + "\n");
  const output = await new Promise<string>((resolve, reject) => {
    const gdb = spawn("gdb", ["-batch", "-nx", "-ex", "set pagination off", "-ex", `file ${image}`, "-ex", `target remote 127.0.0.1:${stub.port}`, "-x", scriptPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    gdb.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
    gdb.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
    gdb.on("error", (error) => reject(new Error(`gdb bench: cannot run gdb (${error.message}); install Debian's gdb`)));
    gdb.on("close", () => resolve(text));
  });
  rmSync(directory, { recursive: true, force: true });
  stub.stop();
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
  const measurements: Measurement[] = [];
  const ratios: Ratio[] = [];
  const notes = ["vmmkit's stub, the floor server and the raw client share one Node event loop; gdb and QEMU run as their own processes"];

  const vmmkit = await measureRaw(await startVmmkitStub(image), spinLoop, spinFlag, steps, continues);
  measurements.push({ name: "vmmkit: raw RSP s packets", value: vmmkit.stepsPerSecond, unit: "steps/s" });
  measurements.push({ name: "vmmkit: raw RSP c to a breakpoint two instructions on", value: vmmkit.continueMs, unit: "ms" });

  const floor = await startFloorServer();
  const floorClient = await RawClient.connect(floor.port);
  const floorSeconds = await timeRequests(floorClient, "s", floorRequests);
  floorClient.close();
  floor.close();
  measurements.push({ name: "transport floor: trivial RSP server round trips", value: floorRequests / floorSeconds, unit: "round trips/s" });
  ratios.push(ratio(measurements, "vmmkit raw s packets / transport floor", "vmmkit: raw RSP s packets", "transport floor: trivial RSP server round trips", "→ 1"));

  try {
    measurements.push({ name: `vmmkit: gdb stepi ${steps} (one command)`, value: await gdbStepi(await startVmmkitStub(image), image, steps), unit: "steps/s" });
  } catch (error) {
    notes.push(`gdb stepi not measured: ${(error as Error).message}`);
  }

  // QEMU's gdbstub, same guest, same client, same gdb script, in this run.
  const qemu = await startQemuStub(image);
  if (qemu === null) {
    notes.push("qemu-system-i386 is not installed (or did not start): no same-run comparison with QEMU's gdbstub");
  } else {
    const numbers = await measureRaw(qemu, spinLoop, spinFlag, steps, continues);
    await qemu.finished;
    measurements.push({ name: "QEMU: raw RSP s packets", value: numbers.stepsPerSecond, unit: "steps/s" });
    measurements.push({ name: "QEMU: raw RSP c to a breakpoint two instructions on", value: numbers.continueMs, unit: "ms" });
    ratios.push(ratio(measurements, "raw s packets: vmmkit / QEMU", "vmmkit: raw RSP s packets", "QEMU: raw RSP s packets", "≥ 1"));
    ratios.push(ratio(measurements, "continue→stop latency: vmmkit / QEMU", "vmmkit: raw RSP c to a breakpoint two instructions on", "QEMU: raw RSP c to a breakpoint two instructions on", "≤ 1"));
    const qemuStepi = await startQemuStub(image);
    if (qemuStepi !== null && measurements.some((m) => m.name.startsWith("vmmkit: gdb stepi"))) {
      measurements.push({ name: `QEMU: gdb stepi ${steps} (one command)`, value: await gdbStepi(qemuStepi, image, steps), unit: "steps/s" });
      ratios.push(ratio(measurements, "gdb stepi: vmmkit / QEMU", `vmmkit: gdb stepi ${steps} (one command)`, `QEMU: gdb stepi ${steps} (one command)`, "≥ 1"));
    }
  }
  return { benchmark: "gdb", measurements, ratios, notes };
}

registerBenchmark({
  name: "gdb",
  description: "the gdb stub: stepi/s with Debian's gdb, raw s packets/s and continue→stop latency, against a loopback floor and QEMU's gdbstub in the same run",
  run: runGdbBenchmark,
});
