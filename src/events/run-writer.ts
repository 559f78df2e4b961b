// Appends one run's events to the run log in batches. Recording has to cost the build little
// (≤ 5 % on the 1000-goal benchmark), so the main thread does as little as it can per event:
// - an event is kept as it is until its batch is cut (BATCH_MS after the batch's first event,
//   at BATCH_MAX, or by `flush`): published events never change (RunRecorder), so the lines say
//   what happened when it did;
// - a batch's events are serialised by one JSON.stringify call and split apart again, which
//   costs less than a call for each, as compact lines (event-lines.ts); the batch is compressed
//   (Brotli, ~0.1 ms) and committed at once, with statements prepared once a run;
// - a batch is cut every 90 ms, not 50: SQLite's cost is mostly per commit (the issue allows
//   ~100 ms between an event and the log);
// - a timer's cut waits for the I/O callbacks of its turn of the event loop, so that the goals
//   that I/O moves on (a builder done, the spawner's answer) are not held up by it.
// Handing batches to libuv's pool to deflate, or to a writer thread, cost more than it saved on
// this 2-core machine (BENCHMARKS.md, "Recording runs").
import type Database from "better-sqlite3";
import {
  type BatchRows,
  BatchStatements,
  compressLines,
  eventKey,
  MARK_ENDED,
} from "./batch-rows.ts";
import { LineEncoder } from "./event-lines.ts";
import type { KeptDrv } from "./event-values.ts";
import type { RunEvent } from "./run-event.ts";

/**
 * A batch is cut this long after its first event, and committed in the same turn of the event
 * loop (after its I/O callbacks): about 100 ms at most between an event and the log.
 */
export const BATCH_MS = 90;
/** Events and derivation texts that cut a batch at once. */
export const BATCH_MAX = 5000;

export class RunWriter {
  /** Events not yet written. */
  private pending: RunEvent[] = [];
  private drvs: KeptDrv[] = [];
  /** Derivation texts written so far. */
  private drvsWritten = 0;
  /** Lines name goals by number (keys are long): the encoder numbers them for the run. */
  private readonly encoder = new LineEncoder();
  private timer: NodeJS.Timeout | undefined;
  /** The timer's cut, waiting for the I/O callbacks of this turn of the event loop. */
  private cutSoon: NodeJS.Immediate | undefined;
  private statements: BatchStatements | undefined;
  private closed = false;
  /** Writing failed: nothing more is written. */
  private failed = false;
  /** An event could not be serialised: no more are taken, what came before it is written. */
  private stopped = false;

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
    this.writeBatch();
  }

  /** The run is over: write the rest and its exit code. */
  end(exitCode: number): void {
    if (this.closed) return;
    const rows = this.cutBatch();
    this.closed = true;
    // The last batch and the run's end in one transaction: a serve session's small build commits
    // once, not twice. The exit code even so when the batch cannot be written: the run shows as
    // ended, not interrupted.
    try {
      this.batchStatements().end(rows, this.runId, Date.now(), exitCode);
    } catch (e) {
      this.fail(e);
      try {
        this.db.prepare(MARK_ENDED).run(Date.now(), exitCode, this.runId);
      } catch {
        // Told above.
      }
    }
  }

  private schedule(): void {
    if (this.pending.length + this.drvs.length >= BATCH_MAX) this.writeBatch();
    else
      this.timer ??= setTimeout(() => {
        this.cutSoon = setImmediate(() => this.writeBatch());
      }, BATCH_MS);
  }

  /** Cut what is buffered into a batch and commit it. */
  private writeBatch(): void {
    const rows = this.cutBatch();
    if (rows === undefined) return;
    try {
      this.batchStatements().write(rows);
    } catch (e) {
      // The disk is full, the file went away…: stop recording, keep building.
      this.fail(e);
    }
  }

  /** Prepared at the first batch (a closed database throws there, inside the writer's catch). */
  private batchStatements(): BatchStatements {
    this.statements ??= BatchStatements.of(this.db);
    return this.statements;
  }

  /** What is buffered as a batch's rows (its lines compressed), or undefined for nothing. */
  private cutBatch(): BatchRows | undefined {
    this.cancelTimers();
    if (this.failed || (this.pending.length === 0 && this.drvs.length === 0)) return undefined;
    const events = this.pending;
    this.pending = [];
    const lines = this.encoder.encode(events);
    if (lines.error !== undefined) {
      // A value JSON cannot hold (a cycle, a BigInt): recording stops there, the build does
      // not; what came before it is still written.
      this.stop(lines.error);
    }
    const rows: BatchRows = {
      run: this.runId,
      key: lines.count > 0 ? eventKey(this.runId, events[0]!.seq) : 0,
      last: lines.count > 0 ? events[lines.count - 1]!.seq : 0,
      lines: undefined,
      enc: lines.enc,
      drvs: this.drvs,
      drvKey: eventKey(this.runId, this.drvsWritten + 1),
      goals: this.encoder.newGoals,
    };
    this.drvsWritten += this.drvs.length;
    this.drvs = [];
    this.encoder.newGoals = [];
    try {
      if (lines.count > 0) rows.lines = compressLines(lines.text);
    } catch (e) {
      this.fail(e);
      return undefined;
    }
    return rows;
  }

  private cancelTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.cutSoon) clearImmediate(this.cutSoon);
    this.cutSoon = undefined;
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    const told = this.stopped;
    this.failed = true;
    this.cancelTimers();
    this.pending = [];
    this.drvs = [];
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
