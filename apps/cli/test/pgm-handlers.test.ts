/**
 * pgm's physical access handlers in front of the accelerator: the engine hooks
 * (src/machine/engine-hooks.ts) make whpx-sim protect a page when its handler state
 * changes, so guest writes to a RAM page under a write handler leave the fast path and reach
 * the handler while reads stay fast, and an all-access handler makes every access exit.
 */
import { readFileSync } from "node:fs";
import { AccessResult, AccessType, HandlerKind, PhysicalMemory, type AccessSize, type MmioDevice } from "@vmmkit/pgm";
import { WhvMapGpaRangeFlags, WhvPlatform, type WhvRunVpExitContext } from "@vmmkit/whpx-sim";
import { describe, expect, it } from "vitest";
import { buildMachine } from "../src/machine/build-machine.js";
import { mapFlagsFor, whpxEngineHooks } from "../src/machine/engine-hooks.js";
import { loadMultiboot } from "../src/machine/images.js";
import { guest } from "./helpers.js";

const MIB = 2 ** 20;
const PAGE = 4096;

/** One byte of an access: a handler or device call flattened, so the test does not depend on how accesses are split. */
type ByteAccess = [kind: "read" | "write", address: number, value: number];

/** The device pgm-monitor expects at `base`: byte i reads as 0xA0 + i; every byte accessed is logged. */
function testDevice(base: number, log: ByteAccess[]): MmioDevice {
  return {
    read: (offset: number, size: AccessSize) => {
      let value = 0;
      for (let i = 0; i < size; i++) {
        const byte = (0xa0 + offset + i) & 0xff;
        log.push(["read", base + offset + i, byte]);
        value |= byte << (8 * i);
      }
      return value >>> 0;
    },
    write: (offset: number, value: number, size: AccessSize) => {
      for (let i = 0; i < size; i++) log.push(["write", base + offset + i, (value >>> (8 * i)) & 0xff]);
    },
  };
}

