/**
 * 32-bit integer arithmetic against an independent oracle. The conformance suites only
 * exercise 8- and 16-bit operands; here random 32-bit operands run through the real
 * decoder in flat 32-bit code, and results and flags are compared with values computed in
 * BigInt straight from the definitions in the Intel SDM (not from the CPU's lazy-flag
 * formulas).
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, DATA, Machine, decodeFlags, encodeFlags, le32, type ArithmeticFlags } from "./machine.js";

const { EAX, EBX, ECX, EDX } = registers;

const TWO_32 = 1n << 32n;
const INT32_MIN = -(1n << 31n);
const INT32_MAX = (1n << 31n) - 1n;

const signed32 = (value: number): bigint => BigInt.asIntN(32, BigInt(value));
const unsigned32 = (value: bigint): number => Number(BigInt.asUintN(32, value));

function parityEven(value: number): boolean {
  let bits = 0;
  for (let b = value & 0xff; b !== 0; b >>= 1) bits += b & 1;
  return bits % 2 === 0;
}

/** ZF, SF, PF of a 32-bit result. */
function resultFlags(result: number): Pick<ArithmeticFlags, "ZF" | "SF" | "PF"> {
  return { ZF: result === 0, SF: result >= 0x80000000, PF: parityEven(result) };
}

const OPS = ["ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP"] as const; // ModR/M /0 … /7 order
type Op = (typeof OPS)[number];

interface Outcome {
  result: number;
  flags: ArithmeticFlags;
}

/** The SDM's definition of each ALU operation on unsigned 32-bit a, b with carry-in. */
function aluOracle(op: Op, a: number, b: number, carryIn: boolean): Outcome {
  const A = BigInt(a);
  const B = BigInt(b);
  const c = (op === "ADC" || op === "SBB") && carryIn ? 1n : 0n;
  switch (op) {
    case "ADD":
    case "ADC": {
      const sum = A + B + c;
      const signedSum = signed32(a) + signed32(b) + c;
      const result = unsigned32(sum);
      return {
        result,
        flags: {
          CF: sum >= TWO_32,
          OF: signedSum > INT32_MAX || signedSum < INT32_MIN,
          AF: (A & 0xfn) + (B & 0xfn) + c > 0xfn,
          ...resultFlags(result),
        },
      };
    }
    case "SUB":
    case "SBB":
    case "CMP": {
      const difference = A - B - c;
      const signedDifference = signed32(a) - signed32(b) - c;
      const result = unsigned32(difference);
      return {
        result,
        flags: {
          CF: difference < 0n,
          OF: signedDifference > INT32_MAX || signedDifference < INT32_MIN,
          AF: (A & 0xfn) - (B & 0xfn) - c < 0n,
          ...resultFlags(result),
        },
      };
    }
    default: {
      const value = op === "AND" ? A & B : op === "OR" ? A | B : A ^ B;
      const result = Number(value);
      // AF is undefined after logic operations; the comparison masks it out.
      return { result, flags: { CF: false, OF: false, AF: false, ...resultFlags(result) } };
    }
  }
}

/** Jcc/SETcc condition codes 0-15 from the flags, per the SDM's table. */
function conditions(f: ArithmeticFlags): boolean[] {
  const base = [f.OF, f.CF, f.ZF, f.CF || f.ZF, f.SF, f.PF, f.SF !== f.OF, f.ZF || f.SF !== f.OF];
  return base.flatMap((condition) => [condition, !condition]);
}

const uint32 = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 0xf, 0x10, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
);
const arbitraryFlags: fc.Arbitrary<ArithmeticFlags> = fc.record({
  CF: fc.boolean(),
  PF: fc.boolean(),
  AF: fc.boolean(),
  ZF: fc.boolean(),
  SF: fc.boolean(),
  OF: fc.boolean(),
});

const SETCC_RESULTS = DATA + 0x100;

/** 16 × SETcc byte [SETCC_RESULTS + cc]: reads every condition after the operation. */
function setccAll(): number[] {
  const code: number[] = [];
  for (let cc = 0; cc < 16; cc++) code.push(0x0f, 0x90 + cc, 0x05, ...le32(SETCC_RESULTS + cc));
  return code;
}

