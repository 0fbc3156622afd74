/**
 * Brings Intel-syntax disassembly from different tools to one canonical form, so vmmkit's
 * text can be compared with ndisasm, objdump and the SingleStepTests names. The differences
 * it erases are presentation only; each is listed here with its reason:
 *
 *  1. Spacing, letter case, "ptr", hex written as 0x1f or 01Fh (NASM's form, which starts
 *     with a digit), and decimal numbers.
 *  2. Condition-code synonyms (jz/je, jc/jb/jnae, jnbe/ja, jpe/jp, …, also for SETcc and
 *     CMOVcc), retn/ret, callf/jmpf (the 8086 names) = call/jmp, xlat = xlatb, fwait = wait,
 *     icebp = int1, loopz/loopnz = loope/loopne, sal = shl (C0-D3 /6 is an undocumented
 *     alias of /4 that tools name either way).
 *  3. Size suffixes and markers that only restate the operand or address size: o16/o32/
 *     a16/a32, data16/data32/addr16/addr32, pushw/pushd/retw/retd/enterw/leavew/…,
 *     "word"/"dword"/"short"/"near" in front of immediates, branch targets and far pointers,
 *     and the ", ecx" counter of LOOP. The size itself is still checked: through the
 *     mnemonic variants (pusha/pushad, iret/iretd, movsw/movsd), the registers, and the
 *     immediates and targets, compared modulo the operand size.
 *  4. Memory operands: "es:[bx]" = "[es:bx]"; terms in any order; "*1" and objdump's eiz
 *     (no index); a displacement of 0; displacements compared modulo the address size
 *     (0xfff0 = -0x10 in 16-bit addressing); a segment equal to the default segment of the
 *     operand (ds, or ss with bp/esp/ebp as base) is dropped, because tools show it
 *     differently whether or not a prefix spelled it.
 *  5. Size keywords of memory operands are removed here; `memoryKeyword` extracts them so a
 *     test can compare them separately. objdump's "dword ptr"/"fword ptr" on a far indirect
 *     CALL or JMP becomes "far".
 *  6. x87 shorthand: "fadd st1" = "fadd st0, st1", "fadd to st1" = "fadd st1, st0",
 *     "faddp st1" = "faddp st1, st0", "fcomp" = "fcomp st1", "st(1)" = "st1", "st" = "st0";
 *     objdump's "(8087 only)" remarks.
 *  7. objdump's explicit string-instruction operands ("movs byte ptr es:[di], byte ptr
 *     ds:[si]") become the short form (movsb) with the source segment, if not ds, as a prefix.
 *  8. Prefix words: repz/repe/rep and repnz/repne as REPE/REP vs REPNE; the order of prefix
 *     words; segment words that a memory operand already shows, a ds word on a string
 *     instruction (ds is its default source) and any segment word on STOS, SCAS and INS
 *     (which have no operand a segment prefix applies to); notrack (objdump's name for 3E
 *     on an indirect branch) = ds.
 *  9. Operand order of XCHG (it is symmetric; tools differ); "imul r, imm" = "imul r, r, imm"
 *     (NASM's shorthand); aam/aad without an operand = with 0xa; "xchg ax, ax" /
 *     "xchg eax, eax" of opcode 90 = nop, and "pause" (F3 90) = rep nop.
 */

export interface TextContext {
  /** Default operand/address size of the code. */
  readonly bits: 16 | 32;
  /** The instruction bytes (prefixes are scanned to know the effective sizes). */
  readonly bytes: ArrayLike<number>;
}

