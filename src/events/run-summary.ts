// What a run did, read from its events: counts of goals by outcome, and its failures split into
// root causes (a goal that failed by itself) and the cascade (goals that failed because one of
// their inputs did, or were cancelled because another build failed).
import { type BuildStatusName, isSuccess } from "../protocol/build-result.ts";
import type { RunEvent } from "./run-event.ts";
import type { RunRow, RunState } from "./run-log.ts";

/** Success as Nix counts it, for a derivation goal's status (a BuildStatus name). */
const succeeded = (status: string) => isSuccess(status as BuildStatusName);
const CANCELLED = "build cancelled";

export interface FailedGoal {
  goal: string;
  status: string;
  error: string;
}

export interface RunSummary {
  id: number;
  state: RunState;
  /** Unix milliseconds. */
  started: number;
  /** Milliseconds, to the end or (interrupted) to the last event logged. */
  duration: number;
  targets: string[];
  exitCode: number | undefined;
  resumes: number | undefined;
  built: number;
  substituted: number;
  alreadyValid: number;
  failed: number;
  /** Goals still running when the log ends (interrupted or running runs). */
  unfinished: number;
  events: number;
  rootCauses: FailedGoal[];
  /** Failed because of a failed input (DependencyFailed) or cancelled. */
  cascade: FailedGoal[];
}

/** The kinds of events a summary reads (the log can skip the rest). */
export const SUMMARY_EVENTS: ReadonlySet<string> = new Set(["goal.created", "goal.done"]);

/**
 * A run's summary from its events (at least those in SUMMARY_EVENTS) and its extent: how many
 * events it logged and the wall time of the last.
 */
export function summarizeRun(
  run: RunRow,
  events: RunEvent[],
  extent: { events: number; lastWall: number | undefined } = {
    events: events.length,
    lastWall: events.at(-1)?.wall,
  },
): RunSummary {
  let built = 0;
  let substituted = 0;
  let alreadyValid = 0;
  const rootCauses: FailedGoal[] = [];
  const cascade: FailedGoal[] = [];
  const open = new Set<string>();
  for (const e of events) {
    if (e.type === "goal.created") open.add(e.goal);
    if (e.type !== "goal.done") continue;
    open.delete(e.goal);
    const ok = succeeded(e.status) || e.status === "substituted" || e.status === "alreadyValid";
    if (ok) {
      if (e.status === "Built") built++;
      else if (e.status === "Substituted" || e.status === "substituted") substituted++;
      else if (e.kind === "derivation") alreadyValid++;
      continue;
    }
    const f = { goal: e.goal, status: e.status, error: e.error };
    // A substitution that found no substituter is not a failure of the run: the goal builds.
    if (e.kind === "substitution" && e.status !== "failed") continue;
    if (e.status === "DependencyFailed" || e.error.startsWith(CANCELLED)) cascade.push(f);
    else rootCauses.push(f);
  }
  const end = run.ended ?? extent.lastWall ?? run.started;
  return {
    id: run.id,
    state: run.state,
    started: run.started,
    duration: Math.max(0, end - run.started),
    targets: run.request.targets,
    exitCode: run.exitCode,
    resumes: run.resumes,
    built,
    substituted,
    alreadyValid,
    failed: rootCauses.length + cascade.length,
    unfinished: open.size,
    events: extent.events,
    rootCauses,
    cascade,
  };
}
