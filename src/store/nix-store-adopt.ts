// A store whose files nixstate shares with Nix (same store directory, same files, a database
// each): a path Nix has registered is taken as valid here too, with Nix's path info, once its
// contents hash to what Nix recorded. So a build that waited on Nix's output lock reuses what
// Nix built instead of deleting it and building it again.
import { lstatSync } from "node:fs";
import { Hash } from "../hash/hash.ts";
import { narHash } from "../nar/nar-hash.ts";
import type { LocalStore } from "./local-store.ts";
import type { NixDbReader } from "./nix-db-reader.ts";
import type { PathInfoInput } from "./path-info.ts";

export class NixStoreAdopter {
  constructor(
    private readonly store: LocalStore,
    private readonly nixDb: NixDbReader,
  ) {}

  /** Whether the store shares its files with a Nix store of the same directory. */
  static sharesFiles(store: LocalStore): boolean {
    return store.layout.realStoreDir === store.storeDir.path;
  }

  /**
   * Make `path` valid here if Nix holds it (and its closure) as valid and the files match
   * Nix's record; false if not (then it is simply not valid, as before).
   */
  async adopt(path: string): Promise<boolean> {
    if (this.store.isValidPath(path)) return true;
    const infos: PathInfoInput[] = [];
    const seen = new Set<string>();
    const todo = [path];
    for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
      if (seen.has(p) || this.store.isValidPath(p)) continue;
      seen.add(p);
      const info = this.nixDb.queryPathInfo(p);
      if (info === undefined || !lstatSync(p, { throwIfNoEntry: false })) return false;
      const algo = info.narHash.algo;
      const nar = await narHash(p, algo);
      if (!new Hash(algo, nar.hash).equals(info.narHash) || nar.size !== info.narSize) return false;
      infos.push(info);
      todo.push(...(info.references ?? []).filter((r) => r !== p));
    }
    this.store.registerValidPaths(infos);
    return true;
  }

  close(): void {
    this.nixDb.close();
  }
}
