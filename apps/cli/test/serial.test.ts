/**
 * COM1 input: guests/serial-echo takes the UART's received-data interrupt and echoes what
 * arrives upper-cased, until a 'q'. Input comes from a pipe, a terminal in raw mode (with
 * QEMU's Ctrl-A escape) or a TCP client.
 */
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/cli.js";
import { Capture, guest } from "./helpers.js";
import { qemuAvailable } from "./qemu.js";

const image = guest("serial-echo/serial-echo.elf");

async function runWithInput(stdin: NodeJS.ReadableStream, ...args: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const status = await runCli(["run", image, "--timeout", "20", ...args], { stdout, stderr, stdin });
  return { status, stdout: stdout.text, stderr: stderr.text };
}

describe("COM1 input", () => {
  it("passes piped stdin to the guest through the UART's interrupt", async () => {
    const result = await runWithInput(Readable.from([Buffer.from("hello, world\n"), Buffer.from("q")]));
    expect(result.stdout).toBe("serial-echo: type; q quits\nHELLO, WORLD\nbye\n");
    expect(result.status).toBe(33);
  });

  it("holds input the guest has no room for yet instead of overrunning the UART", async () => {
    // 64 bytes in one chunk: more than the 16-byte FIFO (and the guest has FIFOs off: 1 byte).
    const text = "abcdefghijklmnoprstuvwxyz0123456789abcdefghijklmnoprstuvwxyz0123"; // no q: it quits
    const result = await runWithInput(Readable.from([Buffer.from(text + "q")]));
    expect(result.stdout).toBe(`serial-echo: type; q quits\n${text.toUpperCase()}bye\n`);
  });

  it("puts a terminal in raw mode and quits on Ctrl-A x; Ctrl-A Ctrl-A sends a Ctrl-A", async () => {
    const terminal = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode(mode: boolean): void };
    const modes: boolean[] = [];
    terminal.isTTY = true;
    terminal.setRawMode = (mode: boolean) => void modes.push(mode);
    const running = runWithInput(terminal);
    terminal.write("ok\x01\x01");
    await new Promise((resolve) => setTimeout(resolve, 300));
    terminal.write("\x01x");
    const result = await running;
    expect(result.stdout).toBe("serial-echo: type; q quits\nOK\x01");
    expect(result.stderr).toContain("vmmkit: quit (Ctrl-A x)");
    expect(result.status).toBe(0);
    expect(modes).toEqual([true, false]);
  });

  it("serves COM1 on a TCP port", async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const running = runCli(["run", image, "--serial", "tcp:0", "--timeout", "20"], { stdout, stderr });
    let port: number | undefined;
    for (let i = 0; i < 500 && port === undefined; i++) {
      const match = /COM1 listening on 127\.0\.0\.1:(\d+)/.exec(stderr.text);
      if (match) port = Number(match[1]);
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(port).toBeDefined();
    const socket = connect({ host: "127.0.0.1", port: port! });
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write("tcp works\nq");
    const status = await running;
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();
    // The banner went out before the client connected and was dropped (nowait semantics).
    expect(received).toBe("TCP WORKS\nbye\n");
    expect(status).toBe(33);
    expect(stdout.text).toBe("");
  });

  it("refuses a malformed TCP address", async () => {
    const result = await runWithInput(Readable.from([]), "--serial", "tcp:nonsense");
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('vmmkit: --serial tcp: wants [HOST:]PORT (for example tcp:4444), got "tcp:nonsense"\n');
  });
});

describe.runIf(qemuAvailable || process.env.CI)("COM1 input, differential against qemu-system-i386", () => {
  it("QEMU echoes the same", async () => {
    const input = "differential\nq";
    const qemu = spawnSync(
      "qemu-system-i386",
      ["-M", "pc", "-m", "64", "-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", image],
      { input, encoding: "latin1", timeout: 60_000 },
    );
    const ours = await runWithInput(Readable.from([Buffer.from(input)]));
    expect(ours.stdout).toBe(qemu.stdout);
    expect(ours.status).toBe(qemu.status);
  }, 60_000);
});