let machine: Machine;

beforeAll(() => {
  machine = new Machine();
  machine.enterFlatProtectedMode();
});

/** Runs `code` + HLT at CODE with the given registers and flags; returns the CPU. */
function run(code: number[], setup: { eax?: number; ebx?: number; ecx?: number; edx?: number; flags?: number }) {
  const { cpu } = machine;
  machine.load(CODE, [...code, 0xf4]);
  cpu.regs[EAX] = setup.eax ?? 0;
  cpu.regs[EBX] = setup.ebx ?? 0;
  cpu.regs[ECX] = setup.ecx ?? 0;
  cpu.regs[EDX] = setup.edx ?? 0;
  cpu.setFlags(0x2 | (setup.flags ?? 0));
  return machine.runAt(CODE);
}

function arithmeticFlags(): ArithmeticFlags {
  return decodeFlags(machine.cpu.getFlags());
}

describe("32-bit ALU operations", () => {
  // Four encodings of the same operation; `a` is the destination, `b` the source.
  const FORMS = ["reg,reg", "eax,imm32", "mem,imm8", "reg,mem"] as const;

  function encode(form: (typeof FORMS)[number], opIndex: number, a: number, b: number): { code: number[]; b: number } {
    switch (form) {
      case "reg,reg": // op eax, ebx
        return { code: [(opIndex << 3) | 1, 0xd8], b };
      case "eax,imm32": // op eax, imm32
        return { code: [(opIndex << 3) | 5, ...le32(b)], b };
      case "mem,imm8": { // op dword [DATA], imm8 (sign-extended)
        machine.write32(DATA, a);
        const byte = b & 0xff;
        return { code: [0x83, (opIndex << 3) | 5, ...le32(DATA), byte], b: unsigned32(BigInt.asIntN(8, BigInt(byte))) };
      }
      default: // op eax, dword [DATA]
        machine.write32(DATA, b);
        return { code: [(opIndex << 3) | 3, 0x05, ...le32(DATA)], b };
    }
  }

  it("matches the oracle for result, CF, OF, AF, ZF, SF, PF and all 16 conditions", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), fc.constantFrom(...FORMS), uint32, uint32, arbitraryFlags, (opIndex, form, a, b0, before) => {
        const op = OPS[opIndex]!;
        const { code, b } = encode(form, opIndex, a, b0);
        expect(run([...code, ...setccAll()], { eax: a, ebx: b, flags: encodeFlags(before) })).toBe(RunExit.Halt);

        const expected = aluOracle(op, a, b, before.CF);
        const destination = form === "mem,imm8" ? machine.read32(DATA) : machine.regs32(EAX);
        expect(destination, `${op} ${form} result`).toBe(op === "CMP" ? a : expected.result);
        const actual = arithmeticFlags();
        if (op === "AND" || op === "OR" || op === "XOR") actual.AF = expected.flags.AF = false; // undefined
        expect(actual, `${op} ${form} flags`).toEqual(expected.flags);
        // SETcc reads the same (lazily computed) flags through the condition decoder.
        const setcc = Array.from(machine.ram.subarray(SETCC_RESULTS, SETCC_RESULTS + 16), (byte) => byte === 1);
        expect(setcc, `${op} conditions`).toEqual(conditions(expected.flags));
      }),
      { numRuns: 1500 },
    );
  });

  it("keeps CF through INC and DEC and sets the other flags like ADD/SUB 1", () => {
    fc.assert(
      fc.property(uint32, fc.boolean(), fc.boolean(), (a, increment, carry) => {
        // inc eax (40) / dec eax (48)
        expect(run([increment ? 0x40 : 0x48], { eax: a, flags: carry ? 1 : 0 })).toBe(RunExit.Halt);
        const expected = aluOracle(increment ? "ADD" : "SUB", a, 1, false);
        expect(machine.regs32(EAX)).toBe(expected.result);
        expect(arithmeticFlags()).toEqual({ ...expected.flags, CF: carry });
      }),
      { numRuns: 500 },
    );
  });

  it("computes NEG as 0 − x with CF = (x ≠ 0)", () => {
    fc.assert(
      fc.property(uint32, (a) => {
        expect(run([0xf7, 0xd8], { eax: a })).toBe(RunExit.Halt); // neg eax
        const expected = aluOracle("SUB", 0, a, false);
        expect(machine.regs32(EAX)).toBe(expected.result);
        expect(arithmeticFlags()).toEqual(expected.flags);
        expect(expected.flags.CF).toBe(a !== 0);
      }),
      { numRuns: 300 },
    );
  });
});

