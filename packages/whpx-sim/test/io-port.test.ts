/**
 * Port I/O: x64IoPortAccess exits before the instruction completes, and the emulator helper
 * completing IN, OUT and the string forms (spec B.4, B.6, D.1 #7).
 */
import { describe, expect, it } from "vitest";
import { CODE, createGuest, createLoggingEmulator, expectExit, expectWhvError, type Guest } from "./guest.js";

async function ioExit(guest: Guest) {
  return expectExit(await guest.run(), "x64IoPortAccess");
}

describe("x64IoPortAccess exits", () => {
  it("reports OUT imm8, AL at the instruction, before it completes", async () => {
    const guest = createGuest();
    guest.load([
      0xb0, 0x41, // mov al, 0x41
      0xe6, 0x80, // out 0x80, al
    ]);
    const exit = await ioExit(guest);
    expect(exit.ioPortAccess.portNumber).toBe(0x80);
    expect(exit.ioPortAccess.accessInfo).toEqual({ isWrite: true, accessSize: 1, stringOp: false, repPrefix: false });
    expect(exit.ioPortAccess.rax & 0xffn).toBe(0x41n);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 2));
    expect(exit.vpContext.instructionLength).toBe(2);
    expect(exit.vpContext.cs.selector).toBe(0);
    expect(exit.vpContext.executionState.cr0Pe).toBe(false);
    expect([...exit.ioPortAccess.instructionBytes.subarray(0, 2)]).toEqual([0xe6, 0x80]);
    expect(exit.ioPortAccess.instructionByteCount).toBe(exit.ioPortAccess.instructionBytes.length);
    // Nothing was completed: running again stops at the same OUT.
    expect(guest.get(["x64Rip"])).toEqual([BigInt(CODE + 2)]);
    const again = await ioExit(guest);
    expect(again.vpContext.rip).toBe(BigInt(CODE + 2));
  });

  it.each([
    ["out dx, ax", [0xef], 2, true, 1],
    ["out dx, eax", [0x66, 0xef], 4, true, 2],
    ["in al, dx", [0xec], 1, false, 1],
    ["in ax, dx", [0xed], 2, false, 1],
    ["in eax, dx", [0x66, 0xed], 4, false, 2],
  ])("reports %s with its size, direction and length", async (_name, bytes, accessSize, isWrite, length) => {
    const guest = createGuest();
    guest.set(["x64Rax", "x64Rdx"], [0xcafe_baben, 0x3f8n]);
    guest.load(bytes);
    const exit = await ioExit(guest);
    expect(exit.ioPortAccess.portNumber).toBe(0x3f8);
    expect(exit.ioPortAccess.accessInfo).toEqual({ isWrite, accessSize, stringOp: false, repPrefix: false });
    expect(exit.ioPortAccess.rax).toBe(0xcafe_baben);
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
    expect(exit.vpContext.instructionLength).toBe(length);
  });

  it("reports IN AL, imm8 as a read of that port", async () => {
    const guest = createGuest();
    guest.load([0xe4, 0x60]); // in al, 0x60
    const exit = await ioExit(guest);
    expect(exit.ioPortAccess.portNumber).toBe(0x60);
    expect(exit.ioPortAccess.accessInfo.isWrite).toBe(false);
    expect(exit.vpContext.instructionLength).toBe(2);
  });

  it("reports REP OUTSB with the string registers and segments, before the first iteration", async () => {
    const guest = createGuest();
    guest.load([
      0xbe, 0x00, 0x20, // mov si, 0x2000
      0xb9, 0x03, 0x00, // mov cx, 3
      0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xf3, 0x6e, //       rep outsb
    ]);
    const exit = await ioExit(guest);
    expect(exit.ioPortAccess.accessInfo).toEqual({ isWrite: true, accessSize: 1, stringOp: true, repPrefix: true });
    expect(exit.ioPortAccess.rcx).toBe(3n);
    expect(exit.ioPortAccess.rsi).toBe(0x2000n);
    expect(exit.ioPortAccess.ds.selector).toBe(0);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 9));
    expect(exit.vpContext.instructionLength).toBe(2);
  });
});

