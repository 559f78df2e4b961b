// What a worker tells its listeners: every goal's creation (and why), each transition of its
// machine, every effect it invoked with its input and output, the worker's own decisions (reuse,
// restart, waits, wakes, slots, locks, cancellation) and the builders it ran. The run log, replay,
// `why`, progress displays and the inspector all read this one stream (src/events stamps it with
// a sequence number and times). Values are the effects' own; src/events makes them plain JSON.
import type { BuildMode } from "./build-attempt.ts";
import type { GoalOutcome } from "./goal-types.ts";
import type { SubstitutionGoalOutcome } from "./substitution-goal.ts";

export type GoalKind = "derivation" | "substitution";

/**
 * A goal's stable name within a run: `drv:<drvPath>#<mode>` or `sub:<path>`, with `@2`, `@3`…
 * when the worker starts the same goal again (more outputs wanted of a finished one, a failed
 * substitution retried). Worker ids and XState session ids follow completion order; keys do not.
 */
export type GoalKey = string;

export function derivationGoalKey(drvPath: string, mode: BuildMode): GoalKey {
  return `drv:${drvPath}#${mode}`;
}

export function substitutionGoalKey(path: string): GoalKey {
  return `sub:${path}`;
}

/** A goal key's parts: the .drv or store path, the build mode (derivations), the instance. */
export function parseGoalKey(key: GoalKey): { path: string; mode?: string; attempt: number } {
  const d = /^drv:(.*)#([A-Za-z]+)(?:@(\d+))?$/.exec(key);
  if (d) return { path: d[1]!, mode: d[2]!, attempt: d[3] ? Number(d[3]) : 1 };
  const s = /^sub:(.*?)(?:@(\d+))?$/.exec(key);
  if (s) return { path: s[1]!, attempt: s[2] ? Number(s[2]) : 1 };
  return { path: key, attempt: 1 };
}

/** Why a goal was asked for. */
export type GoalCause =
  /** Target number `index` of the run (0-based). */
  | { kind: "target"; index: number }
  /** An input derivation of goal `of`. */
  | { kind: "input"; of: GoalKey }
  /** An input source of goal `of` that is not valid. */
  | { kind: "inputSource"; of: GoalKey }
  /** The .drv or the outputs of derivation goal `for`, substituted. */
  | { kind: "substitution"; for: GoalKey }
  /** A reference of the path substitution goal `of` makes valid. */
  | { kind: "reference"; of: GoalKey }
  /** A corrupt path in the closure of goal `for`, repaired by rebuilding or substituting it. */
  | { kind: "repair"; for: GoalKey };

export type WorkerEvent =
  /**
   * A goal was started: `new`, or `restarted` because a finished goal of the same key gave less
   * than is now wanted (or failed, for substitutions). `input` is its machine's input.
   */
  | {
      type: "goal.created";
      goal: GoalKey;
      kind: GoalKind;
      decision: "new" | "restarted";
      cause: GoalCause;
      input: unknown;
    }
  /** An existing goal serves a new request (running, or finished with what is asked). */
  | { type: "goal.reused"; goal: GoalKey; cause: GoalCause; running: boolean }
  /** A running goal was asked for more outputs (`addWantedOutputs`). */
  | { type: "goal.wants"; goal: GoalKey; outputs: string[]; cause: GoalCause }
  /** A goal waits for these goals to end. */
  | { type: "goal.waits"; goal: GoalKey; on: GoalKey[] }
  /** A waiting goal was woken before all its waitees ended: `by` failed (no --keep-going). */
  | { type: "goal.woken"; goal: GoalKey; by: GoalKey }
  /** The goal's machine took a macrostep: its full state value and the event that caused it. */
  | { type: "goal.transition"; goal: GoalKey; state: unknown; event: string }
  /** The goal invoked effect `effect` (an actor the machine declares) as invoke `invoke`. */
  | { type: "effect.started"; goal: GoalKey; invoke: string; effect: string; input: unknown }
  | { type: "effect.done"; goal: GoalKey; invoke: string; effect: string; output: unknown }
  | { type: "effect.failed"; goal: GoalKey; invoke: string; effect: string; error: string }
  /** A build slot (of `limit`) went to the goal. */
  | { type: "slot.granted"; goal: GoalKey; held: number; limit: number }
  /** The goal gave its slot back; `to` is the goal that got it next, if one waited. */
  | {
      type: "slot.released";
      goal: GoalKey;
      reason: "builderExited" | "goalEnded" | "lockBusy"; // lockBusy: logs from before locks came first
      to?: GoalKey;
    }
  /** Another process holds the goal's lock: it retries after `retryMs`. */
  | { type: "lock.busy"; goal: GoalKey; retryMs: number }
  /** A builder started: here (with its process id) or on a remote machine. */
  | {
      type: "builder.started";
      goal: GoalKey;
      where: "local" | "remote";
      machine: string;
      pid?: number;
    }
  /**
   * Lines the builder wrote, as they came (a batch per chunk read). Emitted only when the worker
   * was asked for them (its `builderLogs` setting: `-L`, `--log-format internal-json`).
   */
  | { type: "builder.log"; goal: GoalKey; lines: string[] }
  /** The builder ended: how, when (Unix seconds) and the bytes of log it wrote. */
  | {
      type: "builder.exited";
      goal: GoalKey;
      how: string;
      startTime: number;
      stopTime: number;
      logBytes: number;
    }
  /** A message for people about the goal's build (`note: keeping build directory …`). */
  | { type: "goal.note"; goal: GoalKey; message: string }
  /** The goal's machine was stopped before it ended. */
  | { type: "goal.stopped"; goal: GoalKey; by: string }
  /** The goal ended: its status (Nix's BuildStatus, or a substitution's) and its machine output. */
  | {
      type: "goal.done";
      goal: GoalKey;
      kind: GoalKind;
      status: string;
      error: string;
      /** Output name (or the path, for substitutions) → store path, of what it made valid. */
      outputs: Record<string, string>;
      /** The machine's output; the log keeps it for substitutions only (the rest says it all). */
      output?: unknown;
    }
  /** Top-level target `index` got its goal (targets start a window at a time). */
  | { type: "target.started"; index: number; goal: GoalKey }
  | { type: "target.done"; index: number; goal: GoalKey; status: string }
  /** Every goal is being stopped: `cause` is the failed goal, or why. */
  | { type: "worker.cancelAll"; cause: string };

export type WorkerEventType = WorkerEvent["type"];

/** What `goal.done` says of a goal's machine output: its status, error and what it made valid. */
export function goalEnd(
  kind: GoalKind,
  output: unknown,
  path: string,
): { status: string; error: string; outputs: Record<string, string> } {
  if (kind === "derivation") {
    const r = (output as GoalOutcome).result;
    const outputs: Record<string, string> = {};
    for (const [name, b] of Object.entries(r.builtOutputs)) outputs[name] = b.outPath;
    return { status: r.status, error: r.errorMsg, outputs };
  }
  const o = output as SubstitutionGoalOutcome;
  const ok = o.status === "substituted" || o.status === "alreadyValid";
  return { status: o.status, error: o.message, outputs: ok ? { [path]: path } : {} };
}
export type WorkerListener = (event: WorkerEvent) => void;
