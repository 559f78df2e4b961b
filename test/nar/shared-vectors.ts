// Location of the shared test vectors (/work/shared/vectors next to the repository). Tests that
// read them skip when they are absent; every test file also has generated cases of its own.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export const VECTORS = resolve(repoRoot, "../shared/vectors");

export function vectorPath(relative: string): string {
  return join(VECTORS, relative);
}

export function haveVector(relative: string): boolean {
  return existsSync(vectorPath(relative));
}
