/**
 * The acceptance criteria of spec/pgm.md §9, numbered as there. The fixture runs the
 * consistency checker after every call on the memory, failed calls included.
 */
import { describe, expect, it } from "vitest";
import {
  AccessOrigin,
  AccessResult,
  AccessType,
  HandlerKind,
  NIL_HANDLER_TYPE,
  PageHandlerState as S,
  PageProtection,
  PageType,
  PhysicalMemory,
  type HandlerId,
  type HandlerTypeHandle,
} from "./index.js";
import { HandlerTable, maxArmStateOnPage } from "./handler-table.js";
import { corruptPageForTesting } from "./physical-memory.js";
import { checkedAfterEveryCall, hexOf, MMIO2_OWNER, pgmError, recordingEngine, recordingPaging, specFixture } from "./test-utils.js";

const TOP = 2 ** 52;

describe("registration and ranges", () => {
  it("1: a sub-range write handler arms exactly its page; isRegistered covers every byte of it", () => {
    const { memory, types, state } = specFixture();
    expect(memory.register(0x1000, 0x1fff, types.W, "u")).toBe("OK");
    expect([state(0x0), state(0x1000), state(0x2000)]).toEqual([S.None, S.Write, S.None]);
    expect([0x1000, 0x1abc, 0x1fff].map((a) => memory.isRegistered(a))).toEqual([true, true, true]);
    expect([0x0fff, 0x2000].map((a) => memory.isRegistered(a))).toEqual([false, false]);
  });

  it("2: an all-access handler over two pages arms both to ALL", () => {
    const { memory, types, state } = specFixture();
    memory.register(0x3000, 0x4fff, types.A, "u");
    expect([state(0x3000), state(0x4000)]).toEqual([S.All, S.All]);
    expect(memory.handlerAt(0x3000)!.pageCount).toBe(2);
  });

  it("3: an all-access handler must cover whole pages", () => {
    const { memory, types, state } = specFixture();
    const error = pgmError("ERR_PGM_NOT_PAGE_ALIGNED", () => memory.register(0x3001, 0x4fff, types.A, "u"));
    expect(error.message).toContain("0x3001-0x4fff");
    pgmError("ERR_PGM_NOT_PAGE_ALIGNED", () => memory.register(0x3000, 0x4ffe, types.A, "u"));
    expect([state(0x3000), state(0x4000)]).toEqual([S.None, S.None]);
    expect(memory.handlers()).toHaveLength(1); // only R's own dirty-tracking handler
  });

  it("4: MMIO handlers need whole pages", () => {
    const { memory, types, state } = specFixture();
    pgmError("ERR_PGM_NOT_PAGE_ALIGNED", () => memory.register(0xe0000010, 0xe000001f, types.MM, "u"));
    expect(memory.register(0xe0000000, 0xe0000fff, types.MM, "u")).toBe("OK");
    expect(state(0xe0000000)).toBe(S.All);
  });

  it("5: a not-in-engine write type needs whole pages, a plain write type does not", () => {
    const { memory, types, state } = specFixture();
    pgmError("ERR_PGM_NOT_PAGE_ALIGNED", () => memory.register(0x5100, 0x51ff, types.WN, "u"));
    expect(memory.register(0x5100, 0x51ff, types.W, "u")).toBe("OK");
    expect(state(0x5000)).toBe(S.Write);
  });

  it("6: start must be below last", () => {
    const { memory, types } = specFixture();
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.register(0x6000, 0x6000, types.W, "u"));
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.register(0x6001, 0x6000, types.W, "u"));
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.register(0x6000 + 0.5, 0x6fff, types.W, "u"));
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.register(Number.NaN, 0x6fff, types.W, "u"));
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.register(0x100000, 0x100000 + 2 ** 32, types.W, "u"));
  });

  it.each([
    ["7: in the gap", 0xa0000, 0xa0fff],
    ["8: crossing A's end", 0x9f000, 0xa0fff],
    ["9: spanning the contiguous C1 and C2", 0x10ff000, 0x1100fff],
  ])("%s is refused with ERR_PGM_NO_RAM_RANGE", (_case, start, last) => {
    const { memory, types, state } = specFixture();
    const error = pgmError("ERR_PGM_NO_RAM_RANGE", () => memory.register(start, last, types.W, "u"));
    expect(error.message).toContain(hexOf(start));
    if (start < 0xa0000) expect(state(start)).toBe(S.None);
  });

  it.each([
    ["identical", 0x10000, 0x10fff],
    ["inside", 0x10100, 0x101ff],
    ["overlapping by one byte at the start", 0xf000, 0x10000],
    ["overlapping by one byte at the end", 0x10fff, 0x11fff],
  ])("10: a second handler %s conflicts, leaving everything as it was", (_case, start, last) => {
    const { memory, types, state } = specFixture();
    memory.register(0x10000, 0x10fff, types.W, "first");
    const handler = memory.createHandler(types.W, "second");
    const error = pgmError("ERR_PGM_CONFLICT", () => memory.registerHandler(handler, start, last));
    expect(error.message).toContain(`${hexOf(start)}-${hexOf(last)}`);
    expect(error.message).toContain('"W type" 0x10000-0x10fff');
    expect(state(0x10000)).toBe(S.Write);
    expect([state(0xf000), state(0x11000)]).toEqual([S.None, S.None]);
    expect(memory.handlerAt(0x10000)!.user).toBe("first");
    expect(memory.handlerInfo(handler).registered).toBe(false);
    expect(memory.registerHandler(handler, 0x30000, 0x30fff)).toBe("OK");
    expect(state(0x30000)).toBe(S.Write);
  });

  it("11: adjacent full-page handlers are independent", () => {
    const { memory, types, state } = specFixture();
    expect(memory.register(0x7000, 0x7fff, types.W, "u")).toBe("OK");
    expect(memory.register(0x8000, 0x8fff, types.W, "u")).toBe("OK");
    memory.deregister(0x7000);
    expect([state(0x7000), state(0x8000)]).toEqual([S.None, S.Write]);
  });

  it("12: MMIO handlers go over MMIO pages only", () => {
    const { memory, types, state } = specFixture();
    const error = pgmError("ERR_PGM_WRONG_PAGE_TYPE", () => memory.register(0x100000, 0x100fff, types.MM, "u"));
    expect(error.message).toContain("0x100000");
    expect(state(0x100000)).toBe(S.None);
  });

  it("13: the pool holds handlerCapacity records; a freed one is reusable", () => {
    const memory = checkedAfterEveryCall(new PhysicalMemory({ handlerCapacity: 64 }));
    memory.addRam(0, 0x100000, "ram");
    const type = memory.registerHandlerType({ kind: HandlerKind.Write, onAccess: () => AccessResult.Default, description: "w" });
    for (let i = 0; i < 64; i++) expect(memory.register(i * 0x1000, i * 0x1000 + 0xfff, type, i)).toBe("OK");
    pgmError("ERR_PGM_OUT_OF_HANDLERS", () => memory.register(0x80000, 0x80fff, type, 64));
    expect(memory.pageInfo(0x80000)!.handlerState).toBe(S.None);
    memory.deregister(0x5000);
    expect(memory.register(0x80000, 0x80fff, type, 64)).toBe("OK");
    pgmError("ERR_PGM_OUT_OF_HANDLERS", () => memory.createHandler(type, 0));
    expect(memory.freeHandlerRecords).toBe(0);
  });

  it("13: the capacity is checked", () => {
    for (const handlerCapacity of [31, 65537, 100.5]) pgmError("ERR_PGM_INVALID_ARGUMENT", () => new PhysicalMemory({ handlerCapacity }));
    expect(new PhysicalMemory().freeHandlerRecords).toBe(6144);
  });

  it("14: a handler's description defaults to its type's", () => {
    const { memory, types } = specFixture();
    memory.register(0x1000, 0x1fff, types.W, "u");
    memory.register(0x2000, 0x2fff, types.W, "u", "mine");
    expect(memory.handlerAt(0x1000)!.description).toBe("W type");
    expect(memory.handlerAt(0x2000)!.description).toBe("mine");
  });

  it("15: register twice, destroy while registered, destroy null", () => {
    const { memory, types } = specFixture();
    const handler = memory.createHandler(types.W, "u");
    memory.registerHandler(handler, 0x1000, 0x1fff);
    pgmError("ERR_PGM_ALREADY_REGISTERED", () => memory.registerHandler(handler, 0x3000, 0x3fff));
    pgmError("ERR_PGM_STILL_REGISTERED", () => memory.destroyHandler(handler));
    expect(memory.destroyHandler(null)).toBe("OK");
    expect(memory.destroyHandler(undefined)).toBe("OK");
    memory.deregisterHandler(handler);
    expect(memory.destroyHandler(handler)).toBe("OK");
    // A destroyed handler's id is stale from then on.
    pgmError("ERR_PGM_NOT_FOUND", () => memory.registerHandler(handler, 0x1000, 0x1fff));
    pgmError("ERR_PGM_NOT_FOUND", () => memory.destroyHandler(handler));
    pgmError("ERR_PGM_NOT_FOUND", () => memory.deregisterHandler(12345 as HandlerId));
  });

  it("16: forged, zero and foreign type handles are refused", () => {
    const { memory, types } = specFixture();
    const other = new PhysicalMemory();
    const foreign = other.registerHandlerType({ kind: HandlerKind.Write, onAccess: () => AccessResult.Default, description: "x" });
    for (const forged of [NIL_HANDLER_TYPE, (types.W + 1000) as HandlerTypeHandle, (types.MM + 1) as HandlerTypeHandle, foreign, -1 as HandlerTypeHandle]) {
      pgmError("ERR_PGM_INVALID_TYPE_HANDLE", () => memory.createHandler(forged, "u"));
    }
    expect(memory.freeHandlerRecords).toBe(255);
  });
});

