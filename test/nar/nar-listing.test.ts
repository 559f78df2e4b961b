import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { encodeU64 } from "../../src/io/byte-writer.ts";
import { NarError } from "../../src/nar/nar-error.ts";
import { narListing, renderNarListing } from "../../src/nar/nar-listing.ts";
import { directory, nar, narBytes, regular, symlink } from "./hand-built-nar.ts";
import { haveVector, vectorPath } from "./shared-vectors.ts";

describe("narListing", () => {
  it("lists types, sizes, executables, contents offsets and targets", async () => {
    const bytes = nar(
      directory([
        ["a", regular("x", true)],
        ["l", symlink("t")],
        ["s", directory([["f", regular("")]])],
      ]),
    );
    const listing = await narListing([bytes]);
    // a: magic 24 + "(" "type" "directory" 56 + "entry" "(" "name" "a" "node" 80
    //    + "(" "type" "regular" "executable" "" "contents" 96 + size 8 = 264
    // f: 264 + "x" 8 + ")" ")" 32 + l's entry 80 + node 96 + ")" 16 + s's entry 80
    //    + "(" "type" "directory" 56 + f's entry 80 + "(" "type" "regular" "contents" 64 + 8 = 784
    expect(renderNarListing(listing)).toBe(
      '{"version":1,"root":{"type":"directory","entries":{' +
        '"a":{"type":"regular","size":1,"executable":true,"narOffset":264},' +
        '"l":{"type":"symlink","target":"t"},' +
        '"s":{"type":"directory","entries":{"f":{"type":"regular","size":0,"narOffset":784}}}}}}',
    );
    expect(bytes.subarray(264, 265).toString()).toBe("x");
    expect(listing.root.type).toBe("directory");
  });

  it("lists a root file or symlink", async () => {
    expect(await narListing([nar(regular("Hello World!"))])).toEqual({
      version: 1,
      root: { type: "regular", size: 12, narOffset: 96 },
    });
    expect(await narListing([nar(symlink("/nix/store/x"))])).toEqual({
      version: 1,
      root: { type: "symlink", target: "/nix/store/x" },
    });
  });

  it("renders entries in byte order with Nix's escapes", async () => {
    const names = ["9", "10", "__proto__", "constructor", 'a\nb\t"\\\u0001\u007f', "é", "Z"];
    const entries = names
      .map((n) => [Buffer.from(n), regular("")] as [Buffer, ReturnType<typeof regular>])
      .sort((a, b) => Buffer.compare(a[0], b[0]));
    const listing = await narListing([nar(directory(entries))]);
    const root = listing.root;
    if (root.type !== "directory") throw new Error("expected a directory");
    expect(Object.keys(root.entries).sort()).toEqual([...names].sort());
    expect(Object.getOwnPropertyDescriptor(root.entries, "__proto__")?.value).toMatchObject({
      type: "regular",
    });
    expect(Object.getPrototypeOf(root.entries)).toBe(null);
    const text = renderNarListing(listing);
    const order = [...text.matchAll(/"((?:[^"\\]|\\.)*)":\{"type":"regular"/g)].map((m) => m[1]);
    expect(order).toEqual([
      "10",
      "9",
      "Z",
      "__proto__",
      'a\\nb\\t\\"\\\\\\u0001\u007f',
      "constructor",
      "é",
    ]);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(listing)));
  });

  it("decodes names that are not UTF-8 lossily", async () => {
    const listing = await narListing([nar(directory([[Buffer.from([0xff]), regular("")]]))]);
    expect(renderNarListing(listing)).toContain('"\ufffd":');
  });

  it("leaves a ByteReader after the NAR, refuses trailing data in a whole source", async () => {
    const bytes = nar(regular("x"));
    const reader = ByteReader.from(Buffer.concat([bytes, Buffer.from("more")]));
    await narListing(reader);
    expect(reader.offset).toBe(bytes.length);
    const error = await narListing([bytes, Buffer.from("more")]).catch((e: unknown) => e);
    expect((error as NarError).code).toBe("trailing-data");
    expect((error as NarError).offset).toBe(bytes.length);
    await expect(narListing([bytes.subarray(0, 50)])).rejects.toBeInstanceOf(NarError);
  });

  it.skipIf(!haveVector("nar/tvix/nixos-release.ls"))(
    "reproduces tvix's nixos-release.ls from a NAR of the same shape (1 GB file streamed, not stored)",
    async () => {
      const expected = JSON.parse(readFileSync(vectorPath("nar/tvix/nixos-release.ls"), "utf8"));
      const iso = "nixos-minimal-new-kernel-no-zfs-24.11pre660688.bee6b69aad74-x86_64-linux.iso";
      const zeros = Buffer.alloc(1 << 20);
      // A regular file node whose contents are `size` zero bytes, streamed.
      async function* file(size: number) {
        yield narBytes(["(", "type", "regular", "contents"]);
        yield encodeU64(size);
        for (let left = size; left > 0; left -= zeros.length)
          yield zeros.subarray(0, Math.min(left, zeros.length));
        yield Buffer.alloc((8 - (size % 8)) % 8);
        yield narBytes([")"]);
      }
      const entry = (name: string) => narBytes(["entry", "(", "name", name, "node"]);
      const close = narBytes([")"]);
      const open = narBytes(["(", "type", "directory"]);
      async function* source() {
        yield narBytes(["nix-archive-1"]);
        yield open;
        yield entry("iso");
        yield open;
        yield entry(iso);
        yield* file(1051721728);
        yield close; // entry
        yield close; // iso directory
        yield close; // entry
        yield entry("nix-support");
        yield open;
        yield entry("hydra-build-products");
        yield* file(211);
        yield close;
        yield entry("system");
        yield* file(13);
        yield close;
        yield close; // nix-support directory
        yield close; // entry
        yield close; // root
      }
      expect(await narListing(source())).toEqual(expected);
    },
  );

  it.skipIf(!haveVector("nar/nix-2.8/madsalfj7gsqs2aqmn2d4wslz53h29ab-main.nar"))(
    "matches `nix nar ls --json -R` of Nix 2.8 byte for byte",
    async () => {
      const bytes = readFileSync(
        vectorPath("nar/nix-2.8/madsalfj7gsqs2aqmn2d4wslz53h29ab-main.nar"),
      );
      // Recorded with Nix 2.8.0: nix nar ls --json -R main.nar /
      const nixOutput =
        '{"type":"directory","entries":{"bin":{"type":"directory","entries":{"hi":{"type":"regular","size":18,"executable":true,"narOffset":400}}},"greeting":{"type":"symlink","target":"/nix/store/l03i5ydp0k4f3yyikrh1vw755ncw5w82-greeting.txt"},"ref":{"type":"regular","size":48,"narOffset":880}}}';
      expect(renderNarListing(await narListing([bytes]))).toBe(`{"version":1,"root":${nixOutput}}`);
    },
  );
});
