// The goal graph's layout, fast enough for 10,000 goals (dagre takes seconds at 1,000): goals in
// layers by longest path from the targets (a goal sits below every goal that asked for it), each
// layer ordered by a few barycentric sweeps to keep arrows short, and wide layers wrapped into
// rows so the picture stays about as wide as it is tall. Pure: numbers in, positions out.

export interface LayoutInput {
  n: number;
  /** `[from, to, …]`: from asked for (sits above) to. Extra numbers per edge are skipped by `stride`. */
  edges: number[];
  stride: number;
  nodeWidth: number;
  nodeHeight: number;
  gapX: number;
  gapY: number;
  /** Gap between layers, beyond gapY. */
  layerGap: number;
  /** At most this many goals in a row; wider layers wrap. */
  perRow: number;
}

export interface Layout {
  /** Top-left corner of each node. */
  x: Float64Array;
  y: Float64Array;
  layer: Int32Array;
  width: number;
  height: number;
  /** Each layer's vertical extent and size. */
  layers: { y: number; height: number; count: number }[];
}

/** Longest path from the nodes nothing asks for; nodes on a cycle go below what reaches them. */
export function layerOf(n: number, edges: number[], stride: number): Int32Array {
  const indeg = new Int32Array(n);
  const out: number[][] = Array.from({ length: n }, () => []);
  for (let e = 0; e < edges.length; e += stride) {
    const [f, t] = [edges[e]!, edges[e + 1]!];
    if (f === t) continue;
    out[f]!.push(t);
    indeg[t]!++;
  }
  const layer = new Int32Array(n);
  const done = new Uint8Array(n);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) queue.push(i);
  let head = 0;
  const visit = () => {
    while (head < queue.length) {
      const v = queue[head++]!;
      done[v] = 1;
      for (const t of out[v]!) {
        if (done[t]) continue;
        layer[t] = Math.max(layer[t]!, layer[v]! + 1);
        if (--indeg[t]! === 0) queue.push(t);
      }
    }
  };
  visit();
  // What is left sits on cycles (references cut by the worker): break them at the first node.
  for (let i = 0; i < n; i++) {
    if (done[i]) continue;
    queue.push(i);
    visit();
  }
  return layer;
}

export function layoutLayers(input: LayoutInput): Layout {
  const { n, edges, stride } = input;
  const layer = layerOf(n, edges, stride);
  let depth = 0;
  for (let i = 0; i < n; i++) depth = Math.max(depth, layer[i]! + 1);
  const layers: number[][] = Array.from({ length: depth }, () => []);
  for (let i = 0; i < n; i++) layers[layer[i]!]!.push(i);

  const up: number[][] = Array.from({ length: n }, () => []);
  const down: number[][] = Array.from({ length: n }, () => []);
  for (let e = 0; e < edges.length; e += stride) {
    const [f, t] = [edges[e]!, edges[e + 1]!];
    if (f === t) continue;
    down[f]!.push(t);
    up[t]!.push(f);
  }
  // Position of each node in its layer, as a fraction, so layers of different widths compare.
  const pos = new Float64Array(n);
  const place = (l: number[]) => {
    for (let k = 0; k < l.length; k++) pos[l[k]!] = (k + 0.5) / l.length;
  };
  for (const l of layers) place(l);
  const sweep = (l: number[], neighbours: number[][]) => {
    const key = new Float64Array(l.length);
    l.forEach((v, k) => {
      const ns = neighbours[v]!;
      if (ns.length === 0) key[k] = pos[v]!;
      else {
        let s = 0;
        for (const w of ns) s += pos[w]!;
        key[k] = s / ns.length;
      }
    });
    const order = l.map((_, k) => k).sort((a, b) => key[a]! - key[b]! || a - b);
    const sorted = order.map((k) => l[k]!);
    for (let k = 0; k < l.length; k++) l[k] = sorted[k]!;
    place(l);
  };
  for (let round = 0; round < 4; round++) {
    for (let d = 1; d < depth; d++) sweep(layers[d]!, up);
    for (let d = depth - 2; d >= 0; d--) sweep(layers[d]!, down);
  }

  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const { nodeWidth: w, nodeHeight: h, gapX, gapY, layerGap, perRow } = input;
  const widest = Math.min(perRow, Math.max(1, ...layers.map((l) => l.length)));
  const width = widest * (w + gapX) - gapX;
  let top = 0;
  const extents: Layout["layers"] = [];
  for (const l of layers) {
    const rows = Math.ceil(l.length / perRow);
    for (let k = 0; k < l.length; k++) {
      const row = Math.floor(k / perRow);
      const inRow = row < rows - 1 ? perRow : l.length - row * perRow;
      const col = k - row * perRow;
      const left = (width - (inRow * (w + gapX) - gapX)) / 2;
      x[l[k]!] = left + col * (w + gapX);
      y[l[k]!] = top + row * (h + gapY);
    }
    const height = rows * (h + gapY) - gapY;
    extents.push({ y: top, height, count: l.length });
    top += height + gapY + layerGap;
  }
  return { x, y, layer, width, height: Math.max(0, top - gapY - layerGap), layers: extents };
}
