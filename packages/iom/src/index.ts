export { PortSpace } from "./port-space.js";
export type { AccessSize, PortDevice, PortRange, PortRangeOptions } from "./port-space.js";
export { IomError, isIomError } from "./errors.js";
export type { IomErrorCode } from "./errors.js";
