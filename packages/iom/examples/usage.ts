import { isIomError, PortSpace, type PortDevice } from "@vmmkit/iom";

const ports = new PortSpace();

// A device with one 8-bit register at offset 1 of its two ports.
let register = 0;
const device: PortDevice = {
  readPort: (offset) => (offset === 1 ? register : 0),
  writePort: (offset, value) => {
    if (offset === 1) register = value;
  },
};
ports.register({ port: 0x510, count: 2, owner: "toy", device });

ports.write(0x511, 0x5a, 1); // OUT 0x511, AL
export const value = ports.read(0x511, 1); // 0x5a: IN AL, 0x511
export const unassigned = ports.read(0x80, 1); // 0xff: nobody claims port 0x80

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
