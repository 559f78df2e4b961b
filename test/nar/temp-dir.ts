// A private temp folder per test file, removed afterwards.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

let counter = 0;

/** A fresh temp folder, removed after the test file; `fresh()` names a new path inside it. */
export function useTempDir(prefix = "nixstate-nar-"): {
  root: string;
  fresh: (label?: string) => string;
} {
  const root = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  return { root, fresh: (label = "p") => join(root, `${label}-${counter++}`) };
}
