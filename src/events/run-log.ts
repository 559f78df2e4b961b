// The durable run log: `<state-dir>/runs.sqlite`, a database of its own (WAL) so that logging
// never waits on the store's write lock. A run's row is written when it starts; its events are
// appended in batches (a transaction every BATCH_MS at most), so a run killed outright keeps all
// but its last fraction of a second and shows as interrupted. Derivation texts the events refer
// to are kept here too, so a garbage-collected .drv cannot break a replay.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import Database from "better-sqlite3";
import { checkUsableDirectory } from "../store/local-store.ts";
import { currentProcess, isAlive } from "../store/process-identity.ts";
import { type BatchRows, writeBatchRows } from "./batch-rows.ts";
import type { KeptDrv } from "./event-values.ts";
import type { RunEvent, RunRequest } from "./run-event.ts";
import { DEFAULT_RETENTION, type RunRetention } from "./run-retention.ts";

/** At most this long between an event and its batch reaching the database. */
export const BATCH_MS = 50;
const BATCH_MAX = 5000;
const SCHEMA_VERSION = 4;

/**
 * Events are stored a batch to a row: one row per flush, its events as lines of
 * `type<TAB>goal number<TAB>seq<TAB>mono<TAB>wall<TAB>JSON of the other fields`. Thousands of ~300-byte rows a second
 * cost the main thread more than the build itself can spare; one row per batch costs a copy.
 * A batch's row key is its run and first sequence number in one integer, so a run's batches
 * are one range of the table.
 */
const RUN_SPAN = 2 ** 32;
const eventKey = (run: number, seq: number) => run * RUN_SPAN + seq;

const SCHEMA = `
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started INTEGER NOT NULL,
  ended INTEGER,
  exit_code INTEGER,
  command TEXT NOT NULL,
  request TEXT NOT NULL,
  pid INTEGER NOT NULL,
  pid_start INTEGER NOT NULL,
  resumes INTEGER
);
CREATE TABLE goals (
  run INTEGER NOT NULL,
  n INTEGER NOT NULL,
  key TEXT NOT NULL,
  PRIMARY KEY (run, n)
) WITHOUT ROWID;
CREATE TABLE batches (key INTEGER PRIMARY KEY, last INTEGER NOT NULL, lines BLOB NOT NULL);
CREATE TABLE drvs (hash TEXT PRIMARY KEY, name TEXT NOT NULL, aterm BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE run_drvs (run INTEGER NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (run, hash)) WITHOUT ROWID;
`;

/**
 * A batch's lines as stored: deflated (raw, level 1: ~5 ms a megabyte), which takes the log of
 * the 1000-goal benchmark from 8.7 to 2.8 kB a goal (.drv texts included); rows written as text
 * by earlier versions read as they are.
 */
type BatchLines = Buffer | string;

const DEFLATE_LEVEL = 1;

function deflateBatch(text: string): Buffer {
  return deflateRawSync(text, { level: DEFLATE_LEVEL });
}

function batchText(stored: BatchLines): string {
  return typeof stored === "string" ? stored : inflateRawSync(stored).toString("utf8");
}

export class RunLogError extends Error {
  override name = "RunLogError";
}

export type RunState = "running" | "ended" | "interrupted";

export interface RunRow {
  id: number;
  /** Unix milliseconds. */
  started: number;
  ended: number | undefined;
  exitCode: number | undefined;
  request: RunRequest;
  resumes: number | undefined;
  state: RunState;
  /** The process that ran it. */
  pid: number;
}

export function runLogFile(stateDir: string): string {
  return join(stateDir, "runs.sqlite");
}

export class RunLog {
  readonly db: Database.Database;

  private constructor(
    db: Database.Database,
    /** The state directory the log belongs to. */
    readonly stateDir: string,
  ) {
    this.db = db;
  }

