// Replaying one goal from the run log, as Temporal replays a workflow against its history: the
// goal's machine is started again from its recorded input, each effect it invokes is answered
// with the recorded output (or error) at the point the record has it, recorded requests for more
// outputs and stops are sent at their place, and everything the machine does (transitions,
// effects started, their answers received) must equal the record, in order. No store, no
// processes, no clock: the same log replays the same way every time.
import { isDeepStrictEqual } from "node:util";
import type { AnyActorLogic, AnyStateMachine } from "xstate";
import { derivationGoalMachine } from "../machines/derivation-goal.ts";
import { GoalTracer } from "../machines/goal-actor.ts";
import { substitutionGoalMachine } from "../machines/substitution-goal.ts";
import { goalEnd, type WorkerEvent } from "../machines/worker-events.ts";
import { type DrvResolver, EventEncoder } from "./event-values.ts";
import type { GoalEvent, RunEvent } from "./run-event.ts";

/** The machines a replay drives; tests pass changed ones to see a replay catch the change. */
export interface ReplayMachines {
  derivation: AnyStateMachine;
  substitution: AnyStateMachine;
}

export const LIVE_MACHINES: ReplayMachines = {
  derivation: derivationGoalMachine,
  substitution: substitutionGoalMachine,
};

/** Where the replay of a goal and its record part ways. */
export interface Divergence {
  /** The recorded event where they differ. */
  seq: number;
  goal: string;
  /** The replayed machine's state there, as a path (`inputsRealised.waiting`). */
  state: string;
  /** What the record has, and what the replay did, in words. */
  expected: string;
  got: string;
}

export interface GoalReplay {
  goal: string;
  /** Recorded steps checked (transitions, effects started, answers). */
  steps: number;
  /** The replayed machine's state after the last event replayed. */
  state: string;
  /** Whether the replayed goal reached a final state (with the recorded outcome). */
  done: boolean;
  divergence?: Divergence;
}

/** The steps a goal's machine takes that a replay checks. */
const CHECKED = new Set(["goal.transition", "effect.started", "effect.done", "effect.failed"]);

/** A state value as a dotted path: `{ inputsRealised: "waiting" }` → `inputsRealised.waiting`. */
export function statePath(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value !== "object" || value === null) return String(value);
  return Object.entries(value)
    .map(([k, v]) => {
      const inner = statePath(v);
      return inner === "" ? k : `${k}.${inner}`;
    })
    .join(",");
}

/** One step in words a Nix user can follow. */
export function describeStep(e: WorkerEvent | RunEvent | undefined): string {
  if (!e) return "nothing more";
  switch (e.type) {
    case "goal.transition":
      return `went to state '${statePath(e.state)}' (on ${e.event})`;
    case "effect.started":
      return `started '${e.effect}' (${e.invoke}) with ${brief(e.input)}`;
    case "effect.done":
      return `got the answer of '${e.effect}' (${e.invoke}): ${brief(e.output)}`;
    case "effect.failed":
      return `got the failure of '${e.effect}' (${e.invoke}): ${e.error}`;
    default:
      return e.type;
  }
}

