// One flush of a run's writer as rows of the run log: the derivation texts and goal names first,
// then the batch of event lines.
import type Database from "better-sqlite3";
import type { KeptDrv } from "./event-values.ts";

export interface BatchRows {
  run: number;
  /** The batch's row key (its run and first sequence number); 0 when it has no lines. */
  key: number;
  /** Its last sequence number. */
  last: number;
  /** Event lines joined by newlines; "" for none. */
  lines: string;
  drvs: KeptDrv[];
  goals: [number, string][];
}

/** Write one flush in one transaction. `deflate` compresses the lines (see run-log.ts). */
export function writeBatchRows(
  db: Database.Database,
  rows: BatchRows,
  deflate: (text: string) => Uint8Array,
): void {
  db.transaction(() => {
    // Texts and goal names first: no event refers to what the log lacks.
    if (rows.drvs.length > 0) {
      const insertDrv = db.prepare(
        "INSERT OR IGNORE INTO drvs (hash, name, aterm) VALUES (?, ?, ?)",
      );
      const linkDrv = db.prepare("INSERT OR IGNORE INTO run_drvs (run, hash) VALUES (?, ?)");
      for (const d of rows.drvs) {
        insertDrv.run(d.hash, d.name, d.aterm);
        linkDrv.run(rows.run, d.hash);
      }
    }
    if (rows.goals.length > 0) {
      const insertGoal = db.prepare("INSERT INTO goals (run, n, key) VALUES (?, ?, ?)");
      for (const [n, key] of rows.goals) insertGoal.run(rows.run, n, key);
    }
    if (rows.lines.length > 0) {
      db.prepare("INSERT INTO batches (key, last, lines) VALUES (?, ?, ?)").run(
        rows.key,
        rows.last,
        deflate(rows.lines),
      );
    }
  })();
}
