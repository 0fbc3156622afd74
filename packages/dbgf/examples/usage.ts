import { Debugger, type DebuggerHost, HardwareAccess, IoAccess } from "@vmmkit/dbgf";

// A one-vCPU guest whose linear addresses are its physical addresses.
const ram = new Uint8Array(0x1_0000);
ram.set([0xb0, 0x41, 0xe6, 0xe9, 0xf4], 0x7c00); // mov al, 'A'; out 0xe9, al; hlt
const executed: bigint[] = [];

const host: DebuggerHost = {
  cpuCount: 1,
  cpuVendor: "intel",
  translate: (_cpu, linear) => Number(linear),
  readPhysical: (address, length) => ram.slice(address, address + length),
  writePhysical: (address, bytes) => ram.set(bytes, address),
  readLinear: (_cpu, linear, length) => ram.slice(Number(linear), Number(linear) + length),
  executeOne: (_cpu, linear) => void executed.push(linear), // your CPU runs one instruction here
  reloadDebugRegisters: () => {},
  portBreakpointsArmed: () => {},
  armMmioRange: () => {},
  disarmMmioRange: () => {},
  raiseBreakpointEvent: () => {},
  debugEventsChanged: () => {},
};

const dbg = new Debugger(host);

// An owner that counts hits and lets the guest run on.
let counted = 0;
const counter = dbg.createOwner({ hit: () => (counted++, "resume") });
const counting = dbg.setInt3(0, 0x7c00n, { owner: counter }).handle;
export const patched = ram[0x7c00]; // 0xcc
export const counterResult = dbg.onInt3Trap(0, 0x7c00); // "resume"
export const hits = counted; // 1
export const executedAt = executed; // [0x7c00n]: mov al ran once from its original bytes

// A breakpoint without an owner stops the VM.
const stop = dbg.setInt3(0, 0x7c04n).handle;
export const stopResult = dbg.onInt3Trap(0, 0x7c04); // "halt"
export const event = dbg.nextEvent(); // { kind: "breakpoint", cpuId: 0, handle: stop }

// Debuggers see the guest's bytes, not the 0xCCs.
export const shown = [...dbg.readPhysicalMemory(0x7c00n, 5)]; // [0xb0, 0x41, 0xe6, 0xe9, 0xf4]

// Port I/O and hardware breakpoints.
dbg.setPortIo(0xe9, 1, IoAccess.WriteByte);
export const outResult = dbg.checkPortIo(0, 0xe9, IoAccess.WriteByte, 0x41, true); // "halt"
dbg.setHardware(0x1000n, HardwareAccess.Write, 4);
export const dr7 = dbg.getDr7(); // 0x000d2702: G0, slot 0 = write/4 bytes

dbg.clear(counting);
dbg.clear(stop);
export const restored = ram[0x7c00]; // 0xb0
export { stop };
