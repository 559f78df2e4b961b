// What a progress display knows of a run, folded from its event stream: every goal once (a goal
// started again is the same goal), whether it waits, runs (a builder, or a substituter's copy) or
// ended and how, where it runs, since when, the last line its builder wrote, what it waits on. Pure: the live screen, the plain printer
// and the end summary all draw from this one state; nothing here prints or reads a clock.
import { stripVTControlCharacters } from "node:util";
import type { RunEvent } from "../../events/run-event.ts";
import { type GoalKey, type GoalKind, parseGoalKey } from "../../machines/worker-events.ts";
import { type BuildStatusName, isSuccess } from "../../protocol/build-result.ts";
import { parseBuilderMessage } from "../builder-json-message.ts";

export type GoalPhase = "waiting" | "running" | "done";

/** How a goal ended, as a person counts it. */
export type GoalEnd =
  /** Its builder ran and succeeded. */
  | "built"
  /** Copied from a substituter. */
  | "substituted"
  /**
   * Nothing to do: valid already; a derivation whose outputs its substitution goals copied; a
   * substitution no substituter has (the derivation is built instead).
   */
  | "skipped"
  /** Failed by itself. */
  | "failed"
  /** Failed because something it needed failed. */
  | "dependencyFailed"
  /** Stopped before it ended: another build failed (no --keep-going), or the run was interrupted. */
  | "cancelled";

export interface GoalView {
  key: GoalKey;
  kind: GoalKind;
  /** The .drv path or store path. */
  path: string;
  /** The derivation's or path's name, without the hash (`hello-2.12`). */
  name: string;
  phase: GoalPhase;
  /** Milliseconds since the run started (the events' `mono`). */
  created: number;
  /** When its builder (or its copy) started. */
  started: number | undefined;
  ended: number | undefined;
  /** `localhost`, a remote machine's name, or a substituter's URI. */
  machine: string | undefined;
  where: "local" | "remote" | "substituter" | undefined;
  /** The last non-empty line its builder wrote (when builder lines are followed). */
  lastLine: string | undefined;
  /** The goals it waits on. */
  waitsOn: GoalKey[];
  /** Since when another process holds its lock (it retries), if it waits for one now. */
  lockedSince: number | undefined;
  end: GoalEnd | undefined;
  /** How it ended before, when it was started again in this run. */
  earlier: GoalEnd | undefined;
  /** Nix's BuildStatus, or the substitution's status. */
  status: string | undefined;
  error: string | undefined;
  /** Milliseconds its builder ran (or its copy took). */
  workMs: number | undefined;
}

export interface ProgressCounts {
  /** Every goal the run has created. */
  total: number;
  waiting: number;
  running: number;
  built: number;
  substituted: number;
  skipped: number;
  failed: number;
  dependencyFailed: number;
  cancelled: number;
}

/** A store path's or .drv's name without its hash (`/nix/store/<hash>-hello-1.0.drv` → `hello-1.0`). */
export function storeName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1).replace(/\.drv$/, "");
  const dash = base.indexOf("-");
  return dash >= 0 ? base.slice(dash + 1) : base;
}

const CANCELLED = "build cancelled";

function endOf(kind: GoalKind, status: string, error: string): GoalEnd {
  if (kind === "substitution") {
    if (status === "substituted") return "substituted";
    if (status === "alreadyValid" || status === "noSubstituters") return "skipped";
    if (error.startsWith(CANCELLED)) return "cancelled";
    return status === "incompleteClosure" ? "dependencyFailed" : "failed";
  }
  if (status === "Built") return "built";
  // Its outputs were copied by substitution goals, which count the copies.
  if (isSuccess(status as BuildStatusName)) return "skipped";
  if (error.startsWith(CANCELLED)) return "cancelled";
  if (status === "DependencyFailed") return "dependencyFailed";
  return "failed";
}

/**
 * The goal an instance key belongs to: `drv:…#normal@2` (started again in the same run) is the
 * same derivation as `drv:…#normal`, and is counted once.
 */
export function sameGoal(key: GoalKey): GoalKey {
  return key.replace(/@\d+$/, "");
}

/** A goal as first seen (at `mono`): waiting, nothing known yet. */
export function newGoalView(key: GoalKey, kind: GoalKind, mono: number): GoalView {
  const path = parseGoalKey(key).path;
  return {
    key,
    kind,
    path,
    name: storeName(path),
    phase: "waiting",
    created: mono,
    started: undefined,
    ended: undefined,
    machine: undefined,
    where: undefined,
    lastLine: undefined,
    waitsOn: [],
    lockedSince: undefined,
    end: undefined,
    earlier: undefined,
    status: undefined,
    error: undefined,
    workMs: undefined,
  };
}

export class ProgressModel {
  readonly goals = new Map<GoalKey, GoalView>();
  /** Top-level targets' goals, by target index. */
  readonly targets = new Map<number, GoalKey>();
  /** Build slots the worker has (`-j`), from the run's settings; 1 until told. */
  slots = 1;
  /** The `mono` of the last event seen. */
  lastMono = 0;
  /** The run ended (`run.ended`) with this exit code. */
  exitCode: number | undefined;
  private readonly running = new Set<GoalKey>();
  /** A substitution goal's substituters (its input names them; its effects give an index). */
  private readonly substituters = new Map<GoalKey, string[]>();

