// The goal graph, drawn in SVG: a box per goal coloured by its phase (or outcome, once ended) at
// the timeline's point, arrows from each goal to the goals it asked for, the critical path in
// dark blue, root causes of failures in red. Small runs get labelled boxes; large ones small
// unlabelled boxes (a tooltip names them) in layers wrapped into rows, one path for all arrows.
import { esc, SVG_NS, WORDS } from "./dom.ts";
import { goalAt } from "./goal-at.ts";
import { type Layout, layoutLayers } from "./layer-layout.ts";
import { EDGE_CRITICAL, EDGE_WAITED, type ViewData } from "./view-data.ts";

/** Above this many goals, boxes are small and unlabelled. */
export const LABELLED_MAX = 300;

interface Geometry {
  w: number;
  h: number;
  labelled: boolean;
}

export class GraphView {
  private data: ViewData | undefined;
  private layout: Layout | undefined;
  private geo: Geometry = { w: 0, h: 0, labelled: true };
  private readonly svg: SVGSVGElement;
  private nodes: SVGGElement[] = [];
  private subs: (SVGTextElement | null)[] = [];
  private classes: string[] = [];
  private selected = -1;
  private moved = false;
  private view = { x: 0, y: 0, w: 1, h: 1 };
  private readonly tip: HTMLDivElement;

  constructor(
    private readonly host: HTMLElement,
    private readonly onSelect: (goal: number) => void,
  ) {
    this.svg = document.createElementNS(SVG_NS, "svg");
    this.svg.id = "graph";
    // A graph smaller than the pane sits at its top, not in the middle.
    this.svg.setAttribute("preserveAspectRatio", "xMidYMin meet");
    host.append(this.svg);
    this.tip = document.createElement("div");
    this.tip.className = "tip";
    host.append(this.tip);
    this.panZoom();
    this.svg.addEventListener("click", (ev) => {
      const g = (ev.target as Element).closest("[data-i]");
      if (g) this.onSelect(Number(g.getAttribute("data-i")));
    });
    this.svg.addEventListener("mousemove", (ev) => this.hover(ev));
    // The pane shrinks when the statechart opens under it: fitted again unless the reader moved.
    new ResizeObserver(() => {
      if (this.layout && !this.moved) this.fit();
    }).observe(this.svg);
    this.svg.addEventListener("mouseleave", () => {
      this.tip.style.display = "none";
    });
  }

  /** Lay the graph out and draw it anew (new data with other goals or edges). */
  load(data: ViewData): void {
    this.data = data;
    const n = data.goals.length;
    const labelled = n <= LABELLED_MAX;
    this.geo = labelled ? { w: 170, h: 40, labelled } : { w: 14, h: 10, labelled };
    this.layout = layoutLayers({
      n,
      edges: data.edges,
      stride: 3,
      nodeWidth: this.geo.w,
      nodeHeight: this.geo.h,
      gapX: labelled ? 24 : 4,
      gapY: labelled ? 18 : 4,
      layerGap: labelled ? 30 : 30,
      perRow: labelled ? 8 : Math.max(40, Math.ceil(Math.sqrt(n) * 1.6)),
    });
    this.draw();
    // A live run grew: fitted again, unless the reader has panned or zoomed.
    if (!this.moved) this.fit();
  }

  /** Newer data of the same goals and edges (a live run went on): no new layout. */
  refresh(data: ViewData): void {
    this.data = data;
  }

