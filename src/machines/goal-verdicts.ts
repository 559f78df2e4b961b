// Pure decisions a derivation goal makes from facts: which status a build attempt gets, the
// messages Nix prints, and what the worker must remember for its exit code.

import type { BasicDerivation } from "../derivation/derivation.ts";
import { isFixedOutput } from "../derivation/derivation.ts";
import {
  type BuildResult,
  type BuildStatusName,
  type BuiltOutput,
  buildResult,
} from "../protocol/build-result.ts";
import { Bold, hintfmt, type NixHint, Uncoloured } from "../protocol/nix-hint.ts";
import type { BuildAttempt, OutputStatus } from "./build-attempt.ts";
import type { GoalFlags, GoalOutcome } from "./goal-types.ts";

export const NO_FLAGS: GoalFlags = {
  permanentFailure: false,
  timedOut: false,
  hashMismatch: false,
  checkMismatch: false,
};

export function outcome(
  status: BuildStatusName,
  error: string | NixHint = "",
  extra: Partial<BuildResult> = {},
  flags: Partial<GoalFlags> = {},
): GoalOutcome {
  const message =
    typeof error === "string"
      ? { errorMsg: error }
      : { errorMsg: error.plain, errorAnsi: error.ansi };
  return {
    result: buildResult(status, { ...message, ...extra }),
    flags: {
      ...NO_FLAGS,
      permanentFailure: status === "PermanentFailure",
      timedOut: status === "TimedOut",
      ...flags,
    },
  };
}

/** The wanted outputs as built outputs (for AlreadyValid/Substituted results). */
export function validOutputs(outputs: OutputStatus[]): Record<string, BuiltOutput> {
  return Object.fromEntries(
    outputs.filter((o) => o.wanted && o.valid).map((o) => [o.name, { id: o.id, outPath: o.path }]),
  );
}

export function allWantedValid(outputs: OutputStatus[]): boolean {
  return outputs.every((o) => !o.wanted || o.valid);
}

/**
 * How Nix classifies a finished build (DerivationGoal::buildDone): a builder that failed is a
 * permanent failure unless the derivation is not sandboxed (fixed-output), where the network may
 * be to blame; a builder that succeeded but whose outputs were refused is OutputRejected.
 */
export function verdictOfAttempt(
  attempt: BuildAttempt,
  drv: BasicDerivation,
  drvPath: string,
  goalName: string,
): GoalOutcome {
  const times = { startTime: attempt.startTime, stopTime: attempt.stopTime };
  switch (attempt.kind) {
    case "success":
      return outcome("Built", "", {
        ...times,
        timesBuilt: 1,
        builtOutputs: { ...attempt.builtOutputs },
      });
    case "builderFailed": {
      const how = new Uncoloured(attempt.how);
      const tail = attempt.logTail;
      // As Nix: formatted first (only the path coloured, the log tail plain).
      const msg =
        tail.length > 0
          ? hintfmt`builder for '${drvPath}' ${how};\nlast ${new Uncoloured(String(tail.length))} log lines:\n${new Uncoloured(tail.map((l) => `> ${l}\n`).join(""))}For full logs, run '${new Bold(`nixstate log ${drvPath}`)}'.`
          : hintfmt`builder for '${drvPath}' ${how}`;
      return outcome(isFixedOutput(drv) ? "TransientFailure" : "PermanentFailure", msg, {
        ...times,
        timesBuilt: 1,
      });
    }
    case "timedOut":
      // Nix reports no stop time for a timed-out build.
      return outcome(
        "TimedOut",
        attempt.silence
          ? hintfmt`${goalName} timed out after ${attempt.seconds} seconds of silence`
          : hintfmt`${goalName} timed out after ${attempt.seconds} seconds`,
        { startTime: attempt.startTime },
      );
    case "logLimitExceeded":
      return outcome(
        "LogLimitExceeded",
        hintfmt`${goalName} killed after writing more than ${attempt.limit} bytes of log output`,
        { startTime: attempt.startTime },
      );
    case "outputRejected":
      return outcome(
        "OutputRejected",
        attempt.message,
        { ...times, timesBuilt: 1 },
        { hashMismatch: attempt.hashMismatch },
      );
    case "notDeterministic":
      return outcome(
        "NotDeterministic",
        attempt.message,
        { ...times, timesBuilt: 1, isNonDeterministic: true },
        { checkMismatch: true },
      );
    case "inputRejected":
      return outcome("InputRejected", attempt.message, times, { permanentFailure: true });
    case "remoteFailed":
      return outcome(attempt.status, attempt.message, times);
    case "error":
      return outcome("MiscFailure", attempt.message, times);
  }
}

/** Nix's goal names, used in timeout messages. */
export function goalName(drvPath: string, outputs: string[], inMemory: boolean): string {
  const spec = `${drvPath}!${outputs.length > 0 ? outputs.join(",") : "*"}`;
  return `building of '${spec}' from ${inMemory ? "in-memory derivation" : ".drv file"}`;
}
