// Appends one run's events to the run log in batches. Recording has to cost the build little
// (≤ 5 % on the 1000-goal benchmark), so the main thread does as little as it can per event:
// - an event is kept as it is until its batch is cut (BATCH_MS after the batch's first event,
//   at BATCH_MAX, or by `flush`): serialising a batch in one loop costs half of serialising each
//   event amid the goals' work (BENCHMARKS.md); published events never change (RunRecorder), so
//   the lines say what happened when it did;
// - a batch is deflated on libuv's thread pool and committed when that is done, batches in order
//   (a few ms later); `flush` and `end` finish every batch here and now, and so does a cut that
//   finds MAX_QUEUED batches still waiting (a pool busy with the build's own file work);
// - cuts and commits run after the I/O callbacks of their turn of the event loop, so that the
//   goals that I/O moves on (a builder done, the spawner's answer) are not held up by them;
// - the statements are prepared once a run.
// A writer thread for all of it (tried until 2026-12-03) cost as much CPU as it took off this
// one and ~15 MB of memory.
import type Database from "better-sqlite3";
import {
  type BatchRows,
  BatchStatements,
  deflateLines,
  deflateLinesAsync,
  eventKey,
} from "./batch-rows.ts";
import type { KeptDrv } from "./event-values.ts";
import type { RunEvent } from "./run-event.ts";

/** At most this long between an event and its batch being cut (and a few ms more to disk). */
export const BATCH_MS = 50;
/** Events and derivation texts that cut a batch at once. */
export const BATCH_MAX = 5000;
/** Batches cut but not committed beyond which the writer catches up on the main thread. */
const MAX_QUEUED = 4;

/** A batch cut and not yet committed: being deflated, or waiting for an earlier batch. */
interface CutBatch {
  rows: BatchRows;
  /** Its lines; undefined when it has none (derivation texts only). */
  text: string | undefined;
  /** On the pool now. */
  deflating: boolean;
  /** Its lines deflated, once the pool is done. */
  deflated: Buffer | undefined;
  /** Committed, or given up. */
  settled: boolean;
}

