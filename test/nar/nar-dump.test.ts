import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { dumpNar, regularFileNar, writeNar } from "../../src/nar/nar-dump.ts";
import { FileChangedError, UnsupportedFileTypeError } from "../../src/nar/nar-error.ts";
import { directory, type NarToken, nar, regular, symlink } from "./hand-built-nar.ts";
import { dumpToBuffer } from "./nar-chunks.ts";
import { useTempDir } from "./temp-dir.ts";

const temp = useTempDir();

describe("dumpNar", () => {
  it("dumps a regular file like formats.md §6.1's example", async () => {
    const path = temp.fresh("hello");
    writeFileSync(path, "Hello World!");
    const dumped = await dumpToBuffer(path);
    expect(dumped.length).toBe(128);
    expect(dumped.equals(nar(regular("Hello World!")))).toBe(true);
  });

  it("records only the owner-execute bit", async () => {
    const path = temp.fresh("exec");
    for (const [mode, executable] of [
      [0o700, true],
      [0o744, true],
      [0o100, true],
      [0o655, false],
      [0o611, false],
    ] as const) {
      writeFileSync(path, "x");
      chmodSync(path, mode);
      expect((await dumpToBuffer(path)).equals(nar(regular("x", executable)))).toBe(true);
    }
    chmodSync(path, 0o644);
  });

  it("dumps symlinks without following them, and the root may be one", async () => {
    const path = temp.fresh("link");
    symlinkSync("/nix/store/somewhereelse", path);
    expect((await dumpToBuffer(path)).equals(nar(symlink("/nix/store/somewhereelse")))).toBe(true);
  });

  it("sorts entries by bytes, not by locale, and keeps non-UTF-8 names", async () => {
    const root = temp.fresh("dir");
    mkdirSync(root);
    const names = ["b", "B", "a", "é", "e\u0301", "10", "9", "_", ".dot"].map((n) =>
      Buffer.from(n),
    );
    names.push(Buffer.from([0xff, 0x41]));
    for (const name of names) writeFileSync(Buffer.concat([Buffer.from(`${root}/`), name]), name);
    mkdirSync(join(root, "sub"));
    symlinkSync("../b", join(root, "sub", "up"));
    const entries: [Buffer, NarToken[]][] = names.map((n) => [n, regular(n)]);
    entries.push([Buffer.from("sub"), directory([["up", symlink("../b")]])]);
    const expected = nar(directory(entries.sort((a, b) => Buffer.compare(a[0], b[0]))));
    expect((await dumpToBuffer(root)).equals(expected)).toBe(true);
    expect((await dumpToBuffer(Buffer.from(root))).equals(expected)).toBe(true);
  });

  it("dumps empty directories and empty files", async () => {
    const root = temp.fresh("empty");
    mkdirSync(root);
    mkdirSync(join(root, "d"));
    writeFileSync(join(root, "f"), "");
    expect(
      (await dumpToBuffer(root)).equals(
        nar(
          directory([
            ["d", directory([])],
            ["f", regular("")],
          ]),
        ),
      ),
    ).toBe(true);
  });

  it("streams large files in chunks instead of loading them whole", async () => {
    const path = temp.fresh("large");
    const contents = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < contents.length; i += 4096) contents[i] = i & 0xff;
    writeFileSync(path, contents);
    const sizes: number[] = [];
    const parts: Buffer[] = [];
    for await (const chunk of dumpNar(path)) {
      sizes.push(chunk.length);
      parts.push(chunk);
    }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(256 * 1024);
    expect(Buffer.concat(parts).equals(nar(regular(contents)))).toBe(true);
  });

  it("hands out buffers that are never overwritten later", async () => {
    const root = temp.fresh("many");
    mkdirSync(root);
    for (let i = 0; i < 1200; i++) writeFileSync(join(root, `f${i}`), `file ${i} `.repeat(20));
    const parts: Buffer[] = [];
    for await (const chunk of dumpNar(root)) parts.push(chunk); // kept without copying
    expect(Buffer.concat(parts).equals(await dumpToBuffer(root))).toBe(true);
    expect(parts.length).toBeGreaterThan(3);
  });

  it("with reuseBuffers, gives the same bytes from a few reused buffers", async () => {
    const root = temp.fresh("reuse");
    mkdirSync(root);
    const big = Buffer.alloc(700 * 1024 + 3);
    for (let i = 0; i < big.length; i += 511) big[i] = i & 0xff;
    writeFileSync(join(root, "big"), big);
    for (let i = 0; i < 500; i++) writeFileSync(join(root, `f${i}`), `file ${i} `.repeat(30));
    const copies: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for await (const chunk of dumpNar(root, { reuseBuffers: true })) {
      copies.push(Buffer.from(chunk)); // valid only until the next chunk: copied here
      buffers.add(chunk.buffer);
    }
    expect(Buffer.concat(copies).equals(await dumpToBuffer(root))).toBe(true);
    expect(copies.length).toBeGreaterThan(10);
    // The output buffer, the read buffer, and at most a few grown ones: not one per chunk.
    expect(buffers.size).toBeLessThanOrEqual(4);
  });

  it("lets timers run during a long dump (its file-system calls are synchronous)", async () => {
    const root = temp.fresh("long");
    mkdirSync(root);
    for (let i = 0; i < 4000; i++) writeFileSync(join(root, `f${i}`), "x");
    let ticks = 0;
    const interval = setInterval(() => ticks++, 1);
    const started = performance.now();
    try {
      for await (const _ of dumpNar(root));
    } finally {
      clearInterval(interval);
    }
    const elapsed = performance.now() - started;
    if (elapsed > 25) expect(ticks, `${elapsed} ms without a timer tick`).toBeGreaterThan(0);
  });

  it("refuses FIFOs and sockets naming the path", async () => {
    const root = temp.fresh("special");
    mkdirSync(root);
    const fifo = join(root, "fifo");
    const made = spawnSync("mkfifo", [fifo]);
    if (made.status === 0) {
      const error = await dumpToBuffer(root).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedFileTypeError);
      expect((error as UnsupportedFileTypeError).path.toString()).toBe(fifo);
      expect((error as Error).message).toMatch(/is a FIFO/);
    }
    const socketPath = temp.fresh("sock");
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      await expect(dumpToBuffer(socketPath)).rejects.toThrow(
        /is a socket.*regular files, symlinks and directories/,
      );
    } finally {
      server.close();
    }
  });

  it("closes files when the consumer stops early", async () => {
    const path = temp.fresh("early");
    writeFileSync(path, Buffer.alloc(2 * 1024 * 1024));
    const stream = dumpNar(path);
    await stream.next();
    await stream.return(undefined);
    // The fd was closed in a finally block; a leak would show as EMFILE over many runs.
    for (let i = 0; i < 50; i++) {
      const s = dumpNar(path);
      await s.next();
      await s.return(undefined);
    }
  });

  it("reports files that shrink while being read", async () => {
    const path = temp.fresh("shrink");
    writeFileSync(path, Buffer.alloc(1024 * 1024));
    const stream = dumpNar(path);
    await stream.next(); // the header, flushed before the contents are streamed
    truncateSync(path, 1000);
    const error = await (async () => {
      for await (const _ of stream);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileChangedError);
    expect((error as Error).message).toMatch(
      /changed while it was being archived: it ended after 1000 bytes/,
    );
  });

  it("propagates a missing path as the file-system error", async () => {
    await expect(dumpToBuffer(temp.fresh("missing"))).rejects.toThrow(/ENOENT/);
  });
});

