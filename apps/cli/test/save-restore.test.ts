import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemorySink, memorySource, parseSavedState, SavedStateWriter, VmState } from "@vmmkit/vm";
import { describe, expect, it } from "vitest";
import { buildDescribedMachine, runMachineSession } from "../src/commands/restore.js";
import type { Machine } from "../src/machine/build-machine.js";
import { machineConfiguration, parseMachineConfiguration, sha256, writeFileAtomically, type MachineDescription } from "../src/machine/saved-state.js";
import { Capture, guest, repositoryRoot, temporaryDirectory, vmmkit } from "./helpers.js";

const binary = join(repositoryRoot, "apps/cli/dist/main.js");
const counterPath = guest("counter/counter.elf");
const counter = new Uint8Array(readFileSync(counterPath));
const IN_HANDLER = 0x500;
const WAITING = 0x501;

const description = (memoryBytes = 64 * 2 ** 20): MachineDescription => ({
  memoryBytes,
  cpuCount: 1,
  clock: "virtual",
  clockMips: 100,
  reboot: true,
  image: { kind: "multiboot", sha256: sha256(counter), loadAddress: 0x7c00, entry: 0x7c00, entryBits: 16, append: "" },
});

/** A counter machine whose COM1 output collects into `output.text`. */
function counterMachine(output: { text: string }, memoryBytes?: number): Machine {
  return buildDescribedMachine(description(memoryBytes), counter, {
    serial: { transmit: (byte: number) => void (output.text += String.fromCharCode(byte)) },
  });
}

/** The uninterrupted run: its output and where it ended. */
async function uninterrupted(): Promise<{ text: string; retired: number; time: number }> {
  const output = { text: "" };
  const machine = counterMachine(output);
  const outcome = await machine.run();
  expect(outcome.reason).toBe("halted");
  return { text: output.text, retired: machine.instructionsRetired(), time: machine.devices.clock.now() };
}

/** Stops a fresh counter machine at exactly `n` instructions of vCPU 0 and saves it. */
async function saveAt(n: number): Promise<{ before: string; state: Uint8Array; machine: Machine }> {
  const output = { text: "" };
  const machine = counterMachine(output);
  const outcome = await machine.run({ stopAfterInstructions: n });
  expect(outcome.reason).toBe("suspended");
  expect(machine.instructionsRetiredBy(0)).toBe(n);
  const sink = new MemorySink();
  await machine.vm.save({ sink });
  return { before: output.text, state: sink.bytes(), machine };
}

/** Where the guest is after exactly `n` instructions: inside the IRQ 0 handler, halted, or neither. */
async function whereAt(n: number): Promise<{ inHandler: boolean; halted: boolean }> {
  const machine = counterMachine({ text: "" });
  await machine.run({ maxInstructions: n });
  const [activity] = machine.platform.getVirtualProcessorRegisters(machine.partition, 0, ["internalActivityState"] as const);
  return { inHandler: machine.memory.arena[IN_HANDLER] === 1, halted: activity.haltSuspend && machine.memory.arena[WAITING] === 1 };
}

async function findInstruction(from: number, wanted: (place: { inHandler: boolean; halted: boolean }) => boolean): Promise<number> {
  for (let n = from; n < from + 2000; n++) if (wanted(await whereAt(n))) return n;
  throw new Error(`no such instruction after ${from}`);
}

