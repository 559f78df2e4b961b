// `nixstate serve [--write]`: the server side of `nix-store --serve` on stdin/stdout, so Nix
// clients (`nix copy --to ssh://…?remote-program=nixstate`, remote builds, Hydra) can use this
// store. Errors end the session as `error: …` on stderr with exit status 1, as Nix does.

import { closeSync } from "node:fs";
import type { Command } from "commander";
import type { LocalBuildSettings } from "../../builder/build-settings.ts";
import { NIX_2_8_SERVE_VERSION } from "../../protocol/serve/serve-version.ts";
import { runServeServer } from "../../remote/serve-server.ts";
import { CliUsageError } from "../cli-error.ts";
import { blockingReplyFd } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions, withStore } from "../store-options.ts";

interface ServeCliOptions extends StoreCliOptions {
  write?: boolean;
  nix28Compat?: boolean;
  systemFeatures?: string;
  cores?: string;
  sandbox?: boolean;
  record?: boolean;
}

/** The build settings that are this machine's, not the client's, for the builds received. */
function serveBuildSettings(o: ServeCliOptions): Partial<LocalBuildSettings> {
  const cores = o.cores === undefined ? undefined : Number(o.cores);
  if (cores !== undefined && !(Number.isInteger(cores) && cores >= 0))
    throw new CliUsageError(`--cores wants a whole number, not '${o.cores}'`);
  return {
    ...(o.systemFeatures === undefined
      ? {}
      : { systemFeatures: o.systemFeatures.split(/\s+/).filter(Boolean) }),
    ...(cores === undefined ? {} : { cores }),
    ...(o.sandbox ? { sandbox: true } : {}),
  };
}

export function registerServeCommands(program: Command): void {
  addStoreOptions(
    program
      .command("serve")
      .description(
        "speak Nix's 'nix-store --serve' protocol on stdin/stdout (also: nixstate --serve)",
      )
      .option("--write", "allow importing paths and building (ImportPaths, AddToStoreNar, builds)")
      .option(
        "--nix28-compat",
        "answer byte for byte as Nix 2.8: announce protocol 0x207 and send builtOutputs in build results at every version (NixOS/nix#6946)",
      )
      .option(
        "--system-features <features>",
        "space-separated features this machine offers builders (Nix's system-features)",
      )
      // As nix-store --serve, builds received use this machine's settings (nixstate.conf).
      .option("--cores <n>", "NIX_BUILD_CORES for each builder (0: use all cores)")
      .option("--sandbox", "build in a bubblewrap sandbox (as build --sandbox)")
      .option("--no-record", "do not write builds received to the run log"),
  ).action(async (o: ServeCliOptions) => {
    // Replies go to stdout's descriptor with blocking writes (no stream queue; a NAR dump reuses
    // its buffers), unless stdout is stdin's socket.
    const fd = blockingReplyFd();
    const out = fd ?? process.stdout;
    try {
      await withStore(o, (store) =>
        runServeServer(process.stdin, out, {
          store,
          write: !!o.write,
          record: o.record !== false,
          buildSettings: serveBuildSettings(o),
          ...(o.nix28Compat
            ? { builtOutputsQuirk: true, serverVersion: NIX_2_8_SERVE_VERSION }
            : {}),
          log: (text) => process.stderr.write(text),
        }),
      );
    } finally {
      if (fd !== undefined && fd !== 1) closeSync(fd);
    }
  });
}
