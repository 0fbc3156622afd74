/**
 * The disassembler's contract: a table of encodings with the text and length worked out by
 * hand from the Intel SDM opcode maps (the comment on each row shows the fields), per CPU
 * model; branch targets and control flow; the reader API; and refusals. Broad coverage
 * against independent tools is in test/disassembler-reference.test.ts and against recorded
 * silicon in test/disassembler-single-step.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { CpuModel } from "./cpu.js";
import { disassemble, disassembleFrom } from "./disassembler.js";
import { isCpuError } from "./errors.js";

interface Row {
  readonly bytes: readonly number[];
  readonly text: string;
  readonly bits?: 16 | 32;
  readonly model?: CpuModel;
  readonly address?: number;
  /** When not all of `bytes`. */
  readonly length?: number;
}

const row = (bytes: readonly number[], text: string, options: Omit<Row, "bytes" | "text"> = {}): Row => ({ bytes, text, ...options });

const TABLE: Record<string, readonly Row[]> = {
  "ModR/M and SIB addressing, size keywords only where no register gives the size": [
    row([0x80, 0x40, 0x10, 0x05], "add byte [bx+si+0x10], 0x5"), // 80 /0 ib; mod 01 rm 000, disp8
    row([0x81, 0x04, 0x85, 0x00, 0x01, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12], "add dword [eax*4+0x100], 0x12345678", { bits: 32 }), // SIB 10 000 101, mod 00: no base, disp32
    row([0x8b, 0x46, 0xfe], "mov ax, [bp-0x2]"), // mod 01 rm 110 = bp+disp8
    row([0x8b, 0x06, 0x34, 0x12], "mov ax, [0x1234]"), // mod 00 rm 110 = disp16
    row([0x8b, 0x44, 0x24, 0x08], "mov eax, [esp+0x8]", { bits: 32 }), // SIB with no index
    row([0x8b, 0x45, 0x00], "mov eax, [ebp+0x0]", { bits: 32 }), // mod 01 rm 101: ebp needs a displacement byte
    row([0x66, 0x67, 0x8b, 0x44, 0x88, 0x10], "mov eax, [eax+ecx*4+0x10]"), // 16-bit code, both size prefixes
    row([0x67, 0x8b, 0x07], "mov eax, [bx]", { bits: 32 }), // 32-bit code, 16-bit addressing
    row([0x00, 0x07], "add [bx], al"),
    row([0xfe, 0x07], "inc byte [bx]"),
    row([0xff, 0x37], "push word [bx]"),
    row([0x8f, 0x07], "pop word [bx]"),
    row([0xd1, 0x27], "shl word [bx], 1"),
    row([0xd2, 0x27], "shl byte [bx], cl"), // CL is a count, not a size
    row([0xc6, 0x07, 0x05], "mov byte [bx], 0x5"),
    row([0x8c, 0x1f], "mov [bx], ds"),
    row([0x8e, 0x1f], "mov ds, [bx]"),
    row([0x0f, 0xb6, 0x07], "movzx ax, byte [bx]"), // the register is wider than the memory
    row([0x66, 0x0f, 0xbf, 0xc3], "movsx eax, bx"),
    row([0x0f, 0x03, 0x07], "lsl ax, [bx]"),
    row([0x0f, 0x02, 0x03], "lar eax, word [ebx]", { bits: 32 }),
  ],
  "prefixes": [
    row([0x26, 0x8a, 0x07], "mov al, [es:bx]"),
    row([0x26, 0x2e, 0x8b, 0x07], "mov ax, [cs:bx]"), // the last segment prefix wins
    row([0x2e, 0x40], "cs inc ax"), // a segment prefix nothing uses is shown as a word
    row([0xf3, 0xa4], "rep movsb"),
    row([0xf3, 0xa6], "repe cmpsb"),
    row([0xf2, 0xae], "repne scasb"),
    row([0x2e, 0xac], "cs lodsb"),
    row([0xf3, 0x66, 0xa5], "rep movsd"),
    row([0x67, 0xac], "a32 lodsb"),
    row([0x66, 0x06], "o32 push es"),
    row([0x66, 0x9c], "pushfd"),
    row([0x66, 0x60], "pushad"),
    row([0x66, 0x98], "cwde"),
    row([0x66, 0x99], "cdq"),
    row([0x66, 0xcf], "iretd"),
    row([0x66, 0x9d], "popf", { bits: 32 }),
    row([0xf0, 0x0f, 0xb1, 0x0f], "lock cmpxchg [edi], ecx", { bits: 32 }),
    row([0xf0, 0x40], "(bad)"), // LOCK INC register: #UD from the 80386 on
    row([0xf0, 0x40], "lock inc ax", { model: "80286" }),
    row([...new Array<number>(14).fill(0x2e), 0x90], "cs nop"), // 15 bytes: the longest instruction
    row([...new Array<number>(15).fill(0x2e), 0x90], "(bad)", { length: 15 }), // 16 bytes: #GP; decoding stops at 15
  ],
  "the 0F map": [
    row([0x0f, 0x44, 0xc1], "cmove eax, ecx", { bits: 32 }),
    row([0x0f, 0x94, 0xc0], "sete al"),
    row([0x0f, 0xc9], "bswap ecx", { bits: 32 }),
    row([0x0f, 0xc7, 0x0e], "cmpxchg8b qword [esi]", { bits: 32 }),
    row([0x0f, 0xc1, 0xd8], "xadd eax, ebx", { bits: 32 }),
    row([0x0f, 0xa3, 0xc8], "bt eax, ecx", { bits: 32 }),
    row([0x0f, 0xba, 0x28, 0x05], "bts dword [eax], 0x5", { bits: 32 }),
    row([0x0f, 0xbc, 0xc1], "bsf ax, cx"),
    row([0x0f, 0xa4, 0xc8, 0x04], "shld eax, ecx, 0x4", { bits: 32 }),
    row([0x0f, 0xad, 0xc8], "shrd eax, ecx, cl", { bits: 32 }),
    row([0x0f, 0xa2], "cpuid"),
    row([0x0f, 0x31], "rdtsc"),
    row([0x0f, 0x32], "rdmsr"),
    row([0x0f, 0x30], "wrmsr"),
    row([0x0f, 0xa0], "push fs"),
    row([0x0f, 0xa9], "pop gs"),
    row([0x0f, 0xaf, 0xc3], "imul ax, bx"),
    row([0x0f, 0x01, 0x16, 0x00, 0x10], "lgdt [0x1000]"),
    row([0x0f, 0x00, 0xd8], "ltr ax"),
    row([0x0f, 0x01, 0xe0], "smsw ax"),
    row([0x0f, 0x01, 0x38], "invlpg [eax]", { bits: 32 }),
    row([0x0f, 0x22, 0xd8], "mov cr3, eax", { bits: 32 }),
    row([0x0f, 0x20, 0x00], "mov eax, cr0", { bits: 32 }), // the mod field is ignored
    row([0x0f, 0x21, 0xf8], "mov eax, dr7", { bits: 32 }),
    row([0x0f, 0x02, 0xc3], "lar ax, bx"),
    row([0x0f, 0x06], "clts"),
    row([0x0f, 0x08], "invd"),
    row([0x0f, 0x09], "wbinvd"),
    row([0x0f, 0x34], "sysenter"),
    row([0x0f, 0x35], "sysexit"),
    row([0x0f, 0x0b], "ud2"),
    row([0x0f, 0x1f, 0x00], "nop dword [eax]", { bits: 32 }),
  ],
  "one-byte opcodes": [
    row([0x69, 0xc3, 0x10, 0x00], "imul ax, bx, 0x10"),
    row([0x6b, 0xc3, 0xff], "imul ax, bx, 0xffff"), // imm8 sign-extended to the operand size
    row([0xf7, 0xeb], "imul bx"),
    row([0x83, 0xc2, 0xe3], "add dx, 0xffe3"),
    row([0x27], "daa"),
    row([0x2f], "das"),
    row([0x37], "aaa"),
    row([0x3f], "aas"),
    row([0xd4, 0x0a], "aam 0xa"),
    row([0xd5, 0x0a], "aad 0xa"),
    row([0xc8, 0x08, 0x00, 0x01], "enter 0x8, 0x1"),
    row([0xc9], "leave"),
    row([0x62, 0x07], "bound ax, [bx]"),
    row([0xd7], "xlatb"),
    row([0xd6], "salc"),
    row([0xe4, 0x60], "in al, 0x60"),
    row([0xed], "in ax, dx"),
    row([0x66, 0xef], "out dx, eax"),
    row([0x6c], "insb"),
    row([0xf3, 0x6f], "rep outsw"),
    row([0xf4], "hlt"),
    row([0xcd, 0x21], "int 0x21"),
    row([0xcc], "int3"),
    row([0xce], "into"),
    row([0xf1], "int1"),
    row([0x91], "xchg cx, ax"),
    row([0xea, 0x00, 0x7c, 0x00, 0x00], "jmp 0x0:0x7c00"),
    row([0xff, 0x2f], "jmp far [bx]"),
    row([0xff, 0x1f], "call far [bx]"),
    row([0x66, 0xff, 0x1f], "o32 call far [bx]"),
    row([0xff, 0xd0], "call ax"),
  ],
  "x87 escapes": [
    row([0xd9, 0xc0], "fld st0"),
    row([0xdd, 0x07], "fld qword [bx]"),
    row([0xdb, 0x2f], "fld tword [bx]"),
    row([0xd8, 0x08], "fmul dword [bx+si]"),
    row([0xde, 0xc1], "faddp st1, st0"),
    row([0xd8, 0xc1], "fadd st0, st1"),
    row([0xdc, 0xc1], "fadd st1, st0"),
    row([0xdc, 0xe9], "fsub st1, st0"), // DC E8+i is FSUB ST(i), ST(0)
    row([0xdf, 0xe0], "fnstsw ax"),
    row([0xd9, 0xe8], "fld1"),
    row([0xda, 0xc1], "fcmovb st0, st1"),
    row([0xdb, 0xf1], "fcomi st0, st1"),
    row([0xd9, 0x08], "(bad)"), // D9 /1 with memory is reserved
    row([0xd9, 0x08], "esc 0x9, [bx+si]", { model: "8086" }), // the 8086 passes any escape to the coprocessor
  ],
  "undefined encodings": [
    row([0x0f, 0xff], "(bad)"),
    row([0x0f, 0x0f], "(bad)"),
    row([0x8d, 0xc0], "(bad)"), // LEA with a register operand
    row([0xfe, 0x10], "(bad)"), // FE /2
    row([0xc4, 0xc0], "(bad)"), // LES with a register operand
    row([0x8e, 0xc8], "(bad)"), // MOV CS, AX
    row([0x0f, 0x20, 0xc8], "(bad)", { bits: 32 }), // CR1
  ],
  "the 8086's aliases": [
    row([0x0f], "pop cs", { model: "8086" }),
    row([0x60, 0x10], "jo 0x12", { model: "8086", address: 0 }), // 60-6F = 70-7F
    row([0x66, 0x02], "jbe 0x4", { model: "8086", address: 0 }),
    row([0xc1], "ret", { model: "8086" }), // C1 = C3
    row([0xc0, 0x04, 0x00], "ret 0x4", { model: "8086" }), // C0 = C2
    row([0xc8, 0x02, 0x00], "retf 0x2", { model: "8086" }), // C8 = CA
    row([0xd0, 0xf0], "setmo al", { model: "8086" }), // D0 /6
    row([0xd3, 0xf3], "setmoc bx, cl", { model: "8086" }), // D3 /6
    row([0xf1, 0x40], "lock inc ax", { model: "8086" }), // F1 = LOCK
    row([0x8f, 0xc8], "pop ax", { model: "8086" }), // 8F /1 = /0
    row([0xff, 0xf8], "push ax", { model: "8086" }), // FF /7 = /6
    row([0x8c, 0xe0], "mov ax, es", { model: "8086" }), // sreg 4 = 0
  ],
  "what each model lacks": [
    row([0x0f, 0x05], "loadall", { model: "80286" }),
    row([0x0f, 0x07], "loadall", { model: "80386" }),
    row([0x0f, 0x05], "(bad)"),
    row([0x0f, 0xa2], "(bad)", { model: "80286" }),
    row([0x64], "(bad)", { model: "80286" }), // no FS on the 286: 64 is undefined
    row([0x8c, 0xe0], "(bad)", { model: "80286" }),
    row([0x8c, 0xe0], "mov ax, fs"),
    // An opcode the model lacks is as long as its prefixes and opcode bytes (the ModR/M
    // byte of later CPUs' forms is not part of it).
    row([0x0f, 0x20], "(bad)", { model: "80286" }),
    row([0x0f, 0x44], "(bad)", { model: "80386", bits: 32 }),
    row([0x0f, 0xc8], "(bad)", { model: "80386", bits: 32 }),
    row([0x0f, 0x22, 0xe0], "(bad)", { model: "80386", bits: 32 }), // CR4 arrived with the Pentium
    row([0xc8, 0x08, 0x00], "retf 0x8", { model: "8086" }), // C8 = CA: ENTER's opcode is RETF imm16 there
    row([0xdb, 0xf1], "(bad)", { model: "80386" }), // FCOMI is a Pentium Pro instruction
  ],
};

