/**
 * The TCP side of `vmmkit run --gdb`: one gdb connection at a time on 127.0.0.1 (or the
 * host named), bytes handed to @vmmkit/dbgf's GdbServer. A new debugger may attach after
 * the previous one detached or dropped its connection.
 */
import { createServer, type Server, type Socket } from "node:net";
import { GdbServer } from "@vmmkit/dbgf";
import { CliError } from "../cli-error.js";
import type { DebugControl } from "./debug-control.js";

export interface GdbEndpoint {
  readonly host: string;
  readonly port: number;
}

/** `[HOST:]PORT` as QEMU's -gdb tcp::PORT takes it; the host defaults to 127.0.0.1. */
export function parseGdbEndpoint(text: string): GdbEndpoint {
  const match = /^(?:(.*):)?([0-9]{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new CliError(`--gdb wants [HOST:]PORT (for example 1234 or 127.0.0.1:1234), got "${text}"`);
  const host = match[1] === undefined || match[1] === "" ? "127.0.0.1" : match[1].replace(/^\[(.*)\]$/, "$1");
  return { host, port };
}

export interface GdbListener {
  /** The port actually listened on (useful with port 0). */
  readonly port: number;
  /** Stops listening and closes a connected debugger's socket. */
  close(): Promise<void>;
}

export async function listenForGdb(debug: DebugControl, endpoint: GdbEndpoint, log: (line: string) => void): Promise<GdbListener> {
  let active: Socket | null = null;
  const server: Server = createServer({ noDelay: true }, (socket) => {
    if (active !== null) {
      socket.end();
      return;
    }
    active = socket;
    socket.pause();
    const gdb = new GdbServer({
      target: debug,
      debugger: debug.debugger,
      send: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
    });
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      active = null;
      gdb.connectionClosed();
    };
    socket.on("close", close);
    socket.on("error", close);
    socket.on("data", (chunk: Buffer) => gdb.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    log(`gdb connected from ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`);
    void debug
      .attach((stop) => {
        gdb.reportStop(stop);
        if (stop.reason === "exited") socket.end();
      })
      .then(() => socket.resume());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(new CliError(`cannot listen for gdb on ${endpoint.host}:${endpoint.port}: ${error.code === "EADDRINUSE" ? "the port is in use" : error.message}`));
    });
    server.listen(endpoint.port, endpoint.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : endpoint.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        (active as Socket | null)?.end();
        server.close(() => resolve());
      }),
  };
}
