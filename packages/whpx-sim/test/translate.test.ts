/**
 * translateGva (WHvTranslateGva): guest-virtual to guest-physical through the processor's
 * own page tables, with the access checks the flags ask for, and nothing changed.
 */
import { describe, expect, it } from "vitest";
import { WhvTranslateGvaFlags } from "@vmmkit/whpx-sim";
import { createGuest, expectWhvError } from "./guest.js";

const { validateRead, validateWrite, validateExecute, privilegeExempt } = WhvTranslateGvaFlags;
const E_INVALIDARG = 0x80070057;

/** Two-level tables at 0x4000 (directory) and 0x5000 (table); CR4.PSE for the 4 MiB entry. */
function pagedGuest() {
  const guest = createGuest();
  const view = new DataView(guest.ram.buffer);
  view.setUint32(0x4000, 0x5000 | 0x7, true); // PDE 0: table, present, writable, user
  view.setUint32(0x4004, 0x00000000 | 0x83, true); // PDE 1: 4 MiB page at 0, present, writable, supervisor
  view.setUint32(0x5000 + 1 * 4, 0x2000 | 0x5, true); // 0x1000 → 0x2000: present, read-only, user
  view.setUint32(0x5000 + 2 * 4, 0x0000, true); // 0x2000: not present
  view.setUint32(0x5000 + 3 * 4, 0x6000 | 0x3, true); // 0x3000 → 0x6000: present, writable, supervisor
  guest.set(["x64Cr3", "x64Cr4", "x64Cr0"] as const, [0x4000n, 0x10n, 0x80000011n]);
  return guest;
}

const translate = (guest: ReturnType<typeof createGuest>, gva: number, flags: number = validateRead) =>
  guest.platform.translateGva(guest.partition, 0, BigInt(gva), flags);

describe("translateGva", () => {
  it("is the identity with paging off", () => {
    const guest = createGuest();
    expect(translate(guest, 0x12345)).toEqual({ resultCode: "success", gpa: 0x12345n });
  });

  it("walks two-level tables and 4 MiB pages, and reports what is missing", () => {
    const guest = pagedGuest();
    expect(translate(guest, 0x1234)).toEqual({ resultCode: "success", gpa: 0x2234n });
    expect(translate(guest, 0x3ffc)).toEqual({ resultCode: "success", gpa: 0x6ffcn });
    expect(translate(guest, 0x400123)).toEqual({ resultCode: "success", gpa: 0x123n });
    expect(translate(guest, 0x2010).resultCode).toBe("pageNotPresent");
    expect(translate(guest, 0x800000).resultCode).toBe("pageNotPresent"); // PDE 2 empty
  });

  it("checks writes against read-only pages under CR0.WP, and user access to supervisor pages", () => {
    const guest = pagedGuest();
    // Supervisor writes to a read-only page are allowed without CR0.WP…
    expect(translate(guest, 0x1000, validateWrite).resultCode).toBe("success");
    guest.set(["x64Cr0"] as const, [0x80010011n]); // …and refused with it.
    expect(translate(guest, 0x1000, validateWrite).resultCode).toBe("privilegeViolation");
    // At CPL 3 the supervisor page is refused unless the caller asks for a privileged check.
    guest.set(["x64Cs"] as const, [{ base: 0n, limit: 0xffffffff, selector: 0x1b, attributes: 0xc0fb }]);
    expect(translate(guest, 0x3000).resultCode).toBe("privilegeViolation");
    expect(translate(guest, 0x3000, validateRead | privilegeExempt)).toEqual({ resultCode: "success", gpa: 0x6000n });
    expect(translate(guest, 0x1000)).toEqual({ resultCode: "success", gpa: 0x2000n });
  });

  it("walks PAE tables with 2 MiB pages and honours NX for execute checks", () => {
    const guest = createGuest();
    const view = new DataView(guest.ram.buffer);
    view.setUint32(0x7000, 0x8000 | 0x1, true); // PDPTE 0 → directory 0x8000
    view.setUint32(0x8000, 0x9000 | 0x7, true); // PDE 0 → table 0x9000
    view.setUint32(0x8008, 0x400000 | 0x87, true); // PDE 1: 2 MiB page at 4 MiB
    view.setUint32(0x9008, 0x2000 | 0x7, true); // PTE 1: 0x1000 → 0x2000 …
    view.setUint32(0x900c, 0x80000000, true); // … execute-disable
    guest.set(["x64Efer", "x64Cr3", "x64Cr4", "x64Cr0"] as const, [0x800n, 0x7000n, 0x20n, 0x80000011n]);
    expect(translate(guest, 0x1abc)).toEqual({ resultCode: "success", gpa: 0x2abcn });
    expect(translate(guest, 0x1abc, validateExecute).resultCode).toBe("privilegeViolation");
    expect(translate(guest, 0x234567)).toEqual({ resultCode: "success", gpa: 0x434567n });
    expect(translate(guest, 0x40000000).resultCode).toBe("pageNotPresent"); // PDPTE 1 empty
  });

  it("reports paging structures outside mapped RAM, and refuses bad arguments", () => {
    const guest = pagedGuest();
    guest.set(["x64Cr3"] as const, [0x200000n]); // the directory is not in RAM
    expect(translate(guest, 0x1000).resultCode).toBe("gpaUnmapped");
    expectWhvError(() => guest.platform.translateGva(guest.partition, 0, 1n << 40n, validateRead), "invalidArg", E_INVALIDARG);
    expectWhvError(() => guest.platform.translateGva(guest.partition, 0, 0n, 0x100), "invalidArg", E_INVALIDARG);
  });
});
