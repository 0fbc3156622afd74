/**
 * The debug primitives of spec whpx.md D.2: ICEBP and INT3 exits, architectural TF with the
 * pending-debug-exception register, the host single-step run option and exclusive sections.
 * Real-mode guests: CS = DS = SS = 0, code at CODE, handlers through the IVT at 0.
 */
import { describe, expect, it } from "vitest";
import { exceptionBitmap, type WhvPartitionPropertyMap } from "@vmmkit/whpx-sim";
import { CODE, createGuest, createLoggingEmulator, expectExit, expectWhvError, realSegment, type Guest } from "./guest.js";

const STACK = 0x9000;
const HANDLER = 0x3000;
const TF = 0x100n;
const DR6_BS = 0x4000n;
const INTERCEPT_DB: Partial<WhvPartitionPropertyMap> = { extendedVmExits: { exceptionExit: true }, exceptionExitBitmap: exceptionBitmap("debugTrapOrFault") };

/** A guest with a stack, whose vector `vector` handler at HANDLER runs `handler`. */
function guestWith(code: readonly number[], properties: Partial<WhvPartitionPropertyMap> = {}, handlers: Record<number, readonly number[]> = {}): Guest {
  const guest = createGuest(properties);
  guest.load(code);
  guest.set(["x64Ss", "x64Ds", "x64Rsp"], [realSegment(0), realSegment(0), BigInt(STACK)]);
  let at = HANDLER;
  for (const [vector, bytes] of Object.entries(handlers)) {
    guest.ram.set(bytes, at);
    guest.ram[Number(vector) * 4] = at & 0xff;
    guest.ram[Number(vector) * 4 + 1] = at >> 8;
    at += 0x100;
  }
  return guest;
}

/** Handler: POP AX (the return IP) then HLT. */
const POP_AX_HLT = [0x58, 0xf4];
const word = (guest: Guest, address: number) => guest.ram[address]! | (guest.ram[address + 1]! << 8);
const rip = (guest: Guest) => guest.get(["x64Rip"])[0];
const ax = (guest: Guest) => guest.get(["x64Rax"])[0];

describe("ICEBP (0xF1) and INT3", () => {
  it("exits at the 0xF1 when vector 1 is intercepted: softwareException, nothing pushed, DR6 and RFLAGS unchanged", async () => {
    const guest = guestWith([0x90, 0xf1, 0xf4], INTERCEPT_DB);
    guest.set(["x64Dr6", "x64Rflags"], [0xffff0ff0n, 0x202n]);
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpException.exceptionType).toBe("debugTrapOrFault");
    expect(exit.vpException.exceptionInfo.softwareException).toBe(true);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 1));
    expect(exit.vpException.instructionBytes[0]).toBe(0xf1);
    expect(guest.get(["x64Rsp", "x64Dr6", "x64Rflags"])).toEqual([BigInt(STACK), 0xffff0ff0n, 0x202n]);
    expect(guest.get(["x64PendingDebugException"])[0].singleStep).toBe(false);
  });

  it("runs the guest's vector-1 handler with the return address after the 0xF1 when not intercepted", async () => {
    const guest = guestWith([0x90, 0xf1, 0xf4], {}, { 1: POP_AX_HLT });
    expectExit(await guest.run(), "x64Halt");
    expect(ax(guest)).toBe(BigInt(CODE + 2));
  });

  it("never exits for INT3 when only vector 1 is intercepted: the guest's vector-3 handler runs, return address after the 0xCC", async () => {
    const guest = guestWith([0xcc, 0xf4], INTERCEPT_DB, { 3: POP_AX_HLT });
    expectExit(await guest.run(), "x64Halt");
    expect(ax(guest)).toBe(BigInt(CODE + 1));
  });
});