  static open(stateDir: string): RunLog {
    checkUsableDirectory("state directory", resolve(stateDir), "--state-dir");
    const file = runLogFile(stateDir);
    let db: Database.Database;
    try {
      mkdirSync(stateDir, { recursive: true });
      db = new Database(file, { timeout: 10_000 });
      if (db.pragma("journal_mode", { simple: true }) !== "wal") db.pragma("journal_mode = WAL");
      // No fsyncs: a killed process loses nothing it wrote (the kernel has it), and only an OS
      // crash or power loss could lose or damage the log's tail; the log is a record, never what
      // the store relies on, and a build goes on without it (RunSession). Fsyncs at checkpoints
      // and on close cost a run more than the rest of its logging. Fewer, larger checkpoints too.
      db.pragma("synchronous = OFF");
      db.pragma("wal_autocheckpoint = 8000");
      const v = db.pragma("user_version", { simple: true }) as number;
      if (v < SCHEMA_VERSION) {
        db.transaction(() => {
          if ((db.pragma("user_version", { simple: true }) as number) >= SCHEMA_VERSION) return;
          // Versions 1-3 lived for one development day; their runs are not carried over.
          for (const t of ["events", "batches", "goals", "run_drvs", "drvs", "runs"])
            db.exec(`DROP TABLE IF EXISTS ${t}`);
          db.exec(SCHEMA);
          db.pragma(`user_version = ${SCHEMA_VERSION}`);
        }).immediate();
      } else if (v > SCHEMA_VERSION) {
        throw new RunLogError(
          `the run log '${file}' has schema version ${v}, newer than this nixstate supports`,
        );
      }
    } catch (e) {
      if (e instanceof RunLogError) throw e;
      throw new RunLogError(
        `cannot open the run log '${file}': ${(e as Error).message}; check --state-dir and its permissions, or pass --no-record`,
        { cause: e },
      );
    }
    return new RunLog(db, resolve(stateDir));
  }

  /** The database file. */
  get file(): string {
    return runLogFile(this.stateDir);
  }

  close(): void {
    this.db.close();
  }

  /** Start recording a run: its row now, its events through the returned writer. */
  begin(
    request: RunRequest,
    resumes?: number,
    retention = DEFAULT_RETENTION,
    opts: { prune?: boolean } = {},
  ): RunWriter {
    if (opts.prune ?? true) this.prune(retention);
    const me = currentProcess();
    const info = this.db
      .prepare(
        "INSERT INTO runs (started, command, request, pid, pid_start, resumes) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(
        Date.now(),
        request.command,
        JSON.stringify(request),
        me.pid,
        me.startTime,
        resumes ?? null,
      );
    return new RunWriter(this, Number(info.lastInsertRowid));
  }

  /** Drop runs beyond the retention, and the derivation texts no run refers to any more. */
  prune(retention: RunRetention): number {
    const cutoff = retention.days === undefined ? 0 : Date.now() - retention.days * 86_400_000;
    const candidates = this.db
      .prepare(
        "SELECT * FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?) OR started < ?",
      )
      .all(Math.max(0, retention.count - 1), cutoff) as DbRun[];
    // A run still being written stays, whatever its age: its process would write on into
    // nothing.
    const old = candidates.map(toRunRow).flatMap((r) => (r.state === "running" ? [] : [r.id]));
    if (old.length === 0) return 0;
    this.db.transaction(() => {
      const del = (table: string, col: string) =>
        this.db.prepare(`DELETE FROM ${table} WHERE ${col} = ?`);
      const e = this.db.prepare("DELETE FROM batches WHERE key BETWEEN ? AND ?");
      const [d, g, r] = [del("run_drvs", "run"), del("goals", "run"), del("runs", "id")];
      for (const id of old) {
        e.run(eventKey(id, 0), eventKey(id + 1, 0) - 1);
        d.run(id);
        g.run(id);
        r.run(id);
      }
      this.db.exec("DELETE FROM drvs WHERE hash NOT IN (SELECT hash FROM run_drvs)");
    })();
    return old.length;
  }

  runs(): RunRow[] {
    return (this.db.prepare("SELECT * FROM runs ORDER BY id").all() as DbRun[]).map(toRunRow);
  }

