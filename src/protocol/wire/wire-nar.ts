// NARs inside protocol streams. A NAR is sent raw, without a length (DumpStorePath, export
// streams), so the only way to find its end is to parse it; AddToStoreNar announces its size
// instead, and the archive must then fill exactly that many bytes.

import { ByteReader } from "../../io/byte-reader.ts";
import { NarError } from "../../nar/nar-error.ts";
import { type NarLimits, type NarVisitor, parseNar } from "../../nar/nar-parse.ts";
import { asProtocolError, ProtocolError } from "./protocol-error.ts";
import type { WireDecoder } from "./wire-decoder.ts";

/**
 * Parse the NAR that follows, reporting its nodes to `visitor`; returns its size. The decoder is
 * left right after the archive. Errors thrown by the visitor pass through unchanged.
 */
export async function readNar(
  d: WireDecoder,
  visitor: NarVisitor = {},
  limits: NarLimits = {},
  expected = "a NAR",
): Promise<number> {
  const base = d.offset;
  try {
    return await parseNar(d.reader, visitor, limits);
  } catch (error) {
    throw asProtocolError(error, expected, base);
  }
}

/** Stream the next `size` bytes as they arrive (views into the reader's chunks). */
export async function* sizedNarChunks(
  d: WireDecoder,
  size: number,
  expected = "NAR",
): AsyncGenerator<Buffer, void, undefined> {
  try {
    yield* d.reader.readChunks(size, expected);
  } catch (error) {
    throw asProtocolError(error, expected);
  }
}

/** Parse a NAR announced to be `size` bytes long: it must end exactly there. */
export async function readSizedNar(
  d: WireDecoder,
  size: number,
  visitor: NarVisitor = {},
  limits: NarLimits = {},
  expected = "NAR",
): Promise<void> {
  const base = d.offset;
  let allDelivered = false;
  const chunks = async function* () {
    yield* sizedNarChunks(d, size, expected);
    allDelivered = true;
  };
  const inner = new ByteReader(chunks());
  let narSize: number;
  try {
    narSize = await parseNar(inner, visitor, limits);
  } catch (error) {
    if (error instanceof NarError && error.code === "truncated" && allDelivered) {
      throw new ProtocolError(
        "invalid",
        `${expected} of ${size} bytes`,
        base,
        `the archive does not end within the announced ${size} bytes (narSize too small?)`,
        { cause: error },
      );
    }
    throw asProtocolError(error, expected, base);
  }
  if (narSize !== size) {
    await inner.close();
    throw new ProtocolError(
      "invalid",
      `${expected} of ${size} bytes`,
      base,
      `the archive ends after ${narSize} bytes, before the announced ${size}`,
    );
  }
}
