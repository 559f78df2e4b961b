// `nixstate why PATH`: what happened to one derivation or path in a recorded run, and why — read
// from the run's events alone. A failure is split into its root cause and the cascade
// (NixOS/nix#11347): a goal that failed because an input failed is followed down, input by input,
// to the goal that failed by itself; a goal cancelled because another build failed is followed to
// that build. The chain of requests from a top-level target down to the goal says why it was
// wanted at all. The goals come indexed by run-index.ts; the answer in words is why-text.ts.

import { lstatSync, readlinkSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseGoalKey } from "../machines/worker-events.ts";
import { type BuildStatusName, isSuccess } from "../protocol/build-result.ts";
import type { GoalCause, GoalKey, GoalKind } from "./run-event.ts";
import { type GoalRecord, indexRun, type RunIndex } from "./run-index.ts";
import type { RunLog } from "./run-log.ts";

export class WhyError extends Error {
  override name = "WhyError";
}

/** No recorded run has a goal for what was asked about. */
export class NotInAnyRunError extends WhyError {
  override name = "NotInAnyRunError";
  constructor(readonly query: string) {
    const json = query.endsWith(".json")
      ? " (a .json file is found only when it was a target itself; otherwise name its .drv path)"
      : "";
    super(
      `no recorded run built, substituted or checked '${query}'${json}; give a .drv path, an output path or a store path ('nixstate runs' lists the recorded runs; builds run with --no-record are not kept)`,
    );
  }
}

/** The run asked for (`--run`) has no goal for what was asked about. */
export class NotInRunError extends WhyError {
  override name = "NotInRunError";
  constructor(
    readonly query: string,
    readonly run: number,
  ) {
    super(
      `run ${run} has no goal for '${query}'; leave out --run to search every recorded run ('nixstate runs' lists them)`,
    );
  }
}

// --- What happened to a goal -------------------------------------------------------------------

export type Outcome =
  /** Its builder ran and succeeded. */
  | "built"
  /** Copied from a substituter. */
  | "substituted"
  /** Nothing to do: valid before the run looked. */
  | "alreadyValid"
  /** Nothing to do: another process made it valid while this run waited for its lock. */
  | "validUnderLock"
  /** Not built: it failed before and `--cache-failures` remembers it. */
  | "cachedFailure"
  /** It failed by itself: its builder or its own step. */
  | "failed"
  /** It failed because something it needed failed. */
  | "dependencyFailed"
  /** Stopped because another build failed (no --keep-going). */
  | "cancelled"
  /** A substitution no substituter could do (the derivation is built instead, if there is one). */
  | "noSubstituter"
  /** The log ends before it did (interrupted run, or still running). */
  | "unfinished";

/** Success as Nix counts it, for a derivation goal's status (a BuildStatus name). */
const succeeded = (status: string) => isSuccess(status as BuildStatusName);
const CANCELLED = "build cancelled";

/** Whether a goal's end counts as a failure for the goals waiting on it. */
function failedEnd(g: GoalRecord): boolean {
  const d = g.done;
  if (!d) return false;
  if (g.kind === "substitution") return d.status === "failed" || d.status === "incompleteClosure";
  return !succeeded(d.status);
}

export function outcomeOf(g: GoalRecord, idx: RunIndex): Outcome {
  const d = g.done;
  if (!d) return "unfinished";
  const s = d.status;
  if (g.kind === "substitution") {
    if (s === "substituted") return "substituted";
    if (s === "alreadyValid") return g.validUnderLock ? "validUnderLock" : "alreadyValid";
    if (s === "noSubstituters") return "noSubstituter";
    if (g.stopped || d.error.startsWith(CANCELLED)) return "cancelled";
    if (s === "incompleteClosure") return "dependencyFailed";
    return failedWaitees(g, idx).length > 0 ? "dependencyFailed" : "failed";
  }
  switch (s) {
    case "Built":
      return "built";
    case "Substituted":
      return "substituted";
    case "AlreadyValid":
    case "ResolvesToAlreadyValid":
      return g.validUnderLock ? "validUnderLock" : "alreadyValid";
    case "CachedFailure":
      return "cachedFailure";
    case "DependencyFailed":
      return "dependencyFailed";
    default:
      return g.stopped || d.error.startsWith(CANCELLED) ? "cancelled" : "failed";
  }
}

