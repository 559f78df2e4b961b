// Importing derivations from a real Nix store: the .drv files, their input .drv closure and the
// input sources, each with the path info Nix recorded (from its database) or, without one, the
// path info that reproduces the path's name (text or NAR-hashed source without references).
import { lstatSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseDerivation } from "../derivation/aterm-parse.ts";
import { derivationReferences } from "../derivation/hash-modulo.ts";
import { Hash } from "../hash/hash.ts";
import { dumpNar } from "../nar/nar-dump.ts";
import { narHash } from "../nar/nar-hash.ts";
import { renderContentAddress } from "../store-path/content-address.ts";
import { makeFixedOutputPath, makeTextPath } from "../store-path/make-store-path.ts";
import type { LocalStore } from "./local-store.ts";
import type { NixDbReader } from "./nix-db-reader.ts";
import { topoSortPaths } from "./path-graph.ts";
import type { PathInfoInput } from "./path-info.ts";
import { ForeignStoreError } from "./store-errors.ts";

type Pending =
  | { kind: "drv"; name: string; bytes: Buffer; references: string[] }
  | { kind: "nar"; info: PathInfoInput };

export interface NixImportOptions {
  /** Nix's database for exact path infos of input sources (and their closures). */
  nixDb?: NixDbReader | undefined;
}

/** The logical path of a file in the Nix store, which must be this store's directory. */
function sourcePath(store: LocalStore, file: string): string {
  const full = resolve(file);
  const dir = dirname(full);
  if (dir !== store.storeDir.path) {
    throw new ForeignStoreError(
      `'${full}' is in '${dir}', but this store's directory is '${store.storeDir.path}'; the paths inside a .drv name their store directory, so open the store with --store-dir ${dir}`,
    );
  }
  store.parseStorePath(full);
  return full;
}

/** Path info of an input source without Nix's database: text or NAR-hashed, no references. */
async function guessSourceInfo(store: LocalStore, path: string): Promise<PathInfoInput> {
  const name = store.parseStorePath(path).name;
  const nar = await narHash(path, "sha256");
  const narHashValue = new Hash("sha256", nar.hash);
  const base = { path, narHash: narHashValue, narSize: nar.size, references: [] };
  if (lstatSync(path).isFile()) {
    const contentHash = Hash.of("sha256", readFileSync(path));
    if (store.storeDir.print(makeTextPath(store.storeDir, name, contentHash)) === path) {
      return { ...base, ca: renderContentAddress({ method: "text", hash: contentHash }) };
    }
  }
  if (
    store.storeDir.print(makeFixedOutputPath(store.storeDir, name, "nar", narHashValue)) === path
  ) {
    return { ...base, ca: renderContentAddress({ method: "nar", hash: narHashValue }) };
  }
  throw new ForeignStoreError(
    `cannot work out the path info of '${path}' (its references are unknown) without Nix's database; give it to 'nixstate build' or 'nixstate store add-drv' with --nix-db <NIX_STATE_DIR>/db/db.sqlite (by default /nix/var/nix/db/db.sqlite), or set NIX_STATE_DIR`,
  );
}

/**
 * Import the derivations in `drvFiles` (paths in a Nix store whose directory is this store's)
 * with their input derivations and sources. Returns the .drv paths.
 */
export async function importDerivations(
  store: LocalStore,
  drvFiles: readonly string[],
  options: NixImportOptions = {},
): Promise<string[]> {
  const roots = drvFiles.map((f) => sourcePath(store, f));
  const pending = new Map<string, Pending>();
  const queue = [...roots];
  while (queue.length > 0) {
    const path = queue.pop()!;
    if (pending.has(path) || store.isValidPath(path)) continue;
    const sp = store.parseStorePath(path);
    if (sp.isDerivation()) {
      const bytes = readFileSync(path);
      const drv = parseDerivation(bytes, {
        name: sp.name.slice(0, -".drv".length),
        storeDir: store.storeDir,
        source: path,
      });
      const references = derivationReferences(drv).sort();
      const named = makeTextPath(
        store.storeDir,
        sp.name,
        Hash.of("sha256", bytes),
        references.map((r) => store.parseStorePath(r)),
      );
      if (store.storeDir.print(named) !== path) {
        throw new ForeignStoreError(
          `'${path}' does not hash to its own name (it would be '${store.storeDir.print(named)}'): the file is corrupt or was written for another store directory`,
        );
      }
      pending.set(path, { kind: "drv", name: sp.name, bytes, references });
      queue.push(...references);
    } else {
      const info = options.nixDb?.queryPathInfo(path) ?? (await guessSourceInfo(store, path));
      pending.set(path, { kind: "nar", info });
      queue.push(...(info.references ?? []).filter((r) => r !== path));
    }
  }
  const referencesOf = (p: string): string[] => {
    const item = pending.get(p)!;
    return item.kind === "drv" ? item.references : [...(item.info.references ?? [])];
  };
  for (const path of topoSortPaths(pending.keys(), referencesOf)) {
    const item = pending.get(path)!;
    if (item.kind === "nar") {
      await store.importPath(item.info, dumpNar(path));
      continue;
    }
    store.addTextToStore(item.name, item.bytes, item.references);
  }
  return roots;
}
