import { once } from "node:events";

/** Write bytes to stdout and wait until they are flushed (stdout may be a pipe). */
export async function writeStdout(data: Uint8Array | string): Promise<void> {
  if (!process.stdout.write(data)) await once(process.stdout, "drain");
}
