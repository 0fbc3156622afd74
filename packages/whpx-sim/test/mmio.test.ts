/**
 * Memory-access exits for unmapped GPAs and the emulator helper completing the instruction
 * through its memory callback (spec B.2, B.6, D.1 #4, #8).
 */
import { describe, expect, it } from "vitest";
import { CODE, MMIO_BASE, createGuest, createLoggingEmulator, expectExit, realSegment, type Guest } from "./guest.js";

/** DS points at MMIO_BASE, so small offsets address unmapped GPAs. */
function mmioGuest(code: number[]): Guest {
  const guest = createGuest();
  guest.set(["x64Ds"], [realSegment(MMIO_BASE / 16)]);
  guest.load(code);
  return guest;
}

describe("memoryAccess exits", () => {
  it("reports a read of an unmapped GPA at the instruction, with its bytes", async () => {
    const guest = mmioGuest([0xa0, 0x10, 0x00]); // mov al, [0x0010]
    const exit = expectExit(await guest.run(), "memoryAccess");
    expect(exit.memoryAccess.gpa).toBe(BigInt(MMIO_BASE + 0x10));
    expect(exit.memoryAccess.accessInfo).toEqual({ accessType: "read", gpaUnmapped: true, gvaValid: false });
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
    expect([...exit.memoryAccess.instructionBytes.subarray(0, 3)]).toEqual([0xa0, 0x10, 0x00]);
    expect(exit.memoryAccess.instructionByteCount).toBe(16);
    expect(guest.get(["x64Rip", "x64Rax"])).toEqual([BigInt(CODE), 0n]);
  });

  it("reports a write of an unmapped GPA, leaving memory and registers unchanged", async () => {
    const guest = mmioGuest([0x66, 0x89, 0x07]); // mov [bx], eax
    guest.set(["x64Rax", "x64Rbx"], [0xdead_beefn, 0x20n]);
    const exit = expectExit(await guest.run(), "memoryAccess");
    expect(exit.memoryAccess.gpa).toBe(BigInt(MMIO_BASE + 0x20));
    expect(exit.memoryAccess.accessInfo).toEqual({ accessType: "write", gpaUnmapped: true, gvaValid: false });
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
    expect(guest.get(["x64Rip", "x64Rax", "x64Rbx"])).toEqual([BigInt(CODE), 0xdead_beefn, 0x20n]);
  });
});

describe("tryMmioEmulation", () => {
  it("completes a MOV from MMIO: one read callback, the destination register filled, RIP advanced", async () => {
    const guest = mmioGuest([0xa0, 0x10, 0x00, 0xf4]); // mov al, [0x0010]; hlt
    guest.set(["x64Rax"], [0x1234_5600n]);
    const emulator = createLoggingEmulator(guest, { mmioRead: () => [0x5a] });
    const exit = expectExit(await guest.run(), "memoryAccess");
    const status = emulator.api.tryMmioEmulation(emulator.handle, 0, exit.vpContext, exit.memoryAccess);
    expect(status.emulationSuccessful).toBe(true);
    expect(emulator.mmio).toEqual([{ gpaAddress: BigInt(MMIO_BASE + 0x10), direction: "read", accessSize: 1, data: new Uint8Array([0x5a]) }]);
    expect(guest.get(["x64Rax", "x64Rip"])).toEqual([0x1234_565an, BigInt(CODE + 3)]);
    expectExit(await guest.run(), "x64Halt");
  });

  it("completes LIDT from MMIO and writes the new IDTR back (system registers the instruction changed)", async () => {
    const guest = mmioGuest([0x0f, 0x01, 0x1e, 0x00, 0x00]); // lidt [0]
    // limit 0x03ff, base 0x00012345
    const emulator = createLoggingEmulator(guest, { mmioRead: (gpa, size) => Array.from({ length: size }, (_, i) => [0xff, 0x03, 0x45, 0x23, 0x01, 0x00][gpa - MMIO_BASE + i] ?? 0) });
    const exit = expectExit(await guest.run(), "memoryAccess");
    expect(emulator.api.tryMmioEmulation(emulator.handle, 0, exit.vpContext, exit.memoryAccess).emulationSuccessful).toBe(true);
    const [idtr, rip] = guest.get(["x64Idtr", "x64Rip"] as const);
    expect(idtr).toMatchObject({ base: 0x12345n, limit: 0x3ff });
    expect(rip).toBe(BigInt(CODE + 5));
  });

  it("completes a MOV to MMIO: one write callback with the bytes, RIP advanced", async () => {
    const guest = mmioGuest([0x66, 0x89, 0x07, 0xf4]); // mov [bx], eax; hlt
    guest.set(["x64Rax", "x64Rbx"], [0xdead_beefn, 0x20n]);
    const emulator = createLoggingEmulator(guest);
    const exit = expectExit(await guest.run(), "memoryAccess");
    const status = emulator.api.tryMmioEmulation(emulator.handle, 0, exit.vpContext, exit.memoryAccess);
    expect(status.emulationSuccessful).toBe(true);
    expect(emulator.mmio).toEqual([
      { gpaAddress: BigInt(MMIO_BASE + 0x20), direction: "write", accessSize: 4, data: new Uint8Array([0xef, 0xbe, 0xad, 0xde]) },
    ]);
    expect(guest.get(["x64Rip", "x64Rax"])).toEqual([BigInt(CODE + 3), 0xdead_beefn]);
    expectExit(await guest.run(), "x64Halt");
  });

  it("reports a throwing memory callback as memoryCallbackFailed and leaves the registers alone", async () => {
    const guest = mmioGuest([0xa0, 0x10, 0x00]); // mov al, [0x0010]
    guest.set(["x64Rax"], [0x77n]);
    const emulator = createLoggingEmulator(guest, { failMemory: true });
    const exit = expectExit(await guest.run(), "memoryAccess");
    const status = emulator.api.tryMmioEmulation(emulator.handle, 0, exit.vpContext, exit.memoryAccess);
    expect(status).toMatchObject({ emulationSuccessful: false, memoryCallbackFailed: true });
    expect(guest.get(["x64Rax", "x64Rip"])).toEqual([0x77n, BigInt(CODE)]);
  });
});
