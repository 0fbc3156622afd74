export { MAX_CPUS, Vm } from "./machine.js";
export type { EngineExit, ExecutionEngine, ExitAction, ExitHandler, StateCallback, VmOptions } from "./machine.js";
export { isLegalTransition, VM_TRANSITIONS, VmState, vmStateName } from "./states.js";
export type { LegalTarget } from "./states.js";
export { isVmError, VmError } from "./errors.js";
export type { VmErrorCode } from "./errors.js";
