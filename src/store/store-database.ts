// Opening the store database: pragmas for many small writes from several processes, then the
// schema migrations.
import { mkdirSync } from "node:fs";
import Database from "better-sqlite3";
import { MIGRATIONS, SCHEMA_VERSION } from "./schema.ts";
import { sqliteAddon } from "./sqlite-addon.ts";
import { StoreDatabaseError } from "./store-errors.ts";

export type StoreDb = Database.Database;

/** How long a process waits for another one's write transaction before failing. */
export const BUSY_TIMEOUT_MS = 10_000;

export function openStoreDatabase(file: string, dir: string): StoreDb {
  mkdirSync(dir, { recursive: true });
  let db: StoreDb;
  try {
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS, nativeBinding: sqliteAddon() });
  } catch (e) {
    throw new StoreDatabaseError(
      `cannot open the store database '${file}': ${(e as Error).message}; check --state-dir and its permissions`,
      { cause: e },
    );
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // WAL lets readers run while one process writes. NORMAL skips the fsync per commit: a power
    // loss may lose the last commits but never corrupts, and contents are always in place (renamed)
    // before the row that makes them valid is written.
    if (db.pragma("journal_mode", { simple: true }) !== "wal") db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    migrate(db, file);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

function migrate(db: StoreDb, file: string): void {
  const version = (): number => db.pragma("user_version", { simple: true }) as number;
  if (version() === SCHEMA_VERSION) return;
  // IMMEDIATE: two processes opening a new store at once must not both migrate it.
  db.transaction(() => {
    const from = version();
    if (from > SCHEMA_VERSION) {
      throw new StoreDatabaseError(
        `the store database '${file}' has schema version ${from}, newer than this nixstate supports (${SCHEMA_VERSION}); upgrade nixstate or use another --state-dir`,
      );
    }
    for (let v = from; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