describe("architectural TF", () => {
  // push 0x0102 (TF); popf; nop; push 0x0002; popf; nop; hlt
  const TF_ON_OFF = [0x68, 0x02, 0x01, 0x9d, 0x90, 0x68, 0x02, 0x00, 0x9d, 0x90, 0xf4];

  it("traps after each instruction that began with TF = 1: none after the POPF that sets it, one after the POPF that clears it", async () => {
    const guest = guestWith(TF_ON_OFF, INTERCEPT_DB);
    const trapped: bigint[] = [];
    for (;;) {
      const exit = await guest.run();
      if (exit.exitReason === "x64Halt") break;
      const exception = expectExit(exit, "exception");
      expect(exception.vpException.exceptionInfo.softwareException).toBe(false);
      expect(exception.vpException.exceptionParameter & DR6_BS).toBe(DR6_BS);
      expect(guest.get(["x64PendingDebugException"])[0].singleStep).toBe(true);
      trapped.push(exception.vpContext.rip);
      guest.set(["x64PendingDebugException"], [{ breakpoint0: false, breakpoint1: false, breakpoint2: false, breakpoint3: false, singleStep: false }]);
    }
    // After the NOP at +4, the PUSH at +5 and the clearing POPF at +8; not after the NOP at +9.
    expect(trapped).toEqual([CODE + 5, CODE + 8, CODE + 9].map(BigInt));
    expect(rip(guest)).toBe(BigInt(CODE + 11));
  });

  it("delivers a pending trap once when the VMM also injects #DB itself", async () => {
    const guest = guestWith([0x68, 0x02, 0x01, 0x9d, 0x90, 0x90, 0xf4], INTERCEPT_DB, { 1: POP_AX_HLT });
    expectExit(await guest.run(), "exception");
    guest.set(["pendingInterruption"], [{ interruptionPending: true, interruptionType: 3, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, interruptionVector: 1, errorCode: 0 }]);
    expect(guest.get(["x64PendingDebugException"])[0].singleStep).toBe(false);
    expectExit(await guest.run(), "x64Halt");
    expect(ax(guest)).toBe(BigInt(CODE + 5));
    expectExit(await guest.run(), "x64Halt"); // no second #DB: the handler does not run again
    expect(ax(guest)).toBe(BigInt(CODE + 5));
  });

  it("holds the trap after MOV SS until the next instruction has executed", async () => {
    // push 0x0102; popf; mov ss, ax; nop; hlt
    const guest = guestWith([0x68, 0x02, 0x01, 0x9d, 0x8e, 0xd0, 0x90, 0xf4], INTERCEPT_DB);
    guest.set(["x64Rax"], [0n]);
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 7));
  });

  it("records the trap in DR6 and x64PendingDebugException; left set, the next run delivers it to the guest whatever the bitmap", async () => {
    // push 0x0102; popf; nop; nop; hlt — the #DB handler pops the return IP.
    const guest = guestWith([0x68, 0x02, 0x01, 0x9d, 0x90, 0x90, 0xf4], INTERCEPT_DB, { 1: POP_AX_HLT });
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 5));
    expect(guest.get(["x64Dr6"])[0] & DR6_BS).toBe(DR6_BS);
    expectExit(await guest.run(), "x64Halt"); // delivered: the handler ran, no second exit
    expect(ax(guest)).toBe(BigInt(CODE + 5));
    expect(guest.get(["x64Dr6"])[0] & DR6_BS).toBe(DR6_BS);
    expect(guest.get(["x64PendingDebugException"])[0].singleStep).toBe(false);
  });

  it("stores TF = 1 when PUSHF runs under the guest's own TF (the leak the 2022 algorithm has)", async () => {
    // push 0x0102; popf; pushf; hlt
    const guest = guestWith([0x68, 0x02, 0x01, 0x9d, 0x9c, 0xf4], INTERCEPT_DB);
    expectExit(await guest.run(), "exception");
    expect(word(guest, STACK - 2) & 0x100).toBe(0x100);
  });
});

