/**
 * Model test: random set / enable / disable / clear / hit sequences against a plain Map,
 * with int3 addresses drawn from a pool where many share their low 16 bits (so L2 trees are
 * built up and torn down at every depth the pool allows) plus port-I/O breakpoints sharing
 * the handle space. After every step the observable state is compared with the model and
 * the tables' structural invariants are checked (debug.verify and the §6.7 introspection).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BreakpointFlags, type Debugger, IoAccess, NIL, U64_MAX } from "@vmmkit/dbgf";
import { expectDbgfError, FakeHost, setup } from "./fake-host.js";

const LOW_SLOTS = [0x1234, 0x0000, 0xffff];
const UPPERS = [0n, 1n, 2n, 3n, 0x10n, 0x7fffn, 0x8000n, 0xffffn, 0x1_0000n, 0xdead_beefn, 0x7fff_ffff_ffffn, 0xffff_ffff_fffen, 0xffff_ffff_ffffn, 5n, 6n, 7n, 8n, 9n, 0x100n, 0x101n];
const ADDRESSES = UPPERS.flatMap((upper) => LOW_SLOTS.map((low) => (upper << 16n) | BigInt(low)));
const PORT_RANGES: [number, number][] = [
  [0x60, 1],
  [0x60, 4],
  [0x62, 2],
  [0x3f8, 8],
  [0xfff0, 16],
  [0xffff, 1],
];

interface Int3Model {
  handle: number;
  enabled: boolean;
  hits: bigint;
  trigger: bigint;
  disable: bigint;
  owned: boolean;
}

interface PortModel {
  handle: number;
  port: number;
  count: number;
  enabled: boolean;
  hits: bigint;
}

type Command =
  | { kind: "set"; address: number; enabled: boolean; owned: boolean; trigger: bigint; disable: bigint }
  | { kind: "enable" | "disable" | "clear" | "hit"; address: number }
  | { kind: "set-port"; range: number; enabled: boolean }
  | { kind: "port-enable" | "port-disable" | "port-clear"; range: number }
  | { kind: "port-hit"; port: number };

// Half the picks come from a few hot addresses, so repeated hits reach the trigger windows.
const addressIndex = fc.oneof(fc.nat({ max: 5 }), fc.nat({ max: ADDRESSES.length - 1 }));
const rangeIndex = fc.nat({ max: PORT_RANGES.length - 1 });
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("set" as const),
      address: addressIndex,
      enabled: fc.boolean(),
      owned: fc.boolean(),
      trigger: fc.constantFrom(0n, 0n, 1n, 2n),
      disable: fc.constantFrom(U64_MAX, U64_MAX, 2n, 3n),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom("enable" as const, "disable" as const), address: addressIndex }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("clear" as const), address: addressIndex }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("hit" as const), address: addressIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("set-port" as const), range: rangeIndex, enabled: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("port-enable" as const, "port-disable" as const, "port-clear" as const), range: rangeIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("port-hit" as const), port: fc.constantFrom(0x60, 0x61, 0x63, 0x3ff, 0xffff, 0x70) }) },
);

/** Every linear page gets its own physical page, so distinct addresses patch distinct bytes. */
function modelHost(seed: number): { host: FakeHost; physicalOf: (address: bigint) => number } {
  const host = new FakeHost(1, "intel", ADDRESSES.length * 0x1000, 0);
  const pages = new Map<bigint, number>();
  for (const address of ADDRESSES) if (!pages.has(address >> 12n)) pages.set(address >> 12n, pages.size);
  for (const [linearPage, physicalPage] of pages) host.pages.set(linearPage, physicalPage);
  let state = seed | 1;
  for (let i = 0; i < host.memory.length; i++) {
    state = Math.imul(state ^ (state >>> 15), 0x2c1b_3c6d) + 0x9e37;
    host.memory[i] = (state >>> 24) & 0xff;
  }
  const physicalOf = (address: bigint) => pages.get(address >> 12n)! * 0x1000 + Number(address & 0xfffn);
  return { host, physicalOf };
}

function lowestFree(used: ReadonlySet<number>): number {
  let handle = 0;
  while (used.has(handle)) handle++;
  return handle;
}

