/** The PC memory map vmmkit builds: conventional RAM, the legacy hole, extended RAM. */
export const CONVENTIONAL_MEMORY_END = 0xa0000; // 640 KiB
export const EXTENDED_MEMORY_START = 0x100000; // 1 MiB
export const FOUR_GIB = 0x1_0000_0000;
/** The firmware's copy below 1 MiB: its last 128 KiB (all of it when smaller). */
export const LOW_BIOS_WINDOW = 128 * 1024;
export const MIN_MEMORY = 2 * 1024 * 1024;
export const MAX_MEMORY = 3 * 1024 * 1024 * 1024;
