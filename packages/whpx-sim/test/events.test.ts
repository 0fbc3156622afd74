/**
 * Event injection (pendingEvent, pendingInterruption), the event-state registers, CPUID
 * exits, invalid register state, execute-access and paged memory exits, the emulator helper
 * under TF and faults, capabilities and determinism.
 */
import { describe, expect, it } from "vitest";
import { defaultCpuid } from "@vmmkit/cpu";
import { WhvMapGpaRangeFlags, WhvPlatform, type WhvPartitionPropertyMap, type WhvRunVpExitContext } from "@vmmkit/whpx-sim";
import { CODE, FLAT_CODE, FLAT_DATA, MMIO_BASE, createGuest, createLoggingEmulator, expectExit, expectWhvError, realSegment, type Guest } from "./guest.js";

const STACK = 0x9000;
const HANDLER = 0x3000;
const E_INVALIDARG = 0x80070057;
const NO_DEBUG = { breakpoint0: false, breakpoint1: false, breakpoint2: false, breakpoint3: false, singleStep: false };

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

const POP_AX_HLT = [0x58, 0xf4];
const ax = (guest: Guest) => guest.get(["x64Rax"])[0];

describe("pendingEvent and pendingInterruption exceptions", () => {
  it("deliver an exception through the guest's vector table with the return address at RIP, and read back until then", async () => {
    const guest = guestWith([0x90, 0xf4], {}, { 5: POP_AX_HLT });
    const event = { eventPending: true, eventType: "exception", vector: 5, deliverErrorCode: false, errorCode: 0, exceptionParameter: 0n } as const;
    guest.set(["pendingEvent"], [event]);
    expect(guest.get(["pendingEvent"])[0]).toEqual(event);
    expectExit(await guest.run(), "x64Halt");
    expect(ax(guest)).toBe(BigInt(CODE));
    expect(guest.get(["pendingEvent"])[0]).toEqual({ eventPending: false });
  });

  it("re-deliver a guest INT3 the VMM intercepted: RIP advanced past the 0xCC, vector 3 as pendingInterruption type 3", async () => {
    const guest = guestWith([0xcc, 0xf4], { extendedVmExits: { exceptionExit: true }, exceptionExitBitmap: 1n << 3n }, { 3: POP_AX_HLT });
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpException.exceptionType).toBe("breakpointTrap");
    guest.set(
      ["x64Rip", "pendingInterruption"],
      [exit.vpContext.rip + 1n, { interruptionPending: true, interruptionType: 3, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, interruptionVector: 3, errorCode: 0 }],
    );
    expect(guest.get(["pendingInterruption"])[0]).toMatchObject({ interruptionPending: true, interruptionType: 3, interruptionVector: 3 });
    expectExit(await guest.run(), "x64Halt"); // delivered whatever the bitmap: no second exit
    expect(ax(guest)).toBe(BigInt(CODE + 1));
  });

  it("load CR2 from exceptionParameter for a #PF, and wake a halted processor", async () => {
    const guest = guestWith([0xfa, 0xf4, 0xf4], {}, { 14: POP_AX_HLT });
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["internalActivityState"])[0].haltSuspend).toBe(true);
    guest.set(["pendingEvent"], [{ eventPending: true, eventType: "exception", vector: 14, deliverErrorCode: true, errorCode: 2, exceptionParameter: 0x1234n }]);
    expect(guest.get(["internalActivityState"])[0].haltSuspend).toBe(false);
    expectExit(await guest.run(), "x64Halt");
    expect([ax(guest), guest.get(["x64Cr2"])[0]]).toEqual([BigInt(CODE + 2), 0x1234n]);
  });

  it("queue an external interrupt through pendingEvent extInt", async () => {
    const guest = guestWith([0xfb, 0x90, 0xf4], {}, { 0x30: POP_AX_HLT });
    guest.set(["pendingEvent"], [{ eventPending: true, eventType: "extInt", vector: 0x30 }]);
    expect(guest.get(["pendingEvent"])[0]).toEqual({ eventPending: true, eventType: "extInt", vector: 0x30 });
    expectExit(await guest.run(), "x64Halt");
    expect(ax(guest)).toBe(BigInt(CODE + 2)); // after STI's shadow: past the NOP
  });

  it("refuse an NMI with another vector than 2, exception vectors above 31 and vectors above 255 with invalidArg, changing nothing", () => {
    const guest = guestWith([0xf4]);
    const base = { interruptionPending: true, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, errorCode: 0 } as const;
    expectWhvError(() => guest.set(["pendingInterruption"], [{ ...base, interruptionType: 2, interruptionVector: 3 }]), "invalidArg", E_INVALIDARG);
    expectWhvError(() => guest.set(["pendingInterruption"], [{ ...base, interruptionType: 3, interruptionVector: 32 }]), "invalidArg", E_INVALIDARG);
    expectWhvError(() => guest.set(["pendingEvent"], [{ eventPending: true, eventType: "extInt", vector: 256 }]), "invalidArg", E_INVALIDARG);
    expect(guest.get(["pendingEvent"])[0]).toEqual({ eventPending: false });
  });
});

