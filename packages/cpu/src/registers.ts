/**
 * Register-file layout: indices into the Int32Array register file and the segment
 * tables, and EFLAGS bit masks. Indices follow the ModR/M encoding so a decoded `reg`
 * field is directly an index.
 */

export const EAX = 0;
export const ECX = 1;
export const EDX = 2;
export const EBX = 3;
export const ESP = 4;
export const EBP = 5;
export const ESI = 6;
export const EDI = 7;

/** Segment register indices, in the order of the ModR/M `sreg` field; then LDTR and TR. */
export const ES = 0;
export const CS = 1;
export const SS = 2;
export const DS = 3;
export const FS = 4;
export const GS = 5;
export const LDTR = 6;
export const TR = 7;

export const FLAG_CF = 0x0001;
export const FLAG_PF = 0x0004;
export const FLAG_AF = 0x0010;
export const FLAG_ZF = 0x0040;
export const FLAG_SF = 0x0080;
export const FLAG_TF = 0x0100;
export const FLAG_IF = 0x0200;
export const FLAG_DF = 0x0400;
export const FLAG_OF = 0x0800;
export const FLAG_IOPL = 0x3000;
export const FLAG_NT = 0x4000;
export const FLAG_RF = 0x10000;
export const FLAG_VM = 0x20000;
export const FLAG_AC = 0x40000;
export const FLAG_VIF = 0x80000;
export const FLAG_VIP = 0x100000;
export const FLAG_ID = 0x200000;

/** The six arithmetic flags that instructions compute lazily. */
export const ARITHMETIC_FLAGS = FLAG_CF | FLAG_PF | FLAG_AF | FLAG_ZF | FLAG_SF | FLAG_OF;

export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_EM = 1 << 2;
export const CR0_TS = 1 << 3;
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_WP = 1 << 16;
export const CR0_AM = 1 << 18;
export const CR0_NW = 1 << 29;
export const CR0_CD = 1 << 30;
export const CR0_PG = 1 << 31;

export const CR4_VME = 1 << 0;
export const CR4_PVI = 1 << 1;
export const CR4_TSD = 1 << 2;
export const CR4_DE = 1 << 3;
export const CR4_PSE = 1 << 4;
export const CR4_PAE = 1 << 5;
export const CR4_PGE = 1 << 7;

export const EFER_NXE = 1 << 11;

/**
 * Segment attribute word, laid out as WHPX's segment `attributes`: type in bits 0-3, S (code
 * or data) bit 4, DPL bits 5-6, P bit 7, AVL bit 12, L bit 13, D/B bit 14, G bit 15.
 */
export const SEG_ATTR_TYPE = 0x000f;
export const SEG_ATTR_S = 0x0010;
export const SEG_ATTR_DPL = 0x0060;
export const SEG_ATTR_P = 0x0080;
export const SEG_ATTR_AVL = 0x1000;
export const SEG_ATTR_L = 0x2000;
export const SEG_ATTR_DB = 0x4000;
export const SEG_ATTR_G = 0x8000;

/** Type bits inside SEG_ATTR_TYPE for code/data segments. */
export const SEG_TYPE_ACCESSED = 0x1;
export const SEG_TYPE_WRITABLE = 0x2; // data: writable; code: readable
export const SEG_TYPE_EXPAND_DOWN = 0x4; // data: expand-down; code: conforming
export const SEG_TYPE_CODE = 0x8;

/** Attributes of a real-mode segment: present, writable data, accessed, 16-bit. */
export const REAL_MODE_SEGMENT_ATTRIBUTES = SEG_ATTR_P | SEG_ATTR_S | SEG_TYPE_WRITABLE | SEG_TYPE_ACCESSED;
/** Attributes of a real-mode CS: present, readable code, accessed, 16-bit. */
export const REAL_MODE_CODE_ATTRIBUTES = SEG_ATTR_P | SEG_ATTR_S | SEG_TYPE_CODE | SEG_TYPE_WRITABLE | SEG_TYPE_ACCESSED;

/** Exception vectors. */
export const VECTOR_DE = 0;
export const VECTOR_DB = 1;
export const VECTOR_NMI = 2;
export const VECTOR_BP = 3;
export const VECTOR_OF = 4;
export const VECTOR_BR = 5;
export const VECTOR_UD = 6;
export const VECTOR_NM = 7;
export const VECTOR_DF = 8;
export const VECTOR_TS = 10;
export const VECTOR_NP = 11;
export const VECTOR_SS = 12;
export const VECTOR_GP = 13;
export const VECTOR_PF = 14;
export const VECTOR_MF = 16;
export const VECTOR_AC = 17;

/** Names for messages and disassembly. */
export const REGISTER_NAMES_32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;
export const REGISTER_NAMES_16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"] as const;
export const REGISTER_NAMES_8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"] as const;
export const SEGMENT_NAMES = ["es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr"] as const;
