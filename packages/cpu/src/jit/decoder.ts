/**
 * Instruction decoding for the block compiler: prefixes, opcode, ModR/M, SIB, displacement
 * and immediates of one instruction, from bytes the caller supplies. It also knows the
 * length of every encoding it does not compile, so such instructions can still be run
 * inside a block by calling the interpreter for them.
 */

export interface DecodedInstruction {
  /** EIP of the first byte (prefixes included). */
  readonly eip: number;
  readonly length: number;
  /** One-byte opcode, or 0x100 | second byte for the 0F map. */
  readonly opcode: number;
  readonly operandSize32: boolean;
  readonly addressSize32: boolean;
  /** Segment override, or −1. */
  readonly segmentOverride: number;
  /** 0 none, 1 REPNE, 2 REP/REPE. */
  readonly repeat: number;
  readonly lock: boolean;
  /** −1 when the instruction has no ModR/M byte. */
  readonly modrm: number;
  /** Memory operand: base register (−1 none), index register (−1 none), scale shift, displacement, default segment. */
  readonly base: number;
  readonly index: number;
  readonly scale: number;
  readonly displacement: number;
  readonly defaultSegment: number;
  /** For 16-bit addressing: the second base register (BX+SI style), or −1. */
  readonly base2: number;
  readonly immediate: number;
  readonly immediate2: number;
}

const DS = 3;
const SS = 2;

// Immediate kinds for the one-byte map.
const IMM_NONE = 0;
const IMM_8 = 1;
const IMM_V = 2; // 16 or 32 by operand size
const IMM_16 = 3;
const IMM_16_8 = 4; // ENTER
const IMM_FAR = 5; // ptr16:16 / ptr16:32
const IMM_MOFFS = 6; // address-size offset
const IMM_GROUP3 = 7; // F6/F7: imm only for /0 and /1

/** [hasModrm, immediateKind] per one-byte opcode. */
const ONE_BYTE = new Uint8Array(256 * 2);
/** [hasModrm, immediateKind] per 0F opcode; 0xff in the first slot: undefined. */
const TWO_BYTE = new Uint8Array(256 * 2);

