// A failed import leaves nothing behind: not the unpacked part of a bad NAR in an export stream,
// not a tree nested deeper than paths may be long; and the error is the real one.
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ByteWriter } from "../../src/io/byte-writer.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { type NarToken, narBytes, regular } from "../nar/hand-built-nar.ts";
import { useTempStores } from "./temp-store.ts";

const stores = useTempStores();

/** A NAR nested `levels` directories deep, each named `d`. */
function deepNar(levels: number): Buffer {
  const parts: NarToken[] = ["nix-archive-1"];
  for (let i = 0; i < levels; i++)
    parts.push("(", "type", "directory", "entry", "(", "name", "d", "node");
  parts.push(...regular("leaf"));
  for (let i = 0; i < levels; i++) parts.push(")", ")");
  return narBytes(parts);
}

/** An export stream of one item whose NAR is `nar` (the trailer never comes if the NAR fails). */
function exportOf(nar: Buffer, path: string): Buffer {
  const w = new ByteWriter(1024);
  w.u64(1);
  const head = w.take();
  const tail = new ByteWriter(256)
    .u64(0x4558494e)
    .string(path)
    .u64(0)
    .string("")
    .u64(0)
    .u64(0)
    .take();
  return Buffer.concat([head, nar, tail]);
}

const storeEntries = (dir: string) => readdirSync(dir).filter((f) => f !== ".nixstate-store");

describe("failed imports", () => {
  it("an export stream whose NAR is nested too deep: the real error, nothing left", async () => {
    const store = stores.open();
    const path = `${store.storeDir.path}/${"0".repeat(32)}-deep`;
    const stream = exportOf(deepNar(2500), path);
    const error = await store.importExport([stream]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).not.toMatch(/call stack/i);
    expect((error as Error).message).toMatch(/too long|nested more than|ENAMETOOLONG/i);
    expect(storeEntries(store.layout.realStoreDir)).toEqual([]);
    expect(store.queryAllValidPaths()).toEqual([]);
  });

  it("an export stream cut inside its NAR leaves no unpacked part", async () => {
    const store = stores.open();
    const path = `${store.storeDir.path}/${"1".repeat(32)}-cut`;
    const full = exportOf(deepNar(40), path);
    const error = await store.importExport([full.subarray(0, 600)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(storeEntries(store.layout.realStoreDir)).toEqual([]);
  });

  it("deleteTree removes a tree as deep as paths allow, without recursion", () => {
    const root = join(stores.root, "deep-tree");
    let dir = root;
    // 1800 levels of 'd/': paths up to ~3.7 kB, under PATH_MAX.
    const levels = Array.from({ length: 1800 }, () => "d").join("/");
    mkdirSync(join(root, levels), { recursive: true });
    dir = join(root, levels);
    expect(dir.length).toBeGreaterThan(3500);
    deleteTree(root);
    expect(readdirSync(stores.root)).not.toContain("deep-tree");
  });
});
