/**
 * Debug-register breakpoints (SDM Vol. 3 ch. 17): instruction breakpoints as faults with
 * the resume flag, data and I/O breakpoints as traps with their lengths, DR6 status bits,
 * DR7 enables and general detect, single-stepping over POPF / IRET / MOV SS, and compiled
 * code giving way to all of them.
 */
import { describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, DATA, HANDLERS, Machine, STACK_TOP, describeExit, le32 } from "./machine.js";

const { EAX, EBX, ECX, EDX } = registers;
const FLAG_TF = 0x100;
const FLAG_RF = 0x10000;
const DR6_BS = 0x4000;
const DR6_BD = 0x2000;

/** DR7 value enabling breakpoint `n` locally with an R/W type and a LEN encoding. */
function dr7For(n: number, rw: number, len: number): number {
  return (1 << (n * 2)) | (rw << (16 + n * 4)) | (len << (18 + n * 4));
}

const EXECUTE = 0;
const WRITE = 1;
const IO = 2;
const READ_WRITE = 3;
const LEN = { 1: 0, 2: 1, 8: 2, 4: 3 } as const;

/** Flat protected mode; #DB ends run() as RunExit.Exception so the state can be inspected. */
function debugMachine(): Machine {
  const machine = new Machine();
  machine.enterFlatProtectedMode();
  machine.cpu.exceptionExitBitmap = 1 << 1;
  return machine;
}

function expectExit(machine: Machine, exit: RunExit, expected: RunExit): void {
  expect(describeExit(machine.cpu, exit)).toBe(describeExit(machine.cpu, expected));
}

describe("instruction breakpoints", () => {
  it("fault before the instruction at the breakpoint's linear address, with DR6.B0", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0x40, 0x40, 0x40, 0xf4]); // inc eax ×3; hlt
    cpu.dr[0] = CODE + 2;
    cpu.dr[7] = 0x400 | dr7For(0, EXECUTE, LEN[1]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitVector).toBe(1);
    expect(cpu.eip).toBe(CODE + 2); // a fault: the instruction has not run
    expect(cpu.regs[EAX]).toBe(2);
    expect(cpu.dr[6]! & 0xf).toBe(1);
    expect(cpu.dr[6]! & DR6_BS).toBe(0);
  });

  it("is ignored once while RF is set, then hits again", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0x40, 0xeb, 0xfd]); // L: inc eax; jmp L
    cpu.dr[1] = CODE;
    cpu.dr[7] = 0x400 | dr7For(1, EXECUTE, LEN[1]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.regs[EAX]).toBe(0);
    expect(cpu.dr[6]! & 0xf).toBe(2);
    // What a debugger does: set RF and resume. The INC runs once, RF clears, the loop
    // comes back to the breakpoint.
    cpu.setFlags(cpu.getFlags() | FLAG_RF);
    expectExit(machine, cpu.run(100), RunExit.Exception);
    expect(cpu.regs[EAX]).toBe(1);
    expect(cpu.eip).toBe(CODE);
    expect(cpu.getFlags() & FLAG_RF).toBe(0);
  });

  it("ignores breakpoints whose L and G bits are clear, or whose address differs", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0x40, 0x40, 0xf4]);
    cpu.dr[0] = CODE + 1;
    cpu.dr[1] = CODE + 0x100;
    cpu.dr[7] = 0x400 | (EXECUTE << 16) | dr7For(1, EXECUTE, LEN[1]); // DR0 type set but not enabled
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(2);
    // G0 enables it as well as L0.
    cpu.dr[7] = 0x400 | (1 << 1);
    cpu.regs[EAX] = 0;
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 1);
  });

  it("is delivered to a #DB handler with RF clear in the pushed EFLAGS; the handler sets RF to restart the instruction", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    const count = DATA + 0x100;
    machine.setGate(1, HANDLERS);
    machine.load(HANDLERS, [
      0xff, 0x05, ...le32(count), //             inc dword [count]
      0x8b, 0x0c, 0x24, //                       mov ecx, [esp]        ; pushed EIP
      0x8b, 0x54, 0x24, 0x08, //                 mov edx, [esp+8]      ; pushed EFLAGS
      0x83, 0x3d, ...le32(count), 0x03, //       cmp dword [count], 3
      0x72, 0x08, //                             jb .return            ; the first two times: no RF
      0x81, 0x4c, 0x24, 0x08, ...le32(FLAG_RF), // or dword [esp+8], RF
      0xcf, //                                   .return: iretd
    ]);
    machine.load(CODE, [0x90, 0x40, 0xf4]); // nop; inc eax (breakpoint); hlt
    cpu.dr[0] = CODE + 1;
    cpu.dr[7] = 0x400 | dr7For(0, EXECUTE, LEN[1]);
    expectExit(machine, machine.runAt(CODE, 200), RunExit.Halt);
    expect(machine.read32(count)).toBe(3); // without RF the restarted INC hit again
    expect(cpu.regs[ECX]).toBe(CODE + 1);
    expect(cpu.regs[EDX]! & FLAG_RF).toBe(0);
    expect(cpu.regs[EAX]).toBe(1); // executed exactly once
    expect(cpu.regs[registers.ESP]).toBe(STACK_TOP);
  });
});

