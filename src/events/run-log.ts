// The durable run log: `<state-dir>/runs.sqlite`, a database of its own (WAL) so that logging
// never waits on the store's write lock. A run's row is written when it starts; its events are
// appended in batches (run-writer.ts: cut and committed within ~100 ms), so a run
// killed outright keeps all but its last fraction of a second and shows as interrupted.
// Derivation texts the events refer to are kept here too, so a garbage-collected .drv cannot
// break a replay.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import Database, { type Statement } from "better-sqlite3";
import { checkUsableDirectory } from "../store/local-store.ts";
import { currentProcess, isAlive } from "../store/process-identity.ts";
import { sqliteAddon } from "../store/sqlite-addon.ts";
import { eventKey, linesText, RUN_SPAN, type StoredLines } from "./batch-rows.ts";
import { decodeLines, lastWall } from "./event-lines.ts";
import type { KeptDrv } from "./event-values.ts";
import type { RunEvent, RunRequest } from "./run-event.ts";
import { DEFAULT_RETENTION, type RunRetention } from "./run-retention.ts";
import { RunWriter } from "./run-writer.ts";

// 6: batches may be compact lines (enc 2); each run keeps its own derivation texts (drv_texts).
const SCHEMA_VERSION = 6;

/** A run's derivation texts, keyed by run and number as batches are (batch-rows.ts). */
const DRV_TEXTS =
  "CREATE TABLE drv_texts (key INTEGER PRIMARY KEY, hash TEXT NOT NULL, name TEXT NOT NULL, aterm BLOB NOT NULL);";

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
CREATE TABLE batches (key INTEGER PRIMARY KEY, last INTEGER NOT NULL, lines BLOB NOT NULL, enc INTEGER NOT NULL DEFAULT 0);
${DRV_TEXTS}
-- The texts of runs recorded by schema 5 and earlier, shared between runs.
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
  /** The process that ran it. */
  pid: number;
}

export function runLogFile(stateDir: string): string {
  return join(stateDir, "runs.sqlite");
}

export class RunLog {
  readonly db: Database.Database;
  #insertRun: Statement | undefined;

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
      db = new Database(file, { timeout: 10_000, nativeBinding: sqliteAddon() });
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
          const now = db.pragma("user_version", { simple: true }) as number;
          if (now >= SCHEMA_VERSION) return;
          if (now === 4 || now === 5) {
            // Version 4 stored every batch deflated or as text: what `enc` 0 says.
            if (now === 4) db.exec("ALTER TABLE batches ADD COLUMN enc INTEGER NOT NULL DEFAULT 0");
            db.exec(DRV_TEXTS);
          } else {
            // Versions 1-3 lived for one development day; their runs are not carried over.
            for (const t of ["events", "batches", "goals", "drv_texts", "run_drvs", "drvs", "runs"])
              db.exec(`DROP TABLE IF EXISTS ${t}`);
            db.exec(SCHEMA);
          }
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
    // Prepared once: a serve session begins a run for every build it receives.
    this.#insertRun ??= this.db.prepare(
      "INSERT INTO runs (started, command, request, pid, pid_start, resumes) VALUES (?, ?, ?, ?, ?, ?)",
    );
    const info = this.#insertRun.run(
      Date.now(),
      request.command,
      JSON.stringify(request),
      me.pid,
      me.startTime,
      resumes ?? null,
    );
    return new RunWriter(this.db, Number(info.lastInsertRowid));
  }

  /**
   * Drop runs beyond the retention with their derivation texts (and, of runs recorded by schema
   * 5 and earlier, the shared texts no run refers to any more).
   */
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
      const t = this.db.prepare("DELETE FROM drv_texts WHERE key BETWEEN ? AND ?");
      const [d, g, r] = [del("run_drvs", "run"), del("goals", "run"), del("runs", "id")];
      for (const id of old) {
        e.run(eventKey(id, 0), eventKey(id + 1, 0) - 1);
        t.run(eventKey(id, 0), eventKey(id + 1, 0) - 1);
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
    // One read transaction: a batch committed between the two reads could name goals not read.
    const { keys, batches } = this.db.transaction(() => ({
      keys: new Map<number, string>(
        (this.db.prepare("SELECT n, key FROM goals WHERE run = ?").all(run) as GoalRow[]).map(
          (g) => [g.n, g.key],
        ),
      ),
      batches: this.db
        .prepare("SELECT key, lines, enc FROM batches WHERE key BETWEEN ? AND ? ORDER BY key")
        .all(eventKey(run, 0), eventKey(run, until)) as BatchRow[],
    }))();
    const events: RunEvent[] = [];
    const lineFilter = { ...filter, until };
    for (const b of batches) {
      const text = linesText(b.lines, b.enc);
      if (!decodeLines(text, b.enc, b.key - eventKey(run, 0), keys, lineFilter, events)) break;
    }
    return events;
  }

  /** How many events a run has logged, and the wall time of the last. */
  extent(run: number): { events: number; lastWall: number | undefined } {
    const last = this.db
      .prepare(
        "SELECT last, lines, enc FROM batches WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1",
      )
      .get(eventKey(run, 0), eventKey(run, RUN_SPAN - 1)) as
      | { last: number; lines: StoredLines; enc: number }
      | undefined;
    if (!last) return { events: 0, lastWall: undefined };
    return { events: last.last, lastWall: lastWall(linesText(last.lines, last.enc), last.enc) };
  }

  /** The derivation texts run `run` has kept so far, by hash. */
  drvTexts(run: number): Map<string, KeptDrv> {
    const rows = this.db
      .prepare(
        `SELECT hash, name, aterm FROM drv_texts WHERE key BETWEEN ? AND ?
         UNION ALL SELECT d.hash, d.name, d.aterm FROM run_drvs r JOIN drvs d ON d.hash = r.hash WHERE r.run = ?`,
      )
      .all(eventKey(run, 0), eventKey(run + 1, 0) - 1, run) as KeptDrv[];
    return new Map(rows.map((d) => [d.hash, d]));
  }
}

interface GoalRow {
  n: number;
  key: string;
}

interface BatchRow {
  key: number;
  lines: StoredLines;
  enc: number;
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
