// `nixstate derivation show FILE.drv...`: Nix 2.8's `nix show-derivation` output.
import type { Command } from "commander";
import type { Derivation } from "../../derivation/derivation.ts";
import { readDerivationFile } from "../../derivation/drv-file.ts";
import { renderShowDerivation } from "../../derivation/show-json.ts";
import { StoreDir } from "../../store-path/store-path.ts";
import { writeStdout } from "../stdout.ts";

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
}