describe("event-state and MSR-backed registers", () => {
  it("keep the 64-bit-mode and other stored MSRs, with PAT's and XCR0's reset values", () => {
    const guest = guestWith([0xf4]);
    expect(guest.get(["x64Pat", "x64Xcr0", "x64Star"])).toEqual([0x0007040600070406n, 1n, 0n]);
    const values = [0x0023001000000000n, 0xffffffff81000000n, 0x1n, 0x47700n, 0x7n, 0xdeadn] as const;
    guest.set(["x64Star", "x64Lstar", "x64Cstar", "x64Sfmask", "x64TscAux", "x64KernelGsBase"], [...values]);
    expect(guest.get(["x64Star", "x64Lstar", "x64Cstar", "x64Sfmask", "x64TscAux", "x64KernelGsBase"])).toEqual([...values]);
  });

  it("round-trip x64PendingDebugException, interruptState (NMI blocking too) and internalActivityState; refuse startup suspend", () => {
    const guest = guestWith([0xf4]);
    const pending = { ...NO_DEBUG, breakpoint2: true, singleStep: true };
    guest.set(["x64PendingDebugException", "interruptState"], [pending, { interruptShadow: true, nmiMasked: false }]);
    expect(guest.get(["x64PendingDebugException", "interruptState"])).toEqual([pending, { interruptShadow: true, nmiMasked: false }]);
    guest.set(["interruptState"], [{ interruptShadow: false, nmiMasked: true }]);
    expect(guest.get(["interruptState"])).toEqual([{ interruptShadow: false, nmiMasked: true }]);
    guest.set(["interruptState"], [{ interruptShadow: true, nmiMasked: false }]);
    expectWhvError(() => guest.set(["internalActivityState"], [{ startupSuspend: true, haltSuspend: false, idleSuspend: false }]), "invalidArg", E_INVALIDARG);
    expect(guest.get(["interruptState"])[0].interruptShadow).toBe(true);
  });
});

describe("x64Cpuid exits", () => {
  // mov eax, 1; cpuid; hlt
  const CPUID_1 = [0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0xf4];

  it("exit before CPUID completes for a listed leaf, with the default results; the VMM's values are what the guest sees", async () => {
    const guest = guestWith(CPUID_1, { extendedVmExits: { x64CpuidExit: true }, cpuidExitList: [1] });
    const exit = expectExit(await guest.run(), "x64Cpuid");
    const expected = defaultCpuid(1);
    expect(exit.cpuidAccess.rax).toBe(1n);
    expect([exit.cpuidAccess.defaultResultRax, exit.cpuidAccess.defaultResultRbx, exit.cpuidAccess.defaultResultRcx, exit.cpuidAccess.defaultResultRdx]).toEqual(
      Array.from(expected, (value) => BigInt(value >>> 0)),
    );
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 6));
    expect(exit.vpContext.instructionLength).toBe(2);
    guest.set(["x64Rax", "x64Rbx", "x64Rcx", "x64Rdx", "x64Rip"], [0x11n, 0x22n, 0x33n, 0x44n, exit.vpContext.rip + 2n]);
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64Rax", "x64Rbx", "x64Rcx", "x64Rdx"])).toEqual([0x11n, 0x22n, 0x33n, 0x44n]);
  });

  it("do not happen for unlisted leaves, nor while x64CpuidExit is off", async () => {
    const unlisted = guestWith(CPUID_1, { extendedVmExits: { x64CpuidExit: true }, cpuidExitList: [0] });
    expectExit(await unlisted.run(), "x64Halt");
    const off = guestWith(CPUID_1, { cpuidExitList: [1] });
    expectExit(await off.run(), "x64Halt");
    expect(off.get(["x64Rdx"])[0]).toBe(BigInt(defaultCpuid(1)[3]! >>> 0));
  });
});

