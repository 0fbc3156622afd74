/**
 * Bad input: one clear line saying what is wrong, a non-zero status, never a stack trace.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { guest, temporaryDirectory, temporaryFile, vmmkit } from "./helpers.js";

async function expectRefusal(args: string[], message: RegExp, status = 1): Promise<void> {
  const result = await vmmkit(...args);
  expect(result.status).toBe(status);
  expect(result.stdout).toBe("");
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

const elf = () => new Uint8Array(readFileSync(guest("hello-mb/hello-mb.elf")));

describe("vmmkit run refuses bad input clearly", () => {
  it("a missing image", () => expectRefusal(["run", "/nonexistent/kernel.elf"], /^vmmkit: cannot read image \/nonexistent\/kernel.elf: no such file\n$/));

  it("a directory instead of an image", () => expectRefusal(["run", temporaryDirectory()], /^vmmkit: cannot read image .*: it is a directory\n$/));

  it("an empty image", () => expectRefusal(["run", temporaryFile("empty.bin", new Uint8Array())], /^vmmkit: the image is empty\n$/));

  it("a truncated ELF kernel", () =>
    expectRefusal(["run", temporaryFile("cut.elf", elf().subarray(0, 4200))], /^vmmkit: truncated ELF image: segment \d+ lies past the end of the file\n$/));

  it("a multiboot header on something that is not ELF", () => {
    const header = new Uint8Array(new Uint32Array([0x1badb002, 0, (-0x1badb002 >>> 0)]).buffer);
    return expectRefusal(["run", temporaryFile("header.bin", header)], /^vmmkit: the multiboot header asks for ELF loading but the file is not an ELF image\n$/);
  });

  it("an ELF kernel for another machine", () => {
    const bytes = elf();
    bytes[18] = 0x3e; // e_machine = x86-64
    return expectRefusal(["run", temporaryFile("x64.elf", bytes)], /^vmmkit: the ELF image is not for i386/);
  });

  it("a multiboot header asking for features vmmkit lacks", () => {
    const flags = 0x8;
    const header = new Uint8Array(new Uint32Array([0x1badb002, flags, (-(0x1badb002 + flags)) >>> 0]).buffer);
    return expectRefusal(["run", temporaryFile("features.bin", header)], /^vmmkit: the multiboot header requires features vmmkit does not provide \(flags 0x8\)\n$/);
  });

  it("a kernel that does not fit in RAM", () => expectRefusal(["run", "--mem", "1M", guest("hello-mb/hello-mb.elf")], /^vmmkit: --mem must be between 2 MiB and 3072 MiB/));

  it("a raw image loaded past the end of RAM", () =>
    expectRefusal(
      ["run", "--mem", "4M", "--entry-mode", "32", "--load-address", "0x3fffc0", guest("hello/hello.bin")],
      /^vmmkit: the image \(125 bytes at 0x3fffc0\) does not fit in guest RAM: 0x400000 is not RAM; try a larger --mem\n$/,
    ));

  it("a 16-bit entry point above 1 MiB", () =>
    expectRefusal(["run", "--load-address", "0x200000", guest("hello/hello.bin")], /^vmmkit: a 16-bit entry point must be below 1 MiB, got 0x200000/));

  it("a 32-bit raw image over the loader's GDT", () =>
    expectRefusal(["run", "--entry-mode", "32", "--load-address", "0x1000", guest("hello/hello.bin")], /must not overlap the loader's data at 0x1000-0x1fff/));

  it("a raw image loaded into the legacy hole", () =>
    expectRefusal(["run", "--load-address", "0xb8000", guest("hello/hello.bin")], /^vmmkit: the image \(125 bytes at 0xb8000\) does not fit in guest RAM: 0xb8000 is not RAM/));

  it("a firmware image of the wrong size", () =>
    expectRefusal(["run", "--bios", guest("hello/hello.bin")], /^vmmkit: a firmware image must be 64 KiB to 2 MiB and a multiple of 4 KiB; this one is 125 bytes\n$/));

  it("both an image and --bios", () =>
    expectRefusal(["run", "--bios", guest("hello-rom/hello-rom.bin"), guest("hello/hello.bin")], /^vmmkit: give either an image or --bios, not both/));

  it("nothing to run", () => expectRefusal(["run"], /^vmmkit: nothing to run: give an image/));

  it("a malformed --mem", () => expectRefusal(["run", "--mem", "lots", guest("hello/hello.bin")], /argument 'lots' is invalid\. "lots" is not a memory size/, 2));

  it("a malformed address", () => expectRefusal(["run", "--load-address", "0xzz", guest("hello/hello.bin")], /"0xzz" is not an address/, 2));

  it("an unknown --entry-mode", () => expectRefusal(["run", "--entry-mode", "64", guest("hello/hello.bin")], /Allowed choices are 16, 32/, 2));

  it("an invalid --serial target", () => expectRefusal(["run", "--serial", "tcp", guest("hello/hello.bin")], /^vmmkit: invalid --serial value "tcp": use stdio, file:PATH, tcp:\[HOST:\]PORT or none\n$/));

  it("a zero --max-instructions", () => expectRefusal(["run", "--max-instructions", "0", guest("hello/hello.bin")], /--max-instructions must be a positive integer/, 2));

  it("a negative --timeout", () => expectRefusal(["run", "--timeout", "-1", guest("hello/hello.bin")], /the timeout must be a positive number of seconds/, 2));

  it("an unknown option", () => expectRefusal(["run", "--turbo", guest("hello/hello.bin")], /unknown option '--turbo'/, 2));

  it("an unknown command", () => expectRefusal(["launch"], /unknown command 'launch'/, 2));

  it("a guest that triple-faults is reported with where it happened, not crashed on", async () => {
    // 32-bit flat mode: LIDT with a zero limit, then INT3 (0xCC): #BP finds no gate (#GP),
    // the #GP finds none either (#DF), and the #DF none: a triple fault, which shuts down.
    const code = new Uint8Array([
      // lidt [idt_pointer] (absolute, 0x200000 + 0x10)
      0x0f, 0x01, 0x1d, 0x10, 0x00, 0x20, 0x00,
      // int3
      0xcc,
      ...new Array(8).fill(0x90),
      // 0x10: IDT pointer: limit 0, base 0
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]);
    const result = await vmmkit("run", "--no-reboot", "--load-address", "0x200000", "--entry-mode", "32", temporaryFile("triple.bin", code));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^vmmkit: the guest triple-faulted \(shutdown\) at 0x8:0x20000[0-9a-f]\n$/);
  });
});
