// Replaying a whole recorded run, goal by goal (each goal's machine is re-driven from its own
// record; see replay-goal.ts). The result names the first divergence of every goal that has one.
import { DrvResolver, type KeptDrv } from "./event-values.ts";
import { type GoalReplay, LIVE_MACHINES, type ReplayMachines, replayGoal } from "./replay-goal.ts";
import type { GoalEvent, RunEvent } from "./run-event.ts";
import { isGoalEvent } from "./run-event.ts";
import type { RunLog } from "./run-log.ts";

export interface RunReplay {
  run: number;
  goals: GoalReplay[];
  /** Steps checked over all goals. */
  steps: number;
  divergences: GoalReplay[];
}

/** A run's events grouped by goal, in the order goals were created. */
export function eventsByGoal(events: RunEvent[]): Map<string, GoalEvent[]> {
  const byGoal = new Map<string, GoalEvent[]>();
  for (const e of events) {
    if (!isGoalEvent(e)) continue;
    const list = byGoal.get(e.goal);
    if (list) list.push(e);
    else if (e.type === "goal.created") byGoal.set(e.goal, [e]);
  }
  return byGoal;
}

export interface ReplayOptions {
  machines?: ReplayMachines;
  /** Only this goal. */
  goal?: string;
  /** Only events up to this sequence number. */
  untilSeq?: number;
}

export async function replayRun(
  log: RunLog,
  run: number,
  opts: ReplayOptions = {},
): Promise<RunReplay> {
  const state = log.run(run).state;
  const events = log.events(run, {
    ...(opts.goal === undefined ? {} : { goal: opts.goal }),
    ...(opts.untilSeq === undefined ? {} : { untilSeq: opts.untilSeq }),
  });
  // Read when the first goal needs one: a replay of goals that read none reads none.
  let texts: Map<string, KeptDrv> | undefined;
  const drvs = new DrvResolver((hash) => {
    texts ??= log.drvTexts(run);
    return texts.get(hash);
  });
  const goals: GoalReplay[] = [];
  for (const goalEvents of eventsByGoal(events).values()) {
    goals.push(
      await replayGoal(
        goalEvents,
        drvs,
        opts.machines ?? LIVE_MACHINES,
        opts.untilSeq,
        opts.untilSeq !== undefined || state !== "ended",
      ),
    );
  }
  return {
    run,
    goals,
    steps: goals.reduce((n, g) => n + g.steps, 0),
    divergences: goals.filter((g) => g.divergence !== undefined),
  };
}