  private draw(): void {
    const d = this.data!;
    const L = this.layout!;
    const { w, h, labelled } = this.geo;
    const parts: string[] = [
      `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs>`,
    ];
    if (!labelled) {
      // Layers named at their left, so a reader knows which depth a band of boxes is.
      L.layers.forEach((l, k) => {
        parts.push(
          `<text class="layer" x="-12" y="${l.y + 10}" text-anchor="end">layer ${k + 1} · ${l.count}</text>`,
        );
      });
    }
    const plain: string[] = [];
    const asked: string[] = [];
    const crit: string[] = [];
    for (let e = 0; e < d.edges.length; e += 3) {
      const [f, t, flags] = [d.edges[e]!, d.edges[e + 1]!, d.edges[e + 2]!];
      const x1 = L.x[f]! + w / 2;
      const y1 = L.y[f]! + h;
      const x2 = L.x[t]! + w / 2;
      const y2 = L.y[t]!;
      const my = (y1 + y2) / 2;
      const seg = labelled
        ? `M${x1},${y1}C${x1},${my} ${x2},${my} ${x2},${y2}`
        : `M${x1},${y1}L${x2},${y2}`;
      if (flags & EDGE_CRITICAL) crit.push(seg);
      else if (flags & EDGE_WAITED) plain.push(seg);
      else asked.push(seg);
    }
    const marker = labelled ? ' marker-end="url(#arrow)"' : "";
    if (labelled) {
      for (const s of plain) parts.push(`<path class="edge" d="${s}"${marker}/>`);
      for (const s of asked) parts.push(`<path class="edge asked" d="${s}"${marker}/>`);
    } else {
      parts.push(`<path class="edge many" d="${plain.join("")}${asked.join("")}"/>`);
    }
    for (const s of crit) parts.push(`<path class="edge crit" d="${s}"${marker}/>`);
    parts.push('<g class="sel-edges"></g>');
    d.goals.forEach((g, i) => {
      const x = L.x[i]!;
      const y = L.y[i]!;
      const key = esc(g.key);
      if (labelled) {
        const name = g.name.length > 24 ? `${g.name.slice(0, 23)}…` : g.name;
        parts.push(
          `<g class="goal" data-i="${i}" data-key="${key}" transform="translate(${x},${y})"><rect width="${w}" height="${h}" rx="6"/><text class="name" x="8" y="16">${esc(name)}</text><text class="sub" x="8" y="32"></text></g>`,
        );
      } else {
        parts.push(
          `<g class="goal" data-i="${i}" data-key="${key}"><rect x="${x}" y="${y}" width="${w}" height="${h}" rx="2"/></g>`,
        );
      }
    });
    this.svg.innerHTML = parts.join("");
    this.nodes = [...this.svg.querySelectorAll<SVGGElement>("g.goal")];
    this.subs = this.nodes.map((n) => n.querySelector<SVGTextElement>("text.sub"));
    this.classes = this.nodes.map(() => "");
    if (this.selected >= d.goals.length) this.selected = -1;
  }

  /** Colour every goal as it was at `seq`. */
  update(seq: number): void {
    const d = this.data!;
    this.tip.style.display = "none";
    d.goals.forEach((g, i) => {
      const a = goalAt(d, g, seq);
      let cls = `goal p-${a.phase}`;
      if (a.outcome) cls += ` o-${a.outcome}`;
      if (g.onCriticalPath) cls += " crit";
      if (g.rootCause && a.phase === "ended") cls += " root";
      if (i === this.selected) cls += " selected";
      const node = this.nodes[i]!;
      if (cls !== this.classes[i]) {
        this.classes[i] = cls;
        node.setAttribute("class", cls);
        node.dataset.phase = a.phase;
        node.dataset.outcome = a.outcome ?? "";
      }
      node.dataset.state = a.state ?? "";
      const sub = this.subs[i];
      if (sub) {
        const words = a.phase === "ended" ? WORDS[a.outcome!] : (a.state ?? WORDS[a.phase]);
        const text = `${words ?? a.outcome}${g.rootCause && a.phase === "ended" ? " (root cause)" : ""}`;
        if (sub.textContent !== text) sub.textContent = text;
      }
    });
  }

