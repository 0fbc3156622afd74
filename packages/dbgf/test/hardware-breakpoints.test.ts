import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HARDWARE_SLOT_COUNT, HardwareAccess, HardwareBreakpoints, type HardwareBreakpointSize, isDbgfError } from "@vmmkit/dbgf";

const { Execute, Write, Io, ReadWrite } = HardwareAccess;

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

function expectDbgfError(error: unknown, code: string): void {
  expect(isDbgfError(error), `not a DbgfError: ${String(error)}`).toBe(true);
  expect(error).toMatchObject({ name: "DbgfError", code });
}

/** Everything a caller can observe, to check that a refused call changed nothing. */
function observe(breakpoints: HardwareBreakpoints) {
  return {
    dr7: breakpoints.dr7,
    addresses: [0, 1, 2, 3].map((slot) => breakpoints.address(slot)),
    generation: breakpoints.generation,
    armed: breakpoints.armed,
  };
}

interface Wanted {
  readonly slot: number;
  readonly access: HardwareAccess;
  readonly size: HardwareBreakpointSize;
}

/**
 * Enables exactly the wanted slots. A slot below the highest wanted one that is not wanted
 * holds a disabled breakpoint, because allocation is lowest-first.
 */
function configure(wanted: readonly Wanted[]): HardwareBreakpoints {
  const breakpoints = new HardwareBreakpoints();
  const highest = Math.max(-1, ...wanted.map((entry) => entry.slot));
  for (let slot = 0; slot <= highest; slot++) {
    const entry = wanted.find((candidate) => candidate.slot === slot);
    const result = entry
      ? breakpoints.set(0x1000n * BigInt(slot + 1), entry.access, entry.size)
      : breakpoints.set(0xdead0000n + BigInt(slot), ReadWrite, 4, false);
    expect(result).toEqual({ slot, alreadyExists: false });
  }
  return breakpoints;
}

describe("DR7 (spec/dbgf.md §8.1 example table)", () => {
  it.each<[string, Wanted[], number]>([
    ["nothing enabled", [], 0x0000_2700],
    ["slot 0 execute/1", [{ slot: 0, access: Execute, size: 1 }], 0x0000_2702],
    ["slot 0 write/1", [{ slot: 0, access: Write, size: 1 }], 0x0001_2702],
    ["slot 0 write/2", [{ slot: 0, access: Write, size: 2 }], 0x0005_2702],
    ["slot 0 write/4", [{ slot: 0, access: Write, size: 4 }], 0x000d_2702],
    ["slot 0 write/8", [{ slot: 0, access: Write, size: 8 }], 0x0009_2702],
    ["slot 0 I/O/1", [{ slot: 0, access: Io, size: 1 }], 0x0002_2702],
    ["slot 0 read-write/1", [{ slot: 0, access: ReadWrite, size: 1 }], 0x0003_2702],
    ["slot 0 read-write/8", [{ slot: 0, access: ReadWrite, size: 8 }], 0x000b_2702],
    ["slot 1 write/4", [{ slot: 1, access: Write, size: 4 }], 0x00d0_2708],
    ["slot 2 read-write/2", [{ slot: 2, access: ReadWrite, size: 2 }], 0x0700_2720],
    ["slot 3 I/O/8", [{ slot: 3, access: Io, size: 8 }], 0xa000_2780],
    [
      "slots 0-3 = execute/1, write/2, read-write/4, I/O/8",
      [
        { slot: 0, access: Execute, size: 1 },
        { slot: 1, access: Write, size: 2 },
        { slot: 2, access: ReadWrite, size: 4 },
        { slot: 3, access: Io, size: 8 },
      ],
      0xaf50_27aa,
    ],
  ])("%s -> DR7 %#x", (_label, wanted, expected) => {
    const breakpoints = configure(wanted);
    expect(breakpoints.dr7).toBe(expected);
    expect(breakpoints.armed).toBe(wanted.length > 0);
  });

  it("is an unsigned 32-bit number even with bit 31 set", () => {
    const breakpoints = configure([{ slot: 3, access: Io, size: 8 }]);
    expect(breakpoints.dr7).toBeGreaterThan(0);
    expect(breakpoints.dr7).toBe(2 ** 31 + 0x2000_2780);
  });
});

