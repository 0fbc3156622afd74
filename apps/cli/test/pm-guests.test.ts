/**
 * The protected-mode guests of guests/pm/, run through the real CLI entry: each is a
 * self-checking multiboot kernel that prints "ok: …" per check and "PASS", and exits
 * through isa-debug-exit with 0x10 (status 33); a failed check prints "FAIL: …" and exits
 * with 0x11 (status 35). Their expected output is guests/pm/<name>/expected.txt.
 *
 * Where QEMU is installed the same images also run under qemu-system-i386, as an
 * independent check that the guests (and so what they expect) are right.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { guest, vmmkit } from "./helpers.js";

const GUESTS = [
  ["ring3", "ring 3 via IRET and back through an interrupt gate"],
  ["call-gate", "call gate with parameters"],
  ["page-fault", "page fault handled and retried"],
  ["task-gate-df", "task switches and a double fault through a task gate"],
  ["dr-breakpoints", "DR breakpoints of each type"],
  ["io-breakpoint", "an I/O breakpoint on an OUT the VMM completes"],
  ["single-step", "TF over POPF, IRET and MOV SS"],
  ["v86", "a V86 monitor"],
  ["pae-nx", "PAE paging with NX"],
] as const;

const expectedOutput = (name: string) => readFileSync(guest(`pm/${name}/expected.txt`), "utf8");

describe("protected-mode guests under vmmkit run", () => {
  for (const [name, what] of GUESTS) {
    it(`${name}: ${what}`, async () => {
      const result = await vmmkit("run", "--max-instructions", "20000000", guest(`pm/${name}/${name}.elf`));
      expect(result.stdout).toBe(expectedOutput(name));
      expect(result.stderr).toBe("");
      expect(result.status).toBe((0x10 << 1) | 1);
    });
  }
});

const qemuAvailable = spawnSync("qemu-system-i386", ["--version"], { encoding: "utf8" }).status === 0;

describe.runIf(qemuAvailable || process.env.CI)("the same guests under qemu-system-i386", () => {
  // dr-breakpoints is left out: QEMU's TCG raises no #DB for DR7.GD (general detect).
  for (const [name] of GUESTS.filter(([name]) => name !== "dr-breakpoints")) {
    it(`${name} prints the same and exits with 33`, () => {
      const result = spawnSync(
        "qemu-system-i386",
        ["-cpu", "max", "-m", "64", "-display", "none", "-no-reboot", "-monitor", "none", "-serial", "stdio",
          "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", guest(`pm/${name}/${name}.elf`)],
        { encoding: "utf8", timeout: 30_000 },
      );
      expect(result.stdout).toBe(expectedOutput(name));
      expect(result.status).toBe(33);
    }, 40_000);
  }
});
