// The Worker: runs derivation and substitution goals (each its own XState actor, not children of
// one parent, so thousands of goals stay cheap; the registry keeps them), provides the effects
// their machines invoke, lends build slots and locks (goal-resources.ts), wakes waiting goals
// (goal-waits.ts), and turns goal outcomes into Nix's exit status. Every decision is an event.

import type { BasicDerivation } from "../derivation/derivation.ts";
import type { BuildResult } from "../protocol/build-result.ts";
import { isSuccess } from "../protocol/build-result.ts";
import type { BuildMode, BuildTarget, OutputStatus, RunBuildInput } from "./build-attempt.ts";
import {
  derivationGoalEffects,
  derivationGoalMachine,
  type LockInput,
  type RealiseInputsInput,
  type SubstituteInput,
} from "./derivation-goal.ts";
import { type EffectRun, type EffectRuns, GoalTracer, sharedEffects } from "./goal-actor.ts";
import {
  CANCELLED,
  type DerivationHandle,
  GoalRegistry,
  type SubstitutionHandle,
} from "./goal-registry.ts";
import { GoalResources, WorkerError } from "./goal-resources.ts";
import type {
  GoalFlags,
  GoalOutcome,
  GoalSettings,
  InputsResult,
  WaiteesResult,
} from "./goal-types.ts";
import { NO_FLAGS, outcome } from "./goal-verdicts.ts";
import { type Waitee, waitForGoals } from "./goal-waits.ts";
import {
  type ImportInput,
  type LockPathInput,
  type ReferencesInput,
  type SubstitutionGoalOutcome,
  substitutionGoalEffects,
  substitutionGoalMachine,
  substitutionOutcomeOf,
} from "./substitution-goal.ts";
import type { ImportResult, SubstitutionEffects, WorkerEffects } from "./worker-effects.ts";
import type { GoalCause, GoalKey, WorkerEvent, WorkerListener } from "./worker-events.ts";

export interface WorkerSettings extends GoalSettings {
  /** Builds at once (`-j`); 0 means none locally. */
  maxJobs: number;
  /** Go on with other goals after a failure (`-k`). */
  keepGoing: boolean;
  /** Builds remote machines take at once (their max-jobs summed); lets `-j0` still build. */
  remoteSlots?: number;
  /** Emit each builder's output lines (`builder.log`), for `-L` and internal-json. */
  builderLogs?: boolean;
}

export { WorkerError };

export const DEFAULT_WORKER_SETTINGS: WorkerSettings = {
  maxJobs: 1,
  keepGoing: false,
  useSubstitutes: true,
  cacheFailures: false,
  tryFallback: false,
};

/** Top-level goals alive at once (their dependencies come on top). */
const TOP_GOAL_WINDOW = 64;

const noFailures = (): WaiteesResult => ({
  nrFailed: 0,
  nrNoSubstituters: 0,
  nrIncompleteClosure: 0,
});

/** The goal machines with effects that run each worker's own (sharedEffects), provided once. */
let goalMachines:
  | {
      derivationMachine: typeof derivationGoalMachine;
      substitutionMachine: typeof substitutionGoalMachine;
    }
  | undefined;

function sharedGoalMachines(): NonNullable<typeof goalMachines> {
  goalMachines ??= {
    derivationMachine: derivationGoalMachine.provide({
      actors: sharedEffects(derivationGoalEffects),
    }),
    substitutionMachine: substitutionGoalMachine.provide({
      actors: sharedEffects(substitutionGoalEffects),
    }),
  };
  return goalMachines;
}

export class Worker {
  readonly settings: WorkerSettings;
  private readonly effects: WorkerEffects;
  private readonly goals: GoalRegistry;
  /** Store path → the references its substitution goal is waiting for. */
  private readonly referencesWaited = new Map<string, string[]>();
  private readonly topGoals = new Set<DerivationHandle>();
  private readonly listeners = new Set<WorkerListener>();
  private readonly resources: GoalResources;
  private cancelled = false;
  private flags: GoalFlags = { ...NO_FLAGS };