export class RunWriter {
  /** Events not yet serialised. */
  private pending: RunEvent[] = [];
  private drvs: KeptDrv[] = [];
  /** Goal key → its number in this run: lines name goals by number, keys are long. */
  private readonly goalIds = new Map<string, number>();
  private newGoals: [number, string][] = [];
  /** Events in the same millisecond share their wall time's text (formatting it is not free). */
  private wall = Number.NaN;
  private wallText = "";
  /** Cut batches not yet written, oldest first. */
  private queue: CutBatch[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The timer's cut, waiting for the I/O callbacks of this turn of the event loop. */
  private cutSoon: NodeJS.Immediate | undefined;
  /** Commits of deflated batches, waiting likewise. */
  private drainSoon: NodeJS.Immediate | undefined;
  private closed = false;
  /** Writing failed: nothing more is written. */
  private failed = false;
  /** An event could not be serialised: no more are taken, what was cut is still written. */
  private stopped = false;

  /** Prepared at the first batch (a closed database throws there, inside the writer's catch). */
  private statements: BatchStatements | undefined;

  /** Told once when writing fails; the run is not recorded from then on. */
  onFailure: ((error: Error) => void) | undefined;

  constructor(
    private readonly db: Database.Database,
    readonly runId: number,
  ) {}

  /** The recorder's listener. */
  readonly append = (event: RunEvent): void => {
    if (this.closed || this.failed || this.stopped) return;
    this.pending.push(event);
    this.schedule();
  };

  /** The recorder's derivation keeper. */
  readonly keep = (drv: KeptDrv): void => {
    if (this.closed || this.failed || this.stopped) return;
    this.drvs.push(drv);
    this.schedule();
  };

  /** Write everything appended so far, committed when this returns. */
  flush(): void {
    this.cut();
    this.catchUp();
  }

  /** Commit every cut batch now, deflating here those the pool has not done yet. */
  private catchUp(): void {
    const queue = this.queue;
    this.queue = [];
    for (const b of queue) {
      if (this.failed) break;
      this.writeBatch(b);
    }
  }

  /** The run is over: write the rest and its exit code. */
  end(exitCode: number): void {
    if (this.closed) return;
    if (!this.failed) this.flush();
    this.closed = true;
    // The exit code even so: the run shows as ended, not interrupted.
    try {
      this.db
        .prepare("UPDATE runs SET ended = ?, exit_code = ? WHERE id = ?")
        .run(Date.now(), exitCode, this.runId);
    } catch (e) {
      this.fail(e);
    }
  }

  private schedule(): void {
    if (this.pending.length + this.drvs.length >= BATCH_MAX) this.cutAndDeflate();
    // Timers run before the I/O that is ready (a builder done, the spawner's answer): cutting
    // there would hold up the goals that I/O moves on. An immediate runs after it.
    else
      this.timer ??= setTimeout(() => {
        this.cutSoon = setImmediate(() => this.cutAndDeflate());
      }, BATCH_MS);
  }

  private cutAndDeflate(): void {
    const b = this.cut();
    if (b === undefined) return;
    if (this.queue.length > MAX_QUEUED) {
      this.catchUp();
      return;
    }
    if (b.text !== undefined) {
      b.deflating = true;
      deflateLinesAsync(b.text, (z) => {
        if (b.settled) return; // committed by a flush meanwhile
        b.deflating = false;
        // Should the pool fail to deflate it, writeBatch deflates it here: it is not lost.
        b.deflated = z;
        // Committed after this turn's other I/O callbacks, as a cut is.
        this.drainSoon ??= setImmediate(() => {
          this.drainSoon = undefined;
          this.drain();
        });
      });
    }
    this.drain();
  }

  /** Commit the batches at the head of the queue whose deflating is done. */
  private drain(): void {
    while (this.queue.length > 0 && !this.failed) {
      const b = this.queue[0]!;
      if (b.deflating) return;
      this.queue.shift();
      this.writeBatch(b);
    }
  }

  private writeBatch(b: CutBatch): void {
    b.settled = true;
    try {
      b.rows.lines = b.deflated ?? (b.text === undefined ? undefined : deflateLines(b.text));
      b.text = undefined;
      this.statements ??= new BatchStatements(this.db);
      this.statements.write(b.rows);
    } catch (e) {
      // The disk is full, the file went away…: stop recording, keep building.
      this.fail(e);
    }
  }

  /** Serialise what is buffered into a batch at the end of the queue. */
  private cut(): CutBatch | undefined {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.cutSoon) clearImmediate(this.cutSoon);
    this.cutSoon = undefined;
    if (this.failed || (this.pending.length === 0 && this.drvs.length === 0)) return undefined;
    const events = this.pending;
    this.pending = [];
    const lines: string[] = [];
    for (const event of events) {
      let goal = "";
      if ("goal" in event) {
        let n = this.goalIds.get(event.goal);
        if (n === undefined) {
          n = this.goalIds.size + 1;
          this.goalIds.set(event.goal, n);
          this.newGoals.push([n, event.goal]);
        }
        goal = String(n);
      }
      let json: string;
      try {
        json = jsonWithout(event);
      } catch (e) {
        // A value JSON cannot hold (a cycle, a BigInt): recording stops there, the build does
        // not; what came before it is still written.
        this.stop(e);
        break;
      }
      if (event.wall !== this.wall) {
        this.wall = event.wall;
        this.wallText = String(event.wall);
      }
      lines.push(`${event.type}\t${goal}\t${event.seq}\t${event.mono}\t${this.wallText}\t${json}`);
    }
    const b: CutBatch = {
      rows: {
        run: this.runId,
        key: lines.length > 0 ? eventKey(this.runId, events[0]!.seq) : 0,
        last: lines.length > 0 ? events[lines.length - 1]!.seq : 0,
        lines: undefined,
        drvs: this.drvs,
        goals: this.newGoals,
      },
      text: lines.length > 0 ? lines.join("\n") : undefined,
      deflating: false,
      deflated: undefined,
      settled: false,
    };
    this.drvs = [];
    this.newGoals = [];
    this.queue.push(b);
    return b;
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    const told = this.stopped;
    this.failed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.cutSoon) clearImmediate(this.cutSoon);
    this.cutSoon = undefined;
    this.pending = [];
    this.drvs = [];
    for (const b of this.queue) b.settled = true;
    this.queue = [];
    if (!told) this.tell(e);
  }

  private stop(e: unknown): void {
    if (this.stopped || this.failed) return;
    this.stopped = true;
    this.tell(e);
  }

  private tell(e: unknown): void {
    this.onFailure?.(e instanceof Error ? e : new Error(String(e)));
  }
}

/**
 * The event as JSON without its type, goal and stamp (the line's prefix has them): a line is
 * `type<TAB>goal number<TAB>seq<TAB>mono<TAB>wall<TAB>JSON of the other fields`.
 */
function jsonWithout(event: RunEvent): string {
  const {
    type: _t,
    seq: _s,
    mono: _m,
    wall: _w,
    goal: _g,
    ...rest
  } = event as RunEvent & {
    goal?: string;
  };
  return JSON.stringify(rest);
}