describe("slots", () => {
  it("are claimed lowest-first, and a cleared slot is reused first", () => {
    const breakpoints = new HardwareBreakpoints();
    expect(breakpoints.set(0x100n, Write, 1).slot).toBe(0);
    expect(breakpoints.set(0x200n, Write, 1).slot).toBe(1);
    expect(breakpoints.set(0x300n, Write, 1).slot).toBe(2);
    breakpoints.clear(1);
    expect(breakpoints.set(0x400n, Write, 1)).toEqual({ slot: 1, alreadyExists: false });
    expect(breakpoints.set(0x500n, Write, 1)).toEqual({ slot: 3, alreadyExists: false });
    expect([0, 1, 2, 3].map((slot) => breakpoints.address(slot))).toEqual([0x100n, 0x400n, 0x300n, 0x500n]);
  });

  it("an identical request returns the existing slot with alreadyExists and changes nothing", () => {
    const breakpoints = new HardwareBreakpoints();
    breakpoints.set(0x100n, Write, 4);
    breakpoints.set(0x200n, ReadWrite, 2);
    const before = observe(breakpoints);
    expect(breakpoints.set(0x200n, ReadWrite, 2)).toEqual({ slot: 1, alreadyExists: true });
    expect(breakpoints.set(0x200n, ReadWrite, 2, false)).toEqual({ slot: 1, alreadyExists: true }); // does not disable it
    expect(observe(breakpoints)).toEqual(before);
  });

  it("an identical request re-enables a disabled breakpoint", () => {
    const breakpoints = new HardwareBreakpoints();
    breakpoints.set(0x100n, Write, 4, false);
    const generation = breakpoints.generation;
    expect(breakpoints.armed).toBe(false);
    expect(breakpoints.set(0x100n, Write, 4)).toEqual({ slot: 0, alreadyExists: true });
    expect(breakpoints.armed).toBe(true);
    expect(breakpoints.dr7).toBe(0x000d_2702);
    expect(breakpoints.generation).toBe(generation + 1);
  });

  it("the same address with another access type or size is a different breakpoint", () => {
    const breakpoints = new HardwareBreakpoints();
    expect(breakpoints.set(0x100n, Write, 4).slot).toBe(0);
    expect(breakpoints.set(0x100n, ReadWrite, 4)).toEqual({ slot: 1, alreadyExists: false });
    expect(breakpoints.set(0x100n, Write, 2)).toEqual({ slot: 2, alreadyExists: false });
  });

  it("a fifth breakpoint is refused with NoMoreBreakpointSlots and nothing changes", () => {
    const breakpoints = new HardwareBreakpoints();
    for (let i = 0; i < HARDWARE_SLOT_COUNT; i++) breakpoints.set(0x100n * BigInt(i + 1), Write, 1, i % 2 === 0);
    const before = observe(breakpoints);
    expectDbgfError(thrown(() => breakpoints.set(0x900n, Write, 1)), "NoMoreBreakpointSlots");
    expect(observe(breakpoints)).toEqual(before);
    // With every slot taken, an identical request still finds its slot.
    expect(breakpoints.set(0x200n, Write, 1, false)).toEqual({ slot: 1, alreadyExists: true });
  });

  it.each<[string, () => [bigint, number, number]]>([
    ["size 0", () => [0x100n, Write, 0]],
    ["size 3", () => [0x100n, Write, 3]],
    ["size 16", () => [0x100n, Write, 16]],
    ["size 1.5", () => [0x100n, ReadWrite, 1.5]],
    ["type 4", () => [0x100n, 4, 1]],
    ["type -1", () => [0x100n, -1, 1]],
    ["type 0.5", () => [0x100n, 0.5, 1]],
    ["execute with size 2", () => [0x100n, Execute, 2]],
    ["execute with size 4", () => [0x100n, Execute, 4]],
    ["execute with size 8", () => [0x100n, Execute, 8]],
    ["a negative address", () => [-1n, Write, 1]],
    ["an address above 2^64-1", () => [2n ** 64n, Write, 1]],
  ])("%s is refused with InvalidParameter and nothing changes", (_label, args) => {
    const breakpoints = new HardwareBreakpoints();
    breakpoints.set(0x40n, Write, 1);
    const before = observe(breakpoints);
    const [address, access, size] = args();
    expectDbgfError(thrown(() => breakpoints.set(address, access as HardwareAccess, size as HardwareBreakpointSize)), "InvalidParameter");
    expect(observe(breakpoints)).toEqual(before);
  });

  it("accepts the extreme addresses 0 and 2^64-1", () => {
    const breakpoints = new HardwareBreakpoints();
    expect(breakpoints.set(0n, Execute, 1).slot).toBe(0);
    expect(breakpoints.set(0xffff_ffff_ffff_ffffn, ReadWrite, 8).slot).toBe(1);
    expect(breakpoints.address(1)).toBe(0xffff_ffff_ffff_ffffn);
  });

  it("enable and disable report when there was nothing to do", () => {
    const breakpoints = new HardwareBreakpoints();
    const { slot } = breakpoints.set(0x100n, Write, 1);
    expect(breakpoints.enable(slot)).toBe("already-enabled");
    expect(breakpoints.disable(slot)).toBe("ok");
    expect(breakpoints.dr7).toBe(0x2700);
    expect(breakpoints.disable(slot)).toBe("already-disabled");
    expect(breakpoints.enable(slot)).toBe("ok");
    expect(breakpoints.dr7).toBe(0x0001_2702);
  });

  it("a disabled slot keeps its address in DR0-DR3 but not its DR7 bits", () => {
    const breakpoints = new HardwareBreakpoints();
    breakpoints.set(0x100n, Write, 1);
    breakpoints.set(0x200n, ReadWrite, 4);
    breakpoints.disable(0);
    expect(breakpoints.address(0)).toBe(0x100n);
    expect(breakpoints.dr7).toBe(0x00f0_2708);
  });

  it("clear frees the slot: address 0n, DR7 bits gone, the slot is free again", () => {
    const breakpoints = new HardwareBreakpoints();
    breakpoints.set(0x100n, Write, 1);
    breakpoints.set(0x200n, ReadWrite, 4);
    breakpoints.clear(0);
    expect(breakpoints.address(0)).toBe(0n);
    expect(breakpoints.address(1)).toBe(0x200n);
    expect(breakpoints.dr7).toBe(0x00f0_2708);
    expectDbgfError(thrown(() => breakpoints.clear(0)), "BreakpointNotFound");
    expectDbgfError(thrown(() => breakpoints.enable(0)), "BreakpointNotFound");
    expectDbgfError(thrown(() => breakpoints.disable(0)), "BreakpointNotFound");
    expect(breakpoints.set(0x300n, Execute, 1)).toEqual({ slot: 0, alreadyExists: false });
  });

  it("slot numbers outside 0-3 are refused with InvalidHandle (enable, disable, clear) and InvalidParameter (address)", () => {
    const breakpoints = new HardwareBreakpoints();
    breakpoints.set(0x100n, Write, 1);
    const before = observe(breakpoints);
    for (const slot of [-1, 4, 1.5, Number.NaN]) {
      expectDbgfError(thrown(() => breakpoints.enable(slot)), "InvalidHandle");
      expectDbgfError(thrown(() => breakpoints.disable(slot)), "InvalidHandle");
      expectDbgfError(thrown(() => breakpoints.clear(slot)), "InvalidHandle");
      expectDbgfError(thrown(() => breakpoints.address(slot)), "InvalidParameter");
    }
    expect(observe(breakpoints)).toEqual(before);
  });

  it("address() of a free slot is 0n", () => {
    const breakpoints = new HardwareBreakpoints();
    expect([0, 1, 2, 3].map((slot) => breakpoints.address(slot))).toEqual([0n, 0n, 0n, 0n]);
  });

  it("generation increments on every change and only then", () => {
    const breakpoints = new HardwareBreakpoints();
    expect(breakpoints.generation).toBe(0);
    const steps: [string, () => unknown, number][] = [
      ["set", () => breakpoints.set(0x100n, Write, 1), 1],
      ["set disabled", () => breakpoints.set(0x200n, Write, 1, false), 1],
      ["duplicate of an enabled one", () => breakpoints.set(0x100n, Write, 1), 0],
      ["enable", () => breakpoints.enable(1), 1],
      ["enable again", () => breakpoints.enable(1), 0],
      ["disable", () => breakpoints.disable(0), 1],
      ["disable again", () => breakpoints.disable(0), 0],
      ["duplicate re-enabling", () => breakpoints.set(0x100n, Write, 1), 1],
      ["clear an enabled slot", () => breakpoints.clear(0), 1],
      ["set into the freed slot", () => breakpoints.set(0x300n, Write, 1, false), 1],
      ["clear a disabled slot", () => breakpoints.clear(0), 1],
    ];
    for (const [label, step, increment] of steps) {
      const before = breakpoints.generation;
      step();
      expect(breakpoints.generation, label).toBe(before + increment);
    }
  });

  it("armed is true exactly while some slot is enabled", () => {
    const breakpoints = new HardwareBreakpoints();
    expect(breakpoints.armed).toBe(false);
    breakpoints.set(0x100n, Write, 1, false);
    expect(breakpoints.armed).toBe(false);
    breakpoints.set(0x200n, Io, 1);
    expect(breakpoints.armed).toBe(true);
    breakpoints.disable(1);
    expect(breakpoints.armed).toBe(false);
    breakpoints.enable(0);
    expect(breakpoints.armed).toBe(true);
    breakpoints.clear(0);
    expect(breakpoints.armed).toBe(false);
  });
});