  constructor(effects: WorkerEffects, settings: Partial<WorkerSettings> = {}) {
    this.effects = effects;
    this.settings = { ...DEFAULT_WORKER_SETTINGS, ...settings };
    const emit = (event: WorkerEvent) => this.emit(event);
    const e = effects;
    const runs: EffectRuns<typeof derivationGoalEffects & typeof substitutionGoalEffects> = {
      readValidDerivation: async (input) =>
        (await e.isValidPath(input.drvPath)) ? e.readDerivation(input.drvPath) : null,
      substitutePaths: (input, _, goal) => this.substitutePaths(input, goal),
      readDerivation: (input) => e.readDerivation(input.drvPath),
      queryOutputs: (input) => e.queryOutputs(input),
      realiseInputs: (input, _, goal) => this.realiseInputs(input, goal),
      computeInputPaths: (input) => e.computeInputPaths(input),
      lockOutputs: (input, signal) => this.lockOutputs(input, signal),
      runBuild: (input, signal, goal) => this.runBuild(input, signal, goal),
      checkOutputClosure: (input) => (e.checkOutputClosure ? e.checkOutputClosure(input) : []),
      repairPaths: (input, _, goal) => this.repairPaths(input, goal),
      queryValid: (input) => e.isValidPath(input.path),
      queryPathInfo: (input) => this.substituters().queryPathInfo(input.substituter, input.path),
      realiseReferences: (input, _, goal) => this.realiseReferences(input, goal),
      lockPath: (input, signal) => this.lockPath(input, signal),
      importSubstitute: (input, signal) => this.importSubstitute(input, signal),
    };
    const t = new GoalTracer(emit, runs as unknown as Record<string, EffectRun<never>>);
    const { derivationMachine, substitutionMachine } = sharedGoalMachines();
    this.goals = new GoalRegistry({
      derivationMachine,
      substitutionMachine,
      tracer: t,
      emit,
      goalSettings: () => ({
        useSubstitutes: this.settings.useSubstitutes,
        cacheFailures: this.settings.cacheFailures,
        tryFallback: this.settings.tryFallback,
        haveSubstituters: this.effects.substitution !== undefined,
        substituters: this.settings.useSubstitutes
          ? (this.effects.substitution?.substituters ?? [])
          : [],
      }),
      released: (id, ok) => this.resources.release(id, ok),
      derivationFinished: (h, o) => this.derivationFinished(h, o),
      ...(effects.forgetDerivation
        ? { forgetDerivation: (p: string) => effects.forgetDerivation!(p) }
        : {}),
    });
    this.resources = new GoalResources(emit, (id) => this.goals.keyOf(id));
  }

  /** Listen to every goal's creation, transitions, effects and end, and the worker's decisions. */
  subscribe(listener: WorkerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: WorkerEvent): void {
    for (const l of this.listeners) l(event);
  }

  /** The configured substituters; only asked for by goals that have some to try. */
  private substituters(): SubstitutionEffects {
    const s = this.effects.substitution;
    if (!s) throw new WorkerError("a substitution goal tried a substituter, but none are set up");
    return s;
  }

  /** Build targets; one result per target, in order. */
  async buildPaths(targets: BuildTarget[], mode: BuildMode = "normal"): Promise<BuildResult[]> {
    // Top-level goals start a window at a time: thousands of waiting goal actors would only hold
    // memory, while a few hundred keep every build slot busy. Dependencies start on demand.
    const results: GoalOutcome[] = new Array(targets.length);
    let next = 0;
    const runOne = async (): Promise<void> => {
      while (next < targets.length) {
        const index = next++;
        const t = targets[index]!;
        const cause: GoalCause = { kind: "target", index };
        if (this.cancelled) {
          results[index] = outcome("MiscFailure", CANCELLED);
          continue;
        }
        if (!("drvPath" in t)) {
          results[index] = await this.realiseOpaque(t.path, cause);
          continue;
        }
        const handle = this.goals.derivationGoal(t.drvPath, t.outputs, mode, cause);
        results[index] = await this.topGoal(handle, index);
      }
    };
    await Promise.all(Array.from({ length: Math.min(TOP_GOAL_WINDOW, targets.length) }, runOne));
    await this.settle();
    return results.map((o) => o.result);
  }

