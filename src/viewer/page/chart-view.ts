// A goal machine's statechart, laid out by dagre: states as boxes (compound states as boxes around
// their children, final states with a double border), transitions as arrows with their events as
// tooltips; the selected goal's state at the timeline's point highlighted.
import dagre from "@dagrejs/dagre";
import { esc } from "./dom.ts";
import type { Chart } from "./view-data.ts";

interface Placed {
  svg: string;
  width: number;
  height: number;
}

const cache = new WeakMap<Chart, Placed>();

/** The transition is taken only when an effect fails. */
const isErrorOnly = (label: string) =>
  label !== "" && label.split(", ").every((l) => l.endsWith(" failed"));

/** Roughly how wide a label is at the chart's font size. */
const textWidth = (s: string) => s.length * 6.6 + 16;

function place(chart: Chart): Placed {
  const hit = cache.get(chart);
  if (hit) return hit;
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  g.setGraph({ rankdir: "TB", nodesep: 10, ranksep: 24, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const compound = new Set(chart.states.filter((s) => s.kind === "compound").map((s) => s.id));
  for (const s of chart.states) {
    if (s.kind === "compound") g.setNode(s.id, { label: s.label, paddingTop: 18 });
    else g.setNode(s.id, { label: s.label, width: textWidth(s.label), height: 24 });
  }
  for (const s of chart.states) if (s.parent) g.setParent(s.id, s.parent);
  for (const e of chart.edges) {
    if (compound.has(e.from) || compound.has(e.to) || e.from === e.to) continue;
    // Every state goes to miscFailure when its effect throws: said once in the caption instead
    // of an arrow from each.
    if (isErrorOnly(e.label)) continue;
    g.setEdge(e.from, e.to, { label: e.label });
  }
  dagre.layout(g);
  const parts: string[] = [];
  // Compound states first, so their children are drawn over them.
  for (const s of chart.states) {
    const n = g.node(s.id);
    if (!n || s.kind !== "compound") continue;
    const x = n.x - n.width / 2;
    const y = n.y - n.height / 2 - 10;
    parts.push(
      `<g class="state compound" data-state="${esc(s.id)}"><rect x="${x}" y="${y}" width="${n.width}" height="${n.height + 10}" rx="8"/><text x="${x + 8}" y="${y + 13}">${esc(s.label)}</text></g>`,
    );
  }
  for (const e of g.edges()) {
    const pts: { x: number; y: number }[] = g.edge(e).points ?? [];
    if (pts.length === 0) continue;
    const d = pts.map((p, k) => `${k === 0 ? "M" : "L"}${p.x.toFixed(1)},${p.y.toFixed(1)}`);
    const label = (g.edge(e) as { label?: string }).label ?? "";
    parts.push(
      `<path class="transition" data-from="${esc(e.v)}" data-to="${esc(e.w)}" d="${d.join("")}" marker-end="url(#chart-arrow)"><title>${esc(label || "(immediately)")}</title></path>`,
    );
  }
  for (const s of chart.states) {
    const n = g.node(s.id);
    if (!n || s.kind === "compound") continue;
    const x = n.x - n.width / 2;
    const y = n.y - n.height / 2;
    const inner =
      s.kind === "final"
        ? `<rect class="inner" x="${x + 2.5}" y="${y + 2.5}" width="${n.width - 5}" height="${n.height - 5}" rx="4"/>`
        : "";
    parts.push(
      `<g class="state ${s.kind}" data-state="${esc(s.id)}"><rect x="${x}" y="${y}" width="${n.width}" height="${n.height}" rx="6"/>${inner}<text x="${n.x}" y="${n.y + 4}" text-anchor="middle">${esc(s.label)}</text></g>`,
    );
  }
  const gr = g.graph();
  const placed = { svg: parts.join(""), width: gr.width ?? 100, height: gr.height ?? 100 };
  cache.set(chart, placed);
  return placed;
}

/** Draw `chart` into `host` with `active` (a state path) and its parents highlighted. */
export function drawChart(host: HTMLElement, chart: Chart, active: string | null): void {
  const p = place(chart);
  host.innerHTML = `<svg class="chart" viewBox="0 0 ${p.width} ${p.height}" width="${p.width}" height="${p.height}"><defs><marker id="chart-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#78909c"/></marker></defs>${p.svg}</svg>`;
  highlightChart(host, active);
}

export function highlightChart(host: HTMLElement, active: string | null): void {
  for (const el of host.querySelectorAll(".state.active, .state.active-parent"))
    el.classList.remove("active", "active-parent");
  if (!active) return;
  const parts = active.split(".");
  for (let k = 1; k <= parts.length; k++) {
    const id = parts.slice(0, k).join(".");
    const el = host.querySelector(`.state[data-state="${CSS.escape(id)}"]`);
    el?.classList.add(k === parts.length ? "active" : "active-parent");
  }
  // The chart is wider than the panel: bring the active state into view.
  const el = host.querySelector<SVGGElement>(".state.active");
  if (el) {
    const box = el.getBBox();
    host.scrollLeft = box.x + box.width / 2 - host.clientWidth / 2;
    host.scrollTop = box.y + box.height / 2 - host.clientHeight / 2;
  }
}
