/**
 * Two-level 32-bit paging (and 4 MiB pages with CR4.PSE): translation, accessed and dirty
 * bits, page-fault error codes and CR2, the WP bit, user/supervisor checks, atomicity of a
 * faulting page-crossing write, and TLB invalidation.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, HANDLERS, Machine, SELECTOR, describeExit, le32 } from "./machine.js";

const { EAX, EBX, ECX } = registers;

const PAGE_DIRECTORY = 0x10000;
const TABLE_LOW = 0x11000; // identity map of the first 1 MiB
const TABLE_HIGH = 0x12000; // linear 0x400000-0x7FFFFF

// Page-table entry bits.
const P = 1;
const RW = 2;
const US = 4;
const ACCESSED = 0x20;
const DIRTY = 0x40;
const PS = 0x80;

// Linear addresses of the test pages (in the second page-directory entry's table).
const USER_RW = 0x400000; //      → 0x30000
const USER_RO = 0x401000; //      → 0x31000
const NOT_PRESENT = 0x402000;
const SUPERVISOR = 0x403000; //   → 0x32000
const MMIO_PAGE = 0x404000; //    → 0xFEC00000 (no RAM there)
const LARGE = 0x800000; //        4 MiB page → physical 0
const NO_TABLE = 0xc00000; //     page-directory entry not present

const pde = (index: number) => PAGE_DIRECTORY + index * 4;
const pte = (linear: number) => TABLE_HIGH + ((linear >>> 12) & 0x3ff) * 4;

let machine: Machine;

/** Writes the page tables; paging itself is switched on by the caller or the guest. */
function buildPageTables(): void {
  for (let page = 0; page < 256; page++) machine.write32(TABLE_LOW + page * 4, (page << 12) | P | RW | US);
  machine.write32(pde(0), TABLE_LOW | P | RW | US);
  machine.write32(pde(1), TABLE_HIGH | P | RW | US);
  machine.write32(pde(2), 0x000000 | P | RW | PS);
  machine.write32(pte(USER_RW), 0x30000 | P | RW | US);
  machine.write32(pte(USER_RO), 0x31000 | P | US);
  machine.write32(pte(SUPERVISOR), 0x32000 | P | RW);
  machine.write32(pte(MMIO_PAGE), 0xfec00000 | P | RW);
}

function enablePaging({ writeProtect = true } = {}): void {
  const { cpu } = machine;
  cpu.writeCr3(PAGE_DIRECTORY);
  cpu.writeCr4(cpu.cr4 | 0x10); // PSE
  cpu.writeCr0(cpu.cr0 | 0x80000000 | (writeProtect ? 0x10000 : 0));
}

function run(code: number[], at = CODE): RunExit {
  machine.load(at, [...code, 0xf4]);
  return machine.runAt(at);
}

/** Runs `code` at CPL 3 (entered with IRET); page faults (and `exits`) end run() as exits. */
function runInRing3(code: number[], exits = 1 << 14): RunExit {
  machine.load(0x2100, code);
  machine.cpu.exceptionExitBitmap = exits;
  return run([
    0x66, 0xb8, SELECTOR.data32User, 0x00, // mov ax, 0x23
    0x8e, 0xd8, //                mov ds, ax     ; user data: still usable after the IRET
    0x6a, SELECTOR.data32User, // push 0x23      ; SS
    0x68, ...le32(0x70000), //    push 0x70000   ; ESP
    0x6a, 0x02, //                push 0x2       ; EFLAGS
    0x6a, SELECTOR.code32User, // push 0x1b      ; CS
    0x68, ...le32(0x2100), //     push 0x2100    ; EIP
    0xcf, //                      iret
  ]);
}

function expectPageFault(exit: RunExit, errorCode: number, linear: number): void {
  const { cpu } = machine;
  expect(describeExit(cpu, exit)).toBe(`Exception at eip ${cpu.eip.toString(16)} (vector 14, error code ${errorCode})`);
  expect(cpu.cr2 >>> 0).toBe(linear);
}

