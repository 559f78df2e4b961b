// The run's stream: takes the worker's events, stamps each with the next sequence number and the
// injected clock's times, makes it plain JSON and hands it to every listener in order (the run
// log, printers, progress displays, the inspector bridge). Nothing here prints or writes.
// Listeners must not change an event: others, the log among them, read it later.
import type { WorkerEvent } from "../machines/worker-events.ts";
import { EventEncoder, type KeptDrv } from "./event-values.ts";
import type { RunEvent, RunLevelEvent } from "./run-event.ts";

/** Time as the run sees it: injected so replay and tests control it. */
export interface RunClock {
  /** Milliseconds on a monotonic clock (any origin). */
  monotonic(): number;
  /** Unix milliseconds. */
  wall(): number;
}

export const SYSTEM_CLOCK: RunClock = {
  monotonic: () => performance.now(),
  wall: () => Date.now(),
};

export type RunListener = (event: RunEvent) => void;

/** Receives each derivation text the events refer to, once per run. */
export type DrvKeeper = (drv: KeptDrv) => void;

export class RunRecorder {
  private seq = 0;
  private readonly origin: number;
  private readonly listeners: RunListener[] = [];
  private readonly keepers: DrvKeeper[] = [];
  private readonly encoder: EventEncoder;
  private readonly kept = new Set<string>();

  constructor(private readonly clock: RunClock = SYSTEM_CLOCK) {
    this.origin = clock.monotonic();
    this.encoder = new EventEncoder((drv) => {
      if (this.kept.has(drv.hash)) return;
      this.kept.add(drv.hash);
      for (const k of this.keepers) k(drv);
    });
  }

  /** Listen to every event from now on; returns a function that stops listening. */
  listen(listener: RunListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Receive the derivation texts events refer to (the run log keeps them for replay). */
  keepDerivations(keeper: DrvKeeper): void {
    this.keepers.push(keeper);
  }

  /** The worker's listener: `worker.subscribe(recorder.worker)`. */
  readonly worker = (e: WorkerEvent): void => {
    this.publish(this.encoder.encode(e));
  };

  /** A run-level event (start, end). */
  run(e: RunLevelEvent): void {
    this.publish(e);
  }

  /** The last sequence number given out. */
  get lastSeq(): number {
    return this.seq;
  }

  private publish(e: WorkerEvent | RunLevelEvent): void {
    const event = {
      seq: ++this.seq,
      mono: Math.round((this.clock.monotonic() - this.origin) * 1000) / 1000,
      wall: this.clock.wall(),
      ...e,
    } as RunEvent;
    if (FREEZE_EVENTS) deepFreeze(event);
    for (const l of this.listeners) l(event);
  }
}

/**
 * A published event never changes: the run log serialises it up to ~100 ms later (run-writer.ts),
 * and the values in it are the goals' own (outputs, inputs, snapshots). The test suite sets
 * NIXSTATE_FREEZE_EVENTS=1 (vitest.config.ts), which freezes every event all the way down, so
 * code that changes one afterwards throws there. Not covered: the bytes of Buffers (a Hash's
 * digest) and the entries of Maps and Sets, which cannot be frozen.
 */
const FREEZE_EVENTS = process.env.NIXSTATE_FREEZE_EVENTS === "1";

function deepFreeze(v: unknown, seen = new WeakSet<object>()): void {
  if (typeof v !== "object" || v === null || seen.has(v) || ArrayBuffer.isView(v)) return;
  seen.add(v);
  Object.freeze(v);
  for (const x of Object.values(v)) deepFreeze(x, seen);
}
