// Errors raised by ByteReader. Offsets are absolute: counted in bytes from the start of the
// reader's source, so they can be matched against a hex dump of the whole stream.

/** Base class of everything ByteReader throws about the data it reads. */
export class ByteReadError extends Error {
  constructor(
    message: string,
    /** Absolute offset where the failing item starts. */
    readonly offset: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The source ended before the requested bytes arrived (the input is truncated). */
export class UnexpectedEndError extends ByteReadError {
  constructor(
    offset: number,
    /** What was being read, e.g. "u64" or "NAR file contents". */
    readonly expected: string,
    /** How many more bytes were needed when the source ended. */
    readonly missing: number,
    /** Absolute offset at which the input ended. */
    readonly endOffset: number,
  ) {
    super(
      `unexpected end of input at byte ${endOffset}: ${expected} starting at byte ${offset} ` +
        `needs ${missing} more byte${missing === 1 ? "" : "s"}`,
      offset,
    );
  }
}

/** A length or number read from the input is larger than the caller allows. */
export class ValueTooLargeError extends ByteReadError {
  constructor(
    offset: number,
    readonly expected: string,
    /** The value as read (exact, even above 2^53). */
    readonly value: bigint,
    readonly limit: number,
  ) {
    super(`${expected} at byte ${offset} is ${value}, more than the allowed ${limit}`, offset);
  }
}

/** Padding after a wire string contains a non-zero byte. */
export class NonZeroPaddingError extends ByteReadError {
  constructor(
    offset: number,
    readonly expected: string,
  ) {
    super(`non-zero padding at byte ${offset} after ${expected}`, offset);
  }
}