describe("save at instruction N and restore (in-process)", () => {
  it("gives exactly the uninterrupted run's output, instruction count and machine time, for several N", async () => {
    const reference = await uninterrupted();
    // The guest's own output, known without the machine: 12 lines, then the checksum
    // 12 × (1 + … + 500) + (1 + … + 36) of its busy loops and tick handler.
    expect(reference.text.split("\n").filter((line) => line.startsWith("tick ")).length).toBe(12);
    expect(reference.text).toContain("done, checksum 1503666\n");
    const inHandler = await findInstruction(3000, (place) => place.inHandler);
    const halted = await findInstruction(3000, (place) => place.halted);
    expect(await whereAt(inHandler)).toMatchObject({ inHandler: true });
    expect(await whereAt(halted)).toMatchObject({ halted: true });
    for (const n of [1, 50, 777, inHandler, halted, 9001, reference.retired - 3]) {
      const { before, state } = await saveAt(n);
      const output = { text: "" };
      const restored = counterMachine(output);
      await restored.vm.load({ source: memorySource(state) });
      expect(restored.vm.state).toBe(VmState.Suspended);
      expect(restored.instructionsRetiredBy(0)).toBe(n);
      const outcome = await restored.run();
      expect(outcome.reason, `N = ${n}`).toBe("halted");
      expect(before + output.text, `N = ${n}`).toBe(reference.text);
      expect(restored.instructionsRetired(), `N = ${n}`).toBe(reference.retired);
      expect(restored.devices.clock.now(), `N = ${n}`).toBe(reference.time);
    }
  });

  it("saves an idle 64 MiB guest in far less than 64 MiB (zero pages are not stored)", async () => {
    const { state, machine } = await saveAt(5000);
    expect(machine.memory.arena.length).toBe(64 * 2 ** 20);
    expect(state.length).toBeLessThan(2 ** 20);
    const ram = parseSavedState(state).sections.find((section) => section.unit === "ram")!;
    expect(ram.payload.length).toBeLessThan(2 ** 20);
  });

  it("refuses a state whose configuration differs from the machine's, and changes nothing", async () => {
    const { state } = await saveAt(4000);
    const other = counterMachine({ text: "" }, 32 * 2 ** 20);
    await expect(other.vm.load({ source: memorySource(state) })).rejects.toMatchObject({ name: "SavedStateError", code: "ConfigurationMismatch" });
    expect(other.vm.state).toBe(VmState.Created);
  });
});

/** Writes `state` again with another configuration text (valid checksums). */
async function withConfiguration(state: Uint8Array, configuration: string): Promise<Uint8Array> {
  const parsed = parseSavedState(state);
  const sink = new MemorySink();
  const writer = new SavedStateWriter(sink);
  await writer.writeHeader({ ...parsed.header, configuration });
  for (const section of parsed.sections) await writer.writeSection(section.unit, section.instance, section.version, section.pass, section.payload);
  await writer.writeTrailer();
  return sink.bytes();
}

