import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { NarError, NarRestoreError } from "../../src/nar/nar-error.ts";
import { restoreNar } from "../../src/nar/nar-restore.ts";
import { inChunks } from "../io/chunked-source.ts";
import { readTree } from "./file-tree.ts";
import { directory, nar, regular, symlink } from "./hand-built-nar.ts";
import { dumpToBuffer } from "./nar-chunks.ts";
import { RICH_NAR } from "./sample-nars.ts";
import { useTempDir } from "./temp-dir.ts";

const temp = useTempDir();

/** A parent folder with nothing in it, so tests can check nothing else appeared there. */
function emptyParent(): string {
  const parent = temp.fresh("parent");
  mkdirSync(parent);
  return parent;
}

describe("restoreNar", () => {
  it("restores every node kind and re-dumps identically", async () => {
    const target = join(emptyParent(), "out");
    const result = await restoreNar([RICH_NAR], target);
    expect(result).toEqual({ narSize: RICH_NAR.length });
    expect((await dumpToBuffer(target)).equals(RICH_NAR)).toBe(true);
    expect(readlinkSync(join(target, "link"))).toBe("../target");
    expect(lstatSync(join(target, "bin/hi")).mode & 0o111).toBe(0o111);
    expect(lstatSync(join(target, "big")).mode & 0o111).toBe(0);
  });

  it("restores a root file or symlink at the target path", async () => {
    const file = join(emptyParent(), "file");
    await restoreNar([nar(regular("contents", true))], file);
    expect(readFileSync(file, "utf8")).toBe("contents");
    expect(lstatSync(file).mode & 0o100).toBe(0o100);
    const link = join(emptyParent(), "link");
    await restoreNar([nar(symlink("/does/not/exist"))], link);
    expect(readlinkSync(link)).toBe("/does/not/exist");
  });

  it("streams contents arriving in small chunks", async () => {
    const contents = Buffer.alloc(2 * 1024 * 1024 + 3);
    for (let i = 0; i < contents.length; i += 1000) contents[i] = (i / 1000) & 0xff;
    const bytes = nar(directory([["f", regular(contents)]]));
    const target = join(emptyParent(), "out");
    await restoreNar(inChunks(bytes, [4093, 17, 65536]), target);
    expect(readFileSync(join(target, "f")).equals(contents)).toBe(true);
  });

  it("hashes the NAR while restoring", async () => {
    const result = await restoreNar([RICH_NAR], temp.fresh("hashed"), { hashAlgorithm: "sha512" });
    expect(result.narHash).toEqual(createHash("sha512").update(RICH_NAR).digest());
  });

  it("stops at the end of the NAR when given a ByteReader", async () => {
    const after = Buffer.from("ImportPaths continues here");
    const reader = new ByteReader(inChunks(Buffer.concat([RICH_NAR, after]), [33]));
    const result = await restoreNar(reader, temp.fresh("reader"), { hashAlgorithm: "sha256" });
    expect(result.narHash).toEqual(createHash("sha256").update(RICH_NAR).digest());
    expect(reader.offset).toBe(RICH_NAR.length);
    expect((await reader.readExact(after.length)).equals(after)).toBe(true);
    expect(reader.tap).toBeUndefined();
  });

  it("refuses trailing data after a whole-source NAR, and cleans up", async () => {
    const parent = emptyParent();
    const error = await restoreNar([RICH_NAR, Buffer.from("x")], join(parent, "out")).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NarError);
    expect((error as NarError).code).toBe("trailing-data");
    expect(readdirSync(parent)).toEqual([]);
  });

  it("refuses an existing target and leaves it alone", async () => {
    const parent = emptyParent();
    const target = join(parent, "taken");
    writeFileSync(target, "mine");
    const error = await restoreNar([nar(regular("theirs"))], target).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NarRestoreError);
    expect((error as Error).message).toMatch(/already exists/);
    expect(readFileSync(target, "utf8")).toBe("mine");
    mkdirSync(join(parent, "dir"));
    await expect(restoreNar([RICH_NAR], join(parent, "dir"))).rejects.toThrow(/already exists/);
    expect(readdirSync(join(parent, "dir"))).toEqual([]);
  });

  it("refuses a missing parent with a NarRestoreError naming the path", async () => {
    const target = join(temp.fresh("nope"), "out");
    const error = await restoreNar([RICH_NAR], target).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NarRestoreError);
    expect((error as NarRestoreError).path.toString()).toBe(target);
    expect((error as Error).message).toMatch(/ENOENT/);
  });

  it("never writes through a symlink from the archive", async () => {
    const parent = emptyParent();
    const outside = join(parent, "outside");
    mkdirSync(outside);
    // A symlink `a` pointing outside, then a directory `a` with a file in it: refused as a
    // duplicate before anything could go through the link.
    const attack = nar(
      directory([
        ["a", symlink(outside)],
        ["a", directory([["pwned", regular("x")]])],
      ]),
    );
    await expect(restoreNar([attack], join(parent, "out"))).rejects.toThrow(
      /duplicate entry name 'a'/,
    );
    const dotdot = nar(
      directory([
        ["l", symlink("..")],
        ["m", directory([["..", regular("x")]])],
      ]),
    );
    await expect(restoreNar([dotdot], join(parent, "out"))).rejects.toThrow(/invalid file name/);
    const slash = nar(
      directory([
        ["l", symlink(outside)],
        ["l/pwned", regular("x")],
      ]),
    );
    await expect(restoreNar([slash], join(parent, "out"))).rejects.toThrow(/invalid file name/);
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(parent)).toEqual(["outside"]);
  });

  it("removes the partial tree on failure unless asked to keep it", async () => {
    const bad = nar(
      directory([
        ["a", regular("x")],
        ["b", directory([["c", regular("y")]])],
        ["a", regular("z")],
      ]),
    );
    const parent = emptyParent();
    await expect(restoreNar([bad], join(parent, "out"))).rejects.toBeInstanceOf(NarError);
    expect(readdirSync(parent)).toEqual([]);
    await expect(
      restoreNar([bad], join(parent, "kept"), { keepPartial: true }),
    ).rejects.toBeInstanceOf(NarError);
    expect(readTree(join(parent, "kept"))).toEqual({
      type: "directory",
      entries: [
        {
          name: Buffer.from("a"),
          node: { type: "regular", executable: false, contents: Buffer.from("x") },
        },
        {
          name: Buffer.from("b"),
          node: {
            type: "directory",
            entries: [
              {
                name: Buffer.from("c"),
                node: { type: "regular", executable: false, contents: Buffer.from("y") },
              },
            ],
          },
        },
      ],
    });
  });

  it("refuses every truncation and leaves nothing behind", async () => {
    const parent = emptyParent();
    for (let cut = 0; cut < RICH_NAR.length; cut += 7) {
      const error = await restoreNar([RICH_NAR.subarray(0, cut)], join(parent, "out")).catch(
        (e: unknown) => e,
      );
      expect((error as NarError).code, `cut at ${cut}`).toBe("truncated");
      expect(existsSync(join(parent, "out"))).toBe(false);
    }
  });

  it("restores names that are not UTF-8", async () => {
    const name = Buffer.from([0xff, 0xfe, 0x41]);
    const bytes = nar(directory([[name, regular("raw")]]));
    const target = join(emptyParent(), "out");
    await restoreNar([bytes], target);
    expect(readdirSync(target, { encoding: "buffer" })).toEqual([name]);
    expect((await dumpToBuffer(target)).equals(bytes)).toBe(true);
  });
});
