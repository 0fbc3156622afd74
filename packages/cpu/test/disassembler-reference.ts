/**
 * Builds the disassembler's reference table with independent tools: instructions written
 * in NASM syntax are assembled by `nasm` (its listing gives each instruction's bytes), then
 * disassembled by `ndisasm` and by binutils' `objdump -M intel`. Random encodings (an opcode
 * from the Pentium Pro's integer set followed by random bytes) are disassembled by both tools
 * too; there the tools' agreed length is the reference. The result is committed as
 * disassembler-reference.json.gz so the tests need no tools; regenerate it with
 *   VMMKIT_UPDATE_DISASSEMBLER_TABLE=1 pnpm exec vitest run packages/cpu/test/disassembler-reference.test.ts
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REFERENCE_TABLE_PATH = join(dirname(fileURLToPath(import.meta.url)), "disassembler-reference.json.gz");

export interface ReferenceEntry {
  readonly bits: 16 | 32;
  /** Offset of the instruction in the assembled blob (relative branch targets depend on it). */
  readonly address: number;
  /** Hex bytes of exactly one instruction (for "random" entries: the candidate bytes; see length). */
  readonly bytes: string;
  /** "nasm": assembled from `source`; "random": random bytes. */
  readonly origin: "nasm" | "random";
  readonly source?: string;
  /** Length and text per tool; null when the tool did not decode an instruction there. */
  readonly ndisasm: { readonly length: number; readonly text: string } | null;
  readonly objdump: { readonly length: number; readonly text: string } | null;
}

export interface ReferenceTable {
  readonly tools: { readonly nasm: string; readonly objdump: string };
  readonly entries: readonly ReferenceEntry[];
}

