/**
 * The 31 VM states and the legal transitions between them (spec/vm.md §1-§2): the 65 edges
 * of VirtualBox's validator plus Resetting → Suspended and SoftResetting → Suspended.
 */

export const VmState = {
  Creating: "CREATING",
  Created: "CREATED",
  Loading: "LOADING",
  PoweringOn: "POWERING_ON",
  Resuming: "RESUMING",
  Running: "RUNNING",
  RunningLS: "RUNNING_LS",
  Resetting: "RESETTING",
  ResettingLS: "RESETTING_LS",
  SoftResetting: "SOFT_RESETTING",
  SoftResettingLS: "SOFT_RESETTING_LS",
  Suspending: "SUSPENDING",
  SuspendingLS: "SUSPENDING_LS",
  SuspendingExtLS: "SUSPENDING_EXT_LS",
  Suspended: "SUSPENDED",
  SuspendedLS: "SUSPENDED_LS",
  SuspendedExtLS: "SUSPENDED_EXT_LS",
  Saving: "SAVING",
  Debugging: "DEBUGGING",
  DebuggingLS: "DEBUGGING_LS",
  PoweringOff: "POWERING_OFF",
  PoweringOffLS: "POWERING_OFF_LS",
  Off: "OFF",
  OffLS: "OFF_LS",
  FatalError: "FATAL_ERROR",
  FatalErrorLS: "FATAL_ERROR_LS",
  GuruMeditation: "GURU_MEDITATION",
  GuruMeditationLS: "GURU_MEDITATION_LS",
  LoadFailure: "LOAD_FAILURE",
  Destroying: "DESTROYING",
  Terminated: "TERMINATED",
} as const;
export type VmState = (typeof VmState)[keyof typeof VmState];

const S = VmState;

/** Legal successors of every state. */
export const VM_TRANSITIONS = {
  [S.Creating]: [S.Created],
  [S.Created]: [S.Loading, S.PoweringOn, S.PoweringOff],
  [S.Loading]: [S.Suspended, S.LoadFailure],
  [S.PoweringOn]: [S.Running],
  [S.Resuming]: [S.Running],
  [S.Running]: [S.PoweringOff, S.Suspending, S.Resetting, S.SoftResetting, S.RunningLS, S.Debugging, S.FatalError, S.GuruMeditation],
  [S.RunningLS]: [
    S.PoweringOffLS, S.SuspendingLS, S.SuspendingExtLS, S.ResettingLS, S.SoftResettingLS, S.Running, S.DebuggingLS, S.FatalErrorLS,
    S.GuruMeditationLS,
  ],
  [S.Resetting]: [S.Running, S.Suspended],
  [S.ResettingLS]: [S.SuspendingLS],
  [S.SoftResetting]: [S.Running, S.Suspended],
  [S.SoftResettingLS]: [S.RunningLS],
  [S.Suspending]: [S.Suspended],
  [S.SuspendingLS]: [S.Suspending, S.SuspendedLS],
  [S.SuspendingExtLS]: [S.Suspending, S.SuspendedExtLS],
  [S.Suspended]: [S.PoweringOff, S.Saving, S.Resetting, S.SoftResetting, S.Resuming, S.Loading],
  [S.SuspendedLS]: [S.Suspended, S.Saving],
  [S.SuspendedExtLS]: [S.Suspended, S.Saving],
  [S.Saving]: [S.Suspended],
  [S.Debugging]: [S.Running, S.PoweringOff],
  [S.DebuggingLS]: [S.Debugging, S.RunningLS, S.PoweringOffLS],
  [S.PoweringOff]: [S.Off],
  [S.PoweringOffLS]: [S.PoweringOff, S.OffLS],
  [S.Off]: [S.Destroying],
  [S.OffLS]: [S.Off],
  [S.FatalError]: [S.PoweringOff],
  [S.FatalErrorLS]: [S.FatalError, S.PoweringOffLS],
  [S.GuruMeditation]: [S.Debugging, S.PoweringOff],
  [S.GuruMeditationLS]: [S.GuruMeditation, S.DebuggingLS, S.PoweringOffLS],
  [S.LoadFailure]: [S.PoweringOff],
  [S.Destroying]: [S.Terminated],
  [S.Terminated]: [],
} as const satisfies Record<VmState, readonly VmState[]>;

/** The states a given state may move to. */
export type LegalTarget<From extends VmState> = (typeof VM_TRANSITIONS)[From][number];

export function isLegalTransition(from: VmState, to: VmState): boolean {
  const targets = VM_TRANSITIONS[from] as readonly VmState[] | undefined;
  return targets !== undefined && targets.includes(to);
}

const ALL_STATES = new Set<string>(Object.values(VmState));

/** The name of a state value; "Unknown!\n" for a value that is not a state (never throws). */
export function vmStateName(state: unknown): string {
  return typeof state === "string" && ALL_STATES.has(state) ? state : "Unknown!\n";
}
