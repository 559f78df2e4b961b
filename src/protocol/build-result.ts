// The outcome of building one derivation, as Nix reports it (BuildResult in build-result.hh):
// the serve protocol sends it, `nixstate build` prints it, goal machines end with it.

/** Nix's status codes; the numbers are what goes over the wire. */
export const BuildStatus = {
  Built: 0,
  Substituted: 1,
  AlreadyValid: 2,
  PermanentFailure: 3,
  InputRejected: 4,
  OutputRejected: 5,
  TransientFailure: 6,
  CachedFailure: 7,
  TimedOut: 8,
  MiscFailure: 9,
  DependencyFailed: 10,
  LogLimitExceeded: 11,
  NotDeterministic: 12,
} as const;

export type BuildStatusName = keyof typeof BuildStatus;
export type BuildStatusCode = (typeof BuildStatus)[BuildStatusName];

export function buildStatusName(code: number): BuildStatusName | `Unknown(${number})` {
  const entry = Object.entries(BuildStatus).find(([, c]) => c === code);
  return entry ? (entry[0] as BuildStatusName) : `Unknown(${code})`;
}

export function isSuccess(status: BuildStatusName): boolean {
  return status === "Built" || status === "Substituted" || status === "AlreadyValid";
}

/** A built output: its DrvOutput id (`sha256:<hex>!<name>`) and path. */
export interface BuiltOutput {
  id: string;
  outPath: string;
}

export interface BuildResult {
  status: BuildStatusName;
  errorMsg: string;
  timesBuilt: number;
  isNonDeterministic: boolean;
  /** Unix seconds; 0 when not built. */
  startTime: number;
  stopTime: number;
  /** Output name → built output, for the wanted outputs of a successful goal. */
  builtOutputs: Map<string, BuiltOutput>;
}

/** A result with every field at its "nothing happened" value, overridden by `fields`. */
export function buildResult(
  status: BuildStatusName,
  fields: Partial<BuildResult> = {},
): BuildResult {
  return {
    status,
    errorMsg: "",
    timesBuilt: 0,
    isNonDeterministic: false,
    startTime: 0,
    stopTime: 0,
    builtOutputs: new Map(),
    ...fields,
  };
}
