// Collecting NAR streams in tests.

import { dumpNar } from "../../src/nar/nar-dump.ts";

export async function concatChunks(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** The whole NAR of `path` in one Buffer. */
export function dumpToBuffer(path: string | Buffer): Promise<Buffer> {
  return concatChunks(dumpNar(path));
}