describe("types", () => {
  const onAccess = () => AccessResult.Default;

  it("17: registerType checks in the reference's order", () => {
    const memory = new PhysicalMemory();
    pgmError("ERR_PGM_INVALID_KIND", () => memory.registerHandlerType({ kind: 7 as HandlerKind, onAccess, description: "d" }));
    pgmError("ERR_PGM_INVALID_FLAGS", () => memory.registerHandlerType({ kind: HandlerKind.Write, flags: 0x8, onAccess, description: "d" }));
    pgmError("ERR_PGM_INVALID_CALLBACK", () =>
      memory.registerHandlerType({ kind: HandlerKind.Write, onAccess: undefined as unknown as typeof onAccess, description: "d" }),
    );
    pgmError("ERR_PGM_INVALID_CALLBACK", () => memory.registerHandlerType({ kind: HandlerKind.Write, onAccess, description: "" }));
    // Missing callback and invalid kind: the callback is checked first.
    pgmError("ERR_PGM_INVALID_CALLBACK", () =>
      memory.registerHandlerType({ kind: 7 as HandlerKind, onAccess: undefined as unknown as typeof onAccess, description: "d" }),
    );
    for (let i = 0; i < 32; i++) memory.registerHandlerType({ kind: HandlerKind.All, onAccess, description: `t${i}` });
    pgmError("ERR_PGM_TYPE_TABLE_FULL", () => memory.registerHandlerType({ kind: HandlerKind.All, onAccess, description: "33rd" }));

    const late = new PhysicalMemory();
    late.finishCreation();
    pgmError("ERR_PGM_WRONG_VM_STATE", () => late.registerHandlerType({ kind: HandlerKind.All, onAccess, description: "late" }));
  });

  it("17: internal types (device MMIO, dirty tracking) do not use the 32 slots, and their handles are not accepted", () => {
    const memory = new PhysicalMemory();
    memory.addMmio(0x1000, 0x1000, { read: () => 0, write: () => {} }, "device");
    memory.addMmio2(0x2000, 0x1000, "owner", "region", { dirtyTracking: true });
    for (let i = 0; i < 32; i++) memory.registerHandlerType({ kind: HandlerKind.All, onAccess, description: `t${i}` });
    pgmError("ERR_PGM_INVALID_TYPE_HANDLE", () => memory.createHandler(memory.handlerAt(0x1000)!.type, "u"));
    pgmError("ERR_PGM_INVALID_TYPE_HANDLE", () => memory.createHandler(memory.handlerAt(0x2000)!.type, "u"));
  });
});

describe("deregistration and sub-page sharing", () => {
  it("18: deregister needs the exact start", () => {
    const { memory, types, state } = specFixture();
    pgmError("ERR_PGM_NOT_FOUND", () => memory.deregister(0x9000));
    memory.register(0x1000, 0x2fff, types.W, "u");
    const error = pgmError("ERR_PGM_NOT_FOUND", () => memory.deregister(0x1800));
    expect(error.message).toContain("pass its start");
    expect(memory.isRegistered(0x1800)).toBe(true);
    expect(state(0x2000)).toBe(S.Write);
  });

  it("19: two sub-page handlers sharing a page keep it WRITE until both are gone", () => {
    const { memory, types, state } = specFixture();
    memory.register(0x20000, 0x207ff, types.W, "W1");
    memory.register(0x20800, 0x20fff, types.W, "W2");
    expect(state(0x20000)).toBe(S.Write);
    memory.deregister(0x20000);
    expect(state(0x20000)).toBe(S.Write);
    memory.deregister(0x20800);
    expect(state(0x20000)).toBe(S.None);
  });

  it("20: the engine hears of exactly the whole pages a handler frees", () => {
    const { memory, types, state } = specFixture();
    memory.register(0x21800, 0x227ff, types.W, "W3");
    memory.register(0x21000, 0x217ff, types.W, "W4");
    const { engine, events } = recordingEngine();
    memory.attachEngine(engine);
    memory.deregister(0x21800);
    expect([state(0x21000), state(0x22000)]).toEqual([S.Write, S.None]);
    expect(events.filter((e) => e.startsWith("deregistered"))).toEqual([`deregistered ${HandlerKind.Write} 0x22000 0x1000 bytes=0x1000`]);
    expect(events.filter((e) => e.startsWith("protection"))).toEqual([`protection 0x22000 ${PageProtection.Read | PageProtection.Write | PageProtection.Execute} type=${PageType.Ram}`]);
  });

  it("21: deregistering a handler that frees no whole page sends no deregistered event", () => {
    const { memory, types, state } = specFixture();
    memory.register(0x23100, 0x231ff, types.W, "a");
    memory.register(0x23400, 0x234ff, types.W, "b");
    const { engine, events } = recordingEngine();
    memory.attachEngine(engine);
    memory.deregister(0x23100);
    expect(state(0x23000)).toBe(S.Write);
    expect(events).toEqual([]);
  });

  it("22: edge recalculation takes the maximum arm state of the handlers on a page", () => {
    // Unit level: a WRITE and an ALL handler on one page cannot arise through the API
    // (ALL handlers cover whole pages), so build the lookup directly.
    const table = new HandlerTable(32);
    const armState = [S.Write, S.All];
    for (const [start, last, type] of [
      [0x1000, 0x17ff, 0],
      [0x1800, 0x1fff, 1],
      [0x2000, 0x27ff, 0],
    ] as const) {
      const index = table.allocate();
      table.start[index] = start;
      table.last[index] = last;
      table.typeIndex[index] = type;
      table.insert(index);
    }
    const armStateOf = (index: number) => armState[table.typeIndex[index]!]!;
    expect(maxArmStateOnPage(table, 0x1000, armStateOf)).toBe(S.All);
    expect(maxArmStateOnPage(table, 0x2000, armStateOf)).toBe(S.Write);
    expect(maxArmStateOnPage(table, 0x3000, armStateOf)).toBe(S.None);
  });

  it("22: arming never lowers a page already at a higher state", () => {
    const { raw, types } = specFixture();
    corruptPageForTesting(raw, 0x4000, { handlerState: S.All });
    raw.register(0x4100, 0x41ff, types.W, "write");
    expect(raw.pageInfo(0x4000)!.handlerState).toBe(S.All);
    expect(raw.checkHandlersAndPagesInSync().errorCount).toBe(1); // the forced state, as intended
  });

  it("23: deregister then register the same range gives the same page states", () => {
    const { memory, types } = specFixture();
    const snapshot = () => [0x3000, 0x4000, 0x5000, 0x6000].map((a) => memory.pageInfo(a));
    memory.register(0x3000, 0x4fff, types.A, "u");
    memory.register(0x5080, 0x6fff, types.W, "u");
    const first = snapshot();
    memory.deregister(0x3000);
    memory.deregister(0x5080);
    memory.register(0x3000, 0x4fff, types.A, "u");
    expect(memory.register(0x5080, 0x6fff, types.W, "u")).toBe("OK");
    expect(snapshot()).toEqual(first);
  });
});

