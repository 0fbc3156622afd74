/**
 * Far JMP and CALL through call gates (SDM Vol. 3 §5.8): the privilege checks, the stack
 * switch through the TSS with parameter copy on a call to an inner level, 16- and 32-bit
 * gates, and RETF with a parameter count back to the outer level.
 */
import { describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, GDT_BASE, HANDLERS, Machine, SELECTOR, describeExit, le16, le32, segmentDescriptor } from "./machine.js";

const { EAX, EBX, ECX, EDX, ESI, EDI, EBP, ESP, SS } = registers;

const TSS = 0x6000;
const TSS_SELECTOR = 0x30;
const GATE = 0x38;
const RING0_STACK = 0x80000;
const USER_CODE = 0x2100;

/** A call gate descriptor: [low, high]. */
function callGate(selector: number, offset: number, { dpl = 3, parameters = 0, gate32 = true, present = true } = {}): [number, number] {
  const low = ((offset & 0xffff) | (selector << 16)) >>> 0;
  const high = ((offset & 0xffff0000) | (present ? 0x8000 : 0) | (dpl << 13) | ((gate32 ? 0xc : 0x4) << 8) | parameters) >>> 0;
  return [low, high];
}

function setGdt(machine: Machine, selector: number, [low, high]: [number, number]): void {
  machine.write32(GDT_BASE + (selector & ~7), low);
  machine.write32(GDT_BASE + (selector & ~7) + 4, high);
  machine.cpu.gdtLimit = Math.max(machine.cpu.gdtLimit, (selector & ~7) + 7);
}

/**
 * Flat protected mode with a TSS (SS0:ESP0 = data32:RING0_STACK) loaded, code at CODE that
 * IRETs to ring 3 at USER_CODE with ESP = `userEsp`, and INT 0x81 (DPL 3) halting in ring 0.
 */
function gateMachine(userEsp = 0x70000): Machine {
  const machine = new Machine();
  machine.enterFlatProtectedMode();
  setGdt(machine, TSS_SELECTOR, segmentDescriptor(TSS, 0x67, 0x89, 0));
  machine.write32(TSS + 4, RING0_STACK);
  machine.write32(TSS + 8, SELECTOR.data32);
  machine.setGate(0x81, HANDLERS + 0x80, { dpl: 3 });
  machine.load(HANDLERS + 0x80, [0x8b, 0x6c, 0x24, 0x0c, 0xf4]); // mov ebp, [esp+12] (the ring-3 ESP); hlt
  machine.load(CODE, [
    0x66, 0xb8, ...le16(TSS_SELECTOR), // mov ax, TSS
    0x0f, 0x00, 0xd8, //                 ltr ax
    0x6a, SELECTOR.data32User, //        push SS
    0x68, ...le32(userEsp), //           push ESP
    0x68, ...le32(0x202), //             push EFLAGS
    0x6a, SELECTOR.code32User, //        push CS
    0x68, ...le32(USER_CODE), //         push EIP
    0xcf, //                             iretd
  ]);
  return machine;
}

function expectExit(machine: Machine, exit: RunExit, expected: RunExit): void {
  expect(describeExit(machine.cpu, exit)).toBe(describeExit(machine.cpu, expected));
}

