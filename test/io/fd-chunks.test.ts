// Blocking reads of a descriptor as a chunk source: every byte, in order, from a file or a pipe.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { RecycledFdChunks, readsBlocking } from "../../src/io/fd-chunks.ts";

const dir = mkdtempSync(join(tmpdir(), "nixstate-fd-chunks-"));

describe("RecycledFdChunks", () => {
  test.prop([fc.uint8Array({ maxLength: 700_000 })], { numRuns: 20 })(
    "reads a file whole, in chunks it may keep",
    (bytes) => {
      const file = join(dir, "f");
      writeFileSync(file, bytes);
      const fd = openSync(file, "r");
      try {
        expect(readsBlocking(fd)).toBe(true);
        const chunks = [...new RecycledFdChunks(fd)]; // none given back: all fresh
        expect(Buffer.concat(chunks).equals(Buffer.from(bytes))).toBe(true);
        // Fresh buffers: no two chunks share memory.
        expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
      } finally {
        closeSync(fd);
      }
    },
  );

  test.prop([fc.uint8Array({ maxLength: 1_500_000 })], { numRuns: 20 })(
    "reads a file whole into buffers a ByteReader gives back",
    async (bytes) => {
      const file = join(dir, "r");
      writeFileSync(file, bytes);
      const fd = openSync(file, "r");
      try {
        const source = new RecycledFdChunks(fd);
        const reader = new ByteReader(source);
        const got: Buffer[] = [];
        const memory = new Set<ArrayBufferLike>();
        for await (const chunk of reader.readChunks(bytes.length)) {
          memory.add(chunk.buffer);
          got.push(Buffer.from(chunk)); // a piece is valid until the next one
        }
        expect(await reader.atEnd()).toBe(true);
        expect(Buffer.concat(got).equals(Buffer.from(bytes))).toBe(true);
        // 256 KiB chunks: beyond two of them, buffers are filled again, not allocated anew.
        if (bytes.length > 3 * 256 * 1024) expect(memory.size).toBeLessThan(got.length);
      } finally {
        closeSync(fd);
      }
    },
  );

  it("reads a pipe until the writer closes it", async () => {
    const child = spawn("sh", ["-c", "head -c 1000000 /dev/zero; sleep 0.1; printf end"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const fd = (child.stdout as unknown as { _handle: { fd: number } })._handle.fd;
    child.stdout.pause();
    const got = Buffer.concat([...new RecycledFdChunks(fd)]);
    expect(got.length).toBe(1_000_003);
    expect(got.subarray(-3).toString()).toBe("end");
  });
});
