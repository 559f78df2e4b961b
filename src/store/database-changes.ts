// Whether another connection committed to the store database since the last look, for the
// path-info cache. SQLite's `PRAGMA data_version` says so, but it takes a read lock and gives it
// back: four system calls, ~9 µs, on every QueryPathInfos of a serve session (BENCHMARKS.md,
// "Tenth session"). In WAL mode (the store's, store-database.ts) every commit rewrites the
// WAL-index header at the start of the database's -shm file (its transaction counter, last frame
// and salts, twice: sqlite.org/walformat.html), so one read of those bytes shows that nothing was
// committed; only when they moved (a commit by anyone, or a writer caught halfway) is data_version
// asked whether the commit was another connection's. Without a -shm to read, it is always asked.
import { closeSync, openSync, readSync } from "node:fs";
import type { StoreDb } from "./store-database.ts";

/** The two copies of the WAL-index header. */
const HEADER_BYTES = 96;

export interface DatabaseChanges {
  /** True when another connection committed since the last call (and at the first). */
  changed(): boolean;
  close(): void;
}

export function databaseChanges(db: StoreDb, dataVersion: () => number): DatabaseChanges {
  const shm = walIndex(db);
  let version: number | undefined;
  let last = Buffer.alloc(HEADER_BYTES);
  let next = Buffer.alloc(HEADER_BYTES);
  return {
    changed() {
      if (shm !== undefined) {
        const n = readSync(shm, next, 0, HEADER_BYTES, 0);
        const same = version !== undefined && n === HEADER_BYTES && next.equals(last);
        [last, next] = [next, last];
        if (same) return false;
      }
      const now = dataVersion();
      const moved = now !== version;
      version = now;
      return moved;
    },
    close() {
      if (shm !== undefined) closeSync(shm);
    },
  };
}

/** A descriptor of the database's -shm file, when it is in WAL mode and has one. */
function walIndex(db: StoreDb): number | undefined {
  if (db.memory || db.pragma("journal_mode", { simple: true }) !== "wal") return undefined;
  // A read makes the -shm if it is not there yet; while this connection has it open, no other
  // process can replace it.
  db.pragma("data_version");
  try {
    return openSync(`${db.name}-shm`, "r");
  } catch {
    return undefined;
  }
}
