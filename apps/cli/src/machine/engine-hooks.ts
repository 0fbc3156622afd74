/**
 * pgm's ExecutionEngineHooks satisfied with whpx-sim's API: when a page's handler state
 * changes, the accelerator's mapping of it follows, so guest accesses that a handler must
 * see leave the fast path (a memoryAccess exit, completed through the emulator helper and
 * `PhysicalMemory.read`/`write`) and all others stay in it.
 *
 * - A page under a write handler is mapped read + execute: guest writes exit and reach the
 *   handler, reads and fetches stay fast.
 * - A page under an all-access handler is mapped with no access: every access exits.
 * - MMIO pages are never mapped (the range listener in build-machine.ts leaves them out),
 *   except while aliased to MMIO2 or a host page, when the alias target is mapped there.
 *
 * pgm sends `pageProtectionChanged` for every page whose state changes (arm, disarm, the
 * recalculation of shared edge pages, temp-off, reset), so the range-level calls carry
 * nothing this adapter needs.
 */
import { HandlerKind, PAGE_SIZE, PageProtection, PageType, type ExecutionEngineHooks, type PhysicalMemory } from "@vmmkit/pgm";
import { WhvMapGpaRangeFlags, type WhvPartitionHandle, type WhvPlatform } from "@vmmkit/whpx-sim";

/** whpx-sim maps guest-physical addresses below 4 GiB only. */
const MAPPABLE_LIMIT = 2 ** 32;

/** WHPX map flags for a pgm PageProtection bit set. */
export function mapFlagsFor(protection: number): number {
  let flags = WhvMapGpaRangeFlags.none;
  if (protection & PageProtection.Read) flags |= WhvMapGpaRangeFlags.read;
  if (protection & PageProtection.Write) flags |= WhvMapGpaRangeFlags.write;
  if (protection & PageProtection.Execute) flags |= WhvMapGpaRangeFlags.execute;
  return flags;
}

const isAlias = (type: PageType): boolean => type === PageType.Mmio2AliasMmio || type === PageType.SpecialAliasMmio;

/**
 * The hooks for `memory.attachEngine`. Pages that already carry handler state (handlers
 * registered before the engine is attached) are brought in line with whpx-sim first, so
 * attaching late is the same as attaching early. Call after the RAM and ROM ranges are
 * mapped into the partition.
 */
export function whpxEngineHooks(memory: PhysicalMemory, platform: WhvPlatform, partition: WhvPartitionHandle): ExecutionEngineHooks {
  const hooks: ExecutionEngineHooks = {
    // whpx-sim maps any Uint8Array at any page, so MMIO pages can be aliased.
    simplifiedMemoryMode: false,
    handlerRegistered() {},
    handlerDeregistered() {},
    handlerModified() {},
    pageProtectionChanged(pageAddress, backing, protection) {
      // No backing: an MMIO page, which is not mapped and so exits on every access already.
      if (backing === null || pageAddress + PAGE_SIZE > MAPPABLE_LIMIT) return;
      platform.protectGpaRange(partition, BigInt(pageAddress), BigInt(PAGE_SIZE), mapFlagsFor(protection));
    },
    pageBackingChanged(pageAddress, oldBacking, newBacking, protection) {
      if (pageAddress + PAGE_SIZE > MAPPABLE_LIMIT) return;
      if (newBacking !== null) platform.mapGpaRange(partition, newBacking, BigInt(pageAddress), BigInt(PAGE_SIZE), mapFlagsFor(protection));
      else if (oldBacking !== null) platform.unmapGpaRange(partition, BigInt(pageAddress), BigInt(PAGE_SIZE));
    },
  };
  for (const handler of memory.handlers()) {
    if (handler.kind === HandlerKind.Mmio && handler.aliasedCount === 0) continue; // unmapped already
    for (let page = handler.start - (handler.start % PAGE_SIZE); page <= handler.last; page += PAGE_SIZE) {
      const info = memory.pageInfo(page)!;
      if (isAlias(info.type)) hooks.pageBackingChanged(page, null, info.backing, info.protection, info.type);
      else hooks.pageProtectionChanged(page, info.backing, info.protection, info.type);
    }
  }
  return hooks;
}
