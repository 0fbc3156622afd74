/**
 * The block compiler must be invisible: every program ends in the same registers, flags,
 * memory and instruction count whether it runs compiled or interpreted. Loops run more
 * often than the compile threshold so their blocks do get compiled.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Cpu, MemoryAccess, RunExit, type AccessSize, type CpuBus } from "../src/index.js";

const CODE = 0x2000;
const HANDLER = 0x3000;
const IDT = 0x1000;
const GDT = 0x800;
const DATA = 0x8000;
const STACK_TOP = 0x90000;
const RAM_SIZE = 0x100000;

/** One side of a comparison: a CPU in flat 32-bit protected mode with its own RAM. */
class Side implements CpuBus {
  readonly ram = new Uint8Array(RAM_SIZE);
  readonly cpu: Cpu;
  readonly ports: number[] = [];
  /** Port writes to this port raise interrupt 0x20 (a device asserting its line). */
  interruptPort = -1;

  constructor(jit: boolean) {
    this.cpu = new Cpu({ bus: this, jit });
    this.cpu.mapMemory(0, this.ram, MemoryAccess.All);
  }

  readPhysical(): number {
    return 0xffffffff;
  }
  writePhysical(): void {}
  readPort(port: number, size: AccessSize): number {
    return (port * 0x01010101) >>> (32 - 8 * size);
  }
  writePort(port: number, value: number): void {
    this.ports.push(port, value);
    if (port === this.interruptPort) this.cpu.raiseInterrupt(0x20);
  }

  /** Flat ring-0 protected mode with a GDT and an IDT in RAM (the IRET path reloads CS). */
  setUp(code: readonly number[], registers: readonly number[], data: Uint8Array): void {
    const view = new DataView(this.ram.buffer);
    view.setUint32(GDT + 8, 0x0000ffff, true);
    view.setUint32(GDT + 12, 0x00cf9a00, true);
    view.setUint32(GDT + 16, 0x0000ffff, true);
    view.setUint32(GDT + 20, 0x00cf9200, true);
    // 0x18: a byte-granular data segment ending at DATA + 0xff, for limit faults.
    view.setUint32(GDT + 24, 0x000080ff, true);
    view.setUint32(GDT + 28, 0x00409200, true);
    const cpu = this.cpu;
    cpu.gdtBase = GDT;
    cpu.gdtLimit = 31;
    cpu.idtBase = IDT;
    cpu.idtLimit = 0x7ff;
    cpu.writeCr0(0x11);
    cpu.setSegmentCache(1, 0x08, 0, 0xffffffff, 0xc09b);
    for (const segment of [0, 2, 3, 4, 5]) cpu.setSegmentCache(segment, 0x10, 0, 0xffffffff, 0xc093);
    cpu.updateModeCaches();
    registers.forEach((value, i) => (cpu.regs[i] = value));
    cpu.regs[4] = STACK_TOP;
    cpu.eip = CODE;
    this.ram.set(code, CODE);
    this.ram.set(data, DATA);
  }

  /** An interrupt gate for `vector` pointing at `handler`. */
  gate(vector: number, handler: number): void {
    const view = new DataView(this.ram.buffer);
    view.setUint32(IDT + vector * 8, (0x08 << 16) | (handler & 0xffff), true);
    view.setUint32(IDT + vector * 8 + 4, (handler & 0xffff0000) | 0x8e00, true);
  }
}

function snapshot(side: Side) {
  const cpu = side.cpu;
  return {
    registers: Array.from(cpu.regs, (value) => value >>> 0),
    eip: cpu.eip >>> 0,
    flags: cpu.getFlags() >>> 0,
    instructions: cpu.instructionsRetired,
    data: Array.from(side.ram.subarray(DATA, DATA + 0x200)),
    stack: Array.from(side.ram.subarray(STACK_TOP - 0x100, STACK_TOP)),
    code: Array.from(side.ram.subarray(CODE, CODE + 0x400)),
    ports: side.ports.slice(),
  };
}

