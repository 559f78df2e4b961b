import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { type NarInfo, parseNarInfo, renderNarInfo } from "../../src/substituters/narinfo.ts";
import { NarInfoError } from "../../src/substituters/substituter-errors.ts";
import { storePath } from "../derivation/arbitrary.ts";

const sd = StoreDir.nix;
const parse = (text: string) => parseNarInfo(text, sd, "x.narinfo");

/** Written by Nix 2.8 (`nix copy --to 'file://…?compression=none'`), store /tmp/nixtry/store. */
const NIX_WRITTEN = `StorePath: /tmp/nixtry/store/14yvdydcz0hj6gjrx3v270x2z86ad104-top
URL: nar/1sk1x52c7rjfq7iqdfsknydg9944z2xv76gxxnnk5rhjxpy73ia9.nar
Compression: none
FileHash: sha256:1sk1x52c7rjfq7iqdfsknydg9944z2xv76gxxnnk5rhjxpy73ia9
FileSize: 168
NarHash: sha256:1sk1x52c7rjfq7iqdfsknydg9944z2xv76gxxnnk5rhjxpy73ia9
NarSize: 168
References: sch40i7qb9ff35ch2rzanzbm5njfx1ad-dep
Deriver: rflri9r7rjz9msrx1nfjs1fv71hczqv2-top.drv
`;

const line = fc.string({
  unit: fc.constantFrom(..."abcXYZ019 :/.-_+=?"),
  minLength: 1,
  maxLength: 30,
});
const hash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((d) => new Hash("sha256", d));
const size = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });

const narInfo: fc.Arbitrary<NarInfo> = fc.record({
  storePath: storePath(sd),
  url: line,
  compression: fc.constantFrom("none", "xz", "bzip2", "zstd"),
  fileHash: fc.option(hash, { nil: undefined }),
  fileSize: fc.option(size, { nil: undefined }),
  narHash: hash,
  narSize: size,
  references: fc.uniqueArray(storePath(sd), { maxLength: 5 }),
  deriver: fc.option(storePath(sd, ".drv"), { nil: undefined }),
  system: fc.option(line, { nil: undefined }),
  sigs: fc.array(line, { maxLength: 3 }),
  ca: fc.option(
    fc
      .tuple(fc.constantFrom("text:", "fixed:", "fixed:r:"), hash)
      .map(([m, h]) => `${m}${h.toString()}`),
    { nil: undefined },
  ),
});

describe("narinfo", () => {
  it("reads what Nix writes, and writes it back byte for byte", () => {
    const info = parseNarInfo(NIX_WRITTEN, new StoreDir("/tmp/nixtry/store"), "top.narinfo");
    expect(info.storePath).toBe("/tmp/nixtry/store/14yvdydcz0hj6gjrx3v270x2z86ad104-top");
    expect(info.references).toEqual(["/tmp/nixtry/store/sch40i7qb9ff35ch2rzanzbm5njfx1ad-dep"]);
    expect(info.deriver).toBe("/tmp/nixtry/store/rflri9r7rjz9msrx1nfjs1fv71hczqv2-top.drv");
    expect(info.narSize).toBe(168);
    expect(info.compression).toBe("none");
    expect(renderNarInfo(info)).toBe(NIX_WRITTEN);
  });

  it("reads Nix's defaults and extras: empty References, unknown-deriver, bzip2, Sig, unknown fields", () => {
    const h = Hash.of("sha256", "x").toString();
    const info = parse(
      `StorePath: /nix/store/14yvdydcz0hj6gjrx3v270x2z86ad104-top\nURL: nar/a.nar.bz2\nNarHash: ${h}\nNarSize: 5\nReferences: \nDeriver: unknown-deriver\nSig: k-1:abc\nSig: k-2:def\nFutureField: whatever\n`,
    );
    expect(info.compression).toBe("bzip2");
    expect(info.references).toEqual([]);
    expect(info.deriver).toBeUndefined();
    expect(info.sigs).toEqual(["k-1:abc", "k-2:def"]);
  });

  test.prop([narInfo])("render then parse gives the same info", (info) => {
    expect(parse(renderNarInfo(info))).toEqual(info);
  });

  test.prop([narInfo, fc.constantFrom("StorePath", "URL", "NarHash", "NarSize")])(
    "refuses a narinfo lacking a required field",
    (info, field) => {
      const text = renderNarInfo(info)
        .split("\n")
        .filter((l) => !l.startsWith(`${field}:`))
        .join("\n");
      expect(() => parse(text)).toThrow(NarInfoError);
    },
  );

  test.prop([narInfo, fc.nat(), fc.string({ maxLength: 4 })])(
    "anything else fails with NarInfoError only",
    (info, at, junk) => {
      const text = renderNarInfo(info);
      const i = at % (text.length + 1);
      const mangled = text.slice(0, i) + junk + text.slice(i + junk.length);
      try {
        parse(mangled);
      } catch (e) {
        expect(e).toBeInstanceOf(NarInfoError);
      }
    },
  );

  const good = renderNarInfo({
    storePath: "/nix/store/14yvdydcz0hj6gjrx3v270x2z86ad104-top",
    url: "nar/x.nar",
    compression: "none",
    narHash: Hash.of("sha256", "x"),
    narSize: 5,
    references: [],
    sigs: [],
  });
  it.each([
    ["a line without a colon", `${good}garbage\n`, "is not 'Name: value'"],
    ["no final newline", good.slice(0, -1), "no newline"],
    ["a non-numeric NarSize", good.replace("NarSize: 5", "NarSize: 5x"), "is not a number"],
    ["NarSize 0", good.replace("NarSize: 5", "NarSize: 0"), "no NarSize"],
    ["a bad hash", good.replace(/NarHash: .*/, "NarHash: sha256:zzz"), "bad NarHash"],
    ["an unprefixed hash", good.replace("NarHash: sha256:", "NarHash: "), "bad NarHash"],
    ["a bad reference", good.replace("References: ", "References: nope"), "bad reference"],
    ["two References lines", `${good}References: \n`, "two References"],
    ["a foreign StorePath", good.replace("/nix/store/", "/other/"), "bad StorePath"],
    ["a bad CA", `${good}CA: fixed:sha256:zz\n`, "bad CA"],
    ["two CA lines", `${good}CA: \nCA: \n`, "two CA"],
    ["an empty file", "", "no StorePath"],
  ])("refuses %s", (_, text, reason) => {
    expect(() => parse(text)).toThrow(NarInfoError);
    expect(() => parse(text)).toThrow(reason);
    expect(() => parse(text)).toThrow("NAR info file 'x.narinfo' is corrupt");
  });
});
