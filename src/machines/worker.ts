// The Worker: runs derivation and substitution goals (each its own XState actor, not children of
// one parent, so thousands of goals stay cheap), caches them per .drv or store path, lends build
// slots, wakes goals when slots or locks free up, and turns goal outcomes into Nix's exit status.

import type { Actor } from "xstate";
import type { BasicDerivation } from "../derivation/derivation.ts";
import type { BuildResult } from "../protocol/build-result.ts";
import { isSuccess } from "../protocol/build-result.ts";
import type { BuildMode, BuildTarget, OutputStatus, RunBuildInput } from "./build-attempt.ts";
import {
  derivationGoalMachine,
  type LockInput,
  type RealiseInputsInput,
  type SubstituteInput,
} from "./derivation-goal.ts";
import { errorText, GoalTracer } from "./goal-actor.ts";
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
import {
  derivationGoalKey,
  type GoalCause,
  type GoalKey,
  type GoalKind,
  goalEnd,
  substitutionGoalKey,
  type WorkerEvent,
  type WorkerListener,
} from "./worker-events.ts";

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
  key: GoalKey;
  drvPath: string;
  wanted: string[];
  /** Dropped once the goal is done, so finished goals cost only their outcome. */
  actor: Actor<typeof derivationGoalMachine> | undefined;
  done: Promise<GoalOutcome>;
  outcome?: GoalOutcome;
}

interface SubstitutionHandle {
  id: number;
  key: GoalKey;
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
  private readonly live = new Set<{ actor: GoalActor | undefined; key: GoalKey }>();
  private readonly topGoals = new Set<GoalHandle>();
  private readonly listeners = new Set<WorkerListener>();
  private readonly resources: GoalResources;
  private readonly tracer: GoalTracer;
  /** Goal id → key, for the goals that may still hold resources. */
  private readonly keyOfId = new Map<number, GoalKey>();
  /** How many goals each base key has had, for the `@n` of restarts. */
  private readonly instances = new Map<GoalKey, number>();
  private nextId = 1;
  private cancelled = false;
  private flags: GoalFlags = { ...NO_FLAGS };

  constructor(effects: WorkerEffects, settings: Partial<WorkerSettings> = {}) {
    this.effects = effects;
    this.settings = { ...DEFAULT_WORKER_SETTINGS, ...settings };
    const emit = (event: WorkerEvent) => this.emit(event);
    this.resources = new GoalResources(emit, (id) => this.keyOfId.get(id) ?? `#${id}`);
    this.tracer = new GoalTracer(emit);
    const t = this.tracer;
    const e = effects;
    this.machine = derivationGoalMachine.provide({
      actors: {
        queryDrvValid: t.effect("queryDrvValid", (input) => e.isValidPath(input.drvPath)),
        substitutePaths: t.effect("substitutePaths", (input, _, goal) =>
          this.substitutePaths(input, goal),
        ),
        readDerivation: t.effect("readDerivation", (input) => e.readDerivation(input.drvPath)),
        queryOutputs: t.effect("queryOutputs", (input) => e.queryOutputs(input)),
        realiseInputs: t.effect("realiseInputs", (input, _, goal) =>
          this.realiseInputs(input, goal),
        ),
        computeInputPaths: t.effect("computeInputPaths", (input) => e.computeInputPaths(input)),
        lockOutputs: t.effect("lockOutputs", (input, signal) => this.lockOutputs(input, signal)),
        runBuild: t.effect("runBuild", (input, signal) => this.runBuild(input, signal)),
        checkOutputClosure: t.effect("checkOutputClosure", (input) =>
          e.checkOutputClosure ? e.checkOutputClosure(input) : [],
        ),
        repairPaths: t.effect("repairPaths", (input, _, goal) => this.repairPaths(input, goal)),
      },
    });
    this.substitutionMachine = substitutionGoalMachine.provide({
      actors: {
        queryValid: t.effect("queryValid", (input) => e.isValidPath(input.path)),
        queryPathInfo: t.effect("queryPathInfo", (input) =>
          this.substituters().queryPathInfo(input.substituter, input.path),
        ),
        realiseReferences: t.effect("realiseReferences", (input, _, goal) =>
          this.realiseReferences(input, goal),
        ),
        lockPath: t.effect("lockPath", (input, signal) => this.lockPath(input, signal)),
        importSubstitute: t.effect("importSubstitute", (input, signal) =>
          this.importSubstitute(input, signal),
        ),
      },
    });
  }

