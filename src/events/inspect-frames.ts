// A run's event stream as the XState inspection protocol of @statelyai/inspect (0.7.2): the frames
// its `createWebSocketInspector` sends and its `createWebSocketReceiver` (or the Stately inspector
// behind `createInspectorServer`) reads. Pure: each RunEvent gives zero or more frames, so a live
// build and `replay RUN --inspect` send the same ones.
//
// The actor system shown: the worker at the root, one actor per goal (its parent the goal whose
// input or substitution it is, the worker for targets), snapshots at each transition and at the
// end, events between goals for waits, early wakes, wanted outputs, reuse and waitees ending.
import type { AnyStateMachine } from "xstate";
import { derivationGoalMachine } from "../machines/derivation-goal.ts";
import { substitutionGoalMachine } from "../machines/substitution-goal.ts";
import { type GoalCause, parseGoalKey } from "../machines/worker-events.ts";
import { type BuildStatusName, isSuccess } from "../protocol/build-result.ts";
import type { RunEvent } from "./run-event.ts";

/** The `_version` @statelyai/inspect stamps on its frames (the version of the package). */
export const INSPECT_PROTOCOL_VERSION = "0.7.2";

export type InspectStatus = "active" | "done" | "error" | "stopped";

export interface InspectSnapshot {
  status: InspectStatus;
  value: unknown;
  context: Record<string, unknown>;
  output?: unknown;
  error?: unknown;
}

export interface InspectEventObject {
  type: string;
  [field: string]: unknown;
}

interface FrameBase {
  sessionId: string;
  rootId: string;
  /** Unix milliseconds as a string (the package's `Date.now().toString()`): the event's wall time. */
  createdAt: string;
  id: null;
  _version: string;
  /** nixstate's: this frame's number in the run, from 1 and without gaps. */
  seq: number;
  /** nixstate's: the sequence number of the run event it comes from. */
  runSeq: number;
}

export interface ActorFrame extends FrameBase {
  type: "@xstate.actor";
  name: string;
  parentId?: string;
  /** The machine's config as a JSON string, as the package serialises `actorRef.logic.config`. */
  definition: string;
  snapshot: InspectSnapshot;
}

export interface EventFrame extends FrameBase {
  type: "@xstate.event";
  event: InspectEventObject;
  sourceId?: string;
}

export interface SnapshotFrame extends FrameBase {
  type: "@xstate.snapshot";
  event: InspectEventObject;
  snapshot: InspectSnapshot;
}

export type InspectFrame = ActorFrame | EventFrame | SnapshotFrame;

/**
 * JSON with object keys sorted and functions as `{type: name}`: what the package's
 * safe-stable-stringify with its replacer gives for a machine config.
 */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "function") return { type: v.name };
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** A machine's definition as the package sends it in `@xstate.actor`. */
export function machineDefinition(machine: AnyStateMachine): string {
  return stableJson(machine.config);
}

const definitions = new Map<string, string>();
function definitionOf(kind: "derivation" | "substitution" | "worker"): string {
  let d = definitions.get(kind);
  if (d === undefined) {
    // The worker is not a machine: the package sends `{id: name}` for such actors.
    d =
      kind === "worker"
        ? stableJson({ id: "worker" })
        : machineDefinition(
            kind === "derivation" ? derivationGoalMachine : substitutionGoalMachine,
          );
    definitions.set(kind, d);
  }
  return d;
}

/** The goal that asked for a goal, per its cause; undefined for targets (the worker asked). */
export function causeGoal(cause: GoalCause): string | undefined {
  switch (cause.kind) {
    case "target":
      return undefined;
    case "input":
    case "inputSource":
    case "reference":
      return cause.of;
    case "substitution":
    case "repair":
      return cause.for;
  }
}

/** A goal's actor name: the derivation's or path's name, its mode and instance when not the first. */
export function goalActorName(key: string): string {
  const { path, mode, attempt } = parseGoalKey(key);
  const base = path.slice(path.lastIndexOf("/") + 1).replace(/\.drv$/, "");
  const name = base.replace(/^[0-9a-z]{32}-/, "");
  const kind = key.startsWith("sub:") ? "substitute " : "";
  const modeText = mode && mode !== "normal" ? ` (${mode})` : "";
  return `${kind}${name}${modeText}${attempt > 1 ? ` @${attempt}` : ""}`;
}

interface GoalActor {
  sessionId: string;
  kind: "derivation" | "substitution";
  value: unknown;
  status: InspectStatus;
  context: Record<string, unknown>;
  output?: unknown;
  error?: unknown;
  /** Goals waiting for this one (told when it ends). */
  waiters: Set<string>;
  ended: boolean;
}

/** Turns a run's events, in order, into inspector frames. One per run (it keeps the actors). */
export class InspectFrames {
  private seq = 0;
  private rootId = "nixstate";
  private rootAnnounced = false;
  private readonly goals = new Map<string, GoalActor>();