  select(i: number): void {
    const d = this.data!;
    const L = this.layout!;
    this.selected = i;
    for (const [k, n] of this.nodes.entries()) {
      if (k === i) n.classList.add("selected");
      else if (n.classList.contains("selected")) n.classList.remove("selected");
      this.classes[k] = n.getAttribute("class") ?? "";
    }
    // The selected goal's arrows, drawn over the rest (the only ones labelled runs leave out).
    const { w, h } = this.geo;
    const segs: string[] = [];
    for (let e = 0; e < d.edges.length; e += 3) {
      const [f, t] = [d.edges[e]!, d.edges[e + 1]!];
      if (f !== i && t !== i) continue;
      segs.push(`M${L.x[f]! + w / 2},${L.y[f]! + h}L${L.x[t]! + w / 2},${L.y[t]!}`);
    }
    const g = this.svg.querySelector(".sel-edges")!;
    g.innerHTML = segs.length ? `<path class="edge sel" d="${segs.join("")}"/>` : "";
  }

  private fit(): void {
    const L = this.layout!;
    const pad = this.geo.labelled ? 20 : 40;
    const left = this.geo.labelled ? -pad : -110;
    let v = { x: left, y: -pad, w: L.width + pad - left, h: L.height + 2 * pad };
    // Never zoomed in beyond life size: a small graph sits at the top, centred.
    const r = this.svg.getBoundingClientRect();
    if (r.width > 0 && v.w < r.width && v.h < r.height) {
      v = { x: v.x - (r.width - v.w) / 2, y: v.y, w: r.width, h: r.height };
    }
    this.view = v;
    this.applyView();
  }

  private applyView(): void {
    const v = this.view;
    this.svg.setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
  }

  /** Where a mouse event is, in the graph's coordinates. */
  private toGraph(ev: MouseEvent): { x: number; y: number; scale: number } {
    const r = this.svg.getBoundingClientRect();
    const v = this.view;
    // preserveAspectRatio xMidYMin meet: one scale, the picture centred across, at the top.
    const scale = Math.max(v.w / r.width, v.h / r.height);
    const ox = (r.width * scale - v.w) / 2;
    const oy = 0;
    return {
      x: v.x - ox + (ev.clientX - r.left) * scale,
      y: v.y - oy + (ev.clientY - r.top) * scale,
      scale,
    };
  }

  private panZoom(): void {
    this.svg.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        this.moved = true;
        const p = this.toGraph(ev);
        const f = Math.exp(ev.deltaY * 0.0015);
        const v = this.view;
        this.view = {
          x: p.x - (p.x - v.x) * f,
          y: p.y - (p.y - v.y) * f,
          w: v.w * f,
          h: v.h * f,
        };
        this.applyView();
      },
      { passive: false },
    );
    let drag: { x: number; y: number; vx: number; vy: number; scale: number } | undefined;
    this.svg.addEventListener("mousedown", (ev) => {
      const p = this.toGraph(ev);
      drag = { x: ev.clientX, y: ev.clientY, vx: this.view.x, vy: this.view.y, scale: p.scale };
    });
    window.addEventListener("mousemove", (ev) => {
      if (!drag) return;
      this.moved = true;
      this.view.x = drag.vx - (ev.clientX - drag.x) * drag.scale;
      this.view.y = drag.vy - (ev.clientY - drag.y) * drag.scale;
      this.applyView();
    });
    window.addEventListener("mouseup", () => {
      drag = undefined;
    });
  }

  private hover(ev: MouseEvent): void {
    const t = (ev.target as Element).closest("[data-i]");
    if (!t || !this.data) {
      this.tip.style.display = "none";
      return;
    }
    const g = this.data.goals[Number(t.getAttribute("data-i"))]!;
    const el = t as SVGGElement;
    const what = el.dataset.phase === "ended" ? WORDS[el.dataset.outcome ?? ""] : el.dataset.state;
    this.tip.innerHTML = `<b>${esc(g.name)}</b><br>${esc(what || WORDS[el.dataset.phase ?? ""] || "")}`;
    const r = this.host.getBoundingClientRect();
    this.tip.style.display = "block";
    this.tip.style.left = `${ev.clientX - r.left + 12}px`;
    this.tip.style.top = `${ev.clientY - r.top + 12}px`;
  }
}
