// A binary cache's `nix-cache-info` file: `StoreDir: /nix/store` (and optionally WantMassQuery,
// Priority). Nix refuses a cache made for another store directory; so do we.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { StoreDir } from "../store-path/store-path.ts";
import { ForeignCacheError } from "./substituter-errors.ts";

export const CACHE_INFO_FILE = "nix-cache-info";

/** The store directory a cache's `nix-cache-info` declares; undefined if it declares none. */
export function parseCacheStoreDir(text: string): string | undefined {
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon >= 0 && line.slice(0, colon) === "StoreDir") return line.slice(colon + 1).trim();
  }
  return undefined;
}

/** Throw ForeignCacheError if the cache in `folder` is for another store directory. */
export function checkCacheStoreDir(folder: string, cacheName: string, storeDir: StoreDir): void {
  const file = join(folder, CACHE_INFO_FILE);
  if (!existsSync(file)) return;
  const declared = parseCacheStoreDir(readFileSync(file, "utf8"));
  if (declared !== undefined && declared !== storeDir.path) {
    throw new ForeignCacheError(cacheName, declared, storeDir.path);
  }
}

/** Write `nix-cache-info` for a new cache, or check the existing one matches `storeDir`. */
export function ensureCacheInfo(folder: string, cacheName: string, storeDir: StoreDir): void {
  checkCacheStoreDir(folder, cacheName, storeDir);
  const file = join(folder, CACHE_INFO_FILE);
  if (!existsSync(file)) writeFileSync(file, `StoreDir: ${storeDir.path}\n`);
}
