// Writing a chunk stream into a Writable with backpressure, without ending the Writable (the
// serve protocol keeps writing to the same stdout after a NAR).

import { fstatSync, writeSync } from "node:fs";
import type { Writable } from "node:stream";
import { ByteWriter } from "./byte-writer.ts";

/** Resolves on 'drain'; rejects if the stream errors or closes first (instead of hanging). */
function drained(output: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      output.off("drain", onDrain);
      output.off("error", onError);
      output.off("close", onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => {
      cleanup();
      reject(new Error("output stream closed while waiting for it to drain"));
    };
    output.on("drain", onDrain);
    output.on("error", onError);
    output.on("close", onClose);
  });
}

/** Write every chunk to `output`, waiting for 'drain' when it asks to; returns the byte count. */
export async function writeChunks(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  output: Writable,
): Promise<number> {
  let size = 0;
  for await (const chunk of chunks) {
    if (output.destroyed)
      throw new Error("output stream was destroyed before the data was written");
    size += chunk.length;
    if (!output.write(chunk)) await drained(output);
  }
  return size;
}

const waitCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Write all of `chunk` to `fd` with blocking writes of at most `most` bytes each. A descriptor
 * left non-blocking (EAGAIN: its file description is shared with a stream Node made
 * non-blocking) is waited on briefly.
 */
function writeFullySync(fd: number, chunk: Uint8Array, most = chunk.length): void {
  for (let done = 0; done < chunk.length; ) {
    try {
      done += writeSync(fd, chunk, done, Math.min(most, chunk.length - done));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(waitCell, 0, 0, 0.2);
    }
  }
}

/**
 * Write every chunk to file descriptor `fd` with blocking writes, each done before the next chunk
 * is asked for (so the chunks' buffers may be reused): for a command whose only output this is,
 * where a stream's queue and callbacks cost more than the writing. Returns the byte count.
 */
export async function writeChunksToFd(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  fd: number,
): Promise<number> {
  const most = writeLimit(fd);
  let size = 0;
  for await (const chunk of chunks) {
    writeFullySync(fd, chunk, most);
    size += chunk.length;
  }
  return size;
}

/**
 * The most one write should hand to `fd`. Into a pipe, half its default capacity: the reader
 * drains one half while the other is filled, where writing the whole capacity waits for the
 * reader each time (`nar dump | cat`: 0.58 → 0.42 s for 254 MB; BENCHMARKS.md, "NAR throughput").
 * Not for a serve session's replies: its client reads through a Node stream, where more and
 * smaller reads cost more than the overlap gains (bench -- serve, DumpStorePath: 0.70 → 0.55).
 */
function writeLimit(fd: number): number {
  return fstatSync(fd).isFIFO() ? COALESCE_BYTES / 2 : Number.POSITIVE_INFINITY;
}

/** Pieces smaller than this are gathered into one write (a pipe's capacity: 64 KiB). */
const COALESCE_BYTES = 64 * 1024;

/** Write every chunk through `sink.write`, in order; the byte count. */
async function writeEach(
  sink: Pick<ReplySink, "write">,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<number> {
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    await sink.write(chunk);
  }
  return size;
}

/** Where a protocol server's replies go, gathered into few writes (see CoalescingSink). */
export interface ReplySink {
  /** Whether a piece's buffer may be reused as soon as `write` returns. */
  readonly reusable: boolean;
  write(chunk: Uint8Array): Promise<void>;
  /** Write every chunk (see `write`); returns the byte count. */
  writeAll(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number>;
  /** The message is complete: write what is pending. */
  flush(): Promise<void>;
}

/**
 * Writes a message's pieces to `output` as few large writes: small pieces (encoded fields, the
 * NAR of a small path, an export stream's markers) are held until COALESCE_BYTES are pending or
 * `flush` says the message is complete; a large piece goes out as it is, after those pending.
 * Each write into a pipe can wake the peer, so one write per reply is what it should see. Pieces
 * are held, not copied, until written: a caller must not reuse a piece's buffer.
 */
export class CoalescingSink implements ReplySink {
  readonly reusable = false;
  readonly #output: Writable;
  #pending: Uint8Array[] = [];
  #bytes = 0;

  constructor(output: Writable) {
    this.#output = output;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length >= COALESCE_BYTES) {
      await this.flush();
      await this.#send(chunk);
      return;
    }
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes >= COALESCE_BYTES) await this.flush();
  }

  /** Write every chunk (see `write`); returns the byte count. */
  writeAll(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number> {
    return writeEach(this, chunks);
  }

  /** Write what is pending, in one write. */
  async flush(): Promise<void> {
    if (this.#bytes === 0) return;
    const pending = this.#pending;
    const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending, this.#bytes);
    this.#pending = [];
    this.#bytes = 0;
    await this.#send(data);
  }

  async #send(chunk: Uint8Array): Promise<void> {
    if (this.#output.destroyed) {
      throw new Error("output stream was destroyed before the data was written");
    }
    if (!this.#output.write(chunk)) await drained(this.#output);
  }
}

/**
 * CoalescingSink's counterpart for a file descriptor written with blocking writes (a serve
 * process's stdout): small pieces are copied into one buffer, large ones written at once, so
 * every piece's buffer may be reused as soon as `write` returns (a NAR dump's reused buffers).
 */
export class FdSink implements ReplySink {
  readonly reusable = true;
  readonly #fd: number;
  readonly #pending = new ByteWriter(2 * COALESCE_BYTES);

  constructor(fd: number) {
    this.#fd = fd;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length >= COALESCE_BYTES) {
      this.#flushSync();
      writeFullySync(this.#fd, chunk);
      return;
    }
    this.#pending.bytes(chunk);
    if (this.#pending.length >= COALESCE_BYTES) this.#flushSync();
  }

  writeAll(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number> {
    return writeEach(this, chunks);
  }

  async flush(): Promise<void> {
    this.#flushSync();
  }

  #flushSync(): void {
    // The buffer is written before it is used again: a view of it does.
    if (this.#pending.length > 0) writeFullySync(this.#fd, this.#pending.takeView());
  }
}
