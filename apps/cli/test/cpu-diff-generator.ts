/**
 * Random 32-bit instruction sequences for the differential test against QEMU: each
 * instruction is followed by a CALL to the harness's state logger (guests/cpu-diff), and
 * the generator tracks which arithmetic flags are architecturally defined after each one
 * (Intel SDM), so only defined results are compared and no instruction reads a flag that
 * an earlier one left undefined.
 */

export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const OF = 0x800;
export const ARITHMETIC_FLAGS = CF | PF | AF | ZF | SF | OF;

/** Where the harness puts things (guests/cpu-diff/harness.asm). */
export const LOAD_ADDRESS = 0x100000;
export const BLOCK_OFFSET = 0x1000;
const LOG_STATE_POINTER_OFFSET = 0x60;
const INITIAL_STATE_OFFSET = 0x40;
export const SCRATCH = 0x1e0000;

interface Instruction {
  readonly bytes: number[];
  /** Flags the instruction reads (they must be defined before it). */
  readonly reads: number;
  /** Flags it sets to defined values. */
  readonly defines: number;
  /** Flags it leaves undefined. */
  readonly undefines: number;
}

export interface GeneratedProgram {
  readonly image: Uint8Array;
  /** One entry per logged state: the initial state, then after each instruction. */
  readonly steps: ReadonlyArray<{ readonly bytes: readonly number[]; readonly definedFlags: number }>;
}

