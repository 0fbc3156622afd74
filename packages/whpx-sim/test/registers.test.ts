/**
 * Register batches by WHPX name: round trips per register group, request order kept, and
 * all-or-nothing failure (spec B.3, D.1 #5).
 */
import { describe, expect, it } from "vitest";
import { WhvRegisterName, type WhvRegisterName as RegisterName } from "@vmmkit/whpx-sim";
import { createGuest, expectExit, expectWhvError, expectWhvRejection } from "./guest.js";

describe("register round trips", () => {
  it("keeps general registers, in request order, zero-extended to 64 bits", () => {
    const guest = createGuest();
    const names = ["x64Rdi", "x64Rax", "x64Rcx", "x64Rdx", "x64Rbx", "x64Rsp", "x64Rbp", "x64Rsi"] as const;
    const values = [0xffff_ffffn, 1n, 2n, 3n, 0x8000_0000n, 5n, 6n, 7n];
    guest.set(names, values as never);
    expect(guest.get(names)).toEqual(values);
    expect(guest.get(["x64Rsi", "x64Rdi"])).toEqual([7n, 0xffff_ffffn]);
  });

  it("drops the upper half of a 64-bit value (the processor is 32-bit)", () => {
    const guest = createGuest();
    guest.set(["x64Rax", "x64Rip"], [0x1_0000_0002n, 0xffff_ffff_0000_1000n]);
    expect(guest.get(["x64Rax", "x64Rip"])).toEqual([2n, 0x1000n]);
  });

  it("keeps RIP and RFLAGS (bit 1 reads as 1)", () => {
    const guest = createGuest();
    guest.set(["x64Rip", "x64Rflags"], [0x1234n, 0x2d7n]); // CF, PF, AF, ZF, SF, IF and the fixed bit 1
    expect(guest.get(["x64Rip", "x64Rflags"])).toEqual([0x1234n, 0x2d7n]);
    guest.set(["x64Rflags"], [0n]);
    expect(guest.get(["x64Rflags"])).toEqual([2n]);
  });

  it("keeps segment registers: selector, base, limit and attributes", () => {
    const guest = createGuest();
    const names = ["x64Es", "x64Cs", "x64Ss", "x64Ds", "x64Fs", "x64Gs", "x64Ldtr", "x64Tr"] as const;
    const values = names.map((_, i) => ({
      base: BigInt(0x10000 * (i + 1)),
      limit: 0xfff * (i + 1),
      selector: 0x08 * (i + 1),
      attributes: i === 6 ? 0x82 : i === 7 ? 0x8b : 0xc093,
    }));
    guest.set(names, values as never);
    expect(guest.get(names)).toEqual(values);
  });

  it("keeps the descriptor-table registers", () => {
    const guest = createGuest();
    guest.set(["x64Gdtr", "x64Idtr"], [{ base: 0x5000n, limit: 0x27 }, { base: 0x6000n, limit: 0x7ff }]);
    expect(guest.get(["x64Idtr", "x64Gdtr"])).toEqual([{ base: 0x6000n, limit: 0x7ff }, { base: 0x5000n, limit: 0x27 }]);
  });

  it("keeps the control registers (CR0.ET stays set on this processor model)", () => {
    const guest = createGuest();
    expect(guest.get(["x64Cr0"])).toEqual([0x6000_0010n]); // power-on value: CD, NW, ET
    guest.set(["x64Cr0", "x64Cr2", "x64Cr3", "x64Cr4"], [0x11n, 0xdead_b000n, 0x3000n, 0x10n]);
    expect(guest.get(["x64Cr0", "x64Cr2", "x64Cr3", "x64Cr4"])).toEqual([0x11n, 0xdead_b000n, 0x3000n, 0x10n]);
    guest.set(["x64Cr0"], [0x1n]);
    expect(guest.get(["x64Cr0"])).toEqual([0x11n]);
  });

  it("keeps debug registers, EFER and the SYSENTER MSRs", () => {
    const guest = createGuest();
    const names = ["x64Dr0", "x64Dr1", "x64Dr2", "x64Dr3", "x64Dr7", "x64Efer", "x64SysenterCs", "x64SysenterEip", "x64SysenterEsp"] as const;
    const values = [0x1000n, 0x2000n, 0x3000n, 0x4000n, 0x0d0003n, 0x1n, 0x8n, 0xc000_0000n, 0x9000n];
    guest.set(names, values as never);
    expect(guest.get(names)).toEqual(values);
  });

  it("reads R8-R15 as 0 and refuses to write anything else into them", () => {
    const guest = createGuest();
    expect(guest.get(["x64R8", "x64R15"])).toEqual([0n, 0n]);
    guest.set(["x64R8"], [0n]);
    expectWhvError(() => guest.set(["x64R9"], [1n]), "invalidArg", 0x80070057);
  });
});

