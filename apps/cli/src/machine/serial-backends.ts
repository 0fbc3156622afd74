/**
 * Where the guest's COM1 goes: the terminal (raw keyboard input with QEMU's Ctrl-A escape
 * when stdin is a terminal, piped bytes otherwise), a file, a TCP socket, or nowhere.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { SerialBackend } from "@vmmkit/devices";
import { CliError } from "../cli-error.js";

/** The receiving side of a UART, as `Uart16550` has it. */
export interface SerialReceiver {
  receive(byte: number): void;
  receiveSpace(): number;
}

export interface SerialControl {
  /** Ctrl-A x: end the machine. */
  quit(): void;
  /** Messages for the user (the escape's help, connections). */
  log(line: string): void;
}

export interface HostSerial extends SerialBackend {
  /** Writes out anything buffered. */
  flush(): void;
  /** Flushes and releases the target; later output is dropped. */
  close(): void;
  /** Starts feeding host input into the guest's UART; output-only backends ignore it. */
  connect(uart: SerialReceiver, control: SerialControl): Promise<void>;
}

/** Input waiting for room in the UART's receiver, fed as `receiveReady` says there is some. */
class InputQueue {
  private readonly bytes: number[] = [];
  private uart: SerialReceiver | null = null;

  attach(uart: SerialReceiver): void {
    this.uart = uart;
    this.drain();
  }

  push(chunk: Uint8Array): void {
    for (const byte of chunk) this.bytes.push(byte);
    this.drain();
  }

  drain(): void {
    const uart = this.uart;
    if (uart === null) return;
    let index = 0;
    while (index < this.bytes.length && uart.receiveSpace() > 0) uart.receive(this.bytes[index++]!);
    this.bytes.splice(0, index);
  }
}

const CTRL_A = 0x01;

/** Parses --serial: "stdio", "file:PATH", "tcp:[HOST:]PORT" or "none". */
export function openSerialBackend(
  spec: string,
  output: NodeJS.WritableStream = process.stdout,
  option = "--serial",
  input: NodeJS.ReadableStream | null = null,
): HostSerial {
  if (spec === "none") return { transmit() {}, flush() {}, close() {}, connect: () => Promise.resolve() };
  if (spec === "stdio") return stdioBackend(output, input);
  if (spec.startsWith("file:")) return fileBackend(spec.slice(5), option);
  if (spec.startsWith("tcp:") && option === "--serial") return tcpBackend(spec.slice(4));
  const accepted = option === "--serial" ? "stdio, file:PATH, tcp:[HOST:]PORT or none" : "stdio, file:PATH or none";
  throw new CliError(`invalid ${option} value "${spec}": use ${accepted}`);
}

function fileBackend(path: string, option: string): HostSerial {
  if (path === "") throw new CliError(`${option} file: needs a path, e.g. ${option} file:output.log`);
  let fd: number;
  try {
    fd = openSync(path, "w");
  } catch (error) {
    throw new CliError(`cannot open ${option} output file ${path}: ${(error as Error).message}`);
  }
  let open = true;
  const backend = bufferedBackend((bytes) => {
    if (open) writeSync(fd, bytes);
  });
  return {
    transmit: backend.transmit,
    flush: backend.flush,
    close() {
      if (!open) return;
      backend.flush();
      open = false;
      closeSync(fd);
    },
    connect: () => Promise.resolve(),
  };
}

/**
 * The terminal. With a TTY on stdin, keys go to the guest raw, and Ctrl-A starts a QEMU
 * escape: x quits, h prints help, Ctrl-A sends a Ctrl-A. Piped stdin is passed on as is.
 */