describe("host single-step (run option singleStep)", () => {
  const step = (guest: Guest, suppressInterrupts?: boolean) =>
    guest.run({ singleStep: true, ...(suppressInterrupts === undefined ? {} : { suppressInterrupts }) }).then((exit) => {
      const exception = expectExit(exit, "exception");
      expect(exception.vpException.sim).toEqual({ hostSingleStep: true });
      expect(exception.vpException.exceptionType).toBe("debugTrapOrFault");
      expect(exception.vpException.exceptionParameter).toBe(DR6_BS);
      return exception;
    });

  it("retires exactly one instruction per run, with no exception exits enabled", async () => {
    const guest = guestWith([0x40, 0x40, 0xf4]); // inc ax; inc ax; hlt
    guest.set(["x64Rax"], [0n]);
    const before = guest.retired();
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 1));
    expect(ax(guest)).toBe(1n);
    expect(guest.retired()).toBe(before + 1);
    await step(guest);
    expect(ax(guest)).toBe(2n);
  });

  it("never shows TF to the guest: PUSHF stores it clear and RFLAGS reads it clear", async () => {
    const guest = guestWith([0x9c, 0xf4]); // pushf; hlt
    await step(guest);
    expect(word(guest, STACK - 2) & 0x100).toBe(0);
    expect(guest.get(["x64Rflags"])[0] & TF).toBe(0n);
  });

  it("steps POPF that pops TF = 0 as one instruction, and the next step is still one instruction", async () => {
    const guest = guestWith([0x68, 0x02, 0x00, 0x9d, 0x40, 0x40, 0xf4]); // push 2; popf; inc ax; inc ax; hlt
    guest.set(["x64Rax"], [0n]);
    await step(guest);
    await step(guest);
    expect(rip(guest)).toBe(BigInt(CODE + 4));
    await step(guest);
    expect([rip(guest), ax(guest)]).toEqual([BigInt(CODE + 5), 1n]);
  });

  it("steps IRET to its return target", async () => {
    // push 0x0002 (flags); push 0 (cs); push CODE+8 (ip); iret; nop; hlt at CODE+8
    const guest = guestWith([0x68, 0x02, 0x00, 0x6a, 0x00, 0x68, (CODE + 0x0a) & 0xff, (CODE + 0x0a) >> 8, 0xcf, 0x90, 0xf4]);
    for (let i = 0; i < 4; i++) await step(guest);
    expect(rip(guest)).toBe(BigInt(CODE + 0x0a));
  });

  it("steps one iteration of a REP string instruction at a time; RIP stays on it until the count is used up", async () => {
    const guest = guestWith([0xf3, 0xaa, 0xf4]); // rep stosb; hlt
    guest.set(["x64Es", "x64Rdi", "x64Rcx", "x64Rax"], [realSegment(0), 0x5000n, 3n, 0x41n]);
    const seen: Array<readonly [bigint, bigint]> = [];
    for (let i = 0; i < 3; i++) {
      await step(guest);
      const [rcx, ripNow] = guest.get(["x64Rcx", "x64Rip"]);
      seen.push([rcx, ripNow]);
    }
    expect(seen).toEqual([
      [2n, BigInt(CODE)],
      [1n, BigInt(CODE)],
      [0n, BigInt(CODE + 2)],
    ]);
    expect([...guest.ram.subarray(0x5000, 0x5004)]).toEqual([0x41, 0x41, 0x41, 0]);
  });

  it("stops right after MOV SS and reports the shadow it created", async () => {
    const guest = guestWith([0x8e, 0xd0, 0x90, 0xf4]); // mov ss, ax; nop; hlt
    guest.set(["x64Rax"], [0n]);
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 2));
    expect(exit.vpContext.executionState.interruptShadow).toBe(true);
    expect(guest.get(["interruptState"])[0]).toEqual({ interruptShadow: true, nmiMasked: false });
  });

  it("stops right after STI and reports the shadow it created", async () => {
    const guest = guestWith([0xfb, 0x90, 0xf4]); // sti; nop; hlt
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 1));
    expect(exit.vpContext.executionState.interruptShadow).toBe(true);
    expect(guest.get(["interruptState"])[0].interruptShadow).toBe(true);
  });

  it("holds a pending external interrupt during the step and delivers it on the next normal run", async () => {
    // inc ax; inc ax; hlt — the vector 0x20 handler sets BX = 0x55 and halts.
    const guest = guestWith([0x40, 0x40, 0xfa, 0xf4], {}, { 0x20: [0xbb, 0x55, 0x00, 0xf4] });
    guest.set(["x64Rax", "x64Rbx", "x64Rflags"], [0n, 0n, 0x202n]);
    guest.set(["pendingInterruption"], [{ interruptionPending: true, interruptionType: 0, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, interruptionVector: 0x20, errorCode: 0 }]);
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 1));
    expect(guest.get(["pendingInterruption"])[0].interruptionPending).toBe(true);
    expect(guest.get(["interruptState"])[0].interruptShadow).toBe(false);
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64Rbx", "x64Rax"])).toEqual([0x55n, 1n]);
  });

  it("with suppressInterrupts false, delivers the pending interrupt as the one event and stops at the handler", async () => {
    const guest = guestWith([0x40, 0xf4], {}, { 0x20: [0xbb, 0x55, 0x00, 0xf4] });
    guest.set(["x64Rax", "x64Rflags"], [0n, 0x202n]);
    guest.set(["pendingEvent"], [{ eventPending: true, eventType: "extInt", vector: 0x20 }]);
    const exit = await step(guest, false);
    expect(exit.vpContext.rip).toBe(BigInt(HANDLER));
    expect(ax(guest)).toBe(0n);
  });

  it("ends right after an OUT completed by the emulator helper: no second instruction executes", async () => {
    const guest = guestWith([0xe6, 0x80, 0x40, 0xf4]); // out 0x80, al; inc ax; hlt
    guest.set(["x64Rax"], [0n]);
    const emulator = createLoggingEmulator(guest);
    const io = expectExit(await guest.run({ singleStep: true }), "x64IoPortAccess");
    expect(emulator.api.tryIoEmulation(emulator.handle, 0, io.vpContext, io.ioPortAccess).emulationSuccessful).toBe(true);
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 2));
    expect(ax(guest)).toBe(0n);
    await step(guest);
    expect(ax(guest)).toBe(1n);
  });

  it("ends right after an MMIO store completed by the emulator helper", async () => {
    const guest = guestWith([0xa2, 0x00, 0x00, 0x40, 0xf4]); // mov [0], al (DS = 0x2000: MMIO); inc ax; hlt
    guest.set(["x64Ds", "x64Rax"], [realSegment(0x2000), 0x7n]);
    const emulator = createLoggingEmulator(guest);
    const mmio = expectExit(await guest.run({ singleStep: true }), "memoryAccess");
    expect(emulator.api.tryMmioEmulation(emulator.handle, 0, mmio.vpContext, mmio.memoryAccess).emulationSuccessful).toBe(true);
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 3));
    expect(ax(guest)).toBe(7n);
    expect(emulator.mmio.map((access) => [...access.data])).toEqual([[7]]);
  });

  it("over INT n stops at the handler's first instruction; the pushed FLAGS carry no TF", async () => {
    const guest = guestWith([0xcd, 0x21, 0xf4], {}, { 0x21: [0x90, 0xcf] });
    guest.set(["x64Rflags"], [0x2n]);
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(HANDLER));
    expect(word(guest, STACK - 2) & 0x100).toBe(0); // FLAGS (pushed first, highest)
    expect(word(guest, STACK - 6)).toBe(CODE + 2); // return IP
  });

  it("over a faulting instruction delivers the fault and stops at the handler's first instruction", async () => {
    const guest = guestWith([0x0f, 0x0b, 0xf4], {}, { 6: POP_AX_HLT }); // ud2
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(HANDLER));
    expect(word(guest, STACK - 6)).toBe(CODE); // a fault returns to the instruction
    expect(word(guest, STACK - 2) & 0x100).toBe(0);
  });

  it("reports a fault the partition intercepts as that exception, not as the step", async () => {
    const guest = guestWith([0x0f, 0x0b, 0xf4], { extendedVmExits: { exceptionExit: true }, exceptionExitBitmap: exceptionBitmap("invalidOpcodeFault") });
    const exit = expectExit(await guest.run({ singleStep: true }), "exception");
    expect(exit.vpException.exceptionType).toBe("invalidOpcodeFault");
    expect(exit.vpException.sim).toBeUndefined();
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
  });

  it("over INT3 and ICEBP the guest's handler gets the return address past the byte", async () => {
    // Handlers are placed in vector order: #DB at HANDLER, #BP at HANDLER + 0x100.
    const guest = guestWith([0xcc, 0xf1, 0xf4], {}, { 1: [0x90, 0xcf], 3: [0x90, 0xcf] });
    expect((await step(guest)).vpContext.rip).toBe(BigInt(HANDLER + 0x100));
    expect(word(guest, STACK - 6)).toBe(CODE + 1);
    await step(guest); // nop
    await step(guest); // iret
    expect(rip(guest)).toBe(BigInt(CODE + 1));
    expect((await step(guest)).vpContext.rip).toBe(BigInt(HANDLER));
    expect(word(guest, STACK - 6)).toBe(CODE + 2);
  });

  it("keeps a #DB the guest's own TF raises pending for the guest instead of running its handler", async () => {
    // push 0x0102; popf; nop; hlt
    const guest = guestWith([0x68, 0x02, 0x01, 0x9d, 0x90, 0xf4], {}, { 1: POP_AX_HLT });
    await step(guest); // push
    await step(guest); // popf (TF set: no trap after it)
    expect(guest.get(["x64PendingDebugException"])[0].singleStep).toBe(false);
    const exit = await step(guest); // nop: the guest's trap follows it
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 5));
    expect(guest.get(["x64PendingDebugException"])[0].singleStep).toBe(true);
    expectExit(await guest.run(), "x64Halt"); // the next run delivers it
    expect(ax(guest)).toBe(BigInt(CODE + 5));
  });

  it("over HLT returns at once with RIP past it and the processor halted; stepping again does not hang", async () => {
    const guest = guestWith([0xfb, 0xf4, 0x90]); // sti; hlt; nop
    await step(guest);
    const exit = await step(guest);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 2));
    expect(guest.get(["internalActivityState"])[0].haltSuspend).toBe(true);
    expect((await step(guest)).vpContext.rip).toBe(BigInt(CODE + 2));
    expectExit(await guest.run(), "x64Halt");
  });
});