describe("vmmkit run --save and vmmkit restore", () => {
  it("continue where the run stopped: the outputs joined equal the uninterrupted run's", async () => {
    const reference = await vmmkit("run", counterPath);
    expect(reference.status).toBe(0);
    const directory = temporaryDirectory();
    for (const n of [2500, 8000]) {
      const path = join(directory, `counter-${n}.state`);
      const first = await vmmkit("run", counterPath, "--save", path, "--stop-after-instructions", String(n));
      expect(first.status).toBe(0);
      expect(first.stderr).toBe(`vmmkit: saved the machine state to ${path} (${readFileSync(path).length} bytes, vCPU 0 at ${n} instructions)\n`);
      const second = await vmmkit("restore", path);
      expect(second.status).toBe(0);
      expect(first.stdout + second.stdout).toBe(reference.stdout);
    }
  });

  it("rejects every sampled truncation and bit flip with one typed line, exit status 1, the file unchanged", async () => {
    const directory = temporaryDirectory();
    const path = join(directory, "good.state");
    expect((await vmmkit("run", counterPath, "--save", path, "--stop-after-instructions", "6000")).status).toBe(0);
    const good = new Uint8Array(readFileSync(path));
    const rejected = async (bytes: Uint8Array, what: string) => {
      const bad = join(directory, "bad.state");
      writeFileSync(bad, bytes);
      const result = await vmmkit("restore", bad);
      expect(result.status, what).toBe(1);
      expect(result.stdout, what).toBe("");
      expect(result.stderr, what).toMatch(/^vmmkit: cannot restore .*: SavedStateError [A-Za-z]+: [^\n]+\n$/);
      expect(Buffer.compare(readFileSync(bad), bytes), what).toBe(0);
      return result.stderr;
    };
    // Every length near both ends (header, first sections, trailer) and a dense sample between.
    const lengths = new Set<number>();
    for (let length = 0; length < 300; length++) lengths.add(length);
    for (let length = 300; length < good.length; length += 211) lengths.add(length);
    for (let length = good.length - 40; length < good.length; length++) lengths.add(length);
    for (const length of lengths) await rejected(good.subarray(0, length), `truncated to ${length}`);
    // Single-bit flips at spread-out positions (a fixed pseudo-random sequence).
    let seed = 12345;
    for (let i = 0; i < 120; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const bit = seed % (good.length * 8);
      const flipped = good.slice();
      flipped[bit >>> 3]! ^= 1 << (bit & 7);
      await rejected(flipped, `bit ${bit} flipped`);
    }
    expect(await rejected(new TextEncoder().encode("hello, not a state\n"), "not a state")).toContain("BadMagic");
    const configuration = parseMachineConfiguration(parseSavedState(good).header.configuration);
    const otherImage = machineConfiguration({ ...configuration, image: { ...configuration.image, sha256: "0".repeat(64) } });
    expect(await rejected(await withConfiguration(good, otherImage), "other image")).toContain("ConfigurationMismatch");
    const otherMemory = machineConfiguration({ ...configuration, memoryBytes: 32 * 2 ** 20 });
    expect(await rejected(await withConfiguration(good, otherMemory), "other memory size")).toMatch(/UnitRejected: unit "ram"/);
    expect(await rejected(await withConfiguration(good, "{}"), "foreign configuration")).toContain("ConfigurationMismatch");
    expect(Buffer.compare(readFileSync(path), good)).toBe(0);
  }, 60_000);

  it("refuses --stop-after-instructions without somewhere to save", async () => {
    const result = await vmmkit("run", counterPath, "--stop-after-instructions", "10");
    expect(result).toMatchObject({ status: 1, stdout: "" });
    expect(result.stderr).toContain("--stop-after-instructions needs --save");
  });
});

describe("breakpoints", () => {
  it("a machine with a debugger breakpoint set is not saved: one line, exit status 1, no file", async () => {
    const path = join(temporaryDirectory(), "never.state");
    const stdout = new Capture();
    const stderr = new Capture();
    const run = runMachineSession({ serial: "none", debugcon: "none", save: path, stopAfterInstructions: 3000 }, { stdout, stderr }, (consoles) => {
      const machine = buildDescribedMachine(description(), counter, consoles);
      machine.debug.debugger.setPortIo(0x80, 1, 3); // a port the guest never touches
      return machine;
    });
    await expect(run).rejects.toThrow("cannot save: 1 debugger breakpoint is set");
    expect(existsSync(path)).toBe(false);
  });
});

describe("atomic state files", () => {
  it("keeps the previous file when a save fails between any two steps, and leaves no temporary file", async () => {
    const directory = temporaryDirectory();
    const path = join(directory, "machine.state");
    writeFileSync(path, "previous");
    const failures: Array<[string, Parameters<typeof writeFileAtomically>[1], Parameters<typeof writeFileAtomically>[2]]> = [
      ["while writing", async (sink) => {
        await sink.write(new Uint8Array(1000));
        throw new Error("unit failed");
      }, {}],
      ["after writing", async (sink) => void (await sink.write(new Uint8Array(10))), { afterWrite: () => { throw new Error("disk full"); } }],
      ["after the sync", async (sink) => void (await sink.write(new Uint8Array(10))), { afterSync: () => { throw new Error("crash"); } }],
    ];
    for (const [what, produce, hooks] of failures) {
      await expect(writeFileAtomically(path, produce, hooks), what).rejects.toThrow();
      expect(readFileSync(path, "utf8"), what).toBe("previous");
      expect(readdirSync(directory), what).toEqual(["machine.state"]);
    }
    expect(await writeFileAtomically(path, async (sink) => void (await sink.write(new TextEncoder().encode("next"))))).toBe(4);
    expect(readFileSync(path, "utf8")).toBe("next");
    expect(readdirSync(directory)).toEqual(["machine.state"]);
  });
});

