export { PhysicalMemory } from "./physical-memory.js";
export type {
  HandlerInfo,
  HandlerTypeOptions,
  Mmio2Options,
  PageInfo,
  PhysicalMemoryListener,
  PhysicalMemoryOptions,
} from "./physical-memory.js";
export {
  AccessOrigin,
  AccessResult,
  AccessType,
  FaultResult,
  HandlerKind,
  HandlerTypeFlags,
  MAX_PHYSICAL_ADDRESS,
  NIL_ADDRESS,
  NIL_HANDLER_TYPE,
  PAGE_SIZE,
  PageAllocState,
  PageHandlerState,
  PageProtection,
  PageType,
} from "./constants.js";
export type { AccessCallback, FaultCallback, HandlerId, HandlerTypeHandle, PgmStatus } from "./constants.js";
export type { AccessSize, MmioDevice, PhysicalRange, RangeKind } from "./memory-range.js";
export type { ExecutionEngineHooks, PageRaisedAnswer, PagingHooks } from "./hooks.js";
export type { ConsistencyReport } from "./consistency-checker.js";
export { isPgmError, PgmError } from "./errors.js";
export type { PgmErrorCode } from "./errors.js";
