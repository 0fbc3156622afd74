/**
 * The disassembler's opcode maps, written once as compact spec strings in Intel SDM operand
 * notation and parsed at load time (the way Bochs' ia_opcodes.def and v86's x86_table.js
 * declare every form once).
 *
 * Spec syntax: `[level:]mnemonic[/mnemonic32] [operand,operand…] [;flags]`
 *   level       minimum model level (0 8086, 1 80186 additions, 2 80286, 3 80386, 4 80486,
 *               5 Pentium, 6 Pentium Pro); omitted = 0
 *   /mnemonic32 the mnemonic when the operand size is 32 bits (pusha/pushad, cbw/cwde…)
 *   |mnemonic32 the mnemonic when the address size is 32 bits (jcxz|jecxz)
 * Operands (Intel SDM Appendix A notation):
 *   Eb Ew Ed Ev   ModR/M r/m operand of byte, word, dword or operand size
 *   Ey            r/m that is operand-sized as a register and a word in memory (SLDT, LAR…)
 *   Gb Gw Gv      ModR/M reg field as a general register
 *   Sw            ModR/M reg field as a segment register
 *   Cd Dd Rd      control / debug register in reg, 32-bit general register in r/m
 *   M Mp Ma       memory only, unsized: any, far pointer (m16:16/m16:32), BOUND pair
 *   Mq            memory only, a qword (CMPXCHG8B)
 *   Ib Iw Iz Is   imm8, imm16, imm16/32 by operand size, imm8 sign-extended to operand size
 *   Jb Jz         relative branch target with rel8, rel16/32
 *   Ap            direct far pointer ptr16:16 / ptr16:32
 *   Ob Ov         absolute memory offset (moffs) of byte / operand size
 *   Zb Zv         register in the low three opcode bits
 *   AL eAX DX     fixed registers (eAX: AX or EAX by operand size)
 *   CL            the shift count register
 *   1             the constant 1 of the shift-by-one forms
 *   ES CS SS DS FS GS   fixed segment registers
 * Flags:
 *   J B C R I H   control flow: jump, conditional branch, call, return, interrupt, halt
 *   s c           string instruction (REP); compare string (REPE/REPNE)
 *   x             XLAT (segment override applies to an implicit operand)
 *   L             LOOP family (address size picks CX or ECX)
 *   f             indirect far transfer (the memory operand reads "far [...]")
 */

export type OperandKind =
  | "Eb" | "Ew" | "Ed" | "Ev" | "Ey"
  | "Gb" | "Gw" | "Gv"
  | "Sw" | "Cd" | "Dd" | "Rd"
  | "M" | "Mp" | "Ma" | "Mq"
  | "Ib" | "Iw" | "Iz" | "Is"
  | "Jb" | "Jz" | "Ap" | "Ob" | "Ov"
  | "Zb" | "Zv"
  | "AL" | "eAX" | "DX" | "CL" | "1"
  | "ES" | "CS" | "SS" | "DS" | "FS" | "GS";

export type ControlFlow = "sequential" | "jump" | "branch" | "call" | "return" | "interrupt" | "halt";

export interface OpcodeEntry {
  readonly mnemonic: string;
  /** Mnemonic when the operand size (or, for `addressSizeMnemonic`, the address size) is 32. */
  readonly mnemonic32: string;
  readonly addressSizeMnemonic: boolean;
  readonly operands: readonly OperandKind[];
  readonly level: number;
  readonly flow: ControlFlow;
  /** 0: not a string instruction; 1: REP string instruction; 2: REPE/REPNE (CMPS, SCAS). */
  readonly stringKind: 0 | 1 | 2;
  readonly xlat: boolean;
  readonly loop: boolean;
  readonly far: boolean;
  /** Entries selected by the ModR/M reg field (the opcode's own operands are then unused). */
  readonly group: readonly (OpcodeEntry | undefined)[] | undefined;
}

