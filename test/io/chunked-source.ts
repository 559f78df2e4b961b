// Byte sources that deliver a buffer in awkward pieces, to test chunk-boundary handling.
import type { RecyclingSource } from "../../src/io/byte-reader.ts";

/** `bytes` split at the given sizes (cycled), delivered asynchronously. */
export async function* inChunks(bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let offset = 0;
  for (let i = 0; offset < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length] ?? 1);
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

/** One byte per chunk: every read crosses chunk boundaries. */
export function oneByteAtATime(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  return inChunks(bytes, [1]);
}

/** A source that records how many chunks were pulled from it. */
export function countingSource(chunks: Uint8Array[]): {
  source: AsyncIterable<Uint8Array>;
  pulled: () => number;
} {
  let pulled = 0;
  return {
    source: {
      async *[Symbol.asyncIterator]() {
        for (const chunk of chunks) {
          pulled++;
          yield chunk;
        }
      },
    },
    pulled: () => pulled,
  };
}

/**
 * A RecyclingSource delivering `bytes` in pieces of the given sizes (cycled) inside buffers it
 * fills again once given back, scribbling over each given-back buffer first, so a reader that
 * kept a view of one would see the damage.
 */
export function scribblingSource(
  bytes: Uint8Array,
  sizes: number[],
): { source: RecyclingSource; recycled: () => number } {
  const capacity = Math.max(1, ...sizes);
  const spares: Buffer[] = [];
  let recycled = 0;
  const source: RecyclingSource = {
    *[Symbol.iterator]() {
      let offset = 0;
      for (let i = 0; offset < bytes.length; i++) {
        const size = Math.min(Math.max(1, sizes[i % sizes.length] ?? 1), bytes.length - offset);
        const buffer = spares.pop() ?? Buffer.alloc(capacity);
        buffer.set(bytes.subarray(offset, offset + size));
        offset += size;
        yield buffer.subarray(0, size);
      }
    },
    recycle(chunk) {
      recycled++;
      const whole = Buffer.from(chunk.buffer, chunk.byteOffset, capacity);
      whole.fill(0xaa);
      spares.push(whole);
    },
  };
  return { source, recycled: () => recycled };
}
