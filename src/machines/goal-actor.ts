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
  type PromiseActorLogic,
} from "xstate";
import type { GoalKey, WorkerEvent } from "./worker-events.ts";

/** How an effect runs: its input, the goal's abort signal, the goal and the invoke's id. */
export type EffectRun<TIn = never, TOut = unknown> = (
  input: TIn,
  signal: AbortSignal,
  goal: GoalKey,
  invoke: string,
) => TOut | Promise<TOut>;

/** For a machine's declared effects, how each one runs. */
export type EffectRuns<E> = {
  [K in keyof E]: E[K] extends PromiseActorLogic<infer TOut, infer TIn>
    ? EffectRun<TIn, TOut>
    : never;
};

/** The tracer that started each goal actor, by the actor's system (see sharedEffects). */
const tracerOf = new WeakMap<object, GoalTracer>();

/**
 * Where effects and the goal actors report to; keyed by the actor system each goal owns. `runs`
 * are the effects of machines provided once with `sharedEffects`: each goal's effects run the
 * table of the tracer that started it.
 */
export class GoalTracer {
  private readonly keys = new WeakMap<object, GoalKey>();
  /** Invoke id → effect name, per goal, between an effect's start and its end. */
  private readonly invokes = new WeakMap<object, Map<string, string>>();

  constructor(
    private readonly emit: (event: WorkerEvent) => void,
    private readonly runs: Record<string, EffectRun<never>> = {},
  ) {}

  /**
   * An effect implementation for `name` that reports its start with its input; its end is
   * reported by the goal's inspector when the machine receives it.
   */
  effect<TOut, TIn>(name: string, run: EffectRun<TIn, TOut>) {
    return fromPromise<TOut, TIn>(async ({ input, signal, self, system }) =>
      this.run(name, run, input, signal, self.id, system),
    );
  }

  /** Run `name` from this tracer's table, for a goal it started (sharedEffects). */
  runShared(name: string, input: unknown, signal: AbortSignal, invoke: string, system: object) {
    const run = this.runs[name] as EffectRun<unknown> | undefined;
    if (run === undefined) throw new Error(`goal effect '${name}' was not provided`);
    return this.run(name, run, input, signal, invoke, system);
  }

  private run<TIn, TOut>(
    name: string,
    run: EffectRun<TIn, TOut>,
    input: TIn,
    signal: AbortSignal,
    invoke: string,
    system: object,
  ): TOut | Promise<TOut> {
    const goal = this.keys.get(system) ?? "";
    this.invokes.get(system)?.set(invoke, name);
    this.emit({ type: "effect.started", goal, invoke, effect: name, input });
    return run(input, signal, goal, invoke);
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
    tracerOf.set(actor.system, this);
    this.keys.set(actor.system, goal);
    this.invokes.set(actor.system, invokes);
    return actor;
  }
}

/**
 * Implementations of `declared` (a machine's effects) that run the table of whichever tracer
 * started the goal: a machine provided with them once serves every worker. Providing a machine
 * builds its whole state tree again (~0.45 ms for the two goal machines), which a serve session
 * paid for every build it received.
 */
export function sharedEffects<E extends Record<string, AnyActorLogic>>(declared: E): E {
  const shared: Record<string, AnyActorLogic> = {};
  for (const name of Object.keys(declared)) {
    shared[name] = fromPromise(async ({ input, signal, self, system }) => {
      const tracer = tracerOf.get(system);
      if (tracer === undefined) throw new Error(`goal effect '${name}' ran outside a traced goal`);
      return tracer.runShared(name, input, signal, self.id, system);
    });
  }
  return shared as E;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
