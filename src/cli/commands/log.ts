// `nixstate log DRV|OUTPUT` (as `nix log` / `nix-store -l`) and `nixstate failed list|clear`
// for the failed-path cache (`--cache-failures`).

import { resolve } from "node:path";
import type { Command } from "commander";
import { readBuildLog } from "../../builder/build-log.ts";
import { CliUsageError } from "../cli-error.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions, withStore } from "../store-options.ts";

export function registerLogCommands(program: Command): void {
  addStoreOptions(
    program
      .command("log")
      .description("print the build log of a derivation, or of the derivation that built a path")
      .argument("<path>", "a .drv path or an output path"),
  ).action(async (arg: string, o: StoreCliOptions) => {
    await withStore(o, async (store) => {
      const path = resolve(arg);
      const drvPath = path.endsWith(".drv") ? path : store.tryQueryPathInfo(path)?.deriver;
      if (!drvPath) throw new CliUsageError(`path '${path}' is not valid or has no known deriver`);
      const log = readBuildLog(store.layout.logDir, drvPath);
      if (!log) {
        // An empty log is not kept; say so only if the derivation was never built here.
        if (
          store.tryQueryPathInfo(drvPath) &&
          [...store.queryDerivationOutputs(drvPath).values()].some((p) => store.isValidPath(p))
        )
          return;
        throw new CliUsageError(`build log of '${drvPath}' is not available`);
      }
      await writeStdout(log);
    });
  });

  const failed = program
    .command("failed")
    .description("the failed-path cache (builds run with --cache-failures)");
  addStoreOptions(
    failed
      .command("list")
      .description("print the outputs whose builds failed")
      .option("--json", "print a JSON list"),
  ).action(async (o: StoreCliOptions & { json?: boolean }) => {
    await withStore(o, async (store) => {
      if (o.json) {
        await writeStdout(`${JSON.stringify(store.queryFailedPaths())}\n`);
        return;
      }
      await writeStdout(
        store
          .queryFailedPaths()
          .map((p) => `${p}\n`)
          .join(""),
      );
    });
  });
  addStoreOptions(
    failed
      .command("clear")
      .description("forget failures, so those outputs are built again")
      .argument("[paths...]", "only these outputs (default: all)"),
  ).action(async (paths: string[], o: StoreCliOptions) => {
    await withStore(o, async (store) => {
      store.clearFailedPaths(paths.length > 0 ? paths.map((p) => resolve(p)) : undefined);
    });
  });
}