/** Compares everything observable with the model in one assertion (vitest's expect is too slow to call per address). */
function checkAgainstModel(dbg: Debugger, host: FakeHost, int3s: Map<bigint, Int3Model>, ports: Map<number, PortModel>, pristine: Uint8Array, physicalOf: (address: bigint) => number): void {
  dbg.debug.verify();
  const actual: unknown[] = [];
  const expected: unknown[] = [];
  for (const address of ADDRESSES) {
    const model = int3s.get(address);
    const physical = physicalOf(address);
    actual.push(dbg.lookupInt3(address), host.memory[physical]);
    expected.push(model?.handle ?? NIL, model?.enabled ? 0xcc : pristine[physical]);
    if (model) {
      const info = dbg.get(model.handle);
      actual.push(info.type, info.enabled, info.hits, info.type === "int3" ? info.address : undefined);
      expected.push("int3", model.enabled, model.hits, address);
    }
  }
  let nodes = 0;
  for (const low of LOW_SLOTS) {
    const here = [...int3s].filter(([address]) => Number(address & 0xffffn) === low);
    const entry = dbg.debug.l1Entry(low);
    actual.push(here.length === 2 || here.length > 2 ? entry >>> 28 : entry);
    expected.push(here.length === 0 ? 0 : here.length === 1 ? 0x1000_0000 | here[0]![1].handle : 2);
    actual.push(dbg.debug.treeKeys(low));
    expected.push(here.length > 1 ? here.map(([address]) => address >> 16n).sort((a, b) => (a < b ? -1 : 1)) : []);
    if (here.length > 1) nodes += here.length;
  }
  actual.push(dbg.debug.l2NodesInUse(), dbg.isInt3Armed());
  expected.push(nodes, [...int3s.values()].some((model) => model.enabled));
  for (const [, model] of ports) {
    const info = dbg.get(model.handle);
    actual.push(info.type, info.enabled, info.hits);
    expected.push("port-io", model.enabled, model.hits);
  }
  actual.push(dbg.isPortIoArmed(), dbg.breakpointCount);
  expected.push([...ports.values()].some((model) => model.enabled), int3s.size + ports.size);
  expect(actual).toEqual(expected);
}

