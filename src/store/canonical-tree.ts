// Store contents are immutable: files 0444 (0555 if executable), directories 0555, every mtime
// 1 (formats.md §8), so a NAR of them depends on nothing but what the NAR records. Deleting such
// a tree needs its directories made writable first (unless root).
import { chmodSync, lstatSync, lutimesSync, readdirSync, rmdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";

/** The mtime Nix gives everything in the store (Unix epoch + 1 s). */
export const STORE_MTIME = 1;

/** Make the tree at `path` read-only with mtime 1 (children before their directory). */
export function canonicaliseTree(path: string): void {
  const st = lstatSync(path);
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) canonicaliseTree(join(path, name));
    if ((st.mode & 0o7777) !== 0o555) chmodSync(path, 0o555);
  } else if (st.isFile()) {
    const mode = st.mode & 0o100 ? 0o555 : 0o444;
    if ((st.mode & 0o7777) !== mode) chmodSync(path, mode);
  }
  if (st.mtimeMs !== STORE_MTIME * 1000) lutimesSync(path, st.atime, STORE_MTIME);
}

/**
 * Remove the tree at `path` (nothing if it is missing) and return the bytes freed: sizes of
 * files with no other hard link, as Nix counts them.
 */
export function deleteTree(path: string): number {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
  if (!st.isDirectory()) {
    unlinkSync(path);
    return st.nlink === 1 ? st.size : 0;
  }
  if ((st.mode & 0o700) !== 0o700) chmodSync(path, (st.mode & 0o7777) | 0o700);
  let freed = 0;
  for (const name of readdirSync(path)) freed += deleteTree(join(path, name));
  rmdirSync(path);
  return freed;
}
