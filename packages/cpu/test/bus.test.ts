/**
 * What reaches the CpuBus: port I/O, accesses to unmapped or read-only physical memory,
 * and the interceptInstruction() contract an accelerator builds its VM exits on.
 */
import { describe, expect, it } from "vitest";
import { Cpu, MemoryAccess, RunExit, registers } from "../src/index.js";
import { CODE, DATA, Machine, RecordingBus, SELECTOR, STACK_TOP, le32 } from "./machine.js";

const { EAX, EBX, ECX, ESI, EDI, ESP, CS } = registers;

/** Physical addresses above the 1 MiB of RAM: nothing is mapped there. */
const MMIO = 0xfec00000;

describe("port I/O", () => {
  it("passes IN and OUT to the bus with the port, size and value", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu, bus } = machine;
    bus.portRead = (port, size) => ((size === 1 ? 0xa5 : size === 2 ? 0xbeef : 0x89abcdef) ^ (port & 0xff)) >>> 0;
    machine.load(CODE, [
      0xe4, 0x60, //             in al, 0x60
      0x88, 0xc3, //             mov bl, al
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0x66, 0xed, //             in ax, dx
      0x89, 0xc1, //             mov ecx, eax
      0xed, //                   in eax, dx
      0xe6, 0x80, //             out 0x80, al
      0x66, 0xef, //             out dx, ax
      0xef, //                   out dx, eax
      0xf4,
    ]);
    cpu.regs[EAX] = 0x11223344;
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);

    const value = (0x89abcdef ^ 0xf8) >>> 0;
    expect(bus.events).toEqual([
      { kind: "readPort", address: 0x60, size: 1, value: 0xa5 ^ 0x60 },
      { kind: "readPort", address: 0x3f8, size: 2, value: 0xbeef ^ 0xf8 },
      { kind: "readPort", address: 0x3f8, size: 4, value },
      { kind: "writePort", address: 0x80, size: 1, value: value & 0xff },
      { kind: "writePort", address: 0x3f8, size: 2, value: value & 0xffff },
      { kind: "writePort", address: 0x3f8, size: 4, value },
    ]);
    // IN AL keeps the rest of EAX; IN AX keeps the upper half.
    expect(cpu.regs[EBX]! & 0xff).toBe(0xa5 ^ 0x60);
    expect(machine.regs32(ECX)).toBe(0x11220000 | (0xbeef ^ 0xf8));
    expect(machine.regs32(EAX)).toBe(value);
  });

  it("runs REP OUTSB and REP INSW element by element through the bus", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu, bus } = machine;
    machine.load(DATA, [0x10, 0x20, 0x30]);
    let next = 0x1000;
    bus.portRead = () => next++;
    machine.load(CODE, [
      0xfc, //                          cld
      0x66, 0xba, 0xe9, 0x00, //        mov dx, 0xe9
      0xbe, ...le32(DATA), //           mov esi, DATA
      0xb9, ...le32(3), //              mov ecx, 3
      0xf3, 0x6e, //                    rep outsb
      0xbf, ...le32(DATA + 0x100), //   mov edi, DATA + 0x100
      0xb9, ...le32(2), //              mov ecx, 2
      0xf3, 0x66, 0x6d, //              rep insw
      0xf4,
    ]);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(bus.events.map((e) => [e.kind, e.address, e.size, e.value])).toEqual([
      ["writePort", 0xe9, 1, 0x10],
      ["writePort", 0xe9, 1, 0x20],
      ["writePort", 0xe9, 1, 0x30],
      ["readPort", 0xe9, 2, 0x1000],
      ["readPort", 0xe9, 2, 0x1001],
    ]);
    expect(Array.from(machine.ram.subarray(DATA + 0x100, DATA + 0x104))).toEqual([0x00, 0x10, 0x01, 0x10]);
    expect(cpu.regs[ECX]).toBe(0);
    expect(cpu.regs[EDI]).toBe(DATA + 0x104);
  });
});

