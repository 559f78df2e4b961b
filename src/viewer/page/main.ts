// The viewer page: reads the run's data (inlined, or pushed by `nixstate view`'s server while the
// run goes on), lays the goal graph out, and redraws it at the timeline's point. Marks its stages
// with performance marks (`view:parsed`, `view:laid-out`, `view:drawn`) for the benchmark, and
// sets `data-ready` on <body> once drawn.
import { DetailView } from "./detail-view.ts";
import { esc, since } from "./dom.ts";
import { countsAt, decodeTimes, goalAt, type TimeTable, timeAt } from "./goal-at.ts";
import { GraphView } from "./graph-view.ts";
import type { ViewData } from "./view-data.ts";

performance.mark("view:start");
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let data = JSON.parse($("nixstate-view-data").textContent ?? "{}") as ViewData;
let times: TimeTable = decodeTimes(data.times);
performance.mark("view:parsed");

let seq = data.lastSeq;
let selected = -1;
let playing = false;

const graph = new GraphView($("graph-host"), (i) => select(i));
const detail = new DetailView($("detail"), $("chart-pane"), (i) => select(i));
const slider = $<HTMLInputElement>("seq");

/** Seqs at which something the page shows changes: where stepping and playing stop. */
function keptSeqs(): Float64Array {
  return times.seqs;
}

function header(): void {
  const r = data.run;
  const state =
    r.state === "ended"
      ? `ended, exit code ${r.exitCode}`
      : r.state === "running"
        ? "running"
        : "interrupted";
  const targets = r.targets.length === 1 ? r.targets[0]! : `${r.targets.length} targets`;
  $("run").innerHTML =
    `run ${r.id} <span class="runstate ${r.state}">${esc(state)}</span> <span class="targets">${esc(targets)}</span> · ${data.goals.length} goals${data.criticalPathMs === null ? "" : ` · critical path ${(data.criticalPathMs / 1000).toFixed(2)} s`}`;
  $("live").hidden = !data.live;
}

function render(): void {
  graph.update(seq);
  const c = countsAt(data, seq);
  const counts = $("counts");
  counts.innerHTML = [
    `<span class="count done" data-count="done">${c.done} done</span>`,
    `<span class="count running" data-count="running">${c.running} running</span>`,
    `<span class="count waiting" data-count="waiting">${c.waiting} waiting</span>`,
    `<span class="count failed" data-count="failed">${c.failed} failed</span>`,
    `<span class="count absent" data-count="notStarted">${c.notStarted} not started</span>`,
  ].join("");
  slider.max = String(data.lastSeq);
  slider.value = String(seq);
  $("pos").textContent = `event ${seq} / ${data.lastSeq} · ${since(timeAt(times, seq))}`;
  if (selected >= 0) detail.show(data, times, selected, seq);
}

function select(i: number): void {
  selected = i;
  graph.select(i);
  render();
}

function moveTo(s: number): void {
  seq = Math.max(0, Math.min(data.lastSeq, Math.round(s)));
  render();
}

/** The next (dir 1) or previous (-1) kept seq from the current one. */
function step(dir: 1 | -1): void {
  const k = keptSeqs();
  let to = dir > 0 ? data.lastSeq : 0;
  if (dir > 0) {
    for (let j = k.length - 1; j >= 0 && k[j]! > seq; j--) to = k[j]!;
  } else {
    for (let j = 0; j < k.length && k[j]! < seq; j++) to = k[j]!;
  }
  moveTo(to);
}

/** Playing takes the run's own time, scaled so a whole run plays in about 15 s. */
function play(): void {
  playing = !playing;
  $("play").textContent = playing ? "❚❚" : "▶";
  if (!playing) return;
  if (seq >= data.lastSeq) seq = 0;
  const total = Math.max(1, timeAt(times, data.lastSeq));
  let last = performance.now();
  let at = timeAt(times, seq);
  const frame = (now: number) => {
    if (!playing) return;
    at += ((now - last) * total) / 15000;
    last = now;
    const k = keptSeqs();
    let s = seq;
    for (let j = 0; j < k.length && times.ms[j]! <= at; j++) s = k[j]!;
    if (at >= total) s = data.lastSeq;
    if (s !== seq) moveTo(s);
    if (seq >= data.lastSeq) {
      playing = false;
      $("play").textContent = "▶";
      return;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

let pending = false;
slider.addEventListener("input", () => {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    moveTo(Number(slider.value));
  });
});
$("prev").addEventListener("click", () => step(-1));
$("next").addEventListener("click", () => step(1));
$("play").addEventListener("click", play);
$("end").addEventListener("click", () => moveTo(data.lastSeq));
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement && ev.target.type !== "range") return;
  if (ev.key === "ArrowRight") step(1);
  else if (ev.key === "ArrowLeft") step(-1);
  else return;
  ev.preventDefault();
});

header();
graph.load(data);
performance.mark("view:laid-out");
render();
detail.show(data, times, -1, seq);
performance.mark("view:drawn");
performance.measure("view:load", "view:start", "view:drawn");
performance.measure("view:layout", "view:parsed", "view:laid-out");
document.body.dataset.ready = "true";

// A live run: the server pushes the whole data again as the run goes on; the page follows the end
// unless the reader moved the timeline back.
if (data.live) {
  const source = new EventSource("events");
  source.onmessage = (ev) => {
    const next = JSON.parse(ev.data as string) as ViewData;
    const follow = seq >= data.lastSeq;
    const relayout =
      next.goals.length !== data.goals.length || next.edges.join() !== data.edges.join();
    const key = selected >= 0 ? data.goals[selected]?.key : undefined;
    data = next;
    times = decodeTimes(data.times);
    // New goals or arrows (or the critical path, once known): drawn again, the view kept.
    if (relayout) graph.load(data);
    else graph.refresh(data);
    if (key !== undefined) {
      selected = data.goals.findIndex((g) => g.key === key);
      graph.select(selected);
    }
    if (follow) seq = data.lastSeq;
    header();
    render();
    document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
    if (!data.live) source.close();
  };
}

// For tests and the curious: the page's state.
(window as unknown as { nixstateView: unknown }).nixstateView = {
  get seq() {
    return seq;
  },
  get data() {
    return data;
  },
  goalAt: (i: number) => goalAt(data, data.goals[i]!, seq),
  moveTo,
};
