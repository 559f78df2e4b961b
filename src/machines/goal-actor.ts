// Running one goal machine as its own actor and reporting what it does: each macrostep's full
// state value, each effect it invokes (input, then output or error at the moment the machine
// receives it) and its end. Capture goes through XState's `inspect` observer, so the stream shows
// exactly what the machine saw, in the order it saw it; replay drives the same machines the same
// way (src/events/replay-goal.ts).
import {
  type AnyActorLogic,
  type AnyActorRef,
  createActor,
  fromPromise,
  type InspectionEvent,
} from "xstate";
import type { GoalKey, WorkerEvent } from "./worker-events.ts";

/** Where effects and the goal actors report to; keyed by the actor system each goal owns. */
export class GoalTracer {
  private readonly keys = new WeakMap<object, GoalKey>();
  /** Invoke id → effect name, per goal, between an effect's start and its end. */
  private readonly invokes = new WeakMap<object, Map<string, string>>();

  constructor(private readonly emit: (event: WorkerEvent) => void) {}

  /**
   * An effect implementation for `name` that reports its start with its input; its end is
   * reported by the goal's inspector when the machine receives it.
   */
  effect<TOut, TIn>(
    name: string,
    run: (input: TIn, signal: AbortSignal, goal: GoalKey, invoke: string) => TOut | Promise<TOut>,
  ) {
    return fromPromise<TOut, TIn>(async ({ input, signal, self, system }) => {
      const goal = this.keys.get(system) ?? "";
      this.invokes.get(system)?.set(self.id, name);
      this.emit({ type: "effect.started", goal, invoke: self.id, effect: name, input });
      return run(input, signal, goal, self.id);
    });
  }

  /** Create the actor for goal `goal`, tracing its transitions and effect results. */
  start<TLogic extends AnyActorLogic>(
    goal: GoalKey,
    logic: TLogic,
    input: unknown,
  ): ReturnType<typeof createActor<TLogic>> {
    let root: AnyActorRef | undefined;
    const invokes = new Map<string, string>();
    const actor = createActor(logic, {
      input,
      inspect: (ev: InspectionEvent) => {
        if (ev.actorRef !== root) return;
        if (ev.type === "@xstate.snapshot") {
          const snap = ev.snapshot as { value?: unknown };
          this.emit({ type: "goal.transition", goal, state: snap.value, event: ev.event.type });
        } else if (ev.type === "@xstate.event") {
          const e = ev.event as { type: string; output?: unknown; error?: unknown };
          const done = e.type.startsWith("xstate.done.actor.");
          if (!done && !e.type.startsWith("xstate.error.actor.")) return;
          const invoke = e.type.slice(done ? 18 : 19);
          const effect = invokes.get(invoke) ?? invoke;
          invokes.delete(invoke);
          this.emit(
            done
              ? { type: "effect.done", goal, invoke, effect, output: e.output }
              : { type: "effect.failed", goal, invoke, effect, error: errorText(e.error) },
          );
        }
      },
    } as never) as ReturnType<typeof createActor<TLogic>>;
    root = actor;
    this.keys.set(actor.system, goal);
    this.invokes.set(actor.system, invokes);
    return actor;
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