describe("model test (fast-check): the breakpoint manager against a Map", () => {
  it("keeps results, handles, hits, guest memory and the L1/L2 tables in step with the model", () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 150 }), fc.integer(), (commands, seed) => {
        const { host, physicalOf } = modelHost(seed);
        const pristine = host.memory.slice();
        // Small chunks keep debug.verify (which walks every record) cheap enough to run after every step.
        const { dbg } = setup({ breakpointChunkSize: 64, breakpointChunks: 2, ownerCapacity: 4 }, host);
        let ownerCalls = 0;
        const owner = dbg.createOwner({ hit: () => (ownerCalls++, "resume") });
        let expectedOwnerCalls = 0;
        let expectedExecutions = 0;
        const int3s = new Map<bigint, Int3Model>();
        const ports = new Map<number, PortModel>();
        const used = new Set<number>();

        for (const step of commands) {
          switch (step.kind) {
            case "set": {
              const address = ADDRESSES[step.address]!;
              const flags = step.enabled ? BreakpointFlags.Default : BreakpointFlags.HitBefore;
              const options = { flags, hitTrigger: step.trigger, hitDisable: step.disable, ...(step.owned ? { owner } : {}) };
              const existing = int3s.get(address);
              if (existing) {
                expect(dbg.setInt3(0, address, options)).toEqual({ handle: existing.handle, status: "already-exists" });
                if (step.enabled) existing.enabled = true;
              } else {
                const handle = lowestFree(used);
                expect(dbg.setInt3(0, address, options)).toEqual({ handle, status: "created" });
                used.add(handle);
                int3s.set(address, { handle, enabled: step.enabled, hits: 0n, trigger: step.trigger, disable: step.disable, owned: step.owned });
              }
              break;
            }
            case "enable":
            case "disable":
            case "clear": {
              const model = int3s.get(ADDRESSES[step.address]!);
              if (!model) {
                const handle = lowestFree(used); // surely not allocated
                const kind = step.kind;
                expectDbgfError(() => dbg[kind](handle), "BreakpointNotFound");
                break;
              }
              if (step.kind === "clear") {
                dbg.clear(model.handle);
                int3s.delete(ADDRESSES[step.address]!);
                used.delete(model.handle);
              } else {
                const want = step.kind === "enable";
                expect(dbg[step.kind](model.handle)).toBe(model.enabled === want ? `already-${step.kind}d` : "ok");
                model.enabled = want;
              }
              break;
            }
            case "hit": {
              const address = ADDRESSES[step.address]!;
              const model = int3s.get(address);
              const result = dbg.onInt3Trap(0, address);
              if (!model || !model.enabled) {
                expect(result).toBe("not-ours");
                break;
              }
              model.hits = model.hits === U64_MAX ? U64_MAX : model.hits + 1n;
              const trigger = model.trigger === 0n ? 1n : model.trigger;
              const disable = model.disable === 0n ? 1n : model.disable;
              const triggered = model.hits >= trigger && (model.disable === U64_MAX || model.hits <= disable);
              if (!triggered) {
                expectedExecutions++;
                expect(result).toBe("resume");
              } else if (model.owned) {
                expectedOwnerCalls++;
                expectedExecutions++;
                expect(result).toBe("resume");
              } else {
                expect(result).toBe("halt");
                expect(dbg.debug.activeBreakpoint(0)).toBe(model.handle);
              }
              if (model.disable !== U64_MAX && model.hits >= disable) model.enabled = false;
              break;
            }
            case "set-port": {
              const [port, count] = PORT_RANGES[step.range]!;
              const flags = step.enabled ? BreakpointFlags.Default : BreakpointFlags.HitBefore;
              const identical = ports.get(step.range);
              const overlapping = [...ports.values()].find((model) => model.port <= port + count - 1 && port <= model.port + model.count - 1);
              if (identical) {
                expect(dbg.setPortIo(port, count, IoAccess.ReadByte, { flags })).toEqual({ handle: identical.handle, status: "already-exists" });
                if (step.enabled) identical.enabled = true;
              } else if (overlapping) {
                expectDbgfError(() => dbg.setPortIo(port, count, IoAccess.ReadByte, { flags }), "PortRangeBusy");
              } else {
                const handle = lowestFree(used);
                expect(dbg.setPortIo(port, count, IoAccess.ReadByte, { flags })).toEqual({ handle, status: "created" });
                used.add(handle);
                ports.set(step.range, { handle, port, count, enabled: step.enabled, hits: 0n });
              }
              break;
            }
            case "port-enable":
            case "port-disable":
            case "port-clear": {
              const model = ports.get(step.range);
              if (!model) break;
              if (step.kind === "port-clear") {
                dbg.clear(model.handle);
                ports.delete(step.range);
                used.delete(model.handle);
              } else {
                const want = step.kind === "port-enable";
                expect(want ? dbg.enable(model.handle) : dbg.disable(model.handle)).toBe(model.enabled === want ? (want ? "already-enabled" : "already-disabled") : "ok");
                model.enabled = want;
              }
              break;
            }
            case "port-hit": {
              const model = [...ports.values()].find((candidate) => candidate.port <= step.port && step.port <= candidate.port + candidate.count - 1);
              const result = dbg.checkPortIo(0, step.port, IoAccess.ReadByte, 0, true);
              if (model?.enabled) {
                model.hits++;
                expect(result).toBe("halt");
              } else {
                expect(result).toBe("not-ours");
              }
              break;
            }
          }
          checkAgainstModel(dbg, host, int3s, ports, pristine, physicalOf);
        }
        expect(ownerCalls).toBe(expectedOwnerCalls);
        expect(host.executed).toHaveLength(expectedExecutions);
        // Clearing everything restores guest memory byte for byte and empties the tables.
        for (const model of [...int3s.values(), ...ports.values()]) dbg.clear(model.handle);
        expect(Buffer.compare(host.memory, pristine)).toBe(0); // (toEqual on 240 KiB is very slow)
        expect(dbg.debug.l2NodesInUse()).toBe(0);
        for (const low of LOW_SLOTS) expect(dbg.debug.l1Entry(low)).toBe(0);
        dbg.destroyOwner(owner);
        dbg.debug.verify();
      }),
      { numRuns: 200 },
    );
  });

  it("builds and tears down deep trees: hundreds of int3s in one slot in random order", () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(Array.from({ length: 400 }, (_, i) => BigInt(i * 7919 + 1)), { minLength: 200 }), fc.infiniteStream(fc.nat()), (uppers, picks) => {
        const host = new FakeHost(1, "intel", uppers.length * 0x1000, 0);
        const pageOf = new Map(uppers.map((upper, i) => [upper, i]));
        host.translate = (_cpu, linear) => pageOf.get(linear >> 16n)! * 0x1000;
        const { dbg } = setup({}, host);
        const live = new Map<bigint, number>();
        const pick = picks[Symbol.iterator]();
        for (const upper of uppers) {
          const address = (upper << 16n) | 0xabcdn;
          live.set(address, dbg.setInt3(0, address, { flags: 0 }).handle);
          if (pick.next().value % 5 === 0) {
            const victims = [...live.keys()];
            const victim = victims[pick.next().value % victims.length]!;
            dbg.clear(live.get(victim)!);
            live.delete(victim);
          }
        }
        expect(dbg.debug.l2NodesInUse()).toBe(live.size > 1 ? live.size : 0);
        dbg.debug.verify();
        for (const [address, handle] of live) expect(dbg.lookupInt3(address)).toBe(handle);
        const order = [...live.keys()];
        while (order.length > 0) {
          const victim = order.splice(pick.next().value % order.length, 1)[0]!;
          dbg.clear(live.get(victim)!);
          live.delete(victim);
          expect(dbg.lookupInt3(victim)).toBe(NIL);
          if (order.length % 16 === 0) {
            dbg.debug.verify();
            for (const [address, handle] of live) expect(dbg.lookupInt3(address)).toBe(handle);
          }
        }
        expect(dbg.debug.l1Entry(0xabcd)).toBe(0);
      }),
      { numRuns: 15 },
    );
  });
});
