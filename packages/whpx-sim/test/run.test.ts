/**
 * runVirtualProcessor: halt, the instruction budget, cancel (from a timer and sticky), time
 * slices shared between processors, counters and event injection (spec B.4, B.5, B.8,
 * D.1 #10-#12).
 */
import { describe, expect, it } from "vitest";
import { SLICE_INSTRUCTIONS, WhvPlatform } from "@vmmkit/whpx-sim";
import { CODE, RWX, createGuest, expectExit, realSegment } from "./guest.js";

const JMP_SELF = [0xeb, 0xfe]; // jmp $

describe("x64Halt", () => {
  it("exits with RIP past the HLT and the flags the guest left", async () => {
    const guest = createGuest();
    guest.set(["x64Rflags"], [0x202n]); // IF set, so CLI has something to clear
    guest.load([0xfa, 0xf4]); // cli; hlt
    const exit = expectExit(await guest.run(), "x64Halt");
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 2));
    expect(exit.vpContext.rflags & 0x200n).toBe(0n);
    expect(guest.get(["x64Rip"])).toEqual([BigInt(CODE + 2)]);
  });

  it("stays halted: the next run exits x64Halt again without executing anything", async () => {
    const guest = createGuest();
    guest.load([0xf4, 0xf4]); // hlt; hlt
    expectExit(await guest.run(), "x64Halt");
    const retired = guest.retired();
    const again = expectExit(await guest.run(), "x64Halt");
    expect(again.vpContext.rip).toBe(BigInt(CODE + 1));
    expect(guest.retired()).toBe(retired);
  });

  it("wakes for an interrupt injected through pendingInterruption and runs its real-mode handler", async () => {
    const guest = createGuest();
    const vector = 0x20;
    guest.ram.set([0x00, 0x11, 0x00, 0x00], vector * 4); // IVT[0x20] = 0000:1100
    guest.ram.set([0xb0, 0x99, 0xf4], 0x1100); // mov al, 0x99; hlt
    guest.set(["x64Ss", "x64Rsp"], [realSegment(0), 0x8000n]);
    guest.load([0xfb, 0xf4]); // sti; hlt
    expectExit(await guest.run(), "x64Halt");
    guest.set(["pendingInterruption"], [
      { interruptionPending: true, interruptionType: 0, deliverErrorCode: false, instructionLength: 0, nestedEvent: false, interruptionVector: vector, errorCode: 0 },
    ]);
    const exit = expectExit(await guest.run(), "x64Halt");
    expect(exit.vpContext.rip).toBe(0x1103n);
    expect(guest.get(["x64Rax"])[0] & 0xffn).toBe(0x99n);
    // The frame returns to the instruction after the first HLT.
    expect(guest.ram[0x7ffa]! | (guest.ram[0x7ffb]! << 8)).toBe(CODE + 2);
  });
});

describe("x64InterruptWindow", () => {
  it("exits at the first boundary where IF = 1 and no STI shadow is active", async () => {
    const guest = createGuest();
    guest.load([0xfb, 0x90, 0xf4]); // sti; nop; hlt
    guest.set(["x64DeliverabilityNotifications"], [{ nmiNotification: false, interruptNotification: true, interruptPriority: 0 }]);
    const exit = expectExit(await guest.run(), "x64InterruptWindow");
    expect(exit.interruptWindow.deliverableType).toBe("interrupt");
    expect(exit.vpContext.rip).toBe(BigInt(CODE + 2));
    // The request is consumed by the exit.
    expect(guest.get(["x64DeliverabilityNotifications"])[0].interruptNotification).toBe(false);
    expectExit(await guest.run(), "x64Halt");
  });
});

describe("instruction budget (maxInstructions)", () => {
  it("ends with canceled / instructionBudget after exactly that many instructions", async () => {
    const guest = createGuest();
    guest.load(JMP_SELF);
    const exit = expectExit(await guest.run({ maxInstructions: 1000 }), "canceled");
    expect(exit.cancelReason).toBe("instructionBudget");
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
    expect(guest.retired()).toBe(1000);
  });

  it("counts across time slices", async () => {
    const guest = createGuest();
    guest.load(JMP_SELF);
    const budget = 2 * SLICE_INSTRUCTIONS + 7;
    expect(expectExit(await guest.run({ maxInstructions: budget }), "canceled").cancelReason).toBe("instructionBudget");
    expect(guest.retired()).toBe(budget);
  });

  it("with 0 returns at once without executing", async () => {
    const guest = createGuest();
    guest.load([0xf4]);
    expect(expectExit(await guest.run({ maxInstructions: 0 }), "canceled").cancelReason).toBe("instructionBudget");
    expect(guest.retired()).toBe(0);
    expect(guest.get(["x64Rip"])).toEqual([BigInt(CODE)]);
  });

  it("does not get in the way of an earlier exit", async () => {
    const guest = createGuest();
    guest.load([0x90, 0x90, 0xf4]); // nop; nop; hlt
    expectExit(await guest.run({ maxInstructions: 100 }), "x64Halt");
    expect(guest.retired()).toBe(3);
  });
});

