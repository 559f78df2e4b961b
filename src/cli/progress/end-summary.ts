// What `nixstate build` says when a run ends (live and plain modes alike): one line of counts, the
// tree of what was built or copied with how long each took (for a big run, the slowest few and a
// count of the rest), then every failure's root cause with the last lines of its build log and
// how many goals failed because of it. The root causes are found as `nixstate why` finds them
// (run-why.ts), from the same events.

import { stripVTControlCharacters } from "node:util";
import type { RunEvent } from "../../events/run-event.ts";
import { indexRun, type RunIndex, RunIndexer } from "../../events/run-index.ts";
import { cancelledBy, failedWaitees, firstLine, outcomeOf } from "../../events/run-why.ts";
import type { GoalKey } from "../../machines/worker-events.ts";
import { type GoalView, type ProgressModel, sameGoal } from "./progress-model.ts";
import { durationText, type Paint, plainPaint } from "./progress-style.ts";

/** The kinds of events the summary's reasoning about failures reads (run-index.ts). */
export const SUMMARY_INDEX_EVENTS: ReadonlySet<string> = new Set([
  "run.started",
  "run.ended",
  "worker.cancelAll",
  "target.started",
  "goal.created",
  "goal.reused",
  "goal.wants",
  "goal.waits",
  "goal.woken",
  "goal.stopped",
  "goal.done",
  "builder.started",
  "builder.exited",
]);

export interface SummaryOptions {
  paint?: Paint;
  /** The last lines of a derivation's build log (undefined: it has none). */
  logTail?: (drvPath: string, lines: number) => string[] | undefined;
  /** At most this many goals drawn as a tree; a bigger run lists its slowest `top`. */
  treeLimit?: number;
  top?: number;
  /** Log lines shown per root cause. */
  tailLines?: number;
  /** Root causes shown in full; the rest are named. */
  maxRootCauses?: number;
}

const WORKED = new Set(["built", "substituted"]);

/** The summary's lines, from the run's model and its events (those in SUMMARY_INDEX_EVENTS). */
export function endSummary(
  model: ProgressModel,
  events: readonly RunEvent[] | RunIndex,
  o: SummaryOptions = {},
): string[] {
  const paint = o.paint ?? plainPaint;
  const idx = Array.isArray(events) ? indexRun(events as RunEvent[]) : (events as RunIndex);
  const c = model.counts();
  const lines: string[] = [];
  const parts: string[] = [];
  if (c.built > 0) parts.push(paint("green", `${c.built} built`));
  if (c.substituted > 0) parts.push(paint("green", `${c.substituted} copied`));
  if (c.failed > 0) parts.push(paint("red", `${c.failed} failed`));
  if (c.dependencyFailed > 0)
    parts.push(paint("red", `${c.dependencyFailed} not built because of a failure`));
  if (c.cancelled > 0) parts.push(paint("yellow", `${c.cancelled} stopped`));
  const unfinished = c.waiting + c.running;
  if (unfinished > 0) parts.push(paint("yellow", `${unfinished} unfinished`));
  if (parts.length === 0) parts.push("nothing to do");
  const skipped = c.skipped > 0 ? `, ${c.skipped} up to date` : "";
  lines.push(
    `${paint("bold", "summary:")} ${parts.join(", ")}${skipped}, in ${durationText(model.lastMono)}`,
  );
  // Stopped by something other than a failed build (Ctrl-C): say what.
  const why = idx.cancelAll?.cause;
  if (why && !idx.goals.has(why)) lines.push(paint("yellow", `stopped: ${why}`));
  lines.push(...workDone(model, paint, o));
  lines.push(...failures(model, idx, paint, o));
  return lines;
}

