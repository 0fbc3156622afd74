/**
 * The int3 lookup structure of spec/dbgf.md §6: a 65 536-entry L1 table indexed by the low
 * 16 bits of the linear address, and, for L1 slots shared by several breakpoints, a search
 * tree of L2 nodes keyed by the upper 48 bits. Trees are AVL-balanced (spec §6.6 allows it),
 * so a slot holding thousands of breakpoints is still a short walk.
 *
 * Beside it sits a hash of int3 breakpoints by physical address, chained through the
 * records' `aliasNext` column, so "is this guest byte already patched?" (spec §4.2) and the
 * debugger's memory read cost a few loads instead of a scan.
 */
import { DbgfError, hex } from "./errors.js";
import { type BreakpointRecords, grown, KIND_INT3 } from "./records.js";
import { SlotPool } from "./slot-pool.js";
import { NIL } from "./types.js";

export const L1_SIZE = 0x1_0000;
/** End-of-tree marker of L2 child links. */
export const END = 0x3f_ffff;
export const L1_EMPTY = 0;
export const L1_DIRECT = 0x1000_0000;
export const L1_TREE = 0x2000_0000;
const PAYLOAD_MASK = 0x0fff_ffff;

const PHYSICAL_HASH_BITS = 17;

/** Upper 48 bits of a linear address given as two 32-bit lanes (exact in a double). */
export function l2Key(low: number, high: number): number {
  return high * 0x1_0000 + (low >>> 16);
}

function physicalHash(physical: number): number {
  const low = physical >>> 0;
  const high = (physical - low) / 0x1_0000_0000;
  return Math.imul(low ^ Math.imul(high, 0x85eb_ca6b), 0x9e37_79b1) >>> (32 - PHYSICAL_HASH_BITS);
}

export class Int3Index {
  /** Null until the first breakpoint of any kind is set (spec §4, lazy initialisation). */
  l1: Uint32Array | null = null;
  readonly nodes: SlotPool;
  key = new Float64Array(0);
  handle = new Uint32Array(0);
  left = new Uint32Array(0);
  right = new Uint32Array(0);
  /** AVL height of the subtree rooted at the node (a leaf is 1). */
  height = new Uint8Array(0);
  /** Heads of the physical-address hash chains (NIL = empty). */
  private physicalBuckets: Uint32Array | null = null;
  /** Node handed back by removeMinimum. */
  private detached = END;

  constructor(
    private readonly records: BreakpointRecords,
    nodeChunkSize: number,
    nodeChunks: number,
  ) {
    this.nodes = new SlotPool(nodeChunkSize, nodeChunks, (capacity) => {
      const length = this.nodes.reserve(capacity, this.key.length);
      if (length === this.key.length) return;
      this.key = grown(this.key, new Float64Array(length));
      this.handle = grown(this.handle, new Uint32Array(length));
      this.left = grown(this.left, new Uint32Array(length));
      this.right = grown(this.right, new Uint32Array(length));
      this.height = grown(this.height, new Uint8Array(length));
    });
  }

  ensure(): void {
    if (this.l1 !== null) return;
    this.l1 = new Uint32Array(L1_SIZE);
    this.physicalBuckets = new Uint32Array(1 << PHYSICAL_HASH_BITS).fill(NIL);
  }

  get byteLength(): number {
    return (
      (this.l1?.byteLength ?? 0) +
      (this.physicalBuckets?.byteLength ?? 0) +
      this.key.byteLength +
      this.handle.byteLength +
      this.left.byteLength +
      this.right.byteLength +
      this.height.byteLength +
      this.nodes.byteLength
    );
  }

  /**
   * The int3 breakpoint at a linear address, or NIL (spec §6.5). Enabled or not. Allocates
   * nothing; throws only on a corrupt table.
   */
  lookup(low: number, high: number): number {
    const l1 = this.l1;
    if (l1 === null) return NIL;
    const entry = l1[low & 0xffff]!;
    if (entry === L1_EMPTY) return NIL;
    const type = entry >>> 28;
    const records = this.records;
    if (type === 1) {
      const handle = entry & PAYLOAD_MASK;
      if (handle >= records.kind.length || records.kind[handle] !== KIND_INT3) throw l1Failed(low & 0xffff, entry);
      return records.addressLow[handle] === low && records.addressHigh[handle] === high ? handle : NIL;
    }
    if (type !== 2) throw l1Failed(low & 0xffff, entry);
    const wanted = l2Key(low, high);
    const key = this.key;
    const left = this.left;
    const right = this.right;
    const capacity = key.length;
    let node = entry & PAYLOAD_MASK;
    // Bounded by the nodes in use, so a cycle cannot hang the hit path but no well-formed tree is refused.
    for (let steps = this.nodes.inUse; steps >= 0; steps--) {
      if (node >= capacity) break;
      const nodeKey = key[node]!;
      if (wanted === nodeKey) {
        const handle = this.handle[node]!;
        if (handle >= records.kind.length || records.kind[handle] !== KIND_INT3) break;
        return handle;
      }
      node = wanted < nodeKey ? left[node]! : right[node]!;
      if (node === END) return NIL;
    }
    throw new DbgfError("L2LookupFailed", `the int3 tree of L1 slot ${hex(low & 0xffff)} is corrupt (node ${hex(node)})`);
  }

