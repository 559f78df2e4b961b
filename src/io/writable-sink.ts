// Writing a chunk stream into a Writable with backpressure, without ending the Writable (the
// serve protocol keeps writing to the same stdout after a NAR).

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
