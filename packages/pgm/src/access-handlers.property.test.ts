/**
 * Random sequences of register / modify / split / join / temp-off / reset / deregister
 * against a plain model. After every call, failed or not, the consistency checker must
 * report nothing, and the handlers and every page state must match the model. A failed
 * call must change nothing, except modify, which by spec §4.7 destroys the handler when
 * the new range is refused after the old one was found.
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { AccessResult, HandlerKind, HandlerTypeFlags, isPgmError, PageHandlerState as S, PhysicalMemory, type HandlerTypeHandle, type PgmErrorCode } from "./index.js";

const PAGE = 0x1000;
const CAPACITY = 32;
/** RAM 0x0–0x1FFFF and, contiguous but distinct, 0x20000–0x2FFFF; unassigned above. */
const RANGES = [
  [0x0, 0x1ffff],
  [0x20000, 0x2ffff],
] as const;
const PAGES = 0x30;

type TypeName = "W" | "WN" | "A";
const ARM: Record<TypeName, number> = { W: S.Write, WN: S.Write, A: S.All };
const FULL_PAGES: Record<TypeName, boolean> = { W: false, WN: true, A: true };

interface ModelHandler {
  start: number;
  last: number;
  type: TypeName;
  user: number;
  /** Page addresses turned off. */
  off: Set<number>;
}

type Op =
  | { op: "register"; start: number; length: number; type: TypeName; after: number }
  | { op: "deregister"; pick: number; address: number }
  | { op: "modify"; pick: number; address: number; start: number; length: number }
  | { op: "split"; pick: number; address: number; at: number }
  | { op: "join"; pick: number; address: number }
  | { op: "tempOff"; pick: number; address: number; page: number }
  | { op: "reset"; pick: number; address: number };