describe("tryIoEmulation", () => {
  it("completes OUT: one callback with AL, RIP past the instruction", async () => {
    const guest = createGuest();
    const emulator = createLoggingEmulator(guest);
    guest.load([
      0xb0, 0x41, // mov al, 0x41
      0xe6, 0x80, // out 0x80, al
      0xf4, //       hlt
    ]);
    const exit = await ioExit(guest);
    const status = emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess);
    expect(status.emulationSuccessful).toBe(true);
    expect(emulator.io).toEqual([{ direction: "out", port: 0x80, accessSize: 1, data: 0x41 }]);
    expect(guest.get(["x64Rip"])).toEqual([BigInt(CODE + 4)]);
    expectExit(await guest.run(), "x64Halt");
  });

  it.each([
    ["in al, dx", [0xec], 0xab, 0x1234_56abn],
    ["in ax, dx", [0xed], 0xbeef, 0x1234_beefn],
    ["in eax, dx", [0x66, 0xed], 0xcafe_babe, 0xcafe_baben],
  ])("completes %s, merging the data into RAX", async (_name, bytes, data, rax) => {
    const guest = createGuest();
    const emulator = createLoggingEmulator(guest, { portIn: () => data });
    guest.set(["x64Rax", "x64Rdx"], [0x1234_5678n, 0x71n]);
    guest.load(bytes);
    const exit = await ioExit(guest);
    const status = emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess);
    expect(status.emulationSuccessful).toBe(true);
    expect(emulator.io).toHaveLength(1);
    expect(emulator.io[0]).toMatchObject({ direction: "in", port: 0x71 });
    expect(guest.get(["x64Rax", "x64Rip"])).toEqual([rax, BigInt(CODE + bytes.length)]);
  });

  it("completes REP OUTSB: one callback per byte, CX = 0, SI advanced, RIP past it", async () => {
    const guest = createGuest();
    const emulator = createLoggingEmulator(guest);
    guest.ram.set([0x61, 0x62, 0x63], 0x2000); // "abc"
    guest.load([
      0xbe, 0x00, 0x20, // mov si, 0x2000
      0xb9, 0x03, 0x00, // mov cx, 3
      0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xf3, 0x6e, //       rep outsb
      0xf4, //             hlt
    ]);
    const exit = await ioExit(guest);
    const status = emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess);
    expect(status.emulationSuccessful).toBe(true);
    expect(emulator.io.map((access) => [access.direction, access.port, access.data])).toEqual([
      ["out", 0x3f8, 0x61],
      ["out", 0x3f8, 0x62],
      ["out", 0x3f8, 0x63],
    ]);
    expect(guest.get(["x64Rcx", "x64Rsi", "x64Rip"])).toEqual([0n, 0x2003n, BigInt(CODE + 11)]);
    const halt = expectExit(await guest.run(), "x64Halt");
    expect(halt.vpContext.rip).toBe(BigInt(CODE + 12));
  });

  it("completes REP OUTSB backwards when DF is set", async () => {
    const guest = createGuest();
    const emulator = createLoggingEmulator(guest);
    guest.ram.set([0x61, 0x62, 0x63], 0x2000);
    guest.set(["x64Rsi", "x64Rcx", "x64Rdx", "x64Rflags"], [0x2002n, 3n, 0x3f8n, 0x402n]); // DF
    guest.load([0xf3, 0x6e]); // rep outsb
    const exit = await ioExit(guest);
    expect(emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess).emulationSuccessful).toBe(true);
    expect(emulator.io.map((access) => access.data)).toEqual([0x63, 0x62, 0x61]);
    expect(guest.get(["x64Rcx", "x64Rsi"])).toEqual([0n, 0x1fffn]);
  });

  // The interpreter gives way every 4096 iterations; the emulator must still finish the REP.
  it("completes a REP OUTSB longer than one interpreter chunk", async () => {
    const guest = createGuest();
    const emulator = createLoggingEmulator(guest);
    guest.set(["x64Rsi", "x64Rcx", "x64Rdx"], [0x4000n, 5000n, 0xe9n]);
    guest.load([0xf3, 0x6e]); // rep outsb
    const exit = await ioExit(guest);
    expect(emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess).emulationSuccessful).toBe(true);
    expect(emulator.io).toHaveLength(5000);
    expect(guest.get(["x64Rcx", "x64Rsi", "x64Rip"])).toEqual([0n, BigInt(0x4000 + 5000), BigInt(CODE + 2)]);
  });

  it("completes REP INSB, storing each byte read through the memory callback", async () => {
    const guest = createGuest();
    let next = 0x10;
    const emulator = createLoggingEmulator(guest, { portIn: () => next++ });
    guest.set(["x64Rdi", "x64Rcx", "x64Rdx"], [0x3000n, 3n, 0x1f0n]);
    guest.load([0xf3, 0x6c]); // rep insb
    const exit = await ioExit(guest);
    expect(exit.ioPortAccess.accessInfo).toEqual({ isWrite: false, accessSize: 1, stringOp: true, repPrefix: true });
    expect(emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess).emulationSuccessful).toBe(true);
    expect([...guest.ram.subarray(0x3000, 0x3004)]).toEqual([0x10, 0x11, 0x12, 0]);
    expect(guest.get(["x64Rcx", "x64Rdi"])).toEqual([0n, 0x3003n]);
  });

  it("reports a throwing port callback as ioPortCallbackFailed and leaves the registers alone", async () => {
    const guest = createGuest();
    const emulator = createLoggingEmulator(guest, { failPort: true });
    guest.set(["x64Rax"], [0x55n]);
    guest.load([0xe4, 0x60]); // in al, 0x60
    const exit = await ioExit(guest);
    const status = emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess);
    expect(status).toMatchObject({ emulationSuccessful: false, ioPortCallbackFailed: true });
    expect(guest.get(["x64Rax", "x64Rip"])).toEqual([0x55n, BigInt(CODE)]);
  });

  it("refuses a destroyed emulator handle with invalidArg", async () => {
    const guest = createGuest();
    const emulator = createLoggingEmulator(guest);
    guest.load([0xe4, 0x60]); // in al, 0x60
    const exit = await ioExit(guest);
    emulator.api.destroyEmulator(emulator.handle);
    expectWhvError(() => emulator.api.destroyEmulator(emulator.handle), "invalidArg", 0x80070057);
    expectWhvError(() => emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess), "invalidArg", 0x80070057);
    expect(emulator.io).toEqual([]);
  });
});