  /** The frames for the next event of the run. */
  frames(e: RunEvent): InspectFrame[] {
    const out: InspectFrame[] = [];
    const at = { runSeq: e.seq, createdAt: String(e.wall) };
    const base = (sessionId: string) => ({
      sessionId,
      rootId: this.rootId,
      createdAt: at.createdAt,
      id: null,
      _version: INSPECT_PROTOCOL_VERSION,
      seq: ++this.seq,
      runSeq: at.runSeq,
    });
    const root = (snapshot?: Partial<InspectSnapshot>) => {
      if (this.rootAnnounced) return;
      this.rootAnnounced = true;
      out.push({
        type: "@xstate.actor",
        ...base(this.rootId),
        name: "worker",
        definition: definitionOf("worker"),
        snapshot: { status: "active", value: "running", context: {}, ...snapshot },
      });
    };
    const snapshotOf = (g: GoalActor): InspectSnapshot => ({
      status: g.status,
      value: g.value,
      context: g.context,
      ...(g.output === undefined ? {} : { output: g.output }),
      ...(g.error === undefined ? {} : { error: g.error }),
    });
    const goal = (key: string, cause?: GoalCause, kind?: GoalActor["kind"]): GoalActor => {
      const known = this.goals.get(key);
      if (known) return known;
      root();
      const parentKey = cause ? causeGoal(cause) : undefined;
      const parentId = parentKey === undefined ? this.rootId : goal(parentKey).sessionId;
      // A goal named as its own cause was announced just now, under the worker.
      const again = this.goals.get(key);
      if (again) return again;
      const g: GoalActor = {
        sessionId: `${this.rootId}/${key}`,
        kind: kind ?? (key.startsWith("sub:") ? "substitution" : "derivation"),
        value: null,
        status: "active",
        context: { goal: key, ...(cause ? { cause } : {}) },
        waiters: new Set(),
        ended: false,
      };
      this.goals.set(key, g);
      out.push({
        type: "@xstate.actor",
        ...base(g.sessionId),
        name: goalActorName(key),
        parentId,
        definition: definitionOf(g.kind),
        snapshot: snapshotOf(g),
      });
      return g;
    };
    const event = (to: string, from: string | undefined, ev: InspectEventObject) => {
      out.push({
        type: "@xstate.event",
        ...base(to),
        event: ev,
        ...(from === undefined ? {} : { sourceId: from }),
      });
    };
    const snapshot = (g: GoalActor, ev: InspectEventObject) => {
      out.push({
        type: "@xstate.snapshot",
        ...base(g.sessionId),
        event: ev,
        snapshot: snapshotOf(g),
      });
    };
    const sourceOf = (cause: GoalCause) => {
      const k = causeGoal(cause);
      return k === undefined ? this.rootId : goal(k).sessionId;
    };

    switch (e.type) {
      case "run.started":
        if (!this.rootAnnounced) this.rootId = `nixstate-${e.pid}-${e.wall}`;
        root({ context: { targets: e.request.targets, command: e.request.command } });
        break;
      case "run.ended": {
        root();
        const status = e.exitCode === 0 ? "done" : "error";
        out.push({
          type: "@xstate.snapshot",
          ...base(this.rootId),
          event: { type: "run.ended", exitCode: e.exitCode },
          snapshot: {
            status,
            value: "ended",
            context: {},
            ...(status === "done"
              ? { output: { exitCode: e.exitCode } }
              : { error: `exit code ${e.exitCode}` }),
          },
        });
        break;
      }
      case "goal.created":
        goal(e.goal, e.cause, e.kind);
        break;
      case "goal.transition": {
        const g = goal(e.goal);
        g.value = e.state;
        snapshot(g, { type: e.event });
        break;
      }
      case "goal.done": {
        const g = goal(e.goal, undefined, e.kind);
        const ok =
          e.kind === "derivation"
            ? isSuccess(e.status as BuildStatusName)
            : e.status === "substituted" || e.status === "alreadyValid";
        g.ended = true;
        g.status = ok ? "done" : "error";
        if (ok) g.output = { status: e.status, outputs: e.outputs };
        else g.error = { status: e.status, message: e.error };
        snapshot(g, { type: "goal.done", status: e.status });
        // Nix's waiteeDone: the worker tells each goal waiting for this one.
        for (const w of g.waiters) {
          const waiter = this.goals.get(w);
          if (waiter && !waiter.ended)
            event(waiter.sessionId, g.sessionId, { type: "goal.waiteeDone", status: e.status });
        }
        g.waiters.clear();
        break;
      }
      case "goal.stopped": {
        const g = goal(e.goal);
        g.ended = true;
        if (g.status === "active") g.status = "stopped";
        snapshot(g, { type: "goal.stopped", by: e.by });
        break;
      }
      case "goal.waits": {
        const g = goal(e.goal);
        for (const k of e.on) {
          const waitee = goal(k);
          if (!waitee.ended) waitee.waiters.add(e.goal);
          event(waitee.sessionId, g.sessionId, { type: "goal.waits" });
        }
        break;
      }
      case "goal.woken": {
        const by = goal(e.by);
        event(goal(e.goal).sessionId, by.sessionId, { type: "goal.woken" });
        break;
      }
      case "goal.wants": {
        const from = sourceOf(e.cause);
        event(goal(e.goal).sessionId, from, { type: "goal.wants", outputs: e.outputs });
        break;
      }
      case "goal.reused": {
        const from = sourceOf(e.cause);
        event(goal(e.goal).sessionId, from, { type: "goal.reused", running: e.running });
        break;
      }
      case "target.started":
        event(goal(e.goal).sessionId, this.rootId, { type: "target.started", index: e.index });
        break;
      case "target.done":
        event(this.rootId, goal(e.goal).sessionId, {
          type: "target.done",
          index: e.index,
          status: e.status,
        });
        break;
      case "worker.cancelAll": {
        root();
        const cause = this.goals.get(e.cause);
        event(this.rootId, cause?.sessionId, { type: "worker.cancelAll", cause: e.cause });
        break;
      }
      default:
        break;
    }
    return out;
  }
}
