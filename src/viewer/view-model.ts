// A recorded run made into the viewer's data (page/view-data.ts): the goal graph as
// `nixstate graph` derives it (run-graph.ts: outcomes, root causes, critical path) plus, for each
// goal, a compact record of what it did and when — enough for the page to rebuild every goal's
// state at every seq without the raw events. Pure: events in, data out; build logs come through
// the `logTail` the caller passes.
import { statePath } from "../events/replay-goal.ts";
import type { GoalEvent, RunEvent } from "../events/run-event.ts";
import { runGraph } from "../events/run-graph.ts";
import type { RunRow } from "../events/run-log.ts";
import { machineCharts } from "./machine-charts.ts";
import { EDGE_CRITICAL, EDGE_WAITED, type GoalView, type ViewData } from "./page/view-data.ts";

export interface ViewModelOptions {
  /** The page follows the run live. */
  live?: boolean;
  /** The last lines of a derivation's build log, if it has one. */
  logTail?: (drvPath: string) => string[] | undefined;
}

/** Mutable goal state while folding the events. */
interface Folding {
  view: GoalView;
  /** invoke id → index of its record in `ef` (in records, not numbers). */
  openEffects: Map<string, number>;
  logBytes: number;
}

/** Interns strings as indices. */
class StringTable {
  readonly list: string[] = [];
  private readonly index = new Map<string, number>();
  of(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(s);
      this.index.set(s, i);
    }
    return i;
  }
}

/** Ends the goal's open wait (if any) at `seq`: the effect that waited answered, or the goal ended. */
function closeWait(f: Folding, seq: number): void {
  const last = f.view.wt.at(-1);
  if (last && last[1] === 0) last[1] = seq;
}

function closeBuilder(f: Folding, seq: number): void {
  const bd = f.view.bd;
  if (bd.length > 0 && bd[bd.length - 1] === 0) bd[bd.length - 1] = seq;
}

export function viewModel(run: RunRow, events: RunEvent[], o: ViewModelOptions = {}): ViewData {
  const graph = runGraph(run, events);
  const strings = new StringTable();
  const index = new Map(graph.nodes.map((n, i) => [n.key, i]));
  const folds: Folding[] = graph.nodes.map((n) => ({
    view: { key: n.key, name: n.name, kind: n.kind, created: 0, tr: [], ef: [], wt: [], bd: [] },
    openEffects: new Map(),
    logBytes: 0,
  }));
  const keptSeqs: number[] = [];
  const keptMono: number[] = [];
  const keep = (e: RunEvent) => {
    keptSeqs.push(e.seq);
    keptMono.push(e.mono);
  };
  let lastSeq = 0;
  for (const e of events) {
    lastSeq = Math.max(lastSeq, e.seq);
    if (!("goal" in e)) {
      keep(e);
      continue;
    }
    const i = index.get((e as GoalEvent).goal);
    if (i === undefined) continue;
    const f = folds[i]!;
    const v = f.view;
    if (v.created === 0) {
      v.created = e.seq;
      keep(e);
    }
    switch (e.type) {
      case "goal.transition":
        v.tr.push(e.seq, strings.of(statePath(e.state)));
        keep(e);
        break;
      case "effect.started":
        f.openEffects.set(e.invoke, v.ef.length / 4);
        v.ef.push(e.seq, 0, strings.of(e.effect), -1);
        keep(e);
        break;
      case "effect.done":
      case "effect.failed": {
        const r = f.openEffects.get(e.invoke);
        if (r !== undefined) {
          f.openEffects.delete(e.invoke);
          v.ef[r * 4 + 1] = e.seq;
          v.ef[r * 4 + 3] = e.type === "effect.done" ? 1 : 0;
        }
        closeWait(f, e.seq);
        keep(e);
        break;
      }
      case "goal.waits": {
        closeWait(f, e.seq);
        const on = e.on.flatMap((k) => {
          const j = index.get(k);
          return j === undefined ? [] : [j];
        });
        v.wt.push([e.seq, 0, ...on]);
        keep(e);
        break;
      }
      case "goal.stopped":
        closeWait(f, e.seq);
        keep(e);
        break;
      case "builder.started":
        closeBuilder(f, e.seq);
        v.bd.push(e.seq, 0);
        keep(e);
        break;
      case "builder.exited":
        closeBuilder(f, e.seq);
        f.logBytes += e.logBytes;
        keep(e);
        break;
      case "goal.done":
        closeWait(f, e.seq);
        closeBuilder(f, e.seq);
        v.end = [e.seq, 0, strings.of(e.status)];
        keep(e);
        break;
      default:
        break;
    }
  }

  const goals = graph.nodes.map((n, i) => {
    const f = folds[i]!;
    const v = f.view;
    if (v.end) v.end[1] = strings.of(n.state);
    if (n.error) v.error = n.error;
    if (n.rootCause) v.rootCause = true;
    if (n.failedBecauseOf) v.because = n.failedBecauseOf.flatMap((k) => index.get(k) ?? []);
    if (n.onCriticalPath) v.onCriticalPath = true;
    if (n.targets) v.targets = n.targets;
    if (n.drvPath && v.bd.length > 0 && (f.logBytes > 0 || v.bd.at(-1) === 0)) {
      const tail = o.logTail?.(n.drvPath);
      if (tail && tail.length > 0) v.log = tail;
    }
    return v;
  });

  const edges: number[] = [];
  for (const e of graph.edges) {
    const from = index.get(e.from);
    const to = index.get(e.to);
    if (from === undefined || to === undefined) continue;
    edges.push(from, to, (e.waited ? EDGE_WAITED : 0) | (e.onCriticalPath ? EDGE_CRITICAL : 0));
  }

  return {
    format: 1,
    run: {
      id: run.id,
      state: run.state,
      started: run.started,
      ...(run.exitCode === undefined ? {} : { exitCode: run.exitCode }),
      targets: graph.targets,
    },
    live: o.live ?? false,
    lastSeq,
    strings: strings.list,
    times: encodeTimes(keptSeqs, keptMono),
    goals,
    edges,
    criticalPathMs: graph.criticalPathMs,
    charts: machineCharts(),
  };
}

/** Seq/time pairs as deltas from (0, 0), times in 0.1 ms: small numbers, short JSON. */
export function encodeTimes(seqs: number[], monos: number[]): number[] {
  const out: number[] = [];
  let s = 0;
  let m = 0;
  for (let i = 0; i < seqs.length; i++) {
    const tenth = Math.round(monos[i]! * 10);
    out.push(seqs[i]! - s, tenth - m);
    s = seqs[i]!;
    m = tenth;
  }
  return out;
}
