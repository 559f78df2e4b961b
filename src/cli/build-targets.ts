// What `nixstate build` accepts as a target, turned into derivation paths in the store:
// `/store/…-x.drv[!out,dev]` already in the store or in a Nix store with the same store
// directory (imported with its inputs), or a JSON derivation file.

import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { BuildTarget } from "../machines/build-attempt.ts";
import type { LocalStore } from "../store/local-store.ts";
import { findNixDbFile, NixDbReader } from "../store/nix-db-reader.ts";
import { importDerivations } from "../store/nix-store-import.ts";
import { addJsonDerivation, type JsonDrvContext } from "../targets/json-derivation.ts";
import { CliUsageError } from "./cli-error.ts";

export async function resolveTargets(
  store: LocalStore,
  args: string[],
  json: JsonDrvContext,
  /** Nix's database, for .drv files from a Nix store (else looked for beside that store). */
  nixDbFile?: string,
): Promise<BuildTarget[]> {
  const targets: BuildTarget[] = [];
  for (const arg of args) {
    const bang = arg.lastIndexOf("!");
    const file = bang > 0 ? arg.slice(0, bang) : arg;
    const outputs = bang > 0 && arg.slice(bang + 1) !== "*" ? arg.slice(bang + 1).split(",") : [];
    if (file.endsWith(".json")) {
      targets.push({ drvPath: addJsonDerivation(file, json), outputs });
      continue;
    }
    const full = resolve(file);
    if (!full.endsWith(".drv")) {
      if (!store.storeDir.isStorePath(full)) {
        throw new CliUsageError(
          `don't know how to build '${arg}': give a .drv path, a .drv file from a Nix store, or a JSON derivation (.json)`,
        );
      }
      targets.push({ path: full });
      continue;
    }
    if (store.storeDir.isStorePath(full) && store.isValidPath(full)) {
      targets.push({ drvPath: full, outputs });
      continue;
    }
    if (!existsSync(full)) throw new CliUsageError(`derivation '${arg}' does not exist`);
    // A .drv from a Nix store: bring it in with its inputs, using Nix's database when present.
    const dbFile = nixDbFile ?? findNixDbFile(dirname(full));
    const nixDb = dbFile === undefined ? undefined : NixDbReader.open(dbFile);
    try {
      const [drvPath] = await importDerivations(store, [full], { nixDb });
      targets.push({ drvPath: drvPath!, outputs });
    } finally {
      nixDb?.close();
    }
  }
  return targets;
}
