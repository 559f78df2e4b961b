// Encoding into bytes and decoding from a finite, oddly chunked byte source, for codec tests.

import { ByteReader } from "../../src/io/byte-reader.ts";
import { WireDecoder } from "../../src/protocol/wire/wire-decoder.ts";
import { WireEncoder } from "../../src/protocol/wire/wire-encoder.ts";
import type { WireLimits } from "../../src/protocol/wire/wire-limits.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { inChunks } from "../io/chunked-source.ts";

export const storeDir = StoreDir.nix;

export function encode(write: (e: WireEncoder) => void): Buffer {
  const e = new WireEncoder(storeDir);
  write(e);
  return e.take();
}

/** A decoder over `bytes`, delivered in chunks of the given sizes (cycled); whole by default. */
export function decoderOver(
  bytes: Uint8Array,
  chunkSizes?: number[],
  limits: Partial<WireLimits> = {},
): WireDecoder {
  const source = chunkSizes === undefined ? [bytes] : inChunks(bytes, chunkSizes);
  return new WireDecoder(new ByteReader(source), storeDir, limits);
}

/** Decode with `read` and check that it consumed every byte. */
export async function decodeAll<T>(
  bytes: Uint8Array,
  read: (d: WireDecoder) => Promise<T>,
  chunkSizes?: number[],
): Promise<T> {
  const d = decoderOver(bytes, chunkSizes);
  const value = await read(d);
  if (d.offset !== bytes.length || !(await d.atEnd())) {
    throw new Error(`decoder stopped at byte ${d.offset} of ${bytes.length}`);
  }
  return value;
}

/** Capture the raw bytes `read` consumes from `d` (e.g. a NAR parsed in passing). */
export async function captureBytes(d: WireDecoder, read: () => Promise<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  const previous = d.reader.tap;
  d.reader.tap = (b) => {
    parts.push(Buffer.from(b));
    previous?.(b);
  };
  try {
    await read();
  } finally {
    d.reader.tap = previous;
  }
  return Buffer.concat(parts);
}
