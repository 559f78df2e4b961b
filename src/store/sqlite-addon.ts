// better-sqlite3's native addon, named for it: left to itself it loads the `bindings` package,
// which tries path after path for the file at every start (~2 ms), and which cannot find its
// package at all from inside the bundle (scripts/bundle.mjs bundles better-sqlite3's JavaScript).
import { createRequire } from "node:module";

let addon: string | undefined;

/** The path of better-sqlite3's compiled addon, for its `nativeBinding` option. */
export function sqliteAddon(): string {
  addon ??= createRequire(import.meta.url).resolve(
    "better-sqlite3/build/Release/better_sqlite3.node",
  );
  return addon;
}