const OPERAND_KINDS = new Set<string>([
  "Eb", "Ew", "Ed", "Ev", "Ey", "Gb", "Gw", "Gv", "Sw", "Cd", "Dd", "Rd", "M", "Mp", "Ma", "Mq",
  "Ib", "Iw", "Iz", "Is", "Jb", "Jz", "Ap", "Ob", "Ov", "Zb", "Zv", "AL", "eAX", "DX", "CL", "1",
  "ES", "CS", "SS", "DS", "FS", "GS",
]);

const FLOWS: Record<string, ControlFlow> = { J: "jump", B: "branch", C: "call", R: "return", I: "interrupt", H: "halt" };

/** Parses one spec string; the empty string means "no instruction" (undefined). */
export function parseSpec(spec: string, group?: readonly (OpcodeEntry | undefined)[]): OpcodeEntry | undefined {
  if (spec === "") return undefined;
  const [body = "", flags = ""] = spec.split(";");
  let text = body.trim();
  let level = 0;
  const levelMatch = /^(\d):/.exec(text);
  if (levelMatch) {
    level = Number(levelMatch[1]);
    text = text.slice(2);
  }
  const space = text.indexOf(" ");
  const names = space < 0 ? text : text.slice(0, space);
  const operandText = space < 0 ? "" : text.slice(space + 1).trim();
  const addressSizeMnemonic = names.includes("|");
  const [mnemonic = "", mnemonic32 = mnemonic] = names.split(/[/|]/);
  const operands = operandText === "" ? [] : operandText.split(",").map((operand) => operand.trim());
  for (const operand of operands) {
    if (!OPERAND_KINDS.has(operand)) throw new Error(`opcode spec "${spec}": unknown operand ${operand}`);
  }
  let flow: ControlFlow = "sequential";
  for (const flag of flags.trim()) if (flag in FLOWS) flow = FLOWS[flag]!;
  return {
    mnemonic,
    mnemonic32,
    addressSizeMnemonic,
    operands: operands as OperandKind[],
    level,
    flow,
    stringKind: flags.includes("c") ? 2 : flags.includes("s") ? 1 : 0,
    xlat: flags.includes("x"),
    loop: flags.includes("L"),
    far: flags.includes("f"),
    group,
  };
}

function groupOf(specs: readonly string[]): (OpcodeEntry | undefined)[] {
  return specs.map((spec) => parseSpec(spec));
}

/** A group opcode: one entry whose `group` holds the eight reg-field forms. */
function group(level: number, specs: readonly string[]): OpcodeEntry {
  return { ...parseSpec(`${level}:(group)`)!, group: groupOf(specs) };
}

const ALU = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"] as const;
export const CONDITIONS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"] as const;

const shiftGroup = (level: number, operands: string, sixth = `sal ${operands}`) =>
  group(level, ["rol", "ror", "rcl", "rcr", "shl", "shr", "", "sar"].map((name) => `${level}:${name === "" ? sixth : `${name} ${operands}`}`));