describe("all-or-nothing batches", () => {
  it("fails a batch with one unknown name with invalidVpRegisterName and changes nothing", () => {
    const guest = createGuest();
    guest.set(["x64Rax"], [0x1111n]);
    const names = ["x64Rax", "x64Xmm0"] as unknown as readonly ["x64Rax", "x64Rbx"];
    expectWhvError(() => guest.set(names, [0x2222n, 0n]), "invalidVpRegisterName", 0x80370309);
    expect(guest.get(["x64Rax"])).toEqual([0x1111n]);
    expectWhvError(() => guest.get(names), "invalidVpRegisterName", 0x80370309);
  });

  // Names inherited by every object must not slip through as registers.
  it.each(["toString", "constructor", "__proto__", "hasOwnProperty"])("refuses %s as a register name", (name) => {
    const guest = createGuest();
    const names = ["x64Rax", name] as unknown as readonly ["x64Rax", "x64Rbx"];
    expectWhvError(() => guest.get(names), "invalidVpRegisterName", 0x80370309);
    expectWhvError(() => guest.set(names, [5n, 0n]), "invalidVpRegisterName", 0x80370309);
    expect(guest.get(["x64Rax"])).toEqual([0n]);
  });

  it("fails a batch with one bad value with invalidArg and changes nothing", () => {
    const guest = createGuest();
    expectWhvError(() => guest.set(["x64Rax", "x64Rbx"], [0x2222n, -1n]), "invalidArg", 0x80070057);
    expectWhvError(() => guest.set(["x64Rax", "x64Gdtr"], [0x2222n, null as never]), "invalidArg", 0x80070057);
    expectWhvError(() => guest.set(["x64Rax", "x64Rbx"], [0x2222n, 2n ** 64n]), "invalidArg", 0x80070057);
    expect(guest.get(["x64Rax", "x64Rbx"])).toEqual([0n, 0n]);
  });

  it("refuses name and value arrays of different lengths", () => {
    const guest = createGuest();
    expectWhvError(() => guest.set(["x64Rax", "x64Rbx"], [1n] as never), "invalidArg", 0x80070057);
    expect(guest.get(["x64Rax"])).toEqual([0n]);
  });

  it("every name the package exports reads back", () => {
    const guest = createGuest();
    const names = Object.keys(WhvRegisterName) as RegisterName[];
    expect(guest.get(names)).toHaveLength(names.length);
  });
});

describe("registers and runs", () => {
  it("refuses writes while the processor is inside run with invalidVpState", async () => {
    const guest = createGuest();
    guest.load([0xeb, 0xfe]); // jmp $
    const running = guest.run();
    expectWhvError(() => guest.set(["x64Rax"], [1n]), "invalidVpState", 0x80370308);
    guest.platform.cancelRunVirtualProcessor(guest.partition, 0);
    expectExit(await running, "canceled");
    expect(guest.get(["x64Rax"])).toEqual([0n]);
  });

  it("refuses to run a processor that is already running with invalidVpState", async () => {
    const guest = createGuest();
    guest.load([0xeb, 0xfe]); // jmp $
    const running = guest.run();
    await expectWhvRejection(guest.run(), "invalidVpState", 0x80370308);
    guest.platform.cancelRunVirtualProcessor(guest.partition, 0);
    expect(expectExit(await running, "canceled").cancelReason).toBe("user");
  });

  it("starts the guest from the registers that were set", async () => {
    const guest = createGuest();
    guest.set(["x64Rax", "x64Rbx"], [0x1234_5678n, 0x1111_1111n]);
    guest.load([0x66, 0x01, 0xd8, 0xf4]); // add eax, ebx; hlt
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64Rax"])).toEqual([0x2345_6789n]);
  });
});
