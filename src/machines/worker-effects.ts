// What the worker needs from the outside world: the store, locks, the builder. Live runs
// implement it over the SQLite store and real processes (src/builder); tests use fakes.
import type { Derivation } from "../derivation/derivation.ts";
import type { PathInfoInput } from "../store/path-info.ts";
import type {
  BuildAttempt,
  InputPathsInput,
  OutputStatus,
  QueryOutputsInput,
  RepairInput,
  RunBuildInput,
} from "./build-attempt.ts";

type MaybePromise<T> = T | Promise<T>;

/** `gone`: the substituter listed the path but no longer has its NAR (Nix's SubstituteGone). */
export type ImportResult = "imported" | "gone";

/** Held output locks; released when the goal ends. */
export interface OutputLock {
  /** `built`: the outputs are now valid, so lock files can go. */
  release(built: boolean): void;
  /** The outputs' paths found on disk once the locks were held; absent when not looked up. */
  readonly onDisk?: ReadonlySet<string>;
}

/** A builder process that started: here (its pid) or on a build machine (its name). */
export interface BuilderStart {
  where: "local" | "remote";
  machine: string;
  pid?: number;
}

/** How a builder ended: Nix's words for it ("exited with code 0"), times, bytes of log. */
export interface BuilderEnd {
  how: string;
  startTime: number;
  stopTime: number;
  logBytes: number;
}

export interface BuildHooks {
  builderStarted?(start: BuilderStart): void;
  /**
   * Lines the builder wrote (cut as Nix cuts them: `\n` ends one, `\r` rewrites it), as they
   * come (a local builder's all before `builderExited`; a remote machine's stderr may trail its
   * reply a little). Present only when someone listens (`-L`, internal-json):
   * without it, effects leave the output to the log file alone.
   */
  builderLog?(lines: string[]): void;
  /** Something a person should read about this build (a kept build directory, a machine down). */
  note?(message: string): void;
  builderExited(end?: BuilderEnd): void;
}

/** What substitution goals need: the configured substituters and a store to import into. */
export interface SubstitutionEffects {
  /** Names of the substituters (e.g. `file:///srv/cache`), in the order they are tried. */
  readonly substituters: readonly string[];
  /** What substituter `index` knows about `path`; undefined if it does not have it. */
  queryPathInfo(index: number, path: string): Promise<PathInfoInput | undefined>;
  /** Take `path`'s lock without waiting; undefined if another process holds it. */
  tryLockPath(path: string): MaybePromise<OutputLock | undefined>;
  /**
   * Fetch the NAR of `info.path` from substituter `index` and import it (NAR hash and size
   * checked, registered atomically) while the caller holds the path's lock; with `repair`, replace
   * the contents of a valid path. Abort stops the download. Throws when the substitute is bad.
   */
  importPath(
    index: number,
    info: PathInfoInput,
    repair: boolean,
    signal: AbortSignal,
  ): Promise<ImportResult>;
}

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
   * Remove what is at these invalid output paths (left by a crashed build), under their locks.
   * Absent: the build removes it itself.
   */
  removeStaleOutputs?(paths: string[], lock: OutputLock): Promise<void>;
  /** Resolves once released locks have let go of everything they held (lock files deleted). */
  locksReleased?(): Promise<void>;
  /**
   * Run the builder and process its outputs; abort kills it. `builderExited` is called as soon
   * as the builder process is gone, so its build slot goes to the next build while this one's
   * outputs are still being registered (as Nix frees a slot when the child terminates).
   */
  runBuild(input: RunBuildInput, signal: AbortSignal, hooks?: BuildHooks): Promise<BuildAttempt>;
  /** Substituters to realise paths from; absent means none are configured. */
  readonly substitution?: SubstitutionEffects | undefined;
  /** Paths in the outputs' closure whose contents are corrupt or missing (repair mode). */
  checkOutputClosure?(input: RepairInput): MaybePromise<string[]>;
  /** The derivation that produced a path, to rebuild it in repair mode. */
  queryDeriver?(path: string): MaybePromise<string | undefined>;
  /**
   * The goal for `drvPath` has ended: what was cached about the derivation may go (a large run
   * would otherwise keep every parsed derivation to its end). Asked again, it is read again.
   */
  forgetDerivation?(drvPath: string): void;
}
