/**
 * `vmmkit bench pgm`: the cost of guest-physical accesses through @vmmkit/pgm's public API
 * (spec/pgm.md §8, B1–B3 and B6).
 *
 * - B1/B2: 1-, 2- and 4-byte reads and writes at random (naturally aligned) addresses in
 *   the handler-free first 16 MiB of a 64 MiB RAM range, with 0, 100 and 10 000 handlers
 *   registered on other pages of the same range (full-page and sub-page write handlers,
 *   every tenth an all-access one), next to the same loop over a bare Uint8Array.
 * - B3/B4: reads of all-access pages and writes of write-handled pages (trivial callbacks
 *   answering Default) at random, and sequentially, with 100 and 10 000 handlers.
 * - B6: one register + deregister of a one-page handler with 100 and 10 000 live ones.
 * - B7: an MMIO2 dirty-tracking cycle over 16 MiB: one write per page, then collectDirtyPages.
 * - B8: the consistency checker over 1 GiB of RAM with 10 000 handlers.
 */
import { AccessResult, HandlerKind, PhysicalMemory, type AccessSize, type HandlerTypeHandle } from "@vmmkit/pgm";
import { registerBenchmark, type BenchOptions } from "./registry.js";
import { ratio, type BenchReport, type Measurement, type Ratio } from "./report.js";
import { timeOperations, type TimedOperation } from "./timing.js";

const MIB = 2 ** 20;
const RAM_SIZE = 64 * MIB;
/** Accesses of the handler-free benchmarks land below this. */
const FREE_ZONE = 16 * MIB;
const PAGE = 4096;
/** Handlers start here, one per page, leaving every eighth page free for the register benchmark. */
const HANDLER_BASE = FREE_ZONE;
const ACCESSES_PER_CALL = 4096;
const HANDLER_COUNTS = [0, 100, 10_000] as const;

/** Keeps results alive so the loops cannot be optimised away. */
let sink = 0;

interface Setup {
  readonly memory: PhysicalMemory;
  readonly writeType: HandlerTypeHandle;
  /** Page addresses of all-access handlers and of full-page write handlers. */
  readonly allPages: number[];
  readonly writePages: number[];
  /** Pages the register benchmark may use (no handler on them). */
  readonly freePages: number[];
}

const handlerPage = (i: number) => HANDLER_BASE + (i + Math.floor(i / 7)) * PAGE;

function setUp(handlerCount: number): Setup {
  const memory = new PhysicalMemory({ arenaSize: RAM_SIZE, handlerCapacity: 16_384 });
  memory.addRam(0, RAM_SIZE, "ram");
  const onAccess = () => AccessResult.Default;
  const writeType = memory.registerHandlerType({ kind: HandlerKind.Write, onAccess, description: "bench write" });
  const allType = memory.registerHandlerType({ kind: HandlerKind.All, onAccess, description: "bench all" });
  const allPages: number[] = [];
  const writePages: number[] = [];
  for (let i = 0; i < handlerCount; i++) {
    const page = handlerPage(i);
    if (i % 10 === 0) {
      memory.register(page, page + PAGE - 1, allType, i);
      allPages.push(page);
    } else if (i % 3 === 1) {
      memory.register(page + 0x100, page + 0x2ff, writeType, i);
    } else {
      memory.register(page, page + PAGE - 1, writeType, i);
      writePages.push(page);
    }
  }
  const freePages: number[] = [];
  for (let i = 7; i < Math.max(handlerCount, 8); i += 7) freePages.push(HANDLER_BASE + (i + Math.floor(i / 7) - 1) * PAGE);
  return { memory, writeType, allPages, writePages, freePages };
}

