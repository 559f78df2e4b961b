import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hashChunks, narHash, regularFileNarHash } from "../../src/nar/nar-hash.ts";
import { dumpToBuffer } from "./nar-chunks.ts";
import { useTempDir } from "./temp-dir.ts";

const temp = useTempDir();

describe("narHash", () => {
  it("gives formats.md §6.1's digest for a file containing 'Hello World!'", async () => {
    const path = temp.fresh("hello");
    writeFileSync(path, "Hello World!");
    const { hash, size } = await narHash(path);
    expect(size).toBe(128);
    expect(hash.toString("hex")).toBe(
      "03e7f63be30b065d78bcf615f5473545fdb4eb69aa416f43495b4e05cdfb8040",
    );
  });

  it("supports md5, sha1, sha256 and sha512 over the same NAR bytes", async () => {
    const root = temp.fresh("tree");
    mkdirSync(root);
    writeFileSync(join(root, "a"), "alpha");
    writeFileSync(join(root, "big"), Buffer.alloc(200_000, 3));
    const nar = await dumpToBuffer(root);
    for (const algorithm of ["md5", "sha1", "sha256", "sha512"] as const) {
      const { hash, size } = await narHash(root, algorithm);
      expect(size).toBe(nar.length);
      expect(hash).toEqual(createHash(algorithm).update(nar).digest());
    }
  });

  it("hashes an in-memory file like the same file on disk", async () => {
    for (const executable of [false, true]) {
      const path = temp.fresh("mem");
      const contents = Buffer.from("hello from builtins.toFile\n");
      writeFileSync(path, contents);
      chmodSync(path, executable ? 0o755 : 0o644);
      expect(regularFileNarHash(contents, executable)).toEqual(await narHash(path));
      expect(regularFileNarHash(contents, executable, "sha1")).toEqual(await narHash(path, "sha1"));
    }
  });

  it("hashes chunk streams", async () => {
    const parts = [Buffer.from("ab"), Buffer.from("c")];
    expect(await hashChunks(parts, "sha1")).toEqual({
      hash: createHash("sha1").update("abc").digest(),
      size: 3,
    });
  });

  it("rejects an unknown algorithm", async () => {
    await expect(hashChunks([], "sha3-1024")).rejects.toThrow(/Digest method not supported/i);
  });
});
