// `--state-dir` / `--store-dir`, shared by every command that opens the store. Flags win over
// NIXSTATE_STATE_DIR / NIXSTATE_STORE_DIR, which win over the defaults (store-settings.ts).
import type { Command } from "commander";
import { LocalStore, type LocalStoreOptions } from "../store/local-store.ts";
import { STATE_DIR_ENV, STORE_DIR_ENV, STORE_ROOT_ENV } from "../store/store-settings.ts";

export interface StoreCliOptions {
  stateDir?: string;
  storeDir?: string;
  storeRoot?: string;
}

export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option(
      "--state-dir <dir>",
      `where the database, GC roots and logs live (env ${STATE_DIR_ENV}; default $XDG_DATA_HOME/nixstate)`,
    )
    .option(
      "--store-dir <dir>",
      `the logical store directory baked into every path (env ${STORE_DIR_ENV}; default <state-dir>/store)`,
    )
    .option(
      "--store-root <dir>",
      `keep the store's files under <dir> while paths keep the logical store directory, like Nix's --store ROOT (env ${STORE_ROOT_ENV})`,
    );
}

export function openStore(opts: StoreCliOptions, extra: LocalStoreOptions = {}): LocalStore {
  return LocalStore.open({
    stateDir: opts.stateDir,
    storeDir: opts.storeDir,
    storeRoot: opts.storeRoot,
    ...extra,
  });
}

/** Run `body` with the store open, closing it afterwards whatever happens. */
export async function withStore<T>(
  opts: StoreCliOptions,
  body: (store: LocalStore) => Promise<T> | T,
  extra: LocalStoreOptions = {},
): Promise<T> {
  const store = openStore(opts, extra);
  try {
    return await body(store);
  } finally {
    store.close();
  }
}
