import { WhvEmulatorApi, WhvMapGpaRangeFlags, WhvPlatform, type WhvRegisterName, type WhvRegisterValues } from "@vmmkit/whpx-sim";

const platform = new WhvPlatform();
const partition = platform.createPartition();
platform.setPartitionProperty(partition, "processorCount", 1);
platform.setupPartition(partition);

// 64 KiB of guest RAM at GPA 0, mapped by reference: the guest sees writes to `ram`.
const ram = new Uint8Array(0x10000);
const { read, write, execute } = WhvMapGpaRangeFlags;
platform.mapGpaRange(partition, ram, 0n, BigInt(ram.length), read | write | execute);
platform.createVirtualProcessor(partition, 0);

// Real-mode code at 0000:1000 that writes "Hi\n" to port 0x3f8, then stops.
ram.set([
  0xba, 0xf8, 0x03, // mov dx, 0x3f8
  0xb0, 0x48, //       mov al, 'H'
  0xee, //             out dx, al
  0xb0, 0x69, //       mov al, 'i'
  0xee, //             out dx, al
  0xb0, 0x0a, //       mov al, '\n'
  0xee, //             out dx, al
  0xfa, //             cli
  0xf4, //             hlt
], 0x1000);
const cs = { base: 0n, limit: 0xffff, selector: 0, attributes: 0x9b };
platform.setVirtualProcessorRegisters(partition, 0, ["x64Cs", "x64Rip"], [cs, 0x1000n]);

// The emulator completes each intercepted IN/OUT through these callbacks.
let output = "";
const emulatorApi = new WhvEmulatorApi();
const emulator = emulatorApi.createEmulator<number>({
  ioPort(_vp, access) {
    if (access.direction === "out") output += String.fromCharCode(access.data);
    else access.data = 0xff; // nothing answers a read
  },
  memory(_vp, access) {
    const at = Number(access.gpaAddress);
    if (access.direction === "read") access.data.set(ram.subarray(at, at + access.accessSize));
    else ram.set(access.data, at);
  },
  getVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(vp: number, names: N) {
    return platform.getVirtualProcessorRegisters(partition, vp, names);
  },
  setVirtualProcessorRegisters<const N extends readonly WhvRegisterName[]>(vp: number, names: N, values: WhvRegisterValues<N>) {
    platform.setVirtualProcessorRegisters(partition, vp, names, values);
  },
});

const reasons: string[] = [];
for (;;) {
  const exit = await platform.runVirtualProcessor(partition, 0);
  reasons.push(exit.exitReason);
  if (exit.exitReason === "x64Halt") break;
  if (exit.exitReason !== "x64IoPortAccess") throw new Error(`unexpected ${exit.exitReason} exit`);
  const status = emulatorApi.tryIoEmulation(emulator, 0, exit.vpContext, exit.ioPortAccess);
  if (!status.emulationSuccessful) throw new Error("the OUT could not be emulated");
}
emulatorApi.destroyEmulator(emulator);
platform.deletePartition(partition);

export const serialOutput = output; // "Hi\n"
export const exitReasons = reasons; // three x64IoPortAccess, then x64Halt