describe("engine hooks in a running machine (guests/pgm-monitor)", () => {
  const elf = new Uint8Array(readFileSync(guest("pgm-monitor/pgm-monitor.elf")));
  const MONITORED = 0x300000;
  const MMIO_BASE = 0xd0000000;

  it("a write handler on a RAM page sees exactly the guest's writes, reads stay fast, and an MMIO device its accesses", async () => {
    const memoryBytes = 32 * MIB;
    const machine = buildMachine({ memoryBytes, serial: { transmit: () => {} }, load: (memory) => loadMultiboot(memory, elf, memoryBytes, "") });
    const memory = machine.memory;

    const seen: ByteAccess[] = [];
    const monitor = memory.registerHandlerType({
      kind: HandlerKind.Write,
      description: "write monitor",
      onAccess: (address, buffer, offset, size, accessType) => {
        for (let i = 0; i < size; i++) seen.push([accessType === AccessType.Write ? "write" : "read", address + i, buffer[offset + i]!]);
        return AccessResult.Default; // the write lands
      },
    });
    memory.register(MONITORED, MONITORED + PAGE - 1, monitor, null);

    const deviceBytes: ByteAccess[] = [];
    memory.addMmio(MMIO_BASE, PAGE, testDevice(MMIO_BASE, deviceBytes), "test device");

    // Accesses that exited to the VMM reach PhysicalMemory.read (or readInto): none may be to the monitored page.
    const exitedReads: number[] = [];
    const monitored = (address: number, length: number) => address < MONITORED + PAGE && address + length > MONITORED;
    const read = memory.read.bind(memory);
    memory.read = (address, size) => {
      if (monitored(address, size)) exitedReads.push(address);
      return read(address, size);
    };
    const readInto = memory.readInto.bind(memory);
    memory.readInto = (address, buffer, origin) => {
      if (monitored(address, buffer.length)) exitedReads.push(address);
      readInto(address, buffer, origin);
    };

    const outcome = await machine.run({ timeoutSeconds: 20 });
    expect(outcome).toEqual({ status: 33, reason: "debug-exit" });
    const bytes = (start: number, values: number[]): ByteAccess[] => values.map((value, i) => ["write", start + i, value]);
    expect(seen).toEqual([
      ...bytes(MONITORED + 0x10, [0x11]),
      ...bytes(MONITORED + 0x20, [0x33, 0x22]),
      ...bytes(MONITORED + 0x30, [0x77, 0x66, 0x55, 0x44]),
      ...bytes(MONITORED + 0x40, [0xbb, 0xaa, 0x99, 0x88]),
      ...bytes(MONITORED + 0xffe, [0xff, 0xee]), // the other two bytes are on the next page
    ]);
    // One handler call per guest write (the emulator hands pgm whole accesses, not bytes),
    // except the dword across the page end, which the processor writes byte by byte: two here.
    expect(memory.handlerAt(MONITORED)!.callCount).toBe(6);
    expect([...memory.readBytes(MONITORED + 0xffe, 4)]).toEqual([0xff, 0xee, 0xdd, 0xcc]);
    expect(exitedReads).toEqual([]);
    expect(deviceBytes).toEqual([
      ...bytes(MMIO_BASE + 0x10, [0xbe, 0xba, 0xfe, 0xca]),
      ["read", MMIO_BASE + 0x20, 0xc0],
      ["read", MMIO_BASE + 0x21, 0xc1],
      ["read", MMIO_BASE + 0x22, 0xc2],
      ["read", MMIO_BASE + 0x23, 0xc3],
      ...bytes(MMIO_BASE + 0x01, [0x5a]),
    ]);
  }, 30_000);

  it("without a handler the same guest runs with its writes never leaving the fast path", async () => {
    const memoryBytes = 32 * MIB;
    const machine = buildMachine({ memoryBytes, serial: { transmit: () => {} }, load: (memory) => loadMultiboot(memory, elf, memoryBytes, "") });
    const memory = machine.memory;
    memory.addMmio(MMIO_BASE, PAGE, testDevice(MMIO_BASE, []), "test device");
    const exitedWrites: number[] = [];
    const write = memory.write.bind(memory);
    memory.write = (address, value, size) => {
      if (address >= MONITORED && address < MONITORED + 2 * PAGE) exitedWrites.push(address);
      write(address, value, size);
    };
    expect(await machine.run({ timeoutSeconds: 20 })).toEqual({ status: 33, reason: "debug-exit" });
    expect(exitedWrites).toEqual([]);
    expect([...memory.readBytes(MONITORED + 0x30, 4)]).toEqual([0x77, 0x66, 0x55, 0x44]);
  }, 30_000);
});

/**
 * The adapter on its own: a partition with 1 MiB of RAM from a pgm arena, a real-mode
 * processor, and the exits whpx-sim gives for single accesses to one page.
 */
