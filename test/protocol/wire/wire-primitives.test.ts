// The shared primitives: exact layouts from serve-protocol.md §2, the limits that keep hostile
// lengths from allocating, and ProtocolError's codes and absolute offsets.

import { describe, expect, it } from "vitest";
import { Hash } from "../../../src/hash/hash.ts";
import { ByteReader } from "../../../src/io/byte-reader.ts";
import { regularFileNar } from "../../../src/nar/nar-dump.ts";
import { ProtocolError } from "../../../src/protocol/wire/protocol-error.ts";
import { WireDecoder } from "../../../src/protocol/wire/wire-decoder.ts";
import { readSizedNar } from "../../../src/protocol/wire/wire-nar.ts";
import { WireValueError } from "../../../src/protocol/wire/wire-value-error.ts";
import { StoreDir } from "../../../src/store-path/store-path.ts";
import { decodeAll, decoderOver, encode, storeDir } from "../wire-harness.ts";

const FOO = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo";
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

async function failure(bytes: Uint8Array, read: (d: WireDecoder) => Promise<unknown>) {
  const error = await read(decoderOver(bytes)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProtocolError);
  return error as ProtocolError;
}

describe("wire layouts", () => {
  it("writes strings, lists and sets as the spec's examples", () => {
    expect(encode((e) => e.string("hi")).toString("hex")).toBe(
      "0200000000000000" + "6869000000000000",
    );
    expect(encode((e) => e.string(""))).toEqual(Buffer.alloc(8));
    expect(encode((e) => e.stringList(["", "foo"])).toString("hex")).toBe(
      "0200000000000000" + "0000000000000000" + "0300000000000000" + "666f6f0000000000",
    );
  });

  it("sorts sets byte-wise and drops duplicates", async () => {
    const bytes = encode((e) => e.stringSet(["é", "z", "a", "z", "Z"]));
    expect(await decodeAll(bytes, (d) => d.stringList("list"))).toEqual(["Z", "a", "z", "é"]);
  });

  it("keeps bytes that are not UTF-8 through a round trip", async () => {
    const raw = Buffer.from([0x63, 0xc5, 0xc4, 0xd6, 0xff, 0x00]);
    const text = await decodeAll(
      encode((e) => e.string(raw)),
      (d) => d.string("s"),
    );
    expect(encode((e) => e.string(text))).toEqual(encode((e) => e.string(raw)));
  });

  it("reads Nix's ints as 32 bits and any non-zero bool as true", async () => {
    expect(await decodeAll(u64(2n), (d) => d.bool("flag"))).toBe(true);
    const error = await failure(u64(2n ** 32n), (d) => d.uint("maxSilentTime"));
    expect(error).toMatchObject({ code: "too-large", offset: 0, expected: "maxSilentTime" });
    expect(() => encode((e) => e.uint(2 ** 32, "maxSilentTime"))).toThrow(WireValueError);
  });
});

describe("hostile input", () => {
  it("refuses a length above the limit before waiting for its bytes", async () => {
    const bytes = Buffer.concat([u64(0n), u64(2n ** 40n)]);
    const error = await failure(bytes, async (d) => {
      await d.u64("first");
      return d.string("errorMsg");
    });
    expect(error).toMatchObject({ code: "too-large", offset: 8 });
    expect(error.message).toMatch(/errorMsg/);
  });

  it("refuses counts above the limit, and reports truncation inside a long list", async () => {
    expect(await failure(u64(2n ** 62n), (d) => d.stringList("args"))).toMatchObject({
      code: "too-large",
    });
    const truncated = await failure(u64(1000n), (d) => d.stringList("args"));
    expect(truncated).toMatchObject({ code: "truncated", offset: 8 });
  });

  it("refuses non-zero padding at the padding byte's offset", async () => {
    const bytes = encode((e) => e.string("hi"));
    bytes[13] = 1;
    expect(await failure(bytes, (d) => d.string("s"))).toMatchObject({
      code: "non-zero-padding",
      offset: 13,
    });
  });

  it("gives absolute offsets for truncation anywhere", async () => {
    const bytes = encode((e) => e.u64(7).string("white rabbit"));
    const error = await failure(bytes.subarray(0, 20), async (d) => {
      await d.u64("n");
      return d.string("name");
    });
    // The body of the string starts at 16 (its length, at 8, arrived whole).
    expect(error).toMatchObject({ code: "truncated", offset: 16 });
    expect(error.message).toMatch(/unexpected end of input at byte 20/);
  });

  it("lets errors of the transport itself through unchanged", async () => {
    const broken = new Error("connection reset");
    const source = (async function* () {
      yield u64(1n);
      throw broken;
    })();
    const d = new WireDecoder(new ByteReader(source), storeDir);
    await expect(d.stringList("paths")).rejects.toBe(broken);
  });
});

