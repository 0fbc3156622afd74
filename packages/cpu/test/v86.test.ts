/**
 * Virtual-8086 mode (SDM Vol. 3 ch. 20): entering it with IRETD from ring 0, leaving it
 * through interrupts and exceptions to a ring-0 handler (segment registers pushed and
 * nulled, the TSS's ring-0 stack), IOPL-sensitive instructions trapping to the monitor,
 * and the monitor returning with IRETD.
 */
import { describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, GDT_BASE, HANDLERS, Machine, SELECTOR, describeExit, le32, segmentDescriptor } from "./machine.js";

const { EAX, EBX, EDI, CS, DS, ES, FS, GS, SS } = registers;
const FLAG_VM = 0x20000;
const FLAG_IF = 0x200;
const TSS = 0x6000;
const RING0_STACK = 0x80000;
/** V86 segments: code at 0500:0000 (linear 0x5000), stack 0600:1000, DS 0700, ES 0800, FS 0900, GS 0A00. */
const V86 = { cs: 0x500, ss: 0x600, sp: 0x1000, ds: 0x700, es: 0x800, fs: 0x900, gs: 0xa00 } as const;
const COUNT = 0x8000;

/** Flat ring 0 with a TSS; CODE enters V86 at 0500:`ip` with an IRETD frame and the given IOPL. */
function v86Machine({ iopl = 0, ip = 0, interruptsOn = false } = {}): Machine {
  const machine = new Machine();
  machine.enterFlatProtectedMode();
  const { cpu } = machine;
  const [low, high] = segmentDescriptor(TSS, 0x67, 0x89, 0);
  machine.write32(GDT_BASE + 0x30, low);
  machine.write32(GDT_BASE + 0x34, high);
  cpu.gdtLimit = 0x37;
  machine.write32(TSS + 4, RING0_STACK);
  machine.write32(TSS + 8, SELECTOR.data32);
  const eflags = FLAG_VM | (iopl << 12) | (interruptsOn ? FLAG_IF : 0) | 2;
  const frame = [V86.gs, V86.fs, V86.ds, V86.es, V86.ss, V86.sp, eflags, V86.cs, ip];
  machine.load(CODE, [
    0x66, 0xb8, 0x30, 0x00, // mov ax, 0x30
    0x0f, 0x00, 0xd8, //       ltr ax
    ...frame.flatMap((value) => [0x68, ...le32(value)]), // push each, GS first
    0xcf, //                   iretd
  ]);
  return machine;
}

const v86Linear = (ip: number) => V86.cs * 16 + ip;

function expectExit(machine: Machine, exit: RunExit, expected: RunExit): void {
  expect(describeExit(machine.cpu, exit)).toBe(describeExit(machine.cpu, expected));
}

describe("entering virtual-8086 mode", () => {
  it("IRETD from ring 0 with VM in the image loads every segment the real-mode way at CPL 3", () => {
    const machine = v86Machine();
    const { cpu } = machine;
    machine.load(v86Linear(0), [0xa1, 0x10, 0x00, 0x8c, 0xdb]); // mov ax, [0x10]; mov bx, ds
    machine.view.setUint16(V86.ds * 16 + 0x10, 0xbeef, true);
    expectExit(machine, machine.runAt(CODE, 14), RunExit.Budget); // MOV, LTR, 9 pushes, IRETD, 2 V86 instructions
    expect(cpu.v86Mode).toBe(true);
    expect(cpu.cpl).toBe(3);
    expect(cpu.regs16[0]).toBe(0xbeef);
    expect(cpu.regs16[6]).toBe(V86.ds);
    expect(cpu.segBase[SS]).toBe(V86.ss * 16);
    expect(cpu.segBase[GS]).toBe(V86.gs * 16);
    expect(cpu.codeSize32).toBe(0);
    expect(cpu.stackSize32).toBe(0);
    expect(cpu.regs[registers.ESP]).toBe(V86.sp);
  });
});