describe("whpxEngineHooks", () => {
  const PROBED = 0x8000;
  const CODE = 0x1000;

  function setUp() {
    const memory = new PhysicalMemory({ arenaSize: MIB });
    const ram = memory.addRam(0, MIB, "ram");
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setupPartition(partition);
    const { read, write, execute } = WhvMapGpaRangeFlags;
    platform.mapGpaRange(partition, ram.bytes!, 0n, BigInt(MIB), read | write | execute);
    platform.createVirtualProcessor(partition, 0);
    const onAccess = () => AccessResult.Default;
    const writeType = memory.registerHandlerType({ kind: HandlerKind.Write, onAccess, description: "write" });
    const allType = memory.registerHandlerType({ kind: HandlerKind.All, onAccess, description: "all" });
    /** Runs one access to PROBED (mov al, [PROBED] or mov [PROBED], al; then hlt) and names the exit. */
    const probe = async (access: "read" | "write"): Promise<string> => {
      const code = access === "read" ? [0xa0, PROBED & 0xff, PROBED >> 8, 0xf4] : [0xa2, PROBED & 0xff, PROBED >> 8, 0xf4];
      memory.loadBytes(CODE, new Uint8Array(code));
      platform.setVirtualProcessorRegisters(partition, 0, ["x64Cs", "x64Rip", "x64Ds", "x64Rflags"], [
        { base: 0n, limit: 0xffff, selector: 0, attributes: 0x9b },
        BigInt(CODE),
        { base: 0n, limit: 0xffff, selector: 0, attributes: 0x93 },
        2n,
      ]);
      const exit: WhvRunVpExitContext = await platform.runVirtualProcessor(partition, 0);
      // A halted processor stays halted: wake it for the next probe.
      platform.setVirtualProcessorRegisters(partition, 0, ["internalActivityState"], [{ startupSuspend: false, haltSuspend: false, idleSuspend: false }]);
      if (exit.exitReason === "memoryAccess") return `${exit.memoryAccess.accessInfo.accessType} exit at ${exit.memoryAccess.gpa.toString(16)}`;
      return exit.exitReason;
    };
    return { memory, platform, partition, writeType, allType, probe };
  }

  it("maps a page under a write handler read + execute and one under an all-access handler with no access", async () => {
    const { memory, platform, partition, writeType, allType, probe } = setUp();
    memory.attachEngine(whpxEngineHooks(memory, platform, partition));
    expect([await probe("read"), await probe("write")]).toEqual(["x64Halt", "x64Halt"]);
    memory.register(PROBED, PROBED + PAGE - 1, writeType, null);
    expect([await probe("read"), await probe("write")]).toEqual(["x64Halt", "write exit at 8000"]);
    memory.deregister(PROBED);
    expect([await probe("read"), await probe("write")]).toEqual(["x64Halt", "x64Halt"]);
    memory.register(PROBED, PROBED + PAGE - 1, allType, null);
    expect([await probe("read"), await probe("write")]).toEqual(["read exit at 8000", "write exit at 8000"]);
    memory.pageTempOff(PROBED, PROBED); // monitoring off for the page: back to the fast path
    expect([await probe("read"), await probe("write")]).toEqual(["x64Halt", "x64Halt"]);
    memory.reset(PROBED);
    expect([await probe("read"), await probe("write")]).toEqual(["read exit at 8000", "write exit at 8000"]);
  });

  it("keeps a page shared by a sub-page write handler and a removed neighbour protected", async () => {
    const { memory, platform, partition, writeType, probe } = setUp();
    memory.attachEngine(whpxEngineHooks(memory, platform, partition));
    memory.register(PROBED + 0x100, PROBED + 0x1ff, writeType, "a");
    memory.register(PROBED + 0x800, PROBED + 0x8ff, writeType, "b");
    memory.deregister(PROBED + 0x100);
    expect(await probe("write")).toBe("write exit at 8000"); // "b" still watches the page
    memory.deregister(PROBED + 0x800);
    expect(await probe("write")).toBe("x64Halt");
  });

  it("applies handlers registered before it was attached", async () => {
    const { memory, platform, partition, allType, probe } = setUp();
    memory.register(PROBED, PROBED + PAGE - 1, allType, null);
    expect(await probe("read")).toBe("x64Halt"); // nothing told whpx-sim yet
    memory.attachEngine(whpxEngineHooks(memory, platform, partition));
    expect(await probe("read")).toBe("read exit at 8000");
  });

  it("lets MMIO2 dirty tracking see the first guest write to a page, then keeps later writes fast until collected", async () => {
    const memory = new PhysicalMemory({ arenaSize: MIB });
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setupPartition(partition);
    platform.createVirtualProcessor(partition, 0);
    // Ranges are mapped as build-machine.ts does it, before their handlers are armed.
    memory.addListener({
      rangeAdded: (range) => range.bytes && platform.mapGpaRange(partition, range.bytes, BigInt(range.start), BigInt(range.size), mapFlagsFor(7)),
      rangeRemoved: () => {},
    });
    memory.attachEngine(whpxEngineHooks(memory, platform, partition));
    memory.addRam(0, 0x10000, "ram");
    const region = memory.addMmio2(0x20000, 2 * PAGE, "owner", "vram", { dirtyTracking: true });
    // mov ax, 0x2000; mov ds, ax; mov al, 0x5a; mov [0x1000], al; hlt
    memory.loadBytes(0x1000, new Uint8Array([0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xb0, 0x5a, 0xa2, 0x00, 0x10, 0xf4]));
    /** Runs the guest; a write exit is completed as the VMM would (through pgm) and counted. */
    const run = async (): Promise<number> => {
      platform.setVirtualProcessorRegisters(partition, 0, ["x64Cs", "x64Rip", "internalActivityState"], [
        { base: 0n, limit: 0xffff, selector: 0, attributes: 0x9b },
        0x1000n,
        { startupSuspend: false, haltSuspend: false, idleSuspend: false },
      ]);
      let exits = 0;
      for (;;) {
        const exit = await platform.runVirtualProcessor(partition, 0);
        if (exit.exitReason === "x64Halt") return exits;
        if (exit.exitReason !== "memoryAccess") throw new Error(`unexpected ${exit.exitReason}`);
        exits++;
        memory.write(Number(exit.memoryAccess.gpa), 0x5a, 1);
        platform.setVirtualProcessorRegisters(partition, 0, ["x64Rip"], [exit.vpContext.rip + 3n]);
      }
    };
    const bitmap = new Uint8Array(1);
    expect(await run()).toBe(1); // the first write to the clean page exits
    expect(region.bytes![0x1000]).toBe(0x5a);
    expect(await run()).toBe(0); // the page is dirty now: writes stay in the fast path
    memory.collectDirtyPages(region.start, bitmap);
    expect(bitmap[0]).toBe(0b10);
    expect(await run()).toBe(1); // collecting re-armed the page
  });

  it("maps an MMIO2 page aliased into an MMIO range there, and unmaps it when the alias goes", async () => {
    const memory = new PhysicalMemory({ arenaSize: MIB });
    const ram = memory.addRam(0, 0x10000, "ram");
    const region = memory.addMmio2(0x20000, PAGE, "owner", "vram");
    memory.addMmio(0x30000, PAGE, { read: () => 0x99, write: () => {} }, "device");
    const platform = new WhvPlatform();
    const partition = platform.createPartition();
    platform.setupPartition(partition);
    platform.mapGpaRange(partition, ram.bytes!, 0n, BigInt(ram.size), mapFlagsFor(7));
    platform.mapGpaRange(partition, region.bytes!, 0x20000n, BigInt(PAGE), mapFlagsFor(7));
    platform.createVirtualProcessor(partition, 0);
    memory.attachEngine(whpxEngineHooks(memory, platform, partition));
    region.bytes![0] = 0x42;
    // mov ax, 0x3000; mov ds, ax; mov al, [0]; hlt
    memory.loadBytes(0x1000, new Uint8Array([0xb8, 0x00, 0x30, 0x8e, 0xd8, 0xa0, 0x00, 0x00, 0xf4]));
    const run = async () => {
      platform.setVirtualProcessorRegisters(partition, 0, ["x64Cs", "x64Rip", "internalActivityState"], [
        { base: 0n, limit: 0xffff, selector: 0, attributes: 0x9b },
        0x1000n,
        { startupSuspend: false, haltSuspend: false, idleSuspend: false },
      ]);
      const exit = await platform.runVirtualProcessor(partition, 0);
      return exit.exitReason === "x64Halt" ? Number(platform.getVirtualProcessorRegisters(partition, 0, ["x64Rax"])[0] & 0xffn) : exit.exitReason;
    };
    expect(await run()).toBe("memoryAccess");
    memory.aliasMmio2(0x30000, 0x30000, "owner", region, 0);
    expect(await run()).toBe(0x42);
    memory.reset(0x30000);
    expect(await run()).toBe("memoryAccess");
  });
});
