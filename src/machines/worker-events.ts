// The typed stream a worker emits: every goal's creation, state changes and end. Progress
// displays, the event log and replay all read this one stream.
import type { GoalOutcome } from "./goal-types.ts";
import type { SubstitutionGoalOutcome } from "./substitution-goal.ts";

export type WorkerEvent =
  /** A goal was created for a derivation (or a path to substitute). */
  | {
      type: "goal.created";
      goalId: number;
      kind: "derivation" | "substitution";
      key: string;
      at: number;
    }
  /** The goal entered a top-level state of its machine. */
  | { type: "goal.state"; goalId: number; state: string; at: number }
  /** A derivation goal finished with this outcome. */
  | { type: "goal.done"; goalId: number; outcome: GoalOutcome; at: number }
  /** A substitution goal finished with this outcome. */
  | { type: "substitution.done"; goalId: number; outcome: SubstitutionGoalOutcome; at: number };

export type WorkerListener = (event: WorkerEvent) => void;
