/** Where the guest's COM1 output goes: the terminal, a file, or nowhere. */
import { closeSync, openSync, writeSync } from "node:fs";
import type { SerialBackend } from "@vmmkit/devices";
import { CliError } from "../cli-error.js";

export interface HostSerial extends SerialBackend {
  /** Writes out anything buffered. */
  flush(): void;
  /** Flushes and releases the target; later output is dropped. */
  close(): void;
}

/** Parses --serial: "stdio", "file:PATH" or "none". */
export function openSerialBackend(spec: string, output: NodeJS.WritableStream = process.stdout, option = "--serial"): HostSerial {
  if (spec === "none") return { transmit() {}, flush() {}, close() {} };
  if (spec === "stdio") return bufferedBackend((bytes) => output.write(bytes));
  if (spec.startsWith("file:")) {
    const path = spec.slice(5);
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
    };
  }
  throw new CliError(`invalid ${option} value "${spec}": use stdio, file:PATH or none`);
}

/** Collects bytes and writes them in batches (at line ends and when the buffer fills). */
function bufferedBackend(write: (bytes: Uint8Array) => void): HostSerial {
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
    close: flush,
  };
}
