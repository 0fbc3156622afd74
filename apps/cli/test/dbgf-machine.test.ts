/**
 * @vmmkit/dbgf in a running machine, without gdb: breakpoints set on the machine's
 * Debugger behave as spec/dbgf.md says while a real guest (guests/gdb-target) runs.
 */
import { readFileSync } from "node:fs";
import { BreakpointFlags, Debugger, IoAccess } from "@vmmkit/dbgf";
import { describe, expect, it } from "vitest";
import { buildMachine, type Machine } from "../src/machine/build-machine.js";
import { loadMultiboot } from "../src/machine/images.js";
import { guest } from "./helpers.js";

const elf = new Uint8Array(readFileSync(guest("gdb-target/gdb-target.elf")));

/** The address of a symbol of the guest ELF (its .symtab). */
function symbol(name: string): number {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const sections = view.getUint32(0x20, true);
  const size = view.getUint16(0x2e, true);
  for (let i = 0; i < view.getUint16(0x30, true); i++) {
    const header = sections + i * size;
    if (view.getUint32(header + 4, true) !== 2) continue;
    const table = view.getUint32(header + 0x10, true);
    const strings = view.getUint32(sections + view.getUint32(header + 0x18, true) * size + 0x10, true);
    for (let entry = table; entry < table + view.getUint32(header + 0x14, true); entry += 16) {
      let at = strings + view.getUint32(entry, true);
      let text = "";
      while (elf[at] !== 0) text += String.fromCharCode(elf[at++]!);
      if (text === name) return view.getUint32(entry + 4, true);
    }
  }
  throw new Error(`no symbol ${name}`);
}

function machineWithOutput(): { machine: Machine; output: () => string } {
  const bytes: number[] = [];
  const machine = buildMachine({
    memoryBytes: 32 * 1024 * 1024,
    serial: { transmit: (byte) => void bytes.push(byte) },
    load: (memory) => loadMultiboot(memory, elf, 32 * 1024 * 1024, ""),
  });
  return { machine, output: () => String.fromCharCode(...bytes) };
}

const NORMAL_OUTPUT = "gdb-target: 12345\nresult 4660\nint3 handled\n";

describe("dbgf breakpoints in a running guest", () => {
  it("an owner that resumes counts every pass and the guest's output is unchanged", async () => {
    const { machine, output } = machineWithOutput();
    const dbg: Debugger = machine.debug.debugger;
    const counts: number[] = [];
    const owner = dbg.createOwner({
      hit: () => {
        // The counter before the guarded `inc` runs: 0, 1, 2, 3, 4.
        counts.push(machine.memory.readBytes(symbol("counter"), 1)[0]!);
        return "resume";
      },
    });
    const site = symbol("count_site");
    const original = [...machine.memory.readBytes(site, 8)];
    const { handle } = dbg.setInt3(0, BigInt(site), { owner });
    expect(machine.memory.readBytes(site, 1)[0]).toBe(0xcc);
    const outcome = await machine.run();
    expect(outcome.status).toBe(33);
    // The guest's own INT3 ran while #BP exits were on for this breakpoint: it reached the guest.
    expect(output()).toBe(NORMAL_OUTPUT);
    expect(counts).toEqual([0, 1, 2, 3, 4]);
    expect(dbg.get(handle).hits).toBe(5n);
    dbg.clear(handle);
    expect([...machine.memory.readBytes(site, 8)]).toEqual(original);
  });

  it("port-I/O breakpoints count the accesses they watch, before and after each", async () => {
    const { machine, output } = machineWithOutput();
    const dbg = machine.debug.debugger;
    const seen: string[] = [];
    const owner = dbg.createOwner({
      ioHit: (_cpu, _user, _handle, _info, when, access, address, value) => {
        seen.push(`${when} ${access.toString(16)} ${address.toString(16)} ${Number(value).toString(16)}`);
        return "resume";
      },
    });
    dbg.setPortIo(0xf4, 1, IoAccess.WriteByte, { owner, flags: BreakpointFlags.Enabled | BreakpointFlags.HitBefore | BreakpointFlags.HitAfter });
    const outcome = await machine.run();
    expect(outcome.status).toBe(33);
    expect(seen).toEqual(["before 100 f4 10", "after 100 f4 10"]);
    expect(output()).toContain("result 4660");
  });

  it("on two vCPUs, a resuming owner sees each vCPU pass the breakpoint exactly once per iteration", async () => {
    const smp = new Uint8Array(readFileSync(guest("gdb-smp/gdb-smp.elf")));
    const bytes: number[] = [];
    const machine = buildMachine({
      memoryBytes: 32 * 1024 * 1024,
      serial: { transmit: (byte) => void bytes.push(byte) },
      load: (memory) => loadMultiboot(memory, smp, 32 * 1024 * 1024, ""),
      cpuCount: 2,
    });
    const dbg = machine.debug.debugger;
    const perCpu = [0, 0];
    const owner = dbg.createOwner({ hit: (cpu) => (perCpu[cpu]!++, "resume") });
    // smp_site is the loop's first instruction: each vCPU passes it 1000 times.
    const site = 0x10002c;
    expect(machine.memory.readBytes(site, 2)).toEqual(Uint8Array.of(0xff, 0x04)); // inc dword [counts + ebx*4]
    dbg.setInt3(0, BigInt(site), { owner });
    const outcome = await machine.run();
    expect(String.fromCharCode(...bytes)).toBe("smp: 1000 1000\n");
    expect(outcome.status).toBe(33);
    expect(perCpu).toEqual([1000, 1000]);
  });

  it("an MMIO breakpoint on RAM sees the guest's write and read of a variable, and the guest runs on unchanged", async () => {
    const { machine, output } = machineWithOutput();
    const dbg = machine.debug.debugger;
    const seen: string[] = [];
    const owner = dbg.createOwner({
      ioHit: (_cpu, _user, _handle, _info, when, access, address, value) => {
        seen.push(`${when} ${access & IoAccess.AnyWrite ? "write" : "read"} ${address.toString(16)} ${value.toString(16)}`);
        return "resume";
      },
    });
    const watched = symbol("watched");
    const { handle } = dbg.setMmio(BigInt(watched), 4, IoAccess.MmioMask, { owner, flags: BreakpointFlags.Enabled | BreakpointFlags.HitBefore | BreakpointFlags.HitAfter });
    const outcome = await machine.run();
    expect(outcome.status).toBe(33);
    expect(output()).toBe(NORMAL_OUTPUT);
    // mov dword [watched], 0x1234, then mov eax, [watched]: each before and after.
    const at = watched.toString(16);
    expect(seen).toEqual([`before write ${at} 1234`, `after write ${at} 1234`, `before read ${at} 0`, `after read ${at} 1234`]);
    expect(machine.memory.isRegistered(watched)).toBe(true);
    dbg.clear(handle);
    expect(machine.memory.isRegistered(watched)).toBe(false);
  });
});
