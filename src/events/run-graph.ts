// `nixstate graph RUN`: a recorded run's goal graph, read from its events alone. Every goal is a
// node with what happened to it (run-why.ts's outcome: built, substituted, already valid, failed,
// cancelled…) and how long it lived; every request and every wait is an edge from the goal that
// asked or waited to the goal it asked for. Failures carry the split `why` and `runs show` make:
// root causes (failed by themselves) apart from the goals that failed because of them, each of
// those naming the goals it is blamed on. The critical path (critical-path.ts) is marked when the
// run has one. Pure: events in, graph out; graph-formats.ts writes it as DOT, Mermaid or JSON.

import { parseGoalKey } from "../machines/worker-events.ts";
import { CriticalPathError, criticalPath } from "./critical-path.ts";
import type { GoalCause, GoalKey, GoalKind, RunEvent } from "./run-event.ts";
import { type GoalRecord, indexRun, type RunIndex } from "./run-index.ts";
import type { RunRow, RunState } from "./run-log.ts";
import { failedWaitees, type GoalFacts, goalFacts, type Outcome } from "./run-why.ts";

/** One goal of the run. */
export interface GraphNode {
  /** The goal's key (`drv:<drvPath>#<mode>[@n]`, `sub:<path>[@n]`): unique within the graph. */
  key: GoalKey;
  kind: GoalKind;
  /** The store path's name: `hello-2.12` for `/nix/store/…-hello-2.12.drv`. */
  name: string;
  /** Derivation goals: the .drv path. */
  drvPath?: string;
  /** Substitution goals: the store path. */
  path?: string;
  /** Derivation goals: the build mode, when not `normal` (`repair`, `check`). */
  mode?: string;
  /** The goal was started again in this run (`@2` in its key): which time. */
  attempt?: number;
  /** What happened to it, as `nixstate why` says it. */
  state: Outcome;
  /** Nix's BuildStatus name (derivations) or the substitution's status; null if unfinished. */
  status: string | null;
  /** From its creation to its end, in ms; null if it had not ended when the log ends. */
  durationMs: number | null;
  /** How long its builder ran, in ms, if it ran one. */
  buildMs?: number;
  /** The first line of its error, for goals that did not succeed. */
  error?: string;
  /** The top-level targets (as given to the build) this goal is the goal of. */
  targets?: string[];
  /** It failed by itself: the failures of every goal blamed on it start here. */
  rootCause?: true;
  /**
   * It failed because these goals failed (an input, a reference), or was cancelled because this
   * goal failed (no --keep-going). Follow them down to the root causes.
   */
  failedBecauseOf?: GoalKey[];
  /** On the chain of goals that set the run's wall time. */
  onCriticalPath?: true;
}

/**
 * `from` asked for `to`, or waited for it. `kind` is how it asked (GoalCause's kind: `input`,
 * `inputSource`, `substitution`, `reference`, `repair`), or `waits` when the log has the wait but
 * no request (a goal found running or done and reused without a recorded cause).
 */
export type GraphEdgeKind = Exclude<GoalCause["kind"], "target"> | "waits";

export interface GraphEdge {
  /** The goal that asked or waited. */
  from: GoalKey;
  /** The goal it asked for or waited on. */
  to: GoalKey;
  kind: GraphEdgeKind;
  /** `from` waited for `to` to end (false: asked for, but never waited on). */
  waited: boolean;
  /** Both ends are on the critical path, `from` held up by `to`. */
  onCriticalPath?: true;
}

/** The JSON `nixstate graph --format json` prints. */
export interface RunGraph {
  run: number;
  /** `ended`, `interrupted` (goals may be unfinished) or `running`. */
  runState: RunState;
  /** The targets as given to the build. */
  targets: string[];
  /** Goals in the order the log first names them. */
  nodes: GraphNode[];
  /** Ordered by their `from` goal's node, then as the log has them. */
  edges: GraphEdge[];
  /** The critical path's length, from the run's start, in ms; null when the run has none. */
  criticalPathMs: number | null;
}

const round = (n: number) => Math.round(n * 1000) / 1000;

const FAILED = new Set<Outcome>(["failed", "dependencyFailed", "cancelled", "cachedFailure"]);

/** The name part of a store path: the basename without its hash (and `.drv`, for derivations). */
export function storePathName(path: string, kind: GoalKind): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const name = base.replace(/^[0-9a-z]{32}-/, "");
  return kind === "derivation" && name.endsWith(".drv") ? name.slice(0, -4) : name;
}

