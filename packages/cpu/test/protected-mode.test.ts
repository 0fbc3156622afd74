/**
 * 32-bit protected mode, which the SingleStepTests real-mode suites never reach: entering
 * it the way a boot loader does, 32-bit decoding and addressing, the operand-size prefix,
 * string instructions with 32-bit counts, segment checks, and interrupt delivery through
 * the IDT including a privilege change through the TSS.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import {
  CODE,
  DATA,
  GDT_BASE,
  HANDLERS,
  Machine,
  SELECTOR,
  STACK_TOP,
  describeExit,
  le32,
  segmentDescriptor,
} from "./machine.js";

const { EAX, EBX, ECX, EDX, ESP, ESI, EDI, CS, DS, SS } = registers;

function expectExit(machine: Machine, exit: RunExit, expected: RunExit): void {
  expect(describeExit(machine.cpu, exit)).toBe(describeExit(machine.cpu, expected));
}

describe("entering protected mode", () => {
  it("runs a boot loader's LGDT / MOV CR0 / far JMP and continues as 32-bit code", () => {
    const machine = new Machine();
    const { cpu } = machine;
    machine.enterRealMode();
    machine.load(0x7c00, [
      0xfa, //                         7C00 cli
      0x0f, 0x01, 0x16, 0x40, 0x7c, // 7C01 lgdt [0x7c40]
      0x0f, 0x20, 0xc0, //             7C06 mov eax, cr0
      0x0c, 0x01, //                   7C09 or al, 1            ; CR0.PE
      0x0f, 0x22, 0xc0, //             7C0B mov cr0, eax
      0xea, 0x20, 0x7c, 0x08, 0x00, // 7C0E jmp 0x08:0x7c20     ; reload CS from the GDT
    ]);
    machine.load(0x7c20, [
      0x66, 0xb8, 0x10, 0x00, //       7C20 mov ax, 0x10
      0x8e, 0xd8, //                   7C24 mov ds, ax
      0x8e, 0xc0, //                   7C26 mov es, ax
      0x8e, 0xd0, //                   7C28 mov ss, ax
      0xbc, ...le32(STACK_TOP), //     7C2A mov esp, 0x90000
      0xc7, 0x05, ...le32(0x8000), ...le32(0xdeadbeef), // 7C2F mov dword [0x8000], 0xdeadbeef
      0x68, ...le32(0x12345678), //    7C39 push 0x12345678
      0x5b, //                         7C3E pop ebx
      0xf4, //                         7C3F hlt
    ]);
    // GDT pointer (limit, base) at 0x7C40 and the GDT itself at 0x7C48.
    machine.load(0x7c40, [0x17, 0x00, ...le32(0x7c48)]);
    const gdt = [[0, 0], segmentDescriptor(0, 0xfffff, 0x9a, 0xc), segmentDescriptor(0, 0xfffff, 0x92, 0xc)];
    gdt.forEach(([low, high], i) => {
      machine.write32(0x7c48 + i * 8, low!);
      machine.write32(0x7c48 + i * 8 + 4, high!);
    });

    cpu.eip = 0x7c00;
    expectExit(machine, cpu.run(100), RunExit.Halt);

    expect(cpu.protectedMode).toBe(true);
    expect(cpu.eip).toBe(0x7c40);
    expect(cpu.segSelector[CS]).toBe(0x08);
    expect(cpu.segBase[CS]).toBe(0);
    expect(cpu.segLimit[CS]! >>> 0).toBe(0xffffffff); // 0xFFFFF pages of 4 KiB
    expect(cpu.codeSize32).toBe(1);
    expect(cpu.stackSize32).toBe(1);
    expect(cpu.segSelector[DS]).toBe(0x10);
    expect(cpu.segSelector[SS]).toBe(0x10);
    // The 32-bit displacement reached past 64 KiB of segment offset into RAM.
    expect(machine.read32(0x8000)).toBe(0xdeadbeef);
    // PUSH imm32 / POP moved ESP by 4 each: a 32-bit stack.
    expect(cpu.regs[EBX]).toBe(0x12345678);
    expect(cpu.regs[ESP]).toBe(STACK_TOP);
    expect(machine.read32(STACK_TOP - 4)).toBe(0x12345678);
    // Loading a segment marks its descriptor accessed (type bit 0, bit 8 of the high dword).
    expect(machine.read32(0x7c48 + 8 + 4) & 0x100).toBe(0x100);
    expect(machine.read32(0x7c48 + 16 + 4) & 0x100).toBe(0x100);
  });
});

describe("32-bit code", () => {
  it("computes every ModR/M + SIB address form like the manual's formula (LEA)", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    const word = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(
        fc.array(word, { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 2 }), // mod: no displacement, disp8, disp32
        fc.integer({ min: 0, max: 7 }), // base
        fc.integer({ min: 0, max: 7 }), // index (4 = none)
        fc.integer({ min: 0, max: 3 }), // scale
        fc.integer({ min: -0x80000000, max: 0x7fffffff }),
        (values, mod, base, index, scale, displacement) => {
          // lea edi, [base + index*2^scale + disp]   (8D, ModR/M reg = EDI, rm = 100 → SIB)
          const noBase = mod === 0 && base === 5; // mod 00 with base 101 means disp32, no base
          const disp8 = displacement & 0xff; // any byte; the CPU sign-extends it
          const code = [0x8d, (mod << 6) | (EDI << 3) | 4, (scale << 6) | (index << 3) | base];
          if (mod === 1) code.push(disp8);
          if (mod === 2 || noBase) code.push(...le32(displacement));
          code.push(0xf4);
          machine.load(CODE, code);
          values.forEach((value, register) => (cpu.regs[register] = value));

          let expected = 0n;
          if (!noBase) expected += BigInt(values[base]!);
          if (index !== 4) expected += BigInt(values[index]!) << BigInt(scale);
          if (mod === 1) expected += BigInt(disp8 >= 128 ? disp8 - 256 : disp8);
          if (mod === 2 || noBase) expected += BigInt(displacement);
          expected = BigInt.asUintN(32, expected);

          expect(machine.runAt(CODE)).toBe(RunExit.Halt);
          expect(cpu.regs[EDI]! >>> 0).toBe(Number(expected));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("reads memory through a base + scaled index + displacement operand", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    for (let i = 0; i < 8; i++) machine.write32(DATA + 0x10 + i * 4, 0x1000 + i);
    machine.load(CODE, [
      0x8b, 0x44, 0x8b, 0x10, // mov eax, [ebx + ecx*4 + 0x10]
      0xf4,
    ]);
    cpu.regs[EBX] = DATA;
    cpu.regs[ECX] = 5;
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(0x1005);
  });

  it("runs CALL/RET and LOOP with a 32-bit stack and counter", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.load(CODE, [
      0xb9, ...le32(10), //           2000 mov ecx, 10
      0x31, 0xc0, //                  2005 xor eax, eax
      0xe8, ...le32(0x2010 - 0x200c), // 2007 call 0x2010
      0xe2, 0xf9, //                  200C loop 0x2007
      0xf4, //                        200E hlt
      0x90, //                        200F
      0x01, 0xc8, //                  2010 add eax, ecx
      0xc3, //                        2012 ret
    ]);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(55); // 10 + 9 + … + 1
    expect(cpu.regs[ECX]).toBe(0);
    expect(cpu.regs[ESP]).toBe(STACK_TOP);
    expect(machine.read32(STACK_TOP - 4)).toBe(0x200c); // the return address CALL pushed
    expect(cpu.eip).toBe(0x200f);
  });

  it("uses 16-bit operands under the 0x66 prefix and leaves the upper halves alone", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.load(CODE, [
      0xb8, ...le32(0x1111ffff), // mov eax, 0x1111ffff
      0x66, 0x40, //                inc ax           → 0x11110000, ZF
      0x66, 0x6a, 0xff, //          push word -1     → ESP − 2
      0xf4,
    ]);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]! >>> 0).toBe(0x11110000);
    expect(cpu.getFlags() & 0x40).toBe(0x40);
    expect(cpu.regs[ESP]).toBe(STACK_TOP - 2);
    expect(machine.view.getUint16(STACK_TOP - 2, true)).toBe(0xffff);
  });

  it("runs REP STOSB past the per-step iteration limit and REP MOVSD with 32-bit registers", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    const count = 10_000; // more than one step's worth of iterations: the instruction restarts itself
    machine.load(CODE, [
      0xfc, //                        cld
      0xbf, ...le32(0x40000), //      mov edi, 0x40000
      0xb9, ...le32(count), //        mov ecx, 10000
      0xb0, 0x5a, //                  mov al, 0x5a
      0xf3, 0xaa, //                  rep stosb
      0xbe, ...le32(0x40000), //      mov esi, 0x40000
      0xbf, ...le32(0x50000), //      mov edi, 0x50000
      0xb9, ...le32(count / 4), //    mov ecx, 2500
      0xf3, 0xa5, //                  rep movsd
      0xf4,
    ]);
    machine.ram[0x40000 + count] = 0x11; // just past the region: must survive
    expect(machine.runAt(CODE, 100)).toBe(RunExit.Halt);
    expect(machine.ram.subarray(0x40000, 0x40000 + count).every((b) => b === 0x5a)).toBe(true);
    expect(machine.ram[0x40000 + count]).toBe(0x11);
    expect(machine.ram.subarray(0x50000, 0x50000 + count).every((b) => b === 0x5a)).toBe(true);
    expect(machine.ram[0x50000 + count]).toBe(0);
    expect(cpu.regs[ECX]).toBe(0);
    expect(cpu.regs[ESI]).toBe(0x40000 + count);
    expect(cpu.regs[EDI]).toBe(0x50000 + count);
  });

  it("runs BSWAP, MOVSX/MOVZX, XADD and CMPXCHG with their documented results", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.write32(DATA, 100);
    machine.load(CODE, [
      0xb8, ...le32(0x11223344), //       mov eax, 0x11223344
      0x0f, 0xc8, //                      bswap eax            → 0x44332211
      0xb3, 0x80, //                      mov bl, 0x80
      0x0f, 0xbe, 0xcb, //                movsx ecx, bl        → 0xffffff80
      0x0f, 0xb6, 0xd3, //                movzx edx, bl        → 0x80
      0xbe, ...le32(7), //                mov esi, 7
      0x0f, 0xc1, 0x35, ...le32(DATA), // xadd [DATA], esi     → [DATA] = 107, ESI = 100
      0xf4,
    ]);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]! >>> 0).toBe(0x44332211);
    expect(cpu.regs[ECX]! >>> 0).toBe(0xffffff80);
    expect(cpu.regs[EDX]).toBe(0x80);
    expect(cpu.regs[ESI]).toBe(100);
    expect(machine.read32(DATA)).toBe(107);

    // CMPXCHG [DATA], EBX: stores EBX when EAX equals the destination (ZF = 1), otherwise
    // loads the destination into EAX (ZF = 0).
    machine.load(CODE, [0x0f, 0xb1, 0x1d, ...le32(DATA), 0xf4]);
    cpu.regs[EBX] = 0x5555;
    cpu.regs[EAX] = 107;
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(machine.read32(DATA)).toBe(0x5555);
    expect(cpu.getFlags() & 0x40).toBe(0x40);
    cpu.regs[EAX] = 1;
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(machine.read32(DATA)).toBe(0x5555);
    expect(cpu.regs[EAX]).toBe(0x5555);
    expect(cpu.getFlags() & 0x40).toBe(0);
  });

  it("switches decoding with the D bit of the code segment a far JMP loads", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.load(CODE, [0xea, ...le32(0x2100), SELECTOR.code16, 0x00]); // jmp 0x28:0x2100 (ptr16:32)
    // In a 16-bit segment B8 takes a 2-byte immediate, so the bytes after it are the next
    // instruction (a far JMP back to 32-bit code, using 0x66 for a 32-bit offset).
    machine.load(0x2100, [
      0xb8, 0x34, 0x12, //                          mov ax, 0x1234
      0x66, 0xea, ...le32(0x2200), SELECTOR.code32, 0x00, // jmp dword 0x08:0x2200
    ]);
    machine.load(0x2200, [0xb8, ...le32(0xcafef00d), 0xf4]); // mov eax, 0xcafef00d; hlt
    cpu.regs[EAX] = 0x77770000;
    expect(machine.runAt(CODE, 2)).toBe(RunExit.Budget); // the far JMP and the MOV
    expect(cpu.segSelector[CS]).toBe(SELECTOR.code16);
    expect(cpu.codeSize32).toBe(0);
    expect(cpu.regs[EAX]! >>> 0).toBe(0x77771234);
    expect(cpu.eip).toBe(0x2103);
    expect(cpu.run(10)).toBe(RunExit.Halt);
    expect(cpu.codeSize32).toBe(1);
    expect(cpu.regs[EAX]! >>> 0).toBe(0xcafef00d);
  });
});

describe("segment checks", () => {
  it("raises #GP(selector) for a selector beyond the GDT limit and #GP(0) for a null DS", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    cpu.exceptionExitBitmap = 1 << 13;
    const gdtEntries = (cpu.gdtLimit + 1) / 8;
    const outside = gdtEntries * 8;
    machine.load(CODE, [0x66, 0xb8, outside, 0x00, 0x8e, 0xd8, 0xf4]); // mov ax, sel; mov ds, ax
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(cpu.exitVector).toBe(13);
    expect(cpu.exitErrorCode).toBe(outside);
    expect(cpu.eip).toBe(CODE + 4); // at the MOV DS, which did not complete
    expect(cpu.segSelector[DS]).toBe(SELECTOR.data32);

    // A null selector loads fine; the access through it faults.
    machine.load(CODE, [0x31, 0xc0, 0x8e, 0xd8, 0x8b, 0x1d, ...le32(DATA), 0xf4]); // xor eax,eax; mov ds,ax; mov ebx,[DATA]
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(cpu.exitVector).toBe(13);
    expect(cpu.exitErrorCode).toBe(0);
    expect(cpu.eip).toBe(CODE + 4);
  });

  it("refuses to write through a read-only data segment", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    // GDT entry 6 (0x30): read-only data, base 0, 4 GiB.
    const [low, high] = segmentDescriptor(0, 0xfffff, 0x90, 0xc);
    machine.write32(GDT_BASE + 0x30, low);
    machine.write32(GDT_BASE + 0x34, high);
    cpu.gdtLimit = 0x37;
    cpu.exceptionExitBitmap = 1 << 13;
    machine.load(CODE, [
      0x66, 0xb8, 0x30, 0x00, //                mov ax, 0x30
      0x8e, 0xd8, //                            mov ds, ax
      0x8b, 0x1d, ...le32(DATA), //             mov ebx, [DATA]      ; reading is fine
      0xc7, 0x05, ...le32(DATA), ...le32(1), // mov dword [DATA], 1  ; writing is not
      0xf4,
    ]);
    machine.write32(DATA, 0xabcd);
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(cpu.exitVector).toBe(13);
    expect(cpu.exitErrorCode).toBe(0);
    expect(cpu.eip).toBe(CODE + 12);
    expect(cpu.regs[EBX]).toBe(0xabcd);
    expect(machine.read32(DATA)).toBe(0xabcd);
  });
});

describe("interrupts and exceptions through the IDT", () => {
  it("delivers #UD with the faulting EIP on the stack, clears IF for an interrupt gate, and IRET resumes", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    machine.setGate(6, HANDLERS);
    machine.load(CODE, [
      0xfb, //                       2000 sti
      0x0f, 0x0b, //                 2001 ud2
      0xbb, ...le32(0x600d), //      2003 mov ebx, 0x600d
      0xf4, //                       2008 hlt
    ]);
    machine.load(HANDLERS, [
      0x8b, 0x04, 0x24, //           mov eax, [esp]        ; the return EIP
      0x9c, //                       pushfd
      0x5a, //                       pop edx               ; EFLAGS inside the handler
      0x83, 0x04, 0x24, 0x02, //     add dword [esp], 2    ; step over the 2-byte UD2
      0xcf, //                       iret
    ]);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(0x2001); // a fault reports the instruction itself
    expect(cpu.regs[EDX]! & 0x200).toBe(0); // interrupt gate: IF cleared
    expect(cpu.regs[EBX]).toBe(0x600d);
    expect(cpu.getFlags() & 0x200).toBe(0x200); // IRET restored IF
    expect(cpu.regs[ESP]).toBe(STACK_TOP);
    // The frame: EIP, CS, EFLAGS.
    expect(machine.read32(STACK_TOP - 8)).toBe(SELECTOR.code32);
    expect(machine.read32(STACK_TOP - 4) & 0x200).toBe(0x200);
  });

  it("switches to the TSS stack for INT from ring 3 and IRETs back to ring 3", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    // A 32-bit TSS at 0x6000 (GDT entry 6, selector 0x30) holding SS0:ESP0 = 0x10:0x80000.
    const tss = 0x6000;
    const [low, high] = segmentDescriptor(tss, 0x67, 0x89, 0x0);
    machine.write32(GDT_BASE + 0x30, low);
    machine.write32(GDT_BASE + 0x34, high);
    cpu.gdtLimit = 0x37;
    machine.write32(tss + 4, 0x80000);
    machine.write32(tss + 8, SELECTOR.data32);
    machine.setGate(0x80, HANDLERS, { dpl: 3 });
    machine.setGate(0x81, HANDLERS + 0x10, { dpl: 3 });

    machine.load(CODE, [
      0x66, 0xb8, 0x30, 0x00, //       2000 mov ax, 0x30
      0x0f, 0x00, 0xd8, //             2004 ltr ax
      0x6a, SELECTOR.data32User, //    2007 push 0x23          ; SS
      0x68, ...le32(0x70000), //       2009 push 0x70000       ; ESP
      0x68, ...le32(0x202), //         200E push 0x202         ; EFLAGS
      0x6a, SELECTOR.code32User, //    2013 push 0x1b          ; CS
      0x68, ...le32(0x2100), //        2015 push 0x2100        ; EIP
      0xcf, //                         201A iret               ; to ring 3
    ]);
    machine.load(0x2100, [
      0xb8, ...le32(42), //            2100 mov eax, 42
      0xcd, 0x80, //                   2105 int 0x80
      0x89, 0xc3, //                   2107 mov ebx, eax
      0xcd, 0x81, //                   2109 int 0x81
    ]);
    machine.load(HANDLERS, [
      0x89, 0xe2, //                   mov edx, esp
      0x40, //                         inc eax
      0xcf, //                         iret
    ]);
    machine.load(HANDLERS + 0x10, [
      0x89, 0xe6, //                   mov esi, esp
      0xf4, //                         hlt
    ]);

    const exit = machine.runAt(CODE, 100);
    expect(describeExit(cpu, exit)).toBe(describeExit(cpu, RunExit.Halt));
    expect(cpu.cpl).toBe(0);
    expect(cpu.regs[EBX]).toBe(43); // the ring-0 handler ran and IRET returned to ring 3
    // Both entries from ring 3 used the ring-0 stack from the TSS, with a 5-dword frame.
    expect(cpu.regs[EDX]).toBe(0x80000 - 20);
    expect(cpu.regs[ESI]).toBe(0x80000 - 20);
    const frame = [0, 4, 8, 12, 16].map((offset) => machine.read32(0x80000 - 20 + offset));
    expect(frame[0]).toBe(0x210b); // EIP after INT 0x81
    expect(frame[1]).toBe(SELECTOR.code32User);
    expect(frame[2]! & 0x200).toBe(0x200);
    expect(frame[3]).toBe(0x70000); // the ring-3 ESP, unchanged by the two INTs
    expect(frame[4]).toBe(SELECTOR.data32User);
    // The ring-0 code descriptor is still what the GDT said (P, DPL 0, execute/read) plus
    // the accessed bit: the stack switch must not write the SS descriptor over it.
    expect((machine.read32(GDT_BASE + 0x0c) >>> 8) & 0xff).toBe(0x9b);
    // LTR marked the TSS busy (type 9 → 11).
    expect((machine.read32(GDT_BASE + 0x34) >> 8) & 0xf).toBe(0xb);
  });
});
