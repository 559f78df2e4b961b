// A path that names a store file in another spelling (`<store>//<hash>-x`, `<store>/./<hash>-x`)
// would be a second row aliasing one file: deleting one would break the other. Every entry point
// refuses it: an imported export stream, a registration, the serve protocol's decoder.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import { writeExport } from "../../src/store/export-format.ts";
import { StorePathError } from "../../src/store-path/store-path.ts";
import { useTempStores } from "./temp-store.ts";

const stores = useTempStores();

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

describe("non-canonical store paths", () => {
  const spellings = (dir: string, base: string) => [`${dir}//${base}`, `${dir}/./${base}`];

  it("are refused in an imported export stream, and nothing is registered", async () => {
    const source = stores.open();
    const path = source.addTextToStore("aliased", "one file").path;
    const base = path.slice(source.storeDir.path.length + 1);
    const file = join(mkdtempSync(join(tmpdir(), "nixstate-canon-")), "f");
    writeFileSync(file, "one file");
    for (const alias of spellings(source.storeDir.path, base)) {
      const target = stores.open({ storeDir: source.storeDir.path });
      const stream = await collect(
        writeExport([{ path: alias, references: [], deriver: undefined, physicalPath: file }]),
      );
      await expect(target.importExport([stream])).rejects.toThrow(StorePathError);
      await expect(target.importExport([stream])).rejects.toThrow(
        /exported path '.*' is not written canonically \(expected '.*'\)/,
      );
      expect(target.queryAllValidPaths()).toEqual([]);
    }
  });

  it("are refused when registered, as path, reference or deriver", () => {
    const store = stores.open();
    const good = store.addTextToStore("good", "x").path;
    const base = good.slice(store.storeDir.path.length + 1);
    const info = { narHash: Hash.of("sha256", "x"), narSize: 1 };
    for (const alias of spellings(store.storeDir.path, base)) {
      expect(() => store.registerValidPath({ ...info, path: alias })).toThrow(
        /not written canonically/,
      );
      expect(() => store.registerValidPath({ ...info, path: good, references: [alias] })).toThrow(
        /reference '.*' is not written canonically/,
      );
      expect(() => store.registerValidPath({ ...info, path: good, deriver: alias })).toThrow(
        /deriver '.*' is not written canonically/,
      );
    }
    expect(store.queryAllValidPaths()).toEqual([good]);
  });
});
