/**
 * Exception exits (opt-in through extendedVmExits.exceptionExit plus the bitmap) and the
 * unrecoverable-exception exit of a triple fault (spec B.4, D.1 #13, #14).
 */
import { describe, expect, it } from "vitest";
import { exceptionBitmap, type WhvPartitionPropertyMap } from "@vmmkit/whpx-sim";
import { CODE, FLAT_CODE, FLAT_DATA, createGuest, expectExit, realSegment, type Guest } from "./guest.js";

const INTERCEPT = (bitmap: bigint): Partial<WhvPartitionPropertyMap> => ({
  extendedVmExits: { exceptionExit: true },
  exceptionExitBitmap: bitmap,
});

/** Flat 32-bit protected mode at CODE with an empty IDT: any delivered exception shuts down. */
function protectedModeGuest(properties: Partial<WhvPartitionPropertyMap>, code: number[], cr0 = 0x11n, cr3 = 0n): Guest {
  const guest = createGuest(properties);
  guest.ram.set(code, CODE);
  guest.set(
    ["x64Cr3", "x64Cr0", "x64Cs", "x64Ds", "x64Es", "x64Ss", "x64Idtr", "x64Rip", "x64Rsp"],
    [cr3, cr0, FLAT_CODE, FLAT_DATA, FLAT_DATA, FLAT_DATA, { base: 0n, limit: 0 }, BigInt(CODE), 0x8000n],
  );
  return guest;
}

describe("exception exits", () => {
  it("reports an intercepted INT3 at the 0xCC as a software breakpoint, with nothing delivered", async () => {
    const guest = createGuest(INTERCEPT(exceptionBitmap("breakpointTrap")));
    guest.set(["x64Ss", "x64Rsp"], [realSegment(0), 0x8000n]);
    guest.load([0x90, 0xcc]); // nop; int3
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpException.exceptionType).toBe("breakpointTrap");
    expect(exit.vpException.exceptionInfo).toEqual({ errorCodeValid: false, softwareException: true });
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 1));
    expect(exit.vpException.instructionBytes[0]).toBe(0xcc);
    expect(guest.get(["x64Rip", "x64Rsp"])).toEqual([BigInt(CODE + 1), 0x8000n]);
  });

  it("delivers INT3 to the guest when exceptionExit is off, whatever the bitmap", async () => {
    const guest = createGuest({ exceptionExitBitmap: exceptionBitmap("breakpointTrap") });
    guest.ram.set([0x00, 0x11, 0x00, 0x00], 3 * 4); // IVT[3] = 0000:1100
    guest.ram[0x1100] = 0xf4; // hlt
    guest.set(["x64Ss", "x64Rsp"], [realSegment(0), 0x8000n]);
    guest.load([0xcc]); // int3
    const exit = expectExit(await guest.run(), "x64Halt");
    expect(exit.vpContext.rip).toBe(0x1101n);
    expect(guest.ram[0x7ffa]! | (guest.ram[0x7ffb]! << 8)).toBe(CODE + 1); // return address past the 0xCC
  });

  it("does not exit for a vector whose bit is clear", async () => {
    const guest = createGuest(INTERCEPT(exceptionBitmap("debugTrapOrFault")));
    guest.ram.set([0x00, 0x11, 0x00, 0x00], 3 * 4);
    guest.ram[0x1100] = 0xf4;
    guest.set(["x64Ss", "x64Rsp"], [realSegment(0), 0x8000n]);
    guest.load([0xcc]);
    expect(expectExit(await guest.run(), "x64Halt").vpContext.rip).toBe(0x1101n);
  });

  it("takes exceptionExit and the bitmap set after setup", async () => {
    const guest = createGuest();
    guest.platform.setPartitionProperty(guest.partition, "extendedVmExits", { exceptionExit: true });
    guest.platform.setPartitionProperty(guest.partition, "exceptionExitBitmap", exceptionBitmap("breakpointTrap"));
    guest.load([0xcc]); // int3
    expect(expectExit(await guest.run(), "exception").vpException.exceptionType).toBe("breakpointTrap");
  });

  it("reports #UD at the faulting instruction as a hardware exception", async () => {
    const guest = createGuest(INTERCEPT(exceptionBitmap("invalidOpcodeFault")));
    guest.load([0x90, 0x0f, 0x0b]); // nop; ud2
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpException.exceptionType).toBe("invalidOpcodeFault");
    expect(exit.vpException.exceptionInfo).toEqual({ errorCodeValid: false, softwareException: false });
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 1));
    expect([...exit.vpException.instructionBytes.subarray(0, 2)]).toEqual([0x0f, 0x0b]);
  });

  it("reports #GP with its error code (INT 0x20 beyond the IDT limit)", async () => {
    const guest = protectedModeGuest(INTERCEPT(exceptionBitmap("generalProtectionFault")), [0xcd, 0x20]); // int 0x20
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpException.exceptionType).toBe("generalProtectionFault");
    expect(exit.vpException.exceptionInfo.errorCodeValid).toBe(true);
    expect(exit.vpException.errorCode).toBe(0x20 * 8 + 2); // IDT entry, EXT = 0
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
    expect(exit.vpContext.executionState.cr0Pe).toBe(true);
  });

  it("reports #PF with the error code and the faulting linear address as exceptionParameter", async () => {
    // Paging on with an empty page directory at 0x3000: the first fetch faults.
    const guest = protectedModeGuest(INTERCEPT(exceptionBitmap("pageFault")), [0x90], 0x8000_0011n, 0x3000n);
    const exit = expectExit(await guest.run(), "exception");
    expect(exit.vpException.exceptionType).toBe("pageFault");
    expect(exit.vpException.exceptionInfo).toEqual({ errorCodeValid: true, softwareException: false });
    expect(exit.vpException.errorCode).toBe(0); // not present, read, supervisor
    expect(exit.vpException.exceptionParameter).toBe(BigInt(CODE));
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
  });
});

describe("unrecoverableException", () => {
  it("is the exit of a triple fault (#UD with an empty IDT in protected mode)", async () => {
    const guest = protectedModeGuest({}, [0x0f, 0x0b]); // ud2
    const exit = expectExit(await guest.run(), "unrecoverableException");
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
    expect(exit.vpContext.executionState.cr0Pe).toBe(true);
  });
});
