/**
 * Runs single-instruction conformance tests in the SingleStepTests format (8086 and 80286
 * real-mode suites): load the initial state, execute, compare with the state recorded on
 * real silicon. The caller reads and parses the files; this module needs no host APIs.
 */
import type { AccessSize } from "./cpu-bus.js";
import { Cpu, RunExit } from "./cpu.js";
import { CS, DS, ES, SS } from "./registers.js";

export interface SingleStepRegisters {
  ax?: number;
  bx?: number;
  cx?: number;
  dx?: number;
  cs?: number;
  ss?: number;
  ds?: number;
  es?: number;
  sp?: number;
  bp?: number;
  si?: number;
  di?: number;
  ip?: number;
  flags?: number;
}

/** One test as stored in the suites' JSON files (fields vmmkit does not use are ignored). */
export interface SingleStepTest {
  readonly name: string;
  readonly bytes: readonly number[];
  readonly initial: { readonly regs: SingleStepRegisters; readonly ram: readonly (readonly [number, number])[] };
  readonly final: { readonly regs: SingleStepRegisters; readonly ram: readonly (readonly [number, number])[] };
  readonly exception?: { readonly number: number; readonly flag_address: number };
}

export type ConformanceModel = "8086" | "80286";

const REGISTER_ORDER = ["ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags"] as const;
const GENERAL_INDEX: Record<string, number> = { ax: 0, cx: 2, dx: 4, bx: 6, sp: 8, bp: 10, si: 12, di: 14 };
const SEGMENT_INDEX: Record<string, number> = { es: ES, cs: CS, ss: SS, ds: DS };

const RAM_SIZE = 16 * 1024 * 1024;

/** Executes tests against one CPU model, reusing one CPU and one 16 MiB memory. */
export class ConformanceRunner {
  readonly cpu: Cpu;
  private readonly ram = new Uint8Array(RAM_SIZE);
  private touched: number[] = [];

  constructor(readonly model: ConformanceModel) {
    // Port reads float high, as on the recording board; writes are ignored.
    this.cpu = new Cpu({
      model,
      bus: {
        readPhysical: (_address: number, size: AccessSize) => (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1),
        writePhysical: () => {},
        readPort: (_port: number, size: AccessSize) => (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1),
        writePort: () => {},
      },
    });
    this.cpu.mapMemory(0, this.ram, 7);
  }

  /**
   * Runs one test. `flagsMask` clears the flags the suite marks undefined for the opcode
   * (metadata "flags-mask"); returns null when everything matches, else the first difference.
   */
  run(test: SingleStepTest, flagsMask = 0xffff): string | null {
    const cpu = this.cpu;
    for (const address of this.touched) this.ram[address] = 0;
    this.touched = [];
    cpu.reset();
    const regs = test.initial.regs;
    for (const name of REGISTER_ORDER) {
      const value = regs[name] ?? 0;
      if (name in GENERAL_INDEX) cpu.regs16[GENERAL_INDEX[name]!] = value;
      else if (name in SEGMENT_INDEX) cpu.setRealModeSegment(SEGMENT_INDEX[name]!, value);
      else if (name === "ip") cpu.eip = value;
    }
    cpu.setFlags(this.model === "80286" ? (regs.flags ?? 2) & 0x0fff : (regs.flags ?? 2));
    for (const [address, value] of test.initial.ram) {
      this.ram[address] = value;
      this.touched.push(address);
    }
    for (const [address] of test.final.ram) this.touched.push(address);

    if (this.model === "8086") {
      const exit = cpu.run(1);
      if (exit !== RunExit.Budget && exit !== RunExit.Halt) return `run ended with exit ${exit}`;
    } else {
      const exit = cpu.run(64);
      if (exit !== RunExit.Halt) return `did not reach the HLT after the instruction (exit ${exit})`;
    }

    for (const name of REGISTER_ORDER) {
      const expected = test.final.regs[name] ?? regs[name] ?? 0;
      let actual: number;
      if (name in GENERAL_INDEX) actual = cpu.regs16[GENERAL_INDEX[name]!]!;
      else if (name in SEGMENT_INDEX) actual = cpu.segSelector[SEGMENT_INDEX[name]!]!;
      else if (name === "ip") actual = cpu.eip & 0xffff;
      else actual = cpu.getFlags() & 0xffff;
      if (name === "flags") {
        if ((actual & flagsMask) !== (expected & flagsMask)) return describeFlags(expected, actual, flagsMask);
      } else if (actual !== expected) {
        return `${name}: expected ${hex4(expected)}, got ${hex4(actual)}`;
      }
    }

    const flagBytes = this.pushedFlagsAddress(test);
    for (const [address, expected] of test.final.ram) {
      const actual = this.ram[address]!;
      let mask = 0xff;
      if (address === flagBytes) mask = flagsMask & 0xff;
      else if (address === flagBytes + 1) mask = flagsMask >> 8;
      if ((actual & mask) !== (expected & mask)) {
        return `memory ${hex5(address)}: expected ${hex2(expected)}, got ${hex2(actual)}`;
      }
    }
    return null;
  }

  /** Where an exception (or divide error) pushed FLAGS, so those bytes compare masked; −1 if none. */
  private pushedFlagsAddress(test: SingleStepTest): number {
    if (test.exception) {
      // FLAGS sit at the final SS:SP + 4 (IP, CS, FLAGS were pushed). The recorded
      // flag_address is off by one when SP was odd, so derive it from SS:SP.
      const ss = test.final.regs.ss ?? test.initial.regs.ss ?? 0;
      const sp = test.final.regs.sp ?? test.initial.regs.sp ?? 0;
      return (ss << 4) + ((sp + 4) & 0xffff);
    }
    if (this.model === "8086" && (test.final.regs.ip !== undefined || test.final.regs.cs !== undefined)) {
      const finalCs = test.final.regs.cs ?? test.initial.regs.cs ?? 0;
      const finalIp = test.final.regs.ip ?? 0;
      // Divide errors end at the INT 0 handler (0000:0400) with FLAGS at SP + 4.
      if (finalCs === 0 && finalIp === 0x400) {
        const ss = test.final.regs.ss ?? test.initial.regs.ss ?? 0;
        const sp = test.final.regs.sp ?? test.initial.regs.sp ?? 0;
        return ((ss << 4) + ((sp + 4) & 0xffff)) & 0xfffff;
      }
    }
    return -1;
  }
}

const FLAG_NAMES: readonly [number, string][] = [
  [0x800, "OF"], [0x400, "DF"], [0x200, "IF"], [0x100, "TF"], [0x80, "SF"], [0x40, "ZF"], [0x10, "AF"], [0x4, "PF"], [0x1, "CF"],
];

function describeFlags(expected: number, actual: number, mask: number): string {
  const difference = (expected ^ actual) & mask;
  for (const [bit, name] of FLAG_NAMES) {
    if (difference & bit) return `flag ${name}: expected ${expected & bit ? 1 : 0}, got ${actual & bit ? 1 : 0}`;
  }
  return `flags: expected ${hex4(expected)}, got ${hex4(actual)} (mask ${hex4(mask)})`;
}

const hex2 = (v: number) => "0x" + v.toString(16).padStart(2, "0");
const hex4 = (v: number) => "0x" + v.toString(16).padStart(4, "0");
const hex5 = (v: number) => "0x" + v.toString(16).padStart(5, "0");