describe("invalidVpRegisterValue", () => {
  it("is the exit for CR0.PG without CR0.PE, before any instruction runs", async () => {
    const guest = guestWith([0x40, 0xf4]);
    guest.set(["x64Cr0"], [0x80000010n]);
    const before = guest.retired();
    expectExit(await guest.run(), "invalidVpRegisterValue");
    expect(guest.retired()).toBe(before);
  });
});

describe("memoryAccess exits for fetches and paged accesses", () => {
  it("report a fetch from an unmapped GPA as execute, at the jump target", async () => {
    const guest = guestWith([0xea, 0x00, 0x00, 0x00, 0x20]); // jmp 0x2000:0000 (GPA 0x20000, unmapped)
    const exit = expectExit(await guest.run(), "memoryAccess");
    expect(exit.memoryAccess.accessInfo).toEqual({ accessType: "execute", gpaUnmapped: true, gvaValid: false });
    expect(exit.memoryAccess.gpa).toBe(0x20000n);
    expect([exit.vpContext.cs.selector, exit.vpContext.rip]).toEqual([0x2000, 0n]);
  });

  it("report a fetch from a mapping without execute as execute, not gpaUnmapped", async () => {
    const guest = guestWith([0xea, 0x00, 0x00, 0x00, 0x30]); // jmp 0x3000:0000
    guest.platform.mapGpaRange(guest.partition, new Uint8Array(0x1000), 0x30000n, 0x1000n, WhvMapGpaRangeFlags.read | WhvMapGpaRangeFlags.write);
    const exit = expectExit(await guest.run(), "memoryAccess");
    expect(exit.memoryAccess.accessInfo).toEqual({ accessType: "execute", gpaUnmapped: false, gvaValid: false });
    expect(exit.memoryAccess.gpa).toBe(0x30000n);
  });

  it("carry the linear address (gva, gvaValid) of a paged data access", async () => {
    const guest = createGuest();
    const dword = (address: number, value: number) => new DataView(guest.ram.buffer).setUint32(address, value, true);
    dword(0x4000, 0x5003); // PDE 0: page table at 0x5000
    dword(0x4004, 0x6003); // PDE 1 (linear 4-8 MiB): page table at 0x6000
    for (let page = 0; page < 16; page++) dword(0x5000 + page * 4, (page << 12) | 3);
    dword(0x6000, MMIO_BASE | 3); // linear 0x400000 -> GPA 0x20000 (not RAM)
    guest.ram.set([0x8b, 0x03, 0xf4], CODE); // mov eax, [ebx]; hlt
    guest.set(
      ["x64Cr3", "x64Cr0", "x64Cs", "x64Ds", "x64Ss", "x64Es", "x64Rip", "x64Rbx"],
      [0x4000n, 0x80000011n, FLAT_CODE, FLAT_DATA, FLAT_DATA, FLAT_DATA, BigInt(CODE), 0x400010n],
    );
    const exit = expectExit(await guest.run(), "memoryAccess");
    expect(exit.memoryAccess.accessInfo).toEqual({ accessType: "read", gpaUnmapped: true, gvaValid: true });
    expect([exit.memoryAccess.gpa, exit.memoryAccess.gva]).toEqual([BigInt(MMIO_BASE + 0x10), 0x400010n]);
  });
});

