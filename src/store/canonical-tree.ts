// Store contents are immutable: files 0444 (0555 if executable), directories 0555, every mtime
// 1 (formats.md §8), so a NAR of them depends on nothing but what the NAR records. Deleting such
// a tree needs its directories made writable first (unless root): src/io/delete-tree.ts.
import { chmodSync, copyFileSync, lstatSync, lutimesSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";

/** The mtime Nix gives everything in the store (Unix epoch + 1 s). */
export const STORE_MTIME = 1;

/**
 * Make the tree at `path` read-only with mtime 1 (children before their directory).
 * `breakHardLinks`: first give a regular file with other hard links a copy of its own, so making
 * it read-only touches nothing outside the tree (a builder's output; one walk, not two).
 */
export function canonicaliseTree(path: string, opts: { breakHardLinks?: boolean } = {}): void {
  const st = lstatSync(path);
  let copied = false;
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) canonicaliseTree(join(path, name), opts);
    if ((st.mode & 0o7777) !== 0o555) chmodSync(path, 0o555);
  } else if (st.isFile()) {
    if (opts.breakHardLinks && st.nlink > 1) {
      giveOwnCopy(path);
      copied = true;
    }
    const mode = st.mode & 0o100 ? 0o555 : 0o444;
    if ((st.mode & 0o7777) !== mode) chmodSync(path, mode);
  }
  if (copied || st.mtimeMs !== STORE_MTIME * 1000) lutimesSync(path, st.atime, STORE_MTIME);
}

/** Replace the regular file at `path` by a copy, so it no longer shares its inode (hard links). */
export function giveOwnCopy(path: string): void {
  const tmp = `${path}.nixstate-unlink`;
  copyFileSync(path, tmp);
  renameSync(tmp, path);
}
