/**
 * Fakes and fixtures for pgm's tests. Never exported from the package.
 */
import { expect } from "vitest";
import {
  AccessResult,
  HandlerKind,
  HandlerTypeFlags,
  isPgmError,
  PhysicalMemory,
  type AccessCallback,
  type AccessOrigin,
  type AccessType,
  type ExecutionEngineHooks,
  type HandlerTypeHandle,
  type PagingHooks,
  type PgmErrorCode,
  type PhysicalRange,
} from "./index.js";

/** Runs `action`, which must throw a PgmError with `code`, and returns that error. */
export function pgmError(code: PgmErrorCode, action: () => unknown): Error {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(isPgmError(caught), `expected a PgmError ${code}, got ${String(caught)}`).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
  return caught as Error;
}

export function expectConsistent(memory: PhysicalMemory): void {
  const report = memory.checkHandlersAndPagesInSync();
  expect(report.findings).toEqual([]);
}

/**
 * Wraps `memory` so the consistency checker runs after every method call, including calls
 * that throw (spec §9: the checker reports 0 after every step).
 */
export function checkedAfterEveryCall(memory: PhysicalMemory): PhysicalMemory {
  return new Proxy(memory, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== "function" || key === "checkHandlersAndPagesInSync") return value;
      return (...args: unknown[]) => {
        try {
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        } finally {
          expectConsistent(target);
        }
      };
    },
  });
}

export interface RecordedCall {
  readonly type: string;
  readonly address: number;
  readonly size: number;
  readonly accessType: AccessType;
  readonly origin: AccessOrigin;
  readonly user: unknown;
  /** Write: the bytes written. Read: empty. */
  readonly data: readonly number[];
}

/** Records engine notifications as short strings. */
export function recordingEngine(simplifiedMemoryMode = false) {
  const events: string[] = [];
  const engine: ExecutionEngineHooks = {
    simplifiedMemoryMode,
    handlerRegistered: (kind, start, size) => void events.push(`registered ${kind} ${hexOf(start)} ${hexOf(size)}`),
    handlerDeregistered: (kind, start, size, backing) => {
      events.push(`deregistered ${kind} ${hexOf(start)} ${hexOf(size)}${backing ? ` bytes=${hexOf(backing.length)}` : ""}`);
    },
    handlerModified: (kind, oldStart, newStart, size, restoreAsRam) =>
      void events.push(`modified ${kind} ${hexOf(oldStart)} ${hexOf(newStart)} ${hexOf(size)} ${restoreAsRam}`),
    pageProtectionChanged: (pageAddress, _backing, protection, pageType) => void events.push(`protection ${hexOf(pageAddress)} ${protection} type=${pageType}`),
    pageBackingChanged: (pageAddress, oldBacking, newBacking, protection, pageType) =>
      void events.push(`backing ${hexOf(pageAddress)} ${oldBacking ? "page" : "zero"}->${newBacking ? "page" : "zero"} ${protection} type=${pageType}`),
  };
  return { engine, events };
}

export function recordingPaging() {
  const events: string[] = [];
  const paging: PagingHooks = {
    pageStateRaised: (pageAddress) => void events.push(`raised ${hexOf(pageAddress)}`),
    flushAllTlbs: () => void events.push("flush all"),
    invalidatePageMapping: (pageAddress) => void events.push(`invalidate ${hexOf(pageAddress)}`),
    invalidateAllPhysicalTlbs: () => void events.push("invalidate all"),
  };
  return { paging, events };
}

export const hexOf = (value: number) => "0x" + value.toString(16);

export const MMIO2_OWNER = { name: "the R device" };

/**
 * The fixture of spec §9: RAM A 0x0–0x9FFFF, gap, RAM B 0x100000–0xFFFFFF, contiguous RAM
 * C1 0x1000000–0x10FFFFF and C2 0x1100000–0x11FFFFF, MMIO M 0xE0000000–0xE000FFFF,
 * dirty-tracked MMIO2 R (8 pages) at 0xF0000000, top RAM T 0xF_FFFF_FFF0_0000–2^52−1;
 * types W, WN (write + not-in-engine), A (all) and MM (MMIO) whose callbacks record every
 * call and return `results[type]` (Default unless set); a Handled read fills the bytes
 * with 0xA0, 0xA1, …
 */
export function specFixture(options: { handlerCapacity?: number } = {}) {
  const raw = new PhysicalMemory({ arenaSize: 0x1200000, handlerCapacity: options.handlerCapacity ?? 256 });
  const memory = checkedAfterEveryCall(raw);
  memory.addRam(0x0, 0xa0000, "A");
  memory.addRam(0x100000, 0xf00000, "B");
  memory.addRam(0x1000000, 0x100000, "C1");
  memory.addRam(0x1100000, 0x100000, "C2");
  const M = memory.addMmio(0xe0000000, 0x10000, null, "M");
  const R: PhysicalRange = memory.addMmio2(0xf0000000, 8 * 4096, MMIO2_OWNER, "R", { dirtyTracking: true });
  const T = memory.addRam(2 ** 52 - 0x100000, 0x100000, "T");
  const calls: RecordedCall[] = [];
  const results: Record<string, AccessResult> = {};
  const failures: Record<string, Error | undefined> = {};
  const recorder =
    (type: string): AccessCallback =>
    (address, buffer, offset, size, accessType, origin, user) => {
      // Spec §6.6: every structure is consistent before a callback runs.
      expectConsistent(raw);
      calls.push({ type, address, size, accessType, origin, user, data: accessType === 2 ? [...buffer.subarray(offset, offset + size)] : [] });
      const failure = failures[type];
      if (failure) throw failure;
      const result = results[type] ?? AccessResult.Default;
      if (accessType === 1 && result === AccessResult.Handled) for (let i = 0; i < size; i++) buffer[offset + i] = 0xa0 + i;
      return result;
    };
  const types = {
    W: memory.registerHandlerType({ kind: HandlerKind.Write, onAccess: recorder("W"), description: "W type" }),
    WN: memory.registerHandlerType({ kind: HandlerKind.Write, flags: HandlerTypeFlags.NotInEngine, onAccess: recorder("WN"), description: "WN type" }),
    A: memory.registerHandlerType({ kind: HandlerKind.All, onAccess: recorder("A"), description: "A type" }),
    MM: memory.registerHandlerType({ kind: HandlerKind.Mmio, onAccess: recorder("MM"), description: "MM type" }),
  } satisfies Record<string, HandlerTypeHandle>;
  const state = (address: number) => memory.pageInfo(address)!.handlerState;
  return { memory, raw, M, R, T, types, calls, results, failures, state };
}