describe.each(Object.entries(TABLE))("%s", (_group, rows) => {
  const label = (r: Row) => `${r.bytes.map((byte) => byte.toString(16).padStart(2, "0")).join(" ")} → ${r.text}`;
  it.each(rows.map((r) => [label(r), r] as const))("%s", (_label, r) => {
    const address = r.address ?? 0x100;
    const result = disassemble(Uint8Array.from([...r.bytes, 0x90, 0x90]), { address, bits: r.bits ?? 16, ...(r.model ? { model: r.model } : {}) });
    expect(result.text).toBe(r.text);
    expect(result.length).toBe(r.length ?? r.bytes.length);
    expect(result.valid).toBe(r.text !== "(bad)");
  });
});

describe("result fields", () => {
  it("splits the text into prefixes, mnemonic and operands, and copies the bytes", () => {
    const input = Uint8Array.of(0xf0, 0x01, 0x07, 0x90);
    const result = disassemble(input, { address: 0x7c00, bits: 16 });
    expect(result).toMatchObject({ address: 0x7c00, length: 3, text: "lock add [bx], ax", prefixes: ["lock"], mnemonic: "add", operands: ["[bx]", "ax"] });
    expect(Array.from(result.bytes)).toEqual([0xf0, 0x01, 0x07]);
    input[1] = 0x29;
    expect(result.bytes[1]).toBe(0x01);
  });

  it.each([
    { bytes: [0xe8, 0xfd, 0xff], address: 0x100, bits: 16, flow: "call", target: 0x100, text: "call 0x100" },
    { bytes: [0xeb, 0x10], address: 0xfff0, bits: 16, flow: "jump", target: 0x2, text: "jmp 0x2" }, // IP wraps at 64 KiB
    { bytes: [0x74, 0x00], address: 0x10, bits: 16, flow: "branch", target: 0x12, text: "je 0x12" },
    { bytes: [0xe2, 0xfe], address: 0x10, bits: 16, flow: "branch", target: 0x10, text: "loop 0x10" },
    { bytes: [0x66, 0xe9, 0x00, 0x00, 0x01, 0x00], address: 0x100, bits: 16, flow: "jump", target: 0x10106, text: "o32 jmp 0x10106" },
    { bytes: [0xe9, 0x00, 0x00, 0x00, 0x80], address: 0x80000000, bits: 32, flow: "jump", target: 0x5, text: "jmp 0x5" },
    { bytes: [0x66, 0xe9, 0x00, 0x10], address: 0xfff0, bits: 32, flow: "jump", target: 0x0ff4, text: "o16 jmp 0xff4" }, // EIP truncated to 16 bits
    { bytes: [0xff, 0xd0], address: 0, bits: 16, flow: "call", target: undefined, text: "call ax" },
    { bytes: [0xc3], address: 0, bits: 16, flow: "return", target: undefined, text: "ret" },
    { bytes: [0xcf], address: 0, bits: 16, flow: "return", target: undefined, text: "iret" },
    { bytes: [0xcd, 0x21], address: 0, bits: 16, flow: "interrupt", target: undefined, text: "int 0x21" },
    { bytes: [0x0f, 0x0b], address: 0, bits: 16, flow: "interrupt", target: undefined, text: "ud2" },
    { bytes: [0x0f, 0xff], address: 0, bits: 16, flow: "interrupt", target: undefined, text: "(bad)" },
    { bytes: [0xf4], address: 0, bits: 16, flow: "halt", target: undefined, text: "hlt" },
    { bytes: [0x90], address: 0, bits: 16, flow: "sequential", target: undefined, text: "nop" },
    { bytes: [0xea, 0x00, 0x00, 0x00, 0xf0], address: 0, bits: 16, flow: "jump", target: undefined, text: "jmp 0xf000:0x0" },
    { bytes: [0x8e, 0xc8], address: 0, bits: 16, flow: "jump", target: undefined, text: "mov cs, ax", model: "8086" }, // loads CS
    { bytes: [0x0f], address: 0, bits: 16, flow: "jump", target: undefined, text: "pop cs", model: "8086" },
  ] as const)("$text: flow $flow, target $target", (row) => {
    const { bytes, address, bits, flow, target, text } = row;
    const model = "model" in row ? row.model : undefined;
    const result = disassemble(Uint8Array.from(bytes), { address, bits, ...(model ? { model } : {}) });
    expect(result.text).toBe(text);
    expect(result.flow).toBe(flow);
    expect(result.target).toBe(target);
  });
});