describe("writeNar", () => {
  it("writes with backpressure and does not end the stream", async () => {
    const root = temp.fresh("w");
    mkdirSync(root);
    writeFileSync(join(root, "big"), Buffer.alloc(1024 * 1024, 7));
    const received: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk, _encoding, callback) {
        received.push(Buffer.from(chunk));
        setImmediate(callback);
      },
    });
    const size = await writeNar(root, slow);
    expect(slow.writableEnded).toBe(false);
    const expected = await dumpToBuffer(root);
    expect(size).toBe(expected.length);
    await new Promise<void>((resolve) => slow.end(resolve));
    expect(Buffer.concat(received).equals(expected)).toBe(true);
  });

  it("fails instead of hanging when the output closes", async () => {
    const path = temp.fresh("closed");
    writeFileSync(path, Buffer.alloc(1024 * 1024));
    const output = new PassThrough({ highWaterMark: 16 });
    setTimeout(() => output.destroy(), 10);
    await expect(writeNar(path, output)).rejects.toThrow(/closed|destroyed/);
  });
});

describe("regularFileNar", () => {
  it("equals the dump of the same file", async () => {
    for (const [contents, executable] of [
      ["", false],
      ["x", true],
      ["exactly8", false],
      ["hello from builtins.toFile\n", false],
    ] as const) {
      const path = temp.fresh("mem");
      writeFileSync(path, contents);
      chmodSync(path, executable ? 0o755 : 0o644);
      const parts = regularFileNar(Buffer.from(contents), executable);
      expect(Buffer.concat(parts).equals(await dumpToBuffer(path))).toBe(true);
    }
  });

  it("does not copy the contents", () => {
    const contents = Buffer.from("shared");
    expect(regularFileNar(contents)[1]!.buffer).toBe(contents.buffer);
  });
});