describe("store paths", () => {
  it("accepts canonical paths in the store dir; '' only where optional", async () => {
    expect(
      await decodeAll(
        encode((e) => e.string(FOO)),
        (d) => d.storePath("p"),
      ),
    ).toBe(FOO);
    expect(
      await decodeAll(
        encode((e) => e.string("")),
        (d) => d.optionalStorePath("p"),
      ),
    ).toBe(undefined);
    expect(
      await failure(
        encode((e) => e.string("")),
        (d) => d.storePath("p"),
      ),
    ).toMatchObject({
      code: "invalid",
    });
  });

  it.each([
    ["another store dir", "/gnu/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo"],
    ["a non-canonical spelling", "/nix/store/./g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo"],
    ["a path below a store path", `${FOO}/bin`],
    ["a bad hash part", "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3e-foo"],
    ["a bad name", "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-f o"],
  ])("refuses %s", async (_, path) => {
    const bytes = Buffer.concat([u64(5n), encode((e) => e.string(path))]);
    const error = await failure(bytes, async (d) => {
      await d.u64("n");
      return d.storePath("drvPath");
    });
    expect(error).toMatchObject({ code: "invalid", offset: 8 });
    expect(error.expected).toMatch(/drvPath/);
    expect(() => encode((e) => e.storePath(path))).toThrow(WireValueError);
  });

  it("bounds a store path's length by the longest valid one", async () => {
    const d = new WireDecoder(ByteReader.from(u64(400n)), new StoreDir("/nix/store"));
    await expect(d.storePath("p")).rejects.toMatchObject({ code: "too-large" });
  });
});

describe("hashes and content addresses", () => {
  const hash = Hash.of("sha256", "abc");
  it.each([hash.format("nix32"), hash.toBase16(), hash.toSri(), hash.format("base64")])(
    "reads the NAR hash written as %s",
    async (text) => {
      const read = await decodeAll(
        encode((e) => e.string(text)),
        (d) => d.hash("narHash", "sha256"),
      );
      expect(read.equals(hash)).toBe(true);
    },
  );

  it("refuses another algorithm and garbage", async () => {
    const sha1 = Hash.of("sha1", "abc").format("nix32");
    for (const text of [sha1, "sha256:xyz", ""]) {
      expect(
        await failure(
          encode((e) => e.string(text)),
          (d) => d.hash("narHash", "sha256"),
        ),
      ).toMatchObject({ code: "invalid", offset: 0 });
    }
  });

  it("checks content addresses but keeps them as written", async () => {
    const ca = `fixed:r:${hash.format("nix32")}`;
    expect(
      await decodeAll(
        encode((e) => e.string(ca)),
        (d) => d.contentAddress("ca"),
      ),
    ).toBe(ca);
    expect(
      await failure(
        encode((e) => e.string("fixed:r:sha257:00")),
        (d) => d.contentAddress("ca"),
      ),
    ).toMatchObject({ code: "invalid" });
  });
});

describe("NARs of announced size", () => {
  const nar = Buffer.concat(regularFileNar(Buffer.from("hello\n")));
  const after = u64(99n);

  it("reads exactly the NAR and leaves what follows", async () => {
    const d = decoderOver(Buffer.concat([nar, after]), [5]);
    await readSizedNar(d, nar.length);
    expect(await d.u64("next")).toBe(99);
  });

  it("refuses a NAR that ends before its size, or needs more than its size", async () => {
    const longer = await failure(Buffer.concat([nar, after]), (d) =>
      readSizedNar(d, nar.length + 8),
    );
    expect(longer).toMatchObject({ code: "invalid", offset: 0 });
    expect(longer.problem).toMatch(/ends after/);
    const shorter = await failure(Buffer.concat([nar, after]), (d) =>
      readSizedNar(d, nar.length - 8),
    );
    expect(shorter).toMatchObject({ code: "invalid", offset: 0 });
    expect(shorter.problem).toMatch(/does not end within/);
  });

  it("reports a stream that ends inside the NAR as truncated", async () => {
    const error = await failure(nar.subarray(0, 50), (d) => readSizedNar(d, nar.length));
    expect(error.code).toBe("truncated");
  });
});