describe("disassembleFrom", () => {
  it("walks consecutive instructions through the reader", () => {
    const code = [0xb8, 0x34, 0x12, 0x01, 0xd8, 0xc3]; // mov ax, 0x1234; add ax, bx; ret
    const read = (offset: number) => (offset >= 0x7c00 && offset < 0x7c00 + code.length ? code[offset - 0x7c00]! : -1);
    const listing = disassembleFrom(read, { address: 0x7c00, bits: 16, count: 10 });
    expect(listing.map((i) => [i.address, i.text])).toEqual([
      [0x7c00, "mov ax, 0x1234"],
      [0x7c03, "add ax, bx"],
      [0x7c05, "ret"],
    ]);
    expect(disassembleFrom(read, { address: 0x7c00, bits: 16, count: 2 })).toHaveLength(2);
    expect(disassembleFrom(read, { address: 0x7c00, bits: 16, count: 0 })).toEqual([]);
  });

  it("stops before an instruction that runs into unreadable bytes", () => {
    const code = [0x90, 0xb8, 0x34]; // nop; then mov ax, imm16 cut short
    const listing = disassembleFrom((offset) => code[offset] ?? -1, { address: 0, bits: 16, count: 5 });
    expect(listing.map((i) => i.text)).toEqual(["nop"]);
  });

  it("wraps offsets at 64 KiB in 16-bit code", () => {
    const memory = new Uint8Array(0x10000);
    memory.set([0xb8], 0xffff);
    memory.set([0x34, 0x12, 0xf4], 0);
    const seen: number[] = [];
    const listing = disassembleFrom((offset) => (seen.push(offset), memory[offset]!), { address: 0xffff, bits: 16, count: 2 });
    expect(listing.map((i) => [i.address, i.text, i.length])).toEqual([
      [0xffff, "mov ax, 0x1234", 3],
      [0x0002, "hlt", 1],
    ]);
    expect(Math.max(...seen)).toBe(0xffff);
  });
});