describe("code patched by the host", () => {
  it("takes effect at an address that ran (and was compiled) before", async () => {
    // L: inc ax; cmp ax, 1000; jne L; hlt
    const guest = guestWith([0x40, 0x3d, 0xe8, 0x03, 0x75, 0xfa, 0xf4], INTERCEPT_DB);
    guest.set(["x64Rax"], [0n]);
    expectExit(await guest.run(), "x64Halt");
    expect(ax(guest)).toBe(1000n);
    guest.ram[CODE] = 0xf1;
    guest.set(["x64Rax", "x64Rip", "internalActivityState"], [0n, BigInt(CODE), { startupSuspend: false, haltSuspend: false, idleSuspend: false }]);
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
    expect(exit.vpException.exceptionInfo.softwareException).toBe(true);
  });
});

describe("exclusive sections", () => {
  it("hold the other processors' runs until the section ends; the bitmap may change meanwhile", async () => {
    const guest = guestWith([0xeb, 0xfe], { processorCount: 2 }); // jmp $
    const { platform, partition } = guest;
    platform.createVirtualProcessor(partition, 1);
    platform.setVirtualProcessorRegisters(partition, 1, ["x64Cs", "x64Rip"], [realSegment(0, true), BigInt(CODE)]);
    const spinner = platform.runVirtualProcessor(partition, 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    platform.beginExclusiveSection(partition, 0);
    await new Promise((resolve) => setImmediate(resolve)); // let the spinner reach its next slice boundary
    const held = platform.getVirtualProcessorCounters(partition, 1).instructionsRetired;
    expectWhvError(() => platform.beginExclusiveSection(partition, 1), "invalidVpState", 0x80370308);
    platform.setPartitionProperty(partition, "exceptionExitBitmap", exceptionBitmap("debugTrapOrFault"));
    for (let i = 0; i < 3; i++) {
      expectExit(await guest.run({ singleStep: true }), "exception");
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(platform.getVirtualProcessorCounters(partition, 1).instructionsRetired).toBe(held);
    expectWhvError(() => platform.endExclusiveSection(partition, 1), "invalidArg", 0x80070057);
    platform.endExclusiveSection(partition, 0);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(platform.getVirtualProcessorCounters(partition, 1).instructionsRetired).toBeGreaterThan(held);
    platform.cancelRunVirtualProcessor(partition, 1);
    expect(expectExit(await spinner, "canceled").cancelReason).toBe("user");
  });

  it("let a cancel end a held run without executing anything", async () => {
    const guest = guestWith([0xeb, 0xfe], { processorCount: 2 });
    const { platform, partition } = guest;
    platform.createVirtualProcessor(partition, 1);
    platform.setVirtualProcessorRegisters(partition, 1, ["x64Cs", "x64Rip"], [realSegment(0, true), BigInt(CODE)]);
    platform.beginExclusiveSection(partition, 0);
    const held = platform.runVirtualProcessor(partition, 1);
    await new Promise((resolve) => setTimeout(resolve, 2));
    platform.cancelRunVirtualProcessor(partition, 1);
    expect(expectExit(await held, "canceled").cancelReason).toBe("user");
    expect(platform.getVirtualProcessorCounters(partition, 1).instructionsRetired).toBe(0);
    platform.endExclusiveSection(partition, 0);
  });
});