  run(id: number): RunRow {
    const row = this.db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as DbRun | undefined;
    if (!row)
      throw new RunLogError(`there is no run ${id} in the run log ('nixstate runs' lists them)`);
    return toRunRow(row);
  }

  /** The newest run, or undefined when none was recorded. */
  latest(): RunRow | undefined {
    const row = this.db.prepare("SELECT * FROM runs ORDER BY id DESC LIMIT 1").get() as
      | DbRun
      | undefined;
    return row ? toRunRow(row) : undefined;
  }

  /** A run's events in order; only one goal's, or only up to `untilSeq`, if asked. */
  events(
    run: number,
    filter: { goal?: string; untilSeq?: number; types?: ReadonlySet<string> } = {},
  ): RunEvent[] {
    const until = Math.min(filter.untilSeq ?? RUN_SPAN - 1, RUN_SPAN - 1);
    const keys = new Map<number, string>(
      (
        this.db.prepare("SELECT n, key FROM goals WHERE run = ?").all(run) as {
          n: number;
          key: string;
        }[]
      ).map((g) => [g.n, g.key]),
    );
    const batches = this.db
      .prepare("SELECT lines FROM batches WHERE key BETWEEN ? AND ? ORDER BY key")
      .pluck()
      .all(eventKey(run, 0), eventKey(run, until)) as BatchLines[];
    const events: RunEvent[] = [];
    for (const stored of batches) {
      const lines = batchText(stored);
      for (const line of lines.split("\n")) {
        const tabs: number[] = [];
        for (let t = line.indexOf("\t"); t >= 0 && tabs.length < 5; t = line.indexOf("\t", t + 1))
          tabs.push(t);
        const [t1, t2, t3, t4, t5] = tabs as [number, number, number, number, number];
        const seq = Number(line.slice(t2 + 1, t3));
        if (seq > until) break;
        const goal = t2 > t1 + 1 ? keys.get(Number(line.slice(t1 + 1, t2))) : undefined;
        if (filter.goal !== undefined && goal !== filter.goal) continue;
        const type = line.slice(0, t1);
        // Only the lines asked for are parsed: listing runs reads a few kinds of a long log.
        if (filter.types !== undefined && !filter.types.has(type)) continue;
        const stamp = {
          seq,
          mono: Number(line.slice(t3 + 1, t4)),
          wall: Number(line.slice(t4 + 1, t5)),
        };
        const fields = JSON.parse(line.slice(t5 + 1)) as object;
        events.push(
          (goal === undefined
            ? { type, ...stamp, ...fields }
            : { type, goal, ...stamp, ...fields }) as RunEvent,
        );
      }
    }
    return events;
  }

  /** How many events a run has logged, and the wall time of the last. */
  extent(run: number): { events: number; lastWall: number | undefined } {
    const last = this.db
      .prepare(
        "SELECT last, lines FROM batches WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1",
      )
      .get(eventKey(run, 0), eventKey(run, RUN_SPAN - 1)) as
      | { last: number; lines: BatchLines }
      | undefined;
    if (!last) return { events: 0, lastWall: undefined };
    const lines = batchText(last.lines);
    const fields = lines.slice(lines.lastIndexOf("\n") + 1).split("\t");
    return { events: last.last, lastWall: Number(fields[4]) };
  }

  drv(hash: string): KeptDrv | undefined {
    const row = this.db.prepare("SELECT hash, name, aterm FROM drvs WHERE hash = ?").get(hash) as
      | KeptDrv
      | undefined;
    return row;
  }
}

/**
 * The event as JSON without its type, goal and stamp (the line's prefix has them). JSON.stringify leaves
 * out fields that are undefined, so they are unset for the call and put back at once, which spares
 * a copy of every event (a run logs tens of thousands).
 */
function jsonWithout(event: RunEvent): string {
  const e = event as { type?: string; goal?: string; seq?: number; mono?: number; wall?: number };
  const { type, goal, seq, mono, wall } = e;
  e.type = undefined;
  e.seq = undefined;
  e.mono = undefined;
  e.wall = undefined;
  if (goal !== undefined) e.goal = undefined;
  try {
    return JSON.stringify(e);
  } finally {
    e.type = type;
    e.seq = seq;
    e.mono = mono;
    e.wall = wall;
    if (goal !== undefined) e.goal = goal;
  }
}