/** Runs the same program on an interpreting and a compiling CPU until HLT. */
function runBoth(code: readonly number[], registers: readonly number[], data: Uint8Array, prepare?: (side: Side) => void) {
  const sides = [new Side(false), new Side(true)] as const;
  for (const side of sides) {
    side.setUp(code, registers, data);
    prepare?.(side);
    const exit = side.cpu.run(5_000_000);
    expect(exit, `exit with EIP 0x${(side.cpu.eip >>> 0).toString(16)}`).toBe(RunExit.Halt);
  }
  return sides;
}

const le32 = (value: number) => [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];

/** The same loop closed by LOOP instead of DEC/JNZ (a body of at most 120 bytes). */
function loopInstruction(body: readonly number[], iterations = 100): number[] {
  return [0xb9, ...le32(iterations), ...body, 0xe2, (-(body.length + 2)) & 0xff, 0xf4];
}

/** The loop around a body: mov ecx, iterations; body; dec ecx; jnz body; hlt. */
function loop(body: readonly number[], iterations = 100): number[] {
  const back = -(body.length + 1 + 6);
  return [0xb9, ...le32(iterations), ...body, 0x49, 0x0f, 0x85, ...le32(back), 0xf4];
}

// ---- random loop bodies ------------------------------------------------------------------

/** General registers the bodies may change: EAX, EDX, EBX, EBP (ECX counts, ESI/EDI point at data). */
const writable = fc.constantFrom(0, 2, 3, 5);
const anyRegister = fc.constantFrom(0, 1, 2, 3, 5, 6, 7);
/** Byte registers that do not touch CL/CH (the loop counter). */
const byteRegister = fc.constantFrom(0, 2, 3, 4, 6, 7);
const displacement = fc.integer({ min: 0, max: 0x3f }).map((d) => d * 4);
const aluOp = fc.integer({ min: 0, max: 7 });
const condition = fc.integer({ min: 0, max: 15 });
const imm32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const imm8 = fc.integer({ min: 0, max: 255 });

