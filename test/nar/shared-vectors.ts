// NAR tests name vectors by their path under test/vectors (test/vectors.ts says where that is).
import { existsSync } from "node:fs";
import { vectorPath as underVectors } from "../vectors.ts";

export function vectorPath(relative: string): string {
  return underVectors(relative);
}

export function haveVector(relative: string): boolean {
  const here = existsSync(vectorPath(relative));
  if (!here && process.env.CI === "true")
    throw new Error(`test vector ${relative} not found but CI=true: the checkout is incomplete`);
  return here;
}