describe("CALL through a call gate to an inner privilege level", () => {
  it("switches to the TSS stack, copies the parameters, and RETF n returns to ring 3", () => {
    const machine = gateMachine();
    const { cpu } = machine;
    setGdt(machine, GATE, callGate(SELECTOR.code32, HANDLERS, { parameters: 2 }));
    machine.load(USER_CODE, [
      0x68, ...le32(0x11111111), //     push 0x11111111
      0x68, ...le32(0x22222222), //     push 0x22222222
      0x9a, ...le32(0xdeadbeef), GATE | 3, 0x00, // call GATE:whatever (the gate's offset wins)
      0x89, 0xe7, //                    mov edi, esp        ; (ring 3 again) ESP after the return
      0xcd, 0x81, //                    int 0x81
    ]);
    machine.load(HANDLERS, [
      0x8b, 0x44, 0x24, 0x08, //        mov eax, [esp+8]    ; first parameter (the last pushed)
      0x8b, 0x5c, 0x24, 0x0c, //        mov ebx, [esp+12]
      0x8b, 0x4c, 0x24, 0x10, //        mov ecx, [esp+16]   ; caller's ESP
      0x8b, 0x54, 0x24, 0x14, //        mov edx, [esp+20]   ; caller's SS
      0x89, 0xe6, //                    mov esi, esp
      0x8b, 0x2c, 0x24, //              mov ebp, [esp]      ; return EIP
      0x36, 0x89, 0x2d, ...le32(0x8000), // mov [ss:0x8000], ebp ; DS is null after the IRET to ring 3
      0x36, 0x8c, 0x0d, ...le32(0x8004), // mov [ss:0x8004], cs
      0xca, 0x08, 0x00, //              retf 8
    ]);
    expectExit(machine, machine.runAt(CODE, 200), RunExit.Halt);
    expect(machine.read32(0x8000)).toBe(USER_CODE + 17); // after the CALL
    expect(cpu.regs[EAX]).toBe(0x22222222); // parameters in their original order
    expect(cpu.regs[EBX]).toBe(0x11111111);
    expect(machine.read32(0x8004) & 0xffff).toBe(SELECTOR.code32); // CPL 0 in the gate's target
    expect(cpu.regs[ECX]).toBe(0x70000 - 8);
    expect(cpu.regs[EDX]).toBe(SELECTOR.data32User);
    expect(cpu.regs[ESI]).toBe(RING0_STACK - 24);
    expect(cpu.regs[EDI]).toBe(0x70000); // RETF 8 released the parameters on the ring-3 stack
    expect(cpu.regs[EBP]).toBe(0x70000);
  });

  it("uses 16-bit pushes and word parameters for a 16-bit call gate", () => {
    const machine = gateMachine(0xf000);
    const { cpu } = machine;
    setGdt(machine, GATE, callGate(SELECTOR.code32, HANDLERS, { parameters: 1, gate32: false }));
    machine.load(USER_CODE, [
      0x66, 0x68, ...le16(0xabcd), //   push word 0xabcd
      0x9a, ...le32(0), GATE | 3, 0x00, // call GATE:0
      0x89, 0xe7, //                    mov edi, esp
      0xcd, 0x81, //                    int 0x81
    ]);
    machine.load(HANDLERS, [
      0x89, 0xe6, //                    mov esi, esp
      0x0f, 0xb7, 0x44, 0x24, 0x04, //  movzx eax, word [esp+4]  ; the parameter
      0x0f, 0xb7, 0x5c, 0x24, 0x06, //  movzx ebx, word [esp+6]  ; caller's SP
      0x0f, 0xb7, 0x54, 0x24, 0x08, //  movzx edx, word [esp+8]  ; caller's SS
      0x66, 0xca, 0x02, 0x00, //        o16 retf 2
    ]);
    expectExit(machine, machine.runAt(CODE, 200), RunExit.Halt);
    expect(cpu.regs[ESI]).toBe(RING0_STACK - 10); // SS, SP, one parameter, CS, IP: five words
    expect(cpu.regs[EAX]).toBe(0xabcd);
    expect(cpu.regs[EBX]).toBe(0xf000 - 2);
    expect(cpu.regs[EDX]).toBe(SELECTOR.data32User);
    expect(cpu.regs[EDI]).toBe(0xf000);
  });

  it("leaves CPL, SS and ESP as they were when the new stack cannot be loaded (#TS)", () => {
    const machine = gateMachine();
    const { cpu } = machine;
    machine.write32(TSS + 8, SELECTOR.data32User); // SS0 with RPL/DPL 3: invalid for ring 0
    setGdt(machine, GATE, callGate(SELECTOR.code32, HANDLERS));
    machine.load(USER_CODE, [0x9a, ...le32(0), GATE | 3, 0x00]);
    cpu.exceptionExitBitmap = 1 << 10;
    expectExit(machine, machine.runAt(CODE, 200), RunExit.Exception);
    expect(cpu.exitVector).toBe(10);
    expect(cpu.exitErrorCode).toBe(SELECTOR.data32User & ~3);
    expect(cpu.cpl).toBe(3);
    expect(cpu.eip).toBe(USER_CODE);
    expect(cpu.segSelector[SS]).toBe(SELECTOR.data32User);
    expect(cpu.regs[ESP]).toBe(0x70000);
  });
});