beforeEach(() => {
  machine = new Machine();
  machine.enterFlatProtectedMode();
  buildPageTables();
});

describe("translation", () => {
  it("maps through directory and table once the guest sets CR3, CR4.PSE and CR0.PG", () => {
    const { cpu } = machine;
    machine.write32(0x30010, 0x600df00d);
    const exit = run([
      0xb8, ...le32(PAGE_DIRECTORY), //  mov eax, 0x10000
      0x0f, 0x22, 0xd8, //               mov cr3, eax
      0x0f, 0x20, 0xe0, //               mov eax, cr4
      0x83, 0xc8, 0x10, //               or eax, 0x10         ; PSE
      0x0f, 0x22, 0xe0, //               mov cr4, eax
      0x0f, 0x20, 0xc0, //               mov eax, cr0
      0x0d, ...le32(0x80010000), //      or eax, PG | WP
      0x0f, 0x22, 0xc0, //               mov cr0, eax
      0x8b, 0x1d, ...le32(USER_RW + 0x10), // mov ebx, [0x400010]
      0x8b, 0x0d, ...le32(LARGE + 0x30010), // mov ecx, [0x830010]  ; the 4 MiB page
    ]);
    expect(describeExit(cpu, exit)).toBe(describeExit(cpu, RunExit.Halt));
    expect(machine.regs32(EBX)).toBe(0x600df00d);
    expect(machine.regs32(ECX)).toBe(0x600df00d);
    expect(cpu.translateLinear(USER_RW + 0x123)).toBe(0x30123);
    expect(cpu.translateLinear(LARGE + 0x12345)).toBe(0x12345);
    expect(cpu.translateLinear(NOT_PRESENT)).toBe(-1);
  });

  it("sets accessed bits on a read and the dirty bit only on the first write", () => {
    enablePaging();
    expect(run([0xa1, ...le32(USER_RW + 0x10)])).toBe(RunExit.Halt); // mov eax, [0x400010]
    expect(machine.read32(pde(1)) & (ACCESSED | DIRTY)).toBe(ACCESSED); // a table's PDE has no dirty bit
    expect(machine.read32(pte(USER_RW)) & (ACCESSED | DIRTY)).toBe(ACCESSED);
    expect(machine.read32(TABLE_LOW + (CODE >>> 12) * 4) & ACCESSED).toBe(ACCESSED); // fetched code page

    expect(run([0xc7, 0x05, ...le32(USER_RW + 0x20), ...le32(0x11223344)])).toBe(RunExit.Halt);
    expect(machine.read32(pte(USER_RW)) & (ACCESSED | DIRTY)).toBe(ACCESSED | DIRTY);
    expect(machine.read32(0x30020)).toBe(0x11223344);
    expect(machine.read32(0x20)).toBe(0); // not written at the identity address
  });

  it("keeps accessed and dirty in the directory entry of a 4 MiB page", () => {
    enablePaging();
    expect(run([0xa1, ...le32(LARGE + 0x8000)])).toBe(RunExit.Halt);
    expect(machine.read32(pde(2)) & (ACCESSED | DIRTY)).toBe(ACCESSED);
    expect(run([0xa3, ...le32(LARGE + 0x8000)])).toBe(RunExit.Halt); // mov [0x808000], eax
    expect(machine.read32(pde(2)) & (ACCESSED | DIRTY)).toBe(ACCESSED | DIRTY);
  });

  it("sends a page whose frame is not RAM to the bus at the translated physical address", () => {
    enablePaging();
    machine.bus.physicalRead = () => 0x12345678;
    expect(run([0xa1, ...le32(MMIO_PAGE + 8)])).toBe(RunExit.Halt);
    expect(machine.regs32(EAX)).toBe(0x12345678);
    expect(machine.bus.events).toEqual([{ kind: "readPhysical", address: 0xfec00008, size: 4, value: 0x12345678 }]);
  });
});

