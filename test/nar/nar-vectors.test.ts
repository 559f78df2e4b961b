// The shared NAR vectors (vectors README §4): valid archives restore and re-dump byte for byte,
// hostile ones are refused with the documented problem and leave nothing behind.

import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { NarError, type NarErrorCode } from "../../src/nar/nar-error.ts";
import { narHash } from "../../src/nar/nar-hash.ts";
import { narListing } from "../../src/nar/nar-listing.ts";
import { parseNar } from "../../src/nar/nar-parse.ts";
import { restoreNar } from "../../src/nar/nar-restore.ts";
import { dumpToBuffer } from "./nar-chunks.ts";
import { haveVector, vectorPath } from "./shared-vectors.ts";
import { useTempDir } from "./temp-dir.ts";

const NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

/** Nix's base-32 rendering (formats.md §2.2), enough to compare with the README's values. */
function nix32(bytes: Buffer): string {
  const length = Math.floor((bytes.length * 8 - 1) / 5) + 1;
  let out = "";
  for (let n = length - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = Math.floor(bit / 8);
    const j = bit % 8;
    const value = (bytes[i]! >> j) | (i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0);
    out += NIX32[value & 0x1f];
  }
  return out;
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest();

const NARS = "nix/libutil-tests/data/nars";
const FUZZ_NARS = "nix/libutil-tests/fuzz/data/nars";

/** Valid archives and the nix32 sha256 the README gives (undefined where it gives none). */
const VALID: Record<string, string | undefined> = {
  "nar/tvix/helloworld.nar": "0h40zg6hakjv951nyhdad7mv9za56m3za5gnpiw5s1hbwcxzdrq3",
  "nar/tvix/symlink.nar": "1wcwacrb5q36hpsx1shk0dkm26hwbmqmgi0nm973h9jqkdz3jz89",
  "nar/tvix/complicated.nar": "06li2smqgskxxr291x1cgzf61rzm7c8f93bisnglq0nzm1wj5mgb",
  "nar/go-nix/nar_1094wph9z4nwlgvsd53abfz8i117ykiv5dwnq9nnhz846s7xqd7d.nar":
    "0lxjvvpr59c2mdram7ympy5ay741f180kv3349hvfc3f8nrmbqf6",
  "nar/nix-2.8/madsalfj7gsqs2aqmn2d4wslz53h29ab-main.nar":
    "1f0piv1h62yf286h55nmp66rzvr1r3wdp6adf79fnym59jg0sbdc",
  "nar/nix-2.8/l03i5ydp0k4f3yyikrh1vw755ncw5w82-greeting.txt.nar":
    "0jzaimr3v69vh415p70ni3hfg3scgyvld15b57hczj330w9qchm7",
};

/** Per file name in the libutil directories: undefined = valid, else the expected refusal. */
const LIBUTIL: Record<string, { code: NarErrorCode; message: RegExp } | undefined> = {
  "regular-one-byte-zero-padding.nar": undefined,
  "simple.nar": undefined,
  "empty-dir.nar": undefined,
  "empty-subdir.nar": undefined,
  "case.nar": undefined,
  "case-collision.nar": undefined,
  "empty.nar": { code: "invalid-name", message: /invalid file name ''/ },
  "dot.nar": { code: "invalid-name", message: /invalid file name '\.'/ },
  "dotdot.nar": { code: "invalid-name", message: /invalid file name '\.\.'/ },
  "slash.nar": { code: "invalid-name", message: /invalid file name 'x\/y'/ },
  "nul-character.nar": { code: "invalid-name", message: /invalid file name 'f\\x00o'/ },
  "executable-after-contents.nar": {
    code: "unexpected-tag",
    message: /'executable' after 'contents'/,
  },
  "name-after-node.nar": { code: "unexpected-tag", message: /'node' before 'name'/ },
  "invalid-tag-instead-of-contents.nar": {
    code: "unexpected-tag",
    message: /expected 'executable' or 'contents', got 'AAAAAAAA'/,
  },
  "regular-one-byte-non-zero-padding.nar": { code: "bad-padding", message: /non-zero padding/ },
  "regular-truncated-large-contents.nar": {
    code: "too-large",
    message: /file size is 18446744073709551615/,
  },
  "regular-truncated-padding.nar": { code: "truncated", message: /truncated/ },
};

function libutilFiles(): string[] {
  return [NARS, FUZZ_NARS].flatMap((dir) =>
    haveVector(dir)
      ? readdirSync(vectorPath(dir))
          .filter((f) => f.endsWith(".nar"))
          .map((f) => `${dir}/${f}`)
      : [],
  );
}

const temp = useTempDir();

async function expectValid(relative: string, nix32Sha256: string | undefined) {
  const nar = readFileSync(vectorPath(relative));
  const target = temp.fresh("valid");
  const result = await restoreNar([nar], target, { hashAlgorithm: "sha256" });
  expect(result.narSize).toBe(nar.length);
  expect(result.narHash).toEqual(sha256(nar));
  expect((await dumpToBuffer(target)).equals(nar)).toBe(true);
  const ours = await narHash(target);
  expect(ours).toEqual({ hash: sha256(nar), size: nar.length });
  if (nix32Sha256 !== undefined) expect(nix32(ours.hash)).toBe(nix32Sha256);
}

describe("NAR vectors", () => {
  it("nix32 helper matches formats.md §6.1's example", () => {
    const hex = "03e7f63be30b065d78bcf615f5473545fdb4eb69aa416f43495b4e05cdfb8040";
    expect(nix32(Buffer.from(hex, "hex"))).toBe(
      "0h40zg6hakjv951nyhdad7mv9za56m3za5gnpiw5s1hbwcxzdrq3",
    );
  });

  for (const [relative, hash] of Object.entries(VALID)) {
    it.skipIf(!haveVector(relative))(`restores and re-dumps ${relative}`, async () => {
      await expectValid(relative, hash);
    });
  }

  const files = libutilFiles();
  it.skipIf(files.length === 0)("knows every libutil NAR vector", () => {
    for (const file of files) expect(Object.keys(LIBUTIL)).toContain(file.split("/").pop());
  });

  for (const relative of files) {
    const name = relative.split("/").pop()!;
    const expected = LIBUTIL[name];
    if (expected === undefined) {
      it(`restores and re-dumps ${relative}`, async () => {
        await expectValid(relative, undefined);
      });
      continue;
    }
    it(`refuses ${relative} (${expected.code})`, async () => {
      const nar = readFileSync(vectorPath(relative));
      const parent = temp.fresh("refused");
      mkdirSync(parent);
      const error = await restoreNar([nar], join(parent, "out")).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NarError);
      expect((error as NarError).code).toBe(expected.code);
      expect((error as NarError).message).toMatch(expected.message);
      expect(readdirSync(parent)).toEqual([]);
      // The listing applies the same rules.
      await expect(narListing([nar])).rejects.toThrow(expected.message);
    });
  }

  it.skipIf(!haveVector(`${NARS}/regular-one-byte-zero-padding.nar`))(
    "stops exactly at the end of the root node",
    async () => {
      const nar = readFileSync(vectorPath(`${NARS}/regular-one-byte-zero-padding.nar`));
      const trailer = Buffer.from("next consumer's bytes");
      for (let cut = 1; cut < nar.length + trailer.length; cut += 7) {
        const whole = Buffer.concat([nar, trailer]);
        const reader = new ByteReader([whole.subarray(0, cut), whole.subarray(cut)]);
        expect(await parseNar(reader)).toBe(nar.length);
        expect(reader.offset).toBe(nar.length);
        const rest: Buffer[] = [];
        for await (const chunk of reader.rest()) rest.push(chunk);
        expect(Buffer.concat(rest).equals(trailer)).toBe(true);
      }
    },
  );

  it.skipIf(!haveVector("nar/go-nix"))("restores net-tools' /bin/arp exactly", async () => {
    const dir = "nar/go-nix/nar_1094wph9z4nwlgvsd53abfz8i117ykiv5dwnq9nnhz846s7xqd7d";
    const target = temp.fresh("net-tools");
    await restoreNar([readFileSync(vectorPath(`${dir}.nar`))], target);
    expect(
      readFileSync(join(target, "bin/arp")).equals(readFileSync(vectorPath(`${dir}.nar_bin_arp`))),
    ).toBe(true);
  });

  // An export stream (formats.md §7) embeds NARs: the parser must leave the reader at the field
  // after each NAR.
  for (const file of [
    "l03i5ydp0k4f3yyikrh1vw755ncw5w82-greeting.txt.export",
    "main-and-greeting.export",
  ]) {
    const relative = `nar/nix-2.8/${file}`;
    it.skipIf(!haveVector(relative))(`walks the NARs inside ${file}`, async () => {
      const bytes = readFileSync(vectorPath(relative));
      const reader = new ByteReader([bytes]);
      const paths: string[] = [];
      while ((await reader.readU64()) === 1) {
        const start = reader.offset;
        const size = await parseNar(reader);
        const target = temp.fresh("export");
        await restoreNar(ByteReader.from(bytes.subarray(start, start + size)), target);
        expect(await narHash(target)).toEqual({
          hash: sha256(bytes.subarray(start, start + size)),
          size,
        });
        expect(await reader.readU64()).toBe(0x4558494e);
        paths.push((await reader.readString(1000)).toString());
        const references = await reader.readU64(1000);
        for (let i = 0; i < references; i++) await reader.readString(1000);
        await reader.readString(1000); // deriver
        expect(await reader.readU64()).toBe(0);
      }
      expect(await reader.atEnd()).toBe(true);
      expect(paths).toContain("/nix/store/l03i5ydp0k4f3yyikrh1vw755ncw5w82-greeting.txt");
    });
  }
});
