/**
 * Informational results of VM operations and rendezvous workers (spec/vm.md §0.1): the
 * scheduling hints a vCPU loop acts on. Errors are thrown, never returned.
 */
export type VmStatus =
  | "ok"
  | "em-terminate"
  | "em-off"
  | "em-suspend"
  | "em-reset"
  | "em-halt"
  | "em-resume"
  | "em-reschedule"
  | "em-wait-sipi";

// Most urgent first, as the reference's numeric order (spec §0.1: EmSuspend outranks EmReset).
const PRIORITY: readonly VmStatus[] = ["em-terminate", "em-off", "em-suspend", "em-reset", "em-halt", "em-resume", "em-reschedule", "em-wait-sipi"];

/** The more urgent of two statuses; plain "ok" never replaces anything. */
export function mergeStatus(current: VmStatus, next: VmStatus): VmStatus {
  if (next === "ok") return current;
  if (current === "ok") return next;
  return PRIORITY.indexOf(next) < PRIORITY.indexOf(current) ? next : current;
}
