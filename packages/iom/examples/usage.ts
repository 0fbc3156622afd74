import { isIomError, PortSpace, type IoBreakpointChecker, type PortDevice } from "@vmmkit/iom";

const ports = new PortSpace();

// A device with one 8-bit register at offset 1 of its two ports.
let register = 0;
const device: PortDevice = {
  readPort: (offset) => (offset === 1 ? register : 0),
  writePort: (offset, value) => {
    if (offset === 1) register = value;
  },
};
// Byte-wide, like an ISA device: a 16-bit IN reaches it as two byte reads.
ports.register({ port: 0x510, count: 2, owner: "toy", device, maxAccessSize: 1 });

ports.write(0x511, 0x5a, 1); // OUT 0x511, AL
export const value = ports.read(0x511, 1); // 0x5a: IN AL, 0x511
export const word = ports.read(0x510, 2); // 0x5a00: IN AX, 0x510 (offset 0, then offset 1)
export const unassigned = ports.read(0x80, 1); // 0xff: nobody claims port 0x80

// REP INSB: without a string callback, each unit is one readPort call.
const buffer = new Uint8Array(3);
export const transferred = ports.readString(0x511, 1, buffer); // 3
export const bytes = [...buffer]; // [0x5a, 0x5a, 0x5a]
export const statistics = ports.statisticsFor(0x511); // reads { byte: 4, word: 0, dword: 0 }, owner "toy"

// A debugger's hook for I/O breakpoints: consulted only while installed.
const seen: string[] = [];
const checker: IoBreakpointChecker = {
  checkPortAccess(port, _size, direction, data, phase) {
    if (port === 0x511 && phase === "after") seen.push(`${direction} ${data.toString(16)}`);
    return "continue";
  },
};
ports.setBreakpointChecker(checker);
ports.write(0x511, 0x42, 1);
ports.setBreakpointChecker(null); // the last breakpoint is gone
ports.write(0x511, 0x43, 1);
export const breakpointHits = seen; // ["write 42"]

// A second device may not claim a port that is taken.
let message = "";
try {
  ports.register({ port: 0x511, count: 4, owner: "intruder", device: {} });
} catch (error) {
  if (!isIomError(error)) throw error;
  message = error.message;
}
export const overlap = message; // ports 0x0511-0x0514 for "intruder" overlap 0x0510-0x0511 claimed by "toy"

ports.deregister(0x510);
export const afterDeregister = ports.read(0x511, 1); // 0xff