function brief(v: unknown): string {
  const text = JSON.stringify(v) ?? "undefined";
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

const plain = (v: unknown): unknown =>
  v === undefined ? undefined : JSON.parse(JSON.stringify(v));

function sameStep(recorded: GoalEvent, replayed: WorkerEvent): boolean {
  if (recorded.type !== replayed.type) return false;
  const { seq: _s, mono: _m, wall: _w, ...rest } = recorded;
  return isDeepStrictEqual(plain(rest), plain(replayed));
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Replay one goal from its events (in order, the first its `goal.created`), up to `untilSeq` if
 * given. Stops at the first divergence.
 */
export async function replayGoal(
  events: GoalEvent[],
  drvs: DrvResolver,
  machines: ReplayMachines = LIVE_MACHINES,
  untilSeq = Number.MAX_SAFE_INTEGER,
  /**
   * The record may stop anywhere (replay up to an event, or a run killed outright): what the
   * machine does beyond its last event is then not a divergence.
   */
  cut = untilSeq !== Number.MAX_SAFE_INTEGER,
): Promise<GoalReplay> {
  const created = events[0];
  if (created?.type !== "goal.created") {
    throw new Error(`the events of goal ${created?.goal ?? "?"} do not start with its creation`);
  }
  const goal = created.goal;
  const produced: WorkerEvent[] = [];
  const encoder = new EventEncoder(() => {});
  const tracer = new GoalTracer((e) => produced.push(encoder.encode(e)));
  const pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const base = created.kind === "derivation" ? machines.derivation : machines.substitution;
  const answered = Object.fromEntries(
    Object.keys(base.implementations.actors).map((name) => [
      name,
      tracer.effect(
        name,
        (_input, _signal, _goal, invoke) =>
          new Promise((resolve, reject) => pending.set(invoke, { resolve, reject })),
      ),
    ]),
  );
  const logic = base.provide({ actors: answered }) as AnyActorLogic;
  const actor = tracer.start(goal, logic, drvs.decode(created.input));
  let steps = 0;
  let stopped = false;
  let ending: Extract<GoalEvent, { type: "goal.done" }> | undefined;
  /** The last state record and replay agreed on: where a divergence is reported. */
  let agreed = "";
  const stateNow = () => statePath((actor.getSnapshot() as { value?: unknown }).value);
  const result = (divergence?: Divergence): GoalReplay => {
    const snap = actor.getSnapshot() as { status: string };
    const r: GoalReplay = { goal, steps, state: stateNow(), done: snap.status === "done" };
    if (!stopped) actor.stop();
    return divergence ? { ...r, divergence } : r;
  };
  const diverge = (seq: number, expected: string, got: string) =>
    result({ seq, goal, state: agreed || stateNow(), expected, got });

  actor.start();
  await flush();
  for (const e of events.slice(1)) {
    if (e.seq > untilSeq) break;
    if (e.type === "effect.done" || e.type === "effect.failed") {
      const p = pending.get(e.invoke);
      if (!p) {
        return diverge(e.seq, describeStep(e), `no effect '${e.effect}' (${e.invoke}) was running`);
      }
      pending.delete(e.invoke);
      if (e.type === "effect.done") p.resolve(drvs.decode(e.output));
      else p.reject(new Error(e.error));
      await flush();
    } else if (e.type === "goal.wants") {
      actor.send({ type: "addWantedOutputs", outputs: e.outputs });
      await flush();
    } else if (e.type === "goal.stopped") {
      stopped = true;
      actor.stop();
      await flush();
    } else if (e.type === "goal.done") {
      // The worker hears of the end before the machine's last snapshot is inspected: the final
      // transition follows in the record, so the outcome is compared after it.
      ending = e;
    }
    if (!CHECKED.has(e.type)) continue;
    const next = produced.shift();
    if (!next || !sameStep(e, next)) {
      // Say where the replay went, when the record has a move to another state.
      const moved =
        e.type === "goal.transition"
          ? [next, ...produced].find((p) => p?.type === "goal.transition")
          : undefined;
      return diverge(e.seq, describeStep(e), describeStep(moved ?? next));
    }
    if (e.type === "goal.transition") agreed = statePath(e.state);
    steps++;
  }
  if (ending && !stopped) {
    const e = ending;
    const snap = actor.getSnapshot() as { status: string; output?: unknown };
    if (snap.status !== "done") {
      return diverge(e.seq, `ended with ${e.status}`, `is still in state '${stateNow()}'`);
    }
    const path = (created.input as { drvPath?: string; path?: string }).path ?? "";
    const got = goalEnd(created.kind, snap.output, path);
    const want = { status: e.status, error: e.error, outputs: e.outputs };
    if (!isDeepStrictEqual(plain(got), plain(want))) {
      return diverge(e.seq, `ended with ${brief(want)}`, `ended with ${brief(got)}`);
    }
    if (produced.length > 0 && !cut)
      return diverge(e.seq, "nothing more", describeStep(produced[0]));
  }
  return result();
}