describe("data breakpoints", () => {
  it("trap after a write that overlaps a 4-byte write breakpoint, not after reads", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [
      0xa1, ...le32(DATA + 4), //       mov eax, [DATA+4]     ; a read: no hit
      0x88, 0x1d, ...le32(DATA + 7), // mov [DATA+7], bl      ; last byte of the range
      0x40, //                          inc eax
      0xf4,
    ]);
    cpu.regs[EBX] = 0x5a;
    cpu.dr[1] = DATA + 5; // LEN 4 ignores the low two bits: DATA+4 … DATA+7
    cpu.dr[7] = 0x400 | dr7For(1, WRITE, LEN[4]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 11); // a trap: after the MOV
    expect(machine.ram[DATA + 7]).toBe(0x5a);
    expect(cpu.dr[6]! & 0xf).toBe(2);
    expect(cpu.regs[EAX]).toBe(0);
    expectExit(machine, cpu.run(10), RunExit.Halt);
  });

  it("match reads too with R/W = 11, and honour lengths 1, 2 and 8", () => {
    const cases = [
      { len: 1, address: DATA + 0x13, hit: DATA + 0x13, miss: DATA + 0x12 },
      { len: 2, address: DATA + 0x11, hit: DATA + 0x10, miss: DATA + 0x12 },
      { len: 8, address: DATA + 0x25, hit: DATA + 0x27, miss: DATA + 0x28 },
    ] as const;
    for (const { len, address, hit, miss } of cases) {
      const machine = debugMachine();
      const { cpu } = machine;
      cpu.dr[3] = address;
      cpu.dr[7] = 0x400 | dr7For(3, READ_WRITE, LEN[len]);
      // mov al, [miss]; mov al, [hit]; hlt
      machine.load(CODE, [0xa0, ...le32(miss), 0xa0, ...le32(hit), 0xf4]);
      expectExit(machine, machine.runAt(CODE), RunExit.Exception);
      expect(cpu.eip, `length ${len}`).toBe(CODE + 10);
      expect(cpu.dr[6]! & 0xf).toBe(8);
    }
  });

  it("catches a word access that only starts before the range, and one crossing a page", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    cpu.dr[0] = 0x9000; // first byte of a page
    cpu.dr[7] = 0x400 | dr7For(0, READ_WRITE, LEN[1]);
    machine.load(CODE, [0x66, 0xa1, ...le32(0x8fff), 0xf4]); // mov ax, [0x8fff]: bytes 0x8FFF and 0x9000
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 6);
  });

  it("stop a REP MOVSB after the iteration that wrote the watched byte", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0xfc, 0xf3, 0xa4, 0xf4]); // cld; rep movsb; hlt
    cpu.regs[registers.ESI] = 0x40000;
    cpu.regs[registers.EDI] = 0x50000;
    cpu.regs[ECX] = 100;
    cpu.dr[2] = 0x50000 + 30;
    cpu.dr[7] = 0x400 | dr7For(2, WRITE, LEN[1]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.regs[ECX]).toBe(100 - 31); // 31 bytes copied, the last one hit
    expect(cpu.eip).toBe(CODE + 1); // still on the REP MOVSB: it continues when resumed
    expect(cpu.dr[6]! & 0xf).toBe(4);
    expectExit(machine, cpu.run(1000), RunExit.Halt);
    expect(cpu.regs[ECX]).toBe(0);
  });

  it("report a write and a single step together in one #DB (B0 and BS)", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0xa3, ...le32(DATA), 0xf4]); // mov [DATA], eax
    cpu.dr[0] = DATA;
    cpu.dr[7] = 0x400 | dr7For(0, WRITE, LEN[4]);
    cpu.setFlags(cpu.getFlags() | FLAG_TF);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.dr[6]! & (0xf | DR6_BS)).toBe(1 | DR6_BS);
  });

  it("stop compiled code: a breakpoint set while a hot loop is compiled hits in the right iteration", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    // mov ecx, 2000; L: mov [DATA + ecx*4], ecx; loop L; hlt
    machine.load(CODE, [0xb9, ...le32(2000), 0x89, 0x0c, 0x8d, ...le32(DATA), 0xe2, 0xf7, 0xf4]);
    expectExit(machine, machine.runAt(CODE, 100_000), RunExit.Halt);
    expect(cpu.compiledBlockCount).toBeGreaterThan(0);
    machine.ram.fill(0, DATA, DATA + 0x2000);

    // Written straight into the registers, as an accelerator's register API does.
    cpu.exceptionExitBitmap = 1 << 1;
    cpu.dr[0] = DATA + 700 * 4;
    cpu.dr[7] = 0x400 | dr7For(0, WRITE, LEN[4]);
    expectExit(machine, machine.runAt(CODE, 100_000), RunExit.Exception);
    expect(cpu.regs[ECX]).toBe(700);
    expect(cpu.eip).toBe(CODE + 12); // at the LOOP
    expect(machine.read32(DATA + 700 * 4)).toBe(700);
    expect(machine.read32(DATA + 699 * 4)).toBe(0); // not yet written

    // An instruction breakpoint on the LOOP: each resume (with RF) runs one more iteration.
    cpu.dr[7] = 0x400 | dr7For(0, EXECUTE, LEN[1]);
    cpu.dr[0] = CODE + 12;
    cpu.setFlags(cpu.getFlags() | FLAG_RF);
    expectExit(machine, cpu.run(100_000), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 12);
    expect(cpu.regs[ECX]).toBe(699);

    // Cleared breakpoints: the loop runs to the end again.
    cpu.dr[7] = 0x400;
    expectExit(machine, cpu.run(100_000), RunExit.Halt);
    expect(cpu.regs[ECX]).toBe(0);
  });

  it("leaves an access on another page, or a disabled breakpoint, alone", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0xa3, ...le32(DATA + 8), 0xa3, ...le32(DATA + 0x1000), 0xf4]);
    cpu.dr[0] = DATA;
    cpu.dr[1] = DATA + 0x1000;
    cpu.dr[7] = 0x400 | dr7For(0, WRITE, LEN[4]) | (WRITE << 20) | (3 << 22); // DR1 typed but disabled
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(machine.read32(DATA + 0x1000)).toBe(0);
  });
});

