/**
 * Hardware task switching (SDM Vol. 3 ch. 7): JMP and CALL to a TSS or a task gate, IRET
 * with NT back along the link, task gates in the IDT (a double fault handled in its own
 * task), busy bits, NT, CR0.TS, CR3 and LDT loads, and 16-bit TSSs.
 */
import { describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, GDT_BASE, IDT_BASE, Machine, SELECTOR, STACK_TOP, describeExit, le32, segmentDescriptor } from "./machine.js";

const { EAX, EBX, ECX, ESP, ESI, DS, SS, CS, LDTR, TR } = registers;
const FLAG_NT = 0x4000;
const CR0_TS = 8;

const TSS_A = 0x6000; // the task that runs first
const TSS_B = 0x6100;
const TSS_C = 0x6200; // the double-fault task
const SEL_A = 0x30;
const SEL_B = 0x38;
const SEL_GATE_B = 0x40; // a task gate in the GDT naming TSS B
const SEL_C = 0x48;
const SEL_LDT = 0x50;
const TASK_B_CODE = 0x2400;
const TASK_C_CODE = 0x2500;

function setGdt(machine: Machine, selector: number, [low, high]: readonly [number, number]): void {
  machine.write32(GDT_BASE + (selector & ~7), low);
  machine.write32(GDT_BASE + (selector & ~7) + 4, high);
  machine.cpu.gdtLimit = Math.max(machine.cpu.gdtLimit, (selector & ~7) + 7);
}

function tssType(machine: Machine, selector: number): number {
  return (machine.read32(GDT_BASE + selector + 4) >>> 8) & 0xf;
}

/** A 32-bit TSS for a flat ring-0 task starting at `eip` with stack `esp`. */
function writeTss32(machine: Machine, base: number, eip: number, esp: number, { eax = 0, cr3 = 0, ldt = 0 } = {}): void {
  machine.ram.fill(0, base, base + 0x68);
  machine.write32(base + 0x1c, cr3);
  machine.write32(base + 0x20, eip);
  machine.write32(base + 0x24, 0x2);
  machine.write32(base + 0x28, eax);
  machine.write32(base + 0x38, esp);
  for (const [offset, selector] of [[0x48, SELECTOR.data32], [0x4c, SELECTOR.code32], [0x50, SELECTOR.data32], [0x54, SELECTOR.data32], [0x58, SELECTOR.data32], [0x5c, SELECTOR.data32]] as const) {
    machine.write32(base + offset, selector);
  }
  machine.write32(base + 0x60, ldt);
  machine.write32(base + 0x64, 0x00680000); // I/O map base past the limit
}

/** Flat protected mode running as task A (TR loaded, busy), with task B described and available. */
function taskMachine(): Machine {
  const machine = new Machine();
  machine.enterFlatProtectedMode();
  const { cpu } = machine;
  writeTss32(machine, TSS_A, 0, 0);
  writeTss32(machine, TSS_B, TASK_B_CODE, 0x60000, { eax: 0xb });
  writeTss32(machine, TSS_C, TASK_C_CODE, 0x50000);
  setGdt(machine, SEL_A, segmentDescriptor(TSS_A, 0x67, 0x8b, 0)); // busy: the running task
  setGdt(machine, SEL_B, segmentDescriptor(TSS_B, 0x67, 0x89, 0));
  setGdt(machine, SEL_GATE_B, [SEL_B << 16, 0x8500]); // task gate, P, DPL 0
  setGdt(machine, SEL_C, segmentDescriptor(TSS_C, 0x67, 0x89, 0));
  const [low, high] = segmentDescriptor(TSS_A, 0x67, 0x8b, 0);
  cpu.setSegmentCache(TR, SEL_A, TSS_A, 0x67, (high >>> 8) & 0xff);
  void low;
  return machine;
}

function expectExit(machine: Machine, exit: RunExit, expected: RunExit): void {
  expect(describeExit(machine.cpu, exit)).toBe(describeExit(machine.cpu, expected));
}