/** The goals a failure (or cancellation) of `g` is blamed on: as run-why traces it. */
function blamedOn(g: GoalRecord, idx: RunIndex, facts: GoalFacts): GoalKey[] {
  if (facts.outcome === "dependencyFailed") return failedWaitees(g, idx);
  if (facts.outcome === "cancelled") {
    const by = facts.cancelledBy;
    return by !== undefined && by !== g.key && idx.goals.has(by) ? [by] : [];
  }
  return [];
}

function node(g: GoalRecord, idx: RunIndex): GraphNode {
  const facts = goalFacts(g, idx);
  const { path, mode, attempt } = parseGoalKey(g.key);
  const n: GraphNode = {
    key: g.key,
    kind: g.kind,
    name: storePathName(path, g.kind),
    ...(g.kind === "derivation" ? { drvPath: path } : { path }),
    ...(mode !== undefined && mode !== "normal" ? { mode } : {}),
    ...(attempt > 1 ? { attempt } : {}),
    state: facts.outcome,
    status: facts.status ?? null,
    durationMs:
      g.done === undefined ? null : round(Math.max(0, g.done.mono - (g.created?.mono ?? 0))),
    ...(facts.buildMs === undefined ? {} : { buildMs: round(facts.buildMs) }),
  };
  const failed = FAILED.has(facts.outcome);
  if (failed && facts.error) n.error = facts.error;
  const targets = [
    ...new Set(
      g.causes.flatMap((c) => (c.kind === "target" ? [idx.targets[c.index] ?? `#${c.index}`] : [])),
    ),
  ];
  if (targets.length > 0) n.targets = targets;
  if (failed) {
    const blamed = blamedOn(g, idx, facts);
    if (blamed.length === 0) n.rootCause = true;
    else n.failedBecauseOf = blamed;
  }
  return n;
}

/** The goal that made the request a cause names. */
function requester(c: GoalCause): GoalKey | undefined {
  return c.kind === "target" ? undefined : "of" in c ? c.of : c.for;
}

/** The goal graph of run `run` from its events. */
export function runGraph(run: RunRow, events: RunEvent[]): RunGraph {
  const idx = indexRun(events);
  const nodes = [...idx.goals.values()].map((g) => node(g, idx));
  const order = new Map(nodes.map((n, i) => [n.key, i]));

  const edges = new Map<string, GraphEdge>();
  const edgeId = (from: GoalKey, to: GoalKey) => JSON.stringify([from, to]);
  for (const g of idx.goals.values()) {
    for (const to of g.waits) {
      if (!order.has(to) || edges.has(edgeId(g.key, to))) continue;
      edges.set(edgeId(g.key, to), { from: g.key, to, kind: "waits", waited: true });
    }
  }
  for (const g of idx.goals.values()) {
    for (const c of g.causes) {
      const from = requester(c);
      if (from === undefined || c.kind === "target" || !order.has(from) || from === g.key) continue;
      const e = edges.get(edgeId(from, g.key));
      if (e === undefined)
        edges.set(edgeId(from, g.key), { from, to: g.key, kind: c.kind, waited: false });
      else if (e.kind === "waits") e.kind = c.kind;
    }
  }

  let criticalPathMs: number | null = null;
  try {
    const p = criticalPath(run, events);
    criticalPathMs = round(p.totalMs);
    const byKey = new Map(nodes.map((n) => [n.key, n]));
    for (const s of p.steps) {
      const n = byKey.get(s.goal);
      if (n) n.onCriticalPath = true;
    }
    for (let i = 1; i < p.steps.length; i++) {
      const e = edges.get(edgeId(p.steps[i]!.goal, p.steps[i - 1]!.goal));
      if (e) e.onCriticalPath = true;
    }
  } catch (e) {
    // No target had ended when the log ends: the run has no critical path (yet) to mark.
    if (!(e instanceof CriticalPathError)) throw e;
  }

  return {
    run: run.id,
    runState: run.state,
    targets: idx.targets,
    nodes,
    edges: [...edges.values()]
      .map((e, i) => ({ e, i }))
      .sort((a, b) => order.get(a.e.from)! - order.get(b.e.from)! || a.i - b.i)
      .map(({ e }) => e),
    criticalPathMs,
  };
}
