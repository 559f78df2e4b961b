// Where a store lives. Two settings, named the same everywhere (flag / environment variable):
//   --state-dir / NIXSTATE_STATE_DIR  database, GC roots, logs, temp dirs
//                                     (default $XDG_DATA_HOME/nixstate, i.e. ~/.local/share/nixstate)
//   --store-dir / NIXSTATE_STORE_DIR  the logical store directory baked into every path hash
//                                     (default <state-dir>/store)
//   --store-root / NIXSTATE_STORE_ROOT optional chroot store, like Nix's `--store ROOT`: paths
//                                     keep the logical store dir (default /nix/store) but live
//                                     under ROOT, state in ROOT/nix/var/nixstate
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { StoreDir } from "../store-path/store-path.ts";

export const STATE_DIR_ENV = "NIXSTATE_STATE_DIR";
export const STORE_DIR_ENV = "NIXSTATE_STORE_DIR";
export const STORE_ROOT_ENV = "NIXSTATE_STORE_ROOT";

export interface StoreSettingsInput {
  stateDir?: string | undefined;
  storeDir?: string | undefined;
  storeRoot?: string | undefined;
}

/** The physical layout of a store, all paths absolute. */
export interface StoreLayout {
  stateDir: string;
  /** The logical store directory (what paths are named by). */
  storeDir: StoreDir;
  /** Where the store's contents really are (equal to storeDir.path unless chrooted). */
  realStoreDir: string;
  dbDir: string;
  dbFile: string;
  gcRootsDir: string;
  logDir: string;
  tmpDir: string;
}

/** The default state directory: $XDG_DATA_HOME/nixstate or ~/.local/share/nixstate. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  return join(xdg?.startsWith("/") ? xdg : join(homedir(), ".local", "share"), "nixstate");
}

/** Flags win over environment variables, which win over the defaults. */
export function resolveStoreLayout(
  input: StoreSettingsInput = {},
  env: NodeJS.ProcessEnv = process.env,
): StoreLayout {
  const root = input.storeRoot || env[STORE_ROOT_ENV];
  const rootDir = root ? resolve(root) : undefined;
  const stateDir = resolve(
    input.stateDir ||
      env[STATE_DIR_ENV] ||
      (rootDir ? join(rootDir, "nix", "var", "nixstate") : defaultStateDir(env)),
  );
  const storeDir = new StoreDir(
    resolve(
      input.storeDir || env[STORE_DIR_ENV] || (rootDir ? "/nix/store" : join(stateDir, "store")),
    ),
  );
  const dbDir = join(stateDir, "db");
  return {
    stateDir,
    storeDir,
    realStoreDir: rootDir ? join(rootDir, storeDir.path) : storeDir.path,
    dbDir,
    dbFile: join(dbDir, "db.sqlite"),
    gcRootsDir: join(stateDir, "gcroots"),
    logDir: join(stateDir, "log"),
    tmpDir: join(stateDir, "tmp"),
  };
}
