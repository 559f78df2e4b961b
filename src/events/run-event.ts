// One run's event stream: what the worker reported (src/machines/worker-events.ts) plus the run's
// start and end, each stamped with a sequence number and times, and made plain JSON. The run log,
// replay, `why`, `runs diff`, the critical path and every printer read this one union.
import type { WorkerEvent } from "../machines/worker-events.ts";

export type { GoalCause, GoalKey, GoalKind } from "../machines/worker-events.ts";

/** Stamped on every event. */
export interface EventStamp {
  /** Strictly increasing within a run, from 1. */
  seq: number;
  /** Milliseconds on a monotonic clock since the run started. */
  mono: number;
  /** Wall time, Unix milliseconds. */
  wall: number;
}

/** What a run was asked to do, enough to run it again (`runs resume`). */
export interface RunRequest {
  /** `build` (the CLI) or `serve` (a BuildDerivation/BuildPaths received over the protocol). */
  command: "build" | "serve";
  /** The targets as given (`/nix/store/…drv!out`, JSON files, store paths). */
  targets: string[];
  /** The options that change what is built and how, as the command took them. */
  options: Record<string, unknown>;
  /** The working directory relative targets were resolved in. */
  cwd: string;
  /** The store the run used, resolved (options may have named it relative to cwd, or not at all). */
  store?: { stateDir: string; storeDir: string; storeRoot?: string };
}

export type RunLevelEvent =
  | {
      type: "run.started";
      request: RunRequest;
      /** The worker's settings (jobs, keep-going, substitution…). */
      settings: Record<string, unknown>;
      version: string;
      host: string;
      pid: number;
      /** The run this one resumes, if any. */
      resumes?: number;
    }
  | { type: "run.ended"; exitCode: number };

/** A worker event as it is logged: the same fields, values made plain JSON. */
export type RunEvent = EventStamp & (WorkerEvent | RunLevelEvent);
export type RunEventType = RunEvent["type"];
export type RunEventOf<T extends RunEventType> = Extract<RunEvent, { type: T }>;

/**
 * An event as code outside the engine gets it (the library's `onEvent` and `events`): the same
 * object the run log serialises up to ~100 ms later, so it must not change, all the way down.
 */
export type ReadonlyDeep<T> = T extends (infer U)[]
  ? readonly ReadonlyDeep<U>[]
  : T extends object
    ? { readonly [K in keyof T]: ReadonlyDeep<T[K]> }
    : T;

/** Events that belong to one goal. */
export type GoalEvent = Extract<RunEvent, { goal: string }>;

export function isGoalEvent(e: RunEvent): e is GoalEvent {
  return "goal" in e;
}