// ---- model test -----------------------------------------------------------------------

interface ModelSlot {
  address: bigint;
  access: number;
  size: number;
  enabled: boolean;
}

type Command =
  | { kind: "set"; address: bigint; access: number; size: number; enabled: boolean }
  | { kind: "enable" | "disable" | "clear"; slot: number };

/** DR7 from the model, written from the SDM layout independently of the package's code. */
function modelDr7(model: ReadonlyMap<number, ModelSlot>): number {
  const lengthCode: Record<number, number> = { 1: 0b00, 2: 0b01, 8: 0b10, 4: 0b11 };
  let dr7 = 0x2700;
  for (const [slot, entry] of model) {
    if (!entry.enabled) continue;
    dr7 += 2 ** (2 * slot + 1); // G_slot
    dr7 += entry.access * 2 ** (16 + 4 * slot); // R/W_slot
    dr7 += lengthCode[entry.size]! * 2 ** (18 + 4 * slot); // LEN_slot
  }
  return dr7;
}

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant("set" as const),
    // A small address pool makes duplicates common.
    address: fc.constantFrom(0n, 0x1000n, 0x1004n, 0xffff_ffff_ffff_ffffn),
    access: fc.integer({ min: 0, max: 3 }),
    // 3 is never valid; sizes other than 1 are invalid for execute breakpoints.
    size: fc.constantFrom(1, 2, 4, 8, 3),
    enabled: fc.boolean(),
  }),
  fc.record({
    kind: fc.constantFrom("enable" as const, "disable" as const, "clear" as const),
    slot: fc.integer({ min: -1, max: 4 }),
  }),
);

