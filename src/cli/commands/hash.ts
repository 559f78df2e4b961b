// `nixstate hash path` (as `nix-hash`) and `nixstate hash convert` (as `nix hash convert`).

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { compressHash } from "../../hash/compress-hash.ts";
import { Hash, type HashAlgo, type HashFormat, parseHashAlgo } from "../../hash/hash.ts";
import { narHash } from "../../nar/nar-hash.ts";
import { CliUsageError } from "../cli-error.ts";
import { writeStdout } from "../stdout.ts";

const FORMATS: Record<string, HashFormat> = {
  nix32: "nix32",
  base32: "nix32",
  base16: "base16",
  base64: "base64",
  sri: "sri",
};

function parseFormat(s: string): HashFormat {
  const f = FORMATS[s];
  if (!f) throw new CliUsageError(`unknown hash format '${s}': use nix32, base16, base64 or sri`);
  return f;
}

async function flatHash(algo: HashAlgo, path: string): Promise<Hash> {
  const h = createHash(algo);
  await pipeline(createReadStream(path), h);
  return new Hash(algo, h.digest());
}

function render(hash: Hash, format: HashFormat, truncate: boolean): string {
  if (truncate && hash.digest.length > 20) {
    // nix-hash --truncate: fold to 160 bits, printed without an algorithm.
    const folded = compressHash(hash.digest, 20);
    return format === "base16"
      ? folded.toString("hex")
      : new Hash("sha1", folded).format(format, false);
  }
  return format === "sri" ? hash.toSri() : hash.format(format, false);
}

export function registerHashCommands(program: Command): void {
  const hash = program.command("hash").description("compute and convert hashes");
  hash
    .command("path")
    .description("hash the NAR serialisation of paths (or their contents with --flat), as nix-hash")
    .argument("<paths...>")
    .option("--type <algo>", "md5, sha1, sha256 or sha512", "md5")
    .option("--flat", "hash the file's contents instead of its NAR")
    .option("--base32", "print in nix32")
    .option("--base16", "print in base-16 (the default)")
    .option("--sri", "print in SRI form (algo-base64)")
    .option("--truncate", "fold the hash to 160 bits")
    .action(
      async (
        paths: string[],
        o: { type: string; flat?: boolean; base32?: boolean; sri?: boolean; truncate?: boolean },
      ) => {
        const algo = parseHashAlgo(o.type);
        const format: HashFormat = o.sri ? "sri" : o.base32 ? "nix32" : "base16";
        for (const p of paths) {
          const h = o.flat
            ? await flatHash(algo, p)
            : new Hash(algo, (await narHash(p, algo)).hash);
          await writeStdout(`${render(h, format, !!o.truncate)}\n`);
        }
      },
    );
  hash
    .command("convert")
    .description("convert hashes between nix32, base16, base64 and SRI")
    .argument("<hashes...>", "hashes as `algo:digest`, SRI `algo-base64`, or bare with --type")
    .requiredOption("--to <format>", "nix32 (alias base32), base16, base64 or sri")
    .option("--type <algo>", "algorithm of hashes given without one")
    .action(async (hashes: string[], o: { to: string; type?: string }) => {
      const format = parseFormat(o.to);
      const algo = o.type ? parseHashAlgo(o.type) : undefined;
      for (const s of hashes) {
        await writeStdout(`${render(Hash.parse(s, algo), format, false)}\n`);
      }
    });
}
