// Encoding of Nix wire primitives (u64 little-endian, padded strings) into growable buffers.

import { paddingLength } from "./wire-padding.ts";

const TWO_POW_32 = 2 ** 32;

function checkU64(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`cannot encode ${value} as u64: not an integer in [0, 2^53)`);
  }
}

function writeU64At(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt32LE(value % TWO_POW_32, offset);
  buffer.writeUInt32LE(Math.floor(value / TWO_POW_32), offset + 4);
}

/** The 8-byte little-endian encoding of `value`. */
export function encodeU64(value: number): Buffer {
  checkU64(value);
  const out = Buffer.allocUnsafe(8);
  writeU64At(out, 0, value);
  return out;
}

/** The wire encoding of a string: u64 length, the bytes (strings as UTF-8), zero padding. */
export function encodeString(value: Uint8Array | string): Buffer {
  return new ByteWriter(0).string(value).take();
}

const NO_BYTES = Buffer.alloc(0);

/**
 * Accumulates wire data. `take` hands out the bytes written so far and starts a fresh buffer, so
 * a taken Buffer is never overwritten (it may still sit in a stream's queue).
 *
 * Buffers are allocated at the first write after a `take`: a writer taken at the end of each
 * message must not allocate one more buffer it never uses.
 */
export class ByteWriter {
  /** The size of the next fresh buffer: the initial capacity, then the largest buffer taken. */
  #capacity: number;
  /** Allocated at the first write: a writer taken from for the last time allocates nothing more. */
  #buffer: Buffer = NO_BYTES;
  #length = 0;

  constructor(initialCapacity = 64 * 1024) {
    this.#capacity = initialCapacity;
  }

  /** Bytes written since the last `take`. */
  get length(): number {
    return this.#length;
  }

  u64(value: number): this {
    checkU64(value);
    this.#reserve(8);
    writeU64At(this.#buffer, this.#length, value);
    this.#length += 8;
    return this;
  }

  bytes(bytes: Uint8Array): this {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
    return this;
  }

  /** The zero padding that follows a wire string of `length` bytes. */
  padding(length: number): this {
    const pad = paddingLength(length);
    this.#reserve(pad);
    this.#buffer.fill(0, this.#length, this.#length + pad);
    this.#length += pad;
    return this;
  }

  /** A wire string: u64 length, bytes (a JS string is written as UTF-8), padding. */
  string(value: Uint8Array | string): this {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    return this.u64(bytes.length).bytes(bytes).padding(bytes.length);
  }

  /**
   * Append `n` bytes for the caller to fill in place (e.g. `fs.readSync` straight into the
   * returned view), saving a copy. The caller must overwrite all of them.
   */
  allocate(n: number): Buffer {
    this.#reserve(n);
    const view = this.#buffer.subarray(this.#length, this.#length + n);
    this.#length += n;
    return view;
  }

  /** Hand out everything written so far and start over with a fresh buffer. */
  take(): Buffer {
    if (this.#length === 0) return NO_BYTES;
    const out = this.#buffer.subarray(0, this.#length);
    this.#capacity = Math.max(this.#capacity, this.#buffer.length);
    this.#buffer = NO_BYTES;
    this.#length = 0;
    return out;
  }

  /**
   * Hand out everything written so far as a view of this writer's own buffer, which the next
   * write reuses: for a consumer that is done with the bytes before it writes again.
   */
  takeView(): Buffer {
    const out = this.#buffer.subarray(0, this.#length);
    this.#length = 0;
    return out;
  }

  #reserve(n: number): void {
    const needed = this.#length + n;
    if (needed <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(
      this.#buffer === NO_BYTES
        ? Math.max(needed, this.#capacity, 64)
        : Math.max(needed, this.#buffer.length * 2, 64),
    );
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}
