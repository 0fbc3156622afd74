/**
 * Partition lifecycle, properties, GPA mapping arguments and processor creation: the
 * WHPX call-order rules and the HRESULTs they fail with (spec B.1-B.3, D.1 #1-#3, #15).
 */
import { describe, expect, it } from "vitest";
import {
  WhvError,
  WhvHresult,
  WhvPlatform,
  exceptionBitmap,
  isWhvError,
  type WhvPartitionPropertyCode,
} from "@vmmkit/whpx-sim";
import { CODE, RWX, createGuest, expectExit, expectWhvError, expectWhvRejection } from "./guest.js";

const E_INVALIDARG = 0x80070057;

describe("WhvHresult", () => {
  it("carries the Windows SDK values", () => {
    expect(WhvHresult).toEqual({
      invalidArg: 0x80070057,
      unknownCapability: 0x80370300,
      insufficientBuffer: 0x80370301,
      unknownProperty: 0x80370302,
      unsupportedHypervisorConfig: 0x80370303,
      invalidPartitionConfig: 0x80370304,
      gpaRangeNotFound: 0x80370305,
      vpAlreadyExists: 0x80370306,
      vpDoesNotExist: 0x80370307,
      invalidVpState: 0x80370308,
      invalidVpRegisterName: 0x80370309,
    });
  });

  it("is what a WhvError reports for its code, and isWhvError recognises only WhvErrors", () => {
    const error = new WhvError("vpDoesNotExist", "no such processor");
    expect(error.hresult).toBe(0x80370307);
    expect(error).toBeInstanceOf(Error);
    expect(isWhvError(error)).toBe(true);
    expect(isWhvError(new Error("plain"))).toBe(false);
    expect(isWhvError({ name: "WhvError", code: "invalidArg" })).toBe(false);
  });
});

describe("partition properties", () => {
  it("reads the defaults and reads back what was set before setup", () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    expect(platform.getPartitionProperty(partition, "processorCount")).toBe(1);
    expect(platform.getPartitionProperty(partition, "exceptionExitBitmap")).toBe(0n);
    platform.setPartitionProperty(partition, "processorCount", 4);
    platform.setPartitionProperty(partition, "extendedVmExits", { exceptionExit: true });
    platform.setPartitionProperty(partition, "exceptionExitBitmap", exceptionBitmap("breakpointTrap", "pageFault"));
    expect(platform.getPartitionProperty(partition, "processorCount")).toBe(4);
    expect(platform.getPartitionProperty(partition, "extendedVmExits")).toEqual({ exceptionExit: true });
    expect(platform.getPartitionProperty(partition, "exceptionExitBitmap")).toBe((1n << 3n) | (1n << 14n));
  });

  it("refuses processorCount after setup with invalidArg (E_INVALIDARG) and keeps the old value", () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setPartitionProperty(partition, "processorCount", 2);
    platform.setupPartition(partition);
    expectWhvError(() => platform.setPartitionProperty(partition, "processorCount", 3), "invalidArg", E_INVALIDARG);
    expect(platform.getPartitionProperty(partition, "processorCount")).toBe(2);
  });

  it("takes processorFeatures before setup only (invalidArg after), keeping the old value", () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    expect(platform.getPartitionProperty(partition, "processorFeatures")).toBe(0n);
    platform.setPartitionProperty(partition, "processorFeatures", 0x5n);
    expectWhvError(() => platform.setPartitionProperty(partition, "processorFeatures", -1n), "invalidArg", E_INVALIDARG);
    platform.setupPartition(partition);
    expectWhvError(() => platform.setPartitionProperty(partition, "processorFeatures", 0x7n), "invalidArg", E_INVALIDARG);
    expect(platform.getPartitionProperty(partition, "processorFeatures")).toBe(0x5n);
  });

  it("refuses an exception bitmap naming vectors WHPX cannot intercept (2, 9, 0xF, above 0x13)", () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    for (const vector of [2n, 9n, 15n, 20n, 31n]) {
      expectWhvError(() => platform.setPartitionProperty(partition, "exceptionExitBitmap", 1n << vector), "invalidArg", E_INVALIDARG);
    }
    expect(platform.getPartitionProperty(partition, "exceptionExitBitmap")).toBe(0n);
  });

  it.each([0, 65, 1.5, Number.NaN])("refuses processorCount %s", (count) => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    expectWhvError(() => platform.setPartitionProperty(partition, "processorCount", count), "invalidArg", E_INVALIDARG);
    expect(platform.getPartitionProperty(partition, "processorCount")).toBe(1);
  });

  // "toString" and "constructor" are inherited by every object: they must not pass for properties.
  it.each(["localApicEmulationMode", "toString", "constructor", "__proto__"])("fails unknown property %s with unknownProperty", (code) => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    const unknown = code as WhvPartitionPropertyCode;
    expectWhvError(() => platform.getPartitionProperty(partition, unknown), "unknownProperty", 0x80370302);
    expectWhvError(() => platform.setPartitionProperty(partition, unknown, 1 as never), "unknownProperty", 0x80370302);
  });

  it("accepts the exception exit bitmap after setup while no processor runs", () => {
    const { platform, partition } = createGuest();
    platform.setPartitionProperty(partition, "exceptionExitBitmap", exceptionBitmap("debugTrapOrFault"));
    expect(platform.getPartitionProperty(partition, "exceptionExitBitmap")).toBe(2n);
  });

  it("refuses the exception exit bitmap while a processor is inside run, and keeps the old value", async () => {
    const guest = createGuest();
    const { platform, partition } = guest;
    guest.load([0xeb, 0xfe]); // jmp $
    const running = guest.run();
    expectWhvError(() => platform.setPartitionProperty(partition, "exceptionExitBitmap", 8n), "invalidArg", E_INVALIDARG);
    expect(platform.getPartitionProperty(partition, "exceptionExitBitmap")).toBe(0n);
    platform.cancelRunVirtualProcessor(partition, 0);
    expectExit(await running, "canceled");
    platform.setPartitionProperty(partition, "exceptionExitBitmap", 8n);
    expect(platform.getPartitionProperty(partition, "exceptionExitBitmap")).toBe(8n);
  });
});