/** A small deterministic PRNG (mulberry32) so a seed reproduces a program. */
export function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const USABLE = [0, 1, 2, 3, 5, 6, 7]; // every general register but ESP
const modrm = (mod: number, reg: number, rm: number) => (mod << 6) | (reg << 3) | rm;
const le32 = (value: number) => [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
const ALU_DEFINES_ALL = { defines: ARITHMETIC_FLAGS, undefines: 0 };
const LOGIC = { defines: ARITHMETIC_FLAGS & ~AF, undefines: AF };
/** Flags each condition code reads (cc 0-15). */
const CONDITION_READS = [OF, OF, CF, CF, ZF, ZF, CF | ZF, CF | ZF, SF, SF, PF, PF, SF | OF, SF | OF, ZF | SF | OF, ZF | SF | OF];

export function generateProgram(harness: Uint8Array, seed: number, count: number): GeneratedProgram {
  const random = randomSource(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (limit: number) => Math.floor(random() * limit);
  const interesting = [0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe];
  const value32 = () => (random() < 0.3 ? pick(interesting) : Math.floor(random() * 0x100000000)) >>> 0;
  const reg = () => pick(USABLE);
  const reg8 = () => int(8);
  const scratch = () => SCRATCH + 4 * int(16);

  const alu = (operation: number) => (operation === 1 || operation === 4 || operation === 6 ? LOGIC : ALU_DEFINES_ALL);
  const aluReads = (operation: number) => (operation === 2 || operation === 3 ? CF : 0);

  const makers: Array<() => Instruction | Instruction[]> = [
    // ALU register, register: 32, 16 and 8 bits
    () => {
      const op = int(8);
      const size = pick([32, 32, 16, 8]);
      const code = op * 8 + (size === 8 ? 0 : 1);
      const bytes = [...(size === 16 ? [0x66] : []), code, modrm(3, size === 8 ? reg8() : reg(), size === 8 ? reg8() : reg())];
      return { bytes, reads: aluReads(op), ...alu(op) };
    },
    // ALU with an immediate
    () => {
      const op = int(8);
      const form = int(4);
      const bytes =
        form === 0
          ? [0x81, modrm(3, op, reg()), ...le32(value32())]
          : form === 1
            ? [0x83, modrm(3, op, reg()), int(256)]
            : form === 2
              ? [0x80, modrm(3, op, reg8()), int(256)]
              : [0x66, 0x81, modrm(3, op, reg()), int(256), int(256)];
      return { bytes, reads: aluReads(op), ...alu(op) };
    },
    // ALU with memory (the scratch area), both directions, and MOV
    () => {
      const op = int(8);
      const toMemory = random() < 0.5;
      return { bytes: [op * 8 + (toMemory ? 1 : 3), modrm(0, reg(), 5), ...le32(scratch())], reads: aluReads(op), ...alu(op) };
    },
    () => ({ bytes: [random() < 0.5 ? 0x89 : 0x8b, modrm(0, reg(), 5), ...le32(scratch())], reads: 0, defines: 0, undefines: 0 }),
    // TEST
    () => ({ bytes: [random() < 0.5 ? 0x85 : 0x84, modrm(3, reg8() & 3, reg8() & 3)], reads: 0, ...LOGIC }),
    // INC, DEC (CF unchanged)
    () => {
      const form = int(4);
      const bytes = form === 0 ? [0x40 + reg()] : form === 1 ? [0x48 + reg()] : form === 2 ? [0xfe, modrm(3, int(2), reg8())] : [0x66, 0x40 + int(2) * 8 + reg()];
      return { bytes, reads: 0, defines: ARITHMETIC_FLAGS & ~CF, undefines: 0 };
    },
    // NEG, NOT (NOT changes no flag)
    () => {
      const negate = random() < 0.5;
      const eight = random() < 0.3;
      const bytes = [eight ? 0xf6 : 0xf7, modrm(3, negate ? 3 : 2, eight ? reg8() : reg())];
      return negate ? { bytes, reads: 0, ...ALU_DEFINES_ALL } : { bytes, reads: 0, defines: 0, undefines: 0 };
    },
    // MUL and IMUL: CF and OF defined, the rest undefined
    () => {
      const form = int(5);
      const bytes =
        form === 0
          ? [0xf7, modrm(3, 4 + int(2), reg())]
          : form === 1
            ? [0xf6, modrm(3, 4 + int(2), reg8())]
            : form === 2
              ? [0x0f, 0xaf, modrm(3, reg(), reg())]
              : form === 3
                ? [0x6b, modrm(3, reg(), reg()), int(256)]
                : [0x69, modrm(3, reg(), reg()), ...le32(value32())];
      return { bytes, reads: 0, defines: CF | OF, undefines: SF | ZF | AF | PF };
    },
    // Shifts and rotates by an immediate (32 bits) or by one
    () => {
      const op = pick([0, 1, 2, 3, 4, 5, 7]);
      const count = random() < 0.3 ? 1 : 1 + int(31);
      const bytes = count === 1 && random() < 0.5 ? [0xd1, modrm(3, op, reg())] : [0xc1, modrm(3, op, reg()), count];
      const rotate = op <= 3;
      const reads = op === 2 || op === 3 ? CF : 0;
      if (rotate) return { bytes, reads, defines: CF | (count === 1 ? OF : 0), undefines: count === 1 ? 0 : OF };
      return { bytes, reads, defines: CF | SF | ZF | PF | (count === 1 ? OF : 0), undefines: AF | (count === 1 ? 0 : OF) };
    },
    // 8-bit SHL/SHR/SAR by an immediate below 8
    () => {
      const op = pick([4, 5, 7]);
      const count = 1 + int(7);
      return { bytes: [0xc0, modrm(3, op, reg8()), count], reads: 0, defines: CF | SF | ZF | PF | (count === 1 ? OF : 0), undefines: AF | (count === 1 ? 0 : OF) };
    },
    // Shifts and rotates by CL: a zero count changes no flag, so nothing becomes defined
    () => ({ bytes: [0xd3, modrm(3, pick([0, 1, 4, 5, 7]), reg())], reads: 0, defines: 0, undefines: OF | AF }),
    // SHLD, SHRD by an immediate
    () => {
      const count = 1 + int(31);
      return {
        bytes: [0x0f, random() < 0.5 ? 0xa4 : 0xac, modrm(3, reg(), reg()), count],
        reads: 0,
        defines: CF | SF | ZF | PF | (count === 1 ? OF : 0),
        undefines: AF | (count === 1 ? 0 : OF),
      };
    },
    // BT, BTS, BTR, BTC: CF defined, ZF unchanged, the rest undefined
    () => {
      const bytes = random() < 0.5 ? [0x0f, pick([0xa3, 0xab, 0xb3, 0xbb]), modrm(3, reg(), reg())] : [0x0f, 0xba, modrm(3, 4 + int(4), reg()), int(256)];
      return { bytes, reads: 0, defines: CF, undefines: OF | SF | AF | PF };
    },
    // BSF, BSR on a source made non-zero first
    () => {
      const source = reg();
      return [
        { bytes: [0x83, modrm(3, 1, source), 1], reads: 0, ...LOGIC },
        { bytes: [0x0f, random() < 0.5 ? 0xbc : 0xbd, modrm(3, reg(), source)], reads: 0, defines: ZF, undefines: CF | OF | SF | AF | PF },
      ];
    },
    // BSWAP, MOVZX, MOVSX, XCHG, CWDE/CDQ/CBW/CWD, LEA
    () => ({ bytes: [0x0f, 0xc8 + reg()], reads: 0, defines: 0, undefines: 0 }),
    () => ({ bytes: [0x0f, pick([0xb6, 0xb7, 0xbe, 0xbf]), modrm(3, reg(), reg() & 3)], reads: 0, defines: 0, undefines: 0 }),
    () => ({ bytes: [0x87, modrm(3, reg(), reg())], reads: 0, defines: 0, undefines: 0 }),
    () => ({ bytes: pick([[0x98], [0x99], [0x66, 0x98], [0x66, 0x99]]), reads: 0, defines: 0, undefines: 0 }),
    () => {
      let index = reg();
      if (index === 4) index = 0;
      return { bytes: [0x8d, modrm(1, reg(), 4), (int(4) << 6) | (index << 3) | reg(), int(256)], reads: 0, defines: 0, undefines: 0 };
    },
    // XADD (flags of ADD), CMPXCHG (flags of CMP)
    () => ({ bytes: [0x0f, random() < 0.5 ? 0xc1 : 0xb1, modrm(3, reg(), reg())], reads: 0, ...ALU_DEFINES_ALL }),
    // CMOVcc, SETcc
    () => {
      const cc = int(16);
      return random() < 0.5
        ? { bytes: [0x0f, 0x40 + cc, modrm(3, reg(), reg())], reads: CONDITION_READS[cc]!, defines: 0, undefines: 0 }
        : { bytes: [0x0f, 0x90 + cc, modrm(3, 0, reg8())], reads: CONDITION_READS[cc]!, defines: 0, undefines: 0 };
    },
    // ADC/SBB-free carry games: CLC, STC, CMC
    () => pick([{ bytes: [0xf8], reads: 0, defines: CF, undefines: 0 }, { bytes: [0xf9], reads: 0, defines: CF, undefines: 0 }, { bytes: [0xf5], reads: CF, defines: CF, undefines: 0 }]),
    // LAHF, SAHF
    () =>
      random() < 0.5
        ? { bytes: [0x9f], reads: SF | ZF | AF | PF | CF, defines: 0, undefines: 0 }
        : { bytes: [0x9e], reads: 0, defines: SF | ZF | AF | PF | CF, undefines: 0 },
    // BCD and ASCII adjusts
    () =>
      pick([
        { bytes: [0x27], reads: AF | CF, defines: CF | AF | SF | ZF | PF, undefines: OF },
        { bytes: [0x2f], reads: AF | CF, defines: CF | AF | SF | ZF | PF, undefines: OF },
        { bytes: [0x37], reads: AF, defines: CF | AF, undefines: OF | SF | ZF | PF },
        { bytes: [0x3f], reads: AF, defines: CF | AF, undefines: OF | SF | ZF | PF },
        { bytes: [0xd4, 0x0a], reads: 0, defines: SF | ZF | PF, undefines: OF | AF | CF },
        { bytes: [0xd5, 0x0a], reads: 0, defines: SF | ZF | PF, undefines: OF | AF | CF },
      ]),
    // DIV and IDIV without a divide error: EDX prepared, a positive non-zero divisor
    () => {
      const divisor = pick([1, 3, 5, 6, 7]);
      const signed = random() < 0.5;
      const prepare: Instruction[] = signed
        ? [
            { bytes: [0x81, modrm(3, 4, divisor), ...le32(0x7fffffff)], reads: 0, ...LOGIC },
            { bytes: [0x83, modrm(3, 1, divisor), 1], reads: 0, ...LOGIC },
            { bytes: [0x99], reads: 0, defines: 0, undefines: 0 },
          ]
        : [
            { bytes: [0x83, modrm(3, 1, divisor), 1], reads: 0, ...LOGIC },
            { bytes: [0x31, modrm(3, 2, 2)], reads: 0, ...LOGIC },
          ];
      return [...prepare, { bytes: [0xf7, modrm(3, signed ? 7 : 6, divisor)], reads: 0, defines: 0, undefines: ARITHMETIC_FLAGS }];
    },
    // PUSH then POP (ESP ends where it was)
    () => [
      { bytes: [0x50 + reg()], reads: 0, defines: 0, undefines: 0 },
      { bytes: [0x58 + reg()], reads: 0, defines: 0, undefines: 0 },
    ],
  ];

  const image = new Uint8Array(BLOCK_OFFSET + count * 24 + 64);
  image.set(harness.subarray(0, BLOCK_OFFSET));
  const view = new DataView(image.buffer);
  const logState = view.getUint32(LOG_STATE_POINTER_OFFSET, true);
  for (let i = 0; i < 7; i++) view.setUint32(INITIAL_STATE_OFFSET + 4 * i, value32(), true);
  view.setUint32(INITIAL_STATE_OFFSET + 28, (int(0x10000) & ARITHMETIC_FLAGS) | 0x2, true);

  let offset = BLOCK_OFFSET;
  const emit = (bytes: readonly number[]) => {
    image.set(bytes, offset);
    offset += bytes.length;
  };
  const callLog = () => {
    const after = LOAD_ADDRESS + offset + 5;
    emit([0xe8, ...le32((logState - after) >>> 0)]);
  };
  const steps: Array<{ bytes: readonly number[]; definedFlags: number }> = [{ bytes: [], definedFlags: ARITHMETIC_FLAGS }];
  callLog();
  let defined = ARITHMETIC_FLAGS;
  while (steps.length <= count) {
    const made = makers[int(makers.length)]!();
    const group = Array.isArray(made) ? made : [made];
    // A group is taken whole or not at all; any member may read what earlier ones define.
    let probe = defined;
    let usable = true;
    for (const instruction of group) {
      if ((instruction.reads & ~probe) !== 0) usable = false;
      probe = (probe | instruction.defines) & ~instruction.undefines;
    }
    if (!usable) continue;
    for (const instruction of group) {
      emit(instruction.bytes);
      callLog();
      defined = (defined | instruction.defines) & ~instruction.undefines;
      steps.push({ bytes: instruction.bytes, definedFlags: defined });
    }
  }
  emit([0xc3]);
  const end = LOAD_ADDRESS + offset;
  view.setUint32(0x14, end, true); // load_end_addr
  view.setUint32(0x18, end, true); // bss_end_addr
  return { image: image.subarray(0, offset), steps };
}

/** The logged states of a run's output: eight dwords per line, then the scratch line. */
export function parseRun(output: string): { states: number[][]; scratch: number[] } {
  const states: number[][] = [];
  let scratch: number[] = [];
  for (const line of output.split("\n")) {
    if (line.startsWith("scratch ")) scratch = line.slice(8).trim().split(" ").map((word) => parseInt(word, 16) >>> 0);
    else if (/^([0-9a-f]{8} ){8}$/.test(line)) states.push(line.trim().split(" ").map((word) => parseInt(word, 16) >>> 0));
  }
  return { states, scratch };
}
