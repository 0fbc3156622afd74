/**
 * The consistency checker of spec §7 (`checkHandlersAndPagesInSync`): page handler states
 * against the registered handlers. The mandatory checks are the reference's; the
 * extensions (counted separately) check the reverse direction, the counters, aliases, the
 * lookup order, the derived `slow` bits and the arena-wide fast-path table. Cost
 * O(pages + arena pages + handlers).
 */
import { HandlerKind, HandlerTypeFlags, PAGE_SIZE, PageHandlerState, PageType } from "./constants.js";
import { hex } from "./errors.js";
import type { HandlerTable } from "./handler-table.js";
import { isAliasType, SLOW_READ, SLOW_WRITE, slowBits, type MemoryRange } from "./memory-range.js";

export interface ConsistencyReport {
  /** Findings of the reference's checks (spec §7 items 1–4). */
  readonly errorCount: number;
  /** Findings of the extensions. */
  readonly extensionErrorCount: number;
  /** One line per finding, mandatory and extension alike. */
  readonly findings: readonly string[];
}

/** What the checker needs to know about handler types. */
export interface TypeView {
  kind(typeIndex: number): number;
  armState(typeIndex: number): number;
  flags(typeIndex: number): number;
}

const STATE_NAMES = ["NONE", "DISABLED", "WRITE", "ALL"];

export function checkHandlersAndPagesInSync(
  ranges: readonly MemoryRange[],
  table: HandlerTable,
  types: TypeView,
  rangeContaining: (address: number) => MemoryRange | undefined,
  arenaSlow: Uint8Array,
): ConsistencyReport {
  const findings: string[] = [];
  let errorCount = 0;
  let extensionErrorCount = 0;
  const error = (message: string) => {
    errorCount++;
    findings.push(message);
  };
  const extension = (message: string) => {
    extensionErrorCount++;
    findings.push(`(extension) ${message}`);
  };

  // ---- mandatory: every page with a handler state has handlers that justify it ----------
  for (const range of ranges) {
    for (let page = 0; page < range.pageCount; page++) {
      const state = range.handlerState[page]!;
      if (state === PageHandlerState.None) continue;
      const pageStart = range.pageAddress(page);
      const pageEnd = pageStart + PAGE_SIZE - 1;
      let position = table.positionAtOrBelow(pageStart);
      if (position < 0 || table.sortedLast[position]! < pageStart) position++;
      if (position >= table.count || table.sortedStart[position]! > pageEnd) {
        error(`page ${hex(pageStart)} has handler state ${STATE_NAMES[state]} but no handler`);
        continue;
      }
      const first = table.sortedIndex[position]!;
      let expected = 0;
      for (let p = position; p < table.count && table.sortedStart[p]! <= pageEnd; p++) {
        expected = Math.max(expected, types.armState(table.typeIndex[table.sortedIndex[p]!]!));
      }
      if (state !== expected && state !== PageHandlerState.Disabled) {
        error(`page ${hex(pageStart)} state mismatch: ${STATE_NAMES[state]}, expected ${STATE_NAMES[expected]}`);
      }
      const notInEngine = types.flags(table.typeIndex[first]!) & HandlerTypeFlags.NotInEngine ? 1 : 0;
      if (range.notInEngine(page) !== notInEngine) {
        error(`page ${hex(pageStart)} not-in-engine bit is ${range.notInEngine(page)}, its handler's type says ${notInEngine}`);
      }
    }
  }

  // ---- extensions: the lookup, each handler's range, pages and counters ----------------------
  for (let position = 0; position < table.count; position++) {
    const index = table.sortedIndex[position]!;
    const start = table.sortedStart[position]!;
    const last = table.sortedLast[position]!;
    const where = `handler ${hex(start)}-${hex(last)} "${table.description[index]}"`;
    if (table.live[index] !== 1 || table.start[index] !== start || table.last[index] !== last) {
      extension(`${where}: lookup entry does not match its record`);
      continue;
    }
    if (start >= last) extension(`${where}: start is not below last`);
    if (position + 1 < table.count && table.sortedStart[position + 1]! <= last) {
      extension(`${where}: not below the next handler at ${hex(table.sortedStart[position + 1]!)}`);
    }
    const typeIndex = table.typeIndex[index]!;
    const kind = types.kind(typeIndex);
    const fullPages = kind !== HandlerKind.Write || (types.flags(typeIndex) & HandlerTypeFlags.NotInEngine) !== 0;
    if (fullPages && (start % PAGE_SIZE !== 0 || (last + 1) % PAGE_SIZE !== 0)) extension(`${where}: must cover whole pages`);
    const range = rangeContaining(start);
    if (range === undefined || last > range.lastAddress) {
      extension(`${where}: not inside one range`);
      continue;
    }
    const firstPage = range.pageIndex(start);
    const lastPage = range.pageIndex(last);
    let disabled = 0;
    let aliased = 0;
    for (let page = firstPage; page <= lastPage; page++) {
      const state = range.handlerState[page]!;
      if (state === PageHandlerState.None) extension(`page ${hex(range.pageAddress(page))} is under ${where} but has no handler state`);
      if (isAliasType(range.pageType[page]!)) aliased++;
      else if (state === PageHandlerState.Disabled) disabled++;
    }
    if (table.tmpOffCount[index] !== disabled) extension(`${where}: temp-off count ${table.tmpOffCount[index]}, ${disabled} pages disabled`);
    if (table.aliasedCount[index] !== aliased) extension(`${where}: aliased count ${table.aliasedCount[index]}, ${aliased} pages aliased`);
  }

  for (const range of ranges) {
    for (let page = 0; page < range.pageCount; page++) {
      const type = range.pageType[page]!;
      const state = range.handlerState[page]!;
      if (range.slow[page] !== slowBits(type, state)) extension(`page ${hex(range.pageAddress(page))}: fast-path bits are stale`);
      if (!isAliasType(type)) continue;
      const covering = table.lookupAtOrBelow(range.pageAddress(page));
      const covered = covering >= 0 && table.last[covering]! >= range.pageAddress(page);
      if (state !== PageHandlerState.Disabled || !covered || types.kind(table.typeIndex[covering]!) !== HandlerKind.Mmio) {
        extension(`page ${hex(range.pageAddress(page))} is aliased (${type === PageType.Mmio2AliasMmio ? "MMIO2" : "host page"}) but not a disabled page of an MMIO handler`);
      }
      if (!range.aliases.has(page)) extension(`page ${hex(range.pageAddress(page))} is aliased but has no alias target`);
    }
  }

  // ---- extension: the arena-wide fast-path table (ranges' views, everything else slow) -------
  const covered = new Uint8Array(arenaSlow.length);
  for (const range of ranges) {
    if (range.slow.buffer !== arenaSlow.buffer) continue;
    const firstPage = range.start / PAGE_SIZE;
    if (range.slow.byteOffset !== arenaSlow.byteOffset + firstPage || range.slow.length !== range.pageCount) {
      extension(`range "${range.description}" at ${hex(range.start)}: its fast-path bits are not the arena's pages of the range`);
      continue;
    }
    covered.fill(1, firstPage, firstPage + range.pageCount);
  }
  for (let page = 0; page < arenaSlow.length; page++) {
    if (covered[page] === 0 && arenaSlow[page] !== (SLOW_READ | SLOW_WRITE)) {
      extension(`arena page ${hex(page * PAGE_SIZE)} belongs to no arena-backed range but is not marked slow`);
    }
  }

  return { errorCount, extensionErrorCount, findings };
}
