import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import { dumpNar } from "../../src/nar/nar-dump.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { NarHashMismatchError } from "../../src/store/store-errors.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { NarFolderSubstituter } from "../../src/substituters/nar-folder-substituter.ts";
import { writeNarFolder } from "../../src/substituters/nar-folder-writer.ts";
import { parseNarInfo } from "../../src/substituters/narinfo.ts";
import { openSubstituter } from "../../src/substituters/open-substituter.ts";
import {
  ForeignCacheError,
  NarInfoError,
  SubstituteGoneError,
  SubstituterLocationError,
  UnsupportedCompressionError,
} from "../../src/substituters/substituter-errors.ts";
import { useTempStores } from "../store/temp-store.ts";

const stores = useTempStores();

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** A store with a tree `t` referring to text `a`, and `b` referring to `a`. */
async function sourceStore() {
  const store = stores.open();
  const a = store.addTextToStore("a", "A").path;
  const b = store.addTextToStore("b", `B ${a}`, [a]).path;
  const dir = join(stores.freshDir("tree"));
  mkdirSync(join(dir, "bin"), { recursive: true });
  writeFileSync(join(dir, "bin", "run"), "#!/bin/sh\n", { mode: 0o755 });
  // Larger than the dumper's 64 KiB pieces, each piece different (a reused buffer must not show).
  writeFileSync(join(dir, "data"), Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251)));
  const t = (await store.addToStore(dir, { name: "tree" })).path;
  return { store, a, b, t };
}

function narInfoFile(folder: string, store: LocalStore, path: string): string {
  return join(folder, `${store.parseStorePath(path).hashPart}.narinfo`);
}

describe("NAR folder writer", () => {
  it("writes Nix's binary-cache layout for a closure, references first; skips what is there", async () => {
    const { store, a, b } = await sourceStore();
    const folder = stores.freshDir("cache");
    expect(await writeNarFolder(store, folder, [b])).toEqual([a, b]);
    expect(readFileSync(join(folder, "nix-cache-info"), "utf8")).toBe(
      `StoreDir: ${store.storeDir.path}\n`,
    );
    const info = parseNarInfo(
      readFileSync(narInfoFile(folder, store, b), "utf8"),
      store.storeDir,
      "b",
    );
    const stored = store.queryPathInfo(b);
    expect(info).toMatchObject({
      storePath: b,
      compression: "none",
      narSize: stored.narSize,
      fileSize: stored.narSize,
      references: [a],
      ca: stored.ca,
    });
    expect(info.narHash.equals(stored.narHash)).toBe(true);
    expect(info.url).toBe(`nar/${stored.narHash.toNix32()}.nar`);
    const nar = readFileSync(join(folder, info.url));
    expect(Hash.of("sha256", nar).equals(stored.narHash)).toBe(true);
    // Nothing half-written is left behind, and a second run has nothing to do.
    expect(readdirSync(join(folder, "nar")).filter((f) => f.startsWith(".tmp"))).toEqual([]);
    expect(await writeNarFolder(store, folder, [b])).toEqual([]);
    expect(await writeNarFolder(store, folder, [a], { closure: false })).toEqual([]);
  });

  it("refuses a path whose contents no longer match its NAR hash, writing nothing for it", async () => {
    const { store, a } = await sourceStore();
    const real = store.toRealPath(a);
    chmodSync(real, 0o644);
    writeFileSync(real, "tampered");
    const folder = stores.freshDir("cache");
    await expect(writeNarFolder(store, folder, [a])).rejects.toThrow(NarHashMismatchError);
    expect(existsSync(narInfoFile(folder, store, a))).toBe(false);
    expect(readdirSync(join(folder, "nar"))).toEqual([]);
  });

  it("refuses to add to a cache made for another store directory", async () => {
    const { store, a } = await sourceStore();
    const folder = stores.freshDir("cache");
    mkdirSync(folder);
    writeFileSync(join(folder, "nix-cache-info"), "StoreDir: /nix/store\n");
    await expect(writeNarFolder(store, folder, [a])).rejects.toThrow(ForeignCacheError);
  });
});

