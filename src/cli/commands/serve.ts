// `nixstate serve [--write]`: the server side of `nix-store --serve` on stdin/stdout, so Nix
// clients (`nix copy --to ssh://…?remote-program=nixstate`, remote builds, Hydra) can use this
// store. Errors end the session as `error: …` on stderr with exit status 1, as Nix does.
// `--listen` keeps one process serving a session per connection on a Unix socket instead.

import { closeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { LocalBuildSettings } from "../../builder/build-settings.ts";
import { NIX_2_8_SERVE_VERSION } from "../../protocol/serve/serve-version.ts";
import { ServeListener } from "../../remote/serve-listener.ts";
import { runServeServer } from "../../remote/serve-server.ts";
import { CliUsageError, errorMessage } from "../cli-error.ts";
import { blockingReplyFd, writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions, withStore } from "../store-options.ts";

interface ServeCliOptions extends StoreCliOptions {
  write?: boolean;
  listen?: string | boolean;
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
      .option("--no-record", "do not write builds received to the run log")
      .option(
        "--listen [socket]",
        "stay running and serve a session per connection on a Unix socket (default: serve.socket in the state directory), for bin/nixstate-serve-connect as the remote-program",
      ),
  ).action(async (o: ServeCliOptions) => {
    if (o.listen !== undefined && o.listen !== false) return listen(o, o.listen);
    // Replies go to stdout's descriptor with blocking writes (no stream queue; a NAR dump reuses
    // its buffers), unless stdout is stdin's socket.
    const fd = blockingReplyFd();
    const out = fd ?? process.stdout;
    // Requests come through Node's stream, not stdinSource(): the session reads NARs through inner
    // readers that hold a piece while asking for the next, which buffers given back would break;
    // and a build needs the event loop while the session watches stdin for a hang-up.
    try {
      await withStore(o, (store) =>
        runServeServer(process.stdin, out, {
          store,
          write: !!o.write,
          ...sessionOptions(o),
          log: (text) => process.stderr.write(text),
        }),
      );
    } finally {
      if (fd !== undefined && fd !== 1) closeSync(fd);
    }
  });
}

/** The session options that are the server's, whether it serves stdin or a socket. */
function sessionOptions(o: ServeCliOptions) {
  return {
    record: o.record !== false,
    buildSettings: serveBuildSettings(o),
    ...(o.nix28Compat ? { builtOutputsQuirk: true, serverVersion: NIX_2_8_SERVE_VERSION } : {}),
  };
}

/** `--listen`: serve connections until SIGINT or SIGTERM, then end the sessions and go. */
async function listen(o: ServeCliOptions, socket: string | true): Promise<void> {
  await withStore(o, async (store) => {
    const socketPath =
      socket === true ? join(store.layout.stateDir, "serve.socket") : resolve(socket);
    // Listening for the signals first: one that comes while starting still stops the server.
    const stopped = new Promise<void>((stop) => {
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    const listener = await ServeListener.listen({
      store,
      socketPath,
      write: !!o.write,
      describeError: errorMessage,
      ...sessionOptions(o),
    });
    try {
      await writeStdout(`nixstate serve: listening on ${socketPath}\n`);
      await stopped;
    } finally {
      await listener.close();
    }
  });
}
