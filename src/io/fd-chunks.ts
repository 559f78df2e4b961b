// Reading a descriptor with blocking reads, as a synchronous chunk source (ByteReader takes
// one): for a command whose only input this is, where waiting on the event loop for each of
// libuv's reads left `nar restore` idle ~0.3 s of its 1.7 (BENCHMARKS.md, NAR throughput).
import { fstatSync, readSync } from "node:fs";
import type { RecyclingSource } from "./byte-reader.ts";

const CHUNK = 256 * 1024;
const waitCell = new Int32Array(new SharedArrayBuffer(4));

/** Whether `fd` is a file or a pipe, which blocking reads suit (not a terminal or socket). */
export function readsBlocking(fd: number): boolean {
  const st = fstatSync(fd);
  return st.isFile() || st.isFIFO();
}

/** Buffers given back and not filled again yet: a reader holds a few chunks at most. */
const SPARES = 4;

/**
 * The bytes of `fd` until its end, read into buffers a ByteReader gives back (RecyclingSource):
 * a chunk is filled again once the reader has consumed it. Iterated on its own, every chunk is a
 * fresh buffer.
 */
export class RecycledFdChunks implements RecyclingSource {
  readonly #fd: number;
  readonly #spares: Buffer[] = [];

  constructor(fd: number) {
    this.#fd = fd;
  }

  [Symbol.iterator](): Generator<Buffer> {
    return readChunks(this.#fd, () => this.#spares.pop() ?? Buffer.allocUnsafe(CHUNK));
  }

  recycle(chunk: Buffer): void {
    // A chunk is a view of a whole buffer of its own (a short read's is shorter).
    if (chunk.byteOffset !== 0 || chunk.buffer.byteLength !== CHUNK) return;
    if (this.#spares.length < SPARES) this.#spares.push(Buffer.from(chunk.buffer, 0, CHUNK));
  }
}

function* readChunks(fd: number, nextBuffer: () => Buffer): Generator<Buffer> {
  for (;;) {
    const buffer = nextBuffer();
    let n: number;
    for (;;) {
      try {
        n = readSync(fd, buffer, 0, CHUNK, null);
        break;
      } catch (e) {
        // A pipe whose description another process left non-blocking: wait for data briefly.
        if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
        Atomics.wait(waitCell, 0, 0, 1);
      }
    }
    if (n === 0) return;
    yield n === CHUNK ? buffer : buffer.subarray(0, n);
  }
}