describe("call gates at the same privilege level, and JMP", () => {
  it("CALL through a ring-0 gate from ring 0 pushes only CS:EIP on the same stack", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    setGdt(machine, GATE, callGate(SELECTOR.code32, HANDLERS, { dpl: 0, parameters: 3 }));
    machine.load(CODE, [0x9a, ...le32(0), GATE, 0x00, 0xf4]); // call GATE:0; hlt
    machine.load(HANDLERS, [0x89, 0xe6, 0xcb]); // mov esi, esp; retf
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.regs[ESI]).toBe(0x90000 - 8);
    expect(machine.read32(0x90000 - 8)).toBe(CODE + 7);
    expect(machine.read32(0x90000 - 4)).toBe(SELECTOR.code32);
    expect(cpu.eip).toBe(CODE + 8);
  });

  it("JMP through a gate transfers without pushing anything", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    setGdt(machine, GATE, callGate(SELECTOR.code32, HANDLERS, { dpl: 0 }));
    machine.load(CODE, [0xea, ...le32(0), GATE, 0x00]); // jmp GATE:0
    machine.load(HANDLERS, [0xf4]);
    expectExit(machine, machine.runAt(CODE), RunExit.Halt);
    expect(cpu.eip).toBe(HANDLERS + 1);
    expect(cpu.regs[ESP]).toBe(0x90000);
  });

  it("JMP from ring 3 through a gate to a ring-0 code segment raises #GP(code selector)", () => {
    const machine = gateMachine();
    const { cpu } = machine;
    setGdt(machine, GATE, callGate(SELECTOR.code32, HANDLERS));
    machine.load(USER_CODE, [0xea, ...le32(0), GATE | 3, 0x00]);
    cpu.exceptionExitBitmap = 1 << 13;
    expectExit(machine, machine.runAt(CODE, 200), RunExit.Exception);
    expect(cpu.exitErrorCode).toBe(SELECTOR.code32);
    expect(cpu.eip).toBe(USER_CODE);
  });

  it("raises #GP(gate) for a gate with DPL below CPL and #NP(gate) for one not present", () => {
    for (const [gate, vector] of [
      [callGate(SELECTOR.code32, HANDLERS, { dpl: 0 }), 13],
      [callGate(SELECTOR.code32, HANDLERS, { present: false }), 11],
    ] as const) {
      const machine = gateMachine();
      const { cpu } = machine;
      setGdt(machine, GATE, gate);
      machine.load(USER_CODE, [0x9a, ...le32(0), GATE | 3, 0x00]);
      cpu.exceptionExitBitmap = (1 << 13) | (1 << 11);
      expectExit(machine, machine.runAt(CODE, 200), RunExit.Exception);
      expect(cpu.exitVector).toBe(vector);
      expect(cpu.exitErrorCode).toBe(GATE);
      expect(cpu.regs[ESP]).toBe(0x70000);
      expect(cpu.cpl).toBe(3);
    }
  });

  it("refuses RETF to a gate selector with #GP", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    setGdt(machine, GATE, callGate(SELECTOR.code32, HANDLERS, { dpl: 0 }));
    machine.load(CODE, [0x6a, GATE, 0x68, ...le32(HANDLERS), 0xcb]); // push GATE; push HANDLERS; retf
    cpu.exceptionExitBitmap = 1 << 13;
    expectExit(machine, machine.runAt(CODE), RunExit.Exception);
    expect(cpu.exitErrorCode).toBe(GATE);
    expect(cpu.regs[EAX]).toBe(0);
    expect(cpu.regs[EBX]).toBe(0);
  });
});
