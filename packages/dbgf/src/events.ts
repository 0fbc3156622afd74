/**
 * Interrupt breakpoints, selectable debug events and the per-vCPU event stack
 * (spec/dbgf.md §9), and the event stream a debugger front end reads.
 */
import type { BreakpointHandle } from "./types.js";

/**
 * Selectable debug event types. Exceptions are `FirstException + vector` (vectors 0-31),
 * see {@link exceptionEvent}.
 */
export const DebugEventType = {
  HardwareInterrupt: 0,
  SoftwareInterrupt: 1,
  TripleFault: 2,
  Halt: 3,
  Cpuid: 4,
  ReadMsr: 5,
  WriteMsr: 6,
  PortIn: 7,
  PortOut: 8,
  FirstException: 32,
} as const;

/** Number of selectable event types (valid types are 0 … DEBUG_EVENT_TYPE_COUNT − 1). */
export const DEBUG_EVENT_TYPE_COUNT = 64;

/** The event type of exception `vector` (0-31). */
export function exceptionEvent(vector: number): number {
  return DebugEventType.FirstException + vector;
}

/** What to do with one of a vector's two bits in {@link InterruptBreakpointConfig}. */
export type InterruptBreakpointState = "enable" | "disable" | "keep";

export interface InterruptBreakpointConfig {
  readonly vector: number;
  /** Break on the vector delivered as a hardware interrupt. Default "keep". */
  readonly hard?: InterruptBreakpointState;
  /** Break on `INT n` with this vector. Default "keep". */
  readonly soft?: InterruptBreakpointState;
}

export type EventStackState = "current" | "ignore" | "restorable";

/** One entry of a vCPU's event stack (spec §9.3). */
export interface EventStackEntry {
  readonly type: number;
  readonly rip: bigint;
  readonly args: readonly bigint[];
  /** Whatever the caller passed as context (registers, exit context). */
  readonly context: unknown;
  state: EventStackState;
}

/** What a debugger front end reads from {@link Debugger.nextEvent}. */
export type DebuggerEvent =
  /** A breakpoint (int3, hardware, port I/O or MMIO) stopped the vCPU. */
  | { readonly kind: "breakpoint"; readonly cpuId: number; readonly handle: BreakpointHandle }
  /** A single step requested with setStepping completed. */
  | { readonly kind: "stepped"; readonly cpuId: number }
  /** A selected generic event (interrupt, exception, …) was raised. */
  | { readonly kind: "event"; readonly cpuId: number; readonly type: number; readonly rip: bigint; readonly args: readonly bigint[] }
  /** Reported by the VM: the vCPU stopped because the debugger asked it to. */
  | { readonly kind: "halted"; readonly cpuId: number }
  /** Reported by the VM: it is powering off. */
  | { readonly kind: "powering-off"; readonly cpuId: number }
  /** Reported by the VM: a fatal error (guru meditation) stopped it. */
  | { readonly kind: "fatal-error"; readonly cpuId: number };

export const EVENT_STACK_DEPTH = 3;
export const MAX_EVENT_ARGS = 5;