describe("cancelRunVirtualProcessor", () => {
  it("ends a run spinning in jmp $ from a timer, with canceled / user", async () => {
    const guest = createGuest();
    guest.load(JMP_SELF);
    const timer = setTimeout(() => guest.platform.cancelRunVirtualProcessor(guest.partition, 0), 20);
    const exit = expectExit(await guest.run(), "canceled");
    clearTimeout(timer);
    expect(exit.cancelReason).toBe("user");
    expect(exit.vpContext.rip).toBe(BigInt(CODE));
    // The timer could only fire because the run yielded between slices.
    expect(guest.retired()).toBeGreaterThanOrEqual(SLICE_INSTRUCTIONS);
  });

  it("is sticky: a cancel issued outside run ends the next run at once, exactly once", async () => {
    const guest = createGuest();
    guest.load([0xf4]); // hlt
    guest.platform.cancelRunVirtualProcessor(guest.partition, 0);
    const exit = expectExit(await guest.run(), "canceled");
    expect(exit.cancelReason).toBe("user");
    expect(guest.retired()).toBe(0);
    expectExit(await guest.run(), "x64Halt");
  });

  it("lets the VMM resume the canceled guest where it stopped", async () => {
    const guest = createGuest();
    guest.load(JMP_SELF);
    const running = guest.run();
    guest.platform.cancelRunVirtualProcessor(guest.partition, 0);
    expectExit(await running, "canceled");
    guest.ram[CODE] = 0xf4; // turn the jmp into hlt
    expect(expectExit(await guest.run(), "x64Halt").vpContext.rip).toBe(BigInt(CODE + 1));
  });
});

describe("several processors on one thread", () => {
  it("runs a second processor to completion while the first one spins", async () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setPartitionProperty(partition, "processorCount", 2);
    platform.setupPartition(partition);
    const ram = new Uint8Array(0x10000);
    platform.mapGpaRange(partition, ram, 0n, 0x10000n, RWX);
    ram.set(JMP_SELF, 0x1000);
    ram.set([0x90, 0xf4], 0x2000); // nop; hlt
    for (const [vp, ip] of [[0, 0x1000], [1, 0x2000]] as const) {
      platform.createVirtualProcessor(partition, vp);
      platform.setVirtualProcessorRegisters(partition, vp, ["x64Cs", "x64Rip"], [realSegment(0, true), BigInt(ip)]);
    }
    let spinnerDone = false;
    const spinner = platform.runVirtualProcessor(partition, 0).then((exit) => {
      spinnerDone = true;
      return exit;
    });
    expectExit(await platform.runVirtualProcessor(partition, 1), "x64Halt");
    expect(spinnerDone).toBe(false);
    expect(platform.getVirtualProcessorCounters(partition, 1).instructionsRetired).toBe(2);
    platform.cancelRunVirtualProcessor(partition, 0);
    expect(expectExit(await spinner, "canceled").cancelReason).toBe("user");
  });
});

describe("getVirtualProcessorCounters", () => {
  it("counts retired instructions, not the intercepted one", async () => {
    const guest = createGuest();
    expect(guest.retired()).toBe(0);
    guest.load([
      0xb8, 0x01, 0x00, // mov ax, 1
      0xbb, 0x02, 0x00, // mov bx, 2
      0x01, 0xd8, //       add ax, bx
      0xe6, 0x80, //       out 0x80, al (exits)
    ]);
    expectExit(await guest.run(), "x64IoPortAccess");
    expect(guest.retired()).toBe(3);
    guest.set(["x64Rip"], [BigInt(CODE + 10)]); // skip the OUT
    guest.ram[CODE + 10] = 0xf4; // hlt
    expectExit(await guest.run(), "x64Halt");
    expect(guest.retired()).toBe(4);
  });
});

describe("cpuidResultList", () => {
  // mov eax, leaf; cpuid; hlt
  const cpuidOf = (leaf: number) => [0x66, 0xb8, leaf & 0xff, (leaf >>> 8) & 0xff, (leaf >>> 16) & 0xff, leaf >>> 24, 0x0f, 0xa2, 0xf4];
  const GENU = 0x756e_6547n; // EBX of leaf 0: "Genu"

  it("answers the listed leaves and leaves the others to the processor", async () => {
    const result = { function: 0x4000_0000, eax: 0x4000_0001, ebx: 0x1111_1111, ecx: 0x2222_2222, edx: 0x3333_3333 };
    const listed = createGuest({ cpuidResultList: [result] });
    listed.load(cpuidOf(0x4000_0000));
    expectExit(await listed.run(), "x64Halt");
    expect(listed.get(["x64Rax", "x64Rbx", "x64Rcx", "x64Rdx"])).toEqual([0x4000_0001n, 0x1111_1111n, 0x2222_2222n, 0x3333_3333n]);

    const unlisted = createGuest({ cpuidResultList: [result] });
    unlisted.load(cpuidOf(0));
    expectExit(await unlisted.run(), "x64Halt");
    expect(unlisted.get(["x64Rbx"])).toEqual([GENU]);
  });

  it("applies a list set after setup to existing processors", async () => {
    const guest = createGuest();
    guest.platform.setPartitionProperty(guest.partition, "cpuidResultList", [{ function: 0, eax: 5, ebx: 6, ecx: 7, edx: 8 }]);
    guest.load(cpuidOf(0));
    expectExit(await guest.run(), "x64Halt");
    expect(guest.get(["x64Rax", "x64Rbx", "x64Rcx", "x64Rdx"])).toEqual([5n, 6n, 7n, 8n]);
  });
});
