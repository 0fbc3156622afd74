/**
 * DR7 as DBGF presents it, and the guest side of the hardware-breakpoint checks
 * (spec/dbgf.md §8): what an emulator without its own debug-register matching calls to
 * learn whether the guest's DR0-DR3/DR7 ask for a #DB.
 */
import type { CpuVendor } from "./types.js";

/** The guest's debug state, as the checks read and update it. */
export interface GuestDebugContext {
  /** Guest DR0-DR3. */
  readonly dr: readonly bigint[];
  /** Guest DR6; the checks set B0-B3 when they report a guest trap. */
  dr6: number;
  /** Guest DR7; the checks clear GD when they report a guest trap. */
  dr7: number;
  /** EFLAGS.RF: instruction breakpoints are ignored for this instruction. */
  readonly rf: boolean;
  /** CR4; I/O breakpoints need DE (bit 3). */
  readonly cr4: number;
}

/** DR7 bits DBGF always sets: LE (8), GE (9), the read-as-one bit 10 and GD (13) (spec §8.1, §12 Q15). */
export const DR7_FIXED = 0x2700;
const DR7_GD = 1 << 13;
const CR4_DE = 1 << 3;

/** DR7 LEN encoding of a breakpoint size: 1 → 0, 2 → 1, 4 → 3, 8 → 2; anything else → 0. */
export function lengthEncoding(size: number): number {
  return size === 2 ? 1 : size === 4 ? 3 : size === 8 ? 2 : 0;
}

/** Alignment mask of a DR7 LEN field: LEN 0 → 0, 1 → 1, 2 → 7, 3 → 3. */
const LEN_MASK = [0, 1, 7, 3] as const;

function rwField(dr7: number, slot: number): number {
  return (dr7 >>> (16 + 4 * slot)) & 3;
}

function lenField(dr7: number, slot: number): number {
  return (dr7 >>> (18 + 4 * slot)) & 3;
}

function slotEnabled(dr7: number, slot: number): boolean {
  return ((dr7 >>> (2 * slot)) & 3) !== 0;
}

/**
 * Guest execute breakpoints at `pc` (spec §8.4 step 2). On a match DR6 B0-B3 are replaced
 * (Intel: every matching execute-configured slot, enabled or not; others: only the enabled
 * ones), GD is cleared, and true is returned: deliver #DB (a fault, RIP = pc).
 */
export function guestInstructionBreakpoint(context: GuestDebugContext, pc: bigint, vendor: CpuVendor): boolean {
  const dr7 = context.dr7;
  if (context.rf || (dr7 & 0xff) === 0) return false;
  let enabled = 0;
  let matched = 0;
  for (let slot = 0; slot < 4; slot++) {
    if (rwField(dr7, slot) !== 0 || lenField(dr7, slot) !== 0) continue;
    if (slotEnabled(dr7, slot)) enabled |= 1 << slot;
    if (context.dr[slot] === pc) matched |= 1 << slot;
  }
  if ((enabled & matched) === 0) return false;
  context.dr6 = ((context.dr6 & ~0xf) | (vendor === "intel" ? matched : matched & enabled)) >>> 0;
  context.dr7 = (dr7 & ~DR7_GD) >>> 0;
  return true;
}

function guestIoPreconditions(context: GuestDebugContext): boolean {
  const dr7 = context.dr7;
  if ((dr7 & 0xff) === 0 || (context.cr4 & CR4_DE) === 0) return false;
  for (let slot = 0; slot < 4; slot++) if (rwField(dr7, slot) === 2) return true;
  return false;
}

function guestIoOverlaps(context: GuestDebugContext, slot: number, port: number, size: number): boolean {
  const mask = BigInt(LEN_MASK[lenField(context.dr7, slot)]!);
  const first = BigInt.asUintN(64, context.dr[slot] ?? 0n) & ~mask;
  return first <= BigInt(port + size - 1) && BigInt(port) <= first + mask;
}

/**
 * Guest I/O breakpoints on `[port, port + size − 1]` (spec §8.5 step 2). The first enabled
 * I/O slot that overlaps wins: DR6 B0-B3 = that slot only, GD cleared, true returned
 * (deliver #DB as a trap, after the access).
 */
export function guestIoBreakpoint(context: GuestDebugContext, port: number, size: number): boolean {
  if (!guestIoPreconditions(context)) return false;
  const dr7 = context.dr7;
  for (let slot = 0; slot < 4; slot++) {
    if (!slotEnabled(dr7, slot) || rwField(dr7, slot) !== 2) continue;
    if (!guestIoOverlaps(context, slot, port, size)) continue;
    context.dr6 = ((context.dr6 & ~0xf) | (1 << slot)) >>> 0;
    context.dr7 = (dr7 & ~DR7_GD) >>> 0;
    return true;
  }
  return false;
}

/**
 * The reporting variant (spec §8.6): the matched I/O slots (enabled or not) shifted to bits
 * 25-28, if any enabled slot matched; else 0. Changes nothing.
 */
export function guestIoBreakpointBits(context: GuestDebugContext, port: number, size: number): number {
  if (!guestIoPreconditions(context)) return 0;
  const dr7 = context.dr7;
  let enabled = 0;
  let matched = 0;
  for (let slot = 0; slot < 4; slot++) {
    if (slotEnabled(dr7, slot)) enabled |= 1 << slot;
    if (rwField(dr7, slot) === 2 && guestIoOverlaps(context, slot, port, size)) matched |= 1 << slot;
  }
  return (enabled & matched) !== 0 ? matched << 25 : 0;
}
