// A run's events as the log stores them: batches of lines, one row a batch, the derivation texts
// and goal names a batch refers to written in the same transaction, before it.
import { deflateRaw, deflateRawSync, inflateRawSync } from "node:zlib";
import type Database from "better-sqlite3";
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
  /** The event lines, deflated; undefined for none. */
  lines: Uint8Array | undefined;
  drvs: KeptDrv[];
  goals: [number, string][];
}

/**
 * Writes batches and what they refer to, one transaction a batch. The statements and the
 * transaction are prepared once a run: preparing them for each batch cost a 1000-goal run
 * ~15 ms of its main thread.
 */
export class BatchStatements {
  readonly write: (rows: BatchRows) => void;

  constructor(db: Database.Database) {
    const insertDrv = db.prepare("INSERT OR IGNORE INTO drvs (hash, name, aterm) VALUES (?, ?, ?)");
    const linkDrv = db.prepare("INSERT OR IGNORE INTO run_drvs (run, hash) VALUES (?, ?)");
    const insertGoal = db.prepare("INSERT INTO goals (run, n, key) VALUES (?, ?, ?)");
    const insertBatch = db.prepare("INSERT INTO batches (key, last, lines) VALUES (?, ?, ?)");
    this.write = db.transaction((rows: BatchRows) => {
      // Texts and goal names first: no event refers to what the log lacks.
      for (const d of rows.drvs) {
        insertDrv.run(d.hash, d.name, d.aterm);
        linkDrv.run(rows.run, d.hash);
      }
      for (const [n, key] of rows.goals) insertGoal.run(rows.run, n, key);
      if (rows.lines !== undefined) insertBatch.run(rows.key, rows.last, rows.lines);
    });
  }
}

/**
 * A batch's lines as stored: deflated (raw, level 1: ~5 ms a megabyte), which takes the log of
 * the 1000-goal benchmark from 8.7 to 2.8 kB a goal (.drv texts included); rows written as text
 * by earlier versions read as they are.
 */
export type StoredLines = Buffer | string;

const DEFLATE = { level: 1 };

export function deflateLines(text: string): Buffer {
  return deflateRawSync(text, DEFLATE);
}

/** The same on libuv's thread pool: the main thread runs the goals meanwhile. */
export function deflateLinesAsync(text: string, done: (z: Buffer | undefined) => void): void {
  deflateRaw(text, DEFLATE, (e, z) => done(e ? undefined : z));
}

export function linesText(stored: StoredLines): string {
  return typeof stored === "string" ? stored : inflateRawSync(stored).toString("utf8");
}
