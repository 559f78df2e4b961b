// NAR hash and size of a path (formats.md §6.1: narHash is the digest of the whole NAR stream),
// computed while dumping, without holding the NAR.

import { createHash } from "node:crypto";
import { dumpNar, regularFileNar } from "./nar-dump.ts";

/** Algorithms Nix uses; any other node:crypto name works too. */
export type NarHashAlgorithm = "md5" | "sha1" | "sha256" | "sha512";

export interface NarHash {
  /** The raw digest (render it as base16/nix32/SRI elsewhere). */
  hash: Buffer;
  /** Length of the NAR in bytes (narSize). */
  size: number;
}

/** Digest and size of a chunk stream, e.g. a NAR arriving over the wire. */
export async function hashChunks(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  algorithm: NarHashAlgorithm | (string & {}) = "sha256",
): Promise<NarHash> {
  const hash = createHash(algorithm);
  let size = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { hash: hash.digest(), size };
}

/** NAR hash and size of the file, symlink or directory at `path`. */
export function narHash(
  path: string | Buffer,
  algorithm: NarHashAlgorithm | (string & {}) = "sha256",
): Promise<NarHash> {
  // The hash is done with each chunk before it asks for the next: the dumper may reuse them.
  return hashChunks(dumpNar(path, { reuseBuffers: true }), algorithm);
}

/** NAR hash and size of a regular file held in memory (recursive hashing of a flat input). */
export function regularFileNarHash(
  contents: Uint8Array,
  executable = false,
  algorithm: NarHashAlgorithm | (string & {}) = "sha256",
): NarHash {
  const hash = createHash(algorithm);
  let size = 0;
  for (const part of regularFileNar(contents, executable)) {
    hash.update(part);
    size += part.length;
  }
  return { hash: hash.digest(), size };
}
