import { describe, expect, it } from "vitest";
import { isLegalTransition, VM_TRANSITIONS, VmState, vmStateName } from "@vmmkit/vm";

// spec/vm.md §1: the 31 states and their name strings, copied from the spec rather than
// derived from the package, so a renamed or missing state fails here.
const SPEC_NAMES = {
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
type SpecState = keyof typeof SPEC_NAMES;

// spec/vm.md §2.1, the validator table, row by row as printed there.
const VALIDATOR_TABLE: Record<SpecState, readonly SpecState[]> = {
  Creating: ["Created"],
  Created: ["Loading", "PoweringOn", "PoweringOff"],
  Loading: ["Suspended", "LoadFailure"],
  PoweringOn: ["Running"],
  Resuming: ["Running"],
  Running: ["PoweringOff", "Suspending", "Resetting", "SoftResetting", "RunningLS", "Debugging", "FatalError", "GuruMeditation"],
  RunningLS: [
    "PoweringOffLS",
    "SuspendingLS",
    "SuspendingExtLS",
    "ResettingLS",
    "SoftResettingLS",
    "Running",
    "DebuggingLS",
    "FatalErrorLS",
    "GuruMeditationLS",
  ],
  Resetting: ["Running"],
  ResettingLS: ["SuspendingLS"],
  SoftResetting: ["Running"],
  SoftResettingLS: ["RunningLS"],
  Suspending: ["Suspended"],
  SuspendingLS: ["Suspending", "SuspendedLS"],
  SuspendingExtLS: ["Suspending", "SuspendedExtLS"],
  Suspended: ["PoweringOff", "Saving", "Resetting", "SoftResetting", "Resuming", "Loading"],
  SuspendedLS: ["Suspended", "Saving"],
  SuspendedExtLS: ["Suspended", "Saving"],
  Saving: ["Suspended"],
  Debugging: ["Running", "PoweringOff"],
  DebuggingLS: ["Debugging", "RunningLS", "PoweringOffLS"],
  PoweringOff: ["Off"],
  PoweringOffLS: ["PoweringOff", "OffLS"],
  Off: ["Destroying"],
  OffLS: ["Off"],
  FatalError: ["PoweringOff"],
  FatalErrorLS: ["FatalError", "PoweringOffLS"],
  GuruMeditation: ["Debugging", "PoweringOff"],
  GuruMeditationLS: ["GuruMeditation", "DebuggingLS", "PoweringOffLS"],
  LoadFailure: ["PoweringOff"],
  Destroying: ["Terminated"],
  Terminated: [],
};

// spec/vm.md §2.2: the two edges the port adds to the validator's 65.
const PORT_EDGES: readonly (readonly [SpecState, SpecState])[] = [
  ["Resetting", "Suspended"],
  ["SoftResetting", "Suspended"],
];

const ALL: readonly SpecState[] = Object.keys(SPEC_NAMES) as SpecState[];
const state = (name: SpecState): VmState => SPEC_NAMES[name];
const validatorEdges = ALL.flatMap((from) => VALIDATOR_TABLE[from].map((to) => [from, to] as const));
const legal = new Set([...validatorEdges, ...PORT_EDGES].map(([from, to]) => `${from}>${to}`));

describe("states (spec/vm.md §1)", () => {
  it("are exactly the 31 states of the spec, each valued by its name string", () => {
    expect(ALL).toHaveLength(31);
    expect({ ...VmState }).toEqual(SPEC_NAMES);
  });

  it.each(ALL)("vmStateName(%s) is the spec's name", (name) => {
    expect(vmStateName(VmState[name])).toBe(SPEC_NAMES[name]);
  });

  it.each([["BOGUS"], ["running"], [""], [undefined], [null], [7], [{}], ["toString"], ["__proto__"]])(
    "vmStateName(%j) is the unknown marker and does not throw",
    (value) => {
      expect(vmStateName(value)).toBe("Unknown!\n");
    },
  );
});

describe("transition table (spec/vm.md §2, §9 criteria 1-5)", () => {
  it("copies the spec's validator table with 65 edges (a check on this test's own data)", () => {
    expect(validatorEdges).toHaveLength(65);
    expect(legal.size).toBe(67);
  });

  it.each(validatorEdges)("criterion 1: validator edge %s -> %s is legal", (from, to) => {
    expect(isLegalTransition(state(from), state(to))).toBe(true);
  });

  it.each(PORT_EDGES)("criterion 3: port edge %s -> %s is legal", (from, to) => {
    expect(isLegalTransition(state(from), state(to))).toBe(true);
  });

  it("criteria 2-3: every other ordered pair of the 31 states is illegal (961 pairs checked)", () => {
    let checked = 0;
    const wrong: string[] = [];
    for (const from of ALL) {
      for (const to of ALL) {
        checked++;
        const expected = legal.has(`${from}>${to}`);
        if (isLegalTransition(state(from), state(to)) !== expected) wrong.push(`${from} -> ${to} should be ${expected ? "legal" : "illegal"}`);
      }
    }
    expect(checked).toBe(961);
    expect(wrong).toEqual([]);
  });

  it("no self-transition is legal", () => {
    for (const name of ALL) expect(isLegalTransition(state(name), state(name)), name).toBe(false);
  });

  it("VM_TRANSITIONS lists exactly the 67 legal edges, without repeats", () => {
    const listed = Object.entries(VM_TRANSITIONS).flatMap(([from, targets]) => targets.map((to) => `${from}>${to}`));
    expect(listed).toHaveLength(67);
    expect(new Set(listed)).toEqual(new Set([...legal].map((edge) => edge.split(">").map((name) => state(name as SpecState)).join(">"))));
  });

  it("criterion 4: Terminated has no successor, Creating only Created, Off only Destroying", () => {
    const successors = (from: SpecState) => ALL.filter((to) => isLegalTransition(state(from), state(to)));
    expect(successors("Terminated")).toEqual([]);
    expect(VM_TRANSITIONS[VmState.Terminated]).toEqual([]);
    expect(successors("Creating")).toEqual(["Created"]);
    expect(successors("Off")).toEqual(["Destroying"]);
  });

  it.each([
    ["Created", "Running"],
    ["Running", "Off"],
    ["Suspended", "Running"],
    ["Off", "Running"],
    ["LoadFailure", "Suspended"],
    ["Saving", "Running"],
    ["SuspendedExtLS", "Running"],
    ["OffLS", "Destroying"],
  ] as const)("criterion 5: %s -> %s is illegal", (from, to) => {
    expect(isLegalTransition(state(from), state(to))).toBe(false);
  });

  it("the edges the reference validator only has commented out are illegal", () => {
    expect(isLegalTransition(VmState.PoweringOn, VmState.FatalError)).toBe(false);
    expect(isLegalTransition(VmState.Resuming, VmState.FatalError)).toBe(false);
  });
});
