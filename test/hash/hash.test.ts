import { readFileSync } from "node:fs";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { compressHash } from "../../src/hash/compress-hash.ts";
import { HASH_ALGOS, HASH_SIZE, Hash, type HashAlgo, HashParseError } from "../../src/hash/hash.ts";
import { haveVectors, readVectorJson, vectorPath } from "../vectors.ts";

describe("Hash", () => {
  const h = Hash.of("sha256", "asdf");

  it("renders in every format", () => {
    expect(h.toSri()).toBe("sha256-8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts=");
    expect(h.format("base16")).toBe(`sha256:${h.digest.toString("hex")}`);
    expect(h.format("nix32", false)).toHaveLength(52);
    expect(h.toString()).toMatch(/^sha256:[0-9a-z]{52}$/);
  });

  it("parses every rendering back", () => {
    for (const f of ["base16", "nix32", "base64", "sri"] as const) {
      expect(Hash.parse(h.format(f)).equals(h)).toBe(true);
      if (f !== "sri") expect(Hash.parse(h.format(f, false), "sha256").equals(h)).toBe(true);
    }
  });

  it("refuses bad input with messages that say why", () => {
    expect(() => Hash.parse(h.toBase16())).toThrow(/does not say its algorithm/);
    expect(() => Hash.parse("sha256:abc")).toThrow(/wrong length/);
    expect(() => Hash.parse("blake3-nnDuFEmWX7YtBJBAoe0G7Dd0MNpuwTFz58T//NKL6YA=")).toThrow(
      HashParseError,
    );
    expect(() => Hash.parse(`sha1:${h.toBase16()}`, "sha256")).toThrow(/should have type 'sha256'/);
    expect(() => Hash.parse(`sha256:${"g".repeat(64)}`)).toThrow(/base-16/);
    expect(() => Hash.parse(`sha256:${"e".repeat(52)}`)).toThrow(/nix32/);
    expect(() => Hash.parse(`sha256-${"!".repeat(44)}`)).toThrow(/base-64/);
  });

  it("compressHash folds by XOR", () => {
    const d = Buffer.from([...Array(32).keys()]);
    const c = compressHash(d, 20);
    expect(c[0]).toBe(0 ^ 20);
    expect(c[11]).toBe(11 ^ 31);
    expect(c[12]).toBe(12);
    expect(c).toHaveLength(20);
  });

  const algo = fc.constantFrom<HashAlgo>(...HASH_ALGOS);
  test.prop([
    algo.chain((a) =>
      fc.tuple(fc.constant(a), fc.uint8Array({ minLength: HASH_SIZE[a], maxLength: HASH_SIZE[a] })),
    ),
    fc.constantFrom("base16", "nix32", "base64", "sri" as const),
  ])("parse∘format = id for every algorithm and format", ([a, bytes], f) => {
    const x = new Hash(a, bytes);
    expect(Hash.parse(x.format(f)).equals(x)).toBe(true);
  });
});

describe.runIf(haveVectors)("hash vectors", () => {
  type R = {
    input: string;
    algo: HashAlgo;
    base16: string;
    nix32: string;
    base64: string;
    sri: string;
  };
  const rows = haveVectors ? readVectorJson<R[]>("hash", "hash-renderings-nix-2.8.json") : [];
  it.each(rows)("$algo of $input", (r) => {
    const x = Hash.of(r.algo, r.input);
    expect(x.toBase16()).toBe(r.base16);
    expect(x.toNix32()).toBe(r.nix32);
    expect(x.toBase64()).toBe(r.base64);
    expect(x.toSri()).toBe(r.sri);
    for (const s of [r.base16, r.nix32, r.base64])
      expect(Hash.parse(s, r.algo).equals(x)).toBe(true);
    expect(Hash.parse(r.sri).equals(x)).toBe(true);
  });

  it("libutil-tests/data/hash: sha256 and sha512 files hold sha256(asdf); blake3 is refused", () => {
    const read = (f: string) =>
      JSON.parse(readFileSync(vectorPath("nix/libutil-tests/data/hash", f), "utf8"));
    expect(Hash.parse(read("sha256.json")).equals(Hash.of("sha256", "asdf"))).toBe(true);
    expect(Hash.parse(read("sha512.json")).equals(Hash.of("sha256", "asdf"))).toBe(true);
    expect(() => Hash.parse(read("blake3.json"))).toThrow(HashParseError);
  });
});
