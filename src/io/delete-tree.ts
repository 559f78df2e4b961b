// Removing a file tree, however deep: an explicit stack instead of recursion, since a tree as
// deep as PATH_MAX allows (a hostile NAR's, unpacked until the kernel refused) would overflow
// JavaScript's call stack, and Node's recursive rm fails the same way.
import { chmodSync, lstatSync, readdirSync, rmdirSync, unlinkSync } from "node:fs";

const SLASH = Buffer.from("/");

/**
 * Remove the tree at `path` (nothing if it is missing) and return the bytes freed: sizes of
 * files with no other hard link, as Nix counts them. Read-only directories are made writable.
 */
export function deleteTree(path: string | Buffer): number {
  let freed = 0;
  // Paths as bytes: a NAR's names need not be UTF-8, and a decoded name would miss its file.
  const root = Buffer.isBuffer(path) ? path : Buffer.from(path);
  const stack: { path: Buffer; listed: boolean }[] = [{ path: root, listed: false }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.listed) {
      rmdirSync(top.path);
      stack.pop();
      continue;
    }
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(top.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      stack.pop();
      continue;
    }
    if (!st.isDirectory()) {
      unlinkSync(top.path);
      if (st.nlink === 1) freed += st.size;
      stack.pop();
      continue;
    }
    if ((st.mode & 0o700) !== 0o700) chmodSync(top.path, (st.mode & 0o7777) | 0o700);
    top.listed = true;
    for (const name of readdirSync(top.path, { encoding: "buffer" })) {
      stack.push({ path: Buffer.concat([top.path, SLASH, name]), listed: false });
    }
  }
  return freed;
}
