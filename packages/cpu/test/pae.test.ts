/**
 * PAE paging (SDM Vol. 3 §4.4): PDPTEs loaded by MOV CR3 (and checked for reserved bits),
 * 8-byte directory and table entries, 2 MiB pages, execute-disable pages with EFER.NXE
 * (MSR 0xC0000080), the I/D and RSVD bits of the #PF error code, and CPUID's PAE and NX.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { RunExit, registers } from "../src/index.js";
import { CODE, DATA, Machine, describeExit, le32 } from "./machine.js";

const { EAX, EBX, EDX } = registers;

const PDPT = 0x13000;
const DIRECTORY = 0x14000; // linear 0-1 GiB
const TABLE_LOW = 0x15000; // identity map of the first 1 MiB
const TABLE_TEST = 0x16000; // linear 0x400000-0x5FFFFF
const DIRECTORY_HIGH = 0x17000; // linear 1-2 GiB

const P = 1;
const RW = 2;
const ACCESSED = 0x20;
const DIRTY = 0x40;
const PS = 0x80;
const XD_HIGH = 0x80000000; // bit 63, in the high dword

const NX_PAGE = 0x400000; //      → 0x30000, execute-disable
const RW_PAGE = 0x401000; //      → 0x31000
const HUGE = 0x200000; //         2 MiB page → physical 0
const HUGE_NX = 0x600000; //      2 MiB page → physical 0, execute-disable
const HIGH = 0x40000000; //       through PDPTE 1: 2 MiB page → physical 0

let machine: Machine;

function entry(address: number, low: number, high = 0): void {
  machine.write32(address, low);
  machine.write32(address + 4, high);
}

function buildTables(): void {
  machine.ram.fill(0, PDPT, DIRECTORY_HIGH + 0x1000);
  entry(PDPT, DIRECTORY | P);
  entry(PDPT + 8, DIRECTORY_HIGH | P);
  entry(DIRECTORY, TABLE_LOW | P | RW);
  entry(DIRECTORY + 8, 0 | P | RW | PS); // HUGE
  entry(DIRECTORY + 16, TABLE_TEST | P | RW);
  entry(DIRECTORY + 24, 0 | P | RW | PS, XD_HIGH); // HUGE_NX
  entry(DIRECTORY_HIGH, 0 | P | RW | PS);
  for (let page = 0; page < 256; page++) entry(TABLE_LOW + page * 8, (page << 12) | P | RW);
  entry(TABLE_TEST, 0x30000 | P | RW, XD_HIGH);
  entry(TABLE_TEST + 8, 0x31000 | P | RW);
}

/** Guest code that turns on PAE paging the way a kernel does: CR4.PAE, CR3, CR0.PG. */
const enablePae = [
  0xb8, ...le32(0x20), //     mov eax, CR4.PAE
  0x0f, 0x22, 0xe0, //        mov cr4, eax
  0xb8, ...le32(PDPT), //     mov eax, PDPT
  0x0f, 0x22, 0xd8, //        mov cr3, eax
  0x0f, 0x20, 0xc0, //        mov eax, cr0
  0x0d, ...le32(0x80000000), // or eax, CR0.PG
  0x0f, 0x22, 0xc0, //        mov cr0, eax
];

/** wrmsr EFER (0xC0000080) ← `value`. */
const writeEfer = (value: number) => [0xb9, ...le32(0xc0000080), 0xb8, ...le32(value), 0x31, 0xd2, 0x0f, 0x30];

function run(code: number[]): RunExit {
  machine.load(CODE, [...code, 0xf4]);
  return machine.runAt(CODE);
}

function expectExit(exit: RunExit, expected: string): void {
  expect(describeExit(machine.cpu, exit)).toBe(expected);
}

beforeEach(() => {
  machine = new Machine();
  machine.enterFlatProtectedMode();
  buildTables();
  machine.cpu.exceptionExitBitmap = (1 << 14) | (1 << 13);
});

