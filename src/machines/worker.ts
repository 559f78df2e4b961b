// The Worker: runs derivation and substitution goals (each its own XState actor, not children of
// one parent, so thousands of goals stay cheap), caches them per .drv or store path, lends build
// slots, wakes goals when slots or locks free up, and turns goal outcomes into Nix's exit status.

import { type Actor, createActor, fromPromise } from "xstate";
import type { BasicDerivation } from "../derivation/derivation.ts";
import type { BuildResult } from "../protocol/build-result.ts";
import { isSuccess } from "../protocol/build-result.ts";
import type { BuildMode, BuildTarget, OutputStatus } from "./build-attempt.ts";
import {
  derivationGoalMachine,
  type LockInput,
  type RealiseInputsInput,
  type SubstituteInput,
} from "./derivation-goal.ts";
import { GoalResources, WorkerError } from "./goal-resources.ts";
import type {
  GoalFlags,
  GoalOutcome,
  GoalSettings,
  InputsResult,
  SubstitutionOutcome,
  WaiteesResult,
} from "./goal-types.ts";
import { NO_FLAGS, outcome } from "./goal-verdicts.ts";
import {
  type ImportInput,
  type LockPathInput,
  type ReferencesInput,
  type SubstitutionGoalOutcome,
  substitutionGoalMachine,
  substitutionOutcomeOf,
} from "./substitution-goal.ts";
import type { ImportResult, SubstitutionEffects, WorkerEffects } from "./worker-effects.ts";
import type { WorkerEvent, WorkerListener } from "./worker-events.ts";

export interface WorkerSettings extends GoalSettings {
  /** Builds at once (`-j`); 0 means none locally. */
  maxJobs: number;
  /** Go on with other goals after a failure (`-k`). */
  keepGoing: boolean;
  /** Builds remote machines take at once (their max-jobs summed); lets `-j0` still build. */
  remoteSlots?: number;
}

export { WorkerError };

export const DEFAULT_WORKER_SETTINGS: WorkerSettings = {
  maxJobs: 1,
  keepGoing: false,
  useSubstitutes: true,
  cacheFailures: false,
  tryFallback: false,
};

/** What to build: outputs of a derivation, or an opaque store path to make valid. */

/** What the worker needs of a goal actor, whatever its machine. */
interface GoalActor {
  start(): unknown;
  stop(): unknown;
  subscribe(observer: {
    next?: (snap: { value: unknown; status: string; output?: unknown }) => void;
    error?: (err: unknown) => void;
    complete?: () => void;
  }): unknown;
}

interface GoalHandle {
  id: number;
  drvPath: string;
  wanted: string[];
  /** Dropped once the goal is done, so finished goals cost only their outcome. */
  actor: Actor<typeof derivationGoalMachine> | undefined;
  done: Promise<GoalOutcome>;
  outcome?: GoalOutcome;
}

interface SubstitutionHandle {
  id: number;
  path: string;
  actor: Actor<typeof substitutionGoalMachine> | undefined;
  done: Promise<SubstitutionGoalOutcome>;
  outcome?: SubstitutionGoalOutcome;
}

/** Top-level goals alive at once (their dependencies come on top). */
const TOP_GOAL_WINDOW = 64;

const CANCELLED =
  "build cancelled because another build failed (use --keep-going to go on after failures)";

export class Worker {
  readonly settings: WorkerSettings;
  private readonly effects: WorkerEffects;
  private readonly machine;
  private readonly substitutionMachine;
  private readonly goals = new Map<string, GoalHandle>();
  private readonly substitutions = new Map<string, SubstitutionHandle>();
  /** Store path → the references its substitution goal is waiting for. */
  private readonly referencesWaited = new Map<string, string[]>();
  private readonly live = new Set<{ actor: GoalActor | undefined }>();
  private readonly topGoals = new Set<GoalHandle>();
  private readonly listeners = new Set<WorkerListener>();
  private readonly resources = new GoalResources();
  private nextId = 1;
  private cancelled = false;
  private flags: GoalFlags = { ...NO_FLAGS };
  private readonly clock: () => number;