describe("partition lifecycle", () => {
  it("allows only property calls before setup", async () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    const ram = new Uint8Array(0x1000);
    expectWhvError(() => platform.mapGpaRange(partition, ram, 0n, 0x1000n, RWX), "invalidArg", E_INVALIDARG);
    expectWhvError(() => platform.unmapGpaRange(partition, 0n, 0x1000n), "invalidArg", E_INVALIDARG);
    expectWhvError(() => platform.createVirtualProcessor(partition, 0), "invalidArg", E_INVALIDARG);
    expectWhvError(() => platform.getVirtualProcessorRegisters(partition, 0, ["x64Rip"]), "invalidArg", E_INVALIDARG);
    await expectWhvRejection(platform.runVirtualProcessor(partition, 0), "invalidArg", E_INVALIDARG);
    // After setup the same calls go through.
    platform.setupPartition(partition);
    platform.mapGpaRange(partition, ram, 0n, 0x1000n, RWX);
    platform.createVirtualProcessor(partition, 0);
    expect(platform.getVirtualProcessorRegisters(partition, 0, ["x64Rip"])).toEqual([0xfff0n]);
  });

  it("refuses a second setup", () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setupPartition(partition);
    expectWhvError(() => platform.setupPartition(partition), "invalidArg", E_INVALIDARG);
  });

  it("fails every call with a deleted partition's handle", async () => {
    const guest = createGuest();
    const { platform, partition, ram } = guest;
    platform.deletePartition(partition);
    const calls: [string, () => unknown][] = [
      ["getPartitionProperty", () => platform.getPartitionProperty(partition, "processorCount")],
      ["setPartitionProperty", () => platform.setPartitionProperty(partition, "exceptionExitBitmap", 0n)],
      ["setupPartition", () => platform.setupPartition(partition)],
      ["deletePartition", () => platform.deletePartition(partition)],
      ["mapGpaRange", () => platform.mapGpaRange(partition, ram, 0n, 0x1000n, RWX)],
      ["unmapGpaRange", () => platform.unmapGpaRange(partition, 0n, BigInt(ram.length))],
      ["createVirtualProcessor", () => platform.createVirtualProcessor(partition, 0)],
      ["deleteVirtualProcessor", () => platform.deleteVirtualProcessor(partition, 0)],
      ["getVirtualProcessorRegisters", () => platform.getVirtualProcessorRegisters(partition, 0, ["x64Rax"])],
      ["setVirtualProcessorRegisters", () => platform.setVirtualProcessorRegisters(partition, 0, ["x64Rax"], [1n])],
      ["cancelRunVirtualProcessor", () => platform.cancelRunVirtualProcessor(partition, 0)],
      ["getVirtualProcessorCounters", () => platform.getVirtualProcessorCounters(partition, 0)],
    ];
    for (const [, call] of calls) expectWhvError(call, "invalidArg", E_INVALIDARG);
    await expectWhvRejection(platform.runVirtualProcessor(partition, 0), "invalidArg", E_INVALIDARG);
  });

  it("ends a run that is in progress when its partition is deleted", async () => {
    const guest = createGuest();
    guest.load([0xeb, 0xfe]); // jmp $
    const running = guest.run();
    guest.platform.deletePartition(guest.partition);
    expect(expectExit(await running, "canceled").cancelReason).toBe("user");
  });

  it("does not accept a handle from another platform", () => {
    const partition = new WhvPlatform().createPartition();
    expectWhvError(() => new WhvPlatform().getPartitionProperty(partition, "processorCount"), "invalidArg", E_INVALIDARG);
  });
});