describe("refusals", () => {
  const expectInvalidArgument = (action: () => unknown, message: RegExp) => {
    let caught: unknown;
    try {
      action();
    } catch (error) {
      caught = error;
    }
    expect(isCpuError(caught)).toBe(true);
    expect((caught as { code: string }).code).toBe("ERR_CPU_INVALID_ARGUMENT");
    expect((caught as Error).message).toMatch(message);
  };
  const nop = Uint8Array.of(0x90);

  it("rejects bad options", () => {
    expectInvalidArgument(() => disassemble(nop, { address: 0, bits: 64 as 32 }), /bits must be 16 or 32, got 64/);
    expectInvalidArgument(() => disassemble(nop, { address: 0, bits: 16, model: "z80" as CpuModel }), /unknown CPU model "z80"/);
    expectInvalidArgument(() => disassemble(nop, { address: 0, bits: 32, model: "80286" }), /the 80286 has no 32-bit code segments/);
    expectInvalidArgument(() => disassemble(nop, { address: 0x10000, bits: 16 }), /address 65536 is not an offset of 16-bit code \(an integer from 0 to 0xffff\)/);
    expectInvalidArgument(() => disassemble(nop, { address: -1, bits: 32 }), /address -1 is not an offset of 32-bit code/);
    expectInvalidArgument(() => disassemble(nop, { address: 1.5, bits: 32 }), /address 1.5/);
    expectInvalidArgument(() => disassembleFrom(() => 0x90, { address: 0, bits: 16, count: -1 }), /count must be a non-negative integer, got -1/);
    expectInvalidArgument(() => disassembleFrom(42 as unknown as () => number, { address: 0, bits: 16, count: 1 }), /readByte must be a function/);
  });

  it("rejects bytes that end inside the instruction, naming the address and bytes", () => {
    expectInvalidArgument(() => disassemble(new Uint8Array(0), { address: 0, bits: 16 }), /bytes must be a non-empty Uint8Array/);
    expectInvalidArgument(() => disassemble(Uint8Array.of(0x0f), { address: 0x7c00, bits: 16 }), /the instruction at 0x7c00 is longer than the 1 byte\(s\) given \(0f\)/);
    expectInvalidArgument(() => disassemble(Uint8Array.of(0x66, 0xb8, 0x01, 0x00), { address: 0, bits: 16 }), /longer than the 4 byte\(s\) given \(66 b8 01 00\)/);
  });
});
