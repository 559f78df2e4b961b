// State and store directories no store can live in are refused at once with a clear message:
// nothing is written into `/`, nothing hangs on /proc.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LocalStore } from "../../src/store/local-store.ts";
import { UnusableDirectoryError } from "../../src/store/store-errors.ts";
import { repoRoot } from "../vectors.ts";
import { useTempStores } from "./temp-store.ts";

const stores = useTempStores();

describe("unusable store directories", () => {
  it("refuses / as the store and kernel file systems for state or store", () => {
    const cases: [Parameters<typeof LocalStore.open>[0], RegExp][] = [
      [
        { stateDir: stores.freshDir(), storeDir: "/" },
        /store directory cannot be '\/'.*--store-dir/,
      ],
      [
        { stateDir: "/proc/self/nixstate" },
        /state directory '\/proc\/self\/nixstate' is on \/proc/,
      ],
      [{ stateDir: stores.freshDir(), storeDir: "/sys/store" }, /'\/sys\/store' is on \/sys/],
      [
        { stateDir: stores.freshDir(), storeRoot: "/dev/shm/x" },
        /files '\/dev\/shm\/x\/.*' is on \/dev.*--store-root/,
      ],
    ];
    for (const [options, message] of cases) {
      expect(() => LocalStore.open({ ...options, env: {} })).toThrow(UnusableDirectoryError);
      expect(() => LocalStore.open({ ...options, env: {} })).toThrow(message);
    }
  });

  it("every command says so and exits 1 at once (no hang on /proc)", () => {
    for (const args of [
      ["build", "--state-dir", "/proc/self/x", "x.json"],
      ["runs", "--state-dir", "/proc/self/x"],
      ["store", "gc", "--state-dir", "/proc/self/x"],
      ["build", "--state-dir", stores.freshDir(), "--store-dir", "/", "x.json"],
    ]) {
      const r = spawnSync(process.execPath, [join(repoRoot, "bin/nixstate.js"), ...args], {
        timeout: 30_000,
        encoding: "utf8",
      });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(
        /^error: the (state|store) directory .*(cannot be '\/'|kernel file system)/,
      );
    }
  });
});
