/**
 * The A20 shim extension: `setVirtualProcessorA20` gates address line 20 of one processor,
 * so with it off, real-mode addresses above 1 MiB wrap to the bottom of memory as on an
 * 8086 (what the PC's port 0x92 and 8042 control).
 */
import { describe, expect, it } from "vitest";
import { WhvHresult, WhvPlatform } from "@vmmkit/whpx-sim";
import { RWX, expectExit, expectWhvError, realSegment } from "./guest.js";

const MIB = 0x100000;

/** 2 MiB of RAM at GPA 0 and one processor at 0000:1000 with DS = 0xFFFF, so DS:0x10 is linear 1 MiB (0xFFFF0 + 0x10). */
function twoMibGuest(code: readonly number[]) {
  const platform = new WhvPlatform();
  const partition = platform.createPartition();
  platform.setupPartition(partition);
  const ram = new Uint8Array(2 * MIB);
  platform.mapGpaRange(partition, ram, 0n, BigInt(ram.length), RWX);
  platform.createVirtualProcessor(partition, 0);
  ram.set(code, 0x1000);
  platform.setVirtualProcessorRegisters(partition, 0, ["x64Cs", "x64Rip", "x64Ds"], [realSegment(0, true), 0x1000n, realSegment(0xffff)]);
  return { platform, partition, ram };
}

describe("setVirtualProcessorA20", () => {
  it("with A20 off, an access above 1 MiB reaches the address with bit 20 cleared; back on, it reaches 1 MiB", async () => {
    // mov al, [0x10]; mov byte [0x20], 0x77; out 0x80, al (an I/O exit leaves RIP at the OUT)
    const { platform, partition, ram } = twoMibGuest([0xa0, 0x10, 0x00, 0xc6, 0x06, 0x20, 0x00, 0x77, 0xe6, 0x80]);
    ram[MIB] = 0xaa;
    ram[0] = 0x55;
    const run = async (a20: boolean) => {
      platform.setVirtualProcessorA20(partition, 0, a20);
      expect(platform.getVirtualProcessorA20(partition, 0)).toBe(a20);
      platform.setVirtualProcessorRegisters(partition, 0, ["x64Rip"], [0x1000n]);
      return expectExit(await platform.runVirtualProcessor(partition, 0), "x64IoPortAccess").ioPortAccess.rax & 0xffn;
    };
    expect(platform.getVirtualProcessorA20(partition, 0)).toBe(true);
    expect(await run(false)).toBe(0x55n);
    expect(ram[0x10]).toBe(0x77);
    expect(ram[MIB + 0x10]).toBe(0);
    expect(await run(true)).toBe(0xaan);
    expect(ram[MIB + 0x10]).toBe(0x77);
    expect(await run(false)).toBe(0x55n);
  });

  it("gates one processor only, and a processor created later starts with A20 on", () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setPartitionProperty(partition, "processorCount", 2);
    platform.setupPartition(partition);
    platform.createVirtualProcessor(partition, 0);
    platform.setVirtualProcessorA20(partition, 0, false);
    platform.createVirtualProcessor(partition, 1);
    expect(platform.getVirtualProcessorA20(partition, 0)).toBe(false);
    expect(platform.getVirtualProcessorA20(partition, 1)).toBe(true);
  });

  it("refuses a processor that does not exist and a state that is not a boolean, changing nothing", () => {
    const { platform, partition } = twoMibGuest([0xf4]);
    expectWhvError(() => platform.setVirtualProcessorA20(partition, 3, false), "vpDoesNotExist", WhvHresult.vpDoesNotExist);
    expectWhvError(() => platform.setVirtualProcessorA20(partition, 0, 0 as unknown as boolean), "invalidArg", WhvHresult.invalidArg);
    expect(platform.getVirtualProcessorA20(partition, 0)).toBe(true);
    expect(platform.getCapability("simFeatures").a20Gate).toBe(true);
  });
});
