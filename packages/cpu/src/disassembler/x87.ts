/**
 * The x87 escape opcodes D8-DF. Memory forms are selected by the ModR/M reg field; register
 * forms (mod = 3) by reg and, for the special rows, by r/m too. Level as in opcode-table.ts:
 * 387 additions are level 3, FCMOVcc / FCOMI / FUCOMI are level 6 (Pentium Pro).
 */

/** A memory form: mnemonic and operand size in bytes (0: unsized, such as an environment). */
export interface X87MemoryForm {
  readonly mnemonic: string;
  readonly size: number;
  readonly level: number;
}

/** A register form: `st0,sti`, `sti,st0`, `sti` (one operand), `ax`, or no operand. */
export interface X87RegisterForm {
  readonly mnemonic: string;
  readonly operands: "st0,sti" | "sti,st0" | "sti" | "ax" | "";
  readonly level: number;
}

const ARITH = ["fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"];
const INTEGER_ARITH = ["fiadd", "fimul", "ficom", "ficomp", "fisub", "fisubr", "fidiv", "fidivr"];

const memory = (mnemonic: string, size: number, level = 0): X87MemoryForm | undefined =>
  mnemonic === "" ? undefined : { mnemonic, size, level };

/** MEMORY_FORMS[escape - 0xd8][reg]. */
export const X87_MEMORY_FORMS: readonly (readonly (X87MemoryForm | undefined)[])[] = [
  ARITH.map((name) => memory(name, 4)),
  [memory("fld", 4), undefined, memory("fst", 4), memory("fstp", 4), memory("fldenv", 0), memory("fldcw", 2), memory("fnstenv", 0), memory("fnstcw", 2)],
  INTEGER_ARITH.map((name) => memory(name, 4)),
  [memory("fild", 4), undefined, memory("fist", 4), memory("fistp", 4), undefined, memory("fld", 10), undefined, memory("fstp", 10)],
  ARITH.map((name) => memory(name, 8)),
  [memory("fld", 8), undefined, memory("fst", 8), memory("fstp", 8), memory("frstor", 0), undefined, memory("fnsave", 0), memory("fnstsw", 2)],
  INTEGER_ARITH.map((name) => memory(name, 2)),
  [memory("fild", 2), undefined, memory("fist", 2), memory("fistp", 2), memory("fbld", 10), memory("fild", 8), memory("fbstp", 10), memory("fistp", 8)],
];

const register = (mnemonic: string, operands: X87RegisterForm["operands"], level = 0): X87RegisterForm => ({ mnemonic, operands, level });

/** Eight register forms, one per reg field, each taking ST(i) from r/m. */
function rows(forms: readonly (X87RegisterForm | undefined)[]): (X87RegisterForm | undefined)[] {
  const table: (X87RegisterForm | undefined)[] = [];
  for (const form of forms) for (let i = 0; i < 8; i++) table.push(form);
  return table;
}

/** Sixty-four forms (ModR/M C0-FF) from a sparse list of [modrm, form]. */
function sparse(entries: readonly (readonly [number, X87RegisterForm])[], base: (X87RegisterForm | undefined)[] = new Array(64).fill(undefined)) {
  const table = base.slice();
  for (const [modrm, form] of entries) table[modrm - 0xc0] = form;
  return table;
}

const D9_CONSTANTS: readonly (readonly [number, string, number?])[] = [
  [0xd0, "fnop"], [0xe0, "fchs"], [0xe1, "fabs"], [0xe4, "ftst"], [0xe5, "fxam"],
  [0xe8, "fld1"], [0xe9, "fldl2t"], [0xea, "fldl2e"], [0xeb, "fldpi"], [0xec, "fldlg2"], [0xed, "fldln2"], [0xee, "fldz"],
  [0xf0, "f2xm1"], [0xf1, "fyl2x"], [0xf2, "fptan"], [0xf3, "fpatan"], [0xf4, "fxtract"], [0xf5, "fprem1", 3],
  [0xf6, "fdecstp"], [0xf7, "fincstp"], [0xf8, "fprem"], [0xf9, "fyl2xp1"], [0xfa, "fsqrt"], [0xfb, "fsincos", 3],
  [0xfc, "frndint"], [0xfd, "fscale"], [0xfe, "fsin", 3], [0xff, "fcos", 3],
];

/**
 * REGISTER_FORMS[escape - 0xd8][modrm - 0xc0]. The undocumented aliases of the later
 * chips (D9 D8+i, DC D0+i/D8+i, DD C8+i, DE D0+i, DF C8+i/D0+i/D8+i, which objdump names
 * fstp1, fcom2, fcomp3, fxch4, fcomp5, fxch7, fstp8, fstp9) decode as their documented
 * twins, which is what they execute as.
 */
export const X87_REGISTER_FORMS: readonly (readonly (X87RegisterForm | undefined)[])[] = [
  rows(ARITH.map((name) => register(name, name === "fcom" || name === "fcomp" ? "sti" : "st0,sti"))),
  sparse(
    D9_CONSTANTS.map(([modrm, name, level]) => [modrm, register(name, "", level ?? 0)] as const),
    rows([register("fld", "sti"), register("fxch", "sti"), undefined, register("fstp", "sti"), undefined, undefined, undefined, undefined]),
  ),
  sparse(
    [[0xe9, register("fucompp", "", 3)]],
    rows([register("fcmovb", "st0,sti", 6), register("fcmove", "st0,sti", 6), register("fcmovbe", "st0,sti", 6), register("fcmovu", "st0,sti", 6), undefined, undefined, undefined, undefined]),
  ),
  sparse(
    [[0xe0, register("fneni", "")], [0xe1, register("fndisi", "")], [0xe2, register("fnclex", "")], [0xe3, register("fninit", "")], [0xe4, register("fnsetpm", "")]],
    rows([register("fcmovnb", "st0,sti", 6), register("fcmovne", "st0,sti", 6), register("fcmovnbe", "st0,sti", 6), register("fcmovnu", "st0,sti", 6), undefined, register("fucomi", "st0,sti", 6), register("fcomi", "st0,sti", 6), undefined]),
  ),
  rows([register("fadd", "sti,st0"), register("fmul", "sti,st0"), register("fcom", "sti"), register("fcomp", "sti"), register("fsubr", "sti,st0"), register("fsub", "sti,st0"), register("fdivr", "sti,st0"), register("fdiv", "sti,st0")]),
  rows([register("ffree", "sti"), register("fxch", "sti"), register("fst", "sti"), register("fstp", "sti"), register("fucom", "sti", 3), register("fucomp", "sti", 3), undefined, undefined]),
  sparse(
    [[0xd9, register("fcompp", "")]],
    rows([register("faddp", "sti,st0"), register("fmulp", "sti,st0"), register("fcomp", "sti"), undefined, register("fsubrp", "sti,st0"), register("fsubp", "sti,st0"), register("fdivrp", "sti,st0"), register("fdivp", "sti,st0")]),
  ),
  sparse(
    [[0xe0, register("fnstsw", "ax")]],
    rows([register("ffreep", "sti"), register("fxch", "sti"), register("fstp", "sti"), register("fstp", "sti"), undefined, register("fucomip", "st0,sti", 6), register("fcomip", "st0,sti", 6), undefined]),
  ),
];
