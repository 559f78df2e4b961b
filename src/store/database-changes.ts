// Whether the store database has changed since the last look, for the path-info cache.
// SQLite's `PRAGMA data_version` says so, but it takes a read lock and gives it back: four system
// calls, ~9 µs, on every QueryPathInfos of a serve session (BENCHMARKS.md, "Tenth session"). In
// WAL mode (the store's, store-database.ts) every commit rewrites the WAL-index header at the
// start of the database's -shm file (its transaction counter, last frame and salts, twice:
// sqlite.org/walformat.html), so one read of those bytes tells the same. A read that catches a
// writer halfway only looks like a change. Where there is no -shm to read, data_version is asked.
import { closeSync, openSync, readSync } from "node:fs";
import type { StoreDb } from "./store-database.ts";

/** The two copies of the WAL-index header. */
const HEADER_BYTES = 96;

export interface DatabaseChanges {
  /** True when the database may have changed since the last call (and at the first). */
  changed(): boolean;
  close(): void;
}

export function databaseChanges(db: StoreDb, dataVersion: () => number): DatabaseChanges {
  const shm = walIndex(db);
  if (shm === undefined) {
    let last: number | undefined;
    return {
      changed() {
        const now = dataVersion();
        const moved = now !== last;
        last = now;
        return moved;
      },
      close() {},
    };
  }
  let last = Buffer.alloc(HEADER_BYTES);
  let next = Buffer.alloc(HEADER_BYTES);
  let first = true;
  return {
    changed() {
      const n = readSync(shm, next, 0, HEADER_BYTES, 0);
      const moved = first || n !== HEADER_BYTES || !next.equals(last);
      first = false;
      [last, next] = [next, last];
      return moved;
    },
    close() {
      closeSync(shm);
    },
  };
}

/** A descriptor of the database's -shm file, when it is in WAL mode and has one. */
function walIndex(db: StoreDb): number | undefined {
  if (db.memory || db.pragma("journal_mode", { simple: true }) !== "wal") return undefined;
  // This connection has it open (it was made by the pragmas' reads): while it is, no other
  // process can replace it.
  db.pragma("data_version");
  try {
    return openSync(`${db.name}-shm`, "r");
  } catch {
    return undefined;
  }
}