/** The one-byte map as every model from the 80186 on decodes it (prefix bytes are absent). */
function buildOneByteMap(): (OpcodeEntry | undefined)[] {
  const specs: string[] = new Array<string>(256).fill("");
  for (let op = 0; op < 8; op++) {
    const base = op << 3;
    const name = ALU[op]!;
    specs[base] = `${name} Eb,Gb`;
    specs[base + 1] = `${name} Ev,Gv`;
    specs[base + 2] = `${name} Gb,Eb`;
    specs[base + 3] = `${name} Gv,Ev`;
    specs[base + 4] = `${name} AL,Ib`;
    specs[base + 5] = `${name} eAX,Iz`;
  }
  Object.assign(specs, {
    0x06: "push ES", 0x07: "pop ES", 0x0e: "push CS",
    0x16: "push SS", 0x17: "pop SS", 0x1e: "push DS", 0x1f: "pop DS",
    0x27: "daa", 0x2f: "das", 0x37: "aaa", 0x3f: "aas",
    0x60: "1:pusha/pushad", 0x61: "1:popa/popad", 0x62: "1:bound Gv,Ma", 0x63: "2:arpl Ew,Gw",
    0x68: "1:push Iz", 0x69: "1:imul Gv,Ev,Iz", 0x6a: "1:push Is", 0x6b: "1:imul Gv,Ev,Is",
    0x6c: "1:insb ;s", 0x6d: "1:insw/insd ;s", 0x6e: "1:outsb ;s", 0x6f: "1:outsw/outsd ;s",
    0x84: "test Eb,Gb", 0x85: "test Ev,Gv", 0x86: "xchg Eb,Gb", 0x87: "xchg Ev,Gv",
    0x88: "mov Eb,Gb", 0x89: "mov Ev,Gv", 0x8a: "mov Gb,Eb", 0x8b: "mov Gv,Ev",
    0x8c: "mov Ey,Sw", 0x8d: "lea Gv,M", 0x8e: "mov Sw,Ey",
    0x90: "nop", 0x98: "cbw/cwde", 0x99: "cwd/cdq", 0x9a: "call Ap ;C", 0x9b: "wait",
    0x9c: "pushf/pushfd", 0x9d: "popf/popfd", 0x9e: "sahf", 0x9f: "lahf",
    0xa0: "mov AL,Ob", 0xa1: "mov eAX,Ov", 0xa2: "mov Ob,AL", 0xa3: "mov Ov,eAX",
    0xa4: "movsb ;s", 0xa5: "movsw/movsd ;s", 0xa6: "cmpsb ;c", 0xa7: "cmpsw/cmpsd ;c",
    0xa8: "test AL,Ib", 0xa9: "test eAX,Iz",
    0xaa: "stosb ;s", 0xab: "stosw/stosd ;s", 0xac: "lodsb ;s", 0xad: "lodsw/lodsd ;s",
    0xae: "scasb ;c", 0xaf: "scasw/scasd ;c",
    0xc2: "ret Iw ;R", 0xc3: "ret ;R", 0xc4: "les Gv,Mp", 0xc5: "lds Gv,Mp",
    0xc8: "1:enter Iw,Ib", 0xc9: "1:leave", 0xca: "retf Iw ;R", 0xcb: "retf ;R",
    0xcc: "int3 ;I", 0xcd: "int Ib ;I", 0xce: "into ;I", 0xcf: "iret/iretd ;R",
    0xd4: "aam Ib", 0xd5: "aad Ib", 0xd6: "salc", 0xd7: "xlatb ;x",
    0xe0: "loopne Jb ;BL", 0xe1: "loope Jb ;BL", 0xe2: "loop Jb ;BL", 0xe3: "jcxz|jecxz Jb ;B",
    0xe4: "in AL,Ib", 0xe5: "in eAX,Ib", 0xe6: "out Ib,AL", 0xe7: "out Ib,eAX",
    0xe8: "call Jz ;C", 0xe9: "jmp Jz ;J", 0xea: "jmp Ap ;J", 0xeb: "jmp Jb ;J",
    0xec: "in AL,DX", 0xed: "in eAX,DX", 0xee: "out DX,AL", 0xef: "out DX,eAX",
    0xf1: "3:int1 ;I", 0xf4: "hlt ;H", 0xf5: "cmc",
    0xf8: "clc", 0xf9: "stc", 0xfa: "cli", 0xfb: "sti", 0xfc: "cld", 0xfd: "std",
  });
  for (let r = 0; r < 8; r++) {
    specs[0x40 + r] = "inc Zv";
    specs[0x48 + r] = "dec Zv";
    specs[0x50 + r] = "push Zv";
    specs[0x58 + r] = "pop Zv";
    specs[0xb0 + r] = "mov Zb,Ib";
    specs[0xb8 + r] = "mov Zv,Iz";
    if (r > 0) specs[0x90 + r] = "xchg Zv,eAX";
  }
  for (let cc = 0; cc < 16; cc++) specs[0x70 + cc] = `j${CONDITIONS[cc]} Jb ;B`;

  const map: (OpcodeEntry | undefined)[] = specs.map((spec) => parseSpec(spec));
  map[0x80] = group(0, ALU.map((name) => `${name} Eb,Ib`));
  map[0x81] = group(0, ALU.map((name) => `${name} Ev,Iz`));
  map[0x82] = group(0, ALU.map((name) => `${name} Eb,Ib`));
  map[0x83] = group(0, ALU.map((name) => `${name} Ev,Is`));
  map[0x8f] = group(0, ["pop Ev", "", "", "", "", "", "", ""]);
  map[0xc0] = shiftGroup(1, "Eb,Ib");
  map[0xc1] = shiftGroup(1, "Ev,Ib");
  map[0xc6] = group(0, ["mov Eb,Ib", "", "", "", "", "", "", ""]);
  map[0xc7] = group(0, ["mov Ev,Iz", "", "", "", "", "", "", ""]);
  map[0xd0] = shiftGroup(0, "Eb,1");
  map[0xd1] = shiftGroup(0, "Ev,1");
  map[0xd2] = shiftGroup(0, "Eb,CL");
  map[0xd3] = shiftGroup(0, "Ev,CL");
  map[0xf6] = group(0, ["test Eb,Ib", "test Eb,Ib", "not Eb", "neg Eb", "mul Eb", "imul Eb", "div Eb", "idiv Eb"]);
  map[0xf7] = group(0, ["test Ev,Iz", "test Ev,Iz", "not Ev", "neg Ev", "mul Ev", "imul Ev", "div Ev", "idiv Ev"]);
  map[0xfe] = group(0, ["inc Eb", "dec Eb", "", "", "", "", "", ""]);
  map[0xff] = group(0, ["inc Ev", "dec Ev", "call Ev ;C", "call Mp ;Cf", "jmp Ev ;J", "jmp Mp ;Jf", "push Ev", ""]);
  return map;
}

