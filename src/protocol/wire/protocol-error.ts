// The one error protocol decoders raise: what was expected, where (absolute byte offset in the
// stream being decoded) and what was wrong, with a code a client or server can act on (end of
// input usually means the peer died; anything else means it speaks another protocol).

import {
  ByteReadError,
  NonZeroPaddingError,
  UnexpectedEndError,
  ValueTooLargeError,
} from "../../io/read-errors.ts";
import { NarError } from "../../nar/nar-error.ts";

export type ProtocolErrorCode =
  /** The input ended inside an item (the peer closed the stream or died). */
  | "truncated"
  /** A length, count or integer above what the reader allows. */
  | "too-large"
  /** Padding after a string holds a non-zero byte. */
  | "non-zero-padding"
  /** The first u64 of a handshake is not the protocol's magic (typically a shell banner). */
  | "bad-magic"
  /** A command code the protocol does not have, or not at the negotiated version. */
  | "unknown-command"
  /** A well-framed value that breaks the protocol's rules (bad store path, hash, JSON, NAR…). */
  | "invalid"
  /** Valid on the wire, but beyond what nixstate handles (floating or impure outputs…). */
  | "unsupported";

export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    /** What the decoder was reading, e.g. "drvPath (a store path)". */
    readonly expected: string,
    /** Absolute offset of the first byte of the offending item. */
    readonly offset: number,
    /** The problem without the position. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`expected ${expected} at byte ${offset}: ${problem}`, options);
    this.name = "ProtocolError";
  }
}

/**
 * Turn what a ByteReader (or the NAR parser, whose offsets count from `narBase`) threw into a
 * ProtocolError about `expected`. Anything else (I/O errors of the transport, bugs) is returned
 * unchanged: it says nothing about the data.
 */
export function asProtocolError(error: unknown, expected: string, narBase = 0): unknown {
  if (error instanceof ProtocolError) return error;
  if (error instanceof UnexpectedEndError) {
    return new ProtocolError("truncated", expected, error.offset, error.message, { cause: error });
  }
  if (error instanceof ValueTooLargeError) {
    return new ProtocolError("too-large", expected, error.offset, error.message, { cause: error });
  }
  if (error instanceof NonZeroPaddingError) {
    return new ProtocolError("non-zero-padding", expected, error.offset, error.message, {
      cause: error,
    });
  }
  if (error instanceof ByteReadError) {
    return new ProtocolError("invalid", expected, error.offset, error.message, { cause: error });
  }
  if (error instanceof NarError) {
    const code =
      error.code === "truncated"
        ? "truncated"
        : error.code === "too-large" || error.code === "too-deep"
          ? "too-large"
          : error.code === "bad-padding"
            ? "non-zero-padding"
            : "invalid";
    return new ProtocolError(code, expected, narBase + error.offset, error.message, {
      cause: error,
    });
  }
  return error;
}