describe("32-bit shifts and rotates by CL", () => {
  const SHIFTS = ["ROL", "ROR", "RCL", "RCR", "SHL", "SHR", "SAL", "SAR"] as const; // /0 … /7

  /** Result and CF (and OF for a count of 1) per the SDM's pseudo-code, bit by bit. */
  function shiftOracle(op: (typeof SHIFTS)[number], a: number, count: number, carryIn: boolean) {
    let value = BigInt(a);
    let cf = carryIn;
    const msb = (v: bigint) => (v >> 31n) & 1n;
    for (let i = 0; i < count; i++) {
      switch (op) {
        case "ROL": cf = msb(value) === 1n; value = ((value << 1n) | (cf ? 1n : 0n)) & 0xffffffffn; break;
        case "ROR": cf = (value & 1n) === 1n; value = (value >> 1n) | ((cf ? 1n : 0n) << 31n); break;
        case "RCL": { const out = msb(value) === 1n; value = ((value << 1n) | (cf ? 1n : 0n)) & 0xffffffffn; cf = out; break; }
        case "RCR": { const out = (value & 1n) === 1n; value = (value >> 1n) | ((cf ? 1n : 0n) << 31n); cf = out; break; }
        case "SHL":
        case "SAL": cf = msb(value) === 1n; value = (value << 1n) & 0xffffffffn; break;
        case "SHR": cf = (value & 1n) === 1n; value >>= 1n; break;
        case "SAR": cf = (value & 1n) === 1n; value = (value >> 1n) | (msb(value) << 31n); break;
      }
    }
    const result = Number(value);
    const resultMsb = result >= 0x80000000;
    let of: boolean;
    if (op === "ROL" || op === "RCL" || op === "SHL" || op === "SAL") of = resultMsb !== cf;
    else if (op === "SHR") of = a >= 0x80000000;
    else if (op === "SAR") of = false;
    else of = resultMsb !== ((result & 0x40000000) !== 0); // ROR/RCR: the two top bits differ
    return { result, cf, of };
  }

  it("matches the oracle; the count is taken modulo 32 and a zero count changes nothing", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), uint32, fc.integer({ min: 0, max: 255 }), arbitraryFlags, (opIndex, a, cl, before) => {
        const op = SHIFTS[opIndex]!;
        // shl/shr/... eax, cl   (D3 /op, ModR/M 11 op 000)
        expect(run([0xd3, 0xc0 | (opIndex << 3)], { eax: a, ecx: cl, flags: encodeFlags(before) })).toBe(RunExit.Halt);
        const count = cl & 31;
        const actual = arithmeticFlags();
        if (count === 0) {
          expect(machine.regs32(EAX)).toBe(a);
          expect(actual).toEqual(before);
          return;
        }
        const expected = shiftOracle(op, a, count, before.CF);
        expect(machine.regs32(EAX), `${op} ${count}`).toBe(expected.result);
        expect(actual.CF, `${op} ${count} CF`).toBe(expected.cf);
        if (count === 1) expect(actual.OF, `${op} 1 OF`).toBe(expected.of); // undefined for other counts
        if (op === "ROL" || op === "ROR" || op === "RCL" || op === "RCR") {
          // Rotates touch only CF and OF.
          expect({ ...actual, CF: false, OF: false }).toEqual({ ...before, CF: false, OF: false });
        } else {
          expect({ ZF: actual.ZF, SF: actual.SF, PF: actual.PF }).toEqual(resultFlags(expected.result));
        }
      }),
      { numRuns: 1500 },
    );
  });
});