describe("VME", () => {
  it("is absent: MOV CR4 with VME or PVI raises #GP(0)", () => {
    for (const bit of [1, 2]) {
      const machine = new Machine();
      machine.enterFlatProtectedMode();
      machine.cpu.exceptionExitBitmap = 1 << 13;
      machine.load(CODE, [0xb8, ...le32(bit), 0x0f, 0x22, 0xe0]); // mov eax, bit; mov cr4, eax
      expectExit(machine, machine.runAt(CODE), RunExit.Exception);
      expect(machine.cpu.eip).toBe(CODE + 5);
      expect(machine.cpu.cr4).toBe(0);
    }
  });
});

describe("leaving virtual-8086 mode through the IDT", () => {
  it("delivers #GP(0) from CLI (IOPL 0) to the ring-0 monitor with ES, DS, FS, GS on the stack and nulled", () => {
    const machine = v86Machine();
    const { cpu } = machine;
    machine.setGate(13, HANDLERS);
    machine.load(HANDLERS, [0x89, 0xe7, 0x8c, 0xdb, 0xf4]); // mov edi, esp; mov ebx, ds; hlt
    machine.load(v86Linear(0), [0x40, 0xfa]); // inc ax; cli
    cpu.regs[EBX] = -1;
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.v86Mode).toBe(false);
    expect(cpu.cpl).toBe(0);
    expect(cpu.regs[EDI]).toBe(RING0_STACK - 40);
    const frame = Array.from({ length: 10 }, (_, i) => machine.read32(RING0_STACK - 40 + i * 4));
    expect(frame[0]).toBe(0); // error code
    expect(frame[1]).toBe(1); // IP of the CLI
    expect(frame[2]).toBe(V86.cs);
    expect(frame[3]! & FLAG_VM).toBe(FLAG_VM);
    expect(frame.slice(4)).toEqual([V86.sp, V86.ss, V86.es, V86.ds, V86.fs, V86.gs]);
    expect(cpu.regs[EBX]! & 0xffff).toBe(0);
    for (const segment of [ES, DS, FS, GS]) expect(cpu.segSelector[segment]).toBe(0);
    expect(cpu.segSelector[CS]).toBe(SELECTOR.code32);
    expect(cpu.segSelector[SS]).toBe(SELECTOR.data32);
  });

  it("lets a monitor skip each sensitive instruction and IRETD back into V86 mode", () => {
    const machine = v86Machine();
    const { cpu } = machine;
    machine.setGate(13, HANDLERS);
    machine.load(HANDLERS, [
      0x36, 0xff, 0x05, ...le32(COUNT), //       inc dword [ss:COUNT]
      0x36, 0x83, 0x3d, ...le32(COUNT), 0x03, // cmp dword [ss:COUNT], 3
      0x74, 0x07, //                             je .stop
      0x83, 0xc4, 0x04, //                       add esp, 4          ; drop the error code
      0xff, 0x04, 0x24, //                       inc dword [esp]     ; step over the 1-byte instruction
      0xcf, //                                   iretd               ; back to V86
      0x89, 0xe7, //                             .stop: mov edi, esp
      0xf4, //                                   hlt
    ]);
    machine.load(v86Linear(0), [
      0xb8, 0x34, 0x12, // mov ax, 0x1234
      0xfa, //             cli   (#GP 1)
      0xa3, 0x20, 0x00, // mov [0x20], ax   ; DS is V86's again after the IRETD
      0x9c, //             pushf (#GP 2)
      0xf4, //             hlt   (#GP 3: CPL 3)
    ]);
    expectExit(machine, machine.runAt(CODE, 200), RunExit.Halt);
    expect(machine.read32(COUNT)).toBe(3);
    expect(machine.view.getUint16(V86.ds * 16 + 0x20, true)).toBe(0x1234);
    expect(machine.read32(cpu.regs[EDI]! + 4)).toBe(8); // the HLT's IP
    expect(cpu.regs[registers.ESP]).toBe(RING0_STACK - 40);
  });

  it("raises #GP(0) for PUSHF, POPF, INT n, IRET, CLI and STI with IOPL < 3", () => {
    for (const code of [[0x9c], [0x9d], [0xcd, 0x21], [0xcf], [0xfa], [0xfb]]) {
      const machine = v86Machine({ iopl: 2 });
      const { cpu } = machine;
      cpu.exceptionExitBitmap = 1 << 13;
      machine.load(v86Linear(0), code);
      expectExit(machine, machine.runAt(CODE), RunExit.Exception);
      expect(cpu.exitErrorCode, code.join(" ")).toBe(0);
      expect(cpu.eip).toBe(0);
      expect(cpu.v86Mode).toBe(true);
    }
  });

  it("delivers INT n with IOPL 3 through a DPL-3 gate, pushing the V86 frame without an error code", () => {
    const machine = v86Machine({ iopl: 3 });
    const { cpu } = machine;
    machine.setGate(0x30, HANDLERS, { dpl: 3 });
    machine.load(HANDLERS, [0x89, 0xe7, 0xf4]); // mov edi, esp; hlt
    machine.load(v86Linear(0), [0x9c, 0x58, 0xcd, 0x30]); // pushf; pop ax; int 0x30  (allowed at IOPL 3)
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[EDI]).toBe(RING0_STACK - 36);
    expect(machine.read32(RING0_STACK - 36)).toBe(4); // IP after the INT
    expect(machine.read32(RING0_STACK - 28) & (FLAG_VM | 0x3000)).toBe(FLAG_VM | 0x3000);
    expect(cpu.regs[EAX]! & 0x3000).toBe(0x3000); // PUSHF ran and showed IOPL 3
  });

  it("delivers INT3 without the IOPL check (it is not IOPL-sensitive)", () => {
    const machine = v86Machine({ iopl: 0 });
    const { cpu } = machine;
    machine.setGate(3, HANDLERS, { dpl: 3 });
    machine.load(HANDLERS, [0xf4]);
    machine.load(v86Linear(0), [0xcc]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.eip).toBe(HANDLERS + 1);
    expect(machine.read32(RING0_STACK - 36)).toBe(1);
  });

  it("delivers an external interrupt from V86 mode and resumes there after the handler's IRETD", () => {
    const machine = v86Machine({ interruptsOn: true });
    const { cpu } = machine;
    machine.setGate(0x20, HANDLERS);
    machine.load(HANDLERS, [0x36, 0xff, 0x05, ...le32(COUNT), 0xcf]); // inc dword [ss:COUNT]; iretd
    machine.load(v86Linear(0), [0x40, 0xeb, 0xfd]); // L: inc ax; jmp L
    expectExit(machine, machine.runAt(CODE, 30), RunExit.Budget);
    expect(cpu.v86Mode).toBe(true);
    cpu.raiseInterrupt(0x20);
    expectExit(machine, cpu.run(20), RunExit.Budget);
    expect(machine.read32(COUNT)).toBe(1);
    expect(cpu.v86Mode).toBe(true);
    expect(cpu.segSelector[DS]).toBe(V86.ds);
    expect(cpu.regs[registers.ESP]).toBe(V86.sp);
  });

  it("refuses a handler in a ring-3 code segment with #GP(selector)", () => {
    const machine = v86Machine({ iopl: 3 });
    const { cpu } = machine;
    machine.setGate(0x30, HANDLERS, { dpl: 3, selector: SELECTOR.code32User });
    machine.setGate(13, HANDLERS + 0x10);
    machine.load(HANDLERS + 0x10, [0x58, 0xf4]); // pop eax (error code); hlt
    machine.load(v86Linear(0), [0xcd, 0x30]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(SELECTOR.code32User & ~3);
  });
});
