// The test vectors: real data from Nix 2.8 and upstream test suites, copied unchanged from
// ../shared/vectors into test/vectors (its README names each file's source), so that every clone,
// CI's among them, runs the tests that read them. Every suite also has generated cases.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const vectorsDir = resolve(repoRoot, "test/vectors");
export const haveVectors = existsSync(vectorsDir);
if (!haveVectors && process.env.CI === "true")
  throw new Error(
    `test vectors not found at ${vectorsDir} but CI=true: the checkout is incomplete`,
  );

export function vectorPath(...parts: string[]): string {
  return join(vectorsDir, ...parts);
}

export function readVectorJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(vectorPath(...parts), "utf8")) as T;
}
