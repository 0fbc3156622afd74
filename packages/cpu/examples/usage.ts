import { Cpu, MemoryAccess, RunExit, registers, type CpuBus } from "@vmmkit/cpu";

// The CPU reaches devices only through the bus. Here: port 0xE9 (the Bochs/QEMU debug
// console) collects characters; everything else is unassigned and reads as all ones.
const written: number[] = [];
const bus: CpuBus = {
  readPhysical: (_address, size) => 2 ** (8 * size) - 1,
  writePhysical: () => {},
  readPort: (_port, size) => 2 ** (8 * size) - 1,
  writePort: (port, value) => {
    if (port === 0xe9) written.push(value);
  },
};

const cpu = new Cpu({ bus, model: "pentium-pro" });

// 64 KiB of RAM at guest-physical 0: byte i of the buffer is physical address i.
const ram = new Uint8Array(0x10000);
cpu.mapMemory(0, ram, MemoryAccess.All);

// Real-mode code at 0000:7C00 that prints a NUL-terminated string, then halts.
ram.set(
  [
    0xbe, 0x10, 0x7c, // 7C00  mov si, 0x7c10   ; SI = the message
    0xac,             // 7C03  lodsb            ; AL = [DS:SI], SI += 1
    0x84, 0xc0,       // 7C04  test al, al      ; the terminating NUL?
    0x74, 0x04,       // 7C06  jz 0x7c0c
    0xe6, 0xe9,       // 7C08  out 0xe9, al     ; one character to the debug port
    0xeb, 0xf7,       // 7C0A  jmp 0x7c03
    0xf4,             // 7C0C  hlt
  ],
  0x7c00,
);
ram.set(new TextEncoder().encode("Hello, world!\n\0"), 0x7c10);

// Start at 0000:7C00 (after reset the CPU sits at F000:FFF0, like a real one).
cpu.setRealModeSegment(registers.CS, 0);
cpu.eip = 0x7c00;

export const exit = cpu.run(1000); // RunExit.Halt: stopped at the HLT, not by the budget
export const halted = exit === RunExit.Halt; // true
export const output = String.fromCharCode(...written); // "Hello, world!\n"
export const instructions = cpu.instructionsRetired; // 1 + 5 per character + 4 = 75
export const eip = cpu.eip; // 0x7c0d: just past the HLT
