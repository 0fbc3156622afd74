/**
 * The Cpu API around the interpreter: argument errors, the memory map, CPU model
 * differences, and the features the CPU reports as unsupported instead of running.
 */
import { describe, expect, it } from "vitest";
import { Cpu, CpuError, MemoryAccess, RunExit, isCpuError, registers, type CpuModel } from "../src/index.js";
import { CODE, DATA, GDT_BASE, Machine, RecordingBus, SELECTOR, STACK_TOP, describeExit, le32 } from "./machine.js";

const { EAX, EBX, ECX, EDX, ESP, CS, DS } = registers;

function expectCpuError(action: () => void, code: string): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(CpuError);
  expect(isCpuError(thrown)).toBe(true);
  expect((thrown as CpuError).code).toBe(code);
}

describe("argument errors", () => {
  const cpu = new Cpu({ bus: new RecordingBus() });

  it.each([
    ["a start that is not page aligned", 0x800, 0x1000],
    ["a size that is not a multiple of 4096", 0, 100],
    ["an empty buffer", 0, 0],
    ["a negative start", -0x1000, 0x1000],
    ["a range past 4 GiB", 0xfffff000, 0x2000],
  ])("mapMemory rejects %s with ERR_CPU_INVALID_MAPPING", (_what, start, size) => {
    expectCpuError(() => cpu.mapMemory(start, new Uint8Array(size), MemoryAccess.All), "ERR_CPU_INVALID_MAPPING");
  });

  it("unmapMemory and protectMemory reject unaligned ranges", () => {
    expectCpuError(() => cpu.unmapMemory(0x10, 0x1000), "ERR_CPU_INVALID_MAPPING");
    expectCpuError(() => cpu.protectMemory(0, 0x10, MemoryAccess.Read), "ERR_CPU_INVALID_MAPPING");
  });

  it("rejects an unknown CPU model with ERR_CPU_INVALID_ARGUMENT", () => {
    expectCpuError(() => new Cpu({ bus: new RecordingBus(), model: "z80" as CpuModel }), "ERR_CPU_INVALID_ARGUMENT");
  });

  it("isCpuError tells CpuError apart from other errors", () => {
    expect(isCpuError(new Error("x"))).toBe(false);
    expect(isCpuError({ name: "CpuError", code: "ERR_CPU_INTERNAL" })).toBe(false);
    expect(isCpuError(new CpuError("ERR_CPU_INTERNAL", "x"))).toBe(true);
  });
});

describe("memory map changes", () => {
  it("sends accesses to the bus after unmapMemory, and writes after protectMemory(Read)", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu, bus } = machine;
    machine.write32(DATA, 0x1234);
    machine.load(CODE, [0xa1, ...le32(DATA), 0xa3, ...le32(DATA + 4), 0xf4]); // mov eax, [DATA]; mov [DATA+4], eax
    cpu.protectMemory(DATA, 0x1000, MemoryAccess.Read);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(0x1234);
    expect(machine.read32(DATA + 4)).toBe(0);
    expect(bus.events).toEqual([{ kind: "writePhysical", address: DATA + 4, size: 4, value: 0x1234 }]);

    bus.events.length = 0;
    cpu.unmapMemory(DATA, 0x1000);
    bus.physicalRead = () => 0xabcd;
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(0xabcd);
    expect(bus.events.map((e) => e.kind)).toEqual(["readPhysical", "writePhysical"]);
    expect(cpu.mappedAccess(DATA)).toBe(0);
    expect(cpu.mappedAccess(CODE)).toBe(MemoryAccess.All);
  });
});

describe("CPU models", () => {
  /** Reads the byte at FFFF:0010 (physical 0x100000 with a 21st address line). */
  function readAtHighMemoryArea(model: CpuModel, a20: boolean): number {
    const machine = new Machine(model);
    machine.enterRealMode();
    const { cpu } = machine;
    const high = new Uint8Array(0x1000).fill(0x11);
    cpu.mapMemory(0x100000, high, MemoryAccess.All);
    machine.ram[0] = 0x22;
    cpu.setA20(a20);
    machine.load(0x7c00, [0xb8, 0xff, 0xff, 0x8e, 0xd8, 0xa0, 0x10, 0x00, 0xf4]); // mov ax,0xffff; mov ds,ax; mov al,[0x10]
    expect(machine.runAt(0x7c00)).toBe(RunExit.Halt);
    return cpu.regs8[0]!;
  }

  it("wraps addresses at 1 MiB on the 8086 and with the A20 gate off; reaches the HMA otherwise", () => {
    expect(readAtHighMemoryArea("8086", true)).toBe(0x22);
    expect(readAtHighMemoryArea("80286", true)).toBe(0x11);
    expect(readAtHighMemoryArea("pentium-pro", true)).toBe(0x11);
    expect(readAtHighMemoryArea("pentium-pro", false)).toBe(0x22);
  });

  it("starts the 8086 at FFFF:0000 and later models at F000:FFF0 with CS base 0xFFFF0000", () => {
    const bus = new RecordingBus();
    const i8086 = new Cpu({ bus, model: "8086" });
    expect([i8086.segSelector[CS], i8086.segBase[CS], i8086.eip]).toEqual([0xffff, 0xffff0, 0]);
    const p6 = new Cpu({ bus, model: "pentium-pro" });
    expect([p6.segSelector[CS], p6.segBase[CS]! >>> 0, p6.eip]).toEqual([0xf000, 0xffff0000, 0xfff0]);
  });

  it("answers CPUID on the pentium-pro (GenuineIntel) and raises #UD for it on the 80386", () => {
    for (const model of ["pentium-pro", "80386"] as const) {
      const machine = new Machine(model);
      machine.enterRealMode();
      const { cpu } = machine;
      cpu.exceptionExitBitmap = 1 << 6;
      machine.load(0x7c00, [0x66, 0x31, 0xc0, 0x0f, 0xa2, 0xf4]); // xor eax, eax; cpuid; hlt
      const exit = machine.runAt(0x7c00);
      if (model === "80386") {
        expect(describeExit(cpu, exit)).toBe("Exception at eip 7c03 (vector 6, error code -1)");
        continue;
      }
      expect(exit).toBe(RunExit.Halt);
      const vendor = Buffer.alloc(12);
      vendor.writeInt32LE(cpu.regs[EBX]!, 0);
      vendor.writeInt32LE(cpu.regs[EDX]!, 4);
      vendor.writeInt32LE(cpu.regs[ECX]!, 8);
      expect(vendor.toString("latin1")).toBe("GenuineIntel");
    }
  });
});