describe("32-bit MUL, IMUL, DIV, IDIV", () => {
  it("MUL and one-operand IMUL produce EDX:EAX with CF = OF = (upper half needed)", () => {
    fc.assert(
      fc.property(uint32, uint32, fc.boolean(), (a, b, signed) => {
        // mul ebx (F7 /4) / imul ebx (F7 /5)
        expect(run([0xf7, signed ? 0xeb : 0xe3], { eax: a, ebx: b })).toBe(RunExit.Halt);
        const product = signed ? signed32(a) * signed32(b) : BigInt(a) * BigInt(b);
        const low = unsigned32(product);
        const high = unsigned32(product >> 32n);
        expect(machine.regs32(EAX)).toBe(low);
        expect(machine.regs32(EDX)).toBe(high);
        const overflow = signed ? BigInt.asIntN(32, product) !== product : product >= TWO_32;
        const flags = arithmeticFlags();
        expect({ CF: flags.CF, OF: flags.OF }).toEqual({ CF: overflow, OF: overflow });
      }),
      { numRuns: 500 },
    );
  });

  it("two- and three-operand IMUL keep the low half and flag truncation", () => {
    fc.assert(
      fc.property(uint32, uint32, fc.constantFrom("r,rm", "r,rm,imm32", "r,rm,imm8"), (a, b, form) => {
        let code: number[];
        let multiplier = b;
        if (form === "r,rm") code = [0x0f, 0xaf, 0xc3]; // imul eax, ebx
        else if (form === "r,rm,imm32") code = [0x69, 0xc3, ...le32(b)]; // imul eax, ebx, imm32
        else {
          code = [0x6b, 0xc3, b & 0xff]; // imul eax, ebx, imm8 (sign-extended)
          multiplier = unsigned32(BigInt.asIntN(8, BigInt(b & 0xff)));
        }
        // The r,rm form multiplies EAX by EBX; the immediate forms multiply EBX by the immediate.
        expect(run(code, { eax: form === "r,rm" ? a : 0x5555, ebx: form === "r,rm" ? b : a, edx: 0x1234 })).toBe(RunExit.Halt);
        const product = signed32(a) * signed32(multiplier);
        expect(machine.regs32(EAX)).toBe(unsigned32(product));
        expect(machine.regs32(EDX)).toBe(0x1234); // untouched
        const overflow = BigInt.asIntN(32, product) !== product;
        const flags = arithmeticFlags();
        expect({ CF: flags.CF, OF: flags.OF }).toEqual({ CF: overflow, OF: overflow });
      }),
      { numRuns: 500 },
    );
  });

  /** Runs DIV/IDIV EBX with #DE reported as an exit; returns what happened. */
  function divide(signed: boolean, edx: number, eax: number, divisor: number) {
    const { cpu } = machine;
    cpu.exceptionExitBitmap = 1 << 0;
    try {
      const exit = run([0xf7, signed ? 0xfb : 0xf3], { eax, edx, ebx: divisor }); // div/idiv ebx
      return { exit, eax: machine.regs32(EAX), edx: machine.regs32(EDX), eip: cpu.eip, vector: cpu.exitVector };
    } finally {
      cpu.exceptionExitBitmap = 0;
    }
  }

  function divideOracle(signed: boolean, edx: number, eax: number, divisor: number) {
    const dividend = signed ? BigInt.asIntN(64, (BigInt(edx) << 32n) | BigInt(eax)) : (BigInt(edx) << 32n) | BigInt(eax);
    const d = signed ? signed32(divisor) : BigInt(divisor);
    if (d === 0n) return null;
    const quotient = dividend / d; // BigInt division truncates toward zero, like IDIV
    const remainder = dividend % d; // and the remainder takes the dividend's sign
    const fits = signed ? quotient >= INT32_MIN && quotient <= INT32_MAX : quotient < TWO_32;
    return fits ? { eax: unsigned32(quotient), edx: unsigned32(remainder) } : null;
  }

  // Half the cases have a high dword small enough for the quotient to fit; the rest mostly
  // overflow, so both outcomes are well represented.
  const dividendAndDivisor = fc.oneof(
    fc.tuple(uint32, uint32, uint32),
    fc.tuple(uint32, uint32, uint32).map(([high, low, divisor]) => [divisor === 0 ? 0 : high % divisor, low, divisor] as const),
    fc.tuple(uint32, uint32).map(([low, divisor]) => [low >= 0x80000000 ? 0xffffffff : 0, low, divisor] as const), // CDQ
  );

  it("DIV and IDIV match truncating division, and raise #DE (EIP at the instruction, nothing changed) when they must", () => {
    fc.assert(
      fc.property(fc.boolean(), dividendAndDivisor, (signed, [edx, eax, divisor]) => {
        const outcome = divide(signed, edx, eax, divisor);
        const expected = divideOracle(signed, edx, eax, divisor);
        if (expected === null) {
          expect(outcome).toEqual({ exit: RunExit.Exception, vector: 0, eip: CODE, eax, edx });
        } else {
          expect(outcome.exit).toBe(RunExit.Halt);
          expect({ eax: outcome.eax, edx: outcome.edx }).toEqual(expected);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("handles the IDIV edge cases the manual calls out", () => {
    // −2^31 / −1 = 2^31 does not fit: #DE.
    expect(divide(true, 0xffffffff, 0x80000000, 0xffffffff).exit).toBe(RunExit.Exception);
    // −2^31 / 1 fits exactly.
    expect(divide(true, 0xffffffff, 0x80000000, 1)).toMatchObject({ exit: RunExit.Halt, eax: 0x80000000, edx: 0 });
    // −7 / 2 = −3 remainder −1;  7 / −2 = −3 remainder 1.
    expect(divide(true, 0xffffffff, unsigned32(-7n), 2)).toMatchObject({ eax: unsigned32(-3n), edx: unsigned32(-1n) });
    expect(divide(true, 0, 7, unsigned32(-2n))).toMatchObject({ eax: unsigned32(-3n), edx: 1 });
    // Division by zero, signed and unsigned.
    expect(divide(true, 0, 1, 0).exit).toBe(RunExit.Exception);
    expect(divide(false, 0, 1, 0).exit).toBe(RunExit.Exception);
    // 0xFFFFFFFF_FFFFFFFF / 0xFFFFFFFF overflows DIV (quotient 2^32 + 1).
    expect(divide(false, 0xffffffff, 0xffffffff, 0xffffffff).exit).toBe(RunExit.Exception);
    // 0xFFFFFFFE_FFFFFFFF / 0xFFFFFFFF = 0xFFFFFFFF remainder 0xFFFFFFFE (largest that fits).
    expect(divide(false, 0xfffffffe, 0xffffffff, 0xffffffff)).toMatchObject({ eax: 0xffffffff, edx: 0xfffffffe });
  });
});

describe("XADD", () => {
  // SDM: TEMP ← SRC + DEST; SRC ← DEST; DEST ← TEMP. With one register as both operands the
  // last write wins, so the register holds the sum (found by the QEMU differential test).
  it("exchanges and adds, and with the same register twice leaves the sum", () => {
    run([0x0f, 0xc1, 0xd8], { eax: 5, ebx: 7 }); // xadd eax, ebx
    expect([machine.cpu.regs[EAX], machine.cpu.regs[EBX]]).toEqual([12, 5]);
    run([0x0f, 0xc1, 0xc0], { eax: 0x1234 }); // xadd eax, eax
    expect(machine.cpu.regs[EAX]).toBe(0x2468);
    run([0x66, 0x0f, 0xc1, 0xdb], { ebx: 0xabcd8001 }); // xadd bx, bx
    expect(machine.cpu.regs[EBX]! >>> 0).toBe(0xabcd0002);
    run([0x0f, 0xc0, 0xe4], { eax: 0x4100 }); // xadd ah, ah
    expect(machine.cpu.regs[EAX]).toBe(0x8200);
    expect(arithmeticFlags()).toMatchObject({ OF: true, SF: true, CF: false });
  });

  it("writes a memory destination and the register source", () => {
    machine.write32(DATA, 40);
    run([0x0f, 0xc1, 0x05, ...le32(DATA)], { eax: 2 }); // xadd [DATA], eax
    expect(machine.cpu.regs[EAX]).toBe(40);
    expect(machine.read32(DATA)).toBe(42);
  });
});