const CONDITION_SYNONYMS: Record<string, string> = {
  z: "e", nz: "ne", c: "b", nae: "b", nb: "ae", nc: "ae", na: "be", nbe: "a", pe: "p", po: "np",
  nge: "l", nl: "ge", ng: "le", nle: "g",
};
const MNEMONIC_SYNONYMS: Record<string, string> = {
  retn: "ret", retnw: "ret", retnd: "ret", callf: "call", jmpf: "jmp", xlat: "xlatb", fwait: "wait", sal: "shl", icebp: "int1",
  pushw: "push", pushd: "push", popw: "pop", popd: "pop", retw: "ret", retd: "ret", retfw: "retf", retfd: "retf",
  leavew: "leave", leaved: "leave", enterw: "enter", enterd: "enter", callw: "call", calld: "call", jmpw: "jmp", jmpd: "jmp",
  sgdtw: "sgdt", sgdtd: "sgdt", sidtw: "sidt", sidtd: "sidt", lgdtw: "lgdt", lgdtd: "lgdt", lidtw: "lidt", lidtd: "lidt",
  "fndisi(8087": "fndisi", "fneni(8087": "fneni", "fnsetpm(287": "fnsetpm", fsetpm: "fnsetpm",
};
const SIZE_PAIRS: Record<string, [string, string]> = {
  pusha: ["pusha", "pushad"], pushaw: ["pusha", "pushad"], pushad: ["pusha", "pushad"],
  popa: ["popa", "popad"], popaw: ["popa", "popad"], popad: ["popa", "popad"],
  pushf: ["pushf", "pushfd"], pushfw: ["pushf", "pushfd"], pushfd: ["pushf", "pushfd"],
  popf: ["popf", "popfd"], popfw: ["popf", "popfd"], popfd: ["popf", "popfd"],
  iret: ["iret", "iretd"], iretw: ["iret", "iretd"], iretd: ["iret", "iretd"],
};
const PREFIX_WORDS = new Set([
  "lock", "rep", "repe", "repz", "repne", "repnz", "cs", "ds", "es", "ss", "fs", "gs", "notrack",
  "o16", "o32", "a16", "a32", "data16", "data32", "addr16", "addr32",
]);
const SEGMENTS = new Set(["cs", "ds", "es", "ss", "fs", "gs"]);
const SIZE_WORDS: Record<string, string> = {
  byte: "byte", word: "word", dword: "dword", qword: "qword", tword: "tword", tbyte: "tword", fword: "fword",
};
const BRANCHES = /^(j[a-z]+|call|loop|loope|loopne|loopz|loopnz|jcxz|jecxz)$/;
const X87_ARITHMETIC = new Set(["fadd", "fmul", "fsub", "fsubr", "fdiv", "fdivr"]);
const X87_POP_ARITHMETIC = new Set(["faddp", "fmulp", "fsubp", "fsubrp", "fdivp", "fdivrp"]);
const X87_ST0_FIRST = /^(fcmov[a-z]+|fcomi|fucomi|fcomip|fucomip)$/;
const X87_ONE_OPERAND = new Set(["fcom", "fcomp", "fucom", "fucomp", "fxch"]);
const STRING_OPS = /^(movs|cmps|stos|lods|scas|ins|outs)$/;

/** Effective operand and address sizes from the prefixes of `bytes`. */
export function effectiveSizes(context: TextContext): { operandSize: number; addressSize: number } {
  let operandSize = context.bits;
  let addressSize = context.bits;
  for (let i = 0; i < context.bytes.length; i++) {
    const byte = context.bytes[i]!;
    if (byte === 0x66) operandSize = context.bits === 32 ? 16 : 32;
    else if (byte === 0x67) addressSize = context.bits === 32 ? 16 : 32;
    else if (![0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0xf0, 0xf2, 0xf3].includes(byte)) break;
  }
  return { operandSize, addressSize };
}

function parseNumber(text: string): number | undefined {
  let t = text.trim();
  let sign = 1;
  if (t.startsWith("+")) t = t.slice(1);
  else if (t.startsWith("-")) {
    sign = -1;
    t = t.slice(1);
  }
  let value: number;
  if (/^0x[0-9a-f]+$/.test(t)) value = parseInt(t.slice(2), 16);
  else if (/^[0-9][0-9a-f]*h$/.test(t)) value = parseInt(t.slice(0, -1), 16);
  else if (/^[0-9]+$/.test(t)) value = parseInt(t, 10);
  else return undefined;
  return sign * value;
}

const hex = (value: number) => "0x" + value.toString(16);
const wrap = (value: number, bits: number) => (bits === 32 ? value >>> 0 : bits === 16 ? value & 0xffff : value & 0xff);

/** Splits operands at commas outside brackets. */
function splitOperands(text: string): string[] {
  const operands: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "[") depth++;
    if (char === "]") depth--;
    if (char === "," && depth === 0) {
      operands.push(current.trim());
      current = "";
    } else current += char;
  }
  if (current.trim() !== "") operands.push(current.trim());
  return operands;
}

