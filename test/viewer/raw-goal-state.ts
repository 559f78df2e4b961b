// The oracle for the viewer's compact model: every goal's state at a seq, folded step by step from
// the raw events, the plain way (no intervals, no search).
import { statePath } from "../../src/events/replay-goal.ts";
import type { RunEvent } from "../../src/events/run-event.ts";
import type { GoalAt } from "../../src/viewer/page/goal-at.ts";

/** Every goal's state after the events with seq ≤ `seq`; `outcomes` names how ended goals ended. */
export function rawStatesAt(
  events: RunEvent[],
  seq: number,
  outcomes: Map<string, string>,
): Map<string, GoalAt> {
  const out = new Map<string, GoalAt & { waiting: boolean; building: boolean }>();
  for (const e of events) {
    if (e.seq > seq) break;
    if (!("goal" in e)) continue;
    let g = out.get(e.goal);
    if (!g) {
      g = { phase: "running", state: null, outcome: null, waiting: false, building: false };
      out.set(e.goal, g);
    }
    switch (e.type) {
      case "goal.transition":
        g.state = statePath(e.state);
        break;
      case "goal.waits":
        g.waiting = true;
        break;
      case "effect.done":
      case "effect.failed":
      case "goal.stopped":
        g.waiting = false;
        break;
      case "builder.started":
        g.building = true;
        break;
      case "builder.exited":
        g.building = false;
        break;
      case "goal.done":
        g.waiting = false;
        g.building = false;
        g.phase = "ended";
        g.outcome = outcomes.get(e.goal) ?? null;
        break;
      default:
        break;
    }
  }
  const result = new Map<string, GoalAt>();
  for (const [k, g] of out) {
    const phase =
      g.phase === "ended" ? "ended" : g.waiting ? "waiting" : g.building ? "building" : "running";
    result.set(k, { phase, state: g.state, outcome: g.outcome });
  }
  return result;
}
