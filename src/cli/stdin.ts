import type { ByteSource } from "../io/byte-reader.ts";
import { fdChunks, readsBlocking } from "../io/fd-chunks.ts";

/**
 * Standard input as a chunk source for a command whose only input it is: blocking reads when it
 * is a file or a pipe (no turn of the event loop between chunks), else Node's stream.
 */
export function stdinSource(): ByteSource {
  return readsBlocking(0) ? fdChunks(0) : process.stdin;
}