/**
 * The goals whose failure made `g` fail: the one that woke it early (no --keep-going), else every
 * goal it waited for that failed before it ended. When none failed outright, a waitee that did not
 * succeed (an input source no substituter has) is blamed.
 */
export function failedWaitees(g: GoalRecord, idx: RunIndex): GoalKey[] {
  const before = (w: GoalRecord) => !g.done || (w.done !== undefined && w.done.seq < g.done.seq);
  const waitees = g.waits
    .map((k) => idx.goals.get(k))
    .filter((w): w is GoalRecord => w?.done !== undefined && before(w));
  let failed = waitees.filter(failedEnd);
  if (failed.length === 0)
    failed = waitees.filter(
      (w) =>
        !succeeded(w.done!.status) && !["substituted", "alreadyValid"].includes(w.done!.status),
    );
  failed.sort((a, b) => a.done!.seq - b.done!.seq);
  const keys = failed.map((w) => w.key);
  const by = g.woken?.by;
  if (by && idx.goals.has(by)) return [by, ...keys.filter((k) => k !== by)];
  return keys;
}

/** The goal whose failure cancelled `g` when it is one of this run's goals, else why it stopped. */
export function cancelledBy(g: GoalRecord, idx: RunIndex): GoalKey | string | undefined {
  const reasons = [g.stopped?.by, idx.cancelAll?.cause];
  return reasons.find((r) => r !== undefined && r !== g.key && idx.goals.has(r)) ?? reasons[0];
}

// --- The answer --------------------------------------------------------------------------------

export interface GoalFacts {
  goal: GoalKey;
  /** The .drv path or store path. */
  path: string;
  kind: GoalKind;
  outcome: Outcome;
  /** Nix's BuildStatus name (derivations) or the substitution's status; absent if unfinished. */
  status: string | undefined;
  /** The first line of its error, if it has one. */
  error: string | undefined;
  /** Output name (or path, for substitutions) → store path, of what it made valid. */
  outputs: Record<string, string>;
  /** Milliseconds its builder ran, if it ran one. */
  buildMs: number | undefined;
  /** Cancelled goals: the failed goal that stopped the run (a key), or what else stopped it. */
  cancelledBy: string | undefined;
}

/** One request on the way from a top-level target down to the goal. */
export interface WantedLink {
  goal: GoalKey;
  /** How the goal above asked for this one (`target` for the first link). */
  as: GoalCause["kind"];
}

export interface WhyAnswer {
  run: number;
  query: string;
  /** When the query named an output of the derivation: that output's name. */
  output: string | undefined;
  goal: GoalFacts;
  /**
   * For a goal that failed because of another or was cancelled: the goals from it down to the
   * one that failed by itself, each blamed by the one before (the first is the goal itself).
   */
  failureChain: GoalFacts[];
  /** Every goal that failed by itself under this one (the first is the end of failureChain). */
  rootCauses: GoalFacts[];
  /** Why it was wanted: a top-level target first, then each request down to the goal. */
  wantedBy: {
    /** The target as given to the build, and its index among the targets (0-based). */
    target: { index: number; text: string } | undefined;
    chain: WantedLink[];
  };
  /** How many goals asked for it directly (it may be wanted along more than one chain). */
  requestedBy: number;
}

/** The first line of a (possibly multi-line) error. */
export const firstLine = (s: string) => s.split("\n")[0] ?? "";

export function goalFacts(g: GoalRecord, idx: RunIndex): GoalFacts {
  const started = g.builderStarted;
  const exited = g.builderExited;
  const outcome = outcomeOf(g, idx);
  return {
    goal: g.key,
    path: parseGoalKey(g.key).path,
    kind: g.kind,
    outcome,
    status: g.done?.status,
    error: g.done?.error ? firstLine(g.done.error) : undefined,
    outputs: g.done?.outputs ?? {},
    buildMs:
      started && exited && exited.seq > started.seq
        ? Math.max(0, exited.mono - started.mono)
        : undefined,
    cancelledBy: outcome === "cancelled" ? cancelledBy(g, idx) : undefined,
  };
}

