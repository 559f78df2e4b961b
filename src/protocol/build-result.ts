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
  /** A content-addressed derivation resolved to one whose outputs were already valid. */
  ResolvesToAlreadyValid: 13,
  NoSubstituters: 14,
} as const;

export type BuildStatusName = keyof typeof BuildStatus;
export type BuildStatusCode = (typeof BuildStatus)[BuildStatusName];

export function buildStatusName(code: number): BuildStatusName | `Unknown(${number})` {
  return buildStatusFromCode(code) ?? `Unknown(${code})`;
}

/** The status with this wire code, or undefined for codes Nix does not have. */
export function buildStatusFromCode(code: number): BuildStatusName | undefined {
  const entry = Object.entries(BuildStatus).find(([, c]) => c === code);
  return entry ? (entry[0] as BuildStatusName) : undefined;
}

export function isSuccess(status: BuildStatusName): boolean {
  return (
    status === "Built" ||
    status === "Substituted" ||
    status === "AlreadyValid" ||
    status === "ResolvesToAlreadyValid"
  );
}

/** A built output: its DrvOutput id (`sha256:<hex>!<name>`) and path. */
export interface BuiltOutput {
  /** Empty when received at serve protocol ≥ 0x208, which keys outputs by name only. */
  id: string;
  /** Full store path. */
  outPath: string;
  /** `keyName:base64` signatures of the realisation, sorted; absent = none. */
  signatures?: string[];
  /** DrvOutput id → full path of realisations this one depends on; absent = none. */
  dependentRealisations?: Record<string, string>;
}

export interface BuildResult {
  status: BuildStatusName;
  errorMsg: string;
  /** errorMsg in Nix 2.8's colours (see nix-hint.ts); absent = errorMsg has none. */
  errorAnsi?: string;
  /** Nix throws this error out of the whole build rather than ending the goal with it. */
  errorThrown?: boolean;
  timesBuilt: number;
  isNonDeterministic: boolean;
  /** Unix seconds; 0 when not built. */
  startTime: number;
  stopTime: number;
  /**
   * Output name → built output, for the wanted outputs of a successful goal. A plain object (a
   * BuildResult is JSON data): every name is an own property, `__proto__` too (see setEntry);
   * look names up with Object.hasOwn, not `in`. No order: writers sort.
   */
  builtOutputs: Record<string, BuiltOutput>;
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
    builtOutputs: {},
    ...fields,
  };
}

/**
 * Set `key` in a plain-object map as an own, enumerable property. Assignment would not do for
 * every key: `o["__proto__"] = v` sets the prototype instead (Object.fromEntries and spreading
 * are safe as they are).
 */
export function setEntry<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
