/**
 * Decoding rules of system instructions and prefixes from the 80386 on: LOCK only before a
 * read-modify-write of memory, MOV CR/DR ignoring the ModR/M mod field, the P6 NOP Ev, and
 * #UD for a missing control register taking precedence over the privilege check.
 */
import { describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, DATA, Machine, le32 } from "./machine.js";

const { EAX } = registers;

function flatMachine(): Machine {
  const machine = new Machine();
  machine.enterFlatProtectedMode();
  machine.cpu.exceptionExitBitmap = (1 << 6) | (1 << 13); // report #UD and #GP as exits
  return machine;
}

describe("LOCK (80386 and later)", () => {
  it.each([
    ["lock inc eax (register destination)", [0xf0, 0x40]],
    ["lock add eax, ebx (register form)", [0xf0, 0x01, 0xd8]],
    ["lock cmp [mem], eax (CMP never writes)", [0xf0, 0x39, 0x05, ...le32(DATA)]],
    ["lock mov [mem], eax (not a read-modify-write)", [0xf0, 0x89, 0x05, ...le32(DATA)]],
    ["lock nop", [0xf0, 0x90]],
  ])("raises #UD for %s", (_name, code) => {
    const machine = flatMachine();
    machine.load(CODE, code);
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(machine.cpu.exitVector).toBe(6);
    expect(machine.cpu.eip).toBe(CODE);
  });

  it.each([
    ["lock add [mem], eax", [0xf0, 0x01, 0x05, ...le32(DATA)], 0x1234 + 5],
    ["lock inc dword [mem]", [0xf0, 0xff, 0x05, ...le32(DATA)], 0x1234 + 1],
    ["lock xchg [mem], eax", [0xf0, 0x87, 0x05, ...le32(DATA)], 5],
    ["lock bts dword [mem], 0", [0xf0, 0x0f, 0xba, 0x2d, ...le32(DATA), 0], 0x1235],
  ])("runs %s", (_name, code, expected) => {
    const machine = flatMachine();
    machine.write32(DATA, 0x1234);
    machine.cpu.regs[EAX] = 5;
    machine.load(CODE, [...code, 0xf4]);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(machine.read32(DATA)).toBe(expected);
  });
});

describe("MOV to and from control and debug registers", () => {
  it("treats any mod field as a register operand: no displacement is fetched", () => {
    const machine = flatMachine();
    // 0F 20 40 = mov eax, cr0 with mod 01 (would be [eax+disp8] elsewhere); then hlt.
    machine.load(CODE, [0x0f, 0x20, 0x40, 0xf4]);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(machine.cpu.eip).toBe(CODE + 4);
    expect(machine.cpu.regs[EAX]).toBe(machine.cpu.cr0);
  });

  it("raises #UD for CR1 even at ring 3 (before the #GP for privilege)", () => {
    const machine = flatMachine();
    machine.cpu.cpl = 3;
    machine.cpu.updateModeCaches();
    machine.load(CODE, [0x0f, 0x20, 0xc8]); // mov eax, cr1
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(machine.cpu.exitVector).toBe(6);
  });

  it("raises #GP for CR0 at ring 3", () => {
    const machine = flatMachine();
    machine.cpu.cpl = 3;
    machine.cpu.updateModeCaches();
    machine.load(CODE, [0x0f, 0x20, 0xc0]); // mov eax, cr0
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(machine.cpu.exitVector).toBe(13);
  });
});

describe("NOP Ev (0F 1F /0)", () => {
  it("is a multi-byte NOP on the Pentium Pro, memory operand decoded but not touched", () => {
    const machine = flatMachine();
    machine.load(CODE, [0x0f, 0x1f, 0x44, 0x00, 0x00, 0xf4]); // nop dword [eax+eax+0]; hlt
    machine.cpu.regs[EAX] = 0x7fffffff; // an address that would fault if it were read
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(machine.cpu.eip).toBe(CODE + 6);
    expect(machine.bus.events).toEqual([]);
  });

  it("is #UD on the 80386", () => {
    const machine = new Machine("80386");
    machine.enterFlatProtectedMode();
    machine.cpu.exceptionExitBitmap = 1 << 6;
    machine.load(CODE, [0x0f, 0x1f, 0xc0]);
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(machine.cpu.exitVector).toBe(6);
  });
});