  /** Links int3 breakpoint `handle` at the linear address (spec §6.3). Nothing changes on failure. */
  insert(handle: number, low: number, high: number): void {
    const l1 = this.l1!;
    const slot = low & 0xffff;
    const entry = l1[slot]!;
    const key = l2Key(low, high);
    if (entry === L1_EMPTY) {
      l1[slot] = L1_DIRECT | handle;
      return;
    }
    if (entry >>> 28 === 1) {
      const other = entry & PAYLOAD_MASK;
      const otherKey = l2Key(this.records.addressLow[other]!, this.records.addressHigh[other]!);
      if (otherKey === key) throw equalKey(slot, key);
      const first = this.allocateNode(otherKey, other);
      let second: number;
      try {
        second = this.allocateNode(key, handle);
      } catch (error) {
        this.freeNode(first);
        throw error;
      }
      l1[slot] = L1_TREE | this.insertNode(first, second, key, 0);
      return;
    }
    if (entry >>> 28 !== 2) throw l1Failed(slot, entry);
    const node = this.allocateNode(key, handle);
    try {
      l1[slot] = L1_TREE | this.insertNode(entry & PAYLOAD_MASK, node, key, 0);
    } catch (error) {
      this.freeNode(node);
      throw error;
    }
  }

  /** Unlinks int3 breakpoint `handle` (spec §6.4); a tree left with one node collapses to a direct entry. */
  remove(handle: number, low: number, high: number): void {
    const l1 = this.l1!;
    const slot = low & 0xffff;
    const entry = l1[slot]!;
    if (entry === (L1_DIRECT | handle)) {
      l1[slot] = L1_EMPTY;
      return;
    }
    if (entry >>> 28 !== 2) throw new DbgfError("L1LookupFailed", `int3 breakpoint ${hex(handle)} is not in L1 slot ${hex(slot)} (entry ${hex(entry)})`);
    const root = this.removeKey(entry & PAYLOAD_MASK, l2Key(low, high), handle, 0);
    if (root === END) throw new DbgfError("InternalError", `L1 slot ${hex(slot)} held a one-node tree`);
    if (this.left[root] === END && this.right[root] === END) {
      l1[slot] = L1_DIRECT | this.handle[root]!;
      this.freeNode(root);
    } else {
      l1[slot] = L1_TREE | root;
    }
  }

  /** The int3 breakpoint patching this physical byte, or NIL. */
  findPhysical(physical: number): number {
    const buckets = this.physicalBuckets;
    if (buckets === null) return NIL;
    const records = this.records;
    for (let handle = buckets[physicalHash(physical)]!; handle !== NIL; handle = records.aliasNext[handle]!) {
      if (records.physical[handle] === physical) return handle;
    }
    return NIL;
  }

  addPhysical(handle: number): void {
    const buckets = this.physicalBuckets!;
    const bucket = physicalHash(this.records.physical[handle]!);
    this.records.aliasNext[handle] = buckets[bucket]!;
    buckets[bucket] = handle;
  }

  removePhysical(handle: number): void {
    const buckets = this.physicalBuckets!;
    const records = this.records;
    const bucket = physicalHash(records.physical[handle]!);
    let current = buckets[bucket]!;
    if (current === handle) {
      buckets[bucket] = records.aliasNext[handle]!;
      return;
    }
    while (current !== NIL) {
      const next = records.aliasNext[current]!;
      if (next === handle) {
        records.aliasNext[current] = records.aliasNext[handle]!;
        return;
      }
      current = next;
    }
    throw new DbgfError("InternalError", `int3 breakpoint ${hex(handle)} is missing from the physical-address index`);
  }