describe("JMP to a TSS", () => {
  it("saves the old task, loads the new one, moves the busy bit and sets CR0.TS", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    machine.load(CODE, [0xb8, ...le32(0xa), 0xbb, ...le32(0x1234), 0xea, ...le32(0), SEL_B, 0x00]);
    machine.load(TASK_B_CODE, [0xf4]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.segSelector[TR]).toBe(SEL_B);
    expect(cpu.segBase[TR]).toBe(TSS_B);
    expect(cpu.eip).toBe(TASK_B_CODE + 1);
    expect(cpu.regs[EAX]).toBe(0xb);
    expect(cpu.regs[ESP]).toBe(0x60000);
    expect(cpu.regs[EBX]).toBe(0); // B's EBX, not A's
    expect(cpu.cr0 & CR0_TS).toBe(CR0_TS);
    expect(cpu.getFlags() & FLAG_NT).toBe(0); // a JMP does not nest
    // Task A's state went to its TSS: EIP after the JMP, the registers.
    expect(machine.read32(TSS_A + 0x20)).toBe(CODE + 17);
    expect(machine.read32(TSS_A + 0x28)).toBe(0xa);
    expect(machine.read32(TSS_A + 0x34)).toBe(0x1234);
    expect(machine.read32(TSS_A + 0x38)).toBe(STACK_TOP);
    expect(machine.read32(TSS_A + 0x4c)).toBe(SELECTOR.code32);
    expect(tssType(machine, SEL_A)).toBe(0x9); // no longer busy
    expect(tssType(machine, SEL_B)).toBe(0xb);
    expect(machine.read32(TSS_B) & 0xffff).toBe(0); // no back link
  });

  it("raises #GP(selector) for a busy TSS and for a TSS whose DPL is below CPL", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    cpu.exceptionExitBitmap = 1 << 13;
    machine.load(CODE, [0xea, ...le32(0), SEL_A, 0x00]); // jmp to itself: busy
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitErrorCode).toBe(SEL_A);
    expect(cpu.segSelector[TR]).toBe(SEL_A);
    machine.load(CODE, [0xea, ...le32(0), SEL_B | 3, 0x00]); // RPL 3 > DPL 0
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitErrorCode).toBe(SEL_B);
    expect(tssType(machine, SEL_B)).toBe(0x9);
  });

  it("raises #TS(selector) for a TSS whose limit is too small, before saving anything", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    setGdt(machine, SEL_B, segmentDescriptor(TSS_B, 0x60, 0x89, 0));
    cpu.exceptionExitBitmap = 1 << 10;
    machine.load(CODE, [0xea, ...le32(0), SEL_B, 0x00]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitErrorCode).toBe(SEL_B);
    expect(machine.read32(TSS_A + 0x20)).toBe(0);
  });
});

describe("CALL to a task gate and IRET back", () => {
  it("nests the new task (NT, back link, both busy) and IRET returns to the caller's saved state", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    machine.load(CODE, [
      0xb8, ...le32(0xa), //            mov eax, 0xa
      0x9a, ...le32(0), SEL_GATE_B, 0x00, // call SEL_GATE_B:0
      0xbb, ...le32(0x600d), //         mov ebx, 0x600d
      0xf4,
    ]);
    machine.load(TASK_B_CODE, [
      0x9c, //                          pushfd
      0x5e, //                          pop esi              ; EFLAGS in task B
      0x89, 0x35, ...le32(0x8000), //   mov [0x8000], esi
      0xb8, ...le32(0x77), //           mov eax, 0x77
      0xcf, //                          iretd                ; back to A (NT is set)
    ]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(machine.read32(0x8000) & FLAG_NT).toBe(FLAG_NT);
    expect(machine.read32(TSS_B) & 0xffff).toBe(SEL_A); // the back link
    expect(cpu.segSelector[TR]).toBe(SEL_A);
    expect(cpu.regs[EAX]).toBe(0xa); // A's registers came back from its TSS
    expect(cpu.regs[EBX]).toBe(0x600d);
    expect(cpu.regs[ESP]).toBe(STACK_TOP);
    expect(cpu.eip).toBe(CODE + 18);
    expect(cpu.getFlags() & FLAG_NT).toBe(0);
    expect(tssType(machine, SEL_A)).toBe(0xb);
    expect(tssType(machine, SEL_B)).toBe(0x9); // IRET freed it
    // B's state was saved by the IRET: EIP after it, EAX, and NT cleared in its EFLAGS image.
    expect(machine.read32(TSS_B + 0x20)).toBe(TASK_B_CODE + 14);
    expect(machine.read32(TSS_B + 0x28)).toBe(0x77);
    expect(machine.read32(TSS_B + 0x24) & FLAG_NT).toBe(0);
  });

  it("raises #TS(link) for IRET with NT when the back link is not a busy TSS", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    machine.write32(TSS_A, SEL_B); // B is available, not busy
    cpu.setFlags(cpu.getFlags() | FLAG_NT);
    cpu.exceptionExitBitmap = 1 << 10;
    machine.load(CODE, [0xcf]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitVector).toBe(10);
    expect(cpu.exitErrorCode).toBe(SEL_B);
  });
});

describe("task gates in the IDT", () => {
  it("handle a double fault in its own task, with the error code on the new task's stack", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    // IDT 8: task gate to C. #GP and #NP have no gates: #GP → #NP while delivering → #DF.
    machine.write32(IDT_BASE + 8 * 8, SEL_C << 16);
    machine.write32(IDT_BASE + 8 * 8 + 4, 0x8500);
    machine.load(CODE, [0x66, 0xb8, 0x40, 0x00, 0x8e, 0xd8]); // mov ax, 0x40 (the task gate); mov ds, ax → #GP
    machine.load(TASK_C_CODE, [0x58, 0xf4]); // pop eax (the error code); hlt
    cpu.regs[EAX] = -1;
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.segSelector[TR]).toBe(SEL_C);
    expect(cpu.regs[EAX]).toBe(0);
    expect(cpu.regs[ESP]).toBe(0x50000);
    expect(machine.read32(TSS_C) & 0xffff).toBe(SEL_A);
    expect(cpu.getFlags() & FLAG_NT).toBe(FLAG_NT);
    expect(machine.read32(TSS_A + 0x20)).toBe(CODE + 4); // the faulting MOV DS
    expect(cpu.segSelector[DS]).toBe(SELECTOR.data32);
  });

  it("switch tasks for INT n through a DPL-3 task gate", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    machine.write32(IDT_BASE + 0x40 * 8, SEL_B << 16);
    machine.write32(IDT_BASE + 0x40 * 8 + 4, 0x8500 | (3 << 13));
    machine.load(CODE, [0xcd, 0x40, 0xf4]);
    machine.load(TASK_B_CODE, [0xcf]); // iretd: back to A after the INT
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.eip).toBe(CODE + 3);
    expect(cpu.segSelector[TR]).toBe(SEL_A);
  });
});

