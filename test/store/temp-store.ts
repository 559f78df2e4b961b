// Fresh stores in temp folders for tests, removed after the test file.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore, type LocalStoreOptions } from "../../src/store/local-store.ts";

/** A pid above Linux's PID_MAX_LIMIT (2^22): no process can have it, so it is always dead. */
export const DEAD_OWNER = { pid: 4_194_305, startTime: 1 };

let counter = 0;

export function useTempStores(): {
  root: string;
  /** A new, empty state dir path inside the temp root. */
  freshDir: (label?: string) => string;
  /** Open a new store in its own state dir (closed after the file). */
  open: (options?: LocalStoreOptions) => LocalStore;
} {
  const root = mkdtempSync(join(tmpdir(), "nixstate-store-"));
  const opened: LocalStore[] = [];
  afterAll(() => {
    for (const s of opened) s.close();
    // Store contents are read-only: deleteTree makes directories writable first.
    deleteTree(root);
    rmSync(root, { recursive: true, force: true });
  });
  const freshDir = (label = "s") => join(root, `${label}-${counter++}`);
  return {
    root,
    freshDir,
    open(options = {}) {
      const store = LocalStore.open({ stateDir: freshDir(), ...options });
      opened.push(store);
      return store;
    },
  };
}
