/**
 * WHvTranslateGva's page walk: a guest-virtual (linear) address to a guest-physical one
 * through the processor's paging structures (two-level with PSE, or PAE with NX), checking
 * the access the caller asks about, without touching accessed/dirty bits or the TLB.
 */

/** WHV_TRANSLATE_GVA_FLAGS. */
export const WhvTranslateGvaFlags = {
  none: 0x0,
  validateRead: 0x1,
  validateWrite: 0x2,
  validateExecute: 0x4,
  /** Check as supervisor whatever the current privilege level. */
  privilegeExempt: 0x8,
} as const;

/** WHV_TRANSLATE_GVA_RESULT_CODE. */
export type WhvTranslateGvaResultCode = "success" | "pageNotPresent" | "privilegeViolation" | "invalidPageTableFlags" | "gpaUnmapped";

export interface WhvTranslateGvaResult {
  readonly resultCode: WhvTranslateGvaResultCode;
  /** The guest-physical address (valid when resultCode is "success"). */
  readonly gpa: bigint;
}

/** What the walk needs of the processor. */
export interface PagingState {
  readonly cr0: number;
  readonly cr3: number;
  readonly cr4: number;
  readonly efer: number;
  /** Current privilege level (3 = user). */
  readonly cpl: number;
  /** A guest-physical dword, or null where no RAM is mapped. */
  readDword(gpa: number): number | null;
}

const CR0_PG = 0x80000000;
const CR0_WP = 0x10000;
const CR4_PSE = 0x10;
const CR4_PAE = 0x20;
const EFER_NXE = 0x800;

export function translateGva(state: PagingState, gva: number, flags: number): WhvTranslateGvaResult {
  const linear = gva >>> 0;
  if ((state.cr0 & CR0_PG) === 0) return success(linear);
  const write = (flags & WhvTranslateGvaFlags.validateWrite) !== 0;
  const execute = (flags & WhvTranslateGvaFlags.validateExecute) !== 0;
  const user = state.cpl === 3 && (flags & WhvTranslateGvaFlags.privilegeExempt) === 0;
  let writable = true;
  let userPage = true;
  let noExecute = false;
  let physical: number;
  const read = (gpa: number) => state.readDword(gpa >>> 0);

  if ((state.cr4 & CR4_PAE) !== 0) {
    const nxe = (state.efer & EFER_NXE) !== 0;
    const reservedHigh = nxe ? 0x7ffffff0 : 0xfffffff0;
    const pdpteAddress = (state.cr3 & ~0x1f) + (linear >>> 30) * 8;
    const pdpte = read(pdpteAddress);
    if (pdpte === null) return failure("gpaUnmapped");
    if ((pdpte & 1) === 0) return failure("pageNotPresent");
    const directoryAddress = (pdpte & ~0xfff) + ((linear >>> 21) & 0x1ff) * 8;
    const directory = read(directoryAddress);
    const directoryHigh = read(directoryAddress + 4);
    if (directory === null || directoryHigh === null) return failure("gpaUnmapped");
    if ((directory & 1) === 0) return failure("pageNotPresent");
    if ((directoryHigh & reservedHigh) !== 0) return failure("invalidPageTableFlags");
    writable = (directory & 2) !== 0;
    userPage = (directory & 4) !== 0;
    noExecute = nxe && (directoryHigh & 0x80000000) !== 0;
    if ((directory & 0x80) !== 0) {
      physical = ((directory & 0xffe00000) | (linear & 0x1fffff)) >>> 0;
    } else {
      const tableAddress = (directory & ~0xfff) + ((linear >>> 12) & 0x1ff) * 8;
      const table = read(tableAddress);
      const tableHigh = read(tableAddress + 4);
      if (table === null || tableHigh === null) return failure("gpaUnmapped");
      if ((table & 1) === 0) return failure("pageNotPresent");
      if ((tableHigh & reservedHigh) !== 0) return failure("invalidPageTableFlags");
      writable &&= (table & 2) !== 0;
      userPage &&= (table & 4) !== 0;
      noExecute ||= nxe && (tableHigh & 0x80000000) !== 0;
      physical = ((table & ~0xfff) | (linear & 0xfff)) >>> 0;
    }
  } else {
    const directory = read((state.cr3 & ~0xfff) + (linear >>> 22) * 4);
    if (directory === null) return failure("gpaUnmapped");
    if ((directory & 1) === 0) return failure("pageNotPresent");
    writable = (directory & 2) !== 0;
    userPage = (directory & 4) !== 0;
    if ((directory & 0x80) !== 0 && (state.cr4 & CR4_PSE) !== 0) {
      physical = ((directory & 0xffc00000) | (linear & 0x3fffff)) >>> 0;
    } else {
      const table = read((directory & ~0xfff) + ((linear >>> 12) & 0x3ff) * 4);
      if (table === null) return failure("gpaUnmapped");
      if ((table & 1) === 0) return failure("pageNotPresent");
      writable &&= (table & 2) !== 0;
      userPage &&= (table & 4) !== 0;
      physical = ((table & ~0xfff) | (linear & 0xfff)) >>> 0;
    }
  }
  if (user && !userPage) return failure("privilegeViolation");
  if (write && !writable && (user || (state.cr0 & CR0_WP) !== 0)) return failure("privilegeViolation");
  if (execute && noExecute) return failure("privilegeViolation");
  return success(physical);
}

function success(gpa: number): WhvTranslateGvaResult {
  return { resultCode: "success", gpa: BigInt(gpa >>> 0) };
}

function failure(resultCode: WhvTranslateGvaResultCode): WhvTranslateGvaResult {
  return { resultCode, gpa: 0n };
}