describe("the emulator helper under TF and faults", () => {
  it("completes a string instruction under TF keeping CS, SS and TF, and owes the guest one #DB after it", async () => {
    // push 0x0102; popf (TF on, no trap after it); rep outsb; hlt — vector 1 handler: pop ax; hlt
    const guest = guestWith([0x68, 0x02, 0x01, 0x9d, 0xf3, 0x6e, 0xf4], { extendedVmExits: { exceptionExit: true }, exceptionExitBitmap: 1n << 1n }, { 1: POP_AX_HLT });
    guest.set(["x64Rsi", "x64Rcx", "x64Rdx"], [0x5000n, 2n, 0x80n]);
    const emulator = createLoggingEmulator(guest);
    const io = expectExit(await guest.run(), "x64IoPortAccess");
    expect(emulator.api.tryIoEmulation(emulator.handle, 0, io.vpContext, io.ioPortAccess).emulationSuccessful).toBe(true);
    expect(emulator.io).toHaveLength(2);
    const [cs, ss, rip, rcx, rflags, pending] = guest.get(["x64Cs", "x64Ss", "x64Rip", "x64Rcx", "x64Rflags", "x64PendingDebugException"]);
    expect([cs.selector, cs.base, ss.selector, rip, rcx]).toEqual([0, 0n, 0, BigInt(CODE + 6), 0n]);
    expect(rflags & 0x100n).toBe(0x100n);
    expect(pending.singleStep).toBe(true);
    // #DB is intercepted: the trap is reported first, at RIP past the instruction...
    const trap = expectExit(await guest.run(), "exception");
    expect([trap.vpException.exceptionType, trap.vpContext.rip, trap.vpException.exceptionParameter]).toEqual(["debugTrapOrFault", BigInt(CODE + 6), 0x4000n]);
    // ...and, left pending, delivered to the guest by the next run.
    expectExit(await guest.run(), "x64Halt");
    expect(ax(guest)).toBe(BigInt(CODE + 6));
  });

  it("writes back a segment register the emulated instruction loaded", async () => {
    const guest = guestWith([0x8e, 0x06, 0x00, 0x00, 0xf4]); // mov es, [0] with DS = 0x2000 (MMIO)
    guest.set(["x64Ds"], [realSegment(0x2000)]);
    const emulator = createLoggingEmulator(guest, { mmioRead: () => [0x34, 0x12] });
    const mmio = expectExit(await guest.run(), "memoryAccess");
    expect(emulator.api.tryMmioEmulation(emulator.handle, 0, mmio.vpContext, mmio.memoryAccess).emulationSuccessful).toBe(true);
    const [es] = guest.get(["x64Es"]);
    expect([es.selector, es.base]).toEqual([0x1234, 0x12340n]);
  });

  it("hands a fault inside the instruction back to the guest as a pending event, keeping finished iterations", async () => {
    const guest = guestWith([0xf3, 0x6f, 0xf4], {}, { 13: POP_AX_HLT }); // rep outsw; hlt
    guest.set(["x64Rsi", "x64Rcx", "x64Rdx"], [0n, 2n, 0x80n]);
    const emulator = createLoggingEmulator(guest);
    const io = expectExit(await guest.run(), "x64IoPortAccess");
    guest.set(["x64Rsi"], [0xfffdn]); // the second word (at 0xFFFF) crosses the segment limit: #GP
    expect(emulator.api.tryIoEmulation(emulator.handle, 0, io.vpContext, io.ioPortAccess).emulationSuccessful).toBe(true);
    expect(emulator.io).toHaveLength(1);
    expect(guest.get(["x64Rip", "x64Rcx", "x64Rsi"])).toEqual([BigInt(CODE), 1n, 0xffffn]);
    expect(guest.get(["pendingEvent"])[0]).toMatchObject({ eventPending: true, eventType: "exception", vector: 13 });
    expectExit(await guest.run(), "x64Halt");
    expect(ax(guest)).toBe(BigInt(CODE));
  });
});