describe("physical memory", () => {
  it("sends reads and writes of unmapped addresses to readPhysical / writePhysical", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu, bus } = machine;
    bus.physicalRead = (address, size) => (size === 4 ? 0xfeedface : size === 2 ? 0x1234 : 0x56) + (address & 0xf);
    machine.load(CODE, [
      0xa1, ...le32(MMIO + 4), //                   mov eax, [MMIO + 4]
      0x66, 0x8b, 0x1d, ...le32(MMIO + 8), //       mov bx, [MMIO + 8]
      0x8a, 0x0d, ...le32(MMIO + 1), //             mov cl, [MMIO + 1]
      0xc7, 0x05, ...le32(MMIO + 0x10), ...le32(0xcafebabe), // mov dword [MMIO + 0x10], 0xcafebabe
      0x66, 0xc7, 0x05, ...le32(MMIO + 0x20), 0x34, 0x12, //     mov word [MMIO + 0x20], 0x1234
      0xc6, 0x05, ...le32(MMIO + 0x30), 0x7f, //                 mov byte [MMIO + 0x30], 0x7f
      0xf4,
    ]);
    cpu.regs[EBX] = 0x55550000;
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(bus.events).toEqual([
      { kind: "readPhysical", address: MMIO + 4, size: 4, value: 0xfeedface + 4 },
      { kind: "readPhysical", address: MMIO + 8, size: 2, value: 0x1234 + 8 },
      { kind: "readPhysical", address: MMIO + 1, size: 1, value: 0x56 + 1 },
      { kind: "writePhysical", address: MMIO + 0x10, size: 4, value: 0xcafebabe },
      { kind: "writePhysical", address: MMIO + 0x20, size: 2, value: 0x1234 },
      { kind: "writePhysical", address: MMIO + 0x30, size: 1, value: 0x7f },
    ]);
    expect(machine.regs32(EAX)).toBe(0xfeedface + 4);
    expect(machine.regs32(EBX)).toBe(0x55550000 + 0x1234 + 8);
    expect(cpu.regs[ECX]! & 0xff).toBe(0x57);
  });

  it("serves RAM directly: accesses to mapped memory never reach the bus", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    machine.load(CODE, [
      0xa1, ...le32(DATA), //           mov eax, [DATA]
      0xa3, ...le32(DATA + 0x0ffe), //  mov [DATA + 0xFFE], eax   ; crosses a page boundary
      0xf4,
    ]);
    machine.write32(DATA, 0x44332211);
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(machine.bus.events).toEqual([]);
    expect(machine.read32(DATA + 0x0ffe)).toBe(0x44332211);
  });

  it("reads, writes and executes a mapping outside the RAM buffer (the slower path)", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu } = machine;
    // A separate buffer, not part of the RAM ArrayBuffer, mapped at 16 MiB.
    const extra = new Uint8Array(0x2000);
    const base = 0x1000000;
    cpu.mapMemory(base, extra, MemoryAccess.All);
    extra.set([
      0x8b, 0x05, ...le32(base + 0x1800), // mov eax, [base + 0x1800]
      0x40, //                              inc eax
      0xa3, ...le32(base + 0x1ffe), //      mov [base + 0x1FFE], eax   ; crosses the end of the mapping
      0xf4,
    ]);
    new DataView(extra.buffer).setUint32(0x1800, 0x0badf00d, true);
    // The last two bytes of that store land in unmapped space, which is the bus's.
    expect(machine.runAt(base)).toBe(RunExit.Halt);
    expect(machine.regs32(EAX)).toBe(0x0badf00e);
    expect(Array.from(extra.subarray(0x1ffe))).toEqual([0x0e, 0xf0]);
    expect(machine.bus.events).toEqual([
      { kind: "writePhysical", address: base + 0x2000, size: 1, value: 0xad },
      { kind: "writePhysical", address: base + 0x2001, size: 1, value: 0x0b },
    ]);
  });

  it("sends writes to a read-only mapping to the bus and leaves the bytes alone", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const rom = new Uint8Array(0x1000).fill(0x99);
    machine.cpu.mapMemory(0xf0000, rom, MemoryAccess.Read | MemoryAccess.Execute);
    machine.load(CODE, [0xa1, ...le32(0xf0010), 0xa3, ...le32(0xf0020), 0xf4]); // mov eax,[rom]; mov [rom],eax
    expect(machine.runAt(CODE)).toBe(RunExit.Halt);
    expect(machine.regs32(EAX)).toBe(0x99999999);
    expect(rom[0x20]).toBe(0x99);
    expect(machine.bus.events).toEqual([{ kind: "writePhysical", address: 0xf0020, size: 4, value: 0x99999999 }]);
  });

  it("starts from reset at physical 0xFFFFFFF0, fetching from a ROM mapped at the top of 4 GiB", () => {
    const bus = new RecordingBus();
    const cpu = new Cpu({ bus });
    const rom = new Uint8Array(0x1000);
    cpu.mapMemory(0xfffff000, rom, MemoryAccess.Read | MemoryAccess.Execute);
    rom.set([0xb0, 0x42, 0xe6, 0xe9, 0xf4], 0xff0); // mov al, 0x42; out 0xe9, al; hlt
    expect(cpu.segSelector[CS]).toBe(0xf000);
    expect(cpu.eip).toBe(0xfff0);
    expect(cpu.run(10)).toBe(RunExit.Halt);
    expect(bus.events).toEqual([{ kind: "writePort", address: 0xe9, size: 1, value: 0x42 }]);
  });
});