describe("features reported as unsupported or absent", () => {
  function protectedMachine(): Machine {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    return machine;
  }

  it("reports a far CALL through a call gate as RunExit.Unsupported, with nothing pushed", () => {
    const machine = protectedMachine();
    const { cpu } = machine;
    // GDT entry 6 (0x30): 32-bit call gate to 0x08:0x3000, DPL 0.
    machine.write32(GDT_BASE + 0x30, (SELECTOR.code32 << 16) | 0x3000);
    machine.write32(GDT_BASE + 0x34, 0x8c00);
    cpu.gdtLimit = 0x37;
    machine.load(CODE, [0x9a, ...le32(0), 0x30, 0x00]); // call 0x30:0
    expect(machine.runAt(CODE)).toBe(RunExit.Unsupported);
    expect(cpu.unsupportedReason).toMatch(/call gate/);
    expect(cpu.eip).toBe(CODE);
    expect(cpu.regs[ESP]).toBe(STACK_TOP);
  });

  it("reports a task gate in the IDT and IRET with NT set (task switches) as unsupported", () => {
    const machine = protectedMachine();
    const { cpu } = machine;
    machine.write32(0x1000 + 0x40 * 8, 0x00300000);
    machine.write32(0x1000 + 0x40 * 8 + 4, 0x8500); // present task gate, TSS selector 0x30
    machine.load(CODE, [0xcd, 0x40]); // int 0x40
    expect(machine.runAt(CODE)).toBe(RunExit.Unsupported);
    expect(cpu.unsupportedReason).toMatch(/task gate/);
    expect(cpu.eip).toBe(CODE);

    cpu.setFlags(0x2 | 0x4000); // NT
    machine.load(CODE, [0xcf]); // iret
    expect(machine.runAt(CODE)).toBe(RunExit.Unsupported);
    expect(cpu.unsupportedReason).toMatch(/task switch/);
  });

  it("reports interrupt delivery from virtual-8086 mode as unsupported", () => {
    const machine = protectedMachine();
    const { cpu } = machine;
    cpu.setFlags(0x2 | 0x20000 | 0x3000); // VM, IOPL 3
    for (const segment of [0, CS, 2, DS]) cpu.setRealModeSegment(segment, 0x200);
    cpu.cpl = 3;
    cpu.updateModeCaches();
    expect(cpu.v86Mode).toBe(true);
    machine.load(0x2000, [0x40, 0xcd, 0x21]); // inc ax; int 0x21
    expect(machine.runAt(0)).toBe(RunExit.Unsupported);
    expect(cpu.unsupportedReason).toMatch(/virtual-8086/);
    expect(cpu.eip).toBe(1);
    expect(cpu.regs16[0]).toBe(1); // real-mode style code ran up to the INT
  });

  it("rejects CR4.PAE (no PAE paging) with #GP(0)", () => {
    const machine = protectedMachine();
    const { cpu } = machine;
    cpu.exceptionExitBitmap = 1 << 13;
    machine.load(CODE, [0xb8, ...le32(0x20), 0x0f, 0x22, 0xe0]); // mov eax, 0x20; mov cr4, eax
    expect(describeExit(cpu, machine.runAt(CODE))).toBe(`Exception at eip ${(CODE + 5).toString(16)} (vector 13, error code 0)`);
    expect(cpu.cr4 & 0x20).toBe(0);
  });

  it("has no x87: FPU instructions raise #UD, or #NM with CR0.EM set", () => {
    const machine = protectedMachine();
    const { cpu } = machine;
    cpu.exceptionExitBitmap = (1 << 6) | (1 << 7);
    machine.load(CODE, [0xdb, 0xe3]); // fninit
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(cpu.exitVector).toBe(6);
    cpu.writeCr0(cpu.cr0 | 0x4); // EM
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(cpu.exitVector).toBe(7);
  });
});
