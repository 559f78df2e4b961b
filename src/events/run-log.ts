// The durable run log: `<state-dir>/runs.sqlite`, a database of its own (WAL) so that logging
// never waits on the store's write lock. A run's row is written when it starts; its events are
// appended in batches (a transaction every BATCH_MS at most), so a run killed outright keeps all
// but its last fraction of a second and shows as interrupted. Derivation texts the events refer
// to are kept here too, so a garbage-collected .drv cannot break a replay.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { currentProcess, isAlive } from "../store/process-identity.ts";
import type { KeptDrv } from "./event-values.ts";
import type { RunEvent, RunRequest } from "./run-event.ts";

/** At most this long between an event and its batch reaching the database. */
export const BATCH_MS = 50;
const BATCH_MAX = 5000;
const SCHEMA_VERSION = 2;

/**
 * An event's row key: run and sequence number in one integer, so that a run's events are one
 * range of the table's rowid order. Rows of ~1 kB insert several times faster into a rowid table
 * without secondary indexes than into a WITHOUT ROWID table keyed (run, seq).
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
CREATE TABLE goals (id INTEGER PRIMARY KEY, run INTEGER NOT NULL, key TEXT NOT NULL);
CREATE INDEX goals_run ON goals (run, key);
CREATE TABLE events (
  key INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  goal INTEGER,
  body TEXT NOT NULL
);
CREATE TABLE drvs (hash TEXT PRIMARY KEY, name TEXT NOT NULL, aterm BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE run_drvs (run INTEGER NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (run, hash)) WITHOUT ROWID;
`;

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
    throw new RunLogError(
      `keep-runs wants a number of runs (e.g. 100) or of days (e.g. 30d), not '${text}'`,
    );
  }
  const n = Number(m[1]);
  return m[2] ? { count: Number.MAX_SAFE_INTEGER, days: n } : { count: n };
}

export function runLogFile(stateDir: string): string {
  return join(stateDir, "runs.sqlite");
}

export class RunLog {
  readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(stateDir: string): RunLog {
    const file = runLogFile(stateDir);
    let db: Database.Database;
    try {
      mkdirSync(stateDir, { recursive: true });
      db = new Database(file, { timeout: 10_000 });
      if (db.pragma("journal_mode", { simple: true }) !== "wal") db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      // Checkpoints copy the WAL into the database with fsyncs: fewer, larger ones cost less
      // during a run (the default of 1000 pages more than doubled the cost of each event).
      db.pragma("wal_autocheckpoint = 8000");
      const v = db.pragma("user_version", { simple: true }) as number;
      if (v < SCHEMA_VERSION) {
        db.transaction(() => {
          if ((db.pragma("user_version", { simple: true }) as number) >= SCHEMA_VERSION) return;
          // Version 1 lived for one development day; its runs are not carried over.
          for (const t of ["events", "goals", "run_drvs", "drvs", "runs"])
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
    return new RunLog(db);
  }

  close(): void {
    this.db.close();
  }

  /** Start recording a run: its row now, its events through the returned writer. */
  begin(request: RunRequest, resumes?: number, retention = DEFAULT_RETENTION): RunWriter {
    this.prune(retention);
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
    const old = this.db
      .prepare(
        "SELECT id FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?) OR started < ?",
      )
      .pluck()
      .all(Math.max(0, retention.count - 1), cutoff) as number[];
    if (old.length === 0) return 0;
    this.db.transaction(() => {
      const del = (table: string, col: string) =>
        this.db.prepare(`DELETE FROM ${table} WHERE ${col} = ?`);
      const e = this.db.prepare("DELETE FROM events WHERE key BETWEEN ? AND ?");
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
  events(run: number, filter: { goal?: string; untilSeq?: number } = {}): RunEvent[] {
    const until = Math.min(filter.untilSeq ?? RUN_SPAN - 1, RUN_SPAN - 1);
    const range = [eventKey(run, 0), eventKey(run, until)];
    const select =
      "SELECT e.type, g.key AS goal, e.body FROM events e LEFT JOIN goals g ON g.id = e.goal WHERE e.key BETWEEN ? AND ?";
    const rows = (
      filter.goal === undefined
        ? this.db.prepare(`${select} ORDER BY e.key`).all(...range)
        : this.db.prepare(`${select} AND g.key = ? ORDER BY e.key`).all(...range, filter.goal)
    ) as EventRow[];
    return rows.map(fromRow);
  }

  drv(hash: string): KeptDrv | undefined {
    const row = this.db.prepare("SELECT hash, name, aterm FROM drvs WHERE hash = ?").get(hash) as
      | KeptDrv
      | undefined;
    return row;
  }
}

interface EventRow {
  type: string;
  goal: string | null;
  body: string;
}

/** The body holds every field but the type and goal, which have columns of their own. */
function fromRow(r: EventRow): RunEvent {
  const fields = JSON.parse(r.body) as Record<string, unknown>;
  return (r.goal === null
    ? { type: r.type, ...fields }
    : { type: r.type, goal: r.goal, ...fields }) as unknown as RunEvent;
}

function toBody(e: RunEvent): string {
  const { type: _t, goal: _g, ...fields } = e as RunEvent & { goal?: string };
  return JSON.stringify(fields);
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
  };
}

/** Appends one run's events in batches; `end` writes what is left and the exit code. */
export class RunWriter {
  private events: RunEvent[] = [];
  private drvs: KeptDrv[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly insertEvent;
  private readonly insertDrv;
  private readonly linkDrv;
  private readonly insertGoal;
  /** Goal key → its row: events name goals by number, keys are long. */
  private readonly goalIds = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly log: RunLog,
    readonly runId: number,
  ) {
    const db = log.db;
    this.insertEvent = db.prepare("INSERT INTO events (key, type, goal, body) VALUES (?, ?, ?, ?)");
    this.insertGoal = db.prepare("INSERT INTO goals (run, key) VALUES (?, ?)");
    this.insertDrv = db.prepare("INSERT OR IGNORE INTO drvs (hash, name, aterm) VALUES (?, ?, ?)");
    this.linkDrv = db.prepare("INSERT OR IGNORE INTO run_drvs (run, hash) VALUES (?, ?)");
  }

  /** The recorder's listener. */
  readonly append = (event: RunEvent): void => {
    if (this.closed) return;
    this.events.push(event);
    this.schedule();
  };

  /** The recorder's derivation keeper. */
  readonly keep = (drv: KeptDrv): void => {
    if (this.closed) return;
    this.drvs.push(drv);
    this.schedule();
  };

  private schedule(): void {
    if (this.events.length + this.drvs.length >= BATCH_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  /** Write what is buffered, in one transaction. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.events.length === 0 && this.drvs.length === 0) return;
    const [events, drvs] = [this.events, this.drvs];
    this.events = [];
    this.drvs = [];
    const run = this.runId;
    this.log.db.transaction(() => {
      // Texts first: an event never refers to a derivation the log lacks.
      for (const d of drvs) {
        this.insertDrv.run(d.hash, d.name, d.aterm);
        this.linkDrv.run(run, d.hash);
      }
      for (const e of events) {
        let goal: number | null = null;
        if ("goal" in e) {
          goal = this.goalIds.get(e.goal) ?? null;
          if (goal === null) {
            goal = Number(this.insertGoal.run(run, e.goal).lastInsertRowid);
            this.goalIds.set(e.goal, goal);
          }
        }
        this.insertEvent.run(eventKey(run, e.seq), e.type, goal, toBody(e));
      }
    })();
  }

  /** The run is over: write the rest and its exit code. */
  end(exitCode: number): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.log.db
      .prepare("UPDATE runs SET ended = ?, exit_code = ? WHERE id = ?")
      .run(Date.now(), exitCode, this.runId);
  }
}
