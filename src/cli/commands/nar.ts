// `nixstate nar dump|restore|ls`: NAR archives as `nix-store --dump/--restore` and `nix nar ls`.
import { closeSync } from "node:fs";
import type { Command } from "commander";
import { writeChunksToFd } from "../../io/writable-sink.ts";
import { dumpNar } from "../../nar/nar-dump.ts";
import { narListing, renderNarListing } from "../../nar/nar-listing.ts";
import { restoreNar } from "../../nar/nar-restore.ts";
import { stdinSource } from "../stdin.ts";
import { blockingStdout, writeStdout } from "../stdout.ts";

export function registerNarCommands(program: Command): void {
  const nar = program
    .command("nar")
    .description("serialise and restore file trees as NAR archives");
  nar
    .command("dump")
    .description("write the NAR serialisation of PATH to stdout (as nix-store --dump)")
    .argument("<path>")
    .action(async (path: string) => {
      // Straight to stdout with blocking writes, reusing the dumper's buffers (writeChunksToFd).
      const out = blockingStdout();
      try {
        await writeChunksToFd(dumpNar(path, { reuseBuffers: true }), out);
      } finally {
        if (out !== 1) closeSync(out);
      }
    });
  nar
    .command("restore")
    .description(
      "unpack a NAR read from stdin into DIR, which must not exist (as nix-store --restore)",
    )
    .argument("<dir>")
    .action(async (dir: string) => {
      await restoreNar(stdinSource(), dir);
    });
  nar
    .command("ls")
    .description("print the NAR listing JSON of a NAR read from stdin")
    .action(async () => {
      const listing = await narListing(stdinSource());
      await writeStdout(`${renderNarListing(listing)}\n`);
    });
}
