import { createReadStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { ByteWriter, encodeString, encodeU64 } from "../../src/io/byte-writer.ts";
import {
  NonZeroPaddingError,
  UnexpectedEndError,
  ValueTooLargeError,
} from "../../src/io/read-errors.ts";
import { countingSource, inChunks, oneByteAtATime, scribblingSource } from "./chunked-source.ts";

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** A message of several wire items, and a reader-driven decoder for it. */
function sampleMessage(): Buffer {
  return new ByteWriter()
    .u64(7)
    .string("hello")
    .string("")
    .string("exactly8")
    .u64(Number.MAX_SAFE_INTEGER)
    .bytes(Buffer.from("raw-bytes-1234567890"))
    .string(Buffer.from([0, 1, 2, 0xff]))
    .take();
}

async function decodeSample(reader: ByteReader) {
  return {
    a: await reader.readU64(),
    b: (await reader.readString(100)).toString(),
    c: (await reader.readString(100)).toString(),
    d: (await reader.readString(100)).toString(),
    e: await reader.readU64(),
    f: (await collect(reader.readChunks(20))).toString(),
    g: [...(await reader.readString(10))],
    end: await reader.atEnd(),
    offset: reader.offset,
  };
}

/** decodeSample without the end check: returns the offset after the sample. */
async function decodeSampleWithoutEnd(reader: ByteReader): Promise<number> {
  await reader.readU64();
  for (let i = 0; i < 3; i++) await reader.readString(100);
  await reader.readU64();
  await reader.skip(20);
  await reader.readString(10);
  return reader.offset;
}

const expectedSample = {
  a: 7,
  b: "hello",
  c: "",
  d: "exactly8",
  e: Number.MAX_SAFE_INTEGER,
  f: "raw-bytes-1234567890",
  g: [0, 1, 2, 0xff],
  end: true,
};

describe("ByteReader", () => {
  it("decodes wire items from a single chunk", async () => {
    const message = sampleMessage();
    expect(await decodeSample(ByteReader.from(message))).toEqual({
      ...expectedSample,
      offset: message.length,
    });
  });

  it("decodes the same when fed one byte at a time", async () => {
    const message = sampleMessage();
    expect(await decodeSample(new ByteReader(oneByteAtATime(message)))).toEqual({
      ...expectedSample,
      offset: message.length,
    });
  });

  it("decodes the same with a chunk boundary at every position", async () => {
    const message = sampleMessage();
    for (let cut = 1; cut < message.length; cut++) {
      const source = [message.subarray(0, cut), message.subarray(cut)];
      expect(await decodeSample(new ByteReader(source))).toEqual({
        ...expectedSample,
        offset: message.length,
      });
    }
  });

  it("decodes the same for random chunk sizes (property)", async () => {
    const message = sampleMessage();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1 }),
        async (sizes) => {
          const decoded = await decodeSample(new ByteReader(inChunks(message, sizes)));
          expect(decoded).toEqual({ ...expectedSample, offset: message.length });
        },
      ),
    );
  });

  it("from a source that refills its buffers, hands out values that stay intact (property)", async () => {
    const message = sampleMessage();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1 }),
        async (sizes) => {
          const { source, recycled } = scribblingSource(message, sizes);
          const { end: _, ...withoutEnd } = expectedSample;
          const reader = new ByteReader(source);
          // Values kept as Buffers and only read at the end, after later reads refilled buffers;
          // streamed pieces copied as they come (they are only valid until the next).
          const kept = {
            a: await reader.readU64(),
            b: await reader.readString(100),
            c: await reader.readString(100),
            d: reader.tryReadString(100) ?? (await reader.readString(100)),
            e: await reader.readU64(),
            f: [] as Buffer[],
            g: Buffer.alloc(0) as Buffer,
          };
          for await (const piece of reader.readChunks(20)) kept.f.push(Buffer.from(piece));
          kept.g = await reader.readString(10);
          expect(await reader.atEnd()).toBe(true);
          expect({
            ...kept,
            b: kept.b.toString(),
            c: kept.c.toString(),
            d: kept.d.toString(),
            f: Buffer.concat(kept.f).toString(),
            g: [...kept.g],
          }).toEqual(withoutEnd);
          // Every buffer but the last went back to the source.
          if (message.length > Math.max(...sizes)) expect(recycled()).toBeGreaterThan(0);
        },
      ),
    );
  });

  it("keeps unread bytes that were a view of a chunk given back", async () => {
    const { source } = scribblingSource(Buffer.from("0123456789abcdef"), [8]);
    const reader = new ByteReader(source);
    await reader.atEnd(); // pulls the first chunk
    reader.unread(reader.tryReadView(8)!); // a view, its chunk consumed whole
    expect((await reader.readExact(16)).toString()).toBe("0123456789abcdef");
  });

  it("gives back no chunk it handed over (takeBuffered) or that was unread", async () => {
    const message = sampleMessage();
    const { source, recycled } = scribblingSource(message, [16]);
    const reader = new ByteReader(source);
    const first = await reader.readExact(4);
    reader.unread(first);
    await reader.readExact(6);
    const handed = reader.takeBuffered();
    const before = Buffer.concat(handed);
    await reader.readExact(16); // a chunk consumed whole: given back at the next pull
    expect(recycled()).toBe(0);
    await reader.readExact(1);
    expect(Buffer.concat(handed).equals(before)).toBe(true);
    expect(recycled()).toBe(1);
  });

  it("tryReadView and tryReadPadding take only what the current chunk holds (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 2, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1 }),
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 8 }),
        async (bytes, sizes, wants) => {
          const reader = new ByteReader(inChunks(bytes, sizes));
          const tapped: Buffer[] = [];
          reader.tap = (b) => tapped.push(Buffer.from(b));
          await reader.readExact(1); // pulls the first chunk
          for (const n of wants) {
            const at = reader.offset;
            const inChunk = reader.bufferedLength; // one chunk is buffered at most here
            const view = reader.tryReadView(n);
            if (n <= inChunk) {
              expect(view && Buffer.from(bytes.subarray(at, at + n)).equals(view)).toBe(true);
              expect(reader.offset).toBe(at + n);
            } else {
              expect(view).toBeUndefined();
              expect(reader.offset).toBe(at);
            }
            const pad = (8 - (n % 8)) % 8;
            const zeros = bytes.subarray(reader.offset, reader.offset + pad).every((b) => b === 0);
            const before = reader.offset;
            const fits = pad <= reader.bufferedLength;
            const took = reader.tryReadPadding(n);
            expect(took).toBe(pad === 0 || (fits && zeros));
            expect(reader.offset).toBe(took ? before + pad : before);
          }
          // The tap saw every consumed byte, in order.
          expect(Buffer.concat(tapped).equals(Buffer.from(bytes.subarray(0, reader.offset)))).toBe(
            true,
          );
        },
      ),
    );
  });

  it("readExact returns views within a chunk and copies across chunks", async () => {
    const a = Buffer.from("abcdef");
    const b = Buffer.from("ghij");
    const reader = new ByteReader([a, b]);
    const first = await reader.readExact(3);
    expect(first.buffer).toBe(a.buffer);
    expect((await reader.readExact(5)).toString()).toBe("defgh");
    expect((await reader.readExact(0)).length).toBe(0);
    expect(reader.offset).toBe(8);
    expect(reader.bufferedLength).toBe(2);
  });

  it("accepts plain Uint8Arrays and sync iterables", async () => {
    const reader = new ByteReader([new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])]);
    expect(await reader.readU64()).toBe(1);
  });

  it("rejects string chunks with a helpful TypeError", async () => {
    const reader = new ByteReader(["oops" as unknown as Uint8Array]);
    await expect(reader.readExact(1)).rejects.toThrow(/encoding/);
  });

  it("reports truncation with the offset and what was expected", async () => {
    const reader = ByteReader.from(Buffer.concat([encodeU64(1), Buffer.from([1, 2, 3])]));
    await reader.readU64();
    const error = await reader.readU64(undefined, "file size").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedEndError);
    const end = error as UnexpectedEndError;
    expect(end.offset).toBe(8);
    expect(end.endOffset).toBe(11);
    expect(end.missing).toBe(5);
    expect(end.message).toMatch(/file size starting at byte 8/);
    expect(end.message).toMatch(/input at byte 11/);
  });

  it("reports truncation inside a string, its padding and a chunk run", async () => {
    const full = encodeString("hello");
    for (let cut = 0; cut < full.length; cut++) {
      const reader = ByteReader.from(full.subarray(0, cut));
      await expect(reader.readString(100, "name")).rejects.toBeInstanceOf(UnexpectedEndError);
    }
    const reader = ByteReader.from(Buffer.from("abc"));
    await expect(collect(reader.readChunks(10, "contents"))).rejects.toThrow(
      /contents starting at byte 0 needs 7 more bytes/,
    );
    await expect(ByteReader.from(Buffer.from("abc")).skip(4)).rejects.toBeInstanceOf(
      UnexpectedEndError,
    );
  });

  it("refuses u64 values above the limit or above 2^53 - 1 without allocating", async () => {
    const huge = Buffer.alloc(8, 0xff);
    const error = await ByteReader.from(huge)
      .readU64()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValueTooLargeError);
    expect((error as ValueTooLargeError).value).toBe(2n ** 64n - 1n);
    // 2^53, one above Number.MAX_SAFE_INTEGER
    const twoPow53 = Buffer.from("0000000000002000", "hex");
    await expect(ByteReader.from(twoPow53).readU64()).rejects.toBeInstanceOf(ValueTooLargeError);
    await expect(ByteReader.from(encodeU64(11)).readU64(10, "count")).rejects.toThrow(
      /count at byte 0 is 11, more than the allowed 10/,
    );
    await expect(ByteReader.from(huge).readString(1000)).rejects.toBeInstanceOf(ValueTooLargeError);
    expect(await ByteReader.from(huge).readU64BigInt()).toBe(2n ** 64n - 1n);
  });

  it("checks that padding is zero", async () => {
    const bad = Buffer.concat([encodeU64(1), Buffer.from([0x78, 0, 0, 1, 0, 0, 0, 0])]);
    const error = await ByteReader.from(bad)
      .readString(10)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonZeroPaddingError);
    expect((error as NonZeroPaddingError).offset).toBe(11);
    const reader = ByteReader.from(Buffer.from([1, 2, 3, 0, 0, 0, 0, 0]));
    await reader.readExact(3);
    await reader.readPadding(3);
    expect(await reader.atEnd()).toBe(true);
    const reader2 = ByteReader.from(Buffer.from([1, 2, 3, 0, 0, 9, 0, 0]));
    await reader2.readExact(3);
    await expect(reader2.readPadding(3)).rejects.toBeInstanceOf(NonZeroPaddingError);
  });

  it("tryReadString reads only strings that are fully buffered in one chunk", async () => {
    const a = encodeString("abc");
    const b = encodeString("defghijkl");
    const reader = new ByteReader([Buffer.concat([a, b.subarray(0, 10)]), b.subarray(10)]);
    const tapped: Buffer[] = [];
    reader.tap = (bytes) => tapped.push(Buffer.from(bytes));
    expect(reader.tryReadString(10)).toBeUndefined(); // nothing pulled yet
    expect(await reader.atEnd()).toBe(false);
    expect(reader.tryReadString(10)?.toString()).toBe("abc");
    expect(reader.tryReadString(10)).toBeUndefined(); // split across chunks
    expect(reader.offset).toBe(16);
    expect((await reader.readString(10)).toString()).toBe("defghijkl");
    expect(Buffer.concat(tapped).equals(Buffer.concat([a, b]))).toBe(true);
    // Errors are left to readString: too long, or bad padding.
    const long = ByteReader.from(encodeString("abcdef"));
    await long.atEnd();
    expect(long.tryReadString(5)).toBeUndefined();
    await expect(long.readString(5)).rejects.toBeInstanceOf(ValueTooLargeError);
    const padded = ByteReader.from(Buffer.concat([encodeU64(1), Buffer.from("x\0\0\0\0\0\0\x01")]));
    await padded.atEnd();
    expect(padded.tryReadString(5)).toBeUndefined();
    await expect(padded.readString(5)).rejects.toBeInstanceOf(NonZeroPaddingError);
  });

  it("streams a long run chunk by chunk without copying", async () => {
    const chunks = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(1000, 3)];
    const reader = new ByteReader(chunks);
    await reader.readExact(10);
    const seen: Buffer[] = [];
    for await (const piece of reader.readChunks(2500)) seen.push(piece);
    expect(seen.map((b) => b.length)).toEqual([990, 1000, 510]);
    expect(seen[1]!.buffer).toBe(chunks[1]!.buffer);
    expect(reader.offset).toBe(2510);
    expect(reader.bufferedLength).toBe(490);
  });

  it("stays consistent when a chunk run is abandoned", async () => {
    const reader = new ByteReader([Buffer.from("abc"), Buffer.from("defg")]);
    for await (const piece of reader.readChunks(6)) {
      expect(piece.toString()).toBe("abc");
      break;
    }
    expect(reader.offset).toBe(3);
    expect((await reader.readExact(4)).toString()).toBe("defg");
  });

  it("pulls no more chunks than a read needs", async () => {
    const { source, pulled } = countingSource([
      Buffer.from("aaaa"),
      Buffer.from("bbbb"),
      Buffer.from("cccc"),
      Buffer.from("dddd"),
    ]);
    const reader = new ByteReader(source);
    await reader.readExact(5);
    expect(pulled()).toBe(2);
    await reader.readExact(3);
    expect(pulled()).toBe(2);
    await reader.skip(1);
    expect(pulled()).toBe(3);
    expect(reader.bufferedLength).toBe(3);
  });

  it("hands unconsumed bytes to the next consumer (takeBuffered, rest, unread)", async () => {
    const data = Buffer.from("0123456789abcdefghij");
    for (const source of [
      [data],
      [...oneByteAtATimeSync(data)],
      [data.subarray(0, 7), data.subarray(7)],
    ]) {
      const reader = new ByteReader(source);
      expect((await reader.readExact(5)).toString()).toBe("01234");
      const head = await reader.readExact(2);
      reader.unread(head);
      expect(reader.offset).toBe(5);
      expect((await collect(reader.rest())).toString()).toBe("56789abcdefghij");
      expect(reader.offset).toBe(20);
      expect(await reader.atEnd()).toBe(true);
    }
    const reader = new ByteReader([Buffer.from("abc"), Buffer.from("def")]);
    await reader.readExact(1);
    expect(Buffer.concat(reader.takeBuffered()).toString()).toBe("bc");
    expect(reader.offset).toBe(3);
    expect(() => reader.unread(Buffer.alloc(4))).toThrow(RangeError);
  });

  it("taps every consumed byte exactly once", async () => {
    const message = sampleMessage();
    const tapped: Buffer[] = [];
    const reader = new ByteReader(inChunks(message, [3, 5, 1, 11]));
    reader.tap = (b) => tapped.push(Buffer.from(b));
    await decodeSample(reader);
    expect(Buffer.concat(tapped).equals(message)).toBe(true);
  });

  it("close stops the source", async () => {
    let finished = false;
    async function* source() {
      try {
        yield Buffer.from("abc");
        yield Buffer.from("def");
      } finally {
        finished = true;
      }
    }
    const reader = new ByteReader(source());
    await reader.readExact(1);
    await reader.close();
    expect(finished).toBe(true);
    expect(await reader.atEnd()).toBe(false);
    await reader.readExact(2);
    expect(await reader.atEnd()).toBe(true);
  });

  it("reads a Node Readable and hands the rest of the stream on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nixstate-io-"));
    try {
      const file = join(dir, "message");
      const message = sampleMessage();
      const trailer = Buffer.alloc(100_000, 5);
      writeFileSync(file, Buffer.concat([message, trailer]));
      const reader = new ByteReader(createReadStream(file, { highWaterMark: 7 }));
      expect(await decodeSampleWithoutEnd(reader)).toBe(message.length);
      expect((await collect(reader.rest())).equals(trailer)).toBe(true);
      const fromReadable = new ByteReader(
        Readable.from([message.subarray(0, 9), message.subarray(9)]),
      );
      expect(await decodeSampleWithoutEnd(fromReadable)).toBe(message.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("propagates source errors unchanged", async () => {
    async function* failing() {
      yield Buffer.from("ab");
      throw new Error("disk on fire");
    }
    const reader = new ByteReader(failing());
    await expect(reader.readExact(3)).rejects.toThrow("disk on fire");
  });
});