/** Collects a child's output; resolves with its exit status. */
function child(args: string[], options: { stdin?: string } = {}): { process: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> } {
  const process_ = spawn(process.execPath, [binary, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  process_.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("latin1")));
  process_.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("latin1")));
  if (options.stdin !== undefined) process_.stdin!.end(options.stdin);
  const exit = new Promise<number | null>((resolve) => process_.on("close", (code) => resolve(code)));
  return { process: process_, stdout: () => stdout, stderr: () => stderr, exit };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("between processes (the built CLI)", () => {
  it("teleports: the target continues exactly where the source stopped, and the source ends", async () => {
    const reference = await vmmkit("run", counterPath);
    const target = child(["restore", "--teleport-from", "0"]);
    await until(() => /listening|waiting for a teleport on 127\.0\.0\.1:(\d+)/.test(target.stderr()), "the target to listen");
    const port = /127\.0\.0\.1:(\d+)/.exec(target.stderr())![1]!;
    const source = child(["run", counterPath, "--teleport-to", `127.0.0.1:${port}`, "--stop-after-instructions", "7000"]);
    expect(await source.exit).toBe(0);
    expect(source.stderr()).toContain(`vmmkit: teleported the machine to 127.0.0.1:${port} (vCPU 0 at 7000 instructions)`);
    expect(await target.exit).toBe(0);
    expect(source.stdout() + target.stdout()).toBe(reference.stdout);
  }, 30_000);

  it("saves on SIGTERM (a guest waiting for input) and the restored guest goes on with the input", async () => {
    const directory = temporaryDirectory();
    const path = join(directory, "echo.state");
    const echo = guest("serial-echo/serial-echo.elf");
    const first = child(["run", echo, "--save", path]);
    await until(() => first.stdout().includes("type; q quits"), "the guest to wait for input");
    first.process.kill("SIGTERM");
    expect(await first.exit).toBe(0);
    expect(first.stderr()).toMatch(new RegExp(`^vmmkit: saved the machine state to ${path.replace(/[.]/g, "\\.")} \\(\\d+ bytes, vCPU 0 at \\d+ instructions\\)\\n$`));
    const second = child(["restore", path], { stdin: "hi q" });
    expect(await second.exit).toBe(33); // isa-debug-exit 0x10 after "q"
    expect(second.stdout()).toContain("HI");
    expect(second.stdout()).toContain("bye");
    expect(second.stdout()).not.toContain("type; q quits"); // it did not start again
  }, 30_000);

  it("leaves a complete state file (the old one or the new one) whenever a saving process is killed", async () => {
    const directory = temporaryDirectory();
    const path = join(directory, "machine.state");
    expect((await vmmkit("run", counterPath, "--save", path, "--stop-after-instructions", "3000")).status).toBe(0);
    const old = readFileSync(path);
    // The whole process lives about 0.3 s, the save its last milliseconds: kills spread over
    // that lifetime land before, during or after the save. (The failure-injection test above
    // covers each step deterministically.)
    for (const delay of [60, 110, 160, 190, 210, 230, 250, 280]) {
      const saving = child(["run", counterPath, "--mem", "256", "--save", path, "--stop-after-instructions", "9000"]);
      await new Promise((resolve) => setTimeout(resolve, delay));
      saving.process.kill("SIGKILL");
      await saving.exit;
      const now = new Uint8Array(readFileSync(path));
      expect(() => parseSavedState(now)).not.toThrow();
      if (Buffer.compare(now, old) !== 0) expect(parseSavedState(now).header.configuration).toContain('"memoryBytes":268435456');
    }
  }, 60_000);
});