  /** Build an in-memory derivation (the serve protocol's BuildDerivation): no .drv needed. */
  async buildDerivation(
    drvPath: string,
    drv: BasicDerivation,
    mode: BuildMode = "normal",
  ): Promise<BuildResult> {
    const cause: GoalCause = { kind: "target", index: 0 };
    const handle = this.goals.startDerivation(drvPath, [], mode, cause, false, drv);
    const result = (await this.topGoal(handle, 0)).result;
    await this.settle();
    return result;
  }

  /** Wait until goals' effects have ended and their locks are gone. */
  private async settle(): Promise<void> {
    await this.resources.settle();
    await this.effects.locksReleased?.();
  }

  private async topGoal(handle: DerivationHandle, index: number): Promise<GoalOutcome> {
    this.topGoals.add(handle);
    this.emit({ type: "target.started", index, goal: handle.key });
    const o = await handle.done;
    this.emit({ type: "target.done", index, goal: handle.key, status: o.result.status });
    return o;
  }

  /** Nix's exit status for what happened so far: 1, or 100 + bits for the kinds of failure. */
  exitStatus(): number {
    const f = this.flags;
    let mask = 0;
    if (f.permanentFailure || f.timedOut || f.hashMismatch) mask |= 0x04;
    if (f.timedOut) mask |= 0x01;
    if (f.hashMismatch) mask |= 0x02;
    if (f.checkMismatch) mask |= 0x08;
    return mask ? mask | 0x60 : 1;
  }

  /**
   * Stop every goal (killing builders) and wait until their effects have let go. `cause` says
   * why: the failed goal's key, or what asked (a signal, the client hanging up).
   */
  async cancel(cause = "cancelled"): Promise<void> {
    if (!this.cancelled) this.emit({ type: "worker.cancelAll", cause });
    this.cancelled = true;
    this.goals.stopAll(cause);
    await this.settle();
  }

  private derivationFinished(handle: DerivationHandle, o: GoalOutcome): void {
    const f = this.flags;
    this.flags = {
      permanentFailure: f.permanentFailure || o.flags.permanentFailure,
      timedOut: f.timedOut || o.flags.timedOut,
      hashMismatch: f.hashMismatch || o.flags.hashMismatch,
      checkMismatch: f.checkMismatch || o.flags.checkMismatch,
    };
    // Without --keep-going a failed top-level goal stops everything (Nix clears its top goals);
    // a failed dependency first reaches its waiters, which fail in turn.
    const stop =
      !isSuccess(o.result.status) && !this.settings.keepGoing && this.topGoals.has(handle);
    if (stop && !this.cancelled) void this.cancel(handle.key);
  }

  private async realiseOpaque(path: string, cause: GoalCause): Promise<GoalOutcome> {
    const handle = this.goals.substitutionGoal(path, false, cause);
    const o = await handle.done;
    if (o.status === "alreadyValid") return outcome("AlreadyValid");
    if (o.status === "substituted") return outcome("Substituted");
    // As a failed top-level goal (not a missing substitute) stops the others in Nix.
    if (o.status === "failed" && !this.settings.keepGoing && !this.cancelled)
      void this.cancel(handle.key);
    return outcome("MiscFailure", o.message);
  }

  /** Wait for substitution goals: all of them, or (without -k) until one failed outright. */
  private waitForSubstitutions(
    waiter: GoalKey,
    handles: SubstitutionHandle[],
  ): Promise<WaiteesResult> {
    return waitForGoals<SubstitutionGoalOutcome, WaiteesResult>(waiter, handles, {
      start: noFailures(),
      count: (c, o) => {
        const r = substitutionOutcomeOf(o.status);
        if (r !== "substituted") c.nrFailed++;
        if (r === "noSubstituters") c.nrNoSubstituters++;
        if (r === "incompleteClosure") c.nrIncompleteClosure++;
        return r === "failed";
      },
      snapshot: (c) => ({ ...c }),
      keepGoing: this.settings.keepGoing,
      emit: (e) => this.emit(e),
    });
  }

