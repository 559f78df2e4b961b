// What a build is made of, as goal machines and the effects that carry builds out exchange it:
// plain data, so a run can be logged and replayed.
import type { BasicDerivation, Derivation } from "../derivation/derivation.ts";
import type { BuildStatusName, BuiltOutput } from "../protocol/build-result.ts";
import type { NixHint } from "../protocol/nix-hint.ts";

export type BuildMode = "normal" | "repair" | "check";

export type AnyDerivation = Derivation | BasicDerivation;

/** A derivation and the outputs wanted of it, or a store path to make valid. */
export type BuildTarget = { drvPath: string; outputs: string[] } | { path: string };

/** What is known about one output of the derivation being built. */
export interface OutputStatus {
  name: string;
  path: string;
  /** The DrvOutput id, `sha256:<hashModulo hex>!<name>`. */
  id: string;
  valid: boolean;
  wanted: boolean;
  /** In the failed-path cache (only looked up with cacheFailures). */
  failedBefore: boolean;
}

export interface QueryOutputsInput {
  drvPath: string;
  drv: AnyDerivation;
  wantedOutputs: string[];
  mode: BuildMode;
  cacheFailures: boolean;
}

export interface InputPathsInput {
  drvPath: string;
  drv: AnyDerivation;
  inputDrvOutputs: Record<string, string>;
}

export interface RunBuildInput {
  goalId: number;
  drvPath: string;
  drv: AnyDerivation;
  outputs: OutputStatus[];
  inputPaths: string[];
  mode: BuildMode;
  goalName: string;
}

export interface RepairInput {
  drvPath: string;
  outputs: OutputStatus[];
}

/** What happened when the builder ran and its outputs were processed: facts, not verdicts. */
export type BuildAttempt =
  | {
      kind: "success";
      builtOutputs: Record<string, BuiltOutput>;
      startTime: number;
      stopTime: number;
    }
  | {
      kind: "builderFailed";
      /** e.g. "failed with exit code 3", "was killed by signal 9". */
      how: string;
      logTail: string[];
      startTime: number;
      stopTime: number;
    }
  | { kind: "timedOut"; silence: boolean; seconds: number; startTime: number; stopTime: number }
  | { kind: "logLimitExceeded"; limit: number; startTime: number; stopTime: number }
  | {
      kind: "outputRejected";
      /** Nix's hint form for messages it colours (hash mismatch). */
      message: string | NixHint;
      hashMismatch: boolean;
      startTime: number;
      stopTime: number;
    }
  | { kind: "notDeterministic"; message: string; startTime: number; stopTime: number }
  /** The build could not be set up (e.g. a bad exportReferencesGraph). */
  | { kind: "inputRejected"; message: string; startTime: number; stopTime: number }
  /** A build machine reported a failure: its status is kept, the message names the machine. */
  | {
      kind: "remoteFailed";
      status: BuildStatusName;
      message: string;
      startTime: number;
      stopTime: number;
    }
  | { kind: "error"; message: string; startTime: number; stopTime: number };
