// Every SQL statement the store runs, prepared once per database connection.
import type { Statement } from "better-sqlite3";
import { Hash } from "../hash/hash.ts";
import type { ValidPathInfo } from "./path-info.ts";
import type { ProcessIdentity } from "./process-identity.ts";
import type { StoreDb } from "./store-database.ts";

export interface PathRow {
  id: number;
  hash: string;
  registrationTime: number;
  deriver: string | null;
  narSize: number;
  ultimate: number | null;
  sigs: string | null;
  ca: string | null;
}

/**
 * A ValidPaths row as a path info (ours and Nix's have the same columns). Hashes are
 * `sha256:<base16>`; signatures are space-separated.
 */
export function pathInfoOfRow(path: string, row: PathRow, references: string[]): ValidPathInfo {
  return {
    path,
    narHash: Hash.parse(row.hash, "sha256"),
    narSize: row.narSize,
    references: references.sort(),
    deriver: row.deriver ?? undefined,
    registrationTime: row.registrationTime,
    ultimate: row.ultimate === 1,
    sigs: row.sigs ? row.sigs.split(" ").filter((s) => s !== "") : [],
    ca: row.ca ?? undefined,
  };
}

export class StoreStatements {
  readonly pathId: Statement<[string], { id: number }>;
  readonly pathRow: Statement<[string], PathRow>;
  readonly pathOfId: Statement<[number], { path: string }>;
  readonly allPaths: Statement<[], { id: number; path: string }>;
  readonly insertPath: Statement<
    [string, string, number, string | null, number, number | null, string | null, string | null]
  >;
  readonly deletePath: Statement<[number]>;
  readonly referencesOf: Statement<[number], { id: number; path: string }>;
  readonly referrersOf: Statement<[number], { id: number; path: string }>;
  readonly insertRef: Statement<[number, number]>;
  readonly deleteRefsFrom: Statement<[number]>;
  readonly insertDrvOutput: Statement<[number, string, string]>;
  readonly drvOutputs: Statement<[number], { id: string; path: string }>;
  readonly validDerivers: Statement<[string], { path: string }>;
  readonly insertFailed: Statement<[string, number]>;
  readonly isFailed: Statement<[string], { path: string }>;
  readonly deleteFailed: Statement<[string]>;
  readonly deleteAllFailed: Statement<[]>;
  readonly allFailed: Statement<[], { path: string }>;
  readonly insertTempRoot: Statement<[string, number, number]>;
  readonly tempRootOwners: Statement<[], ProcessIdentity>;
  readonly tempRootPaths: Statement<[], { path: string }>;
  readonly deleteTempRootsOf: Statement<[number, number]>;
  readonly deleteTempRoot: Statement<[string, number, number]>;
  readonly allLockedPaths: Statement<[], { path: string }>;
  readonly insertGcPending: Statement<[string]>;
  readonly deleteGcPending: Statement<[string]>;
  readonly allGcPending: Statement<[], { path: string }>;
  /** Moves when another connection commits (PathInfoCache). */
  readonly dataVersion: Statement<[], number>;

  constructor(db: StoreDb) {
    this.pathId = db.prepare("SELECT id FROM ValidPaths WHERE path = ?");
    this.dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.pathRow = db.prepare(
      "SELECT id, hash, registrationTime, deriver, narSize, ultimate, sigs, ca FROM ValidPaths WHERE path = ?",
    );
    this.pathOfId = db.prepare("SELECT path FROM ValidPaths WHERE id = ?");
    this.allPaths = db.prepare("SELECT id, path FROM ValidPaths");
    this.insertPath = db.prepare(
      "INSERT INTO ValidPaths (path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.deletePath = db.prepare("DELETE FROM ValidPaths WHERE id = ?");
    this.referencesOf = db.prepare(
      "SELECT v.id, v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?",
    );
    this.referrersOf = db.prepare(
      "SELECT v.id, v.path FROM Refs r JOIN ValidPaths v ON v.id = r.referrer WHERE r.reference = ?",
    );
    this.insertRef = db.prepare("INSERT OR IGNORE INTO Refs (referrer, reference) VALUES (?, ?)");
    this.deleteRefsFrom = db.prepare("DELETE FROM Refs WHERE referrer = ?");
    this.insertDrvOutput = db.prepare(
      "INSERT OR REPLACE INTO DerivationOutputs (drv, id, path) VALUES (?, ?, ?)",
    );
    this.drvOutputs = db.prepare("SELECT id, path FROM DerivationOutputs WHERE drv = ?");
    this.validDerivers = db.prepare(
      "SELECT v.path FROM DerivationOutputs d JOIN ValidPaths v ON v.id = d.drv WHERE d.path = ?",
    );
    this.insertFailed = db.prepare("INSERT OR REPLACE INTO FailedPaths (path, time) VALUES (?, ?)");
    this.isFailed = db.prepare("SELECT path FROM FailedPaths WHERE path = ?");
    this.deleteFailed = db.prepare("DELETE FROM FailedPaths WHERE path = ?");
    this.deleteAllFailed = db.prepare("DELETE FROM FailedPaths");
    this.allFailed = db.prepare("SELECT path FROM FailedPaths");
    this.insertTempRoot = db.prepare(
      "INSERT OR IGNORE INTO TempRoots (path, pid, startTime) VALUES (?, ?, ?)",
    );
    this.tempRootOwners = db.prepare("SELECT DISTINCT pid, startTime FROM TempRoots");
    this.tempRootPaths = db.prepare("SELECT DISTINCT path FROM TempRoots");
    this.deleteTempRootsOf = db.prepare("DELETE FROM TempRoots WHERE pid = ? AND startTime = ?");
    this.deleteTempRoot = db.prepare(
      "DELETE FROM TempRoots WHERE path = ? AND pid = ? AND startTime = ?",
    );
    this.allLockedPaths = db.prepare("SELECT path FROM PathLocks");
    this.insertGcPending = db.prepare("INSERT OR IGNORE INTO GcPending (path) VALUES (?)");
    this.deleteGcPending = db.prepare("DELETE FROM GcPending WHERE path = ?");
    this.allGcPending = db.prepare("SELECT path FROM GcPending");
  }
}
