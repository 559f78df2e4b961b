// How long the rest of a run should take, from how long the same derivations took before. The
// history is read from earlier runs in the run log: each builder's run time (builder.started →
// builder.exited) by derivation name and machine, each substitution's (goal created → done) by
// path name; the estimate of a goal is the median of its samples. The time left is the longest
// chain of not-yet-done goals, each counted at its estimate (less what a running one has done
// already), or the remaining work spread over the build slots, whichever is longer: the critical
// path bounds a wide run badly with -j1.
import { existsSync } from "node:fs";
import type { RunEvent } from "../../events/run-event.ts";
import { RunLog, runLogFile } from "../../events/run-log.ts";
import { type GoalKey, parseGoalKey } from "../../machines/worker-events.ts";
import { type GoalView, storeName } from "./progress-model.ts";

/** Durations by name (and machine), in milliseconds. */
export class BuildHistory {
  private readonly byMachine = new Map<string, number[]>();
  private readonly byName = new Map<string, number[]>();
  private medians = new Map<string, number>();

  static empty(): BuildHistory {
    return new BuildHistory();
  }

  /** Record one duration: a build of `name` on `machine`, or a substitution (`machine` undefined). */
  add(name: string, machine: string | undefined, ms: number): void {
    const push = (m: Map<string, number[]>, k: string) => {
      const list = m.get(k);
      if (list) list.push(ms);
      else m.set(k, [ms]);
    };
    push(this.byName, name);
    if (machine !== undefined) push(this.byMachine, `${name}\0${machine}`);
    this.medians = new Map();
  }

  /** The median duration of `name` on `machine` (else on any machine), if it was seen. */
  estimate(name: string, machine?: string): number | undefined {
    const key = machine === undefined ? name : `${name}\0${machine}`;
    const cached = this.medians.get(key);
    if (cached !== undefined) return cached;
    const samples =
      (machine === undefined ? undefined : this.byMachine.get(key)) ?? this.byName.get(name);
    if (!samples) return undefined;
    const m = median(samples);
    this.medians.set(key, m);
    return m;
  }

  get size(): number {
    return this.byName.size;
  }

  /**
   * The durations of the newest `runs` finished runs in `stateDir`'s run log (none when there is
   * no log: reading must not create one). Reading costs about 3 µs per logged event (every batch
   * is inflated), so older runs are read only while the events read stay under `maxEvents`; the
   * newest is always read.
   */
  static load(stateDir: string, opts: { runs?: number; maxEvents?: number } = {}): BuildHistory {
    const h = new BuildHistory();
    if (!existsSync(runLogFile(stateDir))) return h;
    let log: RunLog | undefined;
    try {
      log = RunLog.open(stateDir);
      const finished = log.runs().filter((r) => r.state !== "running");
      const budget = opts.maxEvents ?? 200_000;
      let read = 0;
      for (const run of finished.slice(-(opts.runs ?? 10)).reverse()) {
        const size = log.extent(run.id).events;
        if (read > 0 && read + size > budget) break;
        read += size;
        h.addRun(log.events(run.id, { types: HISTORY_EVENTS }));
      }
    } catch {
      // An unreadable log only costs the estimate: the build goes on without one.
    } finally {
      log?.close();
    }
    return h;
  }

  /** Take the durations of one run's events (at least those in HISTORY_EVENTS). */
  addRun(events: Iterable<RunEvent>): void {
    const started = new Map<string, { mono: number; machine: string }>();
    const created = new Map<string, number>();
    for (const e of events) {
      switch (e.type) {
        case "builder.started":
          started.set(e.goal, { mono: e.mono, machine: e.machine });
          break;
        case "builder.exited": {
          const s = started.get(e.goal);
          if (s) this.add(goalName(e.goal), s.machine, e.mono - s.mono);
          started.delete(e.goal);
          break;
        }
        case "goal.created":
          if (e.kind === "substitution") created.set(e.goal, e.mono);
          break;
        case "goal.done": {
          const c = created.get(e.goal);
          if (c !== undefined && e.status === "substituted")
            this.add(goalName(e.goal), undefined, e.mono - c);
          break;
        }
        default:
          break;
      }
    }
  }
}

/** The kinds of events the history reads. */
export const HISTORY_EVENTS: ReadonlySet<string> = new Set([
  "builder.started",
  "builder.exited",
  "goal.created",
  "goal.done",
]);

function goalName(key: GoalKey): string {
  return storeName(parseGoalKey(key).path);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Eta {
  /** Milliseconds left, counting only goals with an estimate; undefined when none has one. */
  remainingMs: number | undefined;
  /** Goals not done that have no history (counted as taking no time). */
  unknown: number;
  /** The chain that sets the estimate, first to run first. */
  criticalPath: GoalKey[];
}

/**
 * The time left: the longest chain through the goals not yet done, each at its estimate (a
 * running one at what is left of it, never below nothing), or all that work spread over `slots`,
 * whichever is longer. Goals whose estimate is undefined count as taking no time, and are counted.
 */
export function estimateRemaining(
  goals: ReadonlyMap<GoalKey, GoalView>,
  estimate: (g: GoalView) => number | undefined,
  now: number,
  slots: number,
): Eta {
  const own = new Map<GoalKey, number>();
  let unknown = 0;
  let known = 0;
  let work = 0;
  for (const g of goals.values()) {
    if (g.phase === "done") continue;
    const est = estimate(g);
    if (est === undefined) {
      unknown++;
      own.set(g.key, 0);
      continue;
    }
    known++;
    const left = g.phase === "running" && g.started !== undefined ? est - (now - g.started) : est;
    own.set(g.key, Math.max(0, left));
    work += Math.max(0, left);
  }
  // Longest path to a leaf, memoised, depth first without recursion (chains can be thousands of
  // goals long); a goal already on the walk counts as nothing (a cycle the worker cut).
  const total = new Map<GoalKey, { ms: number; next: GoalKey | undefined }>();
  const longest = (start: GoalKey): number => {
    const walking = new Set<GoalKey>();
    const stack = [start];
    while (stack.length > 0) {
      const k = stack.at(-1)!;
      if (total.has(k)) {
        stack.pop();
        continue;
      }
      const waits = goals.get(k)!.waitsOn.filter((w) => own.has(w));
      if (!walking.has(k)) {
        walking.add(k);
        for (const w of waits) if (!total.has(w) && !walking.has(w)) stack.push(w);
        continue;
      }
      let best = 0;
      let next: GoalKey | undefined;
      for (const w of waits) {
        const t = total.get(w);
        if (t && (next === undefined || t.ms > best)) {
          best = t.ms;
          next = w;
        }
      }
      total.set(k, { ms: own.get(k)! + best, next });
      stack.pop();
    }
    return total.get(start)!.ms;
  };
  let top: GoalKey | undefined;
  let cp = 0;
  for (const k of own.keys()) {
    const ms = longest(k);
    if (top === undefined || ms > cp) {
      cp = ms;
      top = k;
    }
  }
  const path = new Set<GoalKey>();
  for (let k = top; k !== undefined && !path.has(k); k = total.get(k)?.next) path.add(k);
  return {
    remainingMs: known === 0 ? undefined : Math.max(cp, work / Math.max(1, slots)),
    unknown,
    criticalPath: [...path].reverse(),
  };
}

/** A goal's estimate from the history: builds by name and machine, substitutions by name. */
export function historyEstimate(history: BuildHistory): (g: GoalView) => number | undefined {
  return (g) =>
    g.kind === "substitution"
      ? history.estimate(g.name)
      : history.estimate(g.name, g.where === "substituter" ? undefined : g.machine);
}
