import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  NIX32_ALPHABET,
  Nix32DecodeError,
  nix32Decode,
  nix32DecodedLength,
  nix32Encode,
  nix32EncodedLength,
} from "../../src/hash/nix32.ts";
import { haveVectors, readVectorJson } from "../vectors.ts";

describe("nix32", () => {
  it("encodes known values", () => {
    expect(nix32Encode(Buffer.from("1f", "hex"))).toBe("0z");
    expect(nix32Encode(Buffer.from("8a12321522fd91efbd60ebb2481af88580f61600", "hex"))).toBe(
      "00bgd045z0d4icpbc2yyz4gx48ak44la",
    );
    expect(nix32Encode(Buffer.alloc(0))).toBe("");
  });

  it("refuses bad strings with a typed error", () => {
    for (const s of ["zz", "c0", "0t", "0", "0zz", "e0"]) {
      expect(() => nix32Decode(s), s).toThrow(Nix32DecodeError);
    }
  });

  it("lengths agree with Nix's formula", () => {
    expect(nix32EncodedLength(20)).toBe(32);
    expect(nix32EncodedLength(32)).toBe(52);
    expect(nix32EncodedLength(64)).toBe(103);
    expect(nix32EncodedLength(16)).toBe(26);
    expect(nix32DecodedLength(52)).toBe(32);
    expect(nix32DecodedLength(1)).toBe(-1);
  });

  test.prop([fc.uint8Array({ maxLength: 80 })], { numRuns: 1000 })(
    "decode∘encode = id",
    (bytes) => {
      const s = nix32Encode(bytes);
      expect(s.length).toBe(nix32EncodedLength(bytes.length));
      expect([...s].every((c) => NIX32_ALPHABET.includes(c))).toBe(true);
      expect(nix32Decode(s).equals(Buffer.from(bytes))).toBe(true);
    },
  );

  test.prop([
    fc.string({ unit: fc.constantFrom(...NIX32_ALPHABET, "e", "o", "u", "t", "A"), maxLength: 60 }),
  ])("decoding arbitrary text either fails with Nix32DecodeError or round-trips", (s) => {
    try {
      const bytes = nix32Decode(s);
      expect(nix32Encode(bytes)).toBe(s);
    } catch (e) {
      expect(e).toBeInstanceOf(Nix32DecodeError);
    }
  });
});

describe.runIf(haveVectors)("nix32 vectors", () => {
  const cases = haveVectors
    ? readVectorJson<{
        encode: { bytesHex: string; nix32: string }[];
        mustFailToDecode: { nix32: string }[];
      }>("hash", "nix32-cases.json")
    : { encode: [], mustFailToDecode: [] };
  it.each(cases.encode)("encodes $bytesHex", ({ bytesHex, nix32 }) => {
    expect(nix32Encode(Buffer.from(bytesHex, "hex"))).toBe(nix32);
    expect(nix32Decode(nix32).toString("hex")).toBe(bytesHex);
  });
  it.each(cases.mustFailToDecode)("refuses $nix32", ({ nix32 }) => {
    expect(() => nix32Decode(nix32)).toThrow(Nix32DecodeError);
  });
});