function stdioBackend(output: NodeJS.WritableStream, input: NodeJS.ReadableStream | null): HostSerial {
  const backend = bufferedBackend((bytes) => output.write(bytes));
  const queue = new InputQueue();
  let cleanup: (() => void) | null = null;
  return {
    transmit: backend.transmit,
    flush: backend.flush,
    receiveReady: () => queue.drain(),
    close() {
      backend.flush();
      cleanup?.();
      cleanup = null;
    },
    connect(uart, control) {
      if (input === null) return Promise.resolve();
      queue.attach(uart);
      const tty = input as NodeJS.ReadStream;
      const raw = tty.isTTY === true && typeof tty.setRawMode === "function";
      if (raw) tty.setRawMode(true);
      let escape = false;
      const onData = (chunk: Buffer): void => {
        if (!raw) {
          queue.push(new Uint8Array(chunk));
          return;
        }
        const bytes: number[] = [];
        for (const byte of chunk) {
          if (escape) {
            escape = false;
            if (byte === 0x78 /* x */) {
              control.log("quit (Ctrl-A x)");
              control.quit();
              return;
            }
            if (byte === 0x68 /* h */) control.log("Ctrl-A x: quit, Ctrl-A Ctrl-A: send Ctrl-A, Ctrl-A h: this help");
            else if (byte === CTRL_A) bytes.push(CTRL_A);
            continue;
          }
          if (byte === CTRL_A) escape = true;
          else bytes.push(byte);
        }
        queue.push(Uint8Array.from(bytes));
      };
      input.on("data", onData);
      input.resume();
      cleanup = () => {
        input.off("data", onData);
        input.pause();
        if (raw) tty.setRawMode(false);
      };
      return Promise.resolve();
    },
  };
}

/**
 * A TCP server on 127.0.0.1 (or the host named), one client at a time: the client's bytes
 * go to the guest, the guest's output to the client. Output while no client is connected
 * is dropped, as with QEMU's `-serial tcp::PORT,server,nowait`.
 */
function tcpBackend(address: string): HostSerial {
  const match = /^(?:(.*):)?([0-9]{1,5})$/.exec(address);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new CliError(`--serial tcp: wants [HOST:]PORT (for example tcp:4444), got "tcp:${address}"`);
  const host = match[1] === undefined || match[1] === "" ? "127.0.0.1" : match[1];
  const queue = new InputQueue();
  let client: Socket | null = null;
  let server: Server | null = null;
  const backend = bufferedBackend((bytes) => {
    if (client !== null && !client.destroyed) client.write(bytes);
  });
  return {
    transmit: backend.transmit,
    flush: backend.flush,
    receiveReady: () => queue.drain(),
    close() {
      backend.flush();
      (client as Socket | null)?.end();
      server?.close();
      server = null;
    },
    connect(uart, control) {
      queue.attach(uart);
      return new Promise<void>((resolve, reject) => {
        server = createServer({ noDelay: true }, (socket) => {
          if (client !== null) {
            socket.end("vmmkit: the serial port already has a client\r\n");
            return;
          }
          client = socket;
          control.log(`serial client connected from ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`);
          socket.on("data", (chunk: Buffer) => queue.push(new Uint8Array(chunk)));
          const gone = (): void => {
            if (client === socket) client = null;
          };
          socket.on("close", gone);
          socket.on("error", gone);
        });
        server.once("error", (error: NodeJS.ErrnoException) => {
          reject(new CliError(`cannot listen for the serial port on ${host}:${port}: ${error.code === "EADDRINUSE" ? "the port is in use" : error.message}`));
        });
        server.listen(port, host, () => {
          const bound = server!.address();
          control.log(`serial port COM1 listening on ${host}:${typeof bound === "object" && bound !== null ? bound.port : port}`);
          resolve();
        });
      });
    },
  };
}

/** Collects bytes and writes them in batches (at line ends and when the buffer fills). */
function bufferedBackend(write: (bytes: Uint8Array) => void): { transmit(byte: number): void; flush(): void } {
  const buffer = new Uint8Array(4096);
  let length = 0;
  const flush = () => {
    if (length > 0) {
      write(buffer.slice(0, length));
      length = 0;
    }
  };
  return {
    transmit(byte: number) {
      buffer[length++] = byte;
      if (byte === 10 || length === buffer.length) flush();
    },
    flush,
  };
}