describe("capabilities", () => {
  it("name the shim features and the exits this platform produces", () => {
    const platform = new WhvPlatform();
    expect(platform.getCapability("simFeatures")).toEqual({ hostSingleStep: true, stickyCancel: true, instructionBudget: true, pendingEventExceptions: true, exclusiveRun: true, a20Gate: true });
    expect(platform.getCapability("extendedVmExits")).toEqual({ x64CpuidExit: true, x64MsrExit: true, exceptionExit: true });
    // Vectors 0-0x13 except 2, 9 and 0xF (spec B.1).
    expect(platform.getCapability("exceptionExitBitmap")).toBe(0xfffffn & ~((1n << 2n) | (1n << 9n) | (1n << 15n)));
    expectWhvError(() => platform.getCapability("toString" as never), "unknownCapability", 0x80370300);
  });
});

describe("determinism", () => {
  async function trace(): Promise<string[]> {
    // mov cx, 40; L: out 0x80, al; inc ax; mov [es:0], al (MMIO); loop L; hlt
    const guest = guestWith([0xb9, 0x28, 0x00, 0xe6, 0x80, 0x40, 0x26, 0xa2, 0x00, 0x00, 0xe2, 0xf7, 0xf4]);
    guest.set(["x64Es", "x64Rax"], [realSegment(0x2000), 0n]);
    const emulator = createLoggingEmulator(guest);
    const events: string[] = [];
    for (let runs = 0; runs < 1000; runs++) {
      const exit: WhvRunVpExitContext = await guest.run({ maxInstructions: 7 });
      events.push(`${exit.exitReason}@${exit.vpContext.rip}:${guest.retired()}`);
      if (exit.exitReason === "x64Halt") break;
      if (exit.exitReason === "x64IoPortAccess") emulator.api.tryIoEmulation(emulator.handle, 0, exit.vpContext, exit.ioPortAccess);
      if (exit.exitReason === "memoryAccess") emulator.api.tryMmioEmulation(emulator.handle, 0, exit.vpContext, exit.memoryAccess);
    }
    events.push(String(guest.get(["x64Rax", "x64Rcx", "x64Rip"])));
    return events;
  }

  it("gives identical exits and states for the same image, inputs and slice size", async () => {
    const first = await trace();
    expect(first.at(-2)).toMatch(/^x64Halt/);
    expect(first.filter((event) => event.startsWith("x64IoPortAccess"))).toHaveLength(40);
    expect(await trace()).toEqual(first);
  });
});

describe("GPA protection and dirty pages", () => {
  const TRACKED = WhvMapGpaRangeFlags.read | WhvMapGpaRangeFlags.write | WhvMapGpaRangeFlags.execute | WhvMapGpaRangeFlags.trackDirtyPages;

  it("report exactly the pages the guest wrote since the last query, and reset them", async () => {
    // mov [0x5000], al; mov bl, [0x6000]; hlt
    const guest = guestWith([0xa2, 0x00, 0x50, 0x8a, 0x1e, 0x00, 0x60, 0xf4]);
    guest.platform.mapGpaRange(guest.partition, guest.ram, 0n, 0x10000n, TRACKED);
    guest.set(["x64Rax"], [0x5an]);
    expectExit(await guest.run(), "x64Halt");
    expect(guest.ram[0x5000]).toBe(0x5a);
    expect([...guest.platform.queryGpaRangeDirtyBitmap(guest.partition, 0n, 0x10000n)]).toEqual([1n << 5n]);
    expect([...guest.platform.queryGpaRangeDirtyBitmap(guest.partition, 0n, 0x10000n)]).toEqual([0n]);
    guest.ram[0x7000] = 1; // host writes are not the guest's
    guest.set(["x64Rip", "x64Rax", "internalActivityState"], [BigInt(CODE), 0x5bn, { startupSuspend: false, haltSuspend: false, idleSuspend: false }]);
    expectExit(await guest.run(), "x64Halt");
    expect(guest.ram[0x5000]).toBe(0x5b);
    expect([...guest.platform.queryGpaRangeDirtyBitmap(guest.partition, 0x4000n, 0x3000n)]).toEqual([1n << 1n]);
  });

  it("refuse a query over pages mapped without trackDirtyPages", () => {
    const guest = guestWith([0xf4]);
    expectWhvError(() => guest.platform.queryGpaRangeDirtyBitmap(guest.partition, 0n, 0x1000n), "gpaRangeNotFound", 0x80370305);
  });

  it("change a page's protection at run time, with no stale translation left behind", async () => {
    // mov [0x5000], al; hlt — run once (the translation is cached writable), then write-protect.
    const guest = guestWith([0xa2, 0x00, 0x50, 0xf4]);
    const wake = { startupSuspend: false, haltSuspend: false, idleSuspend: false };
    guest.set(["x64Rax"], [1n]);
    expectExit(await guest.run(), "x64Halt");
    guest.platform.protectGpaRange(guest.partition, 0x5000n, 0x1000n, WhvMapGpaRangeFlags.read);
    guest.set(["x64Rip", "x64Rax", "internalActivityState"], [BigInt(CODE), 2n, wake]);
    const exit = expectExit(await guest.run(), "memoryAccess");
    expect(exit.memoryAccess.accessInfo).toEqual({ accessType: "write", gpaUnmapped: false, gvaValid: false });
    expect(guest.ram[0x5000]).toBe(1);
    guest.platform.protectGpaRange(guest.partition, 0x5000n, 0x1000n, WhvMapGpaRangeFlags.read | WhvMapGpaRangeFlags.write);
    expectExit(await guest.run(), "x64Halt");
    expect(guest.ram[0x5000]).toBe(2);
    expectWhvError(() => guest.platform.protectGpaRange(guest.partition, 0x10000n, 0x1000n, 0), "gpaRangeNotFound", 0x80370305);
  });
});

