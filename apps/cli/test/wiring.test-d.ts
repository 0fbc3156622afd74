/**
 * The packages meet through interfaces owned by the caller, satisfied structurally by the
 * provider. These checks fail to compile if either side drifts.
 */
import type { Cpu } from "@vmmkit/cpu";
import type { DebugExit, SerialBackend, Uart16550 } from "@vmmkit/devices";
import type { PortDevice, PortSpace } from "@vmmkit/iom";
import type { MmioDevice, PhysicalMemory } from "@vmmkit/pgm";
import type { ExecutionEngine } from "@vmmkit/vm";
import type { WhvRunVpExitContext } from "@vmmkit/whpx-sim";
import { expectTypeOf, test } from "vitest";
import type { HostSerial } from "../src/machine/serial-backends.js";

test("devices plug into the port bus", () => {
  expectTypeOf<Uart16550>().toExtend<PortDevice>();
  expectTypeOf<DebugExit>().toExtend<PortDevice>();
  expectTypeOf<HostSerial>().toExtend<SerialBackend>();
});

test("the port bus and physical memory answer what the CPU's bus asks", () => {
  // The CPU's port calls map one to one onto PortSpace; MMIO devices answer pgm's reads.
  expectTypeOf<PortSpace["read"]>().parameters.toEqualTypeOf<Parameters<Cpu["bus"]["readPort"]>>();
  expectTypeOf<PortSpace["write"]>().parameters.toEqualTypeOf<Parameters<Cpu["bus"]["writePort"]>>();
  expectTypeOf<PhysicalMemory["read"]>().parameters.toEqualTypeOf<Parameters<MmioDevice["read"]>>();
});

test("whpx-sim exits are what the VM's execution loop consumes", () => {
  expectTypeOf<WhvRunVpExitContext>().toExtend<{ readonly exitReason: string }>();
  expectTypeOf<ExecutionEngine<WhvRunVpExitContext>["runVcpu"]>().returns.toEqualTypeOf<Promise<WhvRunVpExitContext>>();
});