interface DbRun {
  id: number;
  started: number;
  ended: number | null;
  exit_code: number | null;
  request: string;
  pid: number;
  pid_start: number;
  resumes: number | null;
}

function toRunRow(r: DbRun): RunRow {
  const state: RunState =
    r.ended !== null
      ? "ended"
      : isAlive({ pid: r.pid, startTime: r.pid_start })
        ? "running"
        : "interrupted";
  return {
    id: r.id,
    started: r.started,
    ended: r.ended ?? undefined,
    exitCode: r.exit_code ?? undefined,
    request: JSON.parse(r.request) as RunRequest,
    resumes: r.resumes ?? undefined,
    state,
    pid: r.pid,
  };
}

/** Appends one run's events in batches; `end` writes what is left and the exit code. */
export class RunWriter {
  private drvs: KeptDrv[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Goal key → its number in this run: lines name goals by number, keys are long. */
  private readonly goalIds = new Map<string, number>();
  private newGoals: [number, string][] = [];
  /** Event lines not yet written. */
  private lines: string[] = [];
  private firstSeq = 0;
  private lastSeq = 0;
  private closed = false;

  constructor(
    private readonly log: RunLog,
    readonly runId: number,
  ) {}

  /** The recorder's listener. */
  readonly append = (event: RunEvent): void => {
    if (this.closed || this.failed) return;
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
      // A value JSON cannot hold (a cycle, a BigInt): recording stops, the build does not.
      this.fail(e);
      return;
    }
    if (this.lines.length === 0) this.firstSeq = event.seq;
    this.lastSeq = event.seq;
    this.lines.push(`${event.type}\t${goal}\t${event.seq}\t${event.mono}\t${event.wall}\t${json}`);
    this.schedule();
  };

  /** The recorder's derivation keeper. */
  readonly keep = (drv: KeptDrv): void => {
    if (this.closed || this.failed) return;
    this.drvs.push(drv);
    this.schedule();
  };

  private schedule(): void {
    if (this.lines.length + this.drvs.length >= BATCH_MAX) this.write();
    else this.timer ??= setTimeout(() => this.write(), BATCH_MS);
  }

  /** Write what is buffered, committed when this returns. */
  flush(): void {
    this.write();
  }

  /**
   * Write what is buffered, in one transaction, here: a writer thread for it (tried until
   * 2026-12-03) cost as much CPU as it took off this one and ~15 MB of memory (BENCHMARKS.md).
   */
  private write(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.failed || (this.lines.length === 0 && this.drvs.length === 0)) return;
    const rows: BatchRows = {
      run: this.runId,
      key: this.lines.length > 0 ? eventKey(this.runId, this.firstSeq) : 0,
      last: this.lastSeq,
      lines: this.lines.join("\n"),
      drvs: this.drvs,
      goals: this.newGoals,
    };
    this.lines = [];
    this.drvs = [];
    this.newGoals = [];
    try {
      writeBatchRows(this.log.db, rows, deflateBatch);
    } catch (e) {
      // The disk is full, the file went away…: stop recording, keep building.
      this.fail(e);
    }
  }

  private failed = false;

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.lines = [];
    this.drvs = [];
    this.onFailure?.(e instanceof Error ? e : new Error(String(e)));
  }

  /** Told once when writing fails; the run is not recorded from then on. */
  onFailure: ((error: Error) => void) | undefined;

  /** The run is over: write the rest and its exit code. */
  end(exitCode: number): void {
    if (this.closed) return;
    if (!this.failed) this.flush();
    this.closed = true;
    try {
      this.log.db
        .prepare("UPDATE runs SET ended = ?, exit_code = ? WHERE id = ?")
        .run(Date.now(), exitCode, this.runId);
    } catch (e) {
      this.onFailure?.(e instanceof Error ? e : new Error(String(e)));
    }
  }
}