describe("mapGpaRange", () => {
  function setUp() {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setupPartition(partition);
    return { platform, partition };
  }

  it.each([
    ["an unaligned GPA", 0x800n, 0x1000n],
    ["a size that is not a page multiple", 0x1000n, 0x1800n],
    ["a zero size", 0x1000n, 0n],
    ["a negative size", 0x1000n, -0x1000n],
    ["a size beyond the source", 0n, 0x3000n],
    ["a range past 4 GiB", 0xffff_f000n, 0x2000n],
    ["a negative GPA", -0x1000n, 0x1000n],
  ])("refuses %s with invalidArg", (_what, gpa, size) => {
    const { platform, partition } = setUp();
    expectWhvError(() => platform.mapGpaRange(partition, new Uint8Array(0x2000), gpa, size, RWX), "invalidArg", E_INVALIDARG);
    // A refused mapping leaves nothing behind: processors created later still come up.
    platform.createVirtualProcessor(partition, 0);
  });

  it("unmaps only ranges whose every page is mapped (gpaRangeNotFound otherwise), page by page", () => {
    const { platform, partition } = setUp();
    platform.mapGpaRange(partition, new Uint8Array(0x2000), 0n, 0x2000n, RWX);
    expectWhvError(() => platform.unmapGpaRange(partition, 0x4000n, 0x1000n), "gpaRangeNotFound", 0x80370305);
    expectWhvError(() => platform.unmapGpaRange(partition, 0x1000n, 0x2000n), "gpaRangeNotFound", 0x80370305);
    expectWhvError(() => platform.unmapGpaRange(partition, 0x800n, 0x1000n), "invalidArg", E_INVALIDARG);
    platform.unmapGpaRange(partition, 0n, 0x1000n);
    expectWhvError(() => platform.unmapGpaRange(partition, 0n, 0x2000n), "gpaRangeNotFound", 0x80370305);
    platform.unmapGpaRange(partition, 0x1000n, 0x1000n);
    expectWhvError(() => platform.unmapGpaRange(partition, 0x1000n, 0x1000n), "gpaRangeNotFound", 0x80370305);
  });

  it("shares the source array with the guest in both directions (no copy)", async () => {
    const guest = createGuest();
    // Written by the host after mapping, read by the guest.
    guest.ram[0x2000] = 0x5a;
    guest.load([
      0xa0, 0x00, 0x20, // mov al, [0x2000]
      0xa2, 0x01, 0x20, // mov [0x2001], al
      0xf4, //             hlt
    ]);
    expectExit(await guest.run(), "x64Halt");
    expect(guest.ram[0x2001]).toBe(0x5a);
  });

  it("exits on writes to a read-only mapping with gpaUnmapped false", async () => {
    const guest = createGuest();
    const rom = new Uint8Array(0x1000).fill(0x77);
    guest.platform.mapGpaRange(guest.partition, rom, 0x8000n, 0x1000n, RWX & ~2); // replaces a RAM page
    guest.load([
      0xa0, 0x00, 0x80, // mov al, [0x8000]  (read-only page: served)
      0xa2, 0x00, 0x80, // mov [0x8000], al  (read-only page: exits)
    ]);
    const write = expectExit(await guest.run(), "memoryAccess");
    expect(write.memoryAccess.gpa).toBe(0x8000n);
    expect(write.memoryAccess.accessInfo).toEqual({ accessType: "write", gpaUnmapped: false, gvaValid: false });
    expect(write.vpContext.rip).toBe(BigInt(CODE + 3));
    expect(guest.get(["x64Rax"])[0] & 0xffn).toBe(0x77n);
    expect(rom[0]).toBe(0x77);
  });

  it("leaves a replaced page unmapped once its replacement is unmapped, for old and new processors", async () => {
    const guest = createGuest();
    const { platform, partition, ram } = guest;
    platform.mapGpaRange(partition, new Uint8Array(0x1000), 0x8000n, 0x1000n, RWX);
    platform.unmapGpaRange(partition, 0x8000n, 0x1000n);
    const code = [0xa0, 0x00, 0x80]; // mov al, [0x8000]
    guest.load(code);
    const read = expectExit(await guest.run(), "memoryAccess");
    expect(read.memoryAccess.gpa).toBe(0x8000n);
    expect(read.memoryAccess.accessInfo).toEqual({ accessType: "read", gpaUnmapped: true, gvaValid: false });
    // A processor created now replays the partition's mappings: the page stays unmapped ...
    platform.deleteVirtualProcessor(partition, 0);
    platform.createVirtualProcessor(partition, 0);
    guest.load(code);
    expect(expectExit(await guest.run(), "memoryAccess").memoryAccess.accessInfo.gpaUnmapped).toBe(true);
    // ... and the RAM around it is still the caller's array.
    ram[0x7fff] = 0x42;
    guest.load([0xa0, 0xff, 0x7f, 0xa2, 0x01, 0x90, 0xf4]); // mov al, [0x7fff]; mov [0x9001], al; hlt
    expectExit(await guest.run(), "x64Halt");
    expect(ram[0x9001]).toBe(0x42);
  });
});