const instruction: fc.Arbitrary<number[]> = fc.oneof(
  fc.tuple(aluOp, writable, anyRegister).map(([op, dst, src]) => [(op << 3) | 1, 0xc0 | (src << 3) | dst]),
  fc.tuple(aluOp, writable, anyRegister).map(([op, dst, src]) => [(op << 3) | 3, 0xc0 | (dst << 3) | src]),
  fc.tuple(aluOp, writable, imm32).map(([op, dst, value]) => [0x81, 0xc0 | (op << 3) | dst, ...le32(value)]),
  fc.tuple(aluOp, writable, imm8).map(([op, dst, value]) => [0x83, 0xc0 | (op << 3) | dst, value]),
  fc.tuple(aluOp, byteRegister, byteRegister).map(([op, dst, src]) => [op << 3, 0xc0 | (src << 3) | dst]),
  fc.tuple(aluOp, anyRegister, displacement).map(([op, src, d]) => [(op << 3) | 1, 0x46 | (src << 3), d]),
  fc.tuple(aluOp, writable, displacement).map(([op, dst, d]) => [(op << 3) | 3, 0x46 | (dst << 3), d]),
  fc.tuple(aluOp, displacement, imm8).map(([op, d, value]) => [0x80, 0x47 | (op << 3), d, value]),
  writable.map((r) => [0x40 | r]),
  writable.map((r) => [0x48 | r]),
  fc.tuple(fc.constantFrom(2, 3, 4, 5), writable).map(([op, r]) => [0xf7, 0xc0 | (op << 3) | r]),
  fc.tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 7), writable, fc.integer({ min: 0, max: 40 })).map(([op, r, count]) => [0xc1, 0xc0 | (op << 3) | r, count]),
  fc.tuple(fc.constantFrom(0, 1, 4, 5, 7), writable).map(([op, r]) => [0xd1, 0xc0 | (op << 3) | r]),
  fc.tuple(fc.constantFrom(0, 1, 4, 5, 7), writable).map(([op, r]) => [0xd3, 0xc0 | (op << 3) | r]),
  // 8- and 16-bit shifts and rotates, and shifts of memory, by constant counts (compiled inline)
  fc.tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 7), byteRegister, fc.integer({ min: 0, max: 40 })).map(([op, r, count]) => [0xc0, 0xc0 | (op << 3) | r, count]),
  fc.tuple(fc.constantFrom(0, 1, 4, 5, 7), byteRegister).map(([op, r]) => [0xd0, 0xc0 | (op << 3) | r]),
  fc.tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 7), writable, fc.integer({ min: 0, max: 40 })).map(([op, r, count]) => [0x66, 0xc1, 0xc0 | (op << 3) | r, count]),
  fc.tuple(fc.constantFrom(0, 1, 4, 5, 7), writable).map(([op, r]) => [0x66, 0xd1, 0xc0 | (op << 3) | r]),
  fc.tuple(fc.constantFrom(0, 1, 4, 5, 7), displacement, fc.integer({ min: 1, max: 31 })).map(([op, d, count]) => [0xc1, 0x46 | (op << 3), d, count]),
  fc.tuple(writable, imm32).map(([r, value]) => [0xb8 | r, ...le32(value)]),
  fc.tuple(writable, anyRegister).map(([dst, src]) => [0x89, 0xc0 | (src << 3) | dst]),
  fc.tuple(writable, displacement).map(([r, d]) => [0x8b, 0x46 | (r << 3), d]),
  fc.tuple(anyRegister, displacement).map(([r, d]) => [0x89, 0x47 | (r << 3), d]),
  fc.tuple(writable, displacement).map(([r, d]) => [0x8d, 0x44 | (r << 3), 0x9e, d]), // lea r, [esi+ebx*4+d]
  fc.tuple(writable, byteRegister).map(([r, b]) => [0x0f, 0xb6, 0xc0 | (r << 3) | b]),
  fc.tuple(writable, byteRegister).map(([r, b]) => [0x0f, 0xbe, 0xc0 | (r << 3) | b]),
  fc.tuple(writable, displacement).map(([r, d]) => [0x0f, 0xb7, 0x46 | (r << 3), d]),
  fc.tuple(writable, anyRegister).map(([dst, src]) => [0x0f, 0xaf, 0xc0 | (dst << 3) | src]),
  fc.tuple(condition, writable, anyRegister).map(([cc, dst, src]) => [0x0f, 0x40 | cc, 0xc0 | (dst << 3) | src]),
  fc.tuple(condition, byteRegister).map(([cc, r]) => [0x0f, 0x90 | cc, 0xc0 | r]),
  fc.tuple(anyRegister, anyRegister).map(([a, b]) => [0x85, 0xc0 | (b << 3) | a]),
  fc.tuple(writable, writable).map(([a, b]) => [0x87, 0xc0 | (b << 3) | a]),
  fc.tuple(anyRegister, writable).map(([a, b]) => [0x50 | a, 0x58 | b]),
  fc.tuple(condition, aluOp, writable, anyRegister).map(([cc, op, dst, src]) => [0x70 | cc, 2, (op << 3) | 1, 0xc0 | (src << 3) | dst]),
  fc.constantFrom<number[]>([0x99], [0x98], [0xf7, 0xe3], [0x66, 0x01, 0xd8], [0x66, 0x0f, 0xaf, 0xc3], [0x9c, 0x58]),
);

