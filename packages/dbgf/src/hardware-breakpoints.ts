import { DbgfError } from "./errors.js";

/** DR7 R/W encodings: 0 execute, 1 write, 2 I/O (needs CR4.DE), 3 read or write. */
export const HardwareAccess = { Execute: 0, Write: 1, Io: 2, ReadWrite: 3 } as const;
export type HardwareAccess = (typeof HardwareAccess)[keyof typeof HardwareAccess];

export type HardwareBreakpointSize = 1 | 2 | 4 | 8;

export const HARDWARE_SLOT_COUNT = 4;

interface Slot {
  address: bigint;
  access: HardwareAccess;
  size: HardwareBreakpointSize;
  enabled: boolean;
}

/** DR7 LEN encoding of a size: 1 → 0, 2 → 1, 4 → 3, 8 → 2. */
const LENGTH_ENCODING: Record<HardwareBreakpointSize, number> = { 1: 0, 2: 1, 4: 3, 8: 2 };

/** Always-set DR7 bits as DBGF presents them: LE, GE, the read-as-one bit 10 and GD. */
const DR7_FIXED = 0x2700;

/**
 * The four hardware breakpoint slots (DR0-DR3) shared by every vCPU, and the DR7 value
 * that arms them (spec/dbgf.md §4.3, §8.1-§8.2). Callers load {@link dr7} and
 * {@link address} into each vCPU whenever {@link generation} changes.
 */
export class HardwareBreakpoints {
  private readonly slots: (Slot | null)[] = [null, null, null, null];
  /** Bumped on every change that alters DR0-DR3 or DR7. */
  generation = 0;

  /**
   * Claims the lowest free slot. Returns the slot index, or the existing slot's index when
   * an identical breakpoint exists (re-enabling it if `enabled` is asked for).
   */
  set(address: bigint, access: HardwareAccess, size: HardwareBreakpointSize, enabled = true): { slot: number; alreadyExists: boolean } {
    if (![1, 2, 4, 8].includes(size)) throw new DbgfError("InvalidParameter", `hardware breakpoint size must be 1, 2, 4 or 8, got ${String(size)}`);
    if (![0, 1, 2, 3].includes(access)) throw new DbgfError("InvalidParameter", `hardware breakpoint access type must be 0-3, got ${String(access)}`);
    if (access === HardwareAccess.Execute && size !== 1) {
      throw new DbgfError("InvalidParameter", "an execute breakpoint must have size 1");
    }
    if (typeof address !== "bigint" || address < 0n || address > 0xffffffffffffffffn) {
      throw new DbgfError("InvalidParameter", `address must be a 64-bit unsigned bigint, got ${String(address)}`);
    }
    const existing = this.slots.findIndex((slot) => slot && slot.address === address && slot.access === access && slot.size === size);
    if (existing >= 0) {
      if (enabled) this.enable(existing);
      return { slot: existing, alreadyExists: true };
    }
    const free = this.slots.indexOf(null);
    if (free < 0) throw new DbgfError("NoMoreBreakpointSlots", "all four hardware breakpoint slots (DR0-DR3) are in use");
    this.slots[free] = { address, access, size, enabled };
    this.generation++;
    return { slot: free, alreadyExists: false };
  }

  enable(slot: number): "ok" | "already-enabled" {
    const entry = this.slot(slot);
    if (entry.enabled) return "already-enabled";
    entry.enabled = true;
    this.generation++;
    return "ok";
  }

  disable(slot: number): "ok" | "already-disabled" {
    const entry = this.slot(slot);
    if (!entry.enabled) return "already-disabled";
    entry.enabled = false;
    this.generation++;
    return "ok";
  }

  clear(slot: number): void {
    this.slot(slot);
    this.slots[slot] = null;
    this.generation++;
  }

  /** DR7 as DBGF computes it: G_i, R/W_i and LEN_i for every enabled slot (§8.1). */
  get dr7(): number {
    let dr7 = DR7_FIXED;
    this.slots.forEach((slot, i) => {
      if (!slot || !slot.enabled) return;
      dr7 |= 1 << (2 * i + 1);
      dr7 |= slot.access << (16 + 4 * i);
      dr7 |= LENGTH_ENCODING[slot.size] << (18 + 4 * i);
    });
    return dr7 >>> 0;
  }

  /** DR0-DR3: the slot's address whether or not it is enabled; 0n when free. */
  address(slot: number): bigint {
    if (!Number.isInteger(slot) || slot < 0 || slot >= HARDWARE_SLOT_COUNT) throw new DbgfError("InvalidParameter", `no DR${slot}`);
    return this.slots[slot]?.address ?? 0n;
  }

  /** True when at least one slot is enabled. */
  get armed(): boolean {
    return this.slots.some((slot) => slot?.enabled === true);
  }

  private slot(index: number): Slot {
    if (!Number.isInteger(index) || index < 0 || index >= HARDWARE_SLOT_COUNT) {
      throw new DbgfError("InvalidHandle", `hardware slot ${String(index)} does not exist (0-3)`);
    }
    const slot = this.slots[index];
    if (!slot) throw new DbgfError("BreakpointNotFound", `hardware slot ${index} is free`);
    return slot;
  }
}