describe("virtual processors", () => {
  it("creates indexes below processorCount only", () => {
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setPartitionProperty(partition, "processorCount", 2);
    platform.setupPartition(partition);
    platform.createVirtualProcessor(partition, 0);
    platform.createVirtualProcessor(partition, 1);
    for (const index of [2, -1, 0.5]) {
      expectWhvError(() => platform.createVirtualProcessor(partition, index), "invalidArg", E_INVALIDARG);
    }
  });

  it("refuses a duplicate with vpAlreadyExists", () => {
    const { platform, partition } = createGuest();
    expectWhvError(() => platform.createVirtualProcessor(partition, 0), "vpAlreadyExists", 0x80370306);
  });

  it("fails calls on a processor that does not exist with vpDoesNotExist", async () => {
    const { platform, partition } = createGuest();
    expectWhvError(() => platform.deleteVirtualProcessor(partition, 1), "vpDoesNotExist", 0x80370307);
    platform.deleteVirtualProcessor(partition, 0);
    expectWhvError(() => platform.deleteVirtualProcessor(partition, 0), "vpDoesNotExist", 0x80370307);
    expectWhvError(() => platform.getVirtualProcessorRegisters(partition, 0, ["x64Rax"]), "vpDoesNotExist", 0x80370307);
    expectWhvError(() => platform.setVirtualProcessorRegisters(partition, 0, ["x64Rax"], [0n]), "vpDoesNotExist", 0x80370307);
    expectWhvError(() => platform.cancelRunVirtualProcessor(partition, 0), "vpDoesNotExist", 0x80370307);
    expectWhvError(() => platform.getVirtualProcessorCounters(partition, 0), "vpDoesNotExist", 0x80370307);
    await expectWhvRejection(platform.runVirtualProcessor(partition, 0), "vpDoesNotExist", 0x80370307);
  });

  it("re-creates a deleted index as a fresh processor that sees the existing mappings", async () => {
    const guest = createGuest();
    const { platform, partition } = guest;
    guest.set(["x64Rax"], [0x1234n]);
    platform.deleteVirtualProcessor(partition, 0);
    platform.createVirtualProcessor(partition, 0);
    expect(guest.get(["x64Rax", "x64Rip"])).toEqual([0n, 0xfff0n]);
    guest.load([0xf4]); // hlt, fetched from the RAM mapped before the processor existed
    expectExit(await guest.run(), "x64Halt");
  });
});