describe("user argument, lookups, cache", () => {
  it("24: changeUserArgument reaches the next callback", () => {
    const { memory, types, calls } = specFixture();
    memory.register(0x1000, 0x1fff, types.W, "old");
    memory.write(0x1000, 1, 1);
    memory.changeUserArgument(0x1000, "new");
    memory.write(0x1000, 2, 1);
    expect(calls.map((c) => c.user)).toEqual(["old", "new"]);
    pgmError("ERR_PGM_NOT_FOUND", () => memory.changeUserArgument(0x2000, "x"));
  });

  it("25: the last-hit cache never answers for a deregistered handler", () => {
    const { memory, types, calls } = specFixture();
    memory.register(0x1000, 0x1fff, types.A, "X");
    expect(memory.isRegistered(0x1800)).toBe(true); // primes the cache with X
    memory.read(0x1800, 1);
    memory.deregister(0x1000);
    memory.register(0x30000, 0x30fff, types.A, "Y");
    calls.length = 0;
    memory.read(0x1800, 1);
    memory.write(0x1800, 1, 1);
    expect(calls).toEqual([]);
    expect(memory.isRegistered(0x1800)).toBe(false);
  });
});

describe("temp-off and reset", () => {
  it("26: temp-off lets writes to one page through, once", () => {
    const { memory, types, calls, state } = specFixture();
    memory.register(0x40000, 0x43fff, types.W, "u");
    memory.pageTempOff(0x40000, 0x41000);
    expect(state(0x41000)).toBe(S.Disabled);
    expect(memory.handlerAt(0x40000)!.tmpOffCount).toBe(1);
    memory.write(0x41234, 0x5a, 1);
    expect(calls).toEqual([]);
    expect(memory.readBytes(0x41234, 1)[0]).toBe(0x5a);
    memory.write(0x42000, 0x5b, 1);
    expect(calls.map((c) => c.address)).toEqual([0x42000]);
    memory.pageTempOff(0x40000, 0x41fff); // same page again
    expect(memory.handlerAt(0x40000)!.tmpOffCount).toBe(1);
  });

  it("27: reset re-arms turned-off pages", () => {
    const { memory, types, calls, state } = specFixture();
    memory.register(0x40000, 0x43fff, types.W, "u");
    memory.pageTempOff(0x40000, 0x41000);
    expect(memory.reset(0x40000)).toBe("OK");
    expect(state(0x41000)).toBe(S.Write);
    expect(memory.handlerAt(0x40000)!.tmpOffCount).toBe(0);
    memory.write(0x41000, 1, 1);
    expect(calls).toHaveLength(1);
  });

  it("28: temp-off checks in order: handler, page inside, kind, whole pages", () => {
    const { memory, types } = specFixture();
    memory.register(0x40000, 0x43fff, types.W, "u");
    memory.register(0xe0000000, 0xe0000fff, types.MM, "u");
    memory.register(0x5100, 0x51ff, types.W, "u");
    pgmError("ERR_PGM_PAGE_OUTSIDE_HANDLER", () => memory.pageTempOff(0x40000, 0x44000));
    pgmError("ERR_PGM_PAGE_OUTSIDE_HANDLER", () => memory.pageTempOff(0x40000, 0x3f000));
    pgmError("ERR_PGM_WRONG_KIND", () => memory.pageTempOff(0xe0000000, 0xe0000000));
    pgmError("ERR_PGM_NOT_FOUND", () => memory.pageTempOff(0x41000, 0x41000));
    pgmError("ERR_PGM_NOT_PAGE_ALIGNED", () => memory.pageTempOff(0x5100, 0x5100));
    expect(memory.handlerAt(0x40000)!.tmpOffCount).toBe(0);
  });

  it("29: temp-off of an all-access page lets reads and writes through", () => {
    const { memory, types, calls } = specFixture();
    memory.register(0x3000, 0x4fff, types.A, "u");
    memory.pageTempOff(0x3000, 0x4000);
    memory.write(0x4010, 0x77, 1);
    expect(memory.read(0x4010, 1)).toBe(0x77);
    expect(calls).toEqual([]);
    memory.read(0x3010, 1);
    expect(calls).toHaveLength(1);
  });

  it("30: deregistering a handler with pages turned off clears them all", () => {
    const { memory, types, state } = specFixture();
    const handler = memory.createHandler(types.W, "u");
    memory.registerHandler(handler, 0x40000, 0x43fff);
    memory.pageTempOff(0x40000, 0x41000);
    memory.pageTempOff(0x40000, 0x43000);
    memory.deregisterHandler(handler);
    expect([0x40000, 0x41000, 0x42000, 0x43000].map(state)).toEqual([S.None, S.None, S.None, S.None]);
    const info = memory.handlerInfo(handler);
    expect([info.tmpOffCount, info.aliasedCount, info.registered, info.start]).toEqual([0, 0, false, -1]);
  });

  it("31: reset with nothing to undo emits nothing", () => {
    const { memory, types } = specFixture();
    memory.register(0x40000, 0x43fff, types.W, "u");
    const { engine, events } = recordingEngine();
    const paging = recordingPaging();
    memory.attachEngine(engine);
    memory.attachPaging(paging.paging);
    expect(memory.reset(0x40000)).toBe("OK");
    expect([...events, ...paging.events]).toEqual([]);
  });
});

describe("MMIO2 dirty tracking", () => {
  it("32: one callback per first write to a page; the bitmap names the written pages, then starts afresh", () => {
    const { memory, R, state } = specFixture();
    const tracker = memory.handlerAt(R.start)!;
    expect(tracker.ownedByRange).toBe(true);
    memory.write(R.start + 0x1000, 1, 4);
    memory.write(R.start + 0x5000, 2, 4);
    memory.write(R.start + 0x5ffc, 3, 4);
    expect(memory.handlerAt(R.start)!.callCount).toBe(2);
    expect(memory.read(R.start + 0x5ffc, 4)).toBe(3); // the writes landed

    const bitmap = new Uint8Array(1);
    memory.resetWithBitmap(R.start, bitmap, 0);
    expect(bitmap[0]).toBe((1 << 1) | (1 << 5));
    for (let page = 0; page < 8; page++) expect(state(R.start + page * 0x1000)).toBe(S.Write);
    bitmap.fill(0);
    memory.resetWithBitmap(R.start, bitmap, 0);
    expect(bitmap[0]).toBe(0);
  });

  it("32: collectDirtyPages clears the bitmap and reports the same pages", () => {
    const { memory, R } = specFixture();
    const bitmap = new Uint8Array(2).fill(0xff);
    memory.collectDirtyPages(R.start, bitmap);
    expect([...bitmap]).toEqual([0, 0]);
    memory.writeFrom(R.start + 0x7000, new Uint8Array([1]));
    memory.collectDirtyPages(R.start, bitmap);
    expect([...bitmap]).toEqual([0x80, 0]);
    memory.collectDirtyPages(R.start, bitmap);
    expect([...bitmap]).toEqual([0, 0]);
    pgmError("ERR_PGM_WRONG_KIND", () => memory.collectDirtyPages(0, bitmap));
    pgmError("ERR_PGM_NOT_FOUND", () => memory.collectDirtyPages(0x1000, bitmap));
    pgmError("ERR_PGM_INVALID_ARGUMENT", () => memory.collectDirtyPages(R.start, new Uint8Array(0)));
  });

  it("33: the bit offset shifts the bits; only write handlers have dirty pages", () => {
    const { memory, R, types } = specFixture();
    memory.write(R.start + 0x1000, 1, 1);
    memory.write(R.start + 0x5000, 1, 1);
    const bitmap = new Uint8Array(3);
    memory.resetWithBitmap(R.start, bitmap, 8);
    expect([...bitmap]).toEqual([0, (1 << 1) | (1 << 5), 0]);
    memory.register(0x3000, 0x4fff, types.A, "u");
    pgmError("ERR_PGM_WRONG_KIND", () => memory.resetWithBitmap(0x3000, bitmap, 0));
    pgmError("ERR_PGM_INVALID_ARGUMENT", () => memory.resetWithBitmap(R.start, new Uint8Array(1), 1));
  });
});

