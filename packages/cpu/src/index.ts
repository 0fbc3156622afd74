export { Cpu, RunExit, SHADOW_MOV_SS, SHADOW_STI, descriptorAttributes } from "./cpu.js";
export type { CpuModel, CpuOptions } from "./cpu.js";
export { MemoryAccess } from "./cpu-bus.js";
export type { AccessSize, CpuBus } from "./cpu-bus.js";
export { CpuError, isCpuError } from "./errors.js";
export type { CpuErrorCode } from "./errors.js";
export { CPUID_FEATURES_EDX, defaultCpuid } from "./instructions/system.js";
export * as registers from "./registers.js";