  constructor(
    effects: WorkerEffects,
    settings: Partial<WorkerSettings> = {},
    clock: () => number = Date.now,
  ) {
    this.effects = effects;
    this.settings = { ...DEFAULT_WORKER_SETTINGS, ...settings };
    this.clock = clock;
    const e = effects;
    this.machine = derivationGoalMachine.provide({
      actors: {
        queryDrvValid: fromPromise(async ({ input }) => e.isValidPath(input.drvPath)),
        substitutePaths: fromPromise(({ input }) => this.substitutePaths(input)),
        readDerivation: fromPromise(async ({ input }) => e.readDerivation(input.drvPath)),
        queryOutputs: fromPromise(async ({ input }) => e.queryOutputs(input)),
        realiseInputs: fromPromise(({ input }) => this.realiseInputs(input)),
        computeInputPaths: fromPromise(async ({ input }) => e.computeInputPaths(input)),
        lockOutputs: fromPromise(({ input, signal }) => this.lockOutputs(input, signal)),
        runBuild: fromPromise(({ input, signal }) =>
          this.resources.track(
            input.goalId,
            e.runBuild(input, signal, {
              builderExited: () => this.resources.releaseSlot(input.goalId),
            }),
          ),
        ),
        checkOutputClosure: fromPromise(async ({ input }) =>
          e.checkOutputClosure ? e.checkOutputClosure(input) : [],
        ),
        repairPaths: fromPromise(({ input }) => this.repairPaths(input)),
      },
    });
    this.substitutionMachine = substitutionGoalMachine.provide({
      actors: {
        queryValid: fromPromise(async ({ input }) => e.isValidPath(input.path)),
        queryPathInfo: fromPromise(({ input }) =>
          this.substituters().queryPathInfo(input.substituter, input.path),
        ),
        realiseReferences: fromPromise(({ input }) => this.realiseReferences(input)),
        lockPath: fromPromise(({ input, signal }) => this.lockPath(input, signal)),
        importSubstitute: fromPromise(({ input, signal }) => this.importSubstitute(input, signal)),
      },
    });
  }

  /** The configured substituters; only asked for by goals that have some to try. */
  private substituters(): SubstitutionEffects {
    const s = this.effects.substitution;
    if (!s) throw new WorkerError("a substitution goal tried a substituter, but none are set up");
    return s;
  }

  /** Listen to every goal's creation, state changes and outcome. */
  subscribe(listener: WorkerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: WorkerEvent): void {
    for (const l of this.listeners) l(event);
  }

  /** Build targets; one result per target, in order. */
  async buildPaths(targets: BuildTarget[], mode: BuildMode = "normal"): Promise<BuildResult[]> {
    // Top-level goals start a window at a time: thousands of waiting goal actors would only hold
    // memory, while a few hundred keep every build slot busy. Dependencies start on demand.
    const results: GoalOutcome[] = new Array(targets.length);
    let next = 0;
    const runOne = async (): Promise<void> => {
      while (next < targets.length) {
        const i = next++;
        const t = targets[i]!;
        if (this.cancelled) {
          results[i] = outcome("MiscFailure", CANCELLED);
          continue;
        }
        if (!("drvPath" in t)) {
          results[i] = await this.realiseOpaque(t.path);
          continue;
        }
        const handle = this.derivationGoal(t.drvPath, t.outputs, mode);
        this.topGoals.add(handle);
        results[i] = await handle.done;
      }
    };
    await Promise.all(Array.from({ length: Math.min(TOP_GOAL_WINDOW, targets.length) }, runOne));
    await this.resources.settle();
    return results.map((o) => o.result);
  }