describe("I/O breakpoints on emulated port accesses", () => {
  // Real mode, IVT entry 1 → a #DB handler at 0x2000 that copies DR6 to BX and halts.
  function guestWithDebugHandler() {
    const guest = createGuest();
    const view = new DataView(guest.ram.buffer);
    view.setUint16(4, 0x2000, true);
    view.setUint16(6, 0, true);
    guest.ram.set([0x0f, 0x21, 0xf3, 0xfa, 0xf4], 0x2000); // mov ebx, dr6; cli; hlt
    guest.load([0xb0, 0x41, 0xe6, 0x80, 0x90, 0x90]); // mov al, 0x41; out 0x80, al; nop; nop
    return guest;
  }

  it("deliver #DB with the matching DR6 bit after the OUT the emulator completed", async () => {
    const guest = guestWithDebugHandler();
    const emulator = createLoggingEmulator(guest);
    // DR1: port 0x80, length 1, R/W = 10 (I/O), locally enabled; CR4.DE on.
    guest.set(["x64Cr4", "x64Dr1", "x64Dr7"] as const, [0x8n, 0x80n, BigInt((1 << 2) | (2 << 20))]);
    const exit = expectExit(await guest.run(), "x64IoPortAccess");
    expect(emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess).emulationSuccessful).toBe(true);
    expect(emulator.io.map((access) => access.port)).toEqual([0x80]);
    expectExit(await guest.run(), "x64Halt");
    const [dr6, rip] = guest.get(["x64Rbx", "x64Rip"] as const);
    expect(Number(dr6) & 0xf).toBe(0b0010); // B1
    expect(rip).toBe(0x2005n); // in the handler, not past the NOPs
  });

  it("do nothing for another port, or without CR4.DE", async () => {
    for (const [cr4, port] of [
      [0x8n, 0x81n],
      [0x0n, 0x80n],
    ] as const) {
      const guest = guestWithDebugHandler();
      const emulator = createLoggingEmulator(guest);
      guest.set(["x64Cr4", "x64Dr1", "x64Dr7"] as const, [cr4, port, BigInt((1 << 2) | (2 << 20))]);
      guest.ram.set([0xfa, 0xf4], 0x1006); // cli; hlt after the NOPs
      const exit = expectExit(await guest.run(), "x64IoPortAccess");
      emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess);
      expectExit(await guest.run(), "x64Halt");
      expect(guest.get(["x64Rip"] as const)).toEqual([0x1008n]);
    }
  });
});
