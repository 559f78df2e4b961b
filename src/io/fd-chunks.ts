// Reading a descriptor with blocking reads, as a synchronous chunk source (ByteReader takes
// one): for a command whose only input this is, where waiting on the event loop for each of
// libuv's reads left `nar restore` idle ~0.3 s of its 1.7 (BENCHMARKS.md, NAR throughput).
import { fstatSync, readSync } from "node:fs";

const CHUNK = 256 * 1024;
const waitCell = new Int32Array(new SharedArrayBuffer(4));

/** Whether `fd` is a file or a pipe, which blocking reads suit (not a terminal or socket). */
export function readsBlocking(fd: number): boolean {
  const st = fstatSync(fd);
  return st.isFile() || st.isFIFO();
}

/** The bytes of `fd` until its end, in fresh buffers (a ByteReader may keep them). */
export function* fdChunks(fd: number): Generator<Buffer> {
  for (;;) {
    const buffer = Buffer.allocUnsafe(CHUNK);
    let n: number;
    try {
      n = readSync(fd, buffer, 0, CHUNK, null);
    } catch (e) {
      // A pipe whose description another process left non-blocking: wait for data briefly.
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(waitCell, 0, 0, 1);
      continue;
    }
    if (n === 0) return;
    yield n === CHUNK ? buffer : buffer.subarray(0, n);
  }
}
