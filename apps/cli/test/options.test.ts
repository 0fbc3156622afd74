/** Run options: raw loading, limits, serial targets. Small guests are assembled by hand here. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { guest, repositoryRoot, temporaryDirectory, temporaryFile, vmmkit } from "./helpers.js";

/** jmp $ : spins forever. */
const SPIN = new Uint8Array([0xeb, 0xfe]);

/** 32-bit code: mov dx,0x3f8; mov al,'3'; out dx,al; mov al,'2'; out dx,al; mov al,10; out dx,al; cli; hlt */
const PRINT_32 = new Uint8Array([
  0x66, 0xba, 0xf8, 0x03, 0xb0, 0x33, 0xee, 0xb0, 0x32, 0xee, 0xb0, 0x0a, 0xee, 0xfa, 0xf4,
]);

describe("vmmkit run options", () => {
  it("--entry-mode 32 enters a raw image in flat 32-bit protected mode", async () => {
    const image = temporaryFile("print32.bin", PRINT_32);
    const result = await vmmkit("run", "--load-address", "0x200000", "--entry-mode", "32", image);
    expect(result.stdout).toBe("32\n");
    expect(result.status).toBe(0);
  });

  it("--load-address and --entry place and enter a real-mode image", async () => {
    // 16 bytes of padding, then: mov dx,0x3f8; mov al,'e'; out dx,al; cli; hlt
    const code = [0xba, 0xf8, 0x03, 0xb0, 0x65, 0xee, 0xfa, 0xf4];
    const image = temporaryFile("entry.bin", new Uint8Array([...new Array(16).fill(0xf4), ...code]));
    const result = await vmmkit("run", "--load-address", "0x20000", "--entry", "0x20010", image);
    expect(result.stdout).toBe("e");
    expect(result.status).toBe(0);
  });

  it("--max-instructions stops a spinning guest with status 124 and says why", async () => {
    const result = await vmmkit("run", "--max-instructions", "1000", temporaryFile("spin.bin", SPIN));
    expect(result.status).toBe(124);
    expect(result.stderr).toBe("vmmkit: stopped after 1000 instructions (--max-instructions)\n");
  });

  it("--timeout stops a spinning guest with status 124", async () => {
    const started = Date.now();
    const result = await vmmkit("run", "--timeout", "0.3", temporaryFile("spin.bin", SPIN));
    expect(result.status).toBe(124);
    expect(result.stderr).toBe("vmmkit: the guest did not finish within 0.3 s (--timeout)\n");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("--serial file:PATH writes COM1 to a file and nothing to stdout", async () => {
    const path = join(temporaryDirectory(), "serial.log");
    const result = await vmmkit("run", "--serial", `file:${path}`, guest("hello/hello.bin"));
    expect(result.status).toBe(0);
    expect(result.stdout).toBe("");
    expect(readFileSync(path, "utf8")).toBe("Hello from a 16-bit real-mode guest!\r\n");
  });

  it("--serial none discards COM1", async () => {
    const result = await vmmkit("run", "--serial", "none", guest("hello/hello.bin"));
    expect(result.status).toBe(0);
    expect(result.stdout).toBe("");
  });

  it("--append passes the multiboot command line", async () => {
    // The hello-mb guest does not print it; check that the loader accepted it and ran the kernel.
    const result = await vmmkit("run", "--append", "console=ttyS0", guest("hello-mb/hello-mb.elf"));
    expect(result.status).toBe(33);
  });

  it("--help is available on every command", async () => {
    const top = await vmmkit("--help");
    expect(top.status).toBe(0);
    expect(top.stdout).toContain("Usage: vmmkit");
    const run = await vmmkit("run", "--help");
    expect(run.status).toBe(0);
    for (const option of ["--bios", "--load-address", "--entry", "--entry-mode", "--mem", "--serial", "--max-instructions", "--timeout"]) {
      expect(run.stdout).toContain(option);
    }
  });

  it("--version prints the CLI package version", async () => {
    const { version } = JSON.parse(readFileSync(join(repositoryRoot, "apps/cli/package.json"), "utf8")) as { version: string };
    const result = await vmmkit("--version");
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  });

  it("leaves no serial file behind when the file cannot be created", async () => {
    const path = join(temporaryDirectory(), "missing-directory", "serial.log");
    const result = await vmmkit("run", "--serial", `file:${path}`, guest("hello/hello.bin"));
    expect(result.status).toBe(1);
    expect(existsSync(path)).toBe(false);
  });
});
