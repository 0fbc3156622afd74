export { HARDWARE_SLOT_COUNT, HardwareAccess, HardwareBreakpoints } from "./hardware-breakpoints.js";
export type { HardwareBreakpointSize } from "./hardware-breakpoints.js";
export { DbgfError, isDbgfError } from "./errors.js";
export type { DbgfErrorCode } from "./errors.js";