describe("I/O breakpoints", () => {
  it("trap after an OUT to the port with CR4.DE set, and are ignored with CR4.DE clear", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0xe6, 0x80, 0xe6, 0xe9, 0x40, 0xf4]); // out 0x80, al; out 0xe9, al; inc eax; hlt
    cpu.dr[2] = 0xe9;
    cpu.dr[7] = 0x400 | dr7For(2, IO, LEN[1]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(1);

    cpu.writeCr4(cpu.cr4 | 8);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 4);
    expect(cpu.dr[6]! & 0xf).toBe(4);
    expect(machine.bus.events.filter((event) => event.kind === "writePort").map((event) => event.address)).toEqual([0x80, 0xe9, 0x80, 0xe9]);
  });

  it("match a word IN whose second byte is the watched port", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    cpu.writeCr4(8);
    machine.load(CODE, [0x66, 0xe5, 0x70, 0xf4]); // in ax, 0x70 (ports 0x70 and 0x71)
    cpu.dr[0] = 0x71;
    cpu.dr[7] = 0x400 | dr7For(0, IO, LEN[1]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 3);
  });
});

describe("debug register access", () => {
  it("raises #DB (a fault, DR6.BD) for MOV from a debug register while DR7.GD is set, and clears GD for the handler", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.setGate(1, HANDLERS);
    machine.load(HANDLERS, [
      0x0f, 0x21, 0xfb, //             mov ebx, dr7         ; allowed: GD is clear now
      0x8b, 0x0c, 0x24, //             mov ecx, [esp]       ; the faulting EIP
      0x8b, 0x54, 0x24, 0x08, //       mov edx, [esp+8]     ; pushed EFLAGS
      0xf4,
    ]);
    machine.load(CODE, [0x90, 0x0f, 0x21, 0xc0, 0xf4]); // nop; mov eax, dr0
    cpu.dr[7] = 0x400 | 0x2000;
    cpu.regs[EAX] = 0x1234;
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.eip).toBe(HANDLERS + 11);
    expect(cpu.regs[ECX]).toBe(CODE + 1);
    expect(cpu.regs[EAX]).toBe(0x1234); // the MOV did not run
    expect(cpu.dr[6]! & DR6_BD).toBe(DR6_BD);
    expect(cpu.regs[EBX]! & 0x2000).toBe(0);
    expect(cpu.regs[EDX]! & FLAG_RF).toBe(FLAG_RF); // a fault other than an instruction breakpoint
  });

  it("treats DR4/DR5 as DR6/DR7 with CR4.DE clear and raises #UD with it set", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    cpu.exceptionExitBitmap = 1 << 6;
    machine.load(CODE, [0x0f, 0x21, 0xe8, 0xf4]); // mov eax, dr5
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(0x400);
    cpu.writeCr4(8);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitVector).toBe(6);
  });

  it("takes breakpoints written by MOV DR7 from the next instruction", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [
      0xb8, ...le32(DATA), //            mov eax, DATA
      0x0f, 0x23, 0xc0, //               mov dr0, eax
      0xb8, ...le32(dr7For(0, WRITE, LEN[1])), // mov eax, L0 | write
      0x0f, 0x23, 0xf8, //               mov dr7, eax
      0x88, 0x1d, ...le32(DATA), //      mov [DATA], bl
      0xf4,
    ]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 22);
    expect(cpu.dr[7]).toBe(0x400 | dr7For(0, WRITE, LEN[1]));
  });

  it("reports DE (CPUID.1:EDX bit 2) and no FPU (bit 0)", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0xf4]); // mov eax, 1; cpuid
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[EDX]! & 4).toBe(4);
    expect(cpu.regs[EDX]! & 1).toBe(0);
  });
});