  /** Fold one event in. */
  apply(e: RunEvent): void {
    this.lastMono = Math.max(this.lastMono, e.mono);
    switch (e.type) {
      case "run.started": {
        const s = e.settings as { maxJobs?: unknown; remoteSlots?: unknown };
        const n = (Number(s.maxJobs) || 0) + (Number(s.remoteSlots) || 0);
        this.slots = Math.max(1, n);
        return;
      }
      case "run.ended":
        this.exitCode = e.exitCode;
        return;
      case "goal.created": {
        const g = this.goal(e.goal, e.kind, e.mono);
        if (g.phase === "done") {
          // Started again (more outputs wanted, a substitution retried): it runs again.
          g.earlier = g.end;
          g.phase = "waiting";
          g.end = undefined;
        }
        const subs = (e.input as { substituters?: unknown } | undefined)?.substituters;
        if (Array.isArray(subs)) this.substituters.set(e.goal, subs.map(String));
        return;
      }
      case "target.started":
        this.targets.set(e.index, sameGoal(e.goal));
        this.goal(e.goal, undefined, e.mono);
        return;
      case "goal.waits": {
        const g = this.goal(e.goal, undefined, e.mono);
        for (const on of e.on) {
          const w = sameGoal(on);
          if (w !== g.key && !g.waitsOn.includes(w)) g.waitsOn.push(w);
          this.goal(w, undefined, e.mono);
        }
        return;
      }
      case "lock.busy": {
        const g = this.goal(e.goal, undefined, e.mono);
        if (g.phase === "waiting") g.lockedSince ??= e.mono;
        return;
      }
      case "builder.started": {
        const g = this.goal(e.goal, undefined, e.mono);
        if (g.phase === "done") return;
        g.lockedSince = undefined;
        g.started = e.mono;
        g.machine = e.machine;
        g.where = e.where;
        this.run(g);
        return;
      }
      case "builder.log": {
        const g = this.goals.get(sameGoal(e.goal));
        if (!g) return;
        for (let i = e.lines.length - 1; i >= 0; i--) {
          const line = shownLine(e.lines[i]!);
          if (line) {
            g.lastLine = line;
            break;
          }
        }
        return;
      }
      case "builder.exited": {
        const g = this.goals.get(sameGoal(e.goal));
        if (g?.started !== undefined) g.workMs = Math.max(0, e.mono - g.started);
        return;
      }
      case "effect.started": {
        if (e.effect !== "importSubstitute") return;
        const g = this.goal(e.goal, "substitution", e.mono);
        if (g.phase === "done") return;
        g.started = e.mono;
        g.where = "substituter";
        const index = (e.input as { substituter?: unknown } | undefined)?.substituter;
        g.machine = this.substituters.get(e.goal)?.[typeof index === "number" ? index : 0];
        this.run(g);
        return;
      }
      case "effect.done":
      case "effect.failed": {
        // Its lock came (or the wait for it failed): it waits for it no more.
        if (e.effect === "lockOutputs" || e.effect === "lockPath") {
          const g = this.goals.get(sameGoal(e.goal));
          if (g) g.lockedSince = undefined;
          return;
        }
        if (e.effect !== "importSubstitute") return;
        const g = this.goals.get(sameGoal(e.goal));
        if (g?.started !== undefined) g.workMs = Math.max(0, e.mono - g.started);
        return;
      }
      case "goal.done": {
        const g = this.goal(e.goal, e.kind, e.mono);
        g.phase = "done";
        g.ended = e.mono;
        g.lockedSince = undefined;
        g.status = e.status;
        g.error = e.error || undefined;
        g.end = endOf(e.kind, e.status, e.error);
        // A restart that found its outputs valid does not undo the build that made them.
        if (g.end === "skipped" && (g.earlier === "built" || g.earlier === "substituted"))
          g.end = g.earlier;
        if (g.started !== undefined && g.workMs === undefined)
          g.workMs = Math.max(0, e.mono - g.started);
        this.running.delete(g.key);
        return;
      }
      default:
        return;
    }
  }

  /** Goals running now, longest-running first. */
  runningGoals(): GoalView[] {
    return [...this.running]
      .map((k) => this.goals.get(k)!)
      .sort((a, b) => (a.started ?? 0) - (b.started ?? 0));
  }

  /** Goals waiting for a lock another process holds, longest first. */
  lockedGoals(): GoalView[] {
    return [...this.goals.values()]
      .filter((g) => g.lockedSince !== undefined && g.phase === "waiting")
      .sort((a, b) => a.lockedSince! - b.lockedSince!);
  }

  counts(): ProgressCounts {
    const c: ProgressCounts = {
      total: this.goals.size,
      waiting: 0,
      running: this.running.size,
      built: 0,
      substituted: 0,
      skipped: 0,
      failed: 0,
      dependencyFailed: 0,
      cancelled: 0,
    };
    for (const g of this.goals.values()) {
      if (g.phase === "waiting") c.waiting++;
      else if (g.phase === "done") c[g.end!]++;
    }
    return c;
  }

  private run(g: GoalView): void {
    g.phase = "running";
    this.running.add(g.key);
  }

  private goal(instance: GoalKey, kind: GoalKind | undefined, mono: number): GoalView {
    const key = sameGoal(instance);
    let g = this.goals.get(key);
    if (!g) {
      g = newGoalView(key, kind ?? (key.startsWith("sub:") ? "substitution" : "derivation"), mono);
      this.goals.set(key, g);
    } else if (kind) {
      g.kind = kind;
    }
    return g;
  }
}

/** A builder's line as a person reads it: `@nix` messages by their text, phases left out. */
function shownLine(line: string): string | undefined {
  const m = parseBuilderMessage(line);
  if (m?.kind === "msg") return m.msg.trim() || undefined;
  if (m !== undefined && m.kind !== "invalid") return undefined;
  // Control characters (colours, carriage returns) would break a one-line view.
  const plain = stripVTControlCharacters(line).replace(/[\x00-\x1f\x7f]/g, " ");
  return plain.trim() || undefined;
}
