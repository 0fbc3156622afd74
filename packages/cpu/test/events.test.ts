/**
 * Events between instructions and how run() reports them: HLT, external interrupts and
 * the STI shadow, interrupt windows, exception exits, single-step traps, and how a fault
 * during exception delivery becomes a double fault or a shutdown.
 */
import { describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, HANDLERS, Machine, describeExit, le16, le32 } from "./machine.js";

const { EAX, EBX, ECX } = registers;

/** Real mode at 0000:7C00, SP = 0x7000. */
function realModeMachine(model: "pentium-pro" | "80286" = "pentium-pro"): Machine {
  const machine = new Machine(model);
  machine.enterRealMode();
  return machine;
}

const word = (machine: Machine, address: number) => machine.view.getUint16(address, true);

describe("HLT", () => {
  it("returns RunExit.Halt with EIP past the HLT, and stays halted until an interrupt", () => {
    const machine = realModeMachine();
    const { cpu } = machine;
    machine.load(0x7c00, [0x90, 0xf4, 0x40]); // nop; hlt; inc ax
    expect(machine.runAt(0x7c00)).toBe(RunExit.Halt);
    expect(cpu.eip).toBe(0x7c02);
    expect(cpu.halted).toBe(true);
    expect(cpu.instructionsRetired).toBe(2);
    // Calling run() again does nothing while halted with no interrupt pending.
    expect(cpu.run(100)).toBe(RunExit.Halt);
    expect(cpu.regs16[0]).toBe(0);
    expect(cpu.instructionsRetired).toBe(2);
  });
});

describe("external interrupts (real mode)", () => {
  const VECTOR = 0x20;

  function interruptMachine(): Machine {
    const machine = realModeMachine();
    machine.setVector(VECTOR, 0, 0x7e00);
    machine.load(0x7e00, [
      0xa3, 0x00, 0x05, // mov [0x500], ax    ; record AX at the moment of delivery
      0x43, //             inc bx             ; count deliveries
      0xcf, //             iret
    ]);
    machine.view.setUint16(0x500, 0xffff, true);
    return machine;
  }

  it("holds a raised interrupt while IF = 0, then delivers it one instruction after STI", () => {
    const machine = interruptMachine();
    const { cpu } = machine;
    machine.load(0x7c00, [0xfa, 0x40, 0xf4]); // cli; inc ax; hlt
    cpu.raiseInterrupt(VECTOR);
    expect(machine.runAt(0x7c00)).toBe(RunExit.Halt);
    expect(cpu.regs16[6]).toBe(0); // BX: not delivered
    expect(cpu.pendingInterrupt).toBe(VECTOR);
    expect(cpu.run(10)).toBe(RunExit.Halt); // halted with IF = 0: still nothing
    expect(cpu.regs16[6]).toBe(0);

    // STI holds interrupts off for one more instruction: the first INC runs, then delivery.
    machine.load(0x7c10, [0xfb, 0x40, 0x40, 0xf4]); // sti; inc ax; inc ax; hlt
    cpu.regs16[0] = 0;
    expect(machine.runAt(0x7c10)).toBe(RunExit.Halt);
    expect(cpu.regs16[6]).toBe(1); // delivered once
    expect(word(machine, 0x500)).toBe(1); // …after exactly one INC
    expect(cpu.regs16[0]).toBe(2);
    expect(cpu.pendingInterrupt).toBe(-1);
    // The IVT frame: IP of the second INC, CS, FLAGS with IF set.
    expect(word(machine, 0x7000 - 6)).toBe(0x7c12);
    expect(word(machine, 0x7000 - 4)).toBe(0);
    expect(word(machine, 0x7000 - 2) & 0x200).toBe(0x200);
  });

  it("wakes a halted CPU: the handler runs and IRET returns past the HLT", () => {
    const machine = interruptMachine();
    const { cpu } = machine;
    machine.load(0x7c00, [0xfb, 0xf4, 0x41, 0xf4]); // sti; hlt; inc cx; hlt
    expect(machine.runAt(0x7c00)).toBe(RunExit.Halt);
    expect(cpu.eip).toBe(0x7c02);
    cpu.raiseInterrupt(VECTOR);
    expect(cpu.run(100)).toBe(RunExit.Halt);
    expect(cpu.regs16[6]).toBe(1);
    expect(cpu.regs16[2]).toBe(1); // CX: execution continued after the first HLT
    expect(cpu.eip).toBe(0x7c04);
  });

  it("delivers an external interrupt even when its vector's bit is set in exceptionExitBitmap", () => {
    // The bitmap is about exceptions; IRQ 0 arrives on vector 8 under the BIOS's PIC setup.
    const machine = realModeMachine();
    const { cpu } = machine;
    machine.setVector(8, 0, 0x7e00);
    machine.load(0x7e00, [0xf4]);
    machine.load(0x7c00, [0xfb, 0x90, 0x90]); // sti; nop; nop
    cpu.exceptionExitBitmap = 1 << 8;
    cpu.raiseInterrupt(8);
    expect(machine.runAt(0x7c00)).toBe(RunExit.Halt);
    expect(cpu.eip).toBe(0x7e01);
  });

  it("reports RunExit.InterruptWindow once IF = 1 and the STI shadow has passed", () => {
    const machine = realModeMachine();
    const { cpu } = machine;
    machine.load(0x7c00, [0x40, 0xfb, 0x40, 0x40, 0xf4]); // inc ax; sti; inc ax; inc ax; hlt
    cpu.interruptWindowExit = true;
    expect(machine.runAt(0x7c00)).toBe(RunExit.InterruptWindow);
    expect(cpu.regs16[0]).toBe(2);
    expect(cpu.eip).toBe(0x7c03);
    cpu.interruptWindowExit = false;
    expect(cpu.run(10)).toBe(RunExit.Halt);
    expect(cpu.regs16[0]).toBe(3);
  });
});