/** A deterministic generator, so every run measures the same addresses. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function randomAddresses(size: number, zone: number, seed: number): Int32Array {
  const next = random(seed);
  const addresses = new Int32Array(ACCESSES_PER_CALL);
  for (let i = 0; i < addresses.length; i++) addresses[i] = Math.floor((next() * zone) / size) * size;
  return addresses;
}

function addressesInPages(pages: readonly number[], sequential: boolean, seed: number): Int32Array {
  const next = random(seed);
  const addresses = new Int32Array(ACCESSES_PER_CALL);
  for (let i = 0; i < addresses.length; i++) {
    const page = sequential ? pages[Math.floor(i / 64) % pages.length]! : pages[Math.floor(next() * pages.length)]!;
    addresses[i] = page + ((sequential ? (i % 64) * 64 : Math.floor(next() * 1024) * 4) & 0xffc);
  }
  return addresses;
}

function readThrough(memory: PhysicalMemory, addresses: Int32Array, size: AccessSize): () => void {
  return () => {
    let sum = 0;
    for (let i = 0; i < addresses.length; i++) sum += memory.read(addresses[i]!, size);
    sink ^= sum;
  };
}

function writeThrough(memory: PhysicalMemory, addresses: Int32Array, size: AccessSize): () => void {
  return () => {
    for (let i = 0; i < addresses.length; i++) memory.write(addresses[i]!, i, size);
  };
}

/** The baseline: the same loops straight on a Uint8Array, composing bytes as a guest access does. */
function readBare(bytes: Uint8Array, addresses: Int32Array, size: AccessSize): () => void {
  return () => {
    let sum = 0;
    for (let i = 0; i < addresses.length; i++) {
      const a = addresses[i]!;
      if (size === 1) sum += bytes[a]!;
      else if (size === 2) sum += bytes[a]! | (bytes[a + 1]! << 8);
      else sum += (bytes[a]! | (bytes[a + 1]! << 8) | (bytes[a + 2]! << 16) | (bytes[a + 3]! << 24)) >>> 0;
    }
    sink ^= sum;
  };
}

function writeBare(bytes: Uint8Array, addresses: Int32Array, size: AccessSize): () => void {
  return () => {
    for (let i = 0; i < addresses.length; i++) {
      const a = addresses[i]!;
      bytes[a] = i;
      if (size >= 2) bytes[a + 1] = i >>> 8;
      if (size === 4) {
        bytes[a + 2] = i >>> 16;
        bytes[a + 3] = i >>> 24;
      }
    }
  };
}

const countLabel = (count: number) => (count === 10_000 ? "10 000" : String(count));