describe("faults and the resume flag", () => {
  it("push EFLAGS with RF set for a fault (#UD) in protected mode; IRET restores it and the next instruction clears it", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.setGate(6, HANDLERS);
    machine.load(HANDLERS, [
      0x8b, 0x54, 0x24, 0x08, //  mov edx, [esp+8]
      0x83, 0x04, 0x24, 0x02, //  add dword [esp], 2
      0xcf, //                    iretd
    ]);
    machine.load(CODE, [0x0f, 0x0b, 0x40, 0x9c, 0x5b, 0xf4]); // ud2; inc eax; pushfd; pop ebx; hlt
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[EDX]! & FLAG_RF).toBe(FLAG_RF);
    expect(cpu.getFlags() & FLAG_RF).toBe(0);
    expect(cpu.regs[EBX]! & FLAG_RF).toBe(0);
  });

  it("push RF clear for a software interrupt", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.setGate(0x30, HANDLERS);
    machine.load(HANDLERS, [0x8b, 0x54, 0x24, 0x08, 0xf4]); // mov edx, [esp+8]; hlt
    machine.load(CODE, [0xcd, 0x30]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[EDX]! & FLAG_RF).toBe(0);
  });
});

describe("single-step traps", () => {
  it("start after the instruction following the POPF that sets TF, and stop after the POPF that clears it", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [
      0x9c, //                               pushfd
      0x81, 0x0c, 0x24, ...le32(FLAG_TF), // or dword [esp], TF
      0x9d, //                               popfd            ; TF = 1 from here
      0x40, //                               inc eax          ; trap after this one
      0x9c, //                               pushfd
      0x81, 0x24, 0x24, ...le32(~FLAG_TF), // and dword [esp], ~TF
      0x9d, //                               popfd            ; clears TF: trap after it, none later
      0x40, //                               inc eax
      0xf4,
    ]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 10);
    expect(cpu.regs[EAX]).toBe(1);
    expect(cpu.dr[6]! & DR6_BS).toBe(DR6_BS);
    for (const eip of [CODE + 11, CODE + 18]) {
      expectExit(machine, cpu.run(100), RunExit.Exception);
      expect(cpu.eip).toBe(eip);
    }
    expectExit(machine, cpu.run(100), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 19); // after the POPF that cleared TF
    expectExit(machine, cpu.run(100), RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(2);
  });

  it("start after the first instruction an IRET with TF in the image returns to", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [
      0x68, ...le32(0x202 | FLAG_TF), // push EFLAGS with TF
      0x6a, 0x08, //                    push 0x08
      0x68, ...le32(CODE + 0x40), //    push CODE+0x40
      0xcf, //                          iretd
    ]);
    machine.load(CODE + 0x40, [0x40, 0x40, 0xf4]);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 0x41);
    expect(cpu.regs[EAX]).toBe(1);
  });

  it("skip the instruction after MOV SS: the trap comes after the next one", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0x8c, 0xd3, 0x8e, 0xd3, 0x40, 0x40, 0xf4]); // mov bx, ss; mov ss, bx; inc eax; inc eax
    cpu.setFlags(cpu.getFlags() | FLAG_TF);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 2); // after MOV BX, SS
    expectExit(machine, cpu.run(100), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 5); // MOV SS and the INC after it, as one step
    expect(cpu.regs[EAX]).toBe(1);
  });

  it("skip the instruction after POP SS the same way", () => {
    const machine = debugMachine();
    const { cpu } = machine;
    machine.load(CODE, [0x16, 0x17, 0x40, 0x40, 0xf4]); // push ss; pop ss; inc eax; inc eax
    cpu.setFlags(cpu.getFlags() | FLAG_TF);
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 1);
    expectExit(machine, cpu.run(100), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 3); // POP SS and the INC after it
    expectExit(machine, cpu.run(100), RunExit.Exception);
    expect(cpu.eip).toBe(CODE + 4);
    expect(cpu.regs[EAX]).toBe(2);
  });
});