  /** Build an in-memory derivation (the serve protocol's BuildDerivation): no .drv needed. */
  async buildDerivation(
    drvPath: string,
    drv: BasicDerivation,
    mode: BuildMode = "normal",
  ): Promise<BuildResult> {
    const handle = this.startGoal(drvPath, [], mode, drv);
    this.topGoals.add(handle);
    const result = (await handle.done).result;
    await this.resources.settle();
    return result;
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

  /** Stop every goal (killing builders) and wait until their effects have let go. */
  async cancel(): Promise<void> {
    this.cancelled = true;
    for (const g of [...this.live]) g.actor?.stop();
    await this.resources.settle();
  }

  private derivationGoal(drvPath: string, wanted: string[], mode: BuildMode): GoalHandle {
    // One goal per .drv and build mode: a repair or check run must not reuse a normal result.
    const key = mode === "normal" ? drvPath : `${mode}:${drvPath}`;
    const existing = this.goals.get(key);
    if (existing) {
      if (!existing.outcome) {
        existing.actor?.send({ type: "addWantedOutputs", outputs: wanted });
        return existing;
      }
      const covered =
        existing.wanted.length === 0 ||
        (wanted.length > 0 && wanted.every((o) => existing.wanted.includes(o)));
      if (covered || !isSuccess(existing.outcome.result.status)) return existing;
    }
    const handle = this.startGoal(drvPath, wanted, mode);
    this.goals.set(key, handle);
    return handle;
  }

  private startGoal(
    drvPath: string,
    wanted: string[],
    mode: BuildMode,
    basicDrv?: BasicDerivation,
  ): GoalHandle {
    const id = this.nextId++;
    const { useSubstitutes, cacheFailures, tryFallback } = this.settings;
    const actor = createActor(this.machine, {
      input: {
        goalId: id,
        drvPath,
        wantedOutputs: wanted,
        mode,
        settings: {
          useSubstitutes,
          cacheFailures,
          tryFallback,
          haveSubstituters: this.effects.substitution !== undefined,
        },
        ...(basicDrv ? { basicDrv } : {}),
      },
    });
    let resolve!: (o: GoalOutcome) => void;
    const handle: GoalHandle = {
      id,
      drvPath,
      wanted,
      actor,
      done: new Promise((r) => (resolve = r)),
    };
    this.emit({
      type: "goal.created",
      goalId: id,
      kind: "derivation",
      key: drvPath,
      at: this.clock(),
    });
    const finish = (o: GoalOutcome) => {
      if (handle.outcome) return;
      handle.outcome = o;
      handle.actor = undefined;
      this.live.delete(handle);
      this.resources.release(id, isSuccess(o.result.status));
      this.effects.forgetDerivation?.(drvPath);
      this.emit({ type: "goal.done", goalId: id, outcome: o, at: this.clock() });
      resolve(o);
    };
    this.run(handle, actor, {
      done: (o) => this.goalFinished(handle, finish, o as GoalOutcome),
      failed: (message) => finish(outcome("MiscFailure", message)),
    });
    return handle;
  }

  /**
   * Start a goal's actor: report its top-level states, then exactly one of `done` (final state
   * reached), or `failed` (the actor crashed, or was stopped: cancelled).
   */
  private run(
    handle: { id: number; actor: GoalActor | undefined },
    actor: GoalActor,
    end: { done: (output: unknown) => void; failed: (message: string) => void },
  ): void {
    let lastState = "";
    actor.subscribe({
      next: (snap) => {
        const state =
          typeof snap.value === "string" ? snap.value : Object.keys(snap.value as object)[0]!;
        if (state !== lastState) {
          lastState = state;
          this.emit({ type: "goal.state", goalId: handle.id, state, at: this.clock() });
        }
        if (snap.status === "done") end.done(snap.output);
      },
      error: (err) => end.failed(err instanceof Error ? err.message : String(err)),
    });
    this.live.add(handle);
    actor.start();
    if (this.cancelled) actor.stop();
    // A stopped actor never reaches a final state: report it as cancelled.
    actor.subscribe({ complete: () => end.failed(CANCELLED) });
  }

  /** The substitution goal for `path`: a running one, a successful one, or a new one. */
  private substitutionGoal(path: string, repair: boolean): SubstitutionHandle {
    const existing = this.substitutions.get(path);
    if (existing) {
      const succeeded =
        existing.outcome !== undefined &&
        substitutionOutcomeOf(existing.outcome.status) === "substituted";
      // A failed goal may succeed now (its references got built); a repair redoes valid paths.
      if (!existing.outcome || (succeeded && !repair)) return existing;
    }
    const id = this.nextId++;
    const actor = createActor(this.substitutionMachine, {
      input: {
        goalId: id,
        path,
        repair,
        substituters: this.settings.useSubstitutes
          ? (this.effects.substitution?.substituters ?? [])
          : [],
        tryFallback: this.settings.tryFallback,
      },
    });
    let resolve!: (o: SubstitutionGoalOutcome) => void;
    const handle: SubstitutionHandle = {
      id,
      path,
      actor,
      done: new Promise((r) => (resolve = r)),
    };
    this.substitutions.set(path, handle);
    this.emit({
      type: "goal.created",
      goalId: id,
      kind: "substitution",
      key: path,
      at: this.clock(),
    });
    const finish = (o: SubstitutionGoalOutcome) => {
      if (handle.outcome) return;
      handle.outcome = o;
      handle.actor = undefined;
      this.live.delete(handle);
      this.resources.release(id, substitutionOutcomeOf(o.status) === "substituted");
      this.emit({ type: "substitution.done", goalId: id, outcome: o, at: this.clock() });
      resolve(o);
    };
    this.run(handle, actor, {
      done: (o) => finish(o as SubstitutionGoalOutcome),
      failed: (message) => finish({ status: "failed", message, errors: [] }),
    });
    return handle;
  }

  /**
   * Wait for substitution goals as Nix's waiteeDone counts them: wake when all are done, or at
   * the first that failed outright unless --keep-going.
   */
  private waitForSubstitutions(handles: SubstitutionHandle[]): Promise<WaiteesResult> {
    const counts: WaiteesResult = { nrFailed: 0, nrNoSubstituters: 0, nrIncompleteClosure: 0 };
    return new Promise((resolve) => {
      let left = handles.length;
      if (left === 0) resolve({ ...counts });
      for (const h of handles) {
        void h.done.then((o) => {
          const r: SubstitutionOutcome = substitutionOutcomeOf(o.status);
          if (r !== "substituted") counts.nrFailed++;
          if (r === "noSubstituters") counts.nrNoSubstituters++;
          if (r === "incompleteClosure") counts.nrIncompleteClosure++;
          if (--left === 0 || (r === "failed" && !this.settings.keepGoing)) resolve({ ...counts });
        });
      }
    });
  }

  private goalFinished(handle: GoalHandle, finish: (o: GoalOutcome) => void, o: GoalOutcome): void {
    const f = this.flags;
    this.flags = {
      permanentFailure: f.permanentFailure || o.flags.permanentFailure,
      timedOut: f.timedOut || o.flags.timedOut,
      hashMismatch: f.hashMismatch || o.flags.hashMismatch,
      checkMismatch: f.checkMismatch || o.flags.checkMismatch,
    };
    finish(o);
    // Without --keep-going a failed top-level goal stops everything (Nix clears its top goals);
    // a failed dependency first reaches its waiters, which fail in turn.
    const stop =
      !isSuccess(o.result.status) && !this.settings.keepGoing && this.topGoals.has(handle);
    if (stop && !this.cancelled) void this.cancel();
  }

  private async realiseOpaque(path: string): Promise<GoalOutcome> {
    const o = await this.substitutionGoal(path, false).done;
    if (o.status === "alreadyValid") return outcome("AlreadyValid");
    if (o.status === "substituted") return outcome("Substituted");
    // As a failed top-level goal (not a missing substitute) stops the others in Nix.
    if (o.status === "failed" && !this.settings.keepGoing && !this.cancelled) void this.cancel();
    return outcome("MiscFailure", o.message);
  }

  /** Build the wanted outputs of the input derivations and make the input sources valid. */
  private async realiseInputs(input: RealiseInputsInput): Promise<InputsResult> {
    const drv = input.drv;
    const missing: string[] = [];
    for (const src of drv.inputSrcs) if (!(await this.effects.isValidPath(src))) missing.push(src);
    if (missing.length > 0 && !input.useSubstitutes) {
      return {
        nrFailed: 0,
        nrNoSubstituters: 0,
        nrIncompleteClosure: 0,
        inputDrvOutputs: {},
        missingSource: missing[0]!,
      };
    }
    const subMode: BuildMode = input.mode === "repair" ? "repair" : "normal";
    const inputDrvs =
      "inputDrvs" in drv ? [...(drv as { inputDrvs: Map<string, string[]> }).inputDrvs] : [];
    const waitees: Promise<{ ok: boolean; outputs?: [string, string][] }>[] = inputDrvs.map(
      async ([path, outs]) => {
        const o = await this.derivationGoal(path, outs, subMode).done;
        const ok = isSuccess(o.result.status);
        return {
          ok,
          outputs: [...o.result.builtOutputs].map(
            ([name, b]) => [`${path}!${name}`, b.outPath] as [string, string],
          ),
        };
      },
    );
    for (const src of missing) {
      waitees.push(
        this.substitutionGoal(src, false).done.then((o) => ({
          ok: substitutionOutcomeOf(o.status) === "substituted",
        })),
      );
    }
    const result: InputsResult = {
      nrFailed: 0,
      nrNoSubstituters: 0,
      nrIncompleteClosure: 0,
      inputDrvOutputs: {},
    };
    await new Promise<void>((resolve) => {
      let left = waitees.length;
      if (left === 0) resolve();
      for (const w of waitees) {
        void w.then((r) => {
          if (!r.ok) result.nrFailed++;
          for (const [k, v] of r.outputs ?? []) result.inputDrvOutputs[k] = v;
          // Without --keep-going a waiter wakes at the first failed waitee.
          if (--left === 0 || (!r.ok && !this.settings.keepGoing)) resolve();
        });
      }
    });
    return result;
  }

  /** A substitution goal per path; wait for them. */
  private substitutePaths(input: SubstituteInput): Promise<WaiteesResult> {
    return this.waitForSubstitutions(
      input.paths.map((p) => this.substitutionGoal(p, input.repair)),
    );
  }

  /** A substitution goal's references, realised before the path itself. */
  private async realiseReferences(input: ReferencesInput): Promise<WaiteesResult> {
    // Real references cannot form a cycle (a path's hash covers them), but a broken cache can
    // claim one; waiting on it would hang, so such a reference counts as failed at once.
    const cyclic = input.references.filter((r) => this.waitsFor(r, input.path));
    const refs = input.references.filter((r) => !cyclic.includes(r));
    this.referencesWaited.set(input.path, refs);
    try {
      const r = await this.waitForSubstitutions(refs.map((p) => this.substitutionGoal(p, false)));
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

  private async repairPaths(input: SubstituteInput): Promise<WaiteesResult> {
    const result: WaiteesResult = { nrFailed: 0, nrNoSubstituters: 0, nrIncompleteClosure: 0 };
    for (const path of input.paths) {
      const deriver = this.effects.queryDeriver ? await this.effects.queryDeriver(path) : undefined;
      const ok = deriver
        ? isSuccess((await this.derivationGoal(deriver, [], "repair").done).result.status)
        : (await this.substitutePaths({ ...input, paths: [path] })).nrFailed === 0;
      if (!ok) result.nrFailed++;
    }
    return result;
  }

  /** Wait for a build slot and the output locks; then re-check validity under the locks. */
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
    await this.resources.slotAndLock(input.goalId, slots, signal, () =>
      this.effects.tryLockOutputs(input.drvPath, input.outputs),
    );
    const rechecked: OutputStatus[] = [];
    for (const o of input.outputs)
      rechecked.push({ ...o, valid: await this.effects.isValidPath(o.path) });
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
