import { HardwareAccess, HardwareBreakpoints } from "@vmmkit/dbgf";

const breakpoints = new HardwareBreakpoints();

// Stop when the guest writes the dword at 0x1000, and when it executes 0x7c00.
const watch = breakpoints.set(0x1000n, HardwareAccess.Write, 4);
const stop = breakpoints.set(0x7c00n, HardwareAccess.Execute, 1);

// Load these into every vCPU's DR0-DR3 and DR7.
export const dr0 = breakpoints.address(watch.slot); // 0x1000n
export const dr1 = breakpoints.address(stop.slot); // 0x7c00n
export const dr7 = breakpoints.dr7; // 0x000d270a: G0, G1, slot 0 = write/4 bytes

breakpoints.disable(stop.slot);
export const dr7AfterDisable = breakpoints.dr7; // 0x000d2702
