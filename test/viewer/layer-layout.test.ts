// The goal graph's layout (src/viewer/page/layer-layout.ts): on any DAG every arrow points down
// (a goal sits below every goal that asked for it), no two boxes overlap, no row is wider than
// asked; cycles (cut references) still place every node; 10,000 goals lay out quickly.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { layoutLayers } from "../../src/viewer/page/layer-layout.ts";
import { depsOf } from "../events/json-dag.ts";

const geometry = { nodeWidth: 10, nodeHeight: 8, gapX: 2, gapY: 2, layerGap: 6 };

/** A DAG on n nodes: edges only from a lower to a higher index. */
const dagArb = fc.integer({ min: 1, max: 40 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    edges:
      n < 2
        ? fc.constant([] as (readonly [number, number])[])
        : fc.array(
            fc
              .tuple(fc.nat(n - 1), fc.nat(n - 2))
              .map(([a, c]) => [a, c >= a ? c + 1 : c] as const)
              .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const),
            { maxLength: 80 },
          ),
    perRow: fc.integer({ min: 1, max: 10 }),
  }),
);

function overlaps(x: Float64Array, y: Float64Array): boolean {
  const seen = new Set<string>();
  for (let i = 0; i < x.length; i++) {
    const k = `${x[i]},${y[i]}`;
    if (seen.has(k)) return true;
    seen.add(k);
  }
  return false;
}

describe("layoutLayers", () => {
  it("puts every goal below the goals that asked for it, without overlaps (property)", () => {
    fc.assert(
      fc.property(dagArb, ({ n, edges, perRow }) => {
        const flat = edges.flatMap(([a, b]) => [a, b, 0]);
        const L = layoutLayers({ n, edges: flat, stride: 3, perRow, ...geometry });
        for (const [a, b] of edges) {
          expect(L.layer[b]!).toBeGreaterThan(L.layer[a]!);
          expect(L.y[b]!).toBeGreaterThan(L.y[a]!);
        }
        expect(overlaps(L.x, L.y)).toBe(false);
        const rows = new Map<number, number>();
        for (const y of L.y) rows.set(y, (rows.get(y) ?? 0) + 1);
        for (const count of rows.values()) expect(count).toBeLessThanOrEqual(perRow);
        expect(L.layers.reduce((s, l) => s + l.count, 0)).toBe(n);
        for (let i = 0; i < n; i++) {
          expect(L.x[i]! + geometry.nodeWidth).toBeLessThanOrEqual(L.width + 1e-9);
          expect(L.y[i]! + geometry.nodeHeight).toBeLessThanOrEqual(L.height + 1e-9);
        }
      }),
    );
  });

  it("places every node of a cycle", () => {
    const L = layoutLayers({ n: 3, edges: [0, 1, 1, 2, 2, 0], stride: 2, perRow: 5, ...geometry });
    expect(new Set(L.layer).size).toBe(3);
    expect(overlaps(L.x, L.y)).toBe(false);
  });

  it("lays out the 10,000-goal benchmark DAG in well under a second", () => {
    const n = 10_000;
    const edges: number[] = [];
    for (let i = 0; i < n; i++) for (const d of depsOf(i)) edges.push(i, d);
    const t0 = performance.now();
    const L = layoutLayers({ n, edges, stride: 2, perRow: 160, ...geometry });
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(1000);
    // As many layers as the longest chain of requests has goals: 9999 → 4999 → … → 1 → 0.
    const height = new Int32Array(n);
    for (let i = 1; i < n; i++) height[i] = 1 + Math.max(...depsOf(i).map((d) => height[d]!));
    expect(L.layers.length).toBe(Math.max(...height) + 1);
    expect(Math.max(...L.layers.map((l) => l.count))).toBeGreaterThan(160);
  });
});
