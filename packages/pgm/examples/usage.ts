import { AccessResult, HandlerKind, PhysicalMemory, type MmioDevice } from "@vmmkit/pgm";

// The first 1 MiB is one ArrayBuffer laid out by physical address (byte i = address i).
const memory = new PhysicalMemory({ arenaSize: 0x100000 });
memory.addRam(0x00000, 0xa0000, "conventional memory");
memory.addRom(0xf0000, new Uint8Array([0xea, 0x5b, 0xe0, 0x00, 0xf0]), "bios"); // jmp f000:e05b

// An MMIO device with one 32-bit register at offset 0 of its range.
let register = 0;
const device: MmioDevice = {
  read: (offset) => (offset === 0 ? register : 0),
  write: (offset, value) => {
    if (offset === 0) register = value;
  },
};
memory.addMmio(0xfebf0000, 0x1000, device, "toy device");
memory.write(0xfebf0000, 0x12345678, 4);
export const deviceRegister = register; // 0x12345678
export const mmioRead = memory.read(0xfebf0000, 4); // 0x12345678

// A write monitor over four pages of RAM that finds the pages the guest dirtied: the first
// write to a page calls back, turns monitoring off for that page and lets the write land.
const monitor = memory.registerHandlerType({
  kind: HandlerKind.Write,
  description: "dirty-page monitor",
  onAccess: (address) => {
    memory.pageTempOff(0x10000, address - (address % 0x1000));
    return AccessResult.Default;
  },
});
memory.register(0x10000, 0x13fff, monitor, null);
memory.write(0x11004, 0xbeef, 2); // calls back
memory.write(0x11008, 0xcafe, 2); // page 1 is off now: straight to RAM
memory.write(0x13000, 0x01, 1); // calls back
export const word = memory.read(0x11004, 2); // 0xbeef: reads are never intercepted
export const monitorCalls = memory.handlerAt(0x10000)!.callCount; // 2
const dirty = new Uint8Array(1);
memory.resetWithBitmap(0x10000, dirty, 0); // re-arms the pages it reports
export const dirtyPages = dirty[0]; // 0b1010: pages 1 and 3

export const arenaByte = memory.arena[0x11005]; // 0xbe: RAM is a view into the arena
memory.write(0xf0000, 0x90, 1); // ROM ignores guest writes
export const romByte = memory.read(0xf0000, 1); // 0xea
export const unassigned = memory.read(0xa0000, 4); // 0xffffffff: nothing there
export const consistency = memory.checkHandlersAndPagesInSync().findings; // []