/** The 8086's map: no 80186 additions, and the aliases the SingleStepTests suite records. */
function build8086Map(common: readonly (OpcodeEntry | undefined)[]): (OpcodeEntry | undefined)[] {
  const map = common.slice();
  map[0x0f] = parseSpec("pop CS ;J");
  // 60-6F decode as 70-7F; C0/C1 as RET imm16/RET and C8/C9 as RETF imm16/RETF.
  for (let cc = 0; cc < 16; cc++) map[0x60 + cc] = common[0x70 + cc];
  map[0xc0] = common[0xc2];
  map[0xc1] = common[0xc3];
  map[0xc8] = common[0xca];
  map[0xc9] = common[0xcb];
  // The reg field of 8F, C6/C7 and FF /7 is not decoded: every value is POP, MOV, PUSH.
  map[0x8f] = group(0, new Array<string>(8).fill("pop Ev"));
  map[0xc6] = group(0, new Array<string>(8).fill("mov Eb,Ib"));
  map[0xc7] = group(0, new Array<string>(8).fill("mov Ev,Iz"));
  map[0xff] = group(0, ["inc Ev", "dec Ev", "call Ev ;C", "call Mp ;Cf", "jmp Ev ;J", "jmp Mp ;Jf", "push Ev", "push Ev"]);
  // D0-D3 /6: SETMO (all ones, "set minus one") and SETMOC (the same when CL is not 0).
  map[0xd0] = shiftGroup(0, "Eb,1", "setmo Eb");
  map[0xd1] = shiftGroup(0, "Ev,1", "setmo Ev");
  map[0xd2] = shiftGroup(0, "Eb,CL", "setmoc Eb,CL");
  map[0xd3] = shiftGroup(0, "Ev,CL", "setmoc Ev,CL");
  return map;
}