describe("model test: random command sequences against a Map of the four slots", () => {
  it("keeps DR7, DR0-DR3, results, errors, generation and armed in step with the model", () => {
    fc.assert(
      fc.property(fc.array(commandArbitrary, { maxLength: 40 }), (commands) => {
        const breakpoints = new HardwareBreakpoints();
        const model = new Map<number, ModelSlot>();
        let generation = 0;

        for (const command of commands) {
          let expectedResult: unknown;
          let expectedError: string | undefined;

          if (command.kind === "set") {
            const { address, access, size, enabled } = command;
            if (![1, 2, 4, 8].includes(size) || (access === 0 && size !== 1)) {
              expectedError = "InvalidParameter";
            } else {
              const existing = [...model].find(([, e]) => e.address === address && e.access === access && e.size === size);
              if (existing) {
                const [slot, entry] = existing;
                if (enabled && !entry.enabled) {
                  entry.enabled = true;
                  generation++;
                }
                expectedResult = { slot, alreadyExists: true };
              } else {
                const free = [0, 1, 2, 3].find((slot) => !model.has(slot));
                if (free === undefined) {
                  expectedError = "NoMoreBreakpointSlots";
                } else {
                  model.set(free, { address, access, size, enabled });
                  generation++;
                  expectedResult = { slot: free, alreadyExists: false };
                }
              }
            }
          } else {
            const entry = model.get(command.slot);
            if (command.slot < 0 || command.slot > 3) expectedError = "InvalidHandle";
            else if (!entry) expectedError = "BreakpointNotFound";
            else if (command.kind === "clear") {
              model.delete(command.slot);
              generation++;
            } else {
              const wantEnabled = command.kind === "enable";
              if (entry.enabled === wantEnabled) {
                expectedResult = wantEnabled ? "already-enabled" : "already-disabled";
              } else {
                entry.enabled = wantEnabled;
                generation++;
                expectedResult = "ok";
              }
            }
          }

          const run = (): unknown => {
            switch (command.kind) {
              case "set":
                return breakpoints.set(command.address, command.access as HardwareAccess, command.size as HardwareBreakpointSize, command.enabled);
              case "enable":
                return breakpoints.enable(command.slot);
              case "disable":
                return breakpoints.disable(command.slot);
              case "clear":
                return breakpoints.clear(command.slot);
            }
          };
          if (expectedError) {
            expectDbgfError(thrown(run), expectedError);
          } else {
            expect(run()).toEqual(expectedResult);
          }

          expect(breakpoints.dr7).toBe(modelDr7(model));
          expect([0, 1, 2, 3].map((slot) => breakpoints.address(slot))).toEqual([0, 1, 2, 3].map((slot) => model.get(slot)?.address ?? 0n));
          expect(breakpoints.generation).toBe(generation);
          expect(breakpoints.armed).toBe([...model.values()].some((entry) => entry.enabled));
        }
      }),
      { numRuns: 500 },
    );
  });
});
