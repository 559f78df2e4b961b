// Checking the store against its database: every valid path has contents whose NAR hash and size
// are the registered ones, and the database itself is consistent.
import { lstatSync } from "node:fs";
import { Hash } from "../hash/hash.ts";
import { narHash } from "../nar/nar-hash.ts";
import type { StoreContext } from "./store-context.ts";

export type VerifyProblem =
  /** A valid path without contents on disk. */
  | { kind: "missing"; path: string; message: string }
  /** Contents whose NAR hash is not the registered one. */
  | { kind: "hash-mismatch"; path: string; message: string; expected: string; actual: string }
  /** Contents whose NAR size is not the registered one (hash may match nothing then). */
  | { kind: "size-mismatch"; path: string; message: string; expected: number; actual: number }
  /** A database row that breaks a foreign key or fails SQLite's integrity check. */
  | { kind: "database"; path: string; message: string };

export interface VerifyOptions {
  /** Hash every path's contents (default true); otherwise only check that they exist. */
  checkContents?: boolean;
  /**
   * Called for each problem found; return true if it was repaired. There is no repair
   * (substitution, rebuilding) yet: this is the hook `verify --repair` will use.
   */
  repair?: (problem: VerifyProblem) => Promise<boolean>;
  /** Progress: called with each path before it is checked. */
  onPath?: (path: string) => void;
}

export interface VerifyReport {
  checked: number;
  problems: VerifyProblem[];
  repaired: VerifyProblem[];
}

export async function verifyStore(
  ctx: StoreContext,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  for (const row of ctx.db.pragma("quick_check") as { quick_check: string }[]) {
    if (row.quick_check !== "ok") {
      problems.push({ kind: "database", path: ctx.layout.dbFile, message: row.quick_check });
    }
  }
  const fkRows = ctx.db.pragma("foreign_key_check") as { table: string; rowid: number }[];
  for (const fk of fkRows) {
    problems.push({
      kind: "database",
      path: ctx.layout.dbFile,
      message: `row ${fk.rowid} of table ${fk.table} refers to a path that is not valid`,
    });
  }
  const rows = ctx.db.prepare<[], { path: string; hash: string; narSize: number }>(
    "SELECT path, hash, narSize FROM ValidPaths ORDER BY path",
  );
  let checked = 0;
  for (const row of rows.all()) {
    options.onPath?.(row.path);
    checked++;
    const problem = await checkPath(ctx, row, options.checkContents ?? true);
    if (problem) problems.push(problem);
  }
  const repaired: VerifyProblem[] = [];
  if (options.repair) {
    for (const p of problems) if (await options.repair(p)) repaired.push(p);
  }
  return { checked, problems: problems.filter((p) => !repaired.includes(p)), repaired };
}

async function checkPath(
  ctx: StoreContext,
  row: { path: string; hash: string; narSize: number },
  checkContents: boolean,
): Promise<VerifyProblem | undefined> {
  const real = ctx.realPath(row.path);
  try {
    lstatSync(real);
  } catch {
    return { kind: "missing", path: row.path, message: `path '${row.path}' disappeared from disk` };
  }
  if (!checkContents) return undefined;
  const expected = Hash.parse(row.hash);
  const actual = await narHash(real, expected.algo);
  const got = new Hash(expected.algo, actual.hash);
  if (!got.equals(expected)) {
    return {
      kind: "hash-mismatch",
      path: row.path,
      message: `path '${row.path}' was modified! expected hash '${expected.toString()}', got '${got.toString()}'`,
      expected: expected.toString(),
      actual: got.toString(),
    };
  }
  if (actual.size !== row.narSize) {
    return {
      kind: "size-mismatch",
      path: row.path,
      message: `path '${row.path}' has NAR size ${actual.size}, registered as ${row.narSize}`,
      expected: row.narSize,
      actual: actual.size,
    };
  }
  return undefined;
}
