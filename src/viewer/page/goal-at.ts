// Any goal's state at any point of the run, rebuilt from the compact model (view-data.ts): what
// the timeline slider redraws the graph from. Pure, so the tests check it against the raw events.
import type { GoalView, Phase, ViewData } from "./view-data.ts";

/** What a goal is at a seq. */
export interface GoalAt {
  phase: Phase;
  /** Its machine's state (`inputsRealised.waiting`); null before its first transition. */
  state: string | null;
  /** Ended goals: how (`built`, `failed`, `dependencyFailed`…). */
  outcome: string | null;
}

/** Index of the last `[seq, …]` record (of `stride` numbers) with seq ≤ `seq`, or -1. */
export function lastAtOrBefore(flat: number[], stride: number, seq: number): number {
  let lo = 0;
  let hi = flat.length / stride - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (flat[mid * stride]! <= seq) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

const within = (seq: number, from: number, until: number) =>
  seq >= from && (until === 0 || seq < until);

export function goalAt(data: ViewData, g: GoalView, seq: number): GoalAt {
  if (seq < g.created) return { phase: "absent", state: null, outcome: null };
  const t = lastAtOrBefore(g.tr, 2, seq);
  const state = t < 0 ? null : data.strings[g.tr[t * 2 + 1]!]!;
  if (g.end && seq >= g.end[0]!)
    return { phase: "ended", state, outcome: data.strings[g.end[1]!]! };
  let phase: Phase = "running";
  for (let i = 0; i < g.bd.length; i += 2)
    if (within(seq, g.bd[i]!, g.bd[i + 1]!)) phase = "building";
  for (const w of g.wt) if (within(seq, w[0]!, w[1]!)) phase = "waiting";
  return { phase, state, outcome: null };
}

/** The shared time table, decoded: seqs and their monotonic times in ms. */
export interface TimeTable {
  seqs: Float64Array;
  ms: Float64Array;
}

export function decodeTimes(times: number[]): TimeTable {
  const n = times.length / 2;
  const seqs = new Float64Array(n);
  const ms = new Float64Array(n);
  let s = 0;
  let m = 0;
  for (let i = 0; i < n; i++) {
    s += times[i * 2]!;
    m += times[i * 2 + 1]!;
    seqs[i] = s;
    ms[i] = m / 10;
  }
  return { seqs, ms };
}

/** Milliseconds since the run started at `seq` (the time of the last kept event at or before it). */
export function timeAt(t: TimeTable, seq: number): number {
  let lo = 0;
  let hi = t.seqs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t.seqs[mid]! <= seq) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found < 0 ? 0 : t.ms[found]!;
}

/** The outcomes that count as failures (as `nixstate graph` colours them). */
export const FAILED_OUTCOMES = new Set([
  "failed",
  "dependencyFailed",
  "cancelled",
  "cachedFailure",
]);

/** Counts of goals by what the page's header shows. */
export interface Counts {
  done: number;
  running: number;
  waiting: number;
  failed: number;
  notStarted: number;
}

export function countsAt(data: ViewData, seq: number): Counts {
  const c: Counts = { done: 0, running: 0, waiting: 0, failed: 0, notStarted: 0 };
  for (const g of data.goals) {
    const a = goalAt(data, g, seq);
    if (a.phase === "absent") c.notStarted++;
    else if (a.phase === "waiting") c.waiting++;
    else if (a.phase === "ended") {
      if (FAILED_OUTCOMES.has(a.outcome!)) c.failed++;
      else c.done++;
    } else c.running++;
  }
  return c;
}