describe("interceptInstruction()", () => {
  /** Runs `code` (then HLT) with a bus that intercepts the first access of `kind`. */
  function interceptFirst(kind: "readPhysical" | "writePhysical" | "readPort" | "writePort", code: number[]) {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu, bus } = machine;
    let armed = true;
    bus.beforeAccess = (accessKind) => {
      if (accessKind === kind && armed) cpu.interceptInstruction();
    };
    machine.load(CODE, [...code, 0xf4]);
    return { machine, cpu, disarm: () => (armed = false) };
  }

  it("stops IN before AL changes, with EIP at the instruction; the next run() completes it", () => {
    const { machine, cpu, disarm } = interceptFirst("readPort", [0x41, 0xec]); // inc ecx; in al, dx
    machine.bus.portRead = () => 0x5a;
    cpu.regs[EAX] = 0x11223344;
    expect(machine.runAt(CODE)).toBe(RunExit.Intercept);
    expect(cpu.eip).toBe(CODE + 1);
    expect(cpu.regs[ECX]).toBe(1); // the INC before it completed and stays done
    expect(machine.regs32(EAX)).toBe(0x11223344);
    expect(cpu.instructionsRetired).toBe(1);
    disarm();
    expect(cpu.run(10)).toBe(RunExit.Halt);
    expect(machine.regs32(EAX)).toBe(0x1122335a);
  });

  it("undoes POP to MMIO: ESP is back where it was", () => {
    // pop dword [MMIO]: reads the stack (RAM), moves ESP, then writes MMIO.
    const { machine, cpu } = interceptFirst("writePhysical", [0x8f, 0x05, ...le32(MMIO)]);
    expect(machine.runAt(CODE)).toBe(RunExit.Intercept);
    expect(cpu.eip).toBe(CODE);
    expect(cpu.regs[ESP]).toBe(STACK_TOP);
  });

  it("undoes ADD to MMIO: no flag or register changes", () => {
    const { machine, cpu } = interceptFirst("writePhysical", [0x01, 0x05, ...le32(MMIO)]); // add [MMIO], eax
    machine.bus.physicalRead = () => 0xffffffff;
    cpu.regs[EAX] = 1;
    cpu.setFlags(0x2 | 0x40 | 0x4); // ZF and PF set; an ADD of 0xFFFFFFFF + 1 would set CF and keep ZF
    const before = cpu.getFlags();
    expect(machine.runAt(CODE)).toBe(RunExit.Intercept);
    expect(cpu.eip).toBe(CODE);
    expect(cpu.getFlags()).toBe(before);
    expect(cpu.regs[EAX]).toBe(1);
  });

  it("stops REP MOVSD to MMIO on its first element with ECX, ESI, EDI unchanged", () => {
    const { machine, cpu } = interceptFirst("writePhysical", [0xf3, 0xa5]); // rep movsd
    cpu.regs[ESI] = DATA;
    cpu.regs[EDI] = MMIO;
    cpu.regs[ECX] = 4;
    expect(machine.runAt(CODE)).toBe(RunExit.Intercept);
    expect(cpu.eip).toBe(CODE);
    expect([cpu.regs[ECX], cpu.regs[ESI], machine.regs32(EDI)]).toEqual([4, DATA, MMIO]);
  });

  it("leaves a far CALL through MMIO memory undone", () => {
    // call far [MMIO]: reads the pointer from MMIO before pushing anything.
    const { machine, cpu } = interceptFirst("readPhysical", [0xff, 0x1d, ...le32(MMIO)]);
    expect(machine.runAt(CODE)).toBe(RunExit.Intercept);
    expect(cpu.eip).toBe(CODE);
    expect(cpu.regs[ESP]).toBe(STACK_TOP);
    expect(cpu.segSelector[CS]).toBe(SELECTOR.code32);
  });
});

describe("requestStop()", () => {
  it("ends run() with RunExit.Stop after the instruction whose bus access asked for it", () => {
    const machine = new Machine();
    machine.enterFlatProtectedMode();
    const { cpu, bus } = machine;
    bus.beforeAccess = (kind) => {
      if (kind === "writePort") cpu.requestStop();
    };
    machine.load(CODE, [0xe6, 0x80, 0x40, 0xf4]); // out 0x80, al; inc eax; hlt
    expect(machine.runAt(CODE)).toBe(RunExit.Stop);
    expect(cpu.eip).toBe(CODE + 2); // the OUT completed
    expect(bus.events).toHaveLength(1);
    expect(cpu.regs[EAX]).toBe(0);
    expect(cpu.run(10)).toBe(RunExit.Halt);
    expect(cpu.regs[EAX]).toBe(1);
  });
});