  /** In-order keys of the tree at an L1 slot ([] when the slot holds no tree). */
  treeKeys(slot: number): bigint[] {
    const entry = this.l1?.[slot] ?? 0;
    const keys: bigint[] = [];
    if (entry >>> 28 !== 2) return keys;
    const visit = (node: number, depth: number): void => {
      if (node === END) return;
      if (node >= this.key.length || depth > this.nodes.inUse) throw new DbgfError("L2LookupFailed", `corrupt tree at L1 slot ${hex(slot)}`);
      visit(this.left[node]!, depth + 1);
      keys.push(BigInt(this.key[node]!));
      visit(this.right[node]!, depth + 1);
    };
    visit(entry & PAYLOAD_MASK, 0);
    return keys;
  }

  /**
   * Checks every structural invariant and returns the handles reachable from L1 (spec §6.6):
   * BST order, AVL heights and balance, no node reachable twice, nodes in use = tree nodes,
   * no one-node trees, every tree node's handle an int3 breakpoint with that key and slot.
   */
  verify(): number[] {
    const reachable: number[] = [];
    const l1 = this.l1;
    if (l1 === null) {
      if (this.nodes.inUse !== 0) throw new DbgfError("InternalError", "L2 nodes in use without an L1 table");
      return reachable;
    }
    const seen = new Set<number>();
    const records = this.records;
    const fail = (slot: number, what: string): never => {
      throw new DbgfError("InternalError", `L1 slot ${hex(slot)}: ${what}`);
    };
    const walk = (slot: number, node: number, low: number, high: number): number => {
      if (node === END) return 0;
      if (!this.nodes.isAllocated(node)) fail(slot, `node ${hex(node)} is not allocated`);
      if (seen.has(node)) fail(slot, `node ${hex(node)} is reachable twice`);
      seen.add(node);
      const key = this.key[node]!;
      if (!(key > low && key < high)) fail(slot, `node ${hex(node)} key ${hex(key)} breaks the search order`);
      const handle = this.handle[node]!;
      if (records.kind[handle] !== KIND_INT3) fail(slot, `node ${hex(node)} names ${hex(handle)}, not an int3 breakpoint`);
      if ((records.addressLow[handle]! & 0xffff) !== slot || l2Key(records.addressLow[handle]!, records.addressHigh[handle]!) !== key) {
        fail(slot, `node ${hex(node)} key does not match breakpoint ${hex(handle)}`);
      }
      reachable.push(handle);
      const leftHeight = walk(slot, this.left[node]!, low, key);
      const rightHeight = walk(slot, this.right[node]!, key, high);
      if (Math.abs(leftHeight - rightHeight) > 1) fail(slot, `node ${hex(node)} is out of balance`);
      const height = Math.max(leftHeight, rightHeight) + 1;
      if (this.height[node] !== height) fail(slot, `node ${hex(node)} records height ${this.height[node]}, is ${height}`);
      return height;
    };
    for (let slot = 0; slot < L1_SIZE; slot++) {
      const entry = l1[slot]!;
      if (entry === L1_EMPTY) continue;
      const type = entry >>> 28;
      if (type === 1) {
        const handle = entry & PAYLOAD_MASK;
        if (records.kind[handle] !== KIND_INT3 || (records.addressLow[handle]! & 0xffff) !== slot) fail(slot, `direct entry names ${hex(handle)}`);
        reachable.push(handle);
      } else if (type === 2) {
        const root = entry & PAYLOAD_MASK;
        if (this.left[root] === END && this.right[root] === END) fail(slot, "holds a one-node tree");
        walk(slot, root, -1, Infinity);
      } else {
        fail(slot, `entry ${hex(entry)} has type ${type}`);
      }
    }
    if (seen.size !== this.nodes.inUse) throw new DbgfError("InternalError", `${this.nodes.inUse} L2 nodes in use, ${seen.size} in trees`);
    return reachable;
  }

  private allocateNode(key: number, handle: number): number {
    const node = this.nodes.allocate();
    if (node < 0) throw poolExhausted(this.nodes.maxCapacity);
    this.initNode(node, key, handle);
    return node;
  }

  private initNode(node: number, key: number, handle: number): void {
    this.key[node] = key;
    this.handle[node] = handle;
    this.left[node] = END;
    this.right[node] = END;
    this.height[node] = 1;
  }

  private freeNode(node: number): void {
    this.key[node] = 0;
    this.handle[node] = 0;
    this.left[node] = 0;
    this.right[node] = 0;
    this.height[node] = 0;
    this.nodes.free(node);
  }

