// A goal waiting for other goals, as Nix's waiteeDone counts them: it wakes when all have ended,
// or (without --keep-going) at the first that failed. The wait and an early wake are events.
import type { GoalKey, WorkerEvent } from "./worker-events.ts";

/** A goal waited for: its key, and what its end means to the waiter. */
export interface Waitee<R> {
  key: GoalKey;
  done: Promise<R>;
}

export interface WaitOptions<R, T> {
  /** What the waiter gets: `count` folds each end in (true when it is a failure). */
  start: T;
  count: (acc: T, r: R) => boolean;
  /** A copy of the count for the waiter: later ends must not change what it was given. */
  snapshot: (acc: T) => T;
  keepGoing: boolean;
  emit: (e: WorkerEvent) => void;
}

/**
 * Wait for `waitees` on behalf of `waiter`. Ends after the wake are not counted: the waiter got
 * its snapshot, and the other goals keep going for whoever else waits for them.
 */
export function waitForGoals<R, T>(
  waiter: GoalKey,
  waitees: Waitee<R>[],
  o: WaitOptions<R, T>,
): Promise<T> {
  if (waitees.length === 0) return Promise.resolve(o.snapshot(o.start));
  o.emit({ type: "goal.waits", goal: waiter, on: waitees.map((w) => w.key) });
  return new Promise((resolve) => {
    let left = waitees.length;
    let woken = false;
    for (const w of waitees) {
      void w.done.then((r) => {
        if (woken) return;
        const failed = o.count(o.start, r);
        left--;
        if (left === 0 || (failed && !o.keepGoing)) {
          woken = true;
          if (left > 0) o.emit({ type: "goal.woken", goal: waiter, by: w.key });
          resolve(o.snapshot(o.start));
        }
      });
    }
  });
}