const REGISTER_SIZES: Record<string, number> = {};
for (const name of ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"]) REGISTER_SIZES[name] = 8;
for (const name of ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"]) REGISTER_SIZES[name] = 16;
for (const name of ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"]) REGISTER_SIZES[name] = 32;

interface Memory {
  segment: string | undefined;
  canonical: string;
}

/** "[seg:terms]" with terms sorted, the displacement modulo the address size. */
function canonicalMemory(inner: string, outerSegment: string | undefined, defaultAddressSize: number): Memory {
  let body = inner.replace(/\b(byte|word|dword|qword)\s+/g, "").replace(/\s+/g, "");
  let segment = outerSegment;
  const segmentMatch = /^(cs|ds|es|ss|fs|gs):/.exec(body);
  if (segmentMatch) {
    segment = segmentMatch[1];
    body = body.slice(3);
  }
  const terms = body.replace(/-/g, "+-").split("+").filter((term) => term !== "");
  const registers: string[] = [];
  let base: string | undefined;
  let displacement = 0;
  let addressSize = 0;
  for (const term of terms) {
    const [name = "", scale] = term.split("*");
    if (name === "eiz" || name === "riz") continue;
    if (name in REGISTER_SIZES) {
      addressSize = REGISTER_SIZES[name]!;
      if (scale === undefined && base === undefined) base = name;
      registers.push(scale === undefined || scale === "1" ? name : `${name}*${scale}`);
      continue;
    }
    const value = parseNumber(term);
    if (value === undefined) registers.push(term);
    else displacement += value;
  }
  if (addressSize === 0) addressSize = defaultAddressSize;
  displacement = wrap(displacement, addressSize);
  const defaultSegment = base !== undefined && /^(bp|esp|ebp)$/.test(base) ? "ss" : "ds";
  if (segment === defaultSegment) segment = undefined;
  const parts = registers.slice().sort();
  if (displacement !== 0 || parts.length === 0) parts.push(hex(displacement));
  return { segment, canonical: `[${segment ? segment + ":" : ""}${parts.join("+")}]` };
}

interface Parsed {
  prefixes: string[];
  mnemonic: string;
  operands: string[];
}

function parse(text: string): Parsed {
  const cleaned = text
    .toLowerCase()
    .replace(/\((8087|287) only\)/g, "")
    .replace(/\s+ptr\b/g, "")
    .replace(/\s+/g, " ")
    .trim();
  const words = cleaned.split(" ");
  const prefixes: string[] = [];
  while (words.length > 1 && PREFIX_WORDS.has(words[0]!)) prefixes.push(words.shift()!);
  const mnemonic = words.shift() ?? "";
  if (words.length === 0 && PREFIX_WORDS.has(mnemonic)) return { prefixes: [...prefixes, mnemonic], mnemonic: "", operands: [] };
  return { prefixes, mnemonic, operands: splitOperands(words.join(" ")) };
}

/** Is this a tool's way of saying "not an instruction I know"? */
export function isUndefinedText(text: string): boolean {
  const parsed = parse(text);
  return parsed.mnemonic === "" || parsed.mnemonic === "(bad)" || parsed.mnemonic === "db" || parsed.mnemonic === ".byte" || text.includes("(bad)");
}

/** The size keyword on the memory operand, if any ("byte", "word", …, "tword"). */
export function memoryKeyword(text: string): string | undefined {
  const pattern = /\b(byte|word|dword|qword|tword|tbyte|fword)\s+(ptr\s+)?(far\s+)?(\[|[a-z]{2}:(\[|0x))/gi;
  for (const match of text.matchAll(pattern)) {
    const before = text.slice(0, match.index);
    // ndisasm's "[dword 0x1234]" names the address size, not the operand's.
    if (before.split("[").length !== before.split("]").length) continue;
    // "dword far [bx]" (ndisasm) and objdump's m16:16/m16:32 sizes describe a far pointer.
    if (match[3] !== undefined || /\bfar\b/i.test(text)) return undefined;
    return SIZE_WORDS[match[1]!.toLowerCase()];
  }
  return undefined;
}

/** The canonical form (see the file comment for what it erases). */
export function canonicalDisassembly(text: string, context: TextContext): string {
  if (isUndefinedText(text)) return "(bad)";
  const { operandSize, addressSize } = effectiveSizes(context);
  const parsed = parse(text);
  let mnemonic = parsed.mnemonic;
  let operands = parsed.operands;
  let prefixes = parsed.prefixes.map((prefix) => (prefix === "notrack" ? "ds" : prefix));

  // Mnemonic synonyms.
  mnemonic = MNEMONIC_SYNONYMS[mnemonic] ?? mnemonic;
  const condition = /^(j|set|cmov)(n?[a-z]{1,3})$/.exec(mnemonic);
  if (condition && condition[2]! in CONDITION_SYNONYMS && !["jmp", "jcxz", "jecxz"].includes(mnemonic)) {
    mnemonic = condition[1]! + CONDITION_SYNONYMS[condition[2]!];
  }
  if (mnemonic in SIZE_PAIRS) mnemonic = SIZE_PAIRS[mnemonic]![operandSize === 32 ? 1 : 0];
  if (mnemonic === "pause") {
    mnemonic = "nop";
    prefixes.push("rep");
  }
  if (mnemonic === "xchg" && context.bytes[context.bytes.length - 1] === 0x90 && operands.length === 2 && operands[0] === operands[1]) {
    mnemonic = "nop";
    operands = [];
  }

  // objdump's explicit string operands → the short mnemonic (and the source segment).
  if (STRING_OPS.test(mnemonic) || (mnemonic === "xlatb" && operands.length > 0)) {
    const sized = operands.find((operand) => /\b(byte|word|dword)\b/.test(operand));
    const size = sized ? /\b(byte|word|dword)\b/.exec(sized)![1] : undefined;
    const source = operands.find((operand) => /(cs|ds|es|ss|fs|gs):\[(e?si|e?bx)\]/.test(operand));
    const sourceSegment = source ? /(cs|ds|es|ss|fs|gs):/.exec(source)![1] : undefined;
    if (mnemonic !== "xlatb") mnemonic += size === "byte" ? "b" : size === "word" ? "w" : "d";
    operands = [];
    // The operand names the effective source segment; prefix words are overridden ones.
    prefixes = prefixes.filter((prefix) => !SEGMENTS.has(prefix));
    if (sourceSegment) prefixes.push(sourceSegment);
  }
  if (/^(movs|cmps|stos|lods|scas|ins|outs)[wd]$/.test(mnemonic)) mnemonic = mnemonic.slice(0, -1) + (operandSize === 32 ? "d" : "w");

  // x87 shorthand.
  operands = operands.map((operand) => operand.replace(/^st\((\d)\)$/, "st$1").replace(/^st$/, "st0"));
  if (X87_ARITHMETIC.has(mnemonic) && operands.length === 1) {
    const to = /^to\s+(st\d)$/.exec(operands[0]!);
    if (to) operands = [to[1]!, "st0"];
    else if (/^st\d$/.test(operands[0]!)) operands = ["st0", operands[0]!];
  }
  if (X87_POP_ARITHMETIC.has(mnemonic) && operands.length <= 1) operands = [operands[0] ?? "st1", "st0"];
  if (X87_ST0_FIRST.test(mnemonic) && operands.length === 1) operands = ["st0", operands[0]!];
  if (X87_ONE_OPERAND.has(mnemonic) && operands.length === 0) operands = ["st1"];
  if ((mnemonic === "aam" || mnemonic === "aad") && operands.length === 0) operands = ["0xa"];
  if (mnemonic === "imul" && operands.length === 2 && parseNumber(operands[1]!.replace(/^(byte|word|dword)\s+/, "")) !== undefined) {
    operands = [operands[0]!, operands[0]!, operands[1]!];
  }
  if (/^loop(n?[ez])?$/.test(mnemonic) && operands.length === 2) operands = operands.slice(0, 1);
  if (mnemonic === "loopz") mnemonic = "loope";
  if (mnemonic === "loopnz") mnemonic = "loopne";

  // Operands.
  const registerSize = operands.map((operand) => REGISTER_SIZES[operand] ?? 0).find((size) => size > 0);
  const memorySize = memoryKeyword(text);
  const immediateBits = registerSize ?? (memorySize === "byte" ? 8 : memorySize === "word" ? 16 : memorySize === "dword" ? 32 : operandSize);
  let memorySegment: string | undefined;
  const canonicalOperands = operands.map((original) => {
    let operand = original.replace(/\b(byte|word|dword|qword|tword|tbyte|fword|short|near)\s+/g, "").trim();
    if (operand in REGISTER_SIZES || /^(st\d|[c-gs]s|cr\d|dr\d)$/.test(operand)) return operand;
    let far = false;
    if (operand.startsWith("far ")) {
      far = true;
      operand = operand.slice(4);
    }
    // objdump: "ds:0x1234" (absolute) and "es:[bx]".
    const outer = /^(cs|ds|es|ss|fs|gs):(.*)$/.exec(operand);
    let outerSegment: string | undefined;
    if (outer && (outer[2]!.startsWith("[") || parseNumber(outer[2]!) !== undefined)) {
      outerSegment = outer[1];
      operand = outer[2]!.startsWith("[") ? outer[2]! : `[${outer[2]}]`;
    }
    if (operand.startsWith("[") && operand.endsWith("]")) {
      const memory = canonicalMemory(operand.slice(1, -1), outerSegment, addressSize);
      memorySegment = memory.segment ?? "default";
      return (far ? "far " : "") + memory.canonical;
    }
    if (BRANCHES.test(mnemonic)) {
      // objdump prints targets as "1f3 <label+0x4>"; others as numbers.
      const target = /^([0-9a-f]+)(\s+<.*>)?$/.exec(operand);
      if (target && target[2] !== undefined) return hex(wrap(parseInt(target[1]!, 16), operandSize));
    }
    const pointer = /^([^:]+):([^:]+)$/.exec(operand);
    if (pointer && parseNumber(pointer[1]!) !== undefined && parseNumber(pointer[2]!) !== undefined) {
      return `${hex(parseNumber(pointer[1]!)!)}:${hex(wrap(parseNumber(pointer[2]!)!, operandSize))}`;
    }
    const value = parseNumber(operand);
    if (value !== undefined) {
      const bits = BRANCHES.test(mnemonic) ? operandSize : immediateBits;
      return hex(wrap(value, bits));
    }
    return operand;
  });
  // objdump writes far indirect operands as "dword ptr" (m16:16) or "fword ptr" (m16:32).
  if ((mnemonic === "call" || mnemonic === "jmp") && canonicalOperands.length === 1 && canonicalOperands[0]!.startsWith("[")) {
    const farSize = operandSize === 32 ? "fword" : "dword";
    if (memorySize === farSize) canonicalOperands[0] = "far " + canonicalOperands[0];
  }

  // Prefix words.
  let segmentWord: string | undefined;
  let repeat: string | undefined;
  let lock = false;
  for (const prefix of prefixes) {
    if (SEGMENTS.has(prefix)) segmentWord = prefix;
    else if (prefix === "lock") lock = true;
    else if (prefix === "repne" || prefix === "repnz") repeat = "repne";
    else if (prefix === "rep" || prefix === "repe" || prefix === "repz") repeat = /^(cmps|scas)/.test(mnemonic) ? "repe" : "rep";
  }
  if (memorySegment !== undefined) segmentWord = undefined;
  // DS is the default source segment of string instructions and XLAT; STOS, SCAS and INS
  // have no operand a segment prefix applies to.
  if (segmentWord === "ds" && /^(movs|cmps|lods|outs)[bwd]$|^xlatb$/.test(mnemonic)) segmentWord = undefined;
  if (/^(stos|scas|ins)[bwd]$/.test(mnemonic)) segmentWord = undefined;
  // XCHG is symmetric; tools differ in the order of its operands.
  if (mnemonic === "xchg") canonicalOperands.sort();
  const words = [lock ? "lock" : "", repeat ?? "", segmentWord ?? ""].filter((word) => word !== "");
  return [...words, mnemonic].join(" ") + (canonicalOperands.length > 0 ? " " + canonicalOperands.join(",") : "");
}