function* oneByteAtATimeSync(bytes: Buffer): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
}

describe("ByteWriter", () => {
  it("encodes u64 and padded strings like Nix", () => {
    expect(encodeU64(0x0102030405).toString("hex")).toBe("0504030201000000");
    expect(encodeU64(Number.MAX_SAFE_INTEGER).toString("hex")).toBe("ffffffffffff1f00");
    expect(encodeString("(").toString("hex")).toBe(`0100000000000000${"28"}${"00".repeat(7)}`);
    expect(encodeString("").toString("hex")).toBe("0000000000000000");
    expect(encodeString("exactly8").length).toBe(16);
    expect(() => encodeU64(-1)).toThrow(RangeError);
    expect(() => encodeU64(1.5)).toThrow(RangeError);
    expect(() => encodeU64(2 ** 53)).toThrow(RangeError);
  });

  it("grows, hands out fresh buffers and fills allocations in place", () => {
    const writer = new ByteWriter(4);
    writer.u64(1).string("abcdefghij");
    const first = writer.take();
    expect(first.length).toBe(8 + 8 + 16);
    const view = writer.allocate(3);
    view.write("xyz");
    writer.padding(3);
    const second = writer.take();
    expect(second.toString("latin1")).toBe("xyz\0\0\0\0\0");
    expect(first.readUInt32LE(0)).toBe(1);
  });

  it("round-trips through ByteReader (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant("u64" as const), value: fc.maxSafeNat() }),
            fc.record({
              kind: fc.constant("string" as const),
              value: fc.uint8Array({ maxLength: 30 }),
            }),
          ),
        ),
        fc.array(fc.integer({ min: 1, max: 13 }), { minLength: 1 }),
        async (items, sizes) => {
          const writer = new ByteWriter(16);
          for (const item of items) {
            if (item.kind === "u64") writer.u64(item.value);
            else writer.string(item.value);
          }
          const reader = new ByteReader(inChunks(writer.take(), sizes));
          for (const item of items) {
            if (item.kind === "u64") expect(await reader.readU64()).toBe(item.value);
            else expect([...(await reader.readString(30))]).toEqual([...item.value]);
          }
          expect(await reader.atEnd()).toBe(true);
        },
      ),
    );
  });
});
