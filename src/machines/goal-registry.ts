// The worker's goals: one derivation goal per .drv and mode, one substitution goal per path. It
// decides whether a request reuses a goal (running, or finished with what is asked), adds
// outputs to a running one, or starts a goal anew (restarted, for a finished one that gave too
// little or a failed substitution), starts the goal's actor, and reports its end. Every one of
// those decisions is an event.
import type { Actor, AnyStateMachine } from "xstate";
import type { BasicDerivation } from "../derivation/derivation.ts";
import { isSuccess } from "../protocol/build-result.ts";
import type { BuildMode } from "./build-attempt.ts";
import type { derivationGoalMachine } from "./derivation-goal.ts";
import { errorText, type GoalTracer } from "./goal-actor.ts";
import type { GoalOutcome, GoalSettings } from "./goal-types.ts";
import { outcome } from "./goal-verdicts.ts";
import {
  type SubstitutionGoalOutcome,
  type substitutionGoalMachine,
  substitutionOutcomeOf,
} from "./substitution-goal.ts";
import {
  derivationGoalKey,
  type GoalCause,
  type GoalKey,
  type GoalKind,
  goalEnd,
  substitutionGoalKey,
  type WorkerEvent,
} from "./worker-events.ts";

export const CANCELLED =
  "build cancelled because another build failed (use --keep-going to go on after failures)";

/** What the registry needs of a goal actor, whatever its machine. */
interface GoalActor {
  start(): unknown;
  stop(): unknown;
  send(event: { type: "addWantedOutputs"; outputs: string[] }): void;
  subscribe(observer: {
    next?: (snap: { status: string; output?: unknown }) => void;
    error?: (err: unknown) => void;
    complete?: () => void;
  }): unknown;
}

interface Handle<O> {
  id: number;
  key: GoalKey;
  /** Dropped once the goal is done, so finished goals cost only their outcome. */
  actor: GoalActor | undefined;
  done: Promise<O>;
  outcome?: O;
}

export interface DerivationHandle extends Handle<GoalOutcome> {
  drvPath: string;
  wanted: string[];
}

export interface SubstitutionHandle extends Handle<SubstitutionGoalOutcome> {
  path: string;
}

export interface RegistryDeps {
  derivationMachine: typeof derivationGoalMachine;
  substitutionMachine: typeof substitutionGoalMachine;
  tracer: GoalTracer;
  emit: (event: WorkerEvent) => void;
  goalSettings: () => GoalSettings & { substituters: readonly string[] };
  /** A goal ended: release what it holds. */
  released: (goalId: number, succeeded: boolean) => void;
  /** A derivation goal reached its final state (not when stopped): the worker's verdicts. */
  derivationFinished: (handle: DerivationHandle, outcome: GoalOutcome) => void;
  /** The derivation's parsed form may be dropped. */
  forgetDerivation?: (drvPath: string) => void;
}

export class GoalRegistry {
  private readonly derivations = new Map<GoalKey, DerivationHandle>();
  private readonly substitutions = new Map<string, SubstitutionHandle>();
  private readonly live = new Set<Handle<unknown>>();
  /** Goal id → key, for the goals that may still hold resources. */
  private readonly keys = new Map<number, GoalKey>();
  /** How many goals each base key has had, for the `@n` of restarts. */
  private readonly instances = new Map<GoalKey, number>();
  private nextId = 1;
  private stopping: string | undefined;

  constructor(private readonly deps: RegistryDeps) {}

  keyOf(goalId: number): GoalKey {
    return this.keys.get(goalId) ?? `#${goalId}`;
  }

  /** The goal for these outputs of `drvPath`: reused, given more outputs, or started. */
  derivationGoal(
    drvPath: string,
    wanted: string[],
    mode: BuildMode,
    cause: GoalCause,
  ): DerivationHandle {
    // One goal per .drv and build mode: a repair or check run must not reuse a normal result.
    const base = derivationGoalKey(drvPath, mode);
    const existing = this.derivations.get(base);
    const emit = this.deps.emit;
    if (existing) {
      if (!existing.outcome) {
        emit({ type: "goal.reused", goal: existing.key, cause, running: true });
        emit({ type: "goal.wants", goal: existing.key, outputs: wanted, cause });
        existing.actor?.send({ type: "addWantedOutputs", outputs: wanted });
        return existing;
      }
      const covered =
        existing.wanted.length === 0 ||
        (wanted.length > 0 && wanted.every((o) => existing.wanted.includes(o)));
      if (covered || !isSuccess(existing.outcome.result.status)) {
        emit({ type: "goal.reused", goal: existing.key, cause, running: false });
        return existing;
      }
    }
    const handle = this.startDerivation(drvPath, wanted, mode, cause, existing !== undefined);
    this.derivations.set(base, handle);
    return handle;
  }