  /** Build the wanted outputs of the input derivations and make the input sources valid. */
  private async realiseInputs(input: RealiseInputsInput, goal: GoalKey): Promise<InputsResult> {
    const drv = input.drv;
    const missing: string[] = [];
    for (const src of drv.inputSrcs) if (!(await this.effects.isValidPath(src))) missing.push(src);
    if (missing.length > 0 && !input.useSubstitutes) {
      return { ...noFailures(), inputDrvOutputs: {}, missingSource: missing[0]! };
    }
    const subMode: BuildMode = input.mode === "repair" ? "repair" : "normal";
    const inputDrvs =
      "inputDrvs" in drv ? [...(drv as { inputDrvs: Map<string, string[]> }).inputDrvs] : [];
    type Done = { ok: boolean; outputs?: [string, string][] };
    const waitees: Waitee<Done>[] = inputDrvs.map(([path, outs]) => {
      const h = this.goals.derivationGoal(path, outs, subMode, { kind: "input", of: goal });
      const done = h.done.then((o) => ({
        ok: isSuccess(o.result.status),
        outputs: Object.entries(o.result.builtOutputs).map(
          ([name, b]) => [`${path}!${name}`, b.outPath] as [string, string],
        ),
      }));
      return { key: h.key, done };
    });
    for (const src of missing) {
      const h = this.goals.substitutionGoal(src, false, { kind: "inputSource", of: goal });
      const done = h.done.then((o) => ({ ok: substitutionOutcomeOf(o.status) === "substituted" }));
      waitees.push({ key: h.key, done });
    }
    return waitForGoals<Done, InputsResult>(goal, waitees, {
      start: { ...noFailures(), inputDrvOutputs: {} },
      count: (acc, r) => {
        if (!r.ok) acc.nrFailed++;
        for (const [k, v] of r.outputs ?? []) acc.inputDrvOutputs[k] = v;
        return !r.ok;
      },
      // The machine gets a copy made when it wakes: waitees that end later must not change it.
      snapshot: (acc) => ({ ...acc, inputDrvOutputs: { ...acc.inputDrvOutputs } }),
      keepGoing: this.settings.keepGoing,
      emit: (e) => this.emit(e),
    });
  }

  /** A substitution goal per path; wait for them. */
  private substitutePaths(input: SubstituteInput, goal: GoalKey): Promise<WaiteesResult> {
    const cause: GoalCause = input.repair
      ? { kind: "repair", for: goal }
      : { kind: "substitution", for: goal };
    return this.waitForSubstitutions(
      goal,
      input.paths.map((p) => this.goals.substitutionGoal(p, input.repair, cause)),
    );
  }

  /** A substitution goal's references, realised before the path itself. */
  private async realiseReferences(input: ReferencesInput, goal: GoalKey): Promise<WaiteesResult> {
    // Real references cannot form a cycle (a path's hash covers them), but a broken cache can
    // claim one; waiting on it would hang, so such a reference counts as failed at once.
    const cyclic = input.references.filter((r) => this.waitsFor(r, input.path));
    const refs = input.references.filter((r) => !cyclic.includes(r));
    this.referencesWaited.set(input.path, refs);
    try {
      const cause: GoalCause = { kind: "reference", of: goal };
      const r = await this.waitForSubstitutions(
        goal,
        refs.map((p) => this.goals.substitutionGoal(p, false, cause)),
      );
      return { ...r, nrFailed: r.nrFailed + cyclic.length };
    } finally {
      this.referencesWaited.delete(input.path);
    }
  }

