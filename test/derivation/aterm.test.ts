import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import { AtermParseError, DerivationError } from "../../src/derivation/errors.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { derivation } from "./arbitrary.ts";

const sd = StoreDir.nix;
const parse = (s: string | Buffer) => parseDerivation(Buffer.from(s), { name: "x", storeDir: sd });

describe("ATerm", () => {
  it("escapes exactly what Nix escapes", () => {
    const drv = parse(
      'Derive([("out","/nix/store/z4asv3j07d89ywjf8fxkn7sg6mf5s9q5-dep","","")],[],[],"x86_64-linux","/bin/sh",["-c","a\\"b\\\\c\\nd\\re\\tf"],[("k","v\\n")])',
    );
    expect(drv.args[1]).toBe('a"b\\c\nd\re\tf');
    expect(drv.env.get("k")).toBe("v\n");
  });

  it("reads any escaped byte as itself", () => {
    const drv = parse('Derive([],[],[],"s","\\x\\$",[],[])');
    expect(drv.builder).toBe("x$");
  });

  it("keeps non-UTF-8 bytes through parse and print", () => {
    const text = Buffer.concat([
      Buffer.from('Derive([],[],[],"s","b",[],[("chars","'),
      Buffer.from([0xc5, 0xc4, 0xd6]),
      Buffer.from('")])'),
    ]);
    expect(printDerivation(parse(text)).equals(text)).toBe(true);
  });

  it.each([
    ["Derive(", "end of file", 7],
    ['Derive([],[],[],"s","b",[],[])x', "the end of the file", 30],
    ['Derive([],[],[],"s","b",[],[("a","1"),("a","2")])', "duplicate environment variable", 39],
    ['Derive([("out","/tmp/x","","")],[],[],"s","b",[],[])', "an output path in /nix/store", 15],
    ['Derive([],[],[],"s","b",["unterminated],[])', "the end of a string", 43],
    [
      'Derive([("out","/nix/store/z4asv3j07d89ywjf8fxkn7sg6mf5s9q5-dep","blake3","00")],[],[],"s","b",[],[])',
      "hash algorithm",
      65,
    ],
    [
      'Derive([],[("/nix/store/z4asv3j07d89ywjf8fxkn7sg6mf5s9q5-dep.drv",(["out"],[]))],[],"s","b",[],[])',
      "'['",
      66,
    ],
    ["Derive{", "'Derive('", 0],
  ])("refuses %s with the offset", (text, expected, offset) => {
    try {
      parse(text);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AtermParseError);
      expect((e as Error).message).toContain(expected);
      expect((e as AtermParseError).offset).toBe(offset);
    }
  });

  it("refuses features newer than Nix 2.8 clearly", () => {
    expect(() => parse('DrvWithVersion("xp-dyn-drv",[],[],[],"s","b",[],[])')).toThrow(
      /dynamic derivations/,
    );
    expect(() => parse('DrvWithVersion("v9",[],[],[],"s","b",[],[])')).toThrow(
      /unknown derivation version/,
    );
    expect(() => parse('Derive([("out","","r:sha256","")],[],[],"s","b",[],[])')).toThrow(
      DerivationError,
    );
    expect(() => parse('Derive([("out","","r:sha256","")],[],[],"s","b",[],[])')).toThrow(
      /ca-derivations/,
    );
    expect(() => parse('Derive([("out","","r:sha256","impure")],[],[],"s","b",[],[])')).toThrow(
      /impure/,
    );
    expect(() => parse('Derive([("out","","text:sha256","")],[],[],"s","b",[],[])')).toThrow(
      /text/,
    );
  });

  test.prop([derivation(sd)], { numRuns: 300 })(
    "print∘parse = id (bytes) and parse∘print = id (values)",
    (drv) => {
      const bytes = printDerivation(drv);
      const back = parseDerivation(bytes, { name: drv.name, storeDir: sd });
      expect(printDerivation(back).equals(bytes)).toBe(true);
      expect(back).toEqual(drv);
    },
  );

  test.prop([derivation(sd), fc.nat(), fc.integer({ min: 0, max: 255 })], { numRuns: 300 })(
    "a corrupted file parses or fails with a typed error",
    (drv, at, byte) => {
      const bytes = Buffer.from(printDerivation(drv));
      const cut = bytes.subarray(0, at % (bytes.length + 1));
      const mutated = Buffer.from(bytes);
      mutated[at % bytes.length] = byte;
      for (const b of [cut, mutated]) {
        try {
          parseDerivation(b, { name: drv.name, storeDir: sd });
        } catch (e) {
          expect(e instanceof AtermParseError || e instanceof DerivationError).toBe(true);
        }
      }
    },
  );
});