  /** The builder runs; its slot goes as soon as it exits, before its outputs are registered. */
  private runBuild(input: RunBuildInput, signal: AbortSignal) {
    const goal = this.keyOfId.get(input.goalId) ?? `#${input.goalId}`;
    return this.resources.track(
      input.goalId,
      this.effects.runBuild(input, signal, {
        builderStarted: (start) => this.emit({ type: "builder.started", goal, ...start }),
        builderExited: (end) => {
          if (end) this.emit({ type: "builder.exited", goal, ...end });
          this.resources.releaseSlot(input.goalId);
        },
      }),
    );
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
        const handle = this.derivationGoal(t.drvPath, t.outputs, mode, cause);
        this.topGoals.add(handle);
        this.emit({ type: "target.started", index, goal: handle.key });
        results[index] = await handle.done;
        const status = results[index]!.result.status;
        this.emit({ type: "target.done", index, goal: handle.key, status });
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
    const cause: GoalCause = { kind: "target", index: 0 };
    const handle = this.startGoal(drvPath, [], mode, cause, "new", drv);
    this.topGoals.add(handle);
    this.emit({ type: "target.started", index: 0, goal: handle.key });
    const result = (await handle.done).result;
    this.emit({ type: "target.done", index: 0, goal: handle.key, status: result.status });
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

  /**
   * Stop every goal (killing builders) and wait until their effects have let go. `cause` says
   * why: the failed goal's key, or what asked (a signal, the client hanging up).
   */
  async cancel(cause = "cancelled"): Promise<void> {
    if (!this.cancelled) this.emit({ type: "worker.cancelAll", cause });
    this.cancelled = true;
    for (const g of [...this.live]) {
      if (!g.actor) continue;
      this.emit({ type: "goal.stopped", goal: g.key, by: cause });
      g.actor.stop();
    }
    await this.resources.settle();
  }

  /** The key for a new goal of `base`: `base`, then `base@2`, `base@3`… */
  private newKey(base: GoalKey): GoalKey {
    const n = (this.instances.get(base) ?? 0) + 1;
    this.instances.set(base, n);
    return n === 1 ? base : `${base}@${n}`;
  }

  private derivationGoal(
    drvPath: string,
    wanted: string[],
    mode: BuildMode,
    cause: GoalCause,
  ): GoalHandle {
    // One goal per .drv and build mode: a repair or check run must not reuse a normal result.
    const base = derivationGoalKey(drvPath, mode);
    const existing = this.goals.get(base);
    if (existing) {
      if (!existing.outcome) {
        this.emit({ type: "goal.reused", goal: existing.key, cause, running: true });
        this.emit({ type: "goal.wants", goal: existing.key, outputs: wanted, cause });
        existing.actor?.send({ type: "addWantedOutputs", outputs: wanted });
        return existing;
      }
      const covered =
        existing.wanted.length === 0 ||
        (wanted.length > 0 && wanted.every((o) => existing.wanted.includes(o)));
      if (covered || !isSuccess(existing.outcome.result.status)) {
        this.emit({ type: "goal.reused", goal: existing.key, cause, running: false });
        return existing;
      }
    }
    const handle = this.startGoal(drvPath, wanted, mode, cause, existing ? "restarted" : "new");
    this.goals.set(base, handle);
    return handle;
  }

  private startGoal(
    drvPath: string,
    wanted: string[],
    mode: BuildMode,
    cause: GoalCause,
    decision: "new" | "restarted",
    basicDrv?: BasicDerivation,
  ): GoalHandle {
    const id = this.nextId++;
    const key = this.newKey(derivationGoalKey(drvPath, mode));
    const { useSubstitutes, cacheFailures, tryFallback } = this.settings;
    const input = {
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
    };
    let resolve!: (o: GoalOutcome) => void;
    const handle: GoalHandle = {
      id,
      key,
      drvPath,
      wanted,
      actor: undefined,
      done: new Promise((r) => (resolve = r)),
    };
    this.keyOfId.set(id, key);
    this.emit({ type: "goal.created", goal: key, kind: "derivation", decision, cause, input });
    const actor = this.tracer.start(key, this.machine, input);
    handle.actor = actor;
    const finish = (o: GoalOutcome) => {
      if (handle.outcome) return;
      handle.outcome = o;
      handle.actor = undefined;
      this.live.delete(handle);
      this.resources.release(id, isSuccess(o.result.status));
      this.effects.forgetDerivation?.(drvPath);
      this.goalDone(key, "derivation", drvPath, o);
      resolve(o);
    };
    this.run(handle, actor, {
      done: (o) => this.goalFinished(handle, finish, o as GoalOutcome),
      failed: (message) => finish(outcome("MiscFailure", message)),
    });
    return handle;
  }

  private goalDone(goal: GoalKey, kind: GoalKind, path: string, output: unknown): void {
    this.emit({ type: "goal.done", goal, kind, ...goalEnd(kind, output, path), output });
  }

  /**
   * Start a goal's actor, then call exactly one of `done` (final state reached), or `failed` (the
   * actor crashed, or was stopped: cancelled).
   */
  private run(
    handle: { id: number; actor: GoalActor | undefined; key: GoalKey },
    actor: GoalActor,
    end: { done: (output: unknown) => void; failed: (message: string) => void },
  ): void {
    actor.subscribe({
      next: (snap) => {
        if (snap.status === "done") end.done(snap.output);
      },
      error: (err) => end.failed(errorText(err)),
    });
    this.live.add(handle);
    actor.start();
    if (this.cancelled && handle.actor) {
      this.emit({ type: "goal.stopped", goal: handle.key, by: "cancelled" });
      actor.stop();
    }
    // A stopped actor never reaches a final state: report it as cancelled.
    actor.subscribe({ complete: () => end.failed(CANCELLED) });
  }

  /** The substitution goal for `path`: a running one, a successful one, or a new one. */
  private substitutionGoal(path: string, repair: boolean, cause: GoalCause): SubstitutionHandle {
    const base = substitutionGoalKey(path);
    const existing = this.substitutions.get(path);
    if (existing) {
      const succeeded =
        existing.outcome !== undefined &&
        substitutionOutcomeOf(existing.outcome.status) === "substituted";
      // A failed goal may succeed now (its references got built); a repair redoes valid paths.
      if (!existing.outcome || (succeeded && !repair)) {
        this.emit({ type: "goal.reused", goal: existing.key, cause, running: !existing.outcome });
        return existing;
      }
    }
    const id = this.nextId++;
    const key = this.newKey(base);
    const input = {
      goalId: id,
      path,
      repair,
      substituters: this.settings.useSubstitutes
        ? (this.effects.substitution?.substituters ?? [])
        : [],
      tryFallback: this.settings.tryFallback,
    };
    let resolve!: (o: SubstitutionGoalOutcome) => void;
    const handle: SubstitutionHandle = {
      id,
      key,
      path,
      actor: undefined,
      done: new Promise((r) => (resolve = r)),
    };
    this.substitutions.set(path, handle);
    this.keyOfId.set(id, key);
    const decision = existing ? "restarted" : "new";
    this.emit({ type: "goal.created", goal: key, kind: "substitution", decision, cause, input });
    const actor = this.tracer.start(key, this.substitutionMachine, input);
    handle.actor = actor;
    const finish = (o: SubstitutionGoalOutcome) => {
      if (handle.outcome) return;
      handle.outcome = o;
      handle.actor = undefined;
      this.live.delete(handle);
      const ok = substitutionOutcomeOf(o.status) === "substituted";
      this.resources.release(id, ok);
      this.goalDone(key, "substitution", path, o);
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
  private waitForSubstitutions(
    waiter: GoalKey,
    handles: SubstitutionHandle[],
  ): Promise<WaiteesResult> {
    const counts: WaiteesResult = { nrFailed: 0, nrNoSubstituters: 0, nrIncompleteClosure: 0 };
    if (handles.length > 0) this.emit({ type: "goal.waits", goal: waiter, on: keys(handles) });
    return new Promise((resolve) => {
      let left = handles.length;
      let woken = false;
      if (left === 0) resolve({ ...counts });
      for (const h of handles) {
        void h.done.then((o) => {
          if (woken) return;
          const r: SubstitutionOutcome = substitutionOutcomeOf(o.status);
          if (r !== "substituted") counts.nrFailed++;
          if (r === "noSubstituters") counts.nrNoSubstituters++;
          if (r === "incompleteClosure") counts.nrIncompleteClosure++;
          const early = r === "failed" && !this.settings.keepGoing;
          if (--left === 0 || early) {
            woken = true;
            if (left > 0) this.emit({ type: "goal.woken", goal: waiter, by: h.key });
            resolve({ ...counts });
          }
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
    if (stop && !this.cancelled) void this.cancel(handle.key);
  }

  private async realiseOpaque(path: string, cause: GoalCause): Promise<GoalOutcome> {
    const handle = this.substitutionGoal(path, false, cause);
    const o = await handle.done;
    if (o.status === "alreadyValid") return outcome("AlreadyValid");
    if (o.status === "substituted") return outcome("Substituted");
    // As a failed top-level goal (not a missing substitute) stops the others in Nix.
    if (o.status === "failed" && !this.settings.keepGoing && !this.cancelled)
      void this.cancel(handle.key);
    return outcome("MiscFailure", o.message);
  }

  /** Build the wanted outputs of the input derivations and make the input sources valid. */
  private async realiseInputs(input: RealiseInputsInput, goal: GoalKey): Promise<InputsResult> {
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
    type Waitee = { key: GoalKey; done: Promise<{ ok: boolean; outputs?: [string, string][] }> };
    const waitees: Waitee[] = inputDrvs.map(([path, outs]) => {
      const h = this.derivationGoal(path, outs, subMode, { kind: "input", of: goal });
      const done = h.done.then((o) => ({
        ok: isSuccess(o.result.status),
        outputs: Object.entries(o.result.builtOutputs).map(
          ([name, b]) => [`${path}!${name}`, b.outPath] as [string, string],
        ),
      }));
      return { key: h.key, done };
    });
    for (const src of missing) {
      const h = this.substitutionGoal(src, false, { kind: "inputSource", of: goal });
      const done = h.done.then((o) => ({ ok: substitutionOutcomeOf(o.status) === "substituted" }));
      waitees.push({ key: h.key, done });
    }
    if (waitees.length > 0) this.emit({ type: "goal.waits", goal, on: keys(waitees) });
    const result: InputsResult = {
      nrFailed: 0,
      nrNoSubstituters: 0,
      nrIncompleteClosure: 0,
      inputDrvOutputs: {},
    };
    // The machine gets a copy made when it wakes: waitees that end later must not change it.
    return new Promise<InputsResult>((resolve) => {
      let left = waitees.length;
      let woken = false;
      const wake = () => {
        woken = true;
        resolve({ ...result, inputDrvOutputs: { ...result.inputDrvOutputs } });
      };
      if (left === 0) wake();
      for (const w of waitees) {
        void w.done.then((r) => {
          if (woken) return;
          if (!r.ok) result.nrFailed++;
          for (const [k, v] of r.outputs ?? []) result.inputDrvOutputs[k] = v;
          // Without --keep-going a waiter wakes at the first failed waitee.
          const early = !r.ok && !this.settings.keepGoing;
          if (--left === 0 || early) {
            if (left > 0) this.emit({ type: "goal.woken", goal, by: w.key });
            wake();
          }
        });
      }
    });
  }

  /** A substitution goal per path; wait for them. */
  private substitutePaths(input: SubstituteInput, goal: GoalKey): Promise<WaiteesResult> {
    const cause: GoalCause = input.repair
      ? { kind: "repair", for: goal }
      : { kind: "substitution", for: goal };
    return this.waitForSubstitutions(
      goal,
      input.paths.map((p) => this.substitutionGoal(p, input.repair, cause)),
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
        refs.map((p) => this.substitutionGoal(p, false, cause)),
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
    const result: WaiteesResult = { nrFailed: 0, nrNoSubstituters: 0, nrIncompleteClosure: 0 };
    const cause: GoalCause = { kind: "repair", for: goal };
    for (const path of input.paths) {
      const deriver = this.effects.queryDeriver ? await this.effects.queryDeriver(path) : undefined;
      const ok = deriver
        ? isSuccess((await this.derivationGoal(deriver, [], "repair", cause).done).result.status)
        : (await this.substitutePaths({ ...input, paths: [path] }, goal)).nrFailed === 0;
      if (!ok) result.nrFailed++;
    }
    return result;
  }

  /**
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

function keys(handles: { key: GoalKey }[]): GoalKey[] {
  return handles.map((h) => h.key);
}