export function toolsAvailable(): boolean {
  try {
    execFileSync("nasm", ["-v"], { stdio: "pipe" });
    execFileSync("ndisasm", ["-v"], { stdio: "pipe" });
    execFileSync("objdump", ["-v"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

/** Deterministic pseudo-random numbers (mulberry32), so the table regenerates identically. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REG8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];
const REG16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];
const REG32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const CONDITIONS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];

const MEMORY: Record<16 | 32, string[]> = {
  16: [
    "[bx+si]", "[bx+di+0x10]", "[bp+si-0x20]", "[bp+di+0x1234]", "[si]", "[di-0x1]", "[bp+0x8]", "[bx]", "[0x1234]",
    "[bp-0x7ff0]", "[es:bx]", "[ss:si+0x4]", "[cs:0x100]", "[ds:bp+0x2]", "[fs:bx+si]", "[gs:di]",
    "[eax]", "[esp+0x4]", "[eax*4+0x10]", "[ebp+ecx*2-0x8]",
  ],
  32: [
    "[eax]", "[ebx+0x10]", "[ebp-0x80]", "[ecx+0x12345678]", "[esp]", "[esp+0x8]", "[esp+eax*2+0x7f]", "[eax*4+0x100]",
    "[0x12345678]", "[ebp]", "[edi+esi*8-0x1000]", "[edx+ebx]", "[fs:eax]", "[gs:0x10]", "[es:ebx+ecx]", "[ss:ebp+0x4]", "[cs:esi]",
    "[bx+si]", "[bp+0x10]", "[di]",
  ],
};

/** NASM source templates; placeholders are filled from the pools below. */
const TEMPLATES: readonly string[] = [
  ...["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"].flatMap((op) => [
    `${op} {E8}, {r8}`, `${op} {E16}, {r16}`, `${op} {E32}, {r32}`, `${op} {r8}, {M}`, `${op} {r16}, {M}`, `${op} {r32}, {M}`,
    `${op} al, {i8}`, `${op} ax, strict word {i16}`, `${op} eax, strict dword {i32}`,
    `${op} {E8}, {i8}`, `${op} {E16}, strict word {i16}`, `${op} {E32}, strict dword {i32}`, `${op} {E16}, byte {s8}`, `${op} {E32}, byte {s8}`,
  ]),
  ...["inc", "dec", "not", "neg", "mul", "imul", "div", "idiv"].flatMap((op) => [`${op} {E8}`, `${op} {E16}`, `${op} {E32}`]),
  "inc {r16}", "inc {r32}", "dec {r16}", "dec {r32}",
  "test {E8}, {r8}", "test {E16}, {r16}", "test {E32}, {r32}", "test al, {i8}", "test ax, {i16}", "test eax, {i32}",
  "test {E8}, {i8}", "test {E16}, {i16}", "test {E32}, {i32}",
  "xchg {E8}, {r8}", "xchg {E16}, {r16}", "xchg {E32}, {r32}", "xchg ax, {r16}", "xchg eax, {r32}",
  "mov {E8}, {r8}", "mov {E16}, {r16}", "mov {E32}, {r32}", "mov {r8}, {M}", "mov {r16}, {M}", "mov {r32}, {M}",
  "mov {r8}, {i8}", "mov {r16}, {i16}", "mov {r32}, {i32}", "mov {E8}, {i8}", "mov {E16}, {i16}", "mov {E32}, {i32}",
  "mov al, [{moffs}]", "mov ax, [{moffs}]", "mov eax, [{moffs}]", "mov [{moffs}], al", "mov [{moffs}], ax", "mov [{moffs}], eax",
  "mov {E16}, {sreg}", "mov {r32}, {sreg}", "mov {sreg_load}, {E16}",
  "lea {r16}, {M}", "lea {r32}, {M}",
  ...["les", "lds", "lss", "lfs", "lgs"].flatMap((op) => [`${op} {r16}, {M}`, `${op} {r32}, {M}`]),
  "push {r16}", "push {r32}", "pop {r16}", "pop {r32}", "push word {M}", "push dword {M}", "pop word {M}", "pop dword {M}",
  "push byte {s8}", "push strict word {i16}", "push strict dword {i32}", "push word {i8}", "push dword {i8}",
  ...["es", "cs", "ss", "ds", "fs", "gs"].flatMap((segment) => [`push ${segment}`, `o16 push ${segment}`, `o32 push ${segment}`]),
  ...["es", "ss", "ds", "fs", "gs"].flatMap((segment) => [`pop ${segment}`, `o32 pop ${segment}`]),
  ..."pusha popa pushad popad pushf popf pushfd popfd sahf lahf cbw cwde cwd cdq daa das aaa aas aam aad salc xlatb cmc clc stc cli sti cld std hlt wait nop int3 into int1 iret iretd iretw leave ret retf clts invd wbinvd ud2 wrmsr rdtsc rdmsr rdpmc sysenter sysexit cpuid rsm fnop fchs fabs ftst fxam fld1 fldl2t fldl2e fldpi fldlg2 fldln2 fldz f2xm1 fyl2x fptan fpatan fxtract fprem1 fdecstp fincstp fprem fyl2xp1 fsqrt fsincos frndint fscale fsin fcos fucompp fcompp fnclex fninit"
    .split(" "),
  "aam {i8}", "aad {i8}", "int {i8}", "ret {i16}", "retf {i16}", "enter {i16}, {i8}", "o32 ret", "o16 ret", "o32 retf {i16}", "o32 leave",
  ...["rol", "ror", "rcl", "rcr", "shl", "shr", "sar"].flatMap((op) => [
    `${op} {E8}, 1`, `${op} {E16}, 1`, `${op} {E32}, 1`, `${op} {E8}, cl`, `${op} {E16}, cl`, `${op} {E32}, cl`,
    `${op} {E8}, {i8x}`, `${op} {E16}, {i8x}`, `${op} {E32}, {i8x}`,
  ]),
  "bound {r16}, {M}", "bound {r32}, {M}", "arpl {E16}, {r16}",
  "imul {r16}, {E16}, byte {s8}", "imul {r32}, {E32}, byte {s8}", "imul {r16}, {E16}, strict word {i16}", "imul {r32}, {E32}, strict dword {i32}",
  "imul {r16}, {E16}", "imul {r32}, {E32}",
  ...["movs", "cmps", "stos", "lods", "scas", "ins", "outs"].flatMap((op) => [
    `${op}b`, `${op}w`, `${op}d`, `{rep} ${op}b`, `{rep} ${op}w`, `{rep} ${op}d`, `a16 ${op}b`, `a32 ${op}d`, `{seg} ${op}b`, `{seg} ${op}w`,
  ]),
  "{seg} xlatb", "a32 xlatb", "a16 xlatb",
  "in al, {i8}", "in ax, {i8}", "in eax, {i8}", "in al, dx", "in ax, dx", "in eax, dx",
  "out {i8}, al", "out {i8}, ax", "out {i8}, eax", "out dx, al", "out dx, ax", "out dx, eax",
  "jmp short $+{rel8}", "jmp near $+{rel16}", "call $+{rel16}", "jmp {E16}", "jmp {E32}", "call {E16}", "call {E32}",
  "jmp far {M}", "call far {M}", "jmp dword far {M}", "call word far {M}",
  "jmp {sel}:{i16}", "call {sel}:{i16}", "jmp dword {sel}:{i32}", "call dword {sel}:{i32}",
  ...CONDITIONS.flatMap((cc) => [`j${cc} short $+{rel8}`, `j${cc} near $+{rel16}`, `set${cc} {E8}`, `cmov${cc} {r16}, {E16}`, `cmov${cc} {r32}, {E32}`]),
  "loop $+{rel8}", "loope $+{rel8}", "loopne $+{rel8}", "jcxz $+{rel8}", "jecxz $+{rel8}", "loop $+{rel8}, cx", "loop $+{rel8}, ecx",
  "sldt {E16}", "str {E16}", "lldt {E16}", "ltr {E16}", "verr {E16}", "verw {E16}", "sldt {r32}", "str {r32}",
  "sgdt {M}", "sidt {M}", "lgdt {M}", "lidt {M}", "smsw {E16}", "smsw {r32}", "lmsw {E16}", "invlpg {M}",
  "lar {r16}, {E16}", "lsl {r16}, {E16}", "lar {r32}, {r32}", "lsl {r32}, word {M}",
  "mov {r32}, {cr}", "mov {cr}, {r32}", "mov {r32}, {dr}", "mov {dr}, {r32}",
  ...["bt", "bts", "btr", "btc"].flatMap((op) => [`${op} {E16}, {r16}`, `${op} {E32}, {r32}`, `${op} {E16}, {i8x}`, `${op} {E32}, {i8x}`]),
  ...["shld", "shrd"].flatMap((op) => [`${op} {E16}, {r16}, {i8x}`, `${op} {E32}, {r32}, {i8x}`, `${op} {E16}, {r16}, cl`, `${op} {E32}, {r32}, cl`]),
  "bsf {r16}, {E16}", "bsf {r32}, {E32}", "bsr {r16}, {E16}", "bsr {r32}, {E32}",
  "movzx {r16}, {E8}", "movzx {r32}, {E8}", "movzx {r32}, {E16}", "movsx {r16}, {E8}", "movsx {r32}, {E8}", "movsx {r32}, {E16}",
  "cmpxchg {E8}, {r8}", "cmpxchg {E16}, {r16}", "cmpxchg {E32}, {r32}", "xadd {E8}, {r8}", "xadd {E16}, {r16}", "xadd {E32}, {r32}",
  "cmpxchg8b {M}", "bswap {r32}", "nop {E16}", "nop {E32}",
  "lock add {M8}, {r8}", "lock xchg {M32}, {r32}", "lock cmpxchg8b {M}", "lock inc {M16}", "lock btc {M32}, {i8x}",
  ...["fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"].flatMap((op) => [`${op} dword {M}`, `${op} qword {M}`]),
  ...["fadd", "fmul", "fsub", "fsubr", "fdiv", "fdivr"].flatMap((op) => [`${op} st0, {st}`, `${op} {st}, st0`, `${op}p {st}, st0`]),
  ...["fiadd", "fimul", "ficom", "ficomp", "fisub", "fisubr", "fidiv", "fidivr"].flatMap((op) => [`${op} word {M}`, `${op} dword {M}`]),
  "fld dword {M}", "fld qword {M}", "fld tword {M}", "fst dword {M}", "fst qword {M}", "fstp dword {M}", "fstp qword {M}", "fstp tword {M}",
  "fild word {M}", "fild dword {M}", "fild qword {M}", "fist word {M}", "fist dword {M}", "fistp word {M}", "fistp dword {M}", "fistp qword {M}",
  "fbld {M}", "fbstp {M}", "fldenv {M}", "fnstenv {M}", "frstor {M}", "fnsave {M}", "fldcw {M}", "fnstcw {M}", "fnstsw {M}", "fnstsw ax",
  "fld {st}", "fst {st}", "fstp {st}", "fxch {st}", "ffree {st}", "fucom {st}", "fucomp {st}", "fcom {st}", "fcomp {st}", "ffreep {st}",
  ...["fcmovb", "fcmove", "fcmovbe", "fcmovu", "fcmovnb", "fcmovne", "fcmovnbe", "fcmovnu", "fcomi", "fucomi", "fcomip", "fucomip"].map((op) => `${op} st0, {st}`),
  // Encodings NASM does not choose by itself, written as bytes.
  "db 0x82, 0xc1, 0x80", "db 0x82, 0x38, 0xff", "db 0xf6, 0x08, 0x05", "db 0xd0, 0x30", "db 0xd1, 0xf0", "db 0xd2, 0x37", "db 0xc0, 0xf1, 0x3",
  "db 0xfe, 0xc0", "db 0xfe, 0xc9", "db 0xff, 0xc0", "db 0xff, 0xcf", "db 0x8f, 0xc0", "db 0xc6, 0xc0, 0x05",
  "db 0x0f, 0x20, 0x00", "db 0x0f, 0x22, 0x58", "db 0x0f, 0x21, 0x7f", "db 0x0f, 0x23, 0x07",
  "db 0xd9, 0xd9", "db 0xdf, 0xc1",
  "db 0x2e, 0x3e, 0x8b, 0x00", "db 0x26, 0x64, 0x8b, 0x07", "db 0x2e, 0x40", "db 0x3e, 0x90", "db 0x67, 0x40", "db 0x66, 0x66, 0x40",
  "db 0x26, 0x50", "db 0xf3, 0x40", "db 0xf2, 0x40", "db 0xf0, 0x40", "db 0xf2, 0xf3, 0xa4", "db 0xf3, 0xf2, 0xa6", "db 0x67, 0x66, 0xa5",
  "db 0x8c, 0xe8", "db 0x8e, 0xe0",
  "db 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x66, 0x81, 0x84, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80",
];

/** Byte-written encodings whose length depends on the code size. */
const MODE_ENCODINGS: Record<16 | 32, readonly string[]> = {
  16: [
    "db 0x82, 0x06, 0x34, 0x12, 0x05", "db 0xf7, 0xc9, 0x34, 0x12", "db 0xc7, 0xc3, 0x01, 0x02",
    "db 0x66, 0xe8, 0x00, 0x00, 0x00, 0x00", "db 0x66, 0x0f, 0x84, 0x10, 0x00, 0x00, 0x00", "db 0x66, 0xe9, 0x00, 0x10, 0x00, 0x00",
    "db 0x66, 0xeb, 0xfe", "db 0x67, 0xe3, 0x10", "db 0x66, 0xc2, 0x08, 0x00",
  ],
  32: [
    "db 0x82, 0x06, 0x34", "db 0xf7, 0xc9, 0x34, 0x12, 0x00, 0x00", "db 0xc7, 0xc3, 0x01, 0x02, 0x03, 0x04",
    "db 0x66, 0xe8, 0x00, 0x00", "db 0x66, 0x0f, 0x84, 0x10, 0x00", "db 0x66, 0xe9, 0x00, 0x10",
    "db 0x66, 0xeb, 0xfe", "db 0x67, 0xe3, 0x10", "db 0x66, 0xc2, 0x08, 0x00",
  ],
};

const BAD_ENCODINGS: readonly string[] = [
  "db 0x8d, 0xc0", "db 0xc4, 0xc0", "db 0xc5, 0xc3", "db 0x62, 0xc0", "db 0xff, 0xd8", "db 0xff, 0xe8", "db 0xff, 0x38",
  "db 0xfe, 0x10", "db 0x8f, 0x08", "db 0xc6, 0x08, 0x05", "db 0xc7, 0x30, 0x05, 0x00", "db 0x8c, 0x30", "db 0x8e, 0x08",
  "db 0x0f, 0x01, 0xc0", "db 0x0f, 0x01, 0x28", "db 0x0f, 0x00, 0x30", "db 0x0f, 0xc7, 0xc8", "db 0x0f, 0xc7, 0x00",
  "db 0x0f, 0xba, 0x00, 0x05", "db 0x0f, 0x20, 0xc8", "db 0x0f, 0x22, 0xe8", "db 0x0f, 0x04", "db 0x0f, 0x0a", "db 0x0f, 0xa6",
  "db 0xd9, 0xd1", "db 0xd9, 0x08", "db 0xdb, 0x20", "db 0xdd, 0x28", "db 0xdb, 0xe7", "db 0xda, 0xf0",
];

function fill(template: string, bits: 16 | 32, next: () => number): string {
  const pick = <T,>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
  const memory = () => pick(MEMORY[bits]);
  const hexValue = (max: number) => "0x" + Math.floor(next() * max).toString(16);
  return template.replace(/\{(\w+)\}/g, (_whole, name: string) => {
    switch (name) {
      case "r8": return pick(REG8);
      case "r16": return pick(REG16);
      case "r32": return pick(REG32);
      case "E8": return next() < 0.3 ? pick(REG8) : `byte ${memory()}`;
      case "E16": return next() < 0.3 ? pick(REG16) : `word ${memory()}`;
      case "E32": return next() < 0.3 ? pick(REG32) : `dword ${memory()}`;
      case "M": return memory();
      case "M8": return `byte ${memory()}`;
      case "M16": return `word ${memory()}`;
      case "M32": return `dword ${memory()}`;
      case "i8": return hexValue(0x100);
      case "i8x": return hexValue(0x20);
      case "s8": return pick(["-0x80", "-0x1", "0x7f", "0x10", "-0x2"]);
      case "i16": return hexValue(0x10000);
      case "i32": return hexValue(0x100000000);
      case "sel": return hexValue(0x10000);
      case "moffs": return pick(bits === 16 ? ["0x1234", "es:0x10", "dword 0x12345678"] : ["0x12345678", "fs:0x10", "word 0x1234"]);
      case "sreg": return pick(["es", "cs", "ss", "ds", "fs", "gs"]);
      case "sreg_load": return pick(["es", "ss", "ds", "fs", "gs"]);
      case "cr": return pick(["cr0", "cr2", "cr3", "cr4"]);
      case "dr": return pick(["dr0", "dr1", "dr2", "dr3", "dr6", "dr7"]);
      case "st": return `st${Math.floor(next() * 8)}`;
      case "seg": return pick(["es", "cs", "ss", "ds", "fs", "gs"]);
      case "rep": return pick(["rep", "repe", "repne"]);
      case "rel8": return pick(["0x2", "0x10", "-0x10", "0x7f", "-0x7e"]);
      case "rel16": return pick(["0x10", "-0x10", "0x1000", "-0x1000", "0x200"]);
      default: throw new Error(`template ${template}: unknown placeholder ${name}`);
    }
  });
}

/** NASM source lines for one code size: each template instantiated a few times, then the bad encodings. */
export function corpus(bits: 16 | 32): string[] {
  const next = random(bits);
  const lines = new Set<string>();
  for (const template of TEMPLATES) {
    const copies = template.includes("{") ? 3 : 1;
    for (let i = 0; i < copies; i++) lines.add(fill(template, bits, next));
  }
  for (const line of MODE_ENCODINGS[bits]) lines.add(line);
  for (const line of BAD_ENCODINGS) lines.add(line);
  return [...lines];
}

/** One-byte and 0F opcodes of the Pentium Pro's integer set and the x87 escapes (no prefixes). */
function validOpcodes(): number[][] {
  const opcodes: number[][] = [];
  const prefixes = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x0f]);
  for (let op = 0; op < 256; op++) if (!prefixes.has(op)) opcodes.push([op]);
  const twoByte = [
    0x00, 0x01, 0x02, 0x03, 0x06, 0x08, 0x09, 0x0b, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa8, 0xa9,
    0xaa, 0xab, 0xac, 0xad, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc7,
  ];
  for (let op = 0x40; op < 0x50; op++) twoByte.push(op);
  for (let op = 0x80; op < 0xa0; op++) twoByte.push(op);
  for (let op = 0xc8; op < 0xd0; op++) twoByte.push(op);
  for (const op of twoByte) opcodes.push([0x0f, op]);
  return opcodes;
}

/**
 * Random candidates: up to two prefixes, an opcode, then random bytes, 15 bytes in all. REP
 * prefixes are left out (with 0F opcodes they select SSE instructions, outside this set).
 */
export function randomCandidates(bits: 16 | 32, count: number): Uint8Array[] {
  const next = random(0x5eed + bits);
  const opcodes = validOpcodes();
  const prefixes = [0x66, 0x67, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0xf0];
  const candidates: Uint8Array[] = [];
  for (let n = 0; n < count; n++) {
    const bytes: number[] = [];
    const prefixCount = Math.floor(next() * 3);
    for (let i = 0; i < prefixCount; i++) bytes.push(prefixes[Math.floor(next() * prefixes.length)]!);
    bytes.push(...opcodes[Math.floor(next() * opcodes.length)]!);
    while (bytes.length < 15) bytes.push(Math.floor(next() * 256));
    candidates.push(Uint8Array.from(bytes));
  }
  return candidates;
}

interface Decoded {
  readonly length: number;
  readonly text: string;
}

/** Parses `ndisasm` output into instructions by offset (continuation lines add bytes). */
function parseNdisasm(output: string): Map<number, Decoded> {
  const result = new Map<number, Decoded>();
  let current: { offset: number; hexLength: number; text: string } | undefined;
  const flush = () => {
    if (current) result.set(current.offset, { length: current.hexLength / 2, text: current.text });
  };
  for (const line of output.split("\n")) {
    const main = /^([0-9A-F]{8})\s{2}([0-9A-F]+)\s+(.*)$/.exec(line);
    if (main) {
      flush();
      current = { offset: parseInt(main[1]!, 16), hexLength: main[2]!.length, text: main[3]!.trim() };
      continue;
    }
    const continuation = /^\s+-([0-9A-F]+)\s*$/.exec(line);
    if (continuation && current) current.hexLength += continuation[1]!.length;
  }
  flush();
  return result;
}

/** Parses `objdump -d` output into instructions by offset. */
function parseObjdump(output: string): Map<number, Decoded> {
  const result = new Map<number, Decoded>();
  let current: { offset: number; length: number; text: string } | undefined;
  const flush = () => {
    if (current) result.set(current.offset, { length: current.length, text: current.text });
    current = undefined;
  };
  for (const line of output.split("\n")) {
    const match = /^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*(?:\t(.*))?$/.exec(line);
    if (!match) {
      if (/^[0-9a-f]+ <.*>:$/.test(line)) flush();
      continue;
    }
    const length = match[2]!.trim().split(" ").length;
    if (match[3] !== undefined) {
      flush();
      current = { offset: parseInt(match[1]!, 16), length, text: match[3].trim().replace(/\s+/g, " ") };
    } else if (current) {
      current = { ...current, length: current.length + length };
    }
  }
  flush();
  return result;
}

function run(command: string, args: readonly string[]): string {
  return execFileSync(command, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, stdio: ["ignore", "pipe", "pipe"] });
}

/** Drops the lines NASM rejects (a template that does not exist in this mode), by line number. */
function assemblable(bits: 16 | 32, lines: readonly string[], work: string): string[] {
  let kept = lines.slice();
  for (let attempt = 0; attempt < 5; attempt++) {
    const asm = join(work, "check.asm");
    writeFileSync(asm, [`bits ${bits}`, ...kept].join("\n") + "\n");
    try {
      execFileSync("nasm", ["-f", "bin", "-o", join(work, "check.bin"), asm], { stdio: "pipe" });
      return kept;
    } catch (error) {
      const stderr = String((error as { stderr?: Buffer }).stderr ?? "");
      const bad = new Set([...stderr.matchAll(/check\.asm:(\d+): error/g)].map((match) => Number(match[1]) - 2));
      if (bad.size === 0) throw error;
      kept = kept.filter((_line, index) => !bad.has(index));
    }
  }
  throw new Error("nasm keeps rejecting the corpus");
}

/** Disassembles labelled blocks (one instruction or candidate each) with both tools. */
function disassembleBlocks(bits: 16 | 32, sourceLines: readonly string[], work: string, name: string) {
  const source = [`bits ${bits}`, ...sourceLines.map((line, index) => `L${index}: ${line}`)].join("\n") + "\n";
  const asm = join(work, `${name}.asm`);
  writeFileSync(asm, source);
  run("nasm", ["-f", "bin", "-l", join(work, `${name}.lst`), "-o", join(work, `${name}.bin`), asm]);
  run("nasm", ["-f", "elf32", "-o", join(work, `${name}.o`), asm]);
  const blob = readFileSync(join(work, `${name}.bin`));
  // Offsets of the labels from the listing: "   12 00000010 6683C005   L10: add ax, 5".
  const offsets: number[] = [];
  const bytesOf: string[] = [];
  for (const line of readFileSync(join(work, `${name}.lst`), "utf8").split("\n")) {
    const match = /^\s*\d+ ([0-9A-F]{8}) ([0-9A-F]+)(-?)\s+L(\d+):/.exec(line);
    if (match) offsets[Number(match[4])] = parseInt(match[1]!, 16);
  }
  for (let index = 0; index < sourceLines.length; index++) {
    const start = offsets[index];
    if (start === undefined) throw new Error(`nasm listing has no offset for line ${index}: ${sourceLines[index]}`);
    const end = index + 1 < sourceLines.length ? offsets[index + 1]! : blob.length;
    bytesOf.push(blob.subarray(start, end).toString("hex"));
  }
  const syncs = offsets.flatMap((offset) => ["-s", String(offset)]);
  const ndisasm = parseNdisasm(run("ndisasm", ["-b", String(bits), ...syncs, join(work, `${name}.bin`)]));
  const objdump = parseObjdump(run("objdump", ["-d", "-M", bits === 16 ? "intel,i8086" : "intel", join(work, `${name}.o`)]));
  return { offsets, bytesOf, ndisasm, objdump };
}

function toolVersion(command: string, args: readonly string[]): string {
  return run(command, args).split("\n")[0]!.trim();
}

/** Runs the tools and returns the table (the test writes it to REFERENCE_TABLE_PATH). */
export function generateReferenceTable(randomCount = 1500): ReferenceTable {
  const work = mkdtempSync(join(tmpdir(), "vmmkit-disassembler-"));
  const entries: ReferenceEntry[] = [];
  try {
    for (const bits of [16, 32] as const) {
      const lines = assemblable(bits, corpus(bits), work);
      const assembled = disassembleBlocks(bits, lines, work, `corpus${bits}`);
      lines.forEach((line, index) => {
        const offset = assembled.offsets[index]!;
        entries.push({
          bits,
          address: offset,
          bytes: assembled.bytesOf[index]!,
          origin: "nasm",
          source: line,
          ndisasm: assembled.ndisasm.get(offset) ?? null,
          objdump: assembled.objdump.get(offset) ?? null,
        });
      });
      const candidates = randomCandidates(bits, randomCount);
      const randomLines = candidates.map((bytes) => "db " + Array.from(bytes, (byte) => "0x" + byte.toString(16)).join(", "));
      const decoded = disassembleBlocks(bits, randomLines, work, `random${bits}`);
      candidates.forEach((bytes, index) => {
        const offset = decoded.offsets[index]!;
        entries.push({
          bits,
          address: offset,
          bytes: Buffer.from(bytes).toString("hex"),
          origin: "random",
          ndisasm: decoded.ndisasm.get(offset) ?? null,
          objdump: decoded.objdump.get(offset) ?? null,
        });
      });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { tools: { nasm: toolVersion("nasm", ["-v"]), objdump: toolVersion("objdump", ["-v"]) }, entries };
}

export function readReferenceTable(): ReferenceTable {
  return JSON.parse(gunzipSync(readFileSync(REFERENCE_TABLE_PATH)).toString("utf8")) as ReferenceTable;
}