describe("exception exits and traps", () => {
  it("turns INT3 into RunExit.Exception with EIP at the 0xCC when bit 3 of exceptionExitBitmap is set", () => {
    const machine = realModeMachine();
    const { cpu } = machine;
    machine.load(0x7c00, [0x40, 0xcc, 0x40, 0xf4]); // inc ax; int3; inc ax; hlt
    cpu.exceptionExitBitmap = 1 << 3;
    expect(machine.runAt(0x7c00)).toBe(RunExit.Exception);
    expect(cpu.eip).toBe(0x7c01);
    expect(cpu.exitVector).toBe(3);
    expect(cpu.exitSoftwareException).toBe(true);
    expect(cpu.regs16[0]).toBe(1);
    expect(cpu.regs16[4 * 2]).toBe(0x7000); // nothing pushed
  });

  it("delivers INT3 through the IVT when its bit is clear, with the return address past the 0xCC", () => {
    const machine = realModeMachine();
    const { cpu } = machine;
    machine.setVector(3, 0, 0x7e00);
    machine.load(0x7e00, [0xf4]);
    machine.load(0x7c00, [0x40, 0xcc]);
    cpu.exceptionExitBitmap = 1 << 6; // another vector: no effect on INT3
    expect(machine.runAt(0x7c00)).toBe(RunExit.Halt);
    expect(cpu.eip).toBe(0x7e01);
    expect(word(machine, 0x7000 - 6)).toBe(0x7c02);
  });

  it("does not apply the bitmap to INT n, even INT 3 written as CD 03", () => {
    const machine = realModeMachine();
    const { cpu } = machine;
    machine.setVector(3, 0, 0x7e00);
    machine.load(0x7e00, [0xf4]);
    machine.load(0x7c00, [0xcd, 0x03]);
    cpu.exceptionExitBitmap = 1 << 3;
    expect(machine.runAt(0x7c00)).toBe(RunExit.Halt);
    expect(cpu.eip).toBe(0x7e01);
  });

  it("reports a fault as RunExit.Exception with its error code, EIP at the faulting instruction", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    cpu.exceptionExitBitmap = 1 << 13;
    machine.load(CODE, [0x90, 0x66, 0xb8, 0x43, 0x00, 0x8e, 0xd8]); // nop; mov ax, 0x43; mov ds, ax
    expect(machine.runAt(CODE)).toBe(RunExit.Exception);
    expect(cpu.exitVector).toBe(13);
    expect(cpu.exitErrorCode).toBe(0x40); // the selector without its RPL bits
    expect(cpu.exitSoftwareException).toBe(false);
    expect(cpu.eip).toBe(CODE + 5);
  });

  it("traps after each instruction while TF = 1 (#DB, DR6.BS)", () => {
    const machine = realModeMachine();
    const { cpu } = machine;
    machine.load(0x7c00, [0x40, 0x40, 0xf4]); // inc ax; inc ax; hlt
    cpu.setFlags(0x2 | 0x100);
    cpu.exceptionExitBitmap = 1 << 1;
    expect(machine.runAt(0x7c00)).toBe(RunExit.Exception);
    expect(cpu.exitVector).toBe(1);
    expect(cpu.eip).toBe(0x7c01); // a trap: after the instruction
    expect(cpu.regs16[0]).toBe(1);
    expect(cpu.dr[6]! & 0x4000).toBe(0x4000);
    expect(cpu.run(10)).toBe(RunExit.Exception);
    expect(cpu.eip).toBe(0x7c02);
    expect(cpu.regs16[0]).toBe(2);
  });
});

