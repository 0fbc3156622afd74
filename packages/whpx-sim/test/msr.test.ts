/**
 * x64MsrAccess exits (spec B.4, D.1 #9): with extendedVmExits.x64MsrExit every RDMSR and
 * WRMSR exits before the access; the VMM completes it (registers, RIP) and the guest sees
 * what the VMM wrote. Without it the processor handles the MSRs it knows.
 */
import { describe, expect, it } from "vitest";
import { CODE, createGuest, expectExit } from "./guest.js";

const RDMSR = [0x0f, 0x32];
const WRMSR = [0x0f, 0x30];

describe("x64MsrAccess exits", () => {
  it("exit on RDMSR before it runs; the values the VMM writes are what the guest reads", async () => {
    const guest = createGuest({ extendedVmExits: { x64MsrExit: true } });
    // mov ecx, 0x1234 (an MSR the processor does not have); rdmsr; mov esi, eax; cli; hlt
    guest.load([0x66, 0xb9, 0x34, 0x12, 0x00, 0x00, ...RDMSR, 0x66, 0x89, 0xc6, 0xfa, 0xf4]);
    const exit = expectExit(await guest.run(), "x64MsrAccess");
    expect(exit.msrAccess.msrNumber).toBe(0x1234);
    expect(exit.msrAccess.accessInfo.isWrite).toBe(false);
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 6));
    expect(exit.vpContext.instructionLength).toBe(2);
    expect(guest.get(["x64Rip"] as const)).toEqual([BigInt(CODE + 6)]); // nothing executed
    // The VMM emulates it: EDX:EAX and RIP past the instruction.
    guest.set(["x64Rax", "x64Rdx", "x64Rip"] as const, [0xcafef00dn, 0x1n, exit.vpContext.rip + 2n]);
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64Rsi", "x64Rdx"] as const)).toEqual([0xcafef00dn, 1n]);
  });

  it("exit on WRMSR with the value in RAX/RDX; without x64MsrExit the processor runs it", async () => {
    const guest = createGuest({ extendedVmExits: { x64MsrExit: true } });
    // mov ecx, 0x174 (SYSENTER_CS); mov eax, 0x10; xor edx, edx; wrmsr; cli; hlt
    guest.load([0x66, 0xb9, 0x74, 0x01, 0x00, 0x00, 0x66, 0xb8, 0x10, 0x00, 0x00, 0x00, 0x66, 0x31, 0xd2, ...WRMSR, 0xfa, 0xf4]);
    const exit = expectExit(await guest.run(), "x64MsrAccess");
    expect(exit.msrAccess).toEqual({ msrNumber: 0x174, accessInfo: { isWrite: true }, rax: 0x10n, rdx: 0n });
    expect(guest.get(["x64SysenterCs"] as const)).toEqual([0n]); // not written
    guest.platform.setPartitionProperty(guest.partition, "extendedVmExits", {});
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64SysenterCs"] as const)).toEqual([0x10n]);
  });
});
