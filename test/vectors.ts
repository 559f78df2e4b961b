// Location of the shared test vectors (../shared/vectors from the repo root). Tests use them when
// present; every suite also has its own generated cases so it never depends on them alone.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const vectorsDir = resolve(repoRoot, "../shared/vectors");
export const haveVectors = existsSync(vectorsDir);

export function vectorPath(...parts: string[]): string {
  return join(vectorsDir, ...parts);
}

export function readVectorJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(vectorPath(...parts), "utf8")) as T;
}