export async function runPgmBenchmark(options: BenchOptions): Promise<BenchReport> {
  const setups = new Map(HANDLER_COUNTS.map((count) => [count, setUp(count)]));
  const bare = new Uint8Array(FREE_ZONE);
  const operations: TimedOperation[] = [];
  const ratios: Array<() => Ratio> = [];
  const measured: Measurement[] = [];

  for (const size of [1, 2, 4] as const) {
    const addresses = randomAddresses(size, FREE_ZONE, 0x5eed + size);
    operations.push({ name: `bare read ${size} B`, run: readBare(bare, addresses, size), operationsPerCall: ACCESSES_PER_CALL });
    operations.push({ name: `bare write ${size} B`, run: writeBare(bare, addresses, size), operationsPerCall: ACCESSES_PER_CALL });
    for (const count of HANDLER_COUNTS) {
      const { memory } = setups.get(count)!;
      operations.push({ name: `read ${size} B, ${countLabel(count)} handlers`, run: readThrough(memory, addresses, size), operationsPerCall: ACCESSES_PER_CALL });
      operations.push({ name: `write ${size} B, ${countLabel(count)} handlers`, run: writeThrough(memory, addresses, size), operationsPerCall: ACCESSES_PER_CALL });
    }
    for (const access of ["read", "write"] as const) {
      ratios.push(() => ratio(measured, `${access} ${size} B handler-free / bare`, `${access} ${size} B, 0 handlers`, `bare ${access} ${size} B`, "≤ 2"));
      ratios.push(() =>
        ratio(measured, `${access} ${size} B, 10 000 / 0 handlers`, `${access} ${size} B, 10 000 handlers`, `${access} ${size} B, 0 handlers`, "≤ 1.1"),
      );
    }
  }

  for (const count of [100, 10_000] as const) {
    const { memory, allPages, writePages } = setups.get(count)!;
    const label = countLabel(count);
    operations.push({
      name: `read 4 B of an all-access page, random, ${label} handlers`,
      run: readThrough(memory, addressesInPages(allPages, false, count), 4),
      operationsPerCall: ACCESSES_PER_CALL,
    });
    operations.push({
      name: `write 4 B to a write-handled page, random, ${label} handlers`,
      run: writeThrough(memory, addressesInPages(writePages, false, count + 1), 4),
      operationsPerCall: ACCESSES_PER_CALL,
    });
    operations.push({
      name: `write 4 B to a write-handled page, sequential, ${label} handlers`,
      run: writeThrough(memory, addressesInPages(writePages, true, count + 2), 4),
      operationsPerCall: ACCESSES_PER_CALL,
    });
  }
  for (const kind of ["read 4 B of an all-access page, random", "write 4 B to a write-handled page, random"]) {
    ratios.push(() => ratio(measured, `${kind}: 10 000 / 100 handlers`, `${kind}, 10 000 handlers`, `${kind}, 100 handlers`, "≈ log n: ≤ 2"));
  }

  for (const count of [100, 10_000] as const) {
    const { memory, writeType, freePages } = setups.get(count)!;
    let next = 0;
    operations.push({
      name: `register + deregister one page, ${countLabel(count)} handlers`,
      run: () => {
        const page = freePages[next]!;
        next = (next + 1) % freePages.length;
        memory.register(page, page + PAGE - 1, writeType, null);
        memory.deregister(page);
      },
      operationsPerCall: 1,
    });
  }
  ratios.push(() =>
    ratio(measured, "register + deregister: 10 000 / 100 handlers", "register + deregister one page, 10 000 handlers", "register + deregister one page, 100 handlers"),
  );

  // B7: every page of a dirty-tracked 16 MiB MMIO2 region written once, then collected.
  const tracked = new PhysicalMemory();
  const region = tracked.addMmio2(0x100000000, 16 * MIB, "bench", "framebuffer", { dirtyTracking: true });
  const bitmap = new Uint8Array(region.size / PAGE / 8);
  operations.push({
    name: "MMIO2 dirty cycle, 16 MiB: write every page, collect",
    run: () => {
      for (let address = region.start; address <= region.lastAddress; address += PAGE) tracked.write(address, 1, 1);
      tracked.collectDirtyPages(region.start, bitmap);
    },
    operationsPerCall: 1,
  });

  // B8: the checker walks every page of 1 GiB and every handler.
  const large = new PhysicalMemory({ handlerCapacity: 16_384 });
  large.addRam(0, 1024 * MIB, "1 GiB");
  const largeType = large.registerHandlerType({ kind: HandlerKind.Write, onAccess: () => AccessResult.Default, description: "bench" });
  for (let i = 0; i < 10_000; i++) large.register(i * 16 * PAGE, i * 16 * PAGE + PAGE - 1, largeType, i);
  operations.push({
    name: "consistency checker, 1 GiB RAM, 10 000 handlers",
    run: () => {
      sink ^= large.checkHandlersAndPagesInSync().errorCount;
    },
    operationsPerCall: 1,
  });

  measured.push(...(await timeOperations(operations, options)));
  for (const [count, { memory }] of setups) {
    const report = memory.checkHandlersAndPagesInSync();
    if (report.errorCount + report.extensionErrorCount > 0) throw new Error(`pgm bench: inconsistent state with ${count} handlers: ${report.findings[0]}`);
  }
  return {
    benchmark: "pgm",
    measurements: measured,
    ratios: ratios.map((make) => make()),
    notes: [
      `${ACCESSES_PER_CALL} accesses per timed call; RAM range ${RAM_SIZE / MIB} MiB, handler-free accesses within its first ${FREE_ZONE / MIB} MiB; handler pool capacity 16 384`,
      "handlers: every tenth all-access (one page), the others one-page or 512-byte write handlers, on pages above the handler-free zone",
    ],
  };
}

registerBenchmark({
  name: "pgm",
  description: "guest-physical reads and writes through @vmmkit/pgm with 0, 100 and 10 000 access handlers; handler registration",
  run: runPgmBenchmark,
});
