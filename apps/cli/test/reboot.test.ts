/**
 * Machine reset: guests/reboot counts its boots in battery-backed CMOS RAM and resets the
 * machine by a triple fault, through port 0x92 and through the 8042. vmmkit resets the
 * machine each time (as QEMU does), unless --no-reboot says to end the run.
 */
import { describe, expect, it } from "vitest";
import { guest, vmmkit } from "./helpers.js";
import { qemuAvailable, runUnderQemu } from "./qemu.js";

const image = guest("reboot/reboot.elf");
const STORY = [
  "boot 1: triple-faulting",
  "boot 2: after the triple fault; resetting through port 0x92",
  "boot 3: after port 0x92; resetting through the 8042",
  "boot 4: after the 8042; done",
  "",
].join("\n");

describe("machine reset", () => {
  it("a triple fault, port 0x92 and the 8042 each reset the machine; CMOS RAM survives", async () => {
    const result = await vmmkit("run", image);
    expect(result.stdout).toBe(STORY);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(33);
  });

  it("--no-reboot ends the run at the first triple fault, saying where", async () => {
    const result = await vmmkit("run", image, "--no-reboot");
    expect(result.stdout).toBe("boot 1: triple-faulting\n");
    expect(result.stderr).toMatch(/^vmmkit: the guest triple-faulted \(shutdown\) at 0x8:0x[0-9a-f]+\n$/);
    expect(result.status).toBe(1);
  });
});

describe.runIf(qemuAvailable || process.env.CI)("machine reset, differential against qemu-system-i386", () => {
  it("QEMU tells the same story", async () => {
    const qemu = runUnderQemu(image, { reboot: true });
    expect(qemu.stdout).toBe(STORY);
    expect(qemu.status).toBe(33);
  }, 60_000);
});
