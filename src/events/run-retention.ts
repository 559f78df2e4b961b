// How many recorded runs the log keeps, apart from the log: the command line reads the default
// at every start and must not load the log's writer for it.
export class RetentionError extends Error {
  override name = "RetentionError";
}

/** Which old runs to drop when a new one starts: keep the newest `count`, none older than `days`. */
export interface RunRetention {
  count: number;
  days?: number;
}

export const DEFAULT_RETENTION: RunRetention = { count: 100 };

/** Parse a retention setting: `50` (runs) or `30d` (days). */
export function parseRetention(text: string): RunRetention {
  const m = /^(\d+)(d?)$/.exec(text.trim());
  if (!m) {
    throw new RetentionError(
      `keep-runs wants a number of runs (e.g. 100) or of days (e.g. 30d), not '${text}'`,
    );
  }
  const n = Number(m[1]);
  return m[2] ? { count: Number.MAX_SAFE_INTEGER, days: n } : { count: n };
}