  /** Inserts `node` (key `key`) below `root`; returns the subtree's new root. Changes nothing if it throws. */
  private insertNode(root: number, node: number, key: number, depth: number): number {
    if (root === END) return node;
    if (root >= this.key.length || depth > this.nodes.inUse) throw new DbgfError("L2LookupFailed", `corrupt int3 tree (node ${hex(root)})`);
    const rootKey = this.key[root]!;
    if (key < rootKey) this.left[root] = this.insertNode(this.left[root]!, node, key, depth + 1);
    else if (key > rootKey) this.right[root] = this.insertNode(this.right[root]!, node, key, depth + 1);
    else throw equalKey(this.records.addressLow[this.handle[root]!]! & 0xffff, key);
    return this.rebalance(root);
  }

  /** Removes the node with `key` below `root`; returns the subtree's new root. Changes nothing if it throws. */
  private removeKey(root: number, key: number, handle: number, depth: number): number {
    if (root === END || root >= this.key.length || depth > this.nodes.inUse) {
      throw new DbgfError("L2LookupFailed", `int3 breakpoint ${hex(handle)} (key ${hex(key)}) is not in its tree`);
    }
    const rootKey = this.key[root]!;
    if (key < rootKey) {
      this.left[root] = this.removeKey(this.left[root]!, key, handle, depth + 1);
      return this.rebalance(root);
    }
    if (key > rootKey) {
      this.right[root] = this.removeKey(this.right[root]!, key, handle, depth + 1);
      return this.rebalance(root);
    }
    if (this.handle[root] !== handle) throw new DbgfError("L2LookupFailed", `tree node for key ${hex(key)} names ${hex(this.handle[root]!)}, not ${hex(handle)}`);
    const left = this.left[root]!;
    const right = this.right[root]!;
    this.freeNode(root);
    if (left === END) return right;
    if (right === END) return left;
    // Two children: the in-order successor (leftmost of the right subtree) takes the node's place.
    const rest = this.removeMinimum(right);
    const successor = this.detached;
    this.left[successor] = left;
    this.right[successor] = rest;
    return this.rebalance(successor);
  }

  private removeMinimum(node: number): number {
    const left = this.left[node]!;
    if (left === END) {
      this.detached = node;
      return this.right[node]!;
    }
    this.left[node] = this.removeMinimum(left);
    return this.rebalance(node);
  }

  private nodeHeight(node: number): number {
    return node === END ? 0 : this.height[node]!;
  }

  private rebalance(node: number): number {
    const left = this.left[node]!;
    const right = this.right[node]!;
    const leftHeight = this.nodeHeight(left);
    const rightHeight = this.nodeHeight(right);
    if (leftHeight > rightHeight + 1) {
      if (this.nodeHeight(this.left[left]!) < this.nodeHeight(this.right[left]!)) this.left[node] = this.rotateLeft(left);
      return this.rotateRight(node);
    }
    if (rightHeight > leftHeight + 1) {
      if (this.nodeHeight(this.right[right]!) < this.nodeHeight(this.left[right]!)) this.right[node] = this.rotateRight(right);
      return this.rotateLeft(node);
    }
    this.height[node] = (leftHeight > rightHeight ? leftHeight : rightHeight) + 1;
    return node;
  }

  private updateHeight(node: number): void {
    const leftHeight = this.nodeHeight(this.left[node]!);
    const rightHeight = this.nodeHeight(this.right[node]!);
    this.height[node] = (leftHeight > rightHeight ? leftHeight : rightHeight) + 1;
  }

  private rotateRight(node: number): number {
    const pivot = this.left[node]!;
    this.left[node] = this.right[pivot]!;
    this.right[pivot] = node;
    this.updateHeight(node);
    this.updateHeight(pivot);
    return pivot;
  }

  private rotateLeft(node: number): number {
    const pivot = this.right[node]!;
    this.right[node] = this.left[pivot]!;
    this.left[pivot] = node;
    this.updateHeight(node);
    this.updateHeight(pivot);
    return pivot;
  }
}

function l1Failed(slot: number, entry: number): DbgfError {
  return new DbgfError("L1LookupFailed", `L1 slot ${hex(slot)} holds the invalid entry ${hex(entry)}`);
}

function equalKey(slot: number, key: number): DbgfError {
  return new DbgfError("L2LookupFailed", `L1 slot ${hex(slot)} already holds key ${hex(key)}`);
}

function poolExhausted(capacity: number): DbgfError {
  return new DbgfError("NoMoreBreakpointSlots", `all ${capacity} L2 tree nodes are in use`);
}