describe("PAE translation", () => {
  it("maps 4 KiB pages through 8-byte entries and 2 MiB pages, setting accessed and dirty bits", () => {
    const { cpu } = machine;
    machine.write32(DATA, 0x1234abcd);
    machine.write32(0x31010, 0x55aa55aa);
    const exit = run([
      ...enablePae,
      0x8b, 0x1d, ...le32(HUGE + DATA), //        mov ebx, [HUGE + DATA]
      0x8b, 0x15, ...le32(RW_PAGE + 0x10), //     mov edx, [RW_PAGE + 0x10]
      0xc7, 0x05, ...le32(RW_PAGE + 0x20), ...le32(7), // mov dword [RW_PAGE + 0x20], 7
    ]);
    expectExit(exit, `Halt at eip ${(CODE + enablePae.length + 6 + 6 + 10 + 1).toString(16)}`);
    expect(cpu.regs[EBX]! >>> 0).toBe(0x1234abcd);
    expect(cpu.regs[EDX]!).toBe(0x55aa55aa);
    expect(machine.read32(0x31020)).toBe(7);
    expect(machine.read32(TABLE_TEST + 8) & (ACCESSED | DIRTY)).toBe(ACCESSED | DIRTY);
    expect(machine.read32(DIRECTORY + 8) & (ACCESSED | DIRTY)).toBe(ACCESSED); // read only
    expect(cpu.translateLinear(RW_PAGE + 0x123)).toBe(0x31123);
    expect(cpu.translateLinear(HUGE + 0x1a2b3)).toBe(0x1a2b3);
    expect(cpu.translateLinear(0x800000)).toBe(-1); // directory entry 4 is not present
  });

  it("uses the PDPTEs loaded with CR3 until CR3 is written again", () => {
    const { cpu } = machine;
    machine.write32(DATA, 42);
    expectExit(run([...enablePae, 0xa1, ...le32(HIGH + DATA)]), `Halt at eip ${(CODE + enablePae.length + 6).toString(16)}`);
    expect(cpu.regs[EAX]).toBe(42);
    entry(PDPT + 8, 0); // the guest removes PDPTE 1 in memory…
    expectExit(run([0xa1, ...le32(HIGH + DATA)]), `Halt at eip ${(CODE + 6).toString(16)}`); // …still cached
    expectExit(run([0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0xa1, ...le32(HIGH + DATA)]), `Exception at eip ${(CODE + 6).toString(16)} (vector 14, error code 0)`);
    expect(cpu.cr2).toBe(HIGH + DATA);
  });

  it("raises #GP(0) for MOV CR3 when a present PDPTE has reserved bits set", () => {
    const { cpu } = machine;
    expectExit(run(enablePae), `Halt at eip ${(CODE + enablePae.length + 1).toString(16)}`);
    entry(0x18000, DIRECTORY | P | 0x4); // bit 2 is reserved in a PAE PDPTE
    expectExit(run([0xb8, ...le32(0x18000), 0x0f, 0x22, 0xd8]), `Exception at eip ${(CODE + 5).toString(16)} (vector 13, error code 0)`);
    expect(cpu.cr3).toBe(PDPT);
  });
});

describe("execute-disable (EFER.NXE)", () => {
  it("faults an instruction fetch from an XD page with P and I/D in the error code; reads still work", () => {
    const { cpu } = machine;
    machine.load(0x30000, [0xf4]);
    machine.write32(0x30010, 0xfeed);
    const exit = run([
      ...writeEfer(0x800),
      ...enablePae,
      0xa1, ...le32(NX_PAGE + 0x10), // mov eax, [NX_PAGE + 0x10]
      0xbb, ...le32(NX_PAGE), //       mov ebx, NX_PAGE
      0xff, 0xe3, //                   jmp ebx
    ]);
    expectExit(exit, `Exception at eip ${NX_PAGE.toString(16)} (vector 14, error code 17)`);
    expect(cpu.cr2).toBe(NX_PAGE);
    expect(cpu.regs[EAX]).toBe(0xfeed);
  });

  it("applies XD on a 2 MiB directory entry too", () => {
    const exit = run([...writeEfer(0x800), ...enablePae, 0xbb, ...le32(HUGE_NX + CODE + 0x100), 0xff, 0xe3]);
    expectExit(exit, `Exception at eip ${(HUGE_NX + CODE + 0x100).toString(16)} (vector 14, error code 17)`);
  });

  it("treats bit 63 as reserved without NXE: #PF with RSVD and P set, no I/D", () => {
    const exit = run([...enablePae, 0xa1, ...le32(NX_PAGE)]);
    expectExit(exit, `Exception at eip ${(CODE + enablePae.length).toString(16)} (vector 14, error code 9)`);
  });

  it("executes from the same page once the XD bit is cleared and the TLB entry dropped", () => {
    const { cpu } = machine;
    machine.load(0x30000, [0x40, 0xf4]); // inc eax; hlt
    expectExit(run([...writeEfer(0x800), ...enablePae]), `Halt at eip ${(CODE + writeEfer(0).length + enablePae.length + 1).toString(16)}`);
    entry(TABLE_TEST, 0x30000 | P | RW);
    machine.load(CODE, [0x0f, 0x01, 0x3d, ...le32(NX_PAGE), 0xbb, ...le32(NX_PAGE), 0xff, 0xe3]); // invlpg [NX_PAGE]; jmp
    cpu.regs[EAX] = 0;
    expectExit(machine.runAt(CODE), `Halt at eip ${(NX_PAGE + 2).toString(16)}`);
    expect(cpu.regs[EAX]).toBe(1);
  });

  it("lets RDMSR read EFER back and refuses bits other than NXE with #GP(0)", () => {
    const { cpu } = machine;
    expectExit(run([...writeEfer(0x800), 0xb9, ...le32(0xc0000080), 0x0f, 0x32]), `Halt at eip ${(CODE + writeEfer(0).length + 8).toString(16)}`);
    expect(cpu.regs[EAX]).toBe(0x800);
    expectExit(run(writeEfer(0x100)), `Exception at eip ${(CODE + writeEfer(0).length - 2).toString(16)} (vector 13, error code 0)`); // LME
    expect(cpu.efer).toBe(0x800);
  });
});

describe("CPUID", () => {
  it("reports PAE (leaf 1 EDX bit 6) and NX (leaf 0x80000001 EDX bit 20)", () => {
    const { cpu } = machine;
    run([0xb8, ...le32(1), 0x0f, 0xa2, 0x89, 0xd7, 0xb8, ...le32(0x80000000), 0x0f, 0xa2, 0x89, 0xc6, 0xb8, ...le32(0x80000001), 0x0f, 0xa2]);
    expect(cpu.regs[registers.EDI]! & (1 << 6)).toBe(1 << 6);
    expect(cpu.regs[registers.ESI]! >>> 0).toBe(0x80000001);
    expect(cpu.regs[EDX]! & (1 << 20)).toBe(1 << 20);
  });
});