describe("NMI injection", () => {
  it("delivers an injected NMI (type 2) through vector 2 whatever IF says, and blocks the next one until IRET", async () => {
    // Real mode: IVT entry 2 → 0000:2000 (inc bx; iret); main code: cli; hlt; hlt.
    const guest = guestWith([0xfa, 0xf4, 0xf4]);
    const view = new DataView(guest.ram.buffer);
    view.setUint16(8, 0x2000, true);
    view.setUint16(10, 0, true);
    guest.ram.set([0x43, 0xcf], 0x2000);
    const nmi = { interruptionPending: true, interruptionType: 2, interruptionVector: 2, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, errorCode: 0 } as const;
    expectExit(await guest.run(), "x64Halt"); // IF = 0: a halted wait
    guest.set(["pendingInterruption"], [nmi]);
    expect(guest.get(["pendingInterruption"])[0]).toMatchObject({ interruptionPending: true, interruptionType: 2 });
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64Rbx", "interruptState"])).toEqual([1n, { interruptShadow: false, nmiMasked: false }]);
    // With NMI blocking set (as inside a handler) an injected NMI waits.
    guest.set(["interruptState", "pendingInterruption"], [{ interruptShadow: false, nmiMasked: true }, nmi]);
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64Rbx"])).toEqual([1n]);
    expect(guest.get(["pendingInterruption"])[0]).toMatchObject({ interruptionPending: true, interruptionType: 2 });
  });
});

describe("NMIs and the host single-step", () => {
  it("holds a pending NMI during a host step and delivers it on the next normal run", async () => {
    // IVT entry 2 → 0000:2000 (inc bx; iret); main code: nop; nop; cli; hlt
    const guest = guestWith([0x90, 0x90, 0xfa, 0xf4]);
    const view = new DataView(guest.ram.buffer);
    view.setUint16(8, 0x2000, true);
    view.setUint16(10, 0, true);
    guest.ram.set([0x43, 0xcf], 0x2000);
    guest.set(["pendingInterruption"], [{ interruptionPending: true, interruptionType: 2, interruptionVector: 2, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, errorCode: 0 }]);
    const step = await guest.run({ singleStep: true });
    expect(step.exitReason).toBe("exception");
    expect(guest.get(["x64Rbx"])).toEqual([0n]); // not delivered during the step
    expect(guest.get(["pendingInterruption"])[0]).toMatchObject({ interruptionPending: true, interruptionType: 2 });
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64Rbx"])).toEqual([1n]); // delivered by the normal run
  });
});