function buildTwoByteMap(): (OpcodeEntry | undefined)[] {
  const specs: string[] = new Array<string>(256).fill("");
  Object.assign(specs, {
    0x02: "2:lar Gv,Ey", 0x03: "2:lsl Gv,Ey", 0x06: "2:clts",
    0x08: "4:invd", 0x09: "4:wbinvd", 0x0b: "6:ud2 ;I",
    0x20: "3:mov Rd,Cd", 0x21: "3:mov Rd,Dd", 0x22: "3:mov Cd,Rd", 0x23: "3:mov Dd,Rd",
    0x30: "5:wrmsr", 0x31: "5:rdtsc", 0x32: "5:rdmsr", 0x33: "6:rdpmc", 0x34: "6:sysenter ;J", 0x35: "6:sysexit ;J",
    0xa0: "3:push FS", 0xa1: "3:pop FS", 0xa2: "5:cpuid", 0xa3: "3:bt Ev,Gv",
    0xa4: "3:shld Ev,Gv,Ib", 0xa5: "3:shld Ev,Gv,CL", 0xa8: "3:push GS", 0xa9: "3:pop GS", 0xaa: "5:rsm ;J",
    0xab: "3:bts Ev,Gv", 0xac: "3:shrd Ev,Gv,Ib", 0xad: "3:shrd Ev,Gv,CL", 0xaf: "3:imul Gv,Ev",
    0xb0: "4:cmpxchg Eb,Gb", 0xb1: "4:cmpxchg Ev,Gv", 0xb2: "3:lss Gv,Mp", 0xb3: "3:btr Ev,Gv",
    0xb4: "3:lfs Gv,Mp", 0xb5: "3:lgs Gv,Mp", 0xb6: "3:movzx Gv,Eb", 0xb7: "3:movzx Gv,Ew",
    0xbb: "3:btc Ev,Gv", 0xbc: "3:bsf Gv,Ev", 0xbd: "3:bsr Gv,Ev", 0xbe: "3:movsx Gv,Eb", 0xbf: "3:movsx Gv,Ew",
    0xc0: "4:xadd Eb,Gb", 0xc1: "4:xadd Ev,Gv",
  });
  for (let cc = 0; cc < 16; cc++) {
    specs[0x40 + cc] = `6:cmov${CONDITIONS[cc]} Gv,Ev`;
    specs[0x80 + cc] = `3:j${CONDITIONS[cc]} Jz ;B`;
    specs[0x90 + cc] = `3:set${CONDITIONS[cc]} Eb`;
  }
  for (let r = 0; r < 8; r++) specs[0xc8 + r] = "4:bswap Zv";
  const map: (OpcodeEntry | undefined)[] = specs.map((spec) => parseSpec(spec));
  map[0x00] = group(2, ["2:sldt Ey", "2:str Ey", "2:lldt Ew", "2:ltr Ew", "2:verr Ew", "2:verw Ew", "", ""]);
  map[0x01] = group(2, ["2:sgdt M", "2:sidt M", "2:lgdt M", "2:lidt M", "2:smsw Ey", "", "2:lmsw Ew", "4:invlpg M"]);
  map[0x1f] = group(6, ["6:nop Ev", "", "", "", "", "", "", ""]);
  map[0xba] = group(3, ["", "", "", "", "3:bt Ev,Ib", "3:bts Ev,Ib", "3:btr Ev,Ib", "3:btc Ev,Ib"]);
  map[0xc7] = group(5, ["", "5:cmpxchg8b Mq", "", "", "", "", "", ""]);
  return map;
}

export const ONE_BYTE_MAP: readonly (OpcodeEntry | undefined)[] = buildOneByteMap();
export const ONE_BYTE_MAP_8086: readonly (OpcodeEntry | undefined)[] = build8086Map(ONE_BYTE_MAP);
export const TWO_BYTE_MAP: readonly (OpcodeEntry | undefined)[] = buildTwoByteMap();

/** 0F 05 on the 80286 and 0F 07 on the 80386: the undocumented LOADALL of those two chips. */
export const LOADALL: OpcodeEntry = parseSpec("loadall ;J")!;