describe("what the new task loads", () => {
  it("raises a #DB trap (DR6.BT) before the first instruction of a task whose TSS has the T bit", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    machine.write32(TSS_B + 0x64, 0x00680001);
    cpu.exceptionExitBitmap = 1 << 1;
    machine.load(CODE, [0xea, ...le32(0), SEL_B, 0x00]);
    machine.load(TASK_B_CODE, [0xf4]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitVector).toBe(1);
    expect(cpu.eip).toBe(TASK_B_CODE);
    expect(cpu.segSelector[TR]).toBe(SEL_B);
    expect(cpu.dr[6]! & 0x8000).toBe(0x8000);
    expectExit(machine, cpu.run(10), RunExit.Halt);
  });

  it("loads CR3 (with paging on) and the LDT of a 32-bit TSS, and clears the local breakpoint enables", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    // Two page directories, each mapping the first 4 MiB with one 4 MiB page.
    for (const directory of [0x10000, 0x11000]) machine.write32(directory, 0x83 | 0x4);
    cpu.writeCr4(0x10);
    cpu.writeCr3(0x10000);
    cpu.writeCr0(cpu.cr0 | 0x80000000);
    setGdt(machine, SEL_LDT, segmentDescriptor(0x7000, 0x17, 0x82, 0));
    writeTss32(machine, TSS_B, TASK_B_CODE, 0x60000, { cr3: 0x11000, ldt: SEL_LDT });
    cpu.dr[7] = 0x400 | 0x3; // L0 and G0
    machine.load(CODE, [0xea, ...le32(0), SEL_B, 0x00]);
    machine.load(TASK_B_CODE, [0xf4]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.cr3).toBe(0x11000);
    expect(cpu.segSelector[LDTR]).toBe(SEL_LDT);
    expect(cpu.segBase[LDTR]).toBe(0x7000);
    expect(cpu.dr[7]).toBe(0x400 | 0x2);
  });

  it("raises #TS(selector) in the new task when its LDT selector is not an LDT", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    writeTss32(machine, TSS_B, TASK_B_CODE, 0x60000, { ldt: SELECTOR.data32 });
    cpu.exceptionExitBitmap = 1 << 10;
    machine.load(CODE, [0xea, ...le32(0), SEL_B, 0x00]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitErrorCode).toBe(SELECTOR.data32);
    expect(cpu.segSelector[TR]).toBe(SEL_B); // the switch happened: the fault belongs to B
    expect(cpu.eip).toBe(TASK_B_CODE);
  });

  it("switches to and from a 16-bit TSS (word registers, no CR3)", () => {
    const machine = taskMachine();
    const { cpu } = machine;
    const tss16 = 0x6300;
    const SEL_16 = 0x58;
    setGdt(machine, SEL_16, segmentDescriptor(tss16, 0x2b, 0x81, 0)); // available 16-bit TSS
    machine.ram.fill(0, tss16, tss16 + 0x2c);
    const word = (offset: number, value: number) => machine.view.setUint16(tss16 + offset, value, true);
    word(0x0e, 0x2600); // IP
    word(0x10, 0x0002); // FLAGS
    word(0x14, 0x1234); // CX
    word(0x1a, 0x7000); // SP
    word(0x22, SELECTOR.data32); // ES
    word(0x24, SELECTOR.code16); // CS
    word(0x26, SELECTOR.data32); // SS
    word(0x28, SELECTOR.data32); // DS
    machine.load(CODE, [0x9a, ...le32(0), SEL_16, 0x00, 0xf4]); // call SEL_16:0; hlt
    machine.load(0x2600, [0x89, 0xce, 0xcf]); // (16-bit) mov si, cx; iret
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[ECX]).toBe(0); // A's ECX and ESI restored
    expect(cpu.regs[ESI]).toBe(0);
    expect(cpu.segSelector[TR]).toBe(SEL_A);
    expect(machine.view.getUint16(tss16 + 0x0e, true)).toBe(0x2603); // B saved: IP after IRET
    expect(machine.view.getUint16(tss16 + 0x1e, true)).toBe(0x1234); // SI
    expect(machine.view.getUint16(tss16, true)).toBe(SEL_A); // back link
    expect(cpu.segSelector[CS]).toBe(SELECTOR.code32);
    expect(cpu.segSelector[SS]).toBe(SELECTOR.data32);
  });
});
