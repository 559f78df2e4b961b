// A run's events as the log stores them: batches of lines, one row a batch, the derivation texts
// and goal names a batch refers to written in the same transaction, before it. Every table a run
// writes grows at its end (keys in the order written): rows put where a hash sorts (the shared
// text table of schema 5) made a commit rewrite a page for each text, about half of what
// recording cost the 1000-goal build in SQLite.
import { brotliCompressSync, brotliDecompressSync, constants, inflateRawSync } from "node:zlib";
import type Database from "better-sqlite3";
import { ENC_FULL_DEFLATE_OR_TEXT } from "./event-lines.ts";
import type { KeptDrv } from "./event-values.ts";

/**
 * A batch's row key is its run and first sequence number in one integer, so a run's batches
 * are one range of the table.
 */
export const RUN_SPAN = 2 ** 32;
export const eventKey = (run: number, seq: number) => run * RUN_SPAN + seq;

export interface BatchRows {
  run: number;
  /** The batch's row key (its run and first sequence number); 0 when it has no lines. */
  key: number;
  /** Its last sequence number. */
  last: number;
  /** The event lines as stored (`compressLines`); undefined for none. */
  lines: StoredLines | undefined;
  /** How they are written (event-lines.ts). */
  enc: number;
  drvs: KeptDrv[];
  /** The first text's row key (its run and its number in the run). */
  drvKey: number;
  goals: [number, string][];
}

/** Rows a multi-row INSERT takes at once. */
const ROWS_AT_ONCE = 32;
/** Batch lines shorter than this are stored as text, not compressed (linesText reads both). */
const STORE_AS_TEXT_BELOW = 2048;

/**
 * `INSERT … VALUES (…), (…)…` of `columns` for any number of rows: ROWS_AT_ONCE rows a statement,
 * the rest one by one. A statement a row cost the 1000-goal benchmark's main thread a third more
 * in SQLite (goal names and derivation texts are a row each).
 */
function multiRowInsert(
  db: Database.Database,
  head: string,
  columns: number,
): (values: unknown[]) => void {
  const row = `(${Array(columns).fill("?").join(", ")})`;
  const many = db.prepare(`${head} VALUES ${Array(ROWS_AT_ONCE).fill(row).join(", ")}`);
  const one = db.prepare(`${head} VALUES ${row}`);
  const chunk = ROWS_AT_ONCE * columns;
  return (values) => {
    let i = 0;
    for (; i + chunk <= values.length; i += chunk) many.run(values.slice(i, i + chunk));
    for (; i < values.length; i += columns) one.run(values.slice(i, i + columns));
  };
}

/** A run's end: when, and its exit code. */
export const MARK_ENDED = "UPDATE runs SET ended = ?, exit_code = ? WHERE id = ?";

/** Each connection's BatchStatements: a serve session records a small run per build. */
const statementsOf = new WeakMap<Database.Database, BatchStatements>();

/**
 * Writes batches and what they refer to, one transaction a batch. The statements and the
 * transaction are prepared once a connection (`BatchStatements.of`): preparing them for each batch
 * cost a 1000-goal run ~15 ms of its main thread, and once a run cost a serve session's
 * already-valid build a twentieth of its time.
 */
export class BatchStatements {
  readonly write: (rows: BatchRows) => void;
  /** The run's last batch, if any, and its end, in one transaction. */
  readonly end: (rows: BatchRows | undefined, run: number, ended: number, exitCode: number) => void;

  static of(db: Database.Database): BatchStatements {
    let statements = statementsOf.get(db);
    if (statements === undefined) {
      statements = new BatchStatements(db);
      statementsOf.set(db, statements);
    }
    return statements;
  }

  constructor(db: Database.Database) {
    const insertDrvs = multiRowInsert(db, "INSERT INTO drv_texts (key, hash, name, aterm)", 4);
    const insertGoals = multiRowInsert(db, "INSERT INTO goals (run, n, key)", 3);
    const insertBatch = db.prepare(
      "INSERT INTO batches (key, last, lines, enc) VALUES (?, ?, ?, ?)",
    );
    this.write = db.transaction((rows: BatchRows) => {
      // Texts and goal names first: no event refers to what the log lacks.
      insertDrvs(rows.drvs.flatMap((d, i) => [rows.drvKey + i, d.hash, d.name, d.aterm]));
      insertGoals(rows.goals.flatMap(([n, key]) => [rows.run, n, key]));
      if (rows.lines !== undefined) insertBatch.run(rows.key, rows.last, rows.lines, rows.enc);
    });
    const markEnded = db.prepare(MARK_ENDED);
    this.end = db.transaction(
      (rows: BatchRows | undefined, run: number, ended: number, exitCode: number) => {
        if (rows) this.write(rows);
        markEnded.run(ended, exitCode, run);
      },
    );
  }
}

/** A batch's lines as a row holds them, with its `enc`. */
export type StoredLines = Buffer | string;

/**
 * Brotli at quality 1 compresses the 1000-goal benchmark's lines (6.4 MB) to 1.0 MB in 13 ms,
 * where raw deflate at level 1 took 22 ms for 1.1 MB: cheap enough to do on the main thread
 * as each batch is cut, which costs less than handing the batch to libuv's pool (BENCHMARKS.md).
 */
export function compressLines(text: string): Buffer | string {
  // A few lines (a serve session's already-valid build) stay text: a Brotli encoder's set-up
  // costs more than they would save.
  if (text.length < STORE_AS_TEXT_BELOW) return text;
  return brotliCompressSync(text, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 1,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: text.length,
    },
  });
}

export function linesText(stored: StoredLines, enc: number): string {
  if (typeof stored === "string") return stored;
  const bytes =
    enc === ENC_FULL_DEFLATE_OR_TEXT ? inflateRawSync(stored) : brotliDecompressSync(stored);
  return bytes.toString("utf8");
}