describe("aliasing", () => {
  function aliasFixture() {
    const fixture = specFixture();
    fixture.memory.register(0xe0001000, 0xe0002fff, fixture.types.MM, "mm");
    // Distinct content per R page, so we can tell which one backs an alias.
    for (let page = 0; page < 8; page++) fixture.memory.loadBytes(fixture.R.start + page * 0x1000, new Uint8Array([0x30 + page]));
    return fixture;
  }

  it("34: an MMIO page aliased to an MMIO2 page reads and writes that page without callbacks", () => {
    const { memory, R, calls, state } = aliasFixture();
    const { engine, events } = recordingEngine();
    memory.attachEngine(engine);
    expect(memory.aliasMmio2(0xe0000000 + 0x1000, 0xe0001000, MMIO2_OWNER, R, 3 * 0x1000)).toBe("OK");
    const page = memory.pageInfo(0xe0001000)!;
    expect([page.type, page.handlerState]).toEqual([PageType.Mmio2AliasMmio, S.Disabled]);
    expect(memory.handlerAt(0xe0001000)!.aliasedCount).toBe(1);
    expect(memory.read(0xe0001000, 1)).toBe(0x33);
    memory.write(0xe0001001, 0x99, 1);
    expect(memory.readBytes(R.start + 0x3001, 1)[0]).toBe(0x99);
    expect(calls).toEqual([]);
    expect(events).toEqual([`backing 0xe0001000 zero->page ${PageProtection.Read | PageProtection.Write | PageProtection.Execute} type=${PageType.Mmio2AliasMmio}`]);
    expect(state(0xe0002000)).toBe(S.All);
  });

  it("35: re-aliasing to the same page is a no-op; to another page moves the alias", () => {
    const { memory, R } = aliasFixture();
    memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0x3000);
    expect(memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0x3000)).toBe("OK_ALREADY_ALIASED");
    const paging = recordingPaging();
    memory.attachPaging(paging.paging);
    expect(memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0x4000)).toBe("OK");
    expect(memory.read(0xe0001000, 1)).toBe(0x34);
    expect(memory.handlerAt(0xe0001000)!.aliasedCount).toBe(1);
    expect(paging.events).toEqual(["raised 0xe0001000", "invalidate 0xe0001000", "invalidate all", "invalidate 0xe0001000"]);
  });

  it("36: reset restores aliased pages to trapping MMIO", () => {
    const { memory, R, calls, state } = aliasFixture();
    memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0x3000);
    memory.aliasMmio2(0xe0001000, 0xe0002000, MMIO2_OWNER, R, 0x5000);
    const paging = recordingPaging();
    memory.attachPaging(paging.paging);
    expect(memory.reset(0xe0001000)).toBe("OK");
    expect(memory.pageInfo(0xe0001000)!.type).toBe(PageType.Mmio);
    expect([state(0xe0001000), state(0xe0002000)]).toEqual([S.All, S.All]);
    expect(memory.handlerAt(0xe0001000)!.aliasedCount).toBe(0);
    expect(memory.read(0xe0001000, 1)).toBe(0); // DEFAULT on an MMIO page reads zeros
    expect(calls.map((c) => c.address)).toEqual([0xe0001000]);
    expect(paging.events.filter((e) => e === "invalidate all")).toEqual(["invalidate all"]);
  });

  it("37: alias checks", () => {
    const { memory, R, types, raw } = aliasFixture();
    memory.register(0x40000, 0x43fff, types.W, "u");
    pgmError("ERR_PGM_WRONG_KIND", () => memory.aliasMmio2(0x40000, 0x40000, MMIO2_OWNER, R, 0));
    pgmError("ERR_PGM_PAGE_OUTSIDE_HANDLER", () => memory.aliasMmio2(0xe0001000, 0xe0003000, MMIO2_OWNER, R, 0));
    pgmError("ERR_PGM_MMIO2_OUT_OF_RANGE", () => memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 8 * 0x1000));
    pgmError("ERR_PGM_MMIO2_OUT_OF_RANGE", () => memory.aliasMmio2(0xe0001000, 0xe0001000, { name: "someone else" }, R, 0));
    pgmError("ERR_PGM_MMIO2_OUT_OF_RANGE", () => memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, memory.rangeAt(0)!, 0));
    pgmError("ERR_PGM_NOT_FOUND", () => memory.aliasMmio2(0xe0000000, 0xe0001000, MMIO2_OWNER, R, 0));
    memory.attachEngine(recordingEngine(true).engine);
    pgmError("ERR_PGM_NOT_SUPPORTED_IN_NEM_MODE", () => memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0));
    pgmError("ERR_PGM_NOT_SUPPORTED_IN_NEM_MODE", () => memory.aliasHostPage(0xe0001000, 0xe0001000, new Uint8Array(4096)));
    expect(raw.handlerAt(0xe0001000)!.aliasedCount).toBe(0);
  });

  it("38: a host-page alias changes what the engine maps, not PhysicalMemory's own accesses", () => {
    const { memory, calls, results } = aliasFixture();
    const hostPage = new Uint8Array(4096).fill(0x11);
    const { engine, events } = recordingEngine();
    memory.attachEngine(engine);
    expect(memory.aliasHostPage(0xe0001000, 0xe0001000, hostPage)).toBe("OK");
    const page = memory.pageInfo(0xe0001000)!;
    expect([page.type, page.handlerState, page.backing?.[0]]).toEqual([PageType.SpecialAliasMmio, S.Disabled, 0x11]);
    expect(events).toEqual([`backing 0xe0001000 zero->page 7 type=${PageType.SpecialAliasMmio}`]);
    results.MM = AccessResult.Handled;
    expect(memory.read(0xe0001010, 2)).toBe(0xa1a0);
    memory.write(0xe0001010, 0x55, 1);
    expect(calls.map((c) => [c.type, c.address, c.accessType])).toEqual([
      ["MM", 0xe0001010, AccessType.Read],
      ["MM", 0xe0001010, AccessType.Write],
    ]);
    expect(hostPage[0x10]).toBe(0x11); // the handler said Handled: nothing written
    expect(memory.aliasHostPage(0xe0001000, 0xe0001000, new Uint8Array(4096).fill(0x22))).toBe("OK_ALREADY_ALIASED");
    expect(memory.pageInfo(0xe0001000)!.backing?.[0]).toBe(0x11);
    pgmError("ERR_PGM_INVALID_ARGUMENT", () => memory.aliasHostPage(0xe0001000, 0xe0002000, new Uint8Array(100)));
  });

  it("38: host-page and MMIO2 aliases do not replace each other", () => {
    const { memory, R } = aliasFixture();
    memory.aliasHostPage(0xe0001000, 0xe0001000, new Uint8Array(4096));
    memory.aliasMmio2(0xe0001000, 0xe0002000, MMIO2_OWNER, R, 0);
    pgmError("ERR_PGM_NOT_MMIO2", () => memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0));
    pgmError("ERR_PGM_NOT_MMIO2", () => memory.aliasHostPage(0xe0001000, 0xe0002000, new Uint8Array(4096)));
  });

  it("39: deregistering an MMIO handler with aliased pages leaves plain, unhandled MMIO", () => {
    const { memory, R } = aliasFixture();
    memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0x3000);
    memory.aliasHostPage(0xe0001000, 0xe0002000, new Uint8Array(4096).fill(0x11));
    const { engine, events } = recordingEngine();
    memory.attachEngine(engine);
    memory.deregister(0xe0001000);
    for (const address of [0xe0001000, 0xe0002000]) {
      const page = memory.pageInfo(address)!;
      expect([page.type, page.handlerState, page.backing]).toEqual([PageType.Mmio, S.None, null]);
      expect(memory.read(address, 4)).toBe(0);
      memory.write(address, 0xffffffff, 4);
    }
    expect(memory.readBytes(R.start + 0x3000, 1)[0]).toBe(0x33);
    expect(events).toEqual([
      `backing 0xe0001000 page->zero 0 type=${PageType.Mmio}`,
      `backing 0xe0002000 page->zero 0 type=${PageType.Mmio}`,
      `deregistered ${HandlerKind.Mmio} 0xe0001000 0x2000`,
    ]);
  });

  it("removing an MMIO2 range restores the pages aliased to it", () => {
    const { memory, R, state } = aliasFixture();
    memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0x3000);
    memory.removeRange(R.start);
    expect(memory.pageInfo(0xe0001000)!.type).toBe(PageType.Mmio);
    expect(state(0xe0001000)).toBe(S.All);
    expect(memory.handlerAt(0xe0001000)!.aliasedCount).toBe(0);
    pgmError("ERR_PGM_MMIO2_OUT_OF_RANGE", () => memory.aliasMmio2(0xe0001000, 0xe0001000, MMIO2_OWNER, R, 0));
  });
});

