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
  it("reads the WAL index of the store's database: a commit elsewhere is a change", () => {
    const store = stores.open({ tempRootsOnAdd: false });
    // Never asked: the answer must come from the -shm file.
    const changes = databaseChanges(store.database, () => {
      throw new Error("data_version asked");
    });
    try {
      expect(changes.changed()).toBe(true);
      expect(changes.changed()).toBe(false);
      const other = LocalStore.open({ layout: store.layout, tempRootsOnAdd: false });
      try {
        other.addTextToStore("elsewhere", "x");
        expect(changes.changed()).toBe(true);
        expect(changes.changed()).toBe(false);
        // A read elsewhere is none.
        other.queryValidPaths([]);
        expect(changes.changed()).toBe(false);
      } finally {
        other.close();
      }
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