describe("page faults", () => {
  it("delivers #PF through the IDT with the error code pushed, CR2 set and EIP at the instruction", () => {
    const { cpu } = machine;
    enablePaging();
    machine.setGate(14, HANDLERS);
    machine.load(HANDLERS, [
      0x58, //             pop eax          ; error code
      0x0f, 0x20, 0xd3, // mov ebx, cr2
      0x59, //             pop ecx          ; EIP of the faulting instruction
      0xf4,
    ]);
    machine.load(CODE, [0x90, 0xa1, ...le32(NOT_PRESENT + 4)]); // nop; mov eax, [0x402004]
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(0); // not present, read, supervisor
    expect(machine.regs32(EBX)).toBe(NOT_PRESENT + 4);
    expect(cpu.regs[ECX]).toBe(CODE + 1);
  });

  it.each([
    // [what, error code, CR2, code]
    ["read, page not present", 0, NOT_PRESENT + 4, [0xa1, ...le32(NOT_PRESENT + 4)]],
    ["write, page not present", 2, NOT_PRESENT + 8, [0xa3, ...le32(NOT_PRESENT + 8)]],
    ["read, directory entry not present", 0, NO_TABLE + 0x10, [0xa1, ...le32(NO_TABLE + 0x10)]],
    ["write to a read-only page with CR0.WP", 3, USER_RO + 0x40, [0xa3, ...le32(USER_RO + 0x40)]],
  ] as const)("supervisor %s: error code %i", (_what, errorCode, linear, code) => {
    const { cpu } = machine;
    enablePaging();
    cpu.exceptionExitBitmap = 1 << 14;
    cpu.regs[EAX] = 0x5a5a5a5a;
    const exit = run([...code]);
    expectPageFault(exit, errorCode, linear);
    expect(cpu.eip).toBe(CODE);
    expect(machine.regs32(EAX)).toBe(0x5a5a5a5a);
    expect(machine.read32(0x31040)).toBe(0);
  });

  it("lets the supervisor write to a read-only page while CR0.WP is clear", () => {
    enablePaging({ writeProtect: false });
    machine.cpu.regs[EAX] = 0x77;
    expect(run([0xa3, ...le32(USER_RO + 0x40)])).toBe(RunExit.Halt);
    expect(machine.read32(0x31040)).toBe(0x77);
  });

  it.each([
    // [what, error code, CR2, code, CR0.WP]
    ["reads a supervisor page", 5, SUPERVISOR, [0xa1, ...le32(SUPERVISOR)], true],
    ["writes a read-only page", 7, USER_RO + 4, [0xa3, ...le32(USER_RO + 4)], true],
    ["writes a read-only page, CR0.WP clear", 7, USER_RO + 4, [0xa3, ...le32(USER_RO + 4)], false],
    ["writes a supervisor page", 7, SUPERVISOR + 4, [0xa3, ...le32(SUPERVISOR + 4)], true],
  ] as const)("user mode %s: error code %i", (_what, errorCode, linear, code, writeProtect) => {
    enablePaging({ writeProtect });
    const exit = runInRing3([...code]);
    expect(machine.cpu.cpl).toBe(3);
    expectPageFault(exit, errorCode, linear);
    expect(machine.cpu.eip).toBe(0x2100);
  });

  it("lets user mode read and write its own pages", () => {
    enablePaging();
    machine.write32(0x30000, 41);
    // mov eax, [0x400000]; inc eax; mov [0x400004], eax; hlt (which ring 3 may not: #GP)
    const exit = runInRing3([0xa1, ...le32(USER_RW), 0x40, 0xa3, ...le32(USER_RW + 4), 0xf4], (1 << 13) | (1 << 14));
    expect(describeExit(machine.cpu, exit)).toBe("Exception at eip 210b (vector 13, error code 0)");
    expect(machine.read32(0x30004)).toBe(42);
  });

  it("reads the IDT, GDT and TSS as the supervisor even when the interrupted code is in ring 3", () => {
    const { cpu } = machine;
    // Descriptor tables and the TSS live in supervisor-only pages, as an OS maps them.
    const tss = 0x6000;
    for (const page of [0x0000, 0x1000, tss]) machine.write32(TABLE_LOW + (page >>> 12) * 4, page | P | RW);
    machine.write32(0x800 + 0x30, (tss << 16) | 0x67);
    machine.write32(0x800 + 0x34, 0x8900);
    cpu.gdtLimit = 0x37;
    machine.write32(tss + 4, 0x80000); // ESP0
    machine.write32(tss + 8, SELECTOR.data32); // SS0
    machine.view.setUint16(tss + 102, 0x68, true); // I/O bitmap beyond the limit: no port allowed
    machine.setGate(0x80, HANDLERS, { dpl: 3 });
    machine.load(HANDLERS, [0xcf]); // iret
    enablePaging();
    machine.load(CODE - 0x10, [0x66, 0xb8, 0x30, 0x00, 0x0f, 0x00, 0xd8]); // mov ax, 0x30; ltr ax
    machine.cpu.eip = CODE - 0x10;
    expect(cpu.run(2)).toBe(RunExit.Budget);

    // int 0x80 (IDT, GDT, TSS stack; IRET reloads SS from the GDT at CPL 3), then IN, whose
    // permission check reads the TSS I/O bitmap offset at CPL 3.
    const exit = runInRing3([0xcd, 0x80, 0xe4, 0x60], (1 << 13) | (1 << 14));
    expect(describeExit(cpu, exit)).toBe("Exception at eip 2102 (vector 13, error code 0)");
    expect(cpu.cpl).toBe(3);
  });

  it("faults on an instruction fetch from a not-present page with EIP and CR2 at the target", () => {
    enablePaging();
    machine.cpu.exceptionExitBitmap = 1 << 14;
    const exit = run([0xe9, ...le32(NOT_PRESENT - (CODE + 5))]); // jmp 0x402000
    expectPageFault(exit, 0, NOT_PRESENT);
    expect(machine.cpu.eip).toBe(NOT_PRESENT);
  });

  it("leaves both pages untouched when the second half of a page-crossing write faults", () => {
    const { cpu } = machine;
    enablePaging();
    cpu.exceptionExitBitmap = 1 << 14;
    cpu.regs[EAX] = 0xaabbccdd | 0;
    machine.write32(0x30ffc, 0x01020304);
    const exit = run([0xa3, ...le32(USER_RO - 2)]); // mov [0x400FFE], eax: two bytes in each page
    expect(describeExit(cpu, exit)).toBe(`Exception at eip ${CODE.toString(16)} (vector 14, error code 3)`);
    expect((cpu.cr2 >>> 12) << 12).toBe(USER_RO); // the faulting (second) page
    expect(machine.read32(0x30ffc)).toBe(0x01020304);
    expect(machine.read32(0x31000)).toBe(0);
  });
});

describe("TLB invalidation", () => {
  it("uses the new entry after INVLPG and after reloading CR3", () => {
    const { cpu } = machine;
    enablePaging();
    machine.write32(0x30010, 0x30);
    machine.write32(0x33010, 0x33);
    expect(run([0xa1, ...le32(USER_RW + 0x10)])).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(0x30);

    machine.write32(pte(USER_RW), 0x33000 | P | RW | US);
    expect(run([0x0f, 0x01, 0x3d, ...le32(USER_RW), 0xa1, ...le32(USER_RW + 0x10)])).toBe(RunExit.Halt); // invlpg; mov
    expect(cpu.regs[EAX]).toBe(0x33);

    machine.write32(pte(USER_RW), 0x30000 | P | RW | US);
    expect(run([0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0xa1, ...le32(USER_RW + 0x10)])).toBe(RunExit.Halt); // mov eax,cr3; mov cr3,eax; mov
    expect(cpu.regs[EAX]).toBe(0x30);
  });
});
