export { MAX_PHYSICAL_ADDRESS, PAGE_SIZE, PhysicalMemory } from "./physical-memory.js";
export type {
  AccessSize,
  MmioDevice,
  PhysicalMemoryListener,
  PhysicalMemoryOptions,
  PhysicalRange,
  RangeKind,
} from "./physical-memory.js";
export { isPgmError, PgmError } from "./errors.js";
export type { PgmErrorCode } from "./errors.js";
