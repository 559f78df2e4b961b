// What the worker needs from the outside world: the store, locks, the builder. Live runs
// implement it over the SQLite store and real processes (src/build); tests use fakes.
import type { Derivation } from "../derivation/derivation.ts";
import type {
  InputPathsInput,
  QueryOutputsInput,
  RepairInput,
  RunBuildInput,
} from "./derivation-goal.ts";
import type { BuildAttempt, OutputStatus } from "./goal-types.ts";

type MaybePromise<T> = T | Promise<T>;

/** Held output locks; released when the goal ends. */
export interface OutputLock {
  /** `built`: the outputs are now valid, so lock files can go. */
  release(built: boolean): void;
}

export interface BuildHooks {
  builderExited(): void;
}

export type SubstitutionOutcome = "substituted" | "noSubstituters" | "failed";

export interface WorkerEffects {
  isValidPath(path: string): MaybePromise<boolean>;
  /** Read a .drv from the store (and keep it alive with a temp root). */
  readDerivation(drvPath: string): MaybePromise<Derivation>;
  /** Output paths, ids and validity (with temp roots on the outputs). */
  queryOutputs(input: QueryOutputsInput): MaybePromise<OutputStatus[]>;
  /** The closure of the inputs: what a builder may see and its outputs may refer to. */
  computeInputPaths(input: InputPathsInput): MaybePromise<string[]>;
  /** Take the output locks without waiting; undefined if another process holds one. */
  tryLockOutputs(drvPath: string, outputs: OutputStatus[]): MaybePromise<OutputLock | undefined>;
  /**
   * Run the builder and process its outputs; abort kills it. `builderExited` is called as soon
   * as the builder process is gone, so its build slot goes to the next build while this one's
   * outputs are still being registered (as Nix frees a slot when the child terminates).
   */
  runBuild(input: RunBuildInput, signal: AbortSignal, hooks?: BuildHooks): Promise<BuildAttempt>;
  /** Realise a path from a substituter; absent means none are configured. */
  substitute?(path: string, repair: boolean, signal: AbortSignal): Promise<SubstitutionOutcome>;
  /** Paths in the outputs' closure whose contents are corrupt or missing (repair mode). */
  checkOutputClosure?(input: RepairInput): MaybePromise<string[]>;
  /** The derivation that produced a path, to rebuild it in repair mode. */
  queryDeriver?(path: string): MaybePromise<string | undefined>;
}