/** The goal a failure (or cancellation) of `g` is blamed on, if any. */
function blamed(g: GoalRecord, idx: RunIndex): GoalKey[] {
  const o = outcomeOf(g, idx);
  if (o === "dependencyFailed") return failedWaitees(g, idx);
  if (o === "cancelled") {
    const by = cancelledBy(g, idx);
    return by && by !== g.key && idx.goals.has(by) ? [by] : [];
  }
  return [];
}

const FAILED = new Set<Outcome>(["failed", "dependencyFailed", "cancelled", "cachedFailure"]);

/** Follow a failure down to the goals that failed by themselves. */
export function traceFailure(
  key: GoalKey,
  idx: RunIndex,
): { chain: GoalFacts[]; rootCauses: GoalFacts[] } {
  const g = idx.goals.get(key);
  if (!g || !FAILED.has(outcomeOf(g, idx))) return { chain: [], rootCauses: [] };
  // The chain: always the first goal blamed, down to one that blames nobody.
  const chain: GoalFacts[] = [];
  const onChain = new Set<GoalKey>();
  for (let k: GoalKey | undefined = key; k !== undefined && !onChain.has(k); ) {
    const cur: GoalRecord = idx.goals.get(k)!;
    onChain.add(k);
    chain.push(goalFacts(cur, idx));
    k = blamed(cur, idx)[0];
  }
  // Every root cause: all goals blamed, depth first, that blame nobody.
  const roots: GoalFacts[] = [];
  const seen = new Set<GoalKey>();
  const visit = (k: GoalKey) => {
    if (seen.has(k)) return;
    seen.add(k);
    const cur = idx.goals.get(k)!;
    const next = blamed(cur, idx).filter((b) => !seen.has(b));
    if (blamed(cur, idx).length === 0) roots.push(goalFacts(cur, idx));
    for (const b of next) visit(b);
  };
  visit(key);
  const last = chain.at(-1)!;
  roots.sort((a, b) => (a.goal === last.goal ? -1 : b.goal === last.goal ? 1 : 0));
  return { chain, rootCauses: roots };
}

/** The shortest chain of requests from a top-level target down to the goal. */
export function wantedBy(key: GoalKey, idx: RunIndex): WhyAnswer["wantedBy"] {
  // Breadth first upwards, so the chain shown is the shortest one; requests in log order.
  // `below.get(p)`: the goal `p` asked for on the way down to `key`, and how it asked.
  const below = new Map<GoalKey, { goal: GoalKey; as: GoalCause["kind"] } | null>([[key, null]]);
  const queue: GoalKey[] = [key];
  while (queue.length > 0) {
    const k = queue.shift()!;
    const g = idx.goals.get(k);
    if (!g) continue;
    const target = g.causes.find((c) => c.kind === "target");
    if (target) {
      const chain: WantedLink[] = [];
      let as: GoalCause["kind"] = "target";
      for (let cur: GoalKey | undefined = k; cur !== undefined; ) {
        chain.push({ goal: cur, as });
        const next: { goal: GoalKey; as: GoalCause["kind"] } | null | undefined = below.get(cur);
        if (!next) break;
        as = next.as;
        cur = next.goal;
      }
      return {
        target: { index: target.index, text: idx.targets[target.index] ?? `#${target.index}` },
        chain,
      };
    }
    for (const c of g.causes) {
      const up = c.kind === "target" ? undefined : "of" in c ? c.of : c.for;
      if (up === undefined || below.has(up)) continue;
      below.set(up, { goal: k, as: c.kind });
      queue.push(up);
    }
  }
  return {
    target: undefined,
    chain: [{ goal: key, as: idx.goals.get(key)?.causes[0]?.kind ?? "target" }],
  };
}

// --- Finding the goal --------------------------------------------------------------------------

