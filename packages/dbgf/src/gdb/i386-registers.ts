/**
 * The register file gdb sees for a 32-bit x86 guest, in gdb's numbering: the
 * `org.gnu.gdb.i386.core` feature (general, segment and x87 registers, which gdb requires
 * even for a CPU without an FPU) and the `org.gnu.gdb.i386.sse` feature gdb's i386
 * architecture expects, then vmmkit's system feature with the control and debug registers.
 * Registers the target cannot supply (x87 and SSE here) are sent as unavailable ("xx").
 */

export interface GdbRegister {
  /** gdb's register number: the index in the `g` packet and for `p`/`P`. */
  readonly number: number;
  readonly name: string;
  readonly bits: number;
  readonly type: string;
  readonly group?: string;
}

const GENERAL: ReadonlyArray<readonly [string, string]> = [
  ["eax", "int32"],
  ["ecx", "int32"],
  ["edx", "int32"],
  ["ebx", "int32"],
  ["esp", "data_ptr"],
  ["ebp", "data_ptr"],
  ["esi", "int32"],
  ["edi", "int32"],
  ["eip", "code_ptr"],
  ["eflags", "i386_eflags"],
  ["cs", "int32"],
  ["ss", "int32"],
  ["ds", "int32"],
  ["es", "int32"],
  ["fs", "int32"],
  ["gs", "int32"],
];

const X87_CONTROL = ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"] as const;

/** The control and debug registers vmmkit adds in its own feature. */
export const SYSTEM_REGISTER_NAMES = ["cr0", "cr2", "cr3", "cr4", "dr0", "dr1", "dr2", "dr3", "dr6", "dr7"] as const;

/** Every register the target may be asked for (x87/SSE ones are never asked). */
export type GdbRegisterName =
  | "eax"
  | "ecx"
  | "edx"
  | "ebx"
  | "esp"
  | "ebp"
  | "esi"
  | "edi"
  | "eip"
  | "eflags"
  | "cs"
  | "ss"
  | "ds"
  | "es"
  | "fs"
  | "gs"
  | (typeof SYSTEM_REGISTER_NAMES)[number];

function buildRegisters(): GdbRegister[] {
  const registers: GdbRegister[] = [];
  const add = (name: string, bits: number, type: string, group?: string): void => {
    registers.push(group === undefined ? { number: registers.length, name, bits, type } : { number: registers.length, name, bits, type, group });
  };
  for (const [name, type] of GENERAL) add(name, 32, type);
  for (let i = 0; i < 8; i++) add(`st${i}`, 80, "i387_ext");
  for (const name of X87_CONTROL) add(name, 32, "int", "float");
  for (let i = 0; i < 8; i++) add(`xmm${i}`, 128, "vec128");
  add("mxcsr", 32, "i386_mxcsr", "vector");
  for (const name of SYSTEM_REGISTER_NAMES) add(name, 32, "int32", "system");
  return registers;
}

/** All registers in gdb's order. */
export const I386_REGISTERS: readonly GdbRegister[] = buildRegisters();

/** Registers the target supplies: the general ones and the system feature. */
export function isTargetRegister(register: GdbRegister): boolean {
  return register.number < 16 || register.group === "system";
}

const EFLAGS_FIELDS: ReadonlyArray<readonly [string, number]> = [
  ["CF", 0],
  ["", 1],
  ["PF", 2],
  ["AF", 4],
  ["ZF", 6],
  ["SF", 7],
  ["TF", 8],
  ["IF", 9],
  ["DF", 10],
  ["OF", 11],
  ["NT", 14],
  ["RF", 16],
  ["VM", 17],
  ["AC", 18],
  ["VIF", 19],
  ["VIP", 20],
  ["ID", 21],
];

const MXCSR_FIELDS = ["IE", "DE", "ZE", "OE", "UE", "PE", "DAZ", "IM", "DM", "ZM", "OM", "UM", "PM", "FZ"];

function registerXml(register: GdbRegister): string {
  const group = register.group !== undefined && register.group !== "system" ? ` group="${register.group}"` : "";
  return `  <reg name="${register.name}" bitsize="${register.bits}" type="${register.type}" regnum="${register.number}"${group}/>\n`;
}

/** The target description gdb reads with `qXfer:features:read:target.xml`. */
export function i386TargetXml(): string {
  const core = I386_REGISTERS.filter((register) => register.number < 32);
  const sse = I386_REGISTERS.filter((register) => register.number >= 32 && register.number < 41);
  const system = I386_REGISTERS.filter((register) => register.group === "system");
  const eflags = EFLAGS_FIELDS.map(([name, bit]) => `    <field name="${name}" start="${bit}" end="${bit}"/>\n`).join("");
  const mxcsr = MXCSR_FIELDS.map((name, bit) => `    <field name="${name}" start="${bit}" end="${bit}"/>\n`).join("");
  return (
    '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n' +
    "<architecture>i386</architecture>\n" +
    '<feature name="org.gnu.gdb.i386.core">\n' +
    `  <flags id="i386_eflags" size="4">\n${eflags}  </flags>\n` +
    core.map(registerXml).join("") +
    "</feature>\n" +
    '<feature name="org.gnu.gdb.i386.sse">\n' +
    '  <vector id="v4f" type="ieee_single" count="4"/>\n  <vector id="v2d" type="ieee_double" count="2"/>\n' +
    '  <vector id="v16i8" type="int8" count="16"/>\n  <vector id="v8i16" type="int16" count="8"/>\n' +
    '  <vector id="v4i32" type="int32" count="4"/>\n  <vector id="v2i64" type="int64" count="2"/>\n' +
    '  <union id="vec128">\n    <field name="v4_float" type="v4f"/>\n    <field name="v2_double" type="v2d"/>\n' +
    '    <field name="v16_int8" type="v16i8"/>\n    <field name="v8_int16" type="v8i16"/>\n' +
    '    <field name="v4_int32" type="v4i32"/>\n    <field name="v2_int64" type="v2i64"/>\n' +
    '    <field name="uint128" type="uint128"/>\n  </union>\n' +
    `  <flags id="i386_mxcsr" size="4">\n${mxcsr}  </flags>\n` +
    sse.map(registerXml).join("") +
    "</feature>\n" +
    '<feature name="org.vmmkit.gdb.i386.system">\n' +
    system.map(registerXml).join("") +
    "</feature>\n</target>\n"
  );
}
