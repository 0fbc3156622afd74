/**
 * SYSENTER and SYSEXIT as the Pentium Pro has them: flat segments derived from
 * IA32_SYSENTER_CS (MSR 0x174), the stack and entry point from MSRs 0x175/0x176, the
 * return to ring 3 from EDX/ECX, and the #GP(0) cases.
 */
import { describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, HANDLERS, Machine, SELECTOR, describeExit, le32 } from "./machine.js";

const { ECX, EDX, ESP, CS, SS } = registers;
const USER_CODE = 0x2100;

/** wrmsr of `value` into `msr`, as bytes. */
function wrmsr(msr: number, value: number): number[] {
  return [0xb9, ...le32(msr), 0xb8, ...le32(value), 0x31, 0xd2, 0x0f, 0x30]; // mov ecx; mov eax; xor edx, edx; wrmsr
}

function expectExit(machine: Machine, exit: RunExit, expected: RunExit): void {
  expect(describeExit(machine.cpu, exit)).toBe(describeExit(machine.cpu, expected));
}

describe("SYSENTER / SYSEXIT", () => {
  it("leave ring 0 for ring 3 and come back through the MSRs", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.load(CODE, [
      ...wrmsr(0x174, SELECTOR.code32),
      ...wrmsr(0x175, 0x80000),
      ...wrmsr(0x176, HANDLERS),
      0xfb, //                          sti
      0xba, ...le32(USER_CODE), //      mov edx, USER_CODE
      0xb9, ...le32(0x70000), //        mov ecx, 0x70000
      0x0f, 0x35, //                    sysexit
    ]);
    machine.load(USER_CODE, [0x89, 0xe6, 0x0f, 0x34]); // mov esi, esp; sysenter
    machine.load(HANDLERS, [0xf4]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[registers.ESI]).toBe(0x70000); // ring 3 ran with ESP = ECX
    expect(cpu.cpl).toBe(0);
    expect(cpu.eip).toBe(HANDLERS + 1);
    expect(cpu.segSelector[CS]).toBe(SELECTOR.code32);
    expect(cpu.segSelector[SS]).toBe(SELECTOR.data32);
    expect(cpu.regs[ESP]).toBe(0x80000);
    expect(cpu.getFlags() & 0x200).toBe(0); // IF cleared by SYSENTER
    expect(cpu.codeSize32).toBe(1);
  });

  it("loads the ring-3 selectors SYSENTER_CS + 16 and + 24 with RPL 3 and a flat DPL-3 cache", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    cpu.msrSysenterCs = SELECTOR.code32;
    cpu.regs[EDX] = USER_CODE;
    cpu.regs[ECX] = 0x70000;
    machine.load(CODE, [0x0f, 0x35]);
    expectExit(machine, machine.runAt(CODE, 1), RunExit.Budget);
    expect(cpu.cpl).toBe(3);
    expect(cpu.segSelector[CS]).toBe(SELECTOR.code32User);
    expect(cpu.segSelector[SS]).toBe(SELECTOR.data32User);
    expect((cpu.segAttributes[CS]! >> 5) & 3).toBe(3);
    expect(cpu.segLimit[SS]! >>> 0).toBe(0xffffffff);
    expect(cpu.eip).toBe(USER_CODE);
  });

  it("raise #GP(0) with SYSENTER_CS null, for SYSEXIT outside ring 0, and in real mode", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    cpu.exceptionExitBitmap = 1 << 13;
    machine.load(CODE, [0x0f, 0x34]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitErrorCode).toBe(0);

    cpu.msrSysenterCs = SELECTOR.code32;
    cpu.regs[EDX] = CODE;
    machine.load(CODE, [0x0f, 0x35]);
    expectExit(machine, machine.runAt(CODE, 1), RunExit.Budget); // now in ring 3 at CODE
    expectExit(machine, cpu.run(1), RunExit.Exception); // SYSEXIT again, from ring 3
    expect(cpu.exitVector).toBe(13);

    const real = new Machine();
    real.enterRealMode();
    real.cpu.msrSysenterCs = SELECTOR.code32;
    real.cpu.exceptionExitBitmap = 1 << 13;
    real.load(0x7c00, [0x0f, 0x34]);
    expectExit(real, real.runAt(0x7c00), RunExit.Exception);
  });

  it("is reported by CPUID (leaf 1 EDX bit 11, SEP)", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    machine.load(CODE, [0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0xf4]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(machine.cpu.regs[EDX]! & (1 << 11)).toBe(1 << 11);
  });
});