  /** A goal of its own for an in-memory derivation (the serve protocol's BuildDerivation). */
  startDerivation(
    drvPath: string,
    wanted: string[],
    mode: BuildMode,
    cause: GoalCause,
    restarted = false,
    basicDrv?: BasicDerivation,
  ): DerivationHandle {
    const s = this.deps.goalSettings();
    const id = this.nextId++;
    const input = {
      goalId: id,
      drvPath,
      wantedOutputs: wanted,
      mode,
      settings: {
        useSubstitutes: s.useSubstitutes,
        cacheFailures: s.cacheFailures,
        tryFallback: s.tryFallback,
        haveSubstituters: s.haveSubstituters,
      },
      ...(basicDrv ? { basicDrv } : {}),
    };
    const handle = this.create<GoalOutcome, DerivationHandle>(
      id,
      derivationGoalKey(drvPath, mode),
      "derivation",
      restarted,
      cause,
      input,
      { drvPath, wanted },
    );
    this.run(handle, this.deps.derivationMachine, input, drvPath, {
      done: (o) => this.deps.derivationFinished(handle, o),
      failed: (message) => outcome("MiscFailure", message),
      succeeded: (o) => isSuccess(o.result.status),
    });
    return handle;
  }

  /** The substitution goal for `path`: a running one, a successful one, or a new one. */
  substitutionGoal(path: string, repair: boolean, cause: GoalCause): SubstitutionHandle {
    const existing = this.substitutions.get(path);
    if (existing) {
      const succeeded =
        existing.outcome !== undefined &&
        substitutionOutcomeOf(existing.outcome.status) === "substituted";
      // A failed goal may succeed now (its references got built); a repair redoes valid paths.
      if (!existing.outcome || (succeeded && !repair)) {
        const running = !existing.outcome;
        this.deps.emit({ type: "goal.reused", goal: existing.key, cause, running });
        return existing;
      }
    }
    const s = this.deps.goalSettings();
    const id = this.nextId++;
    const input = {
      goalId: id,
      path,
      repair,
      substituters: s.substituters,
      tryFallback: s.tryFallback,
    };
    const handle = this.create<SubstitutionGoalOutcome, SubstitutionHandle>(
      id,
      substitutionGoalKey(path),
      "substitution",
      existing !== undefined,
      cause,
      input,
      { path },
    );
    this.substitutions.set(path, handle);
    this.run(handle, this.deps.substitutionMachine, input, path, {
      done: () => {},
      failed: (message): SubstitutionGoalOutcome => ({ status: "failed", message, errors: [] }),
      succeeded: (o) => substitutionOutcomeOf(o.status) === "substituted",
    });
    return handle;
  }

  /** Stop every running goal: `cause` is the failed goal's key, or why. */
  stopAll(cause: string): void {
    this.stopping ??= cause;
    for (const g of [...this.live]) {
      if (!g.actor) continue;
      this.deps.emit({ type: "goal.stopped", goal: g.key, by: cause });
      g.actor.stop();
    }
  }

  private create<O, H extends Handle<O>>(
    id: number,
    base: GoalKey,
    kind: GoalKind,
    restarted: boolean,
    cause: GoalCause,
    input: unknown,
    extra: Omit<H, keyof Handle<O>>,
  ): H {
    const n = (this.instances.get(base) ?? 0) + 1;
    this.instances.set(base, n);
    const key = n === 1 ? base : `${base}@${n}`;
    this.keys.set(id, key);
    const decision = restarted ? "restarted" : "new";
    this.deps.emit({ type: "goal.created", goal: key, kind, decision, cause, input });
    return { id, key, actor: undefined, done: undefined as never, ...extra } as unknown as H;
  }

  /**
   * Start the goal's actor; it ends exactly once: in a final state (`done` is told), or crashed
   * or stopped (a cancelled outcome). Either way the goal lets go of what it holds.
   */
  private run<O>(
    handle: Handle<O>,
    logic: AnyStateMachine,
    input: unknown,
    path: string,
    end: { done: (o: O) => void; failed: (message: string) => O; succeeded: (o: O) => boolean },
  ): void {
    const kind: GoalKind = "drvPath" in handle ? "derivation" : "substitution";
    let resolve!: (o: O) => void;
    handle.done = new Promise((r) => (resolve = r));
    const finish = (o: O, reachedFinal: boolean) => {
      if (handle.outcome) return;
      handle.outcome = o;
      handle.actor = undefined;
      this.live.delete(handle);
      this.deps.released(handle.id, end.succeeded(o));
      if (kind === "derivation") this.deps.forgetDerivation?.(path);
      this.deps.emit({
        type: "goal.done",
        goal: handle.key,
        kind,
        ...goalEnd(kind, o, path),
        output: o,
      });
      resolve(o);
      if (reachedFinal) end.done(o);
    };
    const actor = this.deps.tracer.start(handle.key, logic, input) as unknown as Actor<
      typeof logic
    > &
      GoalActor;
    handle.actor = actor;
    actor.subscribe({
      next: (snap) => {
        if (snap.status === "done") finish(snap.output as O, true);
      },
      error: (err) => finish(end.failed(errorText(err)), false),
      // A stopped actor never reaches a final state: it ends as cancelled. Subscribed before
      // the start, so a goal stopped at once (the run is being cancelled) ends too.
      complete: () => finish(end.failed(CANCELLED), false),
    });
    this.live.add(handle);
    actor.start();
    if (this.stopping !== undefined && handle.actor) {
      this.deps.emit({ type: "goal.stopped", goal: handle.key, by: this.stopping });
      actor.stop();
    }
  }
}