describe("NAR folder substituter", () => {
  it("serves the path info and NAR the store has; undefined for other paths", async () => {
    const { store, a, b, t } = await sourceStore();
    const folder = stores.freshDir("cache");
    await writeNarFolder(store, folder, [b, t]);
    const sub = new NarFolderSubstituter(folder, store.storeDir);
    expect(sub.name).toBe(`file://${folder}`);
    for (const p of [a, b, t]) {
      const info = (await sub.queryPathInfo(p))!;
      const stored = store.queryPathInfo(p);
      expect(info.path).toBe(p);
      expect(info.narHash.equals(stored.narHash)).toBe(true);
      expect(info.narSize).toBe(stored.narSize);
      expect(info.references).toEqual(stored.references);
      expect(info.ca).toBe(stored.ca);
      expect(await collect(sub.fetchNar(p))).toEqual(await collect(dumpNar(store.toRealPath(p))));
    }
    const other = `${store.storeDir.path}/${"0".repeat(32)}-other`;
    expect(await sub.queryPathInfo(other)).toBeUndefined();
  });

  it("refuses compressed NARs with an error that says how to write an uncompressed cache", async () => {
    const { store, a } = await sourceStore();
    const folder = stores.freshDir("cache");
    await writeNarFolder(store, folder, [a]);
    const file = narInfoFile(folder, store, a);
    writeFileSync(file, readFileSync(file, "utf8").replace("Compression: none", "Compression: xz"));
    const sub = new NarFolderSubstituter(folder, store.storeDir);
    await expect(sub.queryPathInfo(a)).rejects.toThrow(UnsupportedCompressionError);
    await expect(sub.queryPathInfo(a)).rejects.toThrow("compression=none");
    await expect(collect(sub.fetchNar(a))).rejects.toThrow(UnsupportedCompressionError);
  });

  it("a listed path whose NAR is missing is gone (SubstituteGoneError)", async () => {
    const { store, a } = await sourceStore();
    const folder = stores.freshDir("cache");
    await writeNarFolder(store, folder, [a]);
    const sub = new NarFolderSubstituter(folder, store.storeDir);
    const { url } = (await sub.narInfo(a))!;
    writeFileSync(join(folder, url), ""); // truncated: served, for the import to refuse
    expect((await collect(sub.fetchNar(a))).length).toBe(0);
    rmSync(join(folder, url));
    await expect(collect(sub.fetchNar(a))).rejects.toThrow(SubstituteGoneError);
  });

  it("refuses a corrupt narinfo, a URL outside the cache, a foreign cache, a missing folder", async () => {
    const { store, a, b } = await sourceStore();
    const folder = stores.freshDir("cache");
    await writeNarFolder(store, folder, [b]);
    writeFileSync(narInfoFile(folder, store, a), "StorePath: nonsense\n");
    const file = narInfoFile(folder, store, b);
    writeFileSync(file, readFileSync(file, "utf8").replace(/URL: .*/, "URL: ../../etc/passwd"));
    const sub = new NarFolderSubstituter(folder, store.storeDir);
    await expect(sub.queryPathInfo(a)).rejects.toThrow(NarInfoError);
    await expect(collect(sub.fetchNar(b))).rejects.toThrow("points outside the cache");

    const foreign = new NarFolderSubstituter(folder, new StoreDir("/elsewhere/store"));
    await expect(foreign.queryPathInfo(`/elsewhere/store/${"0".repeat(32)}-x`)).rejects.toThrow(
      ForeignCacheError,
    );
    const missing = new NarFolderSubstituter(join(folder, "nope"), store.storeDir);
    await expect(missing.queryPathInfo(a)).rejects.toThrow(SubstituterLocationError);
  });

  it("openSubstituter takes file:// URIs and refuses other kinds", () => {
    const sd = StoreDir.nix;
    const sub = openSubstituter("file:///srv/cache?trusted=1", sd);
    expect(sub).toBeInstanceOf(NarFolderSubstituter);
    expect((sub as NarFolderSubstituter).folder).toBe("/srv/cache");
    expect(() => openSubstituter("https://cache.nixos.org", sd)).toThrow(SubstituterLocationError);
    expect(() => openSubstituter("/srv/cache", sd)).toThrow("file:///path/to/cache");
  });
});