function define(table: Uint8Array, opcodes: readonly number[], modrm: boolean, immediate: number): void {
  for (const opcode of opcodes) {
    table[opcode * 2] = modrm ? 1 : 0;
    table[opcode * 2 + 1] = immediate;
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

for (let op = 0; op < 0x40; op += 8) {
  define(ONE_BYTE, [op, op + 1, op + 2, op + 3], true, IMM_NONE);
  define(ONE_BYTE, [op + 4], false, IMM_8);
  define(ONE_BYTE, [op + 5], false, IMM_V);
}
define(ONE_BYTE, [0x62, 0x63, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0xc4, 0xc5, 0xd0, 0xd1, 0xd2, 0xd3, 0xfe, 0xff], true, IMM_NONE);
define(ONE_BYTE, range(0xd8, 0xdf), true, IMM_NONE);
define(ONE_BYTE, [0x69, 0x81, 0xc7], true, IMM_V);
define(ONE_BYTE, [0x6b, 0x80, 0x82, 0x83, 0xc0, 0xc1, 0xc6], true, IMM_8);
define(ONE_BYTE, [0xf6, 0xf7], true, IMM_GROUP3);
define(ONE_BYTE, [0x6a, 0xa8, 0xcd, 0xd4, 0xd5, 0xeb, ...range(0x70, 0x7f), ...range(0xb0, 0xb7), ...range(0xe0, 0xe7)], false, IMM_8);
define(ONE_BYTE, [0x68, 0xa9, 0xe8, 0xe9, ...range(0xb8, 0xbf)], false, IMM_V);
define(ONE_BYTE, [0xc2, 0xca], false, IMM_16);
define(ONE_BYTE, [0xc8], false, IMM_16_8);
define(ONE_BYTE, [0x9a, 0xea], false, IMM_FAR);
define(ONE_BYTE, [0xa0, 0xa1, 0xa2, 0xa3], false, IMM_MOFFS);

TWO_BYTE.fill(0);
for (let op = 0; op < 256; op++) TWO_BYTE[op * 2] = 0xff;
define(TWO_BYTE, [0x00, 0x01, 0x02, 0x03, 0x1f, 0x20, 0x21, 0x22, 0x23, ...range(0x40, 0x4f), ...range(0x90, 0x9f)], true, IMM_NONE);
define(TWO_BYTE, [0xa3, 0xa5, 0xab, 0xad, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc7], true, IMM_NONE);
define(TWO_BYTE, [0xa4, 0xac, 0xba], true, IMM_8);
define(TWO_BYTE, range(0x80, 0x8f), false, IMM_V);
define(TWO_BYTE, [0x06, 0x08, 0x09, 0x0b, 0x30, 0x31, 0x32, 0x34, 0x35, 0xa0, 0xa1, 0xa2, 0xa8, 0xa9, ...range(0xc8, 0xcf)], false, IMM_NONE);

const MAX_LENGTH = 15;

/**
 * Decodes the instruction at `eip`; `byteAt(i)` returns the i-th byte from its start, or −1
 * where no byte can be read. Returns null for an encoding it cannot size (undefined
 * opcodes, instructions cut off), which the block compiler leaves to the interpreter.
 */
export function decodeInstruction(byteAt: (offset: number) => number, eip: number, code32: boolean): DecodedInstruction | null {
  let position = 0;
  let operandSize32 = code32;
  let addressSize32 = code32;
  let segmentOverride = -1;
  let repeat = 0;
  let lock = false;
  const next = (): number => {
    if (position >= MAX_LENGTH) return -1;
    return byteAt(position++);
  };
  let byte = next();
  for (;;) {
    if (byte < 0) return null;
    if (byte === 0x26 || byte === 0x2e || byte === 0x36 || byte === 0x3e) segmentOverride = (byte >> 3) & 3;
    else if (byte === 0x64 || byte === 0x65) segmentOverride = byte - 0x60;
    else if (byte === 0x66) operandSize32 = !code32;
    else if (byte === 0x67) addressSize32 = !code32;
    else if (byte === 0xf0) lock = true;
    else if (byte === 0xf2) repeat = 1;
    else if (byte === 0xf3) repeat = 2;
    else break;
    byte = next();
  }
  let opcode = byte;
  let hasModrm: boolean;
  let immediateKind: number;
  if (byte === 0x0f) {
    const second = next();
    if (second < 0 || TWO_BYTE[second * 2] === 0xff) return null;
    opcode = 0x100 | second;
    hasModrm = TWO_BYTE[second * 2] === 1;
    immediateKind = TWO_BYTE[second * 2 + 1]!;
  } else {
    hasModrm = ONE_BYTE[byte * 2] === 1;
    immediateKind = ONE_BYTE[byte * 2 + 1]!;
  }

  let modrm = -1;
  let base = -1;
  let base2 = -1;
  let index = -1;
  let scale = 0;
  let displacement = 0;
  let defaultSegment = DS;
  if (hasModrm) {
    modrm = next();
    if (modrm < 0) return null;
    // MOV to/from CRn/DRn ignore the mod field: always a register, no displacement.
    if (opcode >= 0x120 && opcode <= 0x123) modrm |= 0xc0;
    const mod = modrm >> 6;
    const rm = modrm & 7;
    if (mod !== 3) {
      if (addressSize32) {
        if (rm === 4) {
          const sib = next();
          if (sib < 0) return null;
          const sibBase = sib & 7;
          const sibIndex = (sib >> 3) & 7;
          scale = sib >> 6;
          if (sibIndex !== 4) index = sibIndex;
          if (sibBase === 5 && mod === 0) {
            const value = readImmediate(next, 4);
            if (value === null) return null;
            displacement = value;
          } else {
            base = sibBase;
            if (sibBase === 4 || sibBase === 5) defaultSegment = SS;
          }
        } else if (rm === 5 && mod === 0) {
          const value = readImmediate(next, 4);
          if (value === null) return null;
          displacement = value;
        } else {
          base = rm;
          if (rm === 5) defaultSegment = SS;
        }
        if (mod === 1) {
          const value = next();
          if (value < 0) return null;
          displacement = (displacement + ((value << 24) >> 24)) | 0;
        } else if (mod === 2) {
          const value = readImmediate(next, 4);
          if (value === null) return null;
          displacement = (displacement + value) | 0;
        }
      } else {
        // 16-bit forms: BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP (or disp16), BX.
        const bases16 = [[3, 6], [3, 7], [5, 6], [5, 7], [6, -1], [7, -1], [5, -1], [3, -1]] as const;
        if (rm === 6 && mod === 0) {
          const value = readImmediate(next, 2);
          if (value === null) return null;
          displacement = value;
        } else {
          base = bases16[rm]![0];
          base2 = bases16[rm]![1];
          if (rm === 2 || rm === 3 || rm === 6) defaultSegment = SS;
        }
        if (mod === 1) {
          const value = next();
          if (value < 0) return null;
          displacement = (value << 24) >> 24;
        } else if (mod === 2) {
          const value = readImmediate(next, 2);
          if (value === null) return null;
          displacement = value;
        }
      }
    }
  }

  let immediate = 0;
  let immediate2 = 0;
  const operandBytes = operandSize32 ? 4 : 2;
  let value: number | null = 0;
  switch (immediateKind) {
    case IMM_8:
      value = next();
      if (value < 0) return null;
      immediate = value;
      break;
    case IMM_V:
      value = readImmediate(next, operandBytes);
      if (value === null) return null;
      immediate = value;
      break;
    case IMM_16:
      value = readImmediate(next, 2);
      if (value === null) return null;
      immediate = value;
      break;
    case IMM_16_8: {
      value = readImmediate(next, 2);
      const level = next();
      if (value === null || level < 0) return null;
      immediate = value;
      immediate2 = level;
      break;
    }
    case IMM_FAR: {
      value = readImmediate(next, operandBytes);
      const selector = readImmediate(next, 2);
      if (value === null || selector === null) return null;
      immediate = value;
      immediate2 = selector;
      break;
    }
    case IMM_MOFFS:
      value = readImmediate(next, addressSize32 ? 4 : 2);
      if (value === null) return null;
      immediate = value;
      break;
    case IMM_GROUP3:
      if (((modrm >> 3) & 7) < 2) {
        value = readImmediate(next, opcode === 0xf6 ? 1 : operandBytes);
        if (value === null) return null;
        immediate = value;
      }
      break;
  }
  return {
    eip,
    length: position,
    opcode,
    operandSize32,
    addressSize32,
    segmentOverride,
    repeat,
    lock,
    modrm,
    base,
    index,
    scale,
    displacement,
    defaultSegment,
    base2,
    immediate,
    immediate2,
  };
}

/** Little-endian immediate of `bytes` bytes (1, 2 or 4); 4-byte values are int32. */
function readImmediate(next: () => number, bytes: number): number | null {
  let value = 0;
  for (let i = 0; i < bytes; i++) {
    const byte = next();
    if (byte < 0) return null;
    value |= byte << (8 * i);
  }
  return bytes === 4 ? value | 0 : value;
}
