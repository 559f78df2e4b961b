// A recorded run's goals, indexed from its events alone: for each goal, everything the log says
// about it (every request for it, what it waited for, how it ended, its builder, the outputs it
// saw), and a goal key put in the words a Nix user knows. `why` (run-why.ts) and the critical path
// (critical-path.ts) both reason over this index rather than over the raw events.
import { parseGoalKey } from "../machines/worker-events.ts";
import type { GoalCause, GoalKey, GoalKind, RunEvent, RunEventOf } from "./run-event.ts";

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
  /** Outputs as the goal's queries and lock re-checks first saw them (once per path). */
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
  const indexer = new RunIndexer();
  for (const e of events) indexer.add(e);
  return indexer.index;
}

/**
 * The index built as events come, for a listener that wants it at the run's end without keeping
 * every event (the build's end summary).
 */
export class RunIndexer {
  readonly index: RunIndex = {
    targets: [],
    cwd: "/",
    goals: new Map(),
    targetGoals: new Map(),
    cancelAll: undefined,
    ended: undefined,
    lastMono: 0,
  };

  private goal(key: GoalKey, kind?: GoalKind): GoalRecord {
    const goals = this.index.goals;
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
  }

  add(e: RunEvent): void {
    const idx = this.index;
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
        this.goal(e.goal);
        break;
      case "goal.created": {
        const g = this.goal(e.goal, e.kind);
        g.kind = e.kind;
        g.created = e;
        g.causes.unshift(e.cause);
        if (e.cause.kind === "target" && !idx.targetGoals.has(e.cause.index))
          idx.targetGoals.set(e.cause.index, e.goal);
        break;
      }
      case "goal.reused":
      case "goal.wants":
        this.goal(e.goal).causes.push(e.cause);
        if (e.cause.kind === "target" && !idx.targetGoals.has(e.cause.index))
          idx.targetGoals.set(e.cause.index, e.goal);
        break;
      case "goal.waits": {
        const g = this.goal(e.goal);
        for (const w of e.on) if (!g.waits.includes(w)) g.waits.push(w);
        break;
      }
      case "goal.woken":
        this.goal(e.goal).woken ??= e;
        break;
      case "goal.stopped":
        this.goal(e.goal).stopped ??= e;
        break;
      case "goal.done":
        this.goal(e.goal, e.kind).done = e;
        break;
      case "builder.started":
        this.goal(e.goal).builderStarted ??= e;
        break;
      case "builder.exited":
        this.goal(e.goal).builderExited = e;
        break;
      case "effect.done": {
        const g = this.goal(e.goal);
        if (e.effect === "queryOutputs" || e.effect === "lockOutputs") {
          if (isOutputStatusList(e.output)) {
            // Once each: a goal queries the same outputs two or three times.
            for (const o of e.output)
              if (!g.outputsSeen.some((s) => s.path === o.path)) g.outputsSeen.push(o);
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
}

// --- Goals in words ----------------------------------------------------------------------------

/** A goal key taken apart: `drv:<path>#<mode>[@n]` or `sub:<path>[@n]`. */
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
