// What goals hold while they build or substitute: build slots (at most `limit` at once), output
// locks, and the effects still running for them. Released when a goal ends, or as soon as its
// builder exits for the slot.
import type { OutputLock } from "./worker-effects.ts";
import type { GoalKey, WorkerEvent } from "./worker-events.ts";

export class WorkerError extends Error {
  override name = "WorkerError";
}

type SlotReleaseReason = "builderExited" | "goalEnded";
type SlotWaiter = (() => void) & { goalId?: number };

export class GoalResources {
  private readonly locks = new Map<number, OutputLock>();
  private readonly slotHolders = new Set<number>();
  private readonly slotWaiters: SlotWaiter[] = [];
  /**
   * Goals that hold their locks (or are taking them) and wait for a slot: at most a slot limit's
   * worth. Nix unlocks a goal that finds no slot; this keeps a short queue locked instead, so a
   * wide graph cannot hold thousands of lock files open in the spawner.
   */
  private readonly lockingAhead = new Set<number>();
  private readonly aheadWaiters: SlotWaiter[] = [];
  /** Builder runs and copies still going, per goal: a goal's slot and locks stay taken until they end. */
  private readonly inflight = new Map<number, Promise<unknown>>();

  constructor(
    private readonly emit: (event: WorkerEvent) => void = () => {},
    private readonly keyOf: (goalId: number) => GoalKey = String,
  ) {}

  /** Wait until every aborted builder has been reaped and its resources released. */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight.values()]);
  }

  /** Remember that `p` runs for `goalId`; returns `p`. */
  track<T>(goalId: number, p: Promise<T>): Promise<T> {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.set(goalId, settled);
    void settled.then(() => {
      if (this.inflight.get(goalId) === settled) this.inflight.delete(goalId);
    });
    return p;
  }

  /**
   * Take the lock `tryLock` takes (retrying while another process has it), run `underLock`,
   * then take a slot (of `limit`). The lock first, as Nix does: waiting for it holds no slot, and
   * taking it (a round trip to the spawner) and what must follow under it overlap other goals'
   * builds instead of keeping a slot idle.
   */
  async slotAndLock(
    goalId: number,
    limit: number,
    signal: AbortSignal,
    tryLock: () => OutputLock | undefined | Promise<OutputLock | undefined>,
    underLock: (lock: OutputLock) => unknown = () => undefined,
  ): Promise<void> {
    let backoff = 20;
    let lock: OutputLock | undefined;
    for (;;) {
      await this.enterAhead(goalId, limit, signal);
      try {
        lock = await tryLock();
      } catch (e) {
        this.leaveAhead(goalId);
        throw e;
      }
      if (lock) {
        this.locks.set(goalId, lock);
        break;
      }
      // Another process holds it: let another goal lock ahead meanwhile.
      this.leaveAhead(goalId);
      this.emit({ type: "lock.busy", goal: this.keyOf(goalId), retryMs: backoff });
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 500);
    }
    try {
      await underLock(lock);
      await this.acquireSlot(goalId, limit, signal);
    } catch (e) {
      // Failed or cancelled before a slot: nothing was built under the lock. (A goal stopped
      // meanwhile released it already; a second release does nothing.)
      this.locks.delete(goalId);
      lock.release(false);
      throw e;
    } finally {
      this.leaveAhead(goalId);
    }
  }

  private enterAhead(goalId: number, limit: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new WorkerError("cancelled"));
    if (this.lockingAhead.size < limit) {
      this.lockingAhead.add(goalId);
      return Promise.resolve();
    }
    return waitInLine(this.aheadWaiters, goalId, signal, () => this.lockingAhead.add(goalId));
  }

  private leaveAhead(goalId: number): void {
    if (this.lockingAhead.delete(goalId)) this.aheadWaiters.shift()?.();
  }

  private acquireSlot(goalId: number, limit: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new WorkerError("cancelled"));
    if (this.slotHolders.size < limit) {
      this.grant(goalId, limit);
      return Promise.resolve();
    }
    return waitInLine(this.slotWaiters, goalId, signal, () => this.grant(goalId, limit));
  }

  private grant(goalId: number, limit: number): void {
    this.slotHolders.add(goalId);
    this.emit({
      type: "slot.granted",
      goal: this.keyOf(goalId),
      held: this.slotHolders.size,
      limit,
    });
  }

  /** Give the slot to the next waiting goal (nothing if `goalId` holds none). */
  releaseSlot(goalId: number, reason: SlotReleaseReason = "builderExited"): void {
    if (!this.slotHolders.delete(goalId)) return;
    const next = this.slotWaiters.shift();
    this.emit({
      type: "slot.released",
      goal: this.keyOf(goalId),
      reason,
      ...(next ? { to: this.keyOf(next.goalId ?? -1) } : {}),
    });
    if (next) next();
  }

  /** Release everything `goalId` holds, once its running effects have ended. */
  release(goalId: number, built: boolean): void {
    // A builder of a stopped goal may still be dying: keep its outputs locked until it is gone.
    const running = this.inflight.get(goalId);
    if (running) {
      void running.then(() => this.release(goalId, built));
      return;
    }
    this.releaseLockAndSlot(goalId, built);
  }

  releaseLockAndSlot(goalId: number, built: boolean): void {
    const lock = this.locks.get(goalId);
    if (lock) {
      this.locks.delete(goalId);
      lock.release(built);
    }
    this.releaseSlot(goalId, "goalEnded");
  }
}

/** Wait at the end of `line` until woken (`onWake` runs first), or until `signal` aborts. */
function waitInLine(
  line: SlotWaiter[],
  goalId: number,
  signal: AbortSignal,
  onWake: () => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const wake: SlotWaiter = () => {
      signal.removeEventListener("abort", onAbort);
      onWake();
      resolve();
    };
    wake.goalId = goalId;
    const onAbort = () => {
      const i = line.indexOf(wake);
      if (i >= 0) line.splice(i, 1);
      reject(new WorkerError("cancelled"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    line.push(wake);
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new WorkerError("cancelled"));
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new WorkerError("cancelled"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
