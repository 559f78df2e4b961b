// `nixstate why PATH`: what happened to one derivation or path in a recorded run, and why — read
// from the run's events alone. A failure is split into its root cause and the cascade
// (NixOS/nix#11347): a goal that failed because an input failed is followed down, input by input,
// to the goal that failed by itself; a goal cancelled because another build failed is followed to
// that build. The chain of requests from a top-level target down to the goal says why it was
// wanted at all.
import { lstatSync, readlinkSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import type { GoalCause, GoalKey, GoalKind, RunEvent, RunEventOf } from "./run-event.ts";
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

// --- The run, indexed by goal ------------------------------------------------------------------

/** One output as queryOutputs and lockOutputs answer it. */
interface OutputStatusJson {
  name: string;
  path: string;
  valid: boolean;
  wanted: boolean;
}

/** Everything the log says about one goal. */
export interface GoalRecord {
  key: GoalKey;
  kind: GoalKind;
  created: RunEventOf<"goal.created"> | undefined;
  /** Every request for it: its creation's, then reuses' and `wants`' causes, in order. */
  causes: GoalCause[];
  /** Every goal it waited for, in the order first waited for. */
  waits: GoalKey[];
  woken: RunEventOf<"goal.woken"> | undefined;
  stopped: RunEventOf<"goal.stopped"> | undefined;
  done: RunEventOf<"goal.done"> | undefined;
  /** First builder start and last builder exit (a goal may try more than one machine). */
  builderStarted: RunEventOf<"builder.started"> | undefined;
  builderExited: RunEventOf<"builder.exited"> | undefined;
  /** Outputs as the goal's queries and lock re-checks saw them. */
  outputsSeen: OutputStatusJson[];
  /** The re-check under the lock found every wanted output valid (another process made them). */
  validUnderLock: boolean;
}

export interface RunIndex {
  targets: string[];
  cwd: string;
  goals: Map<GoalKey, GoalRecord>;
  /** Top-level target index → its goal. */
  targetGoals: Map<number, GoalKey>;
  cancelAll: RunEventOf<"worker.cancelAll"> | undefined;
  ended: RunEventOf<"run.ended"> | undefined;
  lastMono: number;
}

function isOutputStatusList(v: unknown): v is OutputStatusJson[] {
  return (
    Array.isArray(v) &&
    v.every(
      (o) =>
        typeof o === "object" && o !== null && typeof (o as OutputStatusJson).path === "string",
    )
  );
}

export function indexRun(events: RunEvent[]): RunIndex {
  const goals = new Map<GoalKey, GoalRecord>();
  const idx: RunIndex = {
    targets: [],
    cwd: "/",
    goals,
    targetGoals: new Map(),
    cancelAll: undefined,
    ended: undefined,
    lastMono: 0,
  };
  const goal = (key: GoalKey, kind?: GoalKind): GoalRecord => {
    let g = goals.get(key);
    if (!g) {
      g = {
        key,
        kind: kind ?? (key.startsWith("sub:") ? "substitution" : "derivation"),
        created: undefined,
        causes: [],
        waits: [],
        woken: undefined,
        stopped: undefined,
        done: undefined,
        builderStarted: undefined,
        builderExited: undefined,
        outputsSeen: [],
        validUnderLock: false,
      };
      goals.set(key, g);
    }
    return g;
  };
  for (const e of events) {
    idx.lastMono = Math.max(idx.lastMono, e.mono);
    switch (e.type) {
      case "run.started":
        idx.targets = e.request.targets;
        idx.cwd = e.request.cwd;
        break;
      case "run.ended":
        idx.ended = e;
        break;
      case "worker.cancelAll":
        idx.cancelAll ??= e;
        break;
      case "target.started":
        idx.targetGoals.set(e.index, e.goal);
        goal(e.goal);
        break;
      case "goal.created": {
        const g = goal(e.goal, e.kind);
        g.kind = e.kind;
        g.created = e;
        g.causes.unshift(e.cause);
        if (e.cause.kind === "target" && !idx.targetGoals.has(e.cause.index))
          idx.targetGoals.set(e.cause.index, e.goal);
        break;
      }
      case "goal.reused":
      case "goal.wants":
        goal(e.goal).causes.push(e.cause);
        if (e.cause.kind === "target" && !idx.targetGoals.has(e.cause.index))
          idx.targetGoals.set(e.cause.index, e.goal);
        break;
      case "goal.waits": {
        const g = goal(e.goal);
        for (const w of e.on) if (!g.waits.includes(w)) g.waits.push(w);
        break;
      }
      case "goal.woken":
        goal(e.goal).woken ??= e;
        break;
      case "goal.stopped":
        goal(e.goal).stopped ??= e;
        break;
      case "goal.done":
        goal(e.goal, e.kind).done = e;
        break;
      case "builder.started":
        goal(e.goal).builderStarted ??= e;
        break;
      case "builder.exited":
        goal(e.goal).builderExited = e;
        break;
      case "effect.done": {
        const g = goal(e.goal);
        if (e.effect === "queryOutputs" || e.effect === "lockOutputs") {
          if (isOutputStatusList(e.output)) {
            g.outputsSeen.push(...e.output);
            if (e.effect === "lockOutputs") {
              const wanted = e.output.filter((o) => o.wanted);
              g.validUnderLock = wanted.length > 0 && wanted.every((o) => o.valid);
            }
          }
        } else if (e.effect === "lockPath" && e.output === true) {
          // A substitution's re-check under its lock: another process made the path valid.
          g.validUnderLock = true;
        }
        break;
      }
      default:
        break;
    }
  }
  return idx;
}

// --- Goals in words ----------------------------------------------------------------------------

/** A goal key taken apart: `drv:<path>#<mode>[@n]` or `sub:<path>[@n]`. */
export function parseGoalKey(key: GoalKey): { path: string; mode?: string; attempt: number } {
  const d = /^drv:(.*)#([A-Za-z]+)(?:@(\d+))?$/.exec(key);
  if (d) return { path: d[1]!, mode: d[2]!, attempt: d[3] ? Number(d[3]) : 1 };
  const s = /^sub:(.*?)(?:@(\d+))?$/.exec(key);
  if (s) return { path: s[1]!, attempt: s[2] ? Number(s[2]) : 1 };
  return { path: key, attempt: 1 };
}

/** A goal as a Nix user names it: its .drv path or store path, and what is unusual about it. */
export function goalLabel(key: GoalKey): string {
  const { path, mode, attempt } = parseGoalKey(key);
  const notes: string[] = [];
  if (mode && mode !== "normal") notes.push(`--${mode}`);
  if (attempt > 1) notes.push(`started again, ${ordinal(attempt)} time`);
  return notes.length ? `${path} (${notes.join(", ")})` : path;
}

function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${s}`;
}

export const firstLine = (s: string) => s.split("\n")[0] ?? "";

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

const SUCCESS = new Set(["Built", "Substituted", "AlreadyValid", "ResolvesToAlreadyValid"]);
const CANCELLED = "build cancelled";

/** Whether a goal's end counts as a failure for the goals waiting on it. */
function failedEnd(g: GoalRecord): boolean {
  const d = g.done;
  if (!d) return false;
  if (g.kind === "substitution") return d.status === "failed" || d.status === "incompleteClosure";
  return !SUCCESS.has(d.status);
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
        !SUCCESS.has(w.done!.status) && !["substituted", "alreadyValid"].includes(w.done!.status),
    );
  failed.sort((a, b) => a.done!.seq - b.done!.seq);
  const keys = failed.map((w) => w.key);
  const by = g.woken?.by;
  if (by && idx.goals.has(by)) return [by, ...keys.filter((k) => k !== by)];
  return keys;
}

/** The goal whose failure cancelled `g` when it is one of this run's goals, else why it stopped. */
function cancelledBy(g: GoalRecord, idx: RunIndex): GoalKey | string | undefined {
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

// --- In words ----------------------------------------------------------------------------------

function ms(n: number): string {
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

/** What happened to a goal, in one line, without its name. */
export function describeOutcome(f: GoalFacts): string {
  switch (f.outcome) {
    case "built":
      return f.buildMs === undefined ? "was built" : `was built (its builder ran ${ms(f.buildMs)})`;
    case "substituted":
      return "was substituted (copied from a binary cache), not built";
    case "alreadyValid":
      return f.kind === "derivation"
        ? "was not built: its outputs were already valid"
        : "was already valid";
    case "validUnderLock":
      return f.kind === "derivation"
        ? "was not built: another process built it while this build waited for the lock on its outputs"
        : "was not substituted: another process made it valid while this build waited for its lock";
    case "cachedFailure":
      return "was not built: it failed in an earlier build, and that failure is cached (--cache-failures; 'nixstate failed clear' forgets it)";
    case "failed":
      return `failed by itself (${f.status})${f.error ? `: ${f.error}` : ""}`;
    case "dependencyFailed":
      return f.kind === "derivation"
        ? "was not built: a dependency failed"
        : "was not substituted: a path it refers to could not be made valid";
    case "cancelled":
      return f.cancelledBy === undefined || /^(drv|sub):/.test(f.cancelledBy)
        ? "was cancelled because another build failed (use --keep-going to go on after failures)"
        : `was stopped before it ended (${f.cancelledBy})`;
    case "noSubstituter":
      return "could not be substituted: no substituter has it";
    case "unfinished":
      return "had not finished when the run's log ends (the run was interrupted or is still running)";
  }
}

const HOW_WANTED: Record<GoalCause["kind"], string> = {
  target: "",
  input: "needs",
  inputSource: "needs the input source",
  substitution: "substitutes",
  reference: "needs the reference",
  repair: "repairs",
};

/** The answer as a Nix user reads it. */
export function whyText(a: WhyAnswer): string {
  const g = a.goal;
  const subject = a.output
    ? `${a.query} (output '${a.output}' of ${goalLabel(g.goal)})`
    : goalLabel(g.goal);
  const lines = [`run ${a.run}: ${subject} ${describeOutcome(g)}`];
  const chain = a.failureChain;
  if (chain.length > 1) {
    for (let i = 1; i < chain.length; i++) {
      const f = chain[i]!;
      lines.push(
        chain[i - 1]!.outcome === "cancelled"
          ? `  stopped by the failure of ${goalLabel(f.goal)}, which ${describeOutcome(f)}`
          : `  because ${goalLabel(f.goal)} ${describeOutcome(f)}`,
      );
    }
  }
  if (a.rootCauses.length > 0 && chain.length > 1) {
    const roots = a.rootCauses;
    lines.push(
      roots.length === 1
        ? `root cause: ${goalLabel(roots[0]!.goal)}`
        : `root causes (${roots.length}):`,
    );
    if (roots.length > 1)
      for (const r of roots) lines.push(`  ${goalLabel(r.goal)}: ${describeOutcome(r)}`);
  }
  const logOf = (chain.length > 0 ? a.rootCauses : []).filter(
    (r) => r.kind === "derivation" && r.outcome === "failed" && r.buildMs !== undefined,
  );
  for (const r of logOf.slice(0, 3))
    lines.push(`see its build log: nixstate log ${parseGoalKey(r.goal).path}`);
  const w = a.wantedBy;
  if (w.target) {
    lines.push("wanted by:");
    w.chain.forEach((link, i) => {
      const pad = "  ".repeat(i + 1);
      lines.push(
        i === 0
          ? `${pad}target ${w.target!.text}${w.target!.text === parseGoalKey(link.goal).path ? "" : ` (${goalLabel(link.goal)})`}`
          : `${pad}which ${HOW_WANTED[link.as]} ${goalLabel(link.goal)}`,
      );
    });
    if (a.requestedBy > 1)
      lines.push(`  (and ${a.requestedBy - 1} other request${a.requestedBy === 2 ? "" : "s"})`);
  } else {
    lines.push("wanted by: no top-level target (its chain of requests is not in the log)");
  }
  return `${lines.join("\n")}\n`;
}
