/**
 * The two collaborators PhysicalMemory tells about handler changes (spec §3.5). Both are
 * owned here, as the caller's contract, and satisfied structurally by their providers:
 * packages/whpx-sim (the execution engine) and packages/cpu (paging / TLBs). With nothing
 * attached nothing is sent.
 */
import type { HandlerKind, PageType } from "./constants.js";

/**
 * The execution engine (VirtualBox's NEM). It keeps its own mapping of guest memory in
 * step with handler state: a page under a write handler must make guest writes leave the
 * fast path (reads may stay fast), a page under an all-access or MMIO handler must make
 * every access leave it. An engine that needs per-page bookkeeping returns a small number
 * (0–3) from the page calls; PhysicalMemory stores it per page and shows it in `pageInfo`.
 */
export interface ExecutionEngineHooks {
  /**
   * True when the engine only supports a simplified memory mode in which pages cannot be
   * aliased; the alias operations then fail with ERR_PGM_NOT_SUPPORTED_IN_NEM_MODE.
   */
  readonly simplifiedMemoryMode: boolean;
  /** After every successful registration; `start`/`size` are the raw range (may be sub-page). */
  handlerRegistered(kind: HandlerKind, start: number, size: number): void;
  /**
   * After a deregistration (and after a failed modify, for the old range). The range is
   * adjusted to the whole pages the handler no longer shares with another one; nothing is
   * sent when there are none. `backing` is those pages' own bytes (null for MMIO). A
   * returned number becomes the engine state of all those pages.
   */
  handlerDeregistered(kind: HandlerKind, start: number, size: number, backing: Uint8Array | null): number | void;
  /** After a successful modify. `restoreAsRam` is true unless the handler is MMIO. */
  handlerModified(kind: HandlerKind, oldStart: number, newStart: number, size: number, restoreAsRam: boolean): void;
  /**
   * A page's handler state changed (arm, disarm, recalculation, temp-off, reset).
   * `protection` is a PageProtection bit set: what the guest may do without exiting.
   * `backing` is the page's bytes (null for MMIO).
   */
  pageProtectionChanged(pageAddress: number, backing: Uint8Array | null, protection: number, pageType: PageType): number | void;
  /** A page's backing changed (aliased to an MMIO2 or host page, or restored to plain MMIO). */
  pageBackingChanged(
    pageAddress: number,
    oldBacking: Uint8Array | null,
    newBacking: Uint8Array | null,
    protection: number,
    pageType: PageType,
  ): number | void;
}

/** What {@link PagingHooks.pageStateRaised} may answer. */
export interface PageRaisedAnswer {
  /** Flush every CPU's TLB once, after the current operation. */
  readonly flushAll?: boolean;
  /** The cached mappings could not be fixed precisely; registration reports OK_SHADOW_RESYNC_PENDING. */
  readonly resyncPending?: boolean;
}

/**
 * The CPU side (VirtualBox's shadow paging, page-mapping cache and emulator TLB): caches of
 * translations or direct views of guest pages that must not outlive a stricter page state.
 */
export interface PagingHooks {
  /** Drop cached translations and direct views of this page before the next guest access. */
  pageStateRaised(pageAddress: number): PageRaisedAnswer | void;
  flushAllTlbs(): void;
  /** Drop the cached mapping of one page (it was aliased or restored). */
  invalidatePageMapping(pageAddress: number): void;
  /** Drop every cached physical-address decision of the instruction emulator. */
  invalidateAllPhysicalTlbs(): void;
}