describe("double and triple faults (protected mode)", () => {
  /** Flat protected mode with handlers that record which vector and error code arrived. */
  function faultMachine(present: number[]): Machine {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    present.forEach((vector, i) => {
      const handler = HANDLERS + i * 0x10;
      machine.setGate(vector, handler);
      // mov ebx, vector; pop eax (the error code); hlt
      machine.load(handler, [0xbb, ...le32(vector), 0x58, 0xf4]);
    });
    machine.cpu.regs[EBX] = -1;
    return machine;
  }

  it("delivers #NP when the gate of a benign exception (#UD) is not present", () => {
    const machine = faultMachine([8, 11]);
    machine.load(CODE, [0x0f, 0x0b]); // ud2
    const exit = machine.runAt(CODE);
    expect(describeExit(machine.cpu, exit)).toBe(describeExit(machine.cpu, RunExit.Halt));
    expect(machine.cpu.regs[EBX]).toBe(11);
    expect(machine.cpu.regs[EAX]).toBe((6 << 3) | 2 | 1); // IDT entry 6, IDT bit, EXT bit
  });

  it("delivers #NP with the EXT bit when an external interrupt's gate is not present", () => {
    const machine = faultMachine([8, 11]);
    const { cpu } = machine;
    machine.load(CODE, [0xfb, 0x90, 0x90, 0xf4]); // sti; nop; nop; hlt
    cpu.raiseInterrupt(0x30);
    const exit = machine.runAt(CODE);
    expect(describeExit(cpu, exit)).toBe(describeExit(cpu, RunExit.Halt));
    expect(cpu.regs[EBX]).toBe(11);
    expect(cpu.regs[EAX]).toBe((0x30 << 3) | 2 | 1);
  });

  it("raises #DF(0) when delivering a contributory exception (#GP) causes another (#NP)", () => {
    const machine = faultMachine([8, 11]);
    machine.load(CODE, [0x66, 0xb8, 0x40, 0x00, 0x8e, 0xd8]); // mov ax, 0x40; mov ds, ax → #GP(0x40)
    const exit = machine.runAt(CODE);
    expect(describeExit(machine.cpu, exit)).toBe(describeExit(machine.cpu, RunExit.Halt));
    expect(machine.cpu.regs[EBX]).toBe(8);
    expect(machine.cpu.regs[EAX]).toBe(0);
  });

  it("shuts down (triple fault) when the double fault cannot be delivered either", () => {
    const machine = faultMachine([]);
    const { cpu } = machine;
    cpu.idtLimit = 0; // LIDT with a zero limit, the classic reset trick
    machine.load(CODE, [0x41, 0x0f, 0x0b, 0x41]); // inc ecx; ud2; inc ecx
    expect(machine.runAt(CODE)).toBe(RunExit.Shutdown);
    expect(cpu.regs[ECX]).toBe(1);
  });

  it("shuts down from real mode too (386 and later) after LIDT with a zero limit", () => {
    const machine = realModeMachine();
    machine.load(0x7c00, [
      0x0f, 0x01, 0x1e, ...le16(0x7c20), // lidt [0x7c20]
      0xcc, //                            int3
    ]);
    machine.load(0x7c20, [0, 0, 0, 0, 0, 0]);
    expect(machine.runAt(0x7c00)).toBe(RunExit.Shutdown);
  });

  it("shuts down on the 80286 in real mode, where a delivery fault is delivered without #DF", () => {
    // The vector of the failing delivery cannot be delivered either; an endless retry
    // (which used to overflow the JavaScript stack) must end as a shutdown.
    const machine = realModeMachine("80286");
    machine.load(0x7c00, [0x0f, 0x01, 0x1e, ...le16(0x7c20), 0xcc]); // lidt [0x7c20]; int3
    machine.load(0x7c20, [0, 0, 0, 0, 0, 0]);
    expect(machine.runAt(0x7c00)).toBe(RunExit.Shutdown);
  });
});

