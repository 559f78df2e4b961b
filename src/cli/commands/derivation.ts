// `nixstate derivation show FILE.drv...`: Nix 2.8's `nix show-derivation` output.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { StoreQueryEffects } from "../../builder/store-query-effects.ts";
import type { Derivation } from "../../derivation/derivation.ts";
import { readDerivationFile } from "../../derivation/drv-file.ts";
import { DerivationError } from "../../derivation/errors.ts";
import { renderShowDerivation } from "../../derivation/show-json.ts";
import { findNixDbFile, NixDbReader } from "../../store/nix-db-reader.ts";
import { importDerivations } from "../../store/nix-store-import.ts";
import { StoreDir } from "../../store-path/store-path.ts";
import { addDerivationsJson } from "../../targets/derivation-json-add.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions, withStore } from "../store-options.ts";

export function registerDerivationCommands(program: Command): void {
  const drv = program.command("derivation").description("inspect derivations (.drv files)");
  drv
    .command("show")
    .description(
      "print derivations as JSON, keyed by their .drv store paths (as `nix show-derivation`)",
    )
    .argument("<files...>", ".drv files, in a store or anywhere")
    .option(
      "--store-dir <dir>",
      "store directory the derivations belong to (default: inferred from the paths inside each file)",
      process.env.NIXSTATE_STORE_DIR,
    )
    .action(async (files: string[], opts: { storeDir?: string }) => {
      const storeDir = opts.storeDir ? new StoreDir(opts.storeDir) : undefined;
      const entries: [string, Derivation][] = files.map((f) => {
        const loaded = readDerivationFile(f, storeDir);
        return [loaded.drvPath, loaded.drv];
      });
      await writeStdout(renderShowDerivation(entries));
    });

  addStoreOptions(
    drv
      .command("add")
      .description(
        "write the derivations in nix show-derivation's JSON (stdin, or FILE) to the store as .drv files; print their paths",
      )
      .argument("[file]", "a JSON file (default: stdin)")
      .option(
        "--nix-db <file>",
        "Nix's database, for inputs taken from a Nix store with the same store directory (default: found as Nix finds it)",
      ),
  ).action(async (file: string | undefined, opts: StoreCliOptions & { nixDb?: string }) => {
    const source = file ?? "stdin";
    const text = readFileSync(file ?? 0, "utf8");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new DerivationError(`${source}: not valid JSON (${(e as Error).message})`);
    }
    await withStore(opts, async (store) => {
      const effects = new StoreQueryEffects(store);
      const paths = await addDerivationsJson(json, source, {
        store,
        readDerivation: (p) => effects.readDerivation(p),
        importInputs: async (missing) => {
          const dbFile = opts.nixDb ?? findNixDbFile(store.storeDir.path);
          const nixDb = dbFile === undefined ? undefined : NixDbReader.open(dbFile);
          try {
            await importDerivations(store, missing, { nixDb });
          } finally {
            nixDb?.close();
          }
        },
      });
      await writeStdout(paths.map((p) => `${p}\n`).join(""));
    });
  });
}
