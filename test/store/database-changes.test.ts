// The store database's changes as the path-info cache sees them: read from SQLite's WAL index,
// they must show every commit another connection or process makes, as data_version would.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { databaseChanges } from "../../src/store/database-changes.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { repoRoot } from "../vectors.ts";
import { useTempStores } from "./temp-store.ts";

const stores = useTempStores();

describe("databaseChanges", () => {
  it("reads the WAL index of the store's database: only a commit elsewhere is a change", () => {
    const store = stores.open({ tempRootsOnAdd: false });
    const version = store.database.prepare<[], number>("PRAGMA data_version").pluck();
    let asked = 0;
    const changes = databaseChanges(store.database, () => {
      asked++;
      return version.get()!;
    });
    try {
      expect(changes.changed()).toBe(true);
      // While the WAL index is unchanged, data_version is not asked.
      expect([changes.changed(), changes.changed(), asked]).toEqual([false, false, 1]);
      const other = LocalStore.open({ layout: store.layout, tempRootsOnAdd: false });
      try {
        other.addTextToStore("elsewhere", "x");
        expect(changes.changed()).toBe(true);
        expect(changes.changed()).toBe(false);
        // A read elsewhere is none.
        other.queryValidPaths([]);
        expect([changes.changed(), asked]).toEqual([false, 2]);
      } finally {
        other.close();
      }
      // This connection's own commit moves the WAL index but is no change of another's.
      store.addTextToStore("here", "y");
      expect([changes.changed(), asked]).toEqual([false, 3]);
      expect([changes.changed(), asked]).toEqual([false, 3]);
    } finally {
      changes.close();
    }
  });

  it("asks data_version of a database without a WAL index", () => {
    const db = new Database(":memory:");
    let version = 7;
    const changes = databaseChanges(db, () => version);
    expect([changes.changed(), changes.changed()]).toEqual([true, false]);
    version = 8;
    expect([changes.changed(), changes.changed()]).toEqual([true, false]);
    changes.close();
    db.close();
  });

  it("lets a serving store see a path another process deleted", () => {
    const store = stores.open({ tempRootsOnAdd: false });
    const a = store.addTextToStore("gone", "gone");
    const b = store.addTextToStore("kept", "kept");
    expect(store.tryQueryPathInfos([a.path, b.path])).toHaveLength(2);
    const dirs = ["--state-dir", store.layout.stateDir, "--store-dir", store.storeDir.path];
    const r = spawnSync(process.execPath, [
      join(repoRoot, "bin/nixstate.js"),
      "store",
      "delete",
      ...dirs,
      a.path,
    ]);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(store.tryQueryPathInfos([a.path, b.path]).map((i) => i.path)).toEqual([b.path]);
    expect(store.isValidPath(a.path)).toBe(false);
  });
});