  /** Whether the substitution of `from` waits (through references) for that of `to`. */
  private waitsFor(from: string, to: string, seen = new Set<string>()): boolean {
    if (from === to) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return (this.referencesWaited.get(from) ?? []).some((r) => this.waitsFor(r, to, seen));
  }

  private async repairPaths(input: SubstituteInput, goal: GoalKey): Promise<WaiteesResult> {
    const result = noFailures();
    const cause: GoalCause = { kind: "repair", for: goal };
    for (const path of input.paths) {
      const deriver = this.effects.queryDeriver ? await this.effects.queryDeriver(path) : undefined;
      const ok = deriver
        ? isSuccess(
            (await this.goals.derivationGoal(deriver, [], "repair", cause).done).result.status,
          )
        : (await this.substitutePaths({ ...input, paths: [path] }, goal)).nrFailed === 0;
      if (!ok) result.nrFailed++;
    }
    return result;
  }

  /** The builder runs; its slot goes as soon as it exits, before its outputs are registered. */
  private runBuild(input: RunBuildInput, signal: AbortSignal, goal: GoalKey) {
    return this.resources.track(
      input.goalId,
      this.effects.runBuild(input, signal, {
        builderStarted: (start) => this.emit({ type: "builder.started", goal, ...start }),
        note: (message) => this.emit({ type: "goal.note", goal, message }),
        ...(this.settings.builderLogs
          ? { builderLog: (lines: string[]) => this.emit({ type: "builder.log", goal, lines }) }
          : {}),
        builderExited: (end) => {
          if (end) this.emit({ type: "builder.exited", goal, ...end });
          this.resources.releaseSlot(input.goalId);
        },
      }),
    );
  }

  /** Take the output locks, re-check validity under them, then take a build slot. */
  private async lockOutputs(input: LockInput, signal: AbortSignal): Promise<OutputStatus[]> {
    const remoteSlots = this.settings.remoteSlots ?? 0;
    if (this.settings.maxJobs === 0 && remoteSlots === 0) {
      throw new WorkerError(
        "unable to start any build; either increase '--max-jobs' or enable remote builds",
      );
    }
    // Remote builds take no local slot (as Nix's hook builds): the effects keep each build within
    // its machine's jobs or the local ones.
    const slots = this.settings.maxJobs + remoteSlots;
    const rechecked: OutputStatus[] = [];
    await this.resources.slotAndLock(
      input.goalId,
      slots,
      signal,
      () => this.effects.tryLockOutputs(input.drvPath, input.outputs),
      async (lock) => {
        for (const o of input.outputs)
          rechecked.push({ ...o, valid: await this.effects.isValidPath(o.path) });
        // Only what is still invalid under the lock is stale (another process may have built
        // the rest meanwhile); removed before a slot is held (a lookup in the store directory
        // waits while builders create their outputs there).
        await this.effects.removeStaleOutputs?.(
          rechecked.filter((o) => !o.valid).map((o) => o.path),
          lock,
        );
      },
    );
    return rechecked;
  }

  /**
   * A substitution goal waits for a slot and the path's lock; then says whether the path is
   * valid. Substitutions run even with --max-jobs 0 (they cannot go to another machine), as Nix.
   */
  private async lockPath(input: LockPathInput, signal: AbortSignal): Promise<boolean> {
    const subs = this.substituters();
    await this.resources.slotAndLock(input.goalId, Math.max(1, this.settings.maxJobs), signal, () =>
      subs.tryLockPath(input.path),
    );
    return this.effects.isValidPath(input.path);
  }

  /** Fetch and import under the lock; the slot and lock go as soon as the copy has ended. */
  private async importSubstitute(input: ImportInput, signal: AbortSignal): Promise<ImportResult> {
    let imported = false;
    try {
      const r = await this.resources.track(
        input.goalId,
        this.substituters().importPath(input.substituter, input.info, input.repair, signal),
      );
      imported = r === "imported";
      return r;
    } finally {
      this.resources.releaseLockAndSlot(input.goalId, imported);
    }
  }
}
