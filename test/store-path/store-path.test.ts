import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import { nix32Encode } from "../../src/hash/nix32.ts";
import {
  makePathFromContentAddress,
  parseContentAddress,
  renderContentAddress,
} from "../../src/store-path/content-address.ts";
import {
  makeFixedOutputPath,
  makeOutputPath,
  makeStorePath,
  makeTextPath,
} from "../../src/store-path/make-store-path.ts";
import { StoreDir, StorePath, StorePathError } from "../../src/store-path/store-path.ts";
import { haveVectors, readVectorJson } from "../vectors.ts";

const sd = StoreDir.nix;
const sp = (s: string) => sd.parsePath(s);

describe("StorePath", () => {
  it("parses and prints", () => {
    const p = sp("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv");
    expect(p.hashPart).toBe("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q");
    expect(p.name).toBe("foo.drv");
    expect(p.isDerivation()).toBe(true);
    expect(sd.print(p)).toBe("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv");
    expect(sd.parsePath("/nix//store/./g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo").name).toBe("foo");
  });

  it.each([
    ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-", /empty name/],
    ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-.", /not allowed/],
    ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-..", /not allowed/],
    ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-.-x", /not allowed/],
    ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-..-x", /not allowed/],
    ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-a b", /forbidden character " "/],
    [`/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-${"a".repeat(212)}`, /longer than 211/],
    ["/nix/store/e1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo", /illegal base-32/],
    ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3qxfoo", /lacks the '-'/],
    ["/nix/store/short-foo", /too short/],
    ["/other/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo", /not in the Nix store/],
    ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo/bin", /not in the Nix store/],
  ])("refuses %s", (path, msg) => {
    expect(() => sp(path)).toThrow(StorePathError);
    expect(() => sp(path)).toThrow(msg);
  });

  it("accepts the longest name and dotted names", () => {
    expect(sp(`/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-${"a".repeat(211)}`).name).toHaveLength(
      211,
    );
    expect(sp("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-.foo").name).toBe(".foo");
    expect(sp("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-...").name).toBe("...");
  });

  it("splits a path below a store path", () => {
    const r = sd.toStorePath("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo/bin/x");
    expect(r.path.name).toBe("foo");
    expect(r.rest).toBe("/bin/x");
  });

  it("uses the configured store directory", () => {
    const other = new StoreDir("/tmp/s/store/");
    expect(other.path).toBe("/tmp/s/store");
    const a = makeTextPath(other, "foo", Hash.of("sha256", "bar"));
    const b = makeTextPath(sd, "foo", Hash.of("sha256", "bar"));
    expect(a.hashPart).not.toBe(b.hashPart);
  });

  const nameChar = fc.constantFrom(..."abcXYZ019+-._?=");
  test.prop([
    fc.uint8Array({ minLength: 20, maxLength: 20 }),
    fc.string({ unit: nameChar, minLength: 1, maxLength: 211 }),
  ])("parse∘print = id for valid paths", (bytes, name) => {
    fc.pre(name !== "." && name !== ".." && !name.startsWith(".-") && !name.startsWith("..-"));
    const p = StorePath.fromParts(nix32Encode(bytes), name);
    expect(sd.parsePath(sd.print(p)).equals(p)).toBe(true);
  });
});

describe("makeStorePath", () => {
  it("computes the worked text example of formats.md", () => {
    expect(sd.print(makeTextPath(sd, "foo", Hash.of("sha256", "bar")))).toBe(
      "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
    );
    expect(sd.print(makeStorePath(sd, "text", Hash.of("sha256", "bar"), "foo"))).toBe(
      "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
    );
  });

  it("computes flat fixed-output and output paths", () => {
    const hi = Hash.of("sha256", "hi");
    expect(sd.print(makeFixedOutputPath(sd, "fod", "flat", hi))).toBe(
      "/nix/store/3ajymwa6hv8pq7bjmbfgdgsh454sikdm-fod",
    );
    const modulo = Hash.parse(
      "sha256:00b851513f5c58e264a751c12c2cda4ea5422f951c14c49330bab04fdd208106",
    );
    expect(sd.print(makeOutputPath(sd, "out", modulo, "dep"))).toBe(
      "/nix/store/z4asv3j07d89ywjf8fxkn7sg6mf5s9q5-dep",
    );
  });

  it("refuses references where Nix cannot express them", () => {
    const ref = sp("/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo");
    expect(() => makeFixedOutputPath(sd, "x", "flat", Hash.of("sha256", ""), [ref])).toThrow(
      StorePathError,
    );
    expect(() => makeFixedOutputPath(sd, "x", "nar", Hash.of("sha1", ""), [], true)).toThrow(
      StorePathError,
    );
  });

  it("content addresses round-trip and give paths", () => {
    for (const s of [
      "text:sha256:1vb2xd67750jrvqgykxrf5ipl3h1q57sxc57q5nzjw56bqp3sxzr",
      "fixed:sha1:1amk6n7wxjlw4qkq6dcj6mm7hw3acrw0",
      "fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh",
    ]) {
      expect(renderContentAddress(parseContentAddress(s))).toBe(s);
    }
    expect(() => parseContentAddress("blob:sha256:x")).toThrow(/must start with/);
    const ca = parseContentAddress(`text:${Hash.of("sha256", "bar").toString()}`);
    expect(sd.print(makePathFromContentAddress(sd, "foo", ca))).toBe(
      "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
    );
  });
});

describe.runIf(haveVectors)("store path vectors", () => {
  type C = {
    kind: string;
    name: string;
    expected: string;
    contents?: string;
    references: string[];
    method?: string;
    algo?: "sha1" | "sha256";
    hashHex?: string;
    hashNix32?: string;
    nar?: string;
  };
  const cases = haveVectors
    ? readVectorJson<{ cases: C[] }>("store-path", "store-path-cases.json").cases
    : [];
  it.each(cases)("$kind $name → $expected", (c) => {
    const refs = c.references.map(sp);
    let got: StorePath;
    if (c.kind === "text") {
      got = makeTextPath(sd, c.name, Hash.of("sha256", c.contents!), refs);
    } else {
      let hash: Hash;
      if (c.hashHex) hash = Hash.parse(c.hashHex, c.algo);
      else if (c.hashNix32) hash = Hash.parse(c.hashNix32, c.algo);
      else {
        // NAR of a regular non-executable file "bar", written out by hand from formats.md §6.
        const s = (x: string | Buffer) => {
          const b = Buffer.from(x);
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(BigInt(b.length));
          return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
        };
        const nar = Buffer.concat(
          ["nix-archive-1", "(", "type", "regular", "contents", "bar", ")"].map(s),
        );
        hash = Hash.of("sha256", nar);
      }
      got = makeFixedOutputPath(sd, c.name, c.method === "recursive" ? "nar" : "flat", hash, refs);
    }
    expect(sd.print(got)).toBe(c.expected);
  });
});
