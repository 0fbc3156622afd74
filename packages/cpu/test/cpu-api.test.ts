/**
 * The Cpu API around the interpreter: argument errors, the memory map, CPU model
 * differences, and the features the CPU does not have.
 */
import { describe, expect, it } from "vitest";
import { Cpu, CpuError, MemoryAccess, RunExit, isCpuError, registers, type CpuModel } from "../src/index.js";
import { CODE, DATA, Machine, RecordingBus, describeExit, le32 } from "./machine.js";

const { EAX, EBX, ECX, EDX, CS } = registers;

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

describe("features that are absent", () => {
  function protectedMachine(): Machine {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    return machine;
  }

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
