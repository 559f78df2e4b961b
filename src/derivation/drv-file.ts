// Reading a .drv file from disk: where its name and store directory come from.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { HASH_PART_LEN, StoreDir, StorePath } from "../store-path/store-path.ts";
import { parseDerivation } from "./aterm-parse.ts";
import type { Derivation } from "./derivation.ts";
import { derivationPath } from "./hash-modulo.ts";
import { validateDerivation } from "./validate.ts";

/** `<hash>-hello.drv` → `hello`; a file outside any store (`hello.drv`) → `hello`. */
export function derivationNameFromFile(file: string): string {
  const base = basename(file);
  try {
    const p = StorePath.parseBaseName(base);
    if (p.isDerivation()) return p.name.slice(0, -4);
  } catch {
    // not a store path name: fall through
  }
  return base.endsWith(".drv") ? base.slice(0, -4) : base;
}

const STORE_PATH_IN_ATERM = new RegExp(`"(/[^"]*)/[0-9a-df-np-sv-z]{${HASH_PART_LEN}}-[^"/]+"`);

/** The store directory the paths inside a .drv refer to, if it names any path at all. */
export function inferStoreDir(bytes: Uint8Array): StoreDir | undefined {
  const m = STORE_PATH_IN_ATERM.exec(Buffer.from(bytes).toString("latin1"));
  return m ? new StoreDir(m[1]!) : undefined;
}

export interface LoadedDerivation {
  drv: Derivation;
  bytes: Buffer;
  /** The store path the file has (or would have) in `storeDir`. */
  drvPath: string;
  storeDir: StoreDir;
}

/** Parse and validate a .drv given its bytes; the store dir is inferred when not given. */
export function loadDerivation(
  bytes: Buffer,
  opts: { name: string; storeDir?: StoreDir; source?: string },
): LoadedDerivation {
  const storeDir = opts.storeDir ?? inferStoreDir(bytes) ?? StoreDir.nix;
  const source = opts.source ?? `${opts.name}.drv`;
  const drv = parseDerivation(bytes, { name: opts.name, storeDir, source });
  validateDerivation(drv, storeDir, source);
  return { drv, bytes, drvPath: derivationPath(drv, bytes, storeDir), storeDir };
}

export function readDerivationFile(file: string, storeDir?: StoreDir): LoadedDerivation {
  return loadDerivation(readFileSync(file), {
    name: derivationNameFromFile(file),
    source: file,
    ...(storeDir ? { storeDir } : {}),
  });
}