const offsets = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constantFrom(1, 0x7ff, 0x800, 0xffe, 0xfff) });
const address = fc.tuple(fc.integer({ min: 0, max: PAGES + 1 }), offsets).map(([page, offset]) => page * PAGE + offset);
const length = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }).map((pages) => pages * PAGE) },
  { weight: 3, arbitrary: fc.constantFrom(2, 0x100, 0x800, 0x1800) },
  { weight: 1, arbitrary: fc.constantFrom(1, 0, -0x10) },
);
const type = fc.constantFrom<TypeName>("W", "W", "WN", "A");
/** Most ops act on an existing handler (`pick` % count); pick -1 means "use `address` as is". */
const pick = fc.oneof({ weight: 6, arbitrary: fc.nat() }, { weight: 1, arbitrary: fc.constant(-1) });

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("register" as const), start: address, length, type, after: pick }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("deregister" as const), pick, address }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("modify" as const), pick, address, start: address, length }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("split" as const), pick, address, at: fc.oneof(fc.integer({ min: -1, max: 4 }).map((n) => n * PAGE), fc.integer({ min: -0x10, max: 0x3000 }).map((offset) => offset - (offset % 0x100)), fc.integer({ min: -0x10, max: 0x3000 })) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("join" as const), pick, address }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("tempOff" as const), pick, address, page: fc.integer({ min: -1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reset" as const), pick, address }) },
);

class Refusal extends Error {
  constructor(readonly code: PgmErrorCode) {
    super(code);
  }
}

/** The plain model: a list of handlers, and the rules of spec §4 written out directly. */
class Model {
  handlers: ModelHandler[] = [];
  private nextUser = 0;

  at(start: number): ModelHandler | undefined {
    return this.handlers.find((h) => h.start === start);
  }

  private checkRange(type: TypeName, start: number, last: number): void {
    if (!(start < last) || start < 0) throw new Refusal("ERR_PGM_INVALID_RANGE");
    if (FULL_PAGES[type] && (start % PAGE !== 0 || (last + 1) % PAGE !== 0)) throw new Refusal("ERR_PGM_NOT_PAGE_ALIGNED");
    if (!RANGES.some(([first, final]) => start >= first && last <= final)) throw new Refusal("ERR_PGM_NO_RAM_RANGE");
    if (this.handlers.some((h) => h.start <= last && h.last >= start)) throw new Refusal("ERR_PGM_CONFLICT");
  }

  register(start: number, last: number, type: TypeName): number {
    if (this.handlers.length >= CAPACITY) throw new Refusal("ERR_PGM_OUT_OF_HANDLERS");
    this.checkRange(type, start, last);
    const user = this.nextUser++;
    this.handlers.push({ start, last, type, user, off: new Set() });
    return user;
  }

  deregister(start: number): void {
    const handler = this.at(start);
    if (!handler) throw new Refusal("ERR_PGM_NOT_FOUND");
    this.handlers = this.handlers.filter((h) => h !== handler);
  }

  modify(current: number, start: number, last: number): void {
    const handler = this.at(current);
    if (!handler) throw new Refusal("ERR_PGM_NOT_FOUND");
    this.handlers = this.handlers.filter((h) => h !== handler);
    this.checkRange(handler.type, start, last); // a refusal here has destroyed the handler
    this.handlers.push({ ...handler, start, last, off: new Set() });
  }

  split(start: number, at: number): void {
    if (!(start < at)) throw new Refusal("ERR_PGM_INVALID_SPLIT");
    if (this.handlers.length >= CAPACITY) throw new Refusal("ERR_PGM_OUT_OF_HANDLERS");
    const handler = this.at(start);
    if (!handler) throw new Refusal("ERR_PGM_NOT_FOUND");
    if (at > handler.last || at - start < 2 || handler.last - at + 1 < 2) throw new Refusal("ERR_PGM_INVALID_SPLIT");
    if ((FULL_PAGES[handler.type] || handler.off.size > 0) && at % PAGE !== 0) throw new Refusal("ERR_PGM_INVALID_SPLIT");
    const upper = new Set([...handler.off].filter((page) => page >= at));
    for (const page of upper) handler.off.delete(page);
    this.handlers.push({ start: at, last: handler.last, type: handler.type, user: handler.user, off: upper });
    handler.last = at - 1;
  }

  join(first: number, second: number): void {
    const low = this.at(first);
    const high = this.at(second);
    if (!low || !high) throw new Refusal("ERR_PGM_NOT_FOUND");
    if (low.last + 1 !== high.start) throw new Refusal("ERR_PGM_INVALID_JOIN");
    if (low.type !== high.type) throw new Refusal("ERR_PGM_JOIN_TYPE_MISMATCH");
    if (!RANGES.some(([first, final]) => low.start >= first && high.last <= final)) throw new Refusal("ERR_PGM_INVALID_JOIN");
    low.last = high.last;
    for (const page of high.off) low.off.add(page);
    this.handlers = this.handlers.filter((h) => h !== high);
  }

  tempOff(start: number, pageAddress: number): void {
    const handler = this.at(start);
    if (!handler) throw new Refusal("ERR_PGM_NOT_FOUND");
    if (!(pageAddress >= handler.start && pageAddress <= handler.last)) throw new Refusal("ERR_PGM_PAGE_OUTSIDE_HANDLER");
    if (handler.start % PAGE !== 0 || (handler.last + 1) % PAGE !== 0) throw new Refusal("ERR_PGM_NOT_PAGE_ALIGNED");
    handler.off.add(pageAddress - (pageAddress % PAGE));
  }

  reset(start: number): void {
    const handler = this.at(start);
    if (!handler) throw new Refusal("ERR_PGM_NOT_FOUND");
    handler.off.clear();
  }

  pageState(pageAddress: number): number {
    let state = 0;
    for (const handler of this.handlers) {
      if (handler.start <= pageAddress + PAGE - 1 && handler.last >= pageAddress) {
        state = Math.max(state, handler.off.has(pageAddress) ? S.Disabled : ARM[handler.type]);
      }
    }
    return state;
  }
}

function outcome(action: () => void): PgmErrorCode | "OK" {
  try {
    action();
    return "OK";
  } catch (error) {
    if (error instanceof Refusal) return error.code;
    if (isPgmError(error)) return error.code;
    throw error;
  }
}

function snapshot(memory: PhysicalMemory) {
  const handlers = memory.handlers().map((h) => [h.start, h.last, h.user, h.tmpOffCount, h.description]);
  const pages = Array.from({ length: PAGES }, (_, page) => memory.pageInfo(page * PAGE)!.handlerState);
  return { handlers, pages };
}

it("handler operations agree with a plain model, and the checker finds nothing after any step", () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 10, maxLength: 40 }), (ops) => {
      const memory = new PhysicalMemory({ handlerCapacity: CAPACITY });
      for (const [first, final] of RANGES) memory.addRam(first, final - first + 1, "ram");
      const onAccess = () => AccessResult.Default;
      const types: Record<TypeName, HandlerTypeHandle> = {
        W: memory.registerHandlerType({ kind: HandlerKind.Write, onAccess, description: "W" }),
        WN: memory.registerHandlerType({ kind: HandlerKind.Write, flags: HandlerTypeFlags.NotInEngine, onAccess, description: "WN" }),
        A: memory.registerHandlerType({ kind: HandlerKind.All, onAccess, description: "A" }),
      };
      const typeOf = new Map(Object.entries(types).map(([name, handle]) => [handle, name as TypeName]));
      const model = new Model();
      let nextUser = 0;

      for (const step of ops) {
        const sorted = [...model.handlers].sort((a, b) => a.start - b.start);
        const index = step.op === "register" ? step.after : step.pick;
        const chosen = index < 0 || sorted.length === 0 ? undefined : sorted[index % sorted.length];
        // Register either at a random address or right after an existing handler (so joins find neighbours).
        const start = step.op === "register" ? (chosen ? chosen.last + 1 : step.start) : chosen ? chosen.start : step.address;
        const before = snapshot(memory);
        let expected: string;
        let actual: string;
        switch (step.op) {
          case "register": {
            const last = start + step.length - 1;
            expected = outcome(() => model.register(start, last, step.type));
            actual = outcome(() => memory.register(start, last, types[step.type], nextUser));
            if (actual === "OK") nextUser++;
            break;
          }
          case "deregister":
            expected = outcome(() => model.deregister(start));
            actual = outcome(() => memory.deregister(start));
            break;
          case "modify": {
            const last = step.start + step.length - 1;
            expected = outcome(() => model.modify(start, step.start, last));
            actual = outcome(() => memory.modify(start, step.start, last));
            break;
          }
          case "split":
            expected = outcome(() => model.split(start, start + step.at));
            actual = outcome(() => memory.split(start, start + step.at));
            break;
          case "join": {
            const next = chosen ? sorted[sorted.indexOf(chosen) + 1] : undefined;
            const second = next ? next.start : step.address + PAGE;
            expected = outcome(() => model.join(start, second));
            actual = outcome(() => memory.join(start, second));
            break;
          }
          case "tempOff": {
            const pageAddress = start + step.page * PAGE;
            expected = outcome(() => model.tempOff(start, pageAddress));
            actual = outcome(() => memory.pageTempOff(start, pageAddress));
            break;
          }
          case "reset":
            expected = outcome(() => model.reset(start));
            actual = outcome(() => memory.reset(start));
            break;
        }
        expect(actual, `${JSON.stringify(step)} at ${start.toString(16)}`).toBe(expected);
        expect(memory.checkHandlersAndPagesInSync().findings).toEqual([]);
        if (actual !== "OK" && !(step.op === "modify" && actual !== "ERR_PGM_NOT_FOUND")) expect(snapshot(memory)).toEqual(before);

        const handlers = memory.handlers();
        expect(handlers.map((h) => [h.start, h.last, typeOf.get(h.type), h.tmpOffCount])).toEqual(
          [...model.handlers].sort((a, b) => a.start - b.start).map((h) => [h.start, h.last, h.type, h.off.size]),
        );
        for (let page = 0; page < PAGES; page++) {
          expect(memory.pageInfo(page * PAGE)!.handlerState, `page ${(page * PAGE).toString(16)} after ${JSON.stringify(step)}`).toBe(model.pageState(page * PAGE));
        }
      }
    }),
    { numRuns: 120 },
  );
});