/** What was built or copied: a tree from the targets down, or the slowest for a big run. */
function workDone(model: ProgressModel, paint: Paint, o: SummaryOptions): string[] {
  const shown = [...model.goals.values()].filter((g) => g.end !== undefined && g.end !== "skipped");
  if (shown.length === 0) return [];
  const limit = o.treeLimit ?? 20;
  if (shown.length > limit) {
    const top = o.top ?? 10;
    const slowest = shown
      .filter((g) => WORKED.has(g.end!))
      .sort((a, b) => (b.workMs ?? 0) - (a.workMs ?? 0));
    if (slowest.length === 0) return [];
    const total = slowest.reduce((n, g) => n + (g.workMs ?? 0), 0);
    const lines = [`slowest ${Math.min(top, slowest.length)} of ${slowest.length}:`];
    const width = Math.max(...slowest.slice(0, top).map((g) => g.name.length));
    for (const g of slowest.slice(0, top))
      lines.push(`  ${g.name.padEnd(width)}  ${paint("dim", timeOf(g))}`);
    if (slowest.length > top)
      lines.push(`  … and ${slowest.length - top} more (${durationText(total)} of work in all)`);
    return lines;
  }
  // Goals with nothing to show (valid already) are left out, their children lifted up.
  const keep = new Set(shown.map((g) => g.key));
  // Without recursion: thousands of up-to-date goals may lie between two shown ones.
  const children = (k: GoalKey, seen = new Set<GoalKey>()): GoalKey[] => {
    const out: GoalKey[] = [];
    const stack = [...(model.goals.get(k)?.waitsOn ?? [])].reverse();
    while (stack.length > 0) {
      const w = stack.pop()!;
      if (seen.has(w)) continue;
      seen.add(w);
      if (keep.has(w)) out.push(w);
      else stack.push(...[...(model.goals.get(w)?.waitsOn ?? [])].reverse());
    }
    return out;
  };
  // One walk for all targets: a run of thousands of up-to-date targets must not walk each closure.
  const below = new Set<GoalKey>();
  const roots = [...new Set(model.targets.values())].flatMap((k) =>
    keep.has(k) ? [k] : children(k, below),
  );
  for (const g of shown) if (!roots.includes(g.key) && !reachable(g.key)) roots.push(g.key);
  function reachable(k: GoalKey): boolean {
    for (const other of shown) if (other.key !== k && other.waitsOn.includes(k)) return true;
    return false;
  }
  // Each goal once (a DAG drawn as a tree would repeat shared inputs), durations in a column.
  const rows: [string, string][] = [];
  const drawn = new Set<GoalKey>();
  const draw = (k: GoalKey, prefix: string, branch: string) => {
    drawn.add(k);
    rows.push([
      `${prefix}${branch}${label(model.goals.get(k)!, paint)}`,
      timeOf(model.goals.get(k)!),
    ]);
    const kids = [...new Set(children(k))].filter((c) => !drawn.has(c));
    for (const c of kids) drawn.add(c);
    const below = prefix + (branch === "" ? "" : branch === "└─ " ? "   " : "│  ");
    for (const [i, c] of kids.entries()) {
      drawn.delete(c);
      draw(c, below, i === kids.length - 1 ? "└─ " : "├─ ");
    }
  };
  for (const r of [...new Set(roots)]) if (!drawn.has(r)) draw(r, "  ", "");
  const width = Math.max(...rows.map(([l]) => visibleLength(l)));
  return rows.map(([l, t]) =>
    `${l}${" ".repeat(width - visibleLength(l))}  ${paint("dim", t)}`.trimEnd(),
  );
}

/** Columns a line takes on screen (without its colour codes). */
function visibleLength(s: string): number {
  return stripVTControlCharacters(s).length;
}

function timeOf(g: GoalView): string {
  return g.workMs === undefined ? "" : durationText(g.workMs);
}

function label(g: GoalView, paint: Paint): string {
  const where =
    g.where === "remote" && g.machine
      ? ` on ${g.machine}`
      : g.end === "substituted"
        ? " (copied)"
        : "";
  if (g.end === "failed") return `${paint("red", `${g.name} failed`)}${where}`;
  if (g.end === "dependencyFailed") return paint("yellow", `${g.name} not built`);
  if (g.end === "cancelled") return paint("yellow", `${g.name} stopped`);
  return `${g.name}${where}`;
}

