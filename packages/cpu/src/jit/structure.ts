/**
 * Orders a region's basic blocks for structured JavaScript: every loop's blocks contiguous
 * and headed by its header, everything else in topological order, so the generator can
 * express back edges as `continue` to a labeled `for (;;)` and forward edges as `break` out
 * of labeled blocks. V8 optimises that shape far better than a `switch` state machine.
 * Irreducible control flow (a loop entered other than through one header) yields null.
 */

export interface StructuredRegion {
  /** Basic blocks (by id) in emission order. */
  readonly order: readonly number[];
  /** Loop header → the ids of the blocks in that loop (header included). */
  readonly loops: ReadonlyMap<number, ReadonlySet<number>>;
  /** Block → header of the innermost loop containing it (absent: not in a loop). */
  readonly innermostLoop: ReadonlyMap<number, number>;
  /** Loop header → header of the enclosing loop (absent: top level). */
  readonly parentLoop: ReadonlyMap<number, number>;
}

/**
 * `successors` maps each block id to the ids of its successors inside the region (edges to
 * code outside the region are left out). `entry` is the region's entry block.
 */
export function structureRegion(entry: number, successors: ReadonlyMap<number, readonly number[]>): StructuredRegion | null {
  // Depth-first search: reverse postorder and back edges.
  const postorder: number[] = [];
  const onStack = new Set<number>();
  const visited = new Set<number>();
  const backEdges: [number, number][] = [];
  const visit = (node: number): void => {
    visited.add(node);
    onStack.add(node);
    for (const next of successors.get(node) ?? []) {
      if (onStack.has(next)) backEdges.push([node, next]);
      else if (!visited.has(next)) visit(next);
    }
    onStack.delete(node);
    postorder.push(node);
  };
  visit(entry);
  const reversePostorder = postorder.slice().reverse();
  const rank = new Map(reversePostorder.map((node, i) => [node, i]));

  // Dominators (Cooper, Harvey, Kennedy).
  const predecessors = new Map<number, number[]>(reversePostorder.map((node) => [node, []]));
  for (const node of reversePostorder) for (const next of successors.get(node) ?? []) predecessors.get(next)?.push(node);
  const dominator = new Map<number, number>([[entry, entry]]);
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (rank.get(a)! > rank.get(b)!) a = dominator.get(a)!;
      while (rank.get(b)! > rank.get(a)!) b = dominator.get(b)!;
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const node of reversePostorder) {
      if (node === entry) continue;
      let candidate: number | undefined;
      for (const predecessor of predecessors.get(node)!) {
        if (!dominator.has(predecessor)) continue;
        candidate = candidate === undefined ? predecessor : intersect(candidate, predecessor);
      }
      if (candidate !== undefined && dominator.get(node) !== candidate) {
        dominator.set(node, candidate);
        changed = true;
      }
    }
  }
  const dominates = (a: number, b: number): boolean => {
    for (let node = b; ; node = dominator.get(node)!) {
      if (node === a) return true;
      if (node === entry) return false;
    }
  };

  // Natural loops, one per header (back edges to the same header share a loop).
  const loops = new Map<number, Set<number>>();
  for (const [source, header] of backEdges) {
    if (!dominates(header, source)) return null; // irreducible
    const body = loops.get(header) ?? new Set<number>([header]);
    loops.set(header, body);
    const stack = [source];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (body.has(node)) continue;
      body.add(node);
      for (const predecessor of predecessors.get(node)!) stack.push(predecessor);
    }
  }

  // Nesting: the innermost loop of each block, and each loop's parent.
  const bySize = [...loops.entries()].sort((a, b) => a[1].size - b[1].size);
  const innermostLoop = new Map<number, number>();
  for (const [header, body] of bySize) for (const node of body) if (!innermostLoop.has(node)) innermostLoop.set(node, header);
  const parentLoop = new Map<number, number>();
  for (const [header, body] of bySize) {
    const parent = bySize.find(([other, otherBody]) => other !== header && otherBody.size > body.size && otherBody.has(header));
    if (parent) parentLoop.set(header, parent[0]);
  }

  // Order each scope (the region, or a loop body) topologically with its inner loops
  // collapsed into their headers, expanding each inner loop in place.
  const order: number[] = [];
  const scopeOf = (node: number, scope: number | undefined): number => {
    // The unit that represents `node` inside `scope`: itself, or the header of the
    // outermost loop below `scope` that contains it.
    let unit = node;
    for (let loop = innermostLoop.get(node); loop !== undefined && loop !== scope; loop = parentLoop.get(loop)) unit = loop;
    return unit;
  };
  const orderScope = (scope: number | undefined, members: readonly number[]): boolean => {
    const units = new Set(members.map((node) => scopeOf(node, scope)));
    const incoming = new Map<number, number>([...units].map((unit) => [unit, 0]));
    const edges = new Map<number, Set<number>>([...units].map((unit) => [unit, new Set<number>()]));
    for (const node of members) {
      const from = scopeOf(node, scope);
      for (const next of successors.get(node) ?? []) {
        if (next === scope || !units.has(scopeOf(next, scope)) || !membersHas(members, next)) continue;
        const to = scopeOf(next, scope);
        if (to === from || edges.get(from)!.has(to)) continue;
        edges.get(from)!.add(to);
        incoming.set(to, incoming.get(to)! + 1);
      }
    }
    const ready = [...units].filter((unit) => incoming.get(unit) === 0);
    let placed = 0;
    while (ready.length > 0) {
      ready.sort((a, b) => rank.get(a)! - rank.get(b)!);
      const unit = ready.shift()!;
      placed++;
      if (unit !== scope && loops.has(unit) && parentLoop.get(unit) === scope) {
        if (!orderScope(unit, [...loops.get(unit)!].filter((node) => rank.has(node)))) return false;
      } else {
        order.push(unit);
      }
      for (const next of edges.get(unit)!) {
        incoming.set(next, incoming.get(next)! - 1);
        if (incoming.get(next) === 0) ready.push(next);
      }
    }
    return placed === units.size;
  };
  const memberSets = new Map<readonly number[], Set<number>>();
  const membersHas = (members: readonly number[], node: number): boolean => {
    let set = memberSets.get(members);
    if (!set) memberSets.set(members, (set = new Set(members)));
    return set.has(node);
  };
  if (!orderScope(undefined, reversePostorder)) return null;
  if (order[0] !== entry) return null;
  return { order, loops, innermostLoop, parentLoop };
}
