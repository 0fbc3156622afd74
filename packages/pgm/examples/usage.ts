import { PhysicalMemory, type MmioDevice } from "@vmmkit/pgm";

// The first 1 MiB is one ArrayBuffer laid out by physical address (byte i = address i).
const memory = new PhysicalMemory({ arenaSize: 0x100000 });
memory.addRam(0x00000, 0xa0000, "conventional memory");
memory.addRom(0xf0000, new Uint8Array([0xea, 0x5b, 0xe0, 0x00, 0xf0]), "bios"); // jmp f000:e05b

// A device with one 32-bit register at offset 0 of its range.
let register = 0;
const device: MmioDevice = {
  read: (offset) => (offset === 0 ? register : 0),
  write: (offset, value) => {
    if (offset === 0) register = value;
  },
};
memory.addMmio(0xfebf0000, 0x1000, device, "toy device");

memory.write(0x7dfe, 0xaa55, 2);
export const word = memory.read(0x7dfe, 2); // 0xaa55
export const arenaByte = memory.arena[0x7dff]; // 0xaa: RAM is a view into the arena

memory.write(0xf0000, 0x90, 1); // ROM ignores guest writes
export const romByte = memory.read(0xf0000, 1); // 0xea

memory.write(0xfebf0000, 0x12345678, 4);
export const deviceRegister = register; // 0x12345678
export const mmioRead = memory.read(0xfebf0000, 4); // 0x12345678

export const unassigned = memory.read(0xa0000, 4); // 0xffffffff: nothing there
export const unassignedReads = memory.unassignedReads; // 1