describe("NMI", () => {
  // regs16 holds the low halves: AX, CX, BX are regs16[0], [2], [6].
  // Handler at 0000:7E00: count in BX, then wait in a loop until AX = 1, then IRET.
  function nmiMachine(): Machine {
    const machine = realModeMachine();
    machine.setVector(2, 0, 0x7e00);
    machine.load(0x7e00, [
      0x43, //             inc bx
      0x83, 0xf8, 0x01, // cmp ax, 1
      0x75, 0xfb, //       jne cmp
      0xcf, //             iret
    ]);
    // Main code: cli, then an endless loop of INC CX.
    machine.load(0x7c00, [0xfa, 0x41, 0xeb, 0xfd]);
    return machine;
  }

  it("is delivered with IF = 0 and held while its handler runs, until the handler's IRET", () => {
    const machine = nmiMachine();
    const { cpu } = machine;
    machine.runAt(0x7c00, 10);
    expect(cpu.regs16[6]).toBe(0); // BX: no NMI yet
    cpu.raiseNmi();
    cpu.run(20);
    expect(cpu.regs16[6]).toBe(1); // taken although IF = 0
    expect(cpu.nmiMasked).toBe(true);
    cpu.raiseNmi(); // a second one while the handler spins: held
    cpu.run(20);
    expect(cpu.regs16[6]).toBe(1);
    expect(cpu.nmiPending).toBe(true);
    cpu.regs16[0] = 1; // let the handler return
    cpu.run(20);
    // The IRET ended the blocking; the held NMI was taken right after it.
    expect(cpu.regs16[6]).toBe(2);
    expect(cpu.nmiPending).toBe(false);
  });

  it("wakes the processor from HLT", () => {
    const machine = realModeMachine();
    const { cpu } = machine;
    machine.setVector(2, 0, 0x7e00);
    machine.load(0x7e00, [0x43, 0xcf]); // inc bx; iret
    machine.load(0x7c00, [0xfa, 0xf4, 0x41, 0xf4]); // cli; hlt; inc cx; hlt
    expect(machine.runAt(0x7c00, 100)).toBe(RunExit.Halt);
    cpu.raiseNmi();
    expect(cpu.run(100)).toBe(RunExit.Halt);
    expect([cpu.regs16[6], cpu.regs16[2]]).toEqual([1, 1]); // handler ran, then INC CX
  });
});