describe("compiled blocks behave exactly like the interpreter", () => {
  it("on random loops of integer instructions (state, memory, flags, instruction counts)", () => {
    fc.assert(
      fc.property(
        fc.array(instruction, { minLength: 1, maxLength: 24 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 8, maxLength: 8 }),
        fc.uint8Array({ minLength: 0x200, maxLength: 0x200 }),
        (body, values, data) => {
          const registers = values.map((value, i) => (i === 6 ? DATA : i === 7 ? DATA + 0x100 : value | 0));
          const [interpreted, compiled] = runBoth(loop(body.flat()), registers, data);
          expect(compiled.cpu.compiledBlockCount).toBeGreaterThan(0);
          expect(snapshot(compiled)).toEqual(snapshot(interpreted));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("on random loops closed by LOOP", () => {
    fc.assert(
      fc.property(fc.array(instruction, { minLength: 1, maxLength: 12 }), fc.array(fc.integer(), { minLength: 8, maxLength: 8 }), (body, values) => {
        const registers = values.map((value, i) => (i === 6 ? DATA : i === 7 ? DATA + 0x100 : value | 0));
        const [interpreted, compiled] = runBoth(loopInstruction(body.flat(), 90), registers, new Uint8Array(0x200));
        expect(snapshot(compiled)).toEqual(snapshot(interpreted));
      }),
      { numRuns: 40 },
    );
  });

  it("restarts a compiled memory instruction that faults, at that instruction", () => {
    // DS is limited to DATA + 0xff. The loop walks ESI up through it; the load past the limit
    // raises #GP, whose handler puts ESI back at DATA and counts. The load then re-executes.
    const body = [0x01, 0xc3, 0x8b, 0x06, 0x01, 0xc2, 0x83, 0xc6, 0x04, 0x89, 0x56, 0xfc];
    // mov esi, DATA; inc dword es:[count] (DS cannot reach it); drop the error code; iret
    const handler = [0xbe, ...le32(DATA), 0x26, 0xff, 0x05, ...le32(DATA + 0x1f0), 0x83, 0xc4, 0x04, 0xcf];
    const setDs = [0x66, 0xb8, 0x18, 0x00, 0x8e, 0xd8]; // mov ax, 0x18; mov ds, ax
    const data = new Uint8Array(0x200).map((_, i) => (i < 0x100 ? (i * 37) & 0xff : 0));
    const [interpreted, compiled] = runBoth([...setDs, ...loop(body, 400)], [0, 0, 0, 0, 0, 0, DATA, DATA], data, (side) => {
      side.ram.set(handler, HANDLER);
      side.gate(13, HANDLER);
    });
    expect(snapshot(compiled)).toEqual(snapshot(interpreted));
    expect(new DataView(compiled.ram.buffer).getUint32(DATA + 0x1f0, true)).toBe(Math.floor(400 / 64));
  });

  it("sees the guest rewrite its own code inside a hot loop", () => {
    // patch: mov eax, imm32 ; the loop adds eax to edx, then increments the immediate in place.
    const body = [0xb8, 0, 0, 0, 0, 0x01, 0xc2, 0xff, 0x05, ...le32(CODE + 5 + 1)];
    const [interpreted, compiled] = runBoth(loop(body, 300), [0, 0, 0, 0, 0, 0, DATA, DATA], new Uint8Array(0x200));
    expect(snapshot(compiled)).toEqual(snapshot(interpreted));
    // 0 + 1 + … + 299: proof that every iteration read the freshly written immediate.
    expect(compiled.cpu.regs[2]).toBe((299 * 300) / 2);
  });

  it("keeps compiled code when the guest writes data that shares the code's page", () => {
    // A counter two bytes after the loop (the loop's code page): add [counter], eax each pass.
    const counter = CODE + 0x200;
    const body = [0x01, 0x05, ...le32(counter), 0x83, 0xc0, 0x01];
    const [interpreted, compiled] = runBoth(loop(body, 2000), [1, 0, 0, 0, 0, 0, DATA, DATA], new Uint8Array(0x200));
    expect(snapshot(compiled)).toEqual(snapshot(interpreted));
    expect(new DataView(compiled.ram.buffer).getUint32(counter, true)).toBe((2000 * 2001) / 2);
    // Compiled once (or a few times while warming up), not once per write.
    expect(compiled.cpu.blocksCompiled).toBeGreaterThan(0);
    expect(compiled.cpu.blocksCompiled).toBeLessThan(5);
  });

  it("notices code the host changed between runs, without being told", () => {
    const program = loop([0x01, 0xc2, 0x83, 0xc0, 0x03], 200); // add edx, eax ; add eax, 3
    const sides = runBoth(program, [1, 0, 0, 0, 0, 0, DATA, DATA], new Uint8Array(0x200));
    for (const side of sides) {
      side.ram[CODE + 5 + 4] = 0x07; // add eax, 3 -> add eax, 7, behind the CPU's back
      side.cpu.eip = CODE;
      side.cpu.halted = false;
      expect(side.cpu.run(1_000_000)).toBe(RunExit.Halt);
    }
    expect(snapshot(sides[1])).toEqual(snapshot(sides[0]));
  });

  it("stops after exactly the requested number of instructions inside a hot loop", () => {
    const program = loop([0x01, 0xc2, 0x83, 0xc0, 0x03, 0x31, 0xd3, 0x0f, 0xaf, 0xd8], 1000);
    for (const budget of [1, 7, 400, 1234, 3333]) {
      const sides = [new Side(false), new Side(true)] as const;
      for (const side of sides) {
        side.setUp(program, [1, 0, 2, 3, 0, 5, DATA, DATA], new Uint8Array(0x200));
        side.cpu.run(2000); // warm: the loop is compiled by now
        expect(side.cpu.run(budget)).toBe(RunExit.Budget);
      }
      expect(sides[1].cpu.instructionsRetired).toBe(2000 + budget);
      expect(snapshot(sides[1])).toEqual(snapshot(sides[0]));
    }
  });

  it("delivers a fault raised in the middle of a compiled block at the right instruction", () => {
    // Each iteration divides by EBX, counting it down; the #DE handler sets EBX to 9 and
    // returns to the faulting DIV, which then completes.
    const body = [0x89, 0xd0, 0x31, 0xd2, 0x01, 0xc6, 0xf7, 0xf3, 0x4b, 0x01, 0xc5];
    const handler = [0xbb, 9, 0, 0, 0, 0xff, 0x05, ...le32(DATA + 0x1f0), 0xcf]; // mov ebx, 9; inc dword [count]; iret
    const [interpreted, compiled] = runBoth(loop(body, 500), [1000, 0, 77, 9, 0, 0, DATA, DATA], new Uint8Array(0x200), (side) => {
      side.ram.set(handler, HANDLER);
      side.gate(0, HANDLER);
    });
    expect(snapshot(compiled)).toEqual(snapshot(interpreted));
    expect(new DataView(compiled.ram.buffer).getUint32(DATA + 0x1f0, true)).toBeGreaterThan(40);
  });

  it("takes an interrupt raised by a device during an OUT right after that OUT", () => {
    // The loop writes to port 0x80 (which raises interrupt 0x20 every time) with IF set;
    // the handler records the return address it sees, so both runs must agree on it.
    const body = [0x42, 0xe6, 0x80, 0x01, 0xd0];
    const handler = [0x8b, 0x1c, 0x24, 0x89, 0x1c, 0x96, 0xcf]; // mov ebx,[esp]; mov [esi+edx*4],ebx; iret
    const [interpreted, compiled] = runBoth([0xfb, ...loop(body, 100)], [0, 0, 0, 0, 0, 0, DATA, DATA], new Uint8Array(0x200), (side) => {
      side.ram.set(handler, HANDLER);
      side.gate(0x20, HANDLER);
      side.interruptPort = 0x80;
    });
    expect(snapshot(compiled)).toEqual(snapshot(interpreted));
    // The recorded return address is the instruction after the OUT.
    expect(new DataView(compiled.ram.buffer).getUint32(DATA + 100 * 4, true)).toBe(CODE + 1 + 5 + 1 + 2);
  });
});
