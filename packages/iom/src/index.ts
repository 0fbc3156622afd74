export { PortSpace } from "./port-space.js";
export type {
  AccessSize,
  IoBreakpointChecker,
  IoBreakpointVerdict,
  PortAccessCounts,
  PortAccessDirection,
  PortAccessPhase,
  PortDevice,
  PortRange,
  PortRangeOptions,
  PortStatistics,
} from "./port-space.js";
export { IomError, isIomError } from "./errors.js";
export type { IomErrorCode } from "./errors.js";
