// The store database schema, as an append-only list of migrations. The schema version is
// SQLite's user_version: migration i brings the database from version i to i + 1.
// Table and column names follow Nix's db.sqlite where Nix has the same table.

export const MIGRATIONS: readonly string[] = [
  // 0 → 1
  `
  CREATE TABLE ValidPaths (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    path             TEXT UNIQUE NOT NULL,
    hash             TEXT NOT NULL,        -- NAR hash, sha256:<base16> as Nix stores it
    registrationTime INTEGER NOT NULL,     -- Unix seconds
    deriver          TEXT,
    narSize          INTEGER NOT NULL,
    ultimate         INTEGER,              -- 1 if built here
    sigs             TEXT,                 -- space-separated
    ca               TEXT                  -- content address, e.g. fixed:r:sha256:<nix32>
  );

  -- Deleting a referrer drops its references; deleting a path that is still referenced fails.
  CREATE TABLE Refs (
    referrer  INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
    reference INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE RESTRICT,
    PRIMARY KEY (referrer, reference)
  ) WITHOUT ROWID;
  CREATE INDEX IndexReference ON Refs(reference);

  CREATE TABLE DerivationOutputs (
    drv  INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
    id   TEXT NOT NULL,                    -- output name
    path TEXT NOT NULL,
    PRIMARY KEY (drv, id)
  ) WITHOUT ROWID;
  CREATE INDEX IndexDerivationOutputs ON DerivationOutputs(path);

  CREATE TABLE FailedPaths (
    path TEXT PRIMARY KEY,
    time INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- A temp root lives as long as the process (pid + start time) that added it.
  CREATE TABLE TempRoots (
    path      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    startTime INTEGER NOT NULL,
    PRIMARY KEY (path, pid, startTime)
  ) WITHOUT ROWID;
  CREATE INDEX IndexTempRootsOwner ON TempRoots(pid, startTime);

  -- Cross-process path locks: one row per locked path; a row whose process died is free.
  CREATE TABLE PathLocks (
    path      TEXT PRIMARY KEY,
    pid       INTEGER NOT NULL,
    startTime INTEGER NOT NULL,
    token     TEXT NOT NULL,
    acquired  INTEGER NOT NULL             -- Unix milliseconds
  ) WITHOUT ROWID;
  CREATE INDEX IndexPathLocksToken ON PathLocks(token);

  -- Paths the garbage collector invalidated but may not have finished deleting from disk.
  CREATE TABLE GcPending (
    path TEXT PRIMARY KEY
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
