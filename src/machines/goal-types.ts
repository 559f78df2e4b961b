// Data exchanged between a derivation goal machine and the effects the worker provides to it.
// Everything here is plain data so a run can be logged and replayed.

import type { BasicDerivation } from "../derivation/derivation.ts";
import type { BuildResult } from "../protocol/build-result.ts";
import type { BuildMode } from "./build-attempt.ts";

export interface GoalSettings {
  /** Try substituters before building (`--no-substitute` turns it off). */
  useSubstitutes: boolean;
  /** Remember failed outputs and stop early on them (Nix 1.10's build-cache-failure). */
  cacheFailures: boolean;
  /** Build from source when substituters fail, instead of failing (`--fallback`). */
  tryFallback: boolean;
  /**
   * Whether any substituter is configured. Without one, trying the outputs would only create
   * goals that end at once in noSubstituters; the goal goes straight to building.
   */
  haveSubstituters?: boolean;
}

export interface GoalInput {
  /** The worker's id for this goal, passed to effects that hold per-goal resources. */
  goalId: number;
  drvPath: string;
  /** Output names wanted; empty means all. */
  wantedOutputs: string[];
  mode: BuildMode;
  /** A derivation sent over the wire (no .drv file): the goal starts at haveDerivation. */
  basicDrv?: BasicDerivation;
  settings: GoalSettings;
}

/** Result of realising a set of goals the derivation waits for. */
export interface WaiteesResult {
  nrFailed: number;
  /** Substitution goals that failed because no substituter had the path. */
  nrNoSubstituters: number;
  /** Substitution goals that failed because a reference of the path could not be realised. */
  nrIncompleteClosure: number;
}

/**
 * How a substitution goal ended, as its waiters count it (Nix's goal exit codes): success
 * (substituted or already valid), no substituter had it, a reference could not be realised, or
 * a substituter failed.
 */
export type SubstitutionOutcome = "substituted" | "noSubstituters" | "incompleteClosure" | "failed";

export interface InputsResult extends WaiteesResult {
  /** An input source that is missing while substitution is disabled. */
  missingSource?: string;
  /** `drvPath!output` → output path, for the input derivations that were built. */
  inputDrvOutputs: Record<string, string>;
}

/** Worker-wide consequences of a goal's end, for Nix's exit status. */
export interface GoalFlags {
  permanentFailure: boolean;
  timedOut: boolean;
  hashMismatch: boolean;
  checkMismatch: boolean;
}

export interface GoalOutcome {
  result: BuildResult;
  flags: GoalFlags;
}