/** Ways of writing what the user named: as given, made absolute, a `result` link followed. */
export function queryForms(text: string, cwd = process.cwd()): string[] {
  const forms = [text];
  const bang = text.indexOf("!");
  if (bang > 0) forms.push(text.slice(0, bang));
  for (const f of [...forms]) {
    const abs = isAbsolute(f) ? f : resolve(cwd, f);
    if (!forms.includes(abs)) forms.push(abs);
    try {
      if (lstatSync(abs).isSymbolicLink()) {
        const to = readlinkSync(abs);
        forms.push(isAbsolute(to) ? to : resolve(dirname(abs), to));
      }
    } catch {
      // Not a file here: a store path of another machine, or gone; match it as written.
    }
  }
  return forms;
}

/** The goal in this run that `forms` names, and the output name when an output path matched. */
export function findGoal(
  idx: RunIndex,
  forms: string[],
): { goal: GoalKey; output?: string } | undefined {
  const all = [...idx.goals.values()].filter((g) => g.created || g.done);
  const newest = (gs: GoalRecord[]) =>
    gs.sort((a, b) => (b.created?.seq ?? 0) - (a.created?.seq ?? 0))[0];
  for (const f of forms) {
    if (/^(drv|sub):/.test(f) && idx.goals.has(f)) return { goal: f };
    // A .drv path: its (newest) derivation goal.
    const byDrv = newest(
      all.filter((g) => g.kind === "derivation" && parseGoalKey(g.key).path === f),
    );
    if (byDrv) return { goal: byDrv.key };
    // An output path: the derivation goal that made it valid, else one that looked at it.
    for (const made of [true, false]) {
      const hits = all.filter(
        (g) =>
          g.kind === "derivation" &&
          (made
            ? Object.values(g.done?.outputs ?? {}).includes(f)
            : g.outputsSeen.some((o) => o.path === f)),
      );
      const hit = newest(hits);
      if (hit) {
        const output =
          Object.entries(hit.done?.outputs ?? {}).find(([, p]) => p === f)?.[0] ??
          hit.outputsSeen.find((o) => o.path === f)?.name;
        return { goal: hit.key, ...(output ? { output } : {}) };
      }
    }
    // A store path only a substitution goal had (a reference, an input source).
    const bySub = newest(
      all.filter((g) => g.kind === "substitution" && parseGoalKey(g.key).path === f),
    );
    if (bySub) return { goal: bySub.key };
  }
  // A target as it was given to the build (`top.json`).
  for (const f of forms) {
    const i = idx.targets.findIndex((t) => t === f || resolve(idx.cwd, t) === f);
    const goal = i >= 0 ? idx.targetGoals.get(i) : undefined;
    if (goal !== undefined) return { goal };
  }
  return undefined;
}

/** Answer `why` from one run's events. */
export function explain(idx: RunIndex, run: number, query: string, forms: string[]): WhyAnswer {
  const found = findGoal(idx, forms);
  if (!found) throw new NotInRunError(query, run);
  const g = idx.goals.get(found.goal)!;
  const trace = traceFailure(g.key, idx);
  const requesters = new Set(
    g.causes.map((c) => (c.kind === "target" ? `target ${c.index}` : "of" in c ? c.of : c.for)),
  );
  return {
    run,
    query,
    output: found.output,
    goal: goalFacts(g, idx),
    failureChain: trace.chain,
    rootCauses: trace.rootCauses,
    wantedBy: wantedBy(g.key, idx),
    requestedBy: requesters.size,
  };
}

/**
 * Answer `why` for `query` in run `run`, or in the newest run that has a goal for it.
 * `forms` are the ways of writing the query to try (see queryForms).
 */
export function why(
  log: RunLog,
  query: string,
  opts: { run?: number; forms?: string[] } = {},
): WhyAnswer {
  const forms = opts.forms ?? queryForms(query);
  if (opts.run !== undefined) {
    log.run(opts.run);
    return explain(indexRun(log.events(opts.run)), opts.run, query, forms);
  }
  // Newest first; the log's public reading API only, so it holds whatever its schema.
  for (const { id } of log.runs().reverse()) {
    const idx = indexRun(log.events(id));
    if (findGoal(idx, forms)) return explain(idx, id, query, forms);
  }
  throw new NotInAnyRunError(query);
}
