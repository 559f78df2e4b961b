// How a goal's outcome and a duration read, the same in `nixstate graph` and in the viewer page,
// which bundles this for the browser: no imports here.

/** Each outcome (run-why.ts's `Outcome`) in words. */
export const OUTCOME_WORDS = {
  built: "built",
  substituted: "substituted",
  alreadyValid: "already valid",
  validUnderLock: "made valid by another process",
  cachedFailure: "cached failure",
  failed: "failed",
  dependencyFailed: "dependency failed",
  cancelled: "cancelled",
  noSubstituter: "no substituter",
  unfinished: "unfinished",
} as const;

/** Milliseconds as `56 ms` or `1.23 s`. */
export function durationWords(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
