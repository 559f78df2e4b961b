// Writing a chunk stream into a Writable with backpressure, without ending the Writable (the
// serve protocol keeps writing to the same stdout after a NAR).

import { writeSync } from "node:fs";
import type { Writable } from "node:stream";

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
 * Write every chunk to file descriptor `fd` with blocking writes, each done before the next chunk
 * is asked for (so the chunks' buffers may be reused): for a command whose only output this is,
 * where a stream's queue and callbacks cost more than the writing. A descriptor left non-blocking
 * (EAGAIN) is waited on. Returns the byte count.
 */
export async function writeChunksToFd(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  fd: number,
): Promise<number> {
  let size = 0;
  for await (const chunk of chunks) {
    for (let done = 0; done < chunk.length; ) {
      try {
        done += writeSync(fd, chunk, done, chunk.length - done);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
        Atomics.wait(waitCell, 0, 0, 1);
      }
    }
    size += chunk.length;
  }
  return size;
}
