/** Every bundled guest, run through the real CLI entry: its output and exit status. */
import { describe, expect, it } from "vitest";
import { guest, vmmkit } from "./helpers.js";

describe("vmmkit run on the bundled guests", () => {
  it("hello: 16-bit real mode at 0000:7C00 prints on COM1 and powers off with CLI; HLT", async () => {
    const result = await vmmkit("run", guest("hello/hello.bin"));
    expect(result.stdout).toBe("Hello from a 16-bit real-mode guest!\r\n");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("hello32: switches to 32-bit protected mode through a flat GDT and prints", async () => {
    const result = await vmmkit("run", guest("hello32/hello32.bin"));
    expect(result.stdout).toBe("Hello from 32-bit protected mode!\r\n");
    expect(result.status).toBe(0);
  });

  it("hello-mb: a multiboot ELF sees the boot magic and the memory size, and exits through isa-debug-exit", async () => {
    const result = await vmmkit("run", guest("hello-mb/hello-mb.elf"));
    // 64 MiB default: 65536 KiB - the first 1024 KiB.
    expect(result.stdout).toBe("Hello from a multiboot guest! The boot loader reports 64512 KiB of memory above 1 MiB.\r\n");
    expect(result.status).toBe((0x10 << 1) | 1);
  });

  it("hello-mb reports the memory size given with --mem", async () => {
    const result = await vmmkit("run", "--mem", "16M", guest("hello-mb/hello-mb.elf"));
    expect(result.stdout).toContain("reports 15360 KiB of memory above 1 MiB");
    expect(result.status).toBe(33);
  });

  it("hello-rom: --bios maps the firmware at the reset vector and below 1 MiB", async () => {
    const result = await vmmkit("run", "--bios", guest("hello-rom/hello-rom.bin"));
    expect(result.stdout).toBe("Hello from the ROM at the reset vector!\r\n");
    expect(result.status).toBe(0);
  });
});
