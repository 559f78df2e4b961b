// `nixstate runs critical-path`: the chain of goals that set a run's wall time. It starts at the
// top-level target that ended last and steps, again and again, to the goal it waited for that
// ended last before it could go on — the input that held it up. Making anything off this chain
// faster does not make the run shorter; making something on it faster may.

import { parseGoalKey } from "../machines/worker-events.ts";
import type { GoalKey, GoalKind, RunEvent } from "./run-event.ts";
import { type GoalRecord, goalLabel, indexRun, type RunIndex } from "./run-index.ts";
import type { RunRow } from "./run-log.ts";

export class CriticalPathError extends Error {
  override name = "CriticalPathError";
}

/** One goal on the critical path. Times are milliseconds since the run started. */
export interface PathStep {
  goal: GoalKey;
  /** The .drv path or store path. */
  path: string;
  kind: GoalKind;
  status: string;
  created: number;
  /** When the goal it waited for last ended (its creation, if it waited for nothing). */
  ready: number;
  builderStarted: number | undefined;
  builderExited: number | undefined;
  done: number;
  /** Created → its builder started (or → done, if it ran no builder). */
  waitMs: number;
  /** Its builder's run time (0 if it ran none). */
  buildMs: number;
}

export interface CriticalPath {
  run: number;
  /** The target the path ends at, as given to the build. */
  target: { index: number; text: string };
  /** First to run first: the goal at the bottom of the chain, up to the target's goal. */
  steps: PathStep[];
  /** From the run's start to the end of the target's goal. */
  totalMs: number;
  /** Builder time along the path; the rest of totalMs went to waiting, locks and bookkeeping. */
  buildMs: number;
}

const round = (n: number) => Math.round(n * 1000) / 1000;

function step(g: GoalRecord, ready: number): PathStep {
  const created = g.created?.mono ?? 0;
  const done = g.done!.mono;
  const started = g.builderStarted?.mono;
  const exited =
    g.builderExited && g.builderStarted && g.builderExited.seq > g.builderStarted.seq
      ? g.builderExited.mono
      : undefined;
  return {
    goal: g.key,
    path: parseGoalKey(g.key).path,
    kind: g.kind,
    status: g.done!.status,
    created,
    ready,
    builderStarted: started,
    builderExited: exited,
    done,
    waitMs: round(Math.max(0, (started ?? done) - created)),
    buildMs:
      started !== undefined && exited !== undefined ? round(Math.max(0, exited - started)) : 0,
  };
}

/**
 * The goal `g` waited for that ended last before `g` could go on: before it ended, and before it
 * was woken early by a failure (no --keep-going), if it was.
 */
function gatingWaitee(g: GoalRecord, idx: RunIndex): GoalRecord | undefined {
  const limit = g.woken?.seq ?? g.done?.seq ?? Number.MAX_SAFE_INTEGER;
  let best: GoalRecord | undefined;
  for (const k of g.waits) {
    const w = idx.goals.get(k);
    if (!w?.done || w.done.seq > limit) continue;
    if (!best || w.done.seq > best.done!.seq) best = w;
  }
  return best;
}

/** The critical path of one run, from its events. */
export function criticalPath(run: RunRow, events: RunEvent[]): CriticalPath {
  const idx = indexRun(events);
  let top: { index: number; goal: GoalRecord } | undefined;
  for (const [index, key] of idx.targetGoals) {
    const g = idx.goals.get(key);
    if (!g?.done) continue;
    if (!top || g.done.seq > top.goal.done!.seq) top = { index, goal: g };
  }
  if (!top) {
    throw new CriticalPathError(
      idx.targetGoals.size === 0
        ? `run ${run.id} has no targets in its log; it may have stopped before it started any ('nixstate runs show ${run.id}')`
        : `no target of run ${run.id} had ended when its log ends (${run.state} run), so nothing set its wall time yet; try it again when the run is over, or 'nixstate runs resume ${run.id}'`,
    );
  }
  // Walk down from the target: each goal, then the waitee that held it up.
  const chain: GoalRecord[] = [];
  const seen = new Set<GoalKey>();
  for (let g: GoalRecord | undefined = top.goal; g && !seen.has(g.key); g = gatingWaitee(g, idx)) {
    seen.add(g.key);
    chain.push(g);
  }
  chain.reverse();
  const steps = chain.map((g, i) =>
    step(g, i === 0 ? (g.created?.mono ?? 0) : chain[i - 1]!.done!.mono),
  );
  return {
    run: run.id,
    target: { index: top.index, text: idx.targets[top.index] ?? `#${top.index}` },
    steps,
    totalMs: top.goal.done!.mono,
    buildMs: round(steps.reduce((n, s) => n + s.buildMs, 0)),
  };
}

function duration(n: number): string {
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

/** The path as a Nix user reads it: a table, first goal first, and the total. */
export function criticalPathText(p: CriticalPath): string {
  const lines = [
    `critical path of run ${p.run}: ${p.steps.length} goal${p.steps.length === 1 ? "" : "s"}, ending at target ${p.target.text}`,
    `${"waited".padStart(9)}  ${"built".padStart(9)}  goal`,
  ];
  for (const s of p.steps) {
    const how =
      s.status === "Built" || s.status === "substituted" || s.status === "Substituted"
        ? ""
        : `  (${s.status})`;
    lines.push(
      `${duration(s.waitMs).padStart(9)}  ${(s.buildMs > 0 ? duration(s.buildMs) : "-").padStart(9)}  ${goalLabel(s.goal)}${how}`,
    );
  }
  lines.push(
    `total: ${duration(p.totalMs)} from the start of the run, ${duration(p.buildMs)} of it in builders on this path`,
  );
  return `${lines.join("\n")}\n`;
}