/** Each root cause of failure: what failed, its log's last lines, who failed because of it. */
function failures(model: ProgressModel, idx: RunIndex, paint: Paint, o: SummaryOptions): string[] {
  const roots: GoalKey[] = [];
  const because = new Map<GoalKey, GoalKey[]>();
  const causes = rootCauses(idx);
  for (const g of idx.goals.values()) {
    const outcome = outcomeOf(g, idx);
    if (outcome === "failed" || outcome === "cachedFailure") {
      roots.push(g.key);
    } else if (outcome === "dependencyFailed" || outcome === "cancelled") {
      for (const r of causes(g.key)) {
        const list = because.get(r) ?? [];
        list.push(g.key);
        because.set(r, list);
      }
    }
  }
  if (roots.length === 0) return [];
  roots.sort((a, b) => (idx.goals.get(a)!.done?.seq ?? 0) - (idx.goals.get(b)!.done?.seq ?? 0));
  const lines: string[] = [];
  const max = o.maxRootCauses ?? 5;
  for (const key of roots.slice(0, max)) {
    const g = model.goals.get(sameGoal(key));
    const record = idx.goals.get(key)!;
    const name = g?.name ?? key;
    const path = g?.path ?? key;
    const error = record.done?.error ?? "";
    // The path is on the line above.
    const head = firstLine(error).replace(/;$/, "").replace(`builder for '${path}' `, "builder ");
    lines.push(
      `${paint(["red", "bold"], "root cause:")} ${paint("red", name)} ${paint("dim", `(${path})`)}`,
    );
    if (head) lines.push(`  ${head}`);
    const tail =
      (g?.kind === "derivation" ? o.logTail?.(path, o.tailLines ?? 20) : undefined) ??
      tailInError(error);
    if (tail && tail.length > 0) {
      const what = tail.length === 1 ? "the last line" : `the last ${tail.length} lines`;
      lines.push(paint("dim", `  ${what} of its build log:`));
      for (const l of tail) lines.push(`  ${paint("dim", "│")} ${l}`);
      lines.push(paint("dim", `  the whole log: nixstate log ${path}`));
    } else if (error.includes("\n")) {
      for (const l of error.split("\n").slice(1)) lines.push(`  ${l}`);
    }
    const dependents = because.get(key) ?? [];
    if (dependents.length > 0) {
      const names = dependents.slice(0, 5).map((k) => model.goals.get(sameGoal(k))?.name ?? k);
      const more = dependents.length > 5 ? `, … ${dependents.length - 5} more` : "";
      lines.push(
        `  ${paint("red", `${dependents.length} ${dependents.length === 1 ? "goal" : "goals"} not built because of it`)}: ${names.join(", ")}${more}`,
      );
    }
  }
  if (roots.length > max) {
    const rest = roots.slice(max).map((k) => model.goals.get(sameGoal(k))?.name ?? k);
    lines.push(`${roots.length - max} more root causes: ${rest.join(", ")}`);
  }
  return lines;
}

/**
 * The goals that failed by themselves under each goal, as run-why.ts blames them (the waitees
 * that failed; for a cancelled goal, the build whose failure stopped the run), memoised: calling
 * `traceFailure` for each of a cascade's goals walks the cascade again each time (minutes at a
 * few thousand goals).
 */
function rootCauses(idx: RunIndex): (key: GoalKey) => ReadonlySet<GoalKey> {
  const memo = new Map<GoalKey, ReadonlySet<GoalKey>>();
  const none: ReadonlySet<GoalKey> = new Set();
  const blamedBy = (key: GoalKey): GoalKey[] | "root" => {
    const g = idx.goals.get(key);
    if (!g) return [];
    const outcome = outcomeOf(g, idx);
    if (outcome === "failed" || outcome === "cachedFailure") return "root";
    if (outcome === "dependencyFailed") return failedWaitees(g, idx);
    if (outcome !== "cancelled") return [];
    const by = cancelledBy(g, idx);
    return by !== undefined && by !== key && idx.goals.has(by) ? [by] : [];
  };
  // Depth first without recursion: a cascade can be thousands of goals deep.
  return (start) => {
    const visiting = new Map<GoalKey, GoalKey[]>();
    const stack = [start];
    while (stack.length > 0) {
      const key = stack.at(-1)!;
      if (memo.has(key)) {
        stack.pop();
        continue;
      }
      const below = visiting.get(key);
      if (below === undefined) {
        const blamed = blamedBy(key);
        if (blamed === "root") {
          memo.set(key, new Set([key]));
          stack.pop();
          continue;
        }
        visiting.set(key, blamed);
        // A goal already on the walk is a cycle the worker cut: it blames nobody further.
        for (const b of blamed) if (!memo.has(b) && !visiting.has(b)) stack.push(b);
        continue;
      }
      const sets = below.flatMap((b) => {
        const r = memo.get(b);
        return r && r.size > 0 ? [r] : [];
      });
      // One blamed goal (a chain): share its set rather than copy it.
      memo.set(
        key,
        sets.length === 0
          ? none
          : sets.length === 1
            ? sets[0]!
            : new Set(sets.flatMap((r) => [...r])),
      );
      stack.pop();
    }
    return memo.get(start) ?? none;
  };
}

/** The log lines Nix's message quotes (`last 3 log lines:\n> …`), when the store has no log. */
function tailInError(error: string): string[] | undefined {
  const m = /\nlast \d+ log lines:\n((?:> .*\n)*)For full logs/.exec(error);
  return m ? m[1]!.split("\n").flatMap((l) => (l ? [l.slice(2)] : [])) : undefined;
}

/** Keeps the events the summary reasons over (a run's transitions and effects are left out). */
export class SummaryEvents {
  private readonly indexer = new RunIndexer();
  /** The run's index so far (built as events come: a big run's events are not kept). */
  get index(): RunIndex {
    return this.indexer.index;
  }
  readonly listener = (e: RunEvent): void => {
    if (!SUMMARY_INDEX_EVENTS.has(e.type)) return;
    // A goal's input (its derivation's facts, settings) is most of a kept goal.created event,
    // and the summary never reads it.
    this.indexer.add(e.type === "goal.created" ? { ...e, input: null } : e);
  };
}
