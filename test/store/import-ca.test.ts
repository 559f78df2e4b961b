// AddToStoreNar / substitution imports: contents must match the content address they come with,
// as Nix 2.8 checks ("ca hash mismatch importing path"); a mismatch registers nothing.
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import { dumpNar } from "../../src/nar/nar-dump.ts";
import { ContentAddressMismatchError } from "../../src/store/store-errors.ts";
import { useTempStores } from "./temp-store.ts";

const stores = useTempStores();

async function narOf(path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of dumpNar(path)) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe("importing a path with a content address", () => {
  it("accepts matching contents and refuses others with Nix's message, leaving nothing", async () => {
    const source = stores.open();
    const text = source.addTextToStore("note", "the real text");
    const info = source.queryPathInfo(text.path);
    expect(info.ca).toMatch(/^text:sha256:/);
    const nar = await narOf(source.toRealPath(text.path));
    // Stores naming paths alike, their files each in a place of its own.
    const like = () =>
      stores.open({ storeDir: source.storeDir.path, storeRoot: stores.freshDir("root") });
    const good = like();
    await good.importPath({ ...info, references: [] }, [nar]);
    expect(good.isValidPath(text.path)).toBe(true);

    const other = Hash.of("sha256", "another text");
    for (const ca of [
      `text:${other.format("nix32")}`,
      `fixed:r:${other.format("nix32")}`,
      `fixed:${other.format("nix32")}`,
    ]) {
      const target = like();
      const attempt = target.importPath({ ...info, references: [], ca }, [nar]);
      await expect(attempt).rejects.toBeInstanceOf(ContentAddressMismatchError);
      await expect(target.importPath({ ...info, references: [], ca }, [nar])).rejects.toThrow(
        new RegExp(
          `^ca hash mismatch importing path '${text.path}';\\n  specified: sha256:[0-9a-z]{52}\\n  got:       sha256:[0-9a-z]{52}$`,
        ),
      );
      expect(target.isValidPath(text.path)).toBe(false);
      // Nothing unpacked is left in the store directory.
      expect(
        readdirSync(target.layout.realStoreDir).filter((f) => f !== ".nixstate-store"),
      ).toEqual([]);
    }
  });
});
