// `derivation add`: show-derivation JSON in, the very .drv out; anything that would not give
// Nix's .drv (a wrong output path, a key the text does not hash to, a missing input, a cycle,
// JSON of the wrong shape) is a DerivationError naming what is wrong, and nothing is written.
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { derivationNameFromFile } from "../../src/derivation/drv-file.ts";
import { DerivationError } from "../../src/derivation/errors.ts";
import { renderShowDerivation } from "../../src/derivation/show-json.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { addDerivationsJson } from "../../src/targets/derivation-json-add.ts";
import { addJsonDerivation } from "../../src/targets/json-derivation.ts";
import { useTempStores } from "../store/temp-store.ts";

const stores = useTempStores();

function ctx(store: LocalStore) {
  const readDerivation = (p: string) =>
    parseDerivation(readFileSync(store.toRealPath(p)), {
      name: derivationNameFromFile(p),
      storeDir: store.storeDir,
    });
  return {
    store,
    readDerivation,
    importInputs: async (paths: string[]) => {
      throw new DerivationError(`missing inputs: ${paths.join(", ")}`);
    },
  };
}

/** Two derivations (b depends on a) made in one store, and their show-derivation JSON. */
function pair(salt: string) {
  const src = stores.open();
  const write = (name: string, content: object) => {
    const file = `${stores.root}/${name}-${salt}.json`;
    writeFileSync(file, JSON.stringify(content));
    return file;
  };
  const c = ctx(src);
  const a = addJsonDerivation(
    write("a", { name: `a-${salt}`, builder: "/bin/sh", args: ["-c", "echo a > $out"] }),
    { store: src, system: "x86_64-linux", readDerivation: c.readDerivation },
  );
  const b = addJsonDerivation(
    write("b", {
      name: `b-${salt}`,
      builder: "/bin/sh",
      args: ["-c", "echo $a > $out"],
      inputDrvs: { [a]: ["out"] },
      outputs: { out: {}, dev: {} },
    }),
    { store: src, system: "x86_64-linux", readDerivation: c.readDerivation },
  );
  const json = JSON.parse(
    renderShowDerivation([
      [b, c.readDerivation(b)],
      [a, c.readDerivation(a)],
    ]).toString("utf8"),
  ) as Record<string, { outputs: Record<string, { path: string }>; env: Record<string, string> }>;
  // A store of the same store directory with its own files, as beside a Nix store.
  const beside = () =>
    stores.open({ storeDir: src.storeDir.path, storeRoot: stores.freshDir("root") });
  return { src, a, b, json, beside };
}

describe("derivation add", () => {
  it("writes the derivations of a show-derivation map, inputs first, at the same paths", async () => {
    const { src, a, b, json, beside } = pair("ok");
    const dest = beside();
    expect(await addDerivationsJson(json, "t", ctx(dest))).toEqual([b, a]);
    for (const p of [a, b])
      expect(readFileSync(dest.toRealPath(p)).equals(readFileSync(src.toRealPath(p)))).toBe(true);
  });

  it("refuses a wrong output path, a wrong key, and a missing input", async () => {
    const { a, b, json, beside } = pair("bad");
    const dest = beside();
    const wrongOut = structuredClone(json);
    wrongOut[a]!.outputs.out!.path = wrongOut[b]!.outputs.out!.path;
    await expect(addDerivationsJson(wrongOut, "t", ctx(dest))).rejects.toThrow(
      /output 'out' should be at '.*-a-bad', but the JSON says '.*-b-bad'/,
    );
    // a's derivation under a's name with b's hash part.
    const hashPart = (p: string) => basename(p).slice(0, 32);
    const wrongKey = { [a.replace(hashPart(a), hashPart(b))]: json[a] };
    await expect(addDerivationsJson(wrongKey, "t", ctx(dest))).rejects.toThrow(
      /hashes to '.*', not to the path it is keyed by/,
    );
    const onlyB = { [b]: json[b] };
    await expect(addDerivationsJson(onlyB, "t", ctx(dest))).rejects.toThrow(`missing inputs: ${a}`);
    expect(dest.queryAllValidPaths()).toEqual([]);
  });

  test.prop([fc.jsonValue({ maxDepth: 3 })], { numRuns: 200 })(
    "any JSON ends in .drv paths or a DerivationError",
    async (value) => {
      const dest = stores.open();
      try {
        const paths = await addDerivationsJson(value, "t", ctx(dest));
        expect(paths.length).toBeGreaterThan(0);
      } catch (e) {
        expect(e).toBeInstanceOf(DerivationError);
      } finally {
        dest.close();
      }
    },
  );
});