describe("access path", () => {
  it("40: a read of an ALL page calls the callback with (address, size, READ, origin, user)", () => {
    const { memory, types, calls, results } = specFixture();
    memory.register(0x3000, 0x4fff, types.A, "the user");
    memory.loadBytes(0x3100, new Uint8Array([1, 2, 3, 4]));
    const buffer = new Uint8Array(4);
    memory.readInto(0x3100, buffer, AccessOrigin.Debugger);
    expect([...buffer]).toEqual([1, 2, 3, 4]); // DEFAULT: RAM content
    expect(calls).toEqual([{ type: "A", address: 0x3100, size: 4, accessType: AccessType.Read, origin: AccessOrigin.Debugger, user: "the user", data: [] }]);
    results.A = AccessResult.Handled;
    memory.readInto(0x3100, buffer);
    expect([...buffer]).toEqual([0xa0, 0xa1, 0xa2, 0xa3]);
    expect(calls[1]!.origin).toBe(AccessOrigin.Device);
    expect(memory.read(0x3100, 4)).toBe(0xa3a2a1a0);
    expect(calls[2]!.origin).toBe(AccessOrigin.Emulator);
  });

  it("41: a write of a WRITE page: DEFAULT lands, HANDLED does not", () => {
    const { memory, types, calls, results } = specFixture();
    memory.register(0x1000, 0x1fff, types.W, "u");
    memory.write(0x1010, 0x12345678, 4);
    expect(memory.readBytes(0x1010, 4)).toEqual(new Uint8Array([0x78, 0x56, 0x34, 0x12]));
    expect(calls[0]!.data).toEqual([0x78, 0x56, 0x34, 0x12]);
    results.W = AccessResult.Handled;
    memory.writeFrom(0x1010, new Uint8Array([9, 9]));
    expect(memory.read(0x1010, 4)).toBe(0x12345678);
    expect(calls).toHaveLength(2);
  });

  it("42: reads of write-only pages never call the callback", () => {
    const { memory, types, calls } = specFixture();
    memory.register(0x1000, 0x1fff, types.W, "u");
    memory.read(0x1000, 4);
    memory.readInto(0x0ff0, new Uint8Array(0x30));
    expect(calls).toEqual([]);
  });

  it("43: a read across an ALL page into an unhandled one calls back for the handled part only", () => {
    const { memory, types, calls, results } = specFixture();
    memory.register(0x3000, 0x4fff, types.A, "u");
    memory.register(0x5100, 0x51ff, types.W, "u");
    memory.loadBytes(0x5000, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    results.A = AccessResult.Handled;
    const buffer = new Uint8Array(16);
    memory.readInto(0x4ff8, buffer);
    expect(calls.map((c) => [c.address, c.size])).toEqual([[0x4ff8, 8]]);
    expect([...buffer]).toEqual([0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("44: a write across a page boundary inside one handler makes one callback per page", () => {
    const { memory, types, calls } = specFixture();
    memory.register(0x40000, 0x43fff, types.W, "u");
    memory.write(0x42ffe, 0x44332211, 4);
    expect(calls.map((c) => [c.address, c.size, c.data])).toEqual([
      [0x42ffe, 2, [0x11, 0x22]],
      [0x43000, 2, [0x33, 0x44]],
    ]);
    expect(memory.read(0x42ffe, 4)).toBe(0x44332211);
  });

  it("45: a page-sized write calls each sub-page handler once with its bytes, in order, and writes the gaps", () => {
    const { memory, types, calls, results } = specFixture();
    memory.register(0x50100, 0x501ff, types.W, "W5");
    memory.register(0x50400, 0x504ff, types.W, "W6");
    results.W = AccessResult.Handled;
    const data = Uint8Array.from({ length: 4096 }, (_, i) => (i % 251) + 1);
    memory.writeFrom(0x50000, data);
    expect(calls.map((c) => [c.user, c.address, c.size])).toEqual([
      ["W5", 0x50100, 0x100],
      ["W6", 0x50400, 0x100],
    ]);
    expect(calls[0]!.data).toEqual([...data.subarray(0x100, 0x200)]);
    const after = memory.readBytes(0x50000, 4096);
    for (const [from, to] of [
      [0, 0x100],
      [0x200, 0x400],
      [0x500, 0x1000],
    ] as const) {
      expect(after.subarray(from, to)).toEqual(data.subarray(from, to));
    }
    expect(after.subarray(0x100, 0x200).every((b) => b === 0)).toBe(true); // Handled: not written
  });

  it("46: a write running past a handler's end writes the rest directly", () => {
    const { memory, types, calls, results } = specFixture();
    memory.register(0x60000, 0x607ff, types.W, "u");
    results.W = AccessResult.Handled;
    memory.writeFrom(0x607f8, Uint8Array.from({ length: 16 }, (_, i) => i + 1));
    expect(calls.map((c) => [c.address, c.size])).toEqual([[0x607f8, 8]]);
    expect([...memory.readBytes(0x607f8, 16)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 9, 10, 11, 12, 13, 14, 15, 16]);
  });

  it("47: a failing read callback: 0xFF from the failing chunk to the end, and the error", () => {
    const { memory, types, failures } = specFixture();
    memory.register(0x4000, 0x4fff, types.A, "u");
    memory.loadBytes(0x3ffc, new Uint8Array([1, 2, 3, 4]));
    const failure = new Error("device on fire");
    failures.A = failure;
    const buffer = new Uint8Array(12);
    expect(() => memory.readInto(0x3ffc, buffer)).toThrow(failure);
    expect([...buffer]).toEqual([1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });

  it("47: a failing write callback: earlier chunks persist, later ones are not written", () => {
    const { memory, types, failures, calls } = specFixture();
    memory.register(0x4000, 0x4fff, types.W, "u");
    failures.W = new Error("refused");
    expect(() => memory.writeFrom(0x3ffe, new Uint8Array([1, 2, 3, 4, 5, 6]))).toThrow("refused");
    expect(calls).toHaveLength(1);
    expect([...memory.readBytes(0x3ffe, 6)]).toEqual([1, 2, 0, 0, 0, 0]);
  });

  it("48: unassigned space reads 0xFF and drops writes, also inside a longer access", () => {
    const { memory } = specFixture();
    memory.loadBytes(0x9fffe, new Uint8Array([1, 2]));
    const buffer = new Uint8Array(4);
    memory.readInto(0x9fffe, buffer);
    expect([...buffer]).toEqual([1, 2, 0xff, 0xff]);
    memory.readInto(0xa0000, buffer);
    expect([...buffer]).toEqual([0xff, 0xff, 0xff, 0xff]);
    memory.writeFrom(0x9fffe, new Uint8Array([7, 8, 9, 10]));
    expect([...memory.readBytes(0x9fffe, 2)]).toEqual([7, 8]);
    // Past the last range entirely.
    const top = new Uint8Array(2);
    memory.readInto(0xffff0000, top);
    expect([...top]).toEqual([0xff, 0xff]);
  });

  it("49: zero-length accesses do nothing", () => {
    const { memory, types, calls } = specFixture();
    memory.register(0x3000, 0x3fff, types.A, "u");
    memory.readInto(0x3000, new Uint8Array(0));
    memory.writeFrom(0x3000, new Uint8Array(0));
    expect(calls).toEqual([]);
  });

  it("50: an MMIO page whose callback answers DEFAULT reads zeros and drops the write", () => {
    const { memory, types, calls } = specFixture();
    memory.register(0xe0000000, 0xe0000fff, types.MM, "u");
    expect(memory.read(0xe0000010, 4)).toBe(0);
    memory.write(0xe0000010, 0x12345678, 4);
    expect(memory.read(0xe0000010, 4)).toBe(0);
    expect(calls.map((c) => c.accessType)).toEqual([AccessType.Read, AccessType.Write, AccessType.Read]);
  });

  it("51: a callback may deregister its own handler during a write", () => {
    const memory = checkedAfterEveryCall(new PhysicalMemory());
    memory.addRam(0, 0x10000, "ram");
    let calls = 0;
    const type = memory.registerHandlerType({
      kind: HandlerKind.Write,
      description: "once",
      onAccess: (address) => {
        calls++;
        memory.deregister(address - (address % 0x1000));
        return AccessResult.Default;
      },
    });
    memory.register(0x2000, 0x2fff, type, null);
    memory.writeFrom(0x2ff0, new Uint8Array(0x20).fill(0x42));
    expect(calls).toBe(1);
    expect(memory.pageInfo(0x2000)!.handlerState).toBe(S.None);
    expect(memory.readBytes(0x2ff0, 0x20).every((b) => b === 0x42)).toBe(true);
    memory.write(0x2000, 1, 1);
    expect(calls).toBe(1);
  });

  it("readInto and writeFrom refuse addresses outside the physical address space", () => {
    const { memory } = specFixture();
    pgmError("ERR_PGM_OUT_OF_RANGE", () => memory.readInto(TOP - 1, new Uint8Array(2)));
    pgmError("ERR_PGM_OUT_OF_RANGE", () => memory.writeFrom(-1, new Uint8Array(1)));
    pgmError("ERR_PGM_INVALID_ARGUMENT", () => memory.readInto(0, [1, 2] as unknown as Uint8Array));
  });

  it("a callback answering something else fails the access", () => {
    const { memory, types, results } = specFixture();
    memory.register(0x3000, 0x3fff, types.A, "u");
    results.A = 7 as AccessResult;
    const buffer = new Uint8Array(2);
    pgmError("ERR_PGM_INVALID_CALLBACK", () => memory.readInto(0x3000, buffer));
    expect([...buffer]).toEqual([0xff, 0xff]);
    pgmError("ERR_PGM_INVALID_CALLBACK", () => memory.writeFrom(0x3000, buffer));
  });
});

describe("modify, split, join", () => {
  it("52: modify moves a handler", () => {
    const { memory, types, calls, state } = specFixture();
    memory.register(0x70000, 0x70fff, types.W, "u");
    const { engine, events } = recordingEngine();
    const paging = recordingPaging();
    memory.attachEngine(engine);
    memory.attachPaging(paging.paging);
    expect(memory.modify(0x70000, 0x72000, 0x72fff)).toBe("OK");
    expect([state(0x70000), state(0x72000)]).toEqual([S.None, S.Write]);
    memory.write(0x70000, 1, 1);
    memory.write(0x72000, 1, 1);
    expect(calls.map((c) => c.address)).toEqual([0x72000]);
    expect(events).toContain(`modified ${HandlerKind.Write} 0x70000 0x72000 0x1000 true`);
    expect(paging.events).toEqual(["raised 0x72000", "flush all"]);
  });

  it("53: a modify that fails after finding the handler destroys it", () => {
    const { memory, types, state } = specFixture();
    memory.register(0x70000, 0x70fff, types.W, "u");
    memory.register(0x72000, 0x72fff, types.W, "other");
    const { engine, events } = recordingEngine();
    memory.attachEngine(engine);
    const error = pgmError("ERR_PGM_CONFLICT", () => memory.modify(0x70000, 0x71000, 0x72fff));
    expect(error.message).toContain("destroyed");
    expect(state(0x70000)).toBe(S.None);
    pgmError("ERR_PGM_NOT_FOUND", () => memory.deregister(0x70000));
    expect(events).toContain(`deregistered ${HandlerKind.Write} 0x70000 0x1000 bytes=0x1000`);
    expect(state(0x72000)).toBe(S.Write);

    memory.register(0x70000, 0x70fff, types.W, "u");
    pgmError("ERR_PGM_NO_RAM_RANGE", () => memory.modify(0x70000, 0xa0000, 0xa0fff));
    expect(memory.isRegistered(0x70000)).toBe(false);

    const free = memory.freeHandlerRecords;
    pgmError("ERR_PGM_NOT_FOUND", () => memory.modify(0x90000, 0x91000, 0x91fff));
    expect(memory.freeHandlerRecords).toBe(free);
    expect(state(0x72000)).toBe(S.Write);
  });

  it("54: split gives two handlers with the same type, user and description", () => {
    const { memory, types, state } = specFixture();
    memory.register(0x80000, 0x83fff, types.W, "u", "desc");
    memory.split(0x80000, 0x82000);
    const [first, second] = [memory.handlerAt(0x80000)!, memory.handlerAt(0x82000)!];
    expect([first.start, first.last, second.start, second.last]).toEqual([0x80000, 0x81fff, 0x82000, 0x83fff]);
    expect([second.type, second.user, second.description]).toEqual([first.type, "u", "desc"]);
    expect([0x80000, 0x81000, 0x82000, 0x83000].map(state)).toEqual([S.Write, S.Write, S.Write, S.Write]);
    memory.deregister(0x82000);
    expect([0x80000, 0x81000, 0x82000, 0x83000].map(state)).toEqual([S.Write, S.Write, S.None, S.None]);
  });

  it("55: split points", () => {
    const { memory, types } = specFixture();
    memory.register(0x80000, 0x83fff, types.W, "u");
    pgmError("ERR_PGM_INVALID_SPLIT", () => memory.split(0x80000, 0x80000));
    pgmError("ERR_PGM_INVALID_SPLIT", () => memory.split(0x80000, 0x84000));
    pgmError("ERR_PGM_INVALID_SPLIT", () => memory.split(0x80000, 0x83fff)); // would leave 1 byte
    memory.split(0x80000, 0x83000);
    expect(memory.handlerAt(0x83000)!.pageCount).toBe(1);
    memory.register(0x3000, 0x4fff, types.A, "u");
    pgmError("ERR_PGM_INVALID_SPLIT", () => memory.split(0x3000, 0x3800));
    pgmError("ERR_PGM_NOT_FOUND", () => memory.split(0x90000, 0x91000));

    const free = memory.freeHandlerRecords;
    memory.pageTempOff(0x80000, 0x81000);
    pgmError("ERR_PGM_INVALID_SPLIT", () => memory.split(0x80000, 0x81800));
    memory.split(0x80000, 0x82000);
    expect([memory.handlerAt(0x80000)!.tmpOffCount, memory.handlerAt(0x82000)!.tmpOffCount]).toEqual([1, 0]);
    expect(memory.freeHandlerRecords).toBe(free - 1);
    // A turned-off page in the upper half moves its count with it.
    memory.pageTempOff(0x82000, 0x82000);
    memory.join(0x80000, 0x82000);
    memory.split(0x80000, 0x82000);
    expect([memory.handlerAt(0x80000)!.tmpOffCount, memory.handlerAt(0x82000)!.tmpOffCount]).toEqual([1, 1]);
  });

  it("55: split reserves a record before anything else", () => {
    const memory = checkedAfterEveryCall(new PhysicalMemory({ handlerCapacity: 32 }));
    memory.addRam(0, 0x100000, "ram");
    const type = memory.registerHandlerType({ kind: HandlerKind.Write, onAccess: () => AccessResult.Default, description: "w" });
    for (let i = 0; i < 32; i++) memory.register(i * 0x2000, i * 0x2000 + 0x1fff, type, i);
    pgmError("ERR_PGM_OUT_OF_HANDLERS", () => memory.split(0, 0x1000));
    pgmError("ERR_PGM_OUT_OF_HANDLERS", () => memory.split(0x1234, 0x1800)); // before the NOT_FOUND check
    expect(memory.handlers()).toHaveLength(32);
  });

  it("56: join", () => {
    const { memory, types, calls } = specFixture();
    memory.register(0x90000, 0x90fff, types.W, "first");
    memory.register(0x91000, 0x917ff, types.W, "second");
    memory.register(0x91800, 0x91fff, types.W, "third");
    memory.register(0x93000, 0x93fff, types.W, "fourth");
    memory.register(0x94000, 0x94fff, types.WN, "other type");
    pgmError("ERR_PGM_INVALID_JOIN", () => memory.join(0x91000, 0x90000)); // reversed
    pgmError("ERR_PGM_INVALID_JOIN", () => memory.join(0x91800, 0x93000)); // gap
    pgmError("ERR_PGM_INVALID_JOIN", () => memory.join(0x90000, 0x90000));
    pgmError("ERR_PGM_JOIN_TYPE_MISMATCH", () => memory.join(0x93000, 0x94000));
    pgmError("ERR_PGM_NOT_FOUND", () => memory.join(0x90000, 0x95000));
    pgmError("ERR_PGM_NOT_FOUND", () => memory.join(0x95000, 0x90000));
    const free = memory.freeHandlerRecords;
    memory.join(0x90000, 0x91000);
    memory.join(0x90000, 0x91800);
    expect(memory.freeHandlerRecords).toBe(free + 2);
    for (const address of [0x90000, 0x90fff, 0x91000, 0x91fff]) {
      const handler = memory.handlerAt(address)!;
      expect([handler.start, handler.last, handler.user, handler.pageCount]).toEqual([0x90000, 0x91fff, "first", 2]);
    }
    memory.write(0x91900, 1, 1);
    expect(calls.map((c) => c.user)).toEqual(["first"]);
  });

  it("56: join keeps a handler inside one range, even across contiguous ranges", () => {
    const { memory, types } = specFixture();
    memory.register(0x10ff000, 0x10fffff, types.W, "end of C1");
    memory.register(0x1100000, 0x1100fff, types.W, "start of C2");
    const error = pgmError("ERR_PGM_INVALID_JOIN", () => memory.join(0x10ff000, 0x1100000));
    expect(error.message).toContain("different ranges");
    expect(memory.handlers().filter((h) => !h.ownedByRange)).toHaveLength(2);
  });

  it("56: join adds turned-off counts", () => {
    const { memory, types } = specFixture();
    memory.register(0x90000, 0x90fff, types.W, "a");
    memory.register(0x91000, 0x91fff, types.W, "b");
    memory.pageTempOff(0x91000, 0x91000);
    memory.join(0x90000, 0x91000);
    expect(memory.handlerAt(0x90000)!.tmpOffCount).toBe(1);
  });
});

describe("top of the address space", () => {
  it("57: an ALL handler on the very last page", () => {
    const { memory, types, calls, state } = specFixture();
    expect(memory.register(TOP - 0x1000, TOP - 1, types.A, "u")).toBe("OK");
    memory.read(TOP - 1, 1);
    expect(calls.map((c) => c.address)).toEqual([TOP - 1]);
    memory.deregister(TOP - 0x1000);
    expect(state(TOP - 1)).toBe(S.None);
  });

  it("58: two write handlers sharing the top page", () => {
    const { memory, types, state } = specFixture();
    const { engine, events } = recordingEngine();
    memory.attachEngine(engine);
    memory.register(TOP - 0x800, TOP - 1, types.W, "high");
    memory.register(TOP - 0x1000, TOP - 0x801, types.W, "low");
    memory.deregister(TOP - 0x800);
    expect(state(TOP - 1)).toBe(S.Write);
    expect(events.some((e) => e.startsWith("deregistered"))).toBe(false);
    memory.register(TOP - 0x800, TOP - 1, types.W, "high");
    memory.deregister(TOP - 0x1000);
    expect(state(TOP - 1)).toBe(S.Write);
    memory.deregister(TOP - 0x800);
    expect(state(TOP - 1)).toBe(S.None);
    expect(events.filter((e) => e.startsWith("deregistered"))).toEqual([`deregistered ${HandlerKind.Write} ${hexOf(TOP - 0x1000)} 0x1000 bytes=0x1000`]);
  });

  it("59: a range reaching 2^52 is invalid", () => {
    const { memory, types } = specFixture();
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.register(TOP - 0x1000, TOP, types.W, "u"));
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.register(TOP, TOP + 0xfff, types.W, "u"));
  });
});

describe("notifications, checker", () => {
  it("60: engine events on registration", () => {
    const { memory, types } = specFixture();
    const { engine, events } = recordingEngine();
    memory.attachEngine(engine);
    memory.register(0x10000, 0x12fff, types.W, "u");
    const rx = PageProtection.Read | PageProtection.Execute;
    expect(events).toEqual([
      `protection 0x10000 ${rx} type=${PageType.Ram}`,
      `protection 0x11000 ${rx} type=${PageType.Ram}`,
      `protection 0x12000 ${rx} type=${PageType.Ram}`,
      `registered ${HandlerKind.Write} 0x10000 0x3000`,
    ]);
    events.length = 0;
    memory.register(0x13100, 0x131ff, types.W, "a");
    events.length = 0;
    memory.register(0x13400, 0x134ff, types.W, "b");
    expect(events).toEqual([`registered ${HandlerKind.Write} 0x13400 0x100`]);
  });

  it("60: what the engine returns is kept per page", () => {
    const { memory, types } = specFixture();
    const { engine } = recordingEngine();
    memory.attachEngine({ ...engine, pageProtectionChanged: (address) => (address === 0x11000 ? 2 : 1) });
    memory.register(0x10000, 0x11fff, types.A, "u");
    expect([memory.pageInfo(0x10000)!.engineState, memory.pageInfo(0x11000)!.engineState, memory.pageInfo(0x12000)!.engineState]).toEqual([1, 2, 0]);
    expect(memory.pageInfo(0x10000)!.protection).toBe(PageProtection.None);
  });

  it("61: a page read through the fast path traps once a handler arrives", () => {
    const { memory, types, calls } = specFixture();
    memory.read(0x6000, 4);
    memory.register(0x6000, 0x6fff, types.A, "u");
    memory.read(0x6000, 4);
    expect(calls.map((c) => c.address)).toEqual([0x6000]);
  });

  it("61: the paging side hears of every raise, and the generation moves", () => {
    const { memory, types } = specFixture();
    const paging = recordingPaging();
    memory.attachPaging(paging.paging);
    const before = memory.stateGeneration;
    memory.register(0x6000, 0x7fff, types.A, "u");
    expect(paging.events).toEqual(["raised 0x6000", "raised 0x7000"]);
    expect(memory.stateGeneration).toBe(before + 2);
  });

  it("61: a paging hook's answers become a TLB flush and OK_SHADOW_RESYNC_PENDING", () => {
    const { memory, types } = specFixture();
    const { paging, events } = recordingPaging();
    memory.attachPaging({ ...paging, pageStateRaised: () => ({ flushAll: true, resyncPending: true }) });
    expect(memory.register(0x6000, 0x7fff, types.A, "u")).toBe("OK_SHADOW_RESYNC_PENDING");
    expect(events).toEqual(["flush all"]);
  });

  it("64: a handler ending on a page's first byte frees that whole page", () => {
    const { memory, types } = specFixture();
    const { engine, events } = recordingEngine();
    memory.register(0x200000, 0x201000, types.W, "u");
    memory.attachEngine(engine);
    memory.deregister(0x200000);
    expect(events.filter((e) => e.startsWith("deregistered"))).toEqual([`deregistered ${HandlerKind.Write} 0x200000 0x2000 bytes=0x2000`]);
  });
});

describe("handler records and queries", () => {
  it("duplicateHandler copies type, user and description into a new unregistered record", () => {
    const { memory, types } = specFixture();
    const handler = memory.createHandler(types.W, "u", "d");
    const copy = memory.duplicateHandler(handler);
    expect(copy).not.toBe(handler);
    const info = memory.handlerInfo(copy);
    expect([info.type, info.user, info.description, info.registered]).toEqual([types.W, "u", "d", false]);
  });

  it("isAllAccess is false only under a write handler", () => {
    const { memory, types } = specFixture();
    memory.register(0x1000, 0x1fff, types.W, "u");
    memory.register(0x3000, 0x3fff, types.A, "u");
    expect([memory.isAllAccess(0x1000), memory.isAllAccess(0x3000), memory.isAllAccess(0x8000)]).toEqual([false, true, true]);
  });

  it("handleFault calls the type's fault callback, or answers emulate-instruction", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x10000, "ram");
    const seen: unknown[] = [];
    const withFault = memory.registerHandlerType({
      kind: HandlerKind.Write,
      description: "f",
      onAccess: () => AccessResult.Default,
      onFault: (physical, linear, errorCode, context, user) => {
        seen.push([physical, linear, errorCode, context, user]);
        return 0;
      },
    });
    const without = memory.registerHandlerType({ kind: HandlerKind.Write, description: "n", onAccess: () => AccessResult.Default });
    memory.register(0x1000, 0x1fff, withFault, "u1");
    memory.register(0x2000, 0x2fff, without, "u2");
    expect(memory.handleFault(0x1004, 0x401004, 3, "ctx")).toBe(0);
    expect(seen).toEqual([[0x1004, 0x401004, 3, "ctx", "u1"]]);
    expect(memory.handleFault(0x2004, 0, 3)).toBe(1);
    expect(memory.handleFault(0x5000, 0, 3)).toBe(1);
    pgmError("ERR_PGM_INVALID_CALLBACK", () =>
      memory.registerHandlerType({ kind: HandlerKind.All, description: "x", onAccess: () => 0, onFault: 5 as unknown as () => 0 }),
    );
  });

  it("describeHandlers lists each handler on one line", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0, 0x10000, "ram");
    const type = memory.registerHandlerType({
      kind: HandlerKind.Write,
      flags: 4,
      description: "monitor",
      onAccess: function watchWrites() {
        return AccessResult.Default;
      },
    });
    memory.register(0x1000, 0x1fff, type, 0x2a, "rom shadow");
    expect(memory.describeHandlers()).toEqual(['0x1000-0x1fff write "rom shadow" user=0x2a callback=watchWrites flags=not-in-engine calls=0']);
  });

  it("a range's own handlers cannot be taken apart, only reset or aliased", () => {
    const memory = checkedAfterEveryCall(new PhysicalMemory());
    memory.addMmio(0x10000, 0x2000, { read: () => 0, write: () => {} }, "device");
    const owned = memory.handlerAt(0x10000)!;
    pgmError("ERR_PGM_WRONG_KIND", () => memory.deregister(0x10000));
    pgmError("ERR_PGM_WRONG_KIND", () => memory.deregisterHandler(owned.id));
    pgmError("ERR_PGM_WRONG_KIND", () => memory.modify(0x10000, 0x10000, 0x10fff));
    pgmError("ERR_PGM_WRONG_KIND", () => memory.split(0x10000, 0x11000));
    pgmError("ERR_PGM_WRONG_KIND", () => memory.changeUserArgument(0x10000, 1));
    pgmError("ERR_PGM_WRONG_KIND", () => memory.duplicateHandler(owned.id));
    expect(memory.reset(0x10000)).toBe("OK");
    expect(memory.handlers()).toHaveLength(1);
  });
});

describe("62: the consistency checker", () => {
  function corruptible() {
    const { raw, types } = specFixture();
    raw.register(0x1000, 0x1fff, types.W, "w");
    raw.register(0x3000, 0x3fff, types.WN, "wn");
    expect(raw.checkHandlersAndPagesInSync()).toEqual({ errorCount: 0, extensionErrorCount: 0, findings: [] });
    return raw;
  }

  it("finds a write page forced to ALL", () => {
    const memory = corruptible();
    corruptPageForTesting(memory, 0x1000, { handlerState: S.All });
    const report = memory.checkHandlersAndPagesInSync();
    expect([report.errorCount, report.extensionErrorCount]).toEqual([1, 0]);
    expect(report.findings).toEqual(["page 0x1000 state mismatch: ALL, expected WRITE"]);
  });

  it("finds a handler state on a page without a handler", () => {
    const memory = corruptible();
    corruptPageForTesting(memory, 0x8000, { handlerState: S.Write });
    const report = memory.checkHandlersAndPagesInSync();
    expect([report.errorCount, report.extensionErrorCount]).toEqual([1, 0]);
    expect(report.findings[0]).toContain("0x8000");
  });

  it("finds a not-in-engine bit that disagrees with the handler's type", () => {
    const memory = corruptible();
    corruptPageForTesting(memory, 0x3000, { notInEngine: 0 });
    expect(memory.checkHandlersAndPagesInSync().errorCount).toBe(1);
    corruptPageForTesting(memory, 0x3000, { notInEngine: 1 });
    corruptPageForTesting(memory, 0x1000, { notInEngine: 1 });
    expect(memory.checkHandlersAndPagesInSync().errorCount).toBe(1);
  });

  it.each([
    ["DISABLED", S.Disabled, "temp-off count 0, 1 pages disabled"],
    ["NONE", S.None, "has no handler state"],
  ])("counts %s on a handled page only as an extension error", (_name, state, finding) => {
    const memory = corruptible();
    corruptPageForTesting(memory, 0x1000, { handlerState: state });
    const report = memory.checkHandlersAndPagesInSync();
    expect([report.errorCount, report.extensionErrorCount]).toEqual([0, 1]);
    expect(report.findings[0]).toContain(finding);
  });
});

describe("ranges and handlers together", () => {
  it("a device MMIO range serves buffer accesses through its handler in 4-, 2- and 1-byte device calls", () => {
    const memory = checkedAfterEveryCall(new PhysicalMemory());
    const calls: string[] = [];
    memory.addMmio(
      0x10000,
      0x2000,
      {
        read: (offset, size) => {
          calls.push(`read ${hexOf(offset)} ${size}`);
          return 0x04030201;
        },
        write: (offset, value, size) => void calls.push(`write ${hexOf(offset)} ${hexOf(value)} ${size}`),
      },
      "device",
    );
    const buffer = new Uint8Array(7);
    memory.readInto(0x10ffe, buffer);
    expect([...buffer]).toEqual([1, 2, 1, 2, 3, 4, 1]);
    memory.writeFrom(0x10100, new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
    expect(calls).toEqual([
      "read 0xffe 2",
      "read 0x1000 4",
      "read 0x1004 1",
      "write 0x100 0x4030201 4",
      "write 0x104 0x605 2",
      "write 0x106 0x7 1",
    ]);
  });

  it("a device MMIO range can have pages aliased to MMIO2, and removing it removes its handler", () => {
    const memory = checkedAfterEveryCall(new PhysicalMemory());
    let reads = 0;
    const range = memory.addMmio(
      0x10000,
      0x2000,
      {
        read: () => ++reads,
        write: () => {},
      },
      "vga window",
    );
    const owner = {};
    const framebuffer = memory.addMmio2(0x100000, 0x4000, owner, "framebuffer");
    memory.loadBytes(0x102000, new Uint8Array([0x42]));
    memory.aliasMmio2(0x10000, 0x11000, owner, framebuffer, 0x2000);
    expect(memory.read(0x11000, 1)).toBe(0x42);
    expect(memory.read(0x10000, 1)).toBe(1);
    expect(reads).toBe(1);
    const free = memory.freeHandlerRecords;
    expect(memory.removeRange(0x10000)).toBe(range);
    expect(memory.handlers()).toEqual([]);
    expect(memory.freeHandlerRecords).toBe(free + 1);
    expect(memory.read(0x11000, 1)).toBe(0xff);
  });

  it("a range with handlers over it is not removed", () => {
    const { memory, types } = specFixture();
    memory.register(0x100000, 0x100fff, types.W, "u", "monitor");
    const error = pgmError("ERR_PGM_STILL_REGISTERED", () => memory.removeRange(0x100000));
    expect(error.message).toContain('"monitor" 0x100000-0x100fff');
    expect(memory.rangeAt(0x100000)?.description).toBe("B");
    memory.deregister(0x100000);
    memory.removeRange(0x100000);
    expect(memory.rangeAt(0x100000)).toBeUndefined();
  });

  it("adding a device range with a full pool changes nothing", () => {
    const memory = checkedAfterEveryCall(new PhysicalMemory({ handlerCapacity: 32 }));
    memory.addRam(0, 0x100000, "ram");
    const type = memory.registerHandlerType({ kind: HandlerKind.Write, onAccess: () => AccessResult.Default, description: "w" });
    for (let i = 0; i < 32; i++) memory.register(i * 0x1000, i * 0x1000 + 0xfff, type, i);
    pgmError("ERR_PGM_OUT_OF_HANDLERS", () => memory.addMmio(0x200000, 0x1000, { read: () => 0, write: () => {} }, "device"));
    pgmError("ERR_PGM_OUT_OF_HANDLERS", () => memory.addMmio2(0x200000, 0x1000, null, "tracked", { dirtyTracking: true }));
    expect(memory.ranges.map((r) => r.description)).toEqual(["ram"]);
    expect(memory.addMmio2(0x200000, 0x1000, null, "untracked").kind).toBe("mmio2");
  });

  it("one range holds at most 4 GiB", () => {
    const memory = new PhysicalMemory();
    pgmError("ERR_PGM_INVALID_RANGE", () => memory.addMmio(0, 2 ** 32 + 0x1000, null, "huge"));
    expect(memory.addMmio(0, 2 ** 32, null, "4 GiB").size).toBe(2 ** 32);
  });

  it("ROM writes go to a write handler when there is one, and never land", () => {
    const memory = checkedAfterEveryCall(new PhysicalMemory());
    memory.addRom(0xf0000, new Uint8Array([0xea]), "bios");
    const writes: number[] = [];
    const type = memory.registerHandlerType({
      kind: HandlerKind.Write,
      description: "rom writes",
      onAccess: (address, buffer, offset) => {
        writes.push(address, buffer[offset]!);
        return AccessResult.Default;
      },
    });
    memory.register(0xf0000, 0xf0fff, type, null);
    memory.write(0xf0000, 0x90, 1);
    expect(writes).toEqual([0xf0000, 0x90]);
    expect(memory.read(0xf0000, 1)).toBe(0xea);
    expect(memory.pageInfo(0xf0000)).toMatchObject({ type: PageType.Rom, protection: PageProtection.Read | PageProtection.Execute });
  });

  it("pages report their type, allocation state and protection", () => {
    const { memory, R, types } = specFixture();
    expect(memory.pageInfo(0)).toMatchObject({ type: PageType.Ram, allocState: 1, protection: 7, notInEngine: false, engineState: 0 });
    expect(memory.pageInfo(0xe0000000)).toMatchObject({ type: PageType.Mmio, allocState: 0, protection: 0, backing: null });
    expect(memory.pageInfo(R.start)).toMatchObject({ type: PageType.Mmio2, protection: 5 }); // dirty tracking write-protects it
    memory.register(0x5000, 0x5fff, types.WN, "u");
    expect(memory.pageInfo(0x5abc)).toMatchObject({ address: 0x5000, notInEngine: true, protection: 5 });
    expect(memory.pageInfo(0x5000)!.backing!.byteOffset).toBe(0x5000);
    expect(memory.pageInfo(0xa0000)).toBeUndefined();
  });
});
