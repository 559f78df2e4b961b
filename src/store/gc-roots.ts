// Permanent GC roots, as Nix keeps them: symlinks under <stateDir>/gcroots that point into the
// store (a direct root), or point to a symlink elsewhere that points into the store (an indirect
// root, like nix-build's `result` links registered under gcroots/auto). A link below a store path
// (`…-foo/bin/x`) roots the whole store path.
import { createHash } from "node:crypto";
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { dirname, isAbsolute, join, normalize, relative, resolve } from "node:path";
import type { StoreDir } from "../store-path/store-path.ts";
import { StoreError } from "./store-errors.ts";

/** Folder (inside gcroots) of indirect roots, named by a hash of the link they stand for. */
const AUTO_DIR = "auto";
/** Symlink chains longer than this are not followed (a loop, or a misuse). */
const MAX_LINK_HOPS = 40;

/** Store path → the root links that keep it alive. */
export type GcRoots = Map<string, string[]>;

/** The store path `target` is or lies in, or undefined if it is not in the store. */
function storePathOf(storeDir: StoreDir, target: string): string | undefined {
  try {
    return storeDir.print(storeDir.toStorePath(target).path);
  } catch {
    return undefined;
  }
}

/**
 * Follow symlinks from `link` until one points into the store; undefined when the chain ends
 * elsewhere. `missing` is set when the chain ends at a path that does not exist.
 */
function followToStore(storeDir: StoreDir, link: string): { path?: string; missing: boolean } {
  let current = link;
  for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
    let target: string;
    try {
      target = readlinkSync(current);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return { missing: code === "ENOENT" };
    }
    const absolute = isAbsolute(target) ? normalize(target) : resolve(dirname(current), target);
    const path = storePathOf(storeDir, absolute);
    if (path !== undefined) return { path, missing: false };
    current = absolute;
  }
  return { missing: false };
}

/** All roots under `gcRootsDir`. Indirect roots whose link is gone are removed, as Nix does. */
export function findGcRoots(gcRootsDir: string, storeDir: StoreDir): GcRoots {
  const roots: GcRoots = new Map();
  const add = (path: string, link: string): void => {
    const links = roots.get(path);
    if (links) links.push(link);
    else roots.set(path, [link]);
  };
  const visit = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const entry = join(dir, name);
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(entry);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        visit(entry);
      } else if (st.isSymbolicLink()) {
        const found = followToStore(storeDir, entry);
        if (found.path !== undefined) add(found.path, entry);
        else if (found.missing && dirname(entry) === join(gcRootsDir, AUTO_DIR)) {
          unlinkQuietly(entry);
        }
      }
    }
  };
  visit(gcRootsDir);
  return roots;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // someone else removed it first
  }
}

/** Replace (or create) the symlink `link` → `target` atomically. */
function placeSymlink(link: string, target: string): void {
  mkdirSync(dirname(link), { recursive: true });
  const tmp = `${link}.tmp-${process.pid}`;
  unlinkQuietly(tmp);
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/** The link path for root `name`, refusing names that would leave the gcroots folder. */
export function rootLinkPath(gcRootsDir: string, name: string): string {
  const link = resolve(gcRootsDir, name);
  const rel = relative(gcRootsDir, link);
  if (name === "" || rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new StoreError(
      `GC root name '${name}' must be a relative name inside the gcroots folder (e.g. 'profiles/my-tool')`,
    );
  }
  return link;
}

/** Make `path` a permanent root named `name` (a symlink gcroots/<name> → path). */
export function addPermRoot(gcRootsDir: string, name: string, path: string): string {
  const link = rootLinkPath(gcRootsDir, name);
  placeSymlink(link, path);
  return link;
}

/**
 * Register `link` (a symlink somewhere that points into the store, like `./result`) as an
 * indirect root: it keeps its target alive for as long as it exists and points there.
 */
export function addIndirectRoot(gcRootsDir: string, link: string): string {
  const absolute = resolve(link);
  const name = createHash("sha256").update(absolute).digest("hex").slice(0, 32);
  const entry = join(gcRootsDir, AUTO_DIR, name);
  placeSymlink(entry, absolute);
  return entry;
}

/** Remove root `name`; returns whether it existed. */
export function removePermRoot(gcRootsDir: string, name: string): boolean {
  const link = rootLinkPath(gcRootsDir, name);
  try {
    if (!lstatSync(link).isSymbolicLink()) {
      throw new StoreError(`GC root '${link}' is not a symlink; remove it by hand if it is yours`);
    }
    unlinkSync(link);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}
