// Closures and the topological sort, on random DAGs.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { closureOf, topoSortPaths } from "../../src/store/path-graph.ts";
import { ReferenceCycleError } from "../../src/store/store-errors.ts";

/** A random DAG: node i may refer to nodes below it, and to itself. */
const dag = fc
  .integer({ min: 1, max: 30 })
  .chain((n) =>
    fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        fc.uniqueArray(fc.integer({ min: 0, max: i }), { maxLength: 4 }),
      ),
    ),
  )
  .map((edges) => new Map(edges.map((refs, i) => [`p${i}`, refs.map((r) => `p${r}`)])));

describe("topoSortPaths", () => {
  it("puts every path after the paths it references", () => {
    fc.assert(
      fc.property(dag, fc.integer({ min: 0, max: 1000 }), (graph, seed) => {
        const keys = [...graph.keys()];
        const subset = keys.filter((_, i) => (i * 7 + seed) % 3 !== 0);
        const order = topoSortPaths(subset, (p) => graph.get(p) ?? []);
        expect([...order].sort()).toEqual([...subset].sort());
        const pos = new Map(order.map((p, i) => [p, i]));
        for (const p of order) {
          for (const q of graph.get(p)!) {
            if (q !== p && pos.has(q)) expect(pos.get(q)!).toBeLessThan(pos.get(p)!);
          }
        }
      }),
    );
  });

  it("names the cycle it finds", () => {
    const graph = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a"]],
    ]);
    expect(() => topoSortPaths(graph.keys(), (p) => graph.get(p)!)).toThrow(ReferenceCycleError);
    expect(() => topoSortPaths(graph.keys(), (p) => graph.get(p)!)).toThrow(/a -> b -> c -> a/);
  });
});

describe("closureOf", () => {
  it("is the set of everything reachable, the start included", () => {
    fc.assert(
      fc.property(dag, (graph) => {
        const top = `p${graph.size - 1}`;
        const closure = closureOf([top], (p) => graph.get(p)!);
        expect(closure.has(top)).toBe(true);
        for (const p of closure) for (const q of graph.get(p)!) expect(closure.has(q)).toBe(true);
      }),
    );
  });
});
