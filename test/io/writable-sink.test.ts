// The reply sinks of a protocol server: whatever pieces go in, the same bytes come out in order,
// as few writes (small pieces gathered, large ones on their own), and the file-descriptor sink
// is done with each piece when `write` returns (its caller may reuse the buffer).

import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { CoalescingSink, FdSink, writeChunksToFd } from "../../src/io/writable-sink.ts";

const KIB = 1024;

/** A Writable recording each write it gets. */
function recorder(): { stream: Writable; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      writes.push(Buffer.from(chunk));
      done();
    },
  });
  return { stream, writes };
}

/** Pieces of random sizes, some above the 64 KiB a sink gathers, filled with their index. */
const pieces = fc
  .array(
    fc.oneof(fc.integer({ min: 0, max: 3 * KIB }), fc.integer({ min: 60 * KIB, max: 200 * KIB })),
    {
      maxLength: 40,
    },
  )
  .map((sizes) => sizes.map((n, i) => Buffer.alloc(n, i % 251)));

describe("CoalescingSink", () => {
  it("writes the same bytes, small pieces gathered into writes of at least 64 KiB", async () => {
    await fc.assert(
      fc.asyncProperty(pieces, async (chunks) => {
        const { stream, writes } = recorder();
        const sink = new CoalescingSink(stream);
        expect(await sink.writeAll(chunks)).toBe(chunks.reduce((n, c) => n + c.length, 0));
        await sink.flush();
        expect(Buffer.concat(writes).equals(Buffer.concat(chunks))).toBe(true);
        // Only a large piece, or what was pending before it or at the flush, is written short.
        const large = chunks.filter((c) => c.length >= 64 * KIB).length;
        const short = writes.filter((w) => w.length < 64 * KIB).length;
        expect(short).toBeLessThanOrEqual(large + 1);
        expect(writes.every((w) => w.length > 0)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it("sends a reply of small pieces as one write", async () => {
    const { stream, writes } = recorder();
    const sink = new CoalescingSink(stream);
    for (const text of ["status", "path", "references"]) await sink.write(Buffer.from(text));
    expect(writes).toHaveLength(0);
    await sink.flush();
    expect(writes.map(String)).toEqual(["statuspathreferences"]);
  });
});

describe("FdSink", () => {
  const dir = mkdtempSync(join(tmpdir(), "nixstate-fd-sink-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  it("writes the same bytes though every piece's buffer is overwritten once written", async () => {
    await fc.assert(
      fc.asyncProperty(pieces, async (chunks) => {
        const file = join(dir, `out-${n++}`);
        const fd = openSync(file, "w");
        const sink = new FdSink(fd);
        const reused = Buffer.alloc(200 * KIB);
        for (const c of chunks) {
          c.copy(reused);
          await sink.write(reused.subarray(0, c.length));
          reused.fill(0xff);
        }
        await sink.flush();
        closeSync(fd);
        expect(readFileSync(file).equals(Buffer.concat(chunks))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});

describe("writeChunksToFd", () => {
  it("delivers every byte in order into a pipe, though each buffer is reused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nixstate-fd-pipe-"));
    try {
      const fifo = join(dir, "fifo");
      expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
      const reader = spawn("sh", ["-c", `cat '${fifo}' > '${join(dir, "out")}'`]);
      const exited = once(reader, "exit");
      // Read-write: opening never blocks, even if the reader were slow to open its end.
      const fd = openSync(fifo, constants.O_RDWR);
      const sizes = [1, 32 * KIB, 32 * KIB + 1, 64 * KIB, 200 * KIB, 7, 1024 * KIB];
      const reused = Buffer.alloc(1024 * KIB);
      const expected = sizes.map((n, i) => Buffer.alloc(n, i + 1));
      async function* chunks() {
        for (const c of expected) {
          c.copy(reused);
          yield reused.subarray(0, c.length);
          reused.fill(0xff);
        }
      }
      expect(await writeChunksToFd(chunks(), fd)).toBe(sizes.reduce((a, b) => a + b, 0));
      closeSync(fd);
      await exited;
      expect(readFileSync(join(dir, "out")).equals(Buffer.concat(expected))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
