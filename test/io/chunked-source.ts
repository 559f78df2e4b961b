// Byte sources that deliver a buffer in awkward pieces, to test chunk-boundary handling.

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
