import type { ByteSource } from "../io/byte-reader.ts";
import { RecycledFdChunks, readsBlocking } from "../io/fd-chunks.ts";

/**
 * Standard input as a chunk source for a command whose only input it is: blocking reads when it
 * is a file or a pipe (no turn of the event loop between chunks), into buffers the reader gives
 * back, else Node's stream.
 */
export function stdinSource(): ByteSource {
  return readsBlocking(0) ? new RecycledFdChunks(0) : process.stdin;
}
