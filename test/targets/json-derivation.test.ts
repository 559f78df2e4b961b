// JSON derivation files: a wrong type is named with its file and field; any JSON at all ends in
// a derivation or a DerivationError, never a raw TypeError or a misread.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { derivationNameFromFile } from "../../src/derivation/drv-file.ts";
import { DerivationError } from "../../src/derivation/errors.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { addJsonDerivation } from "../../src/targets/json-derivation.ts";
import { useTempStores } from "../store/temp-store.ts";

const stores = useTempStores();
let n = 0;

function add(store: LocalStore, content: string): string {
  const file = join(stores.root, `d${n++}.json`);
  writeFileSync(file, content);
  return addJsonDerivation(file, {
    store,
    system: "x86_64-linux",
    readDerivation: (p) =>
      parseDerivation(readFileSync(store.toRealPath(p)), {
        name: derivationNameFromFile(p),
        storeDir: store.storeDir,
      }),
  });
}

const base = { name: "x", builder: "/bin/sh", args: ["-c", "echo > $out"], env: {} };

describe("JSON derivations", () => {
  const store = stores.open();
  const cases: [string, unknown, RegExp][] = [
    [
      "outputs as a string",
      { ...base, outputs: "out" },
      /: 'outputs' must be an object of outputs .*, not a string \("out"\)$/,
    ],
    [
      "an output as a number",
      { ...base, outputs: { out: 5 } },
      /: outputs\.out must be an object .*, not a number \(5\)$/,
    ],
    ["a file holding null", null, /: the file must be a JSON object .*, not null$/],
    ["a list", [base], /: the file must be a JSON object .*, not a list$/],
    [
      "an env value that is no string",
      { ...base, env: { n: 1 } },
      /: env\.n must be a string, not a number \(1\)$/,
    ],
    [
      "args as a string",
      { ...base, args: "echo" },
      /: 'args' must be a list of strings, not a string/,
    ],
    [
      "inputDrvs outputs as a string",
      { ...base, inputDrvs: { "y.json": "out" } },
      /: inputDrvs\.y\.json must be a list of output names/,
    ],
    ["no builder", { name: "x", env: {} }, /: the derivation needs a builder/],
  ];
  for (const [what, value, message] of cases) {
    it(`names the file and field: ${what}`, () => {
      let error: unknown;
      try {
        add(store, JSON.stringify(value));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DerivationError);
      expect((error as Error).message).toMatch(/^\/\S+\.json/);
      expect((error as Error).message).toMatch(message);
    });
  }

  it("says a directory named like a derivation is one", () => {
    const dir = join(stores.root, "dir.json");
    mkdirSync(dir);
    expect(() =>
      addJsonDerivation(dir, {
        store,
        system: "x86_64-linux",
        readDerivation: () => ({}) as never,
      }),
    ).toThrow(/dir\.json is a directory, not a JSON derivation/);
  });

  it("still builds a well-formed one", () => {
    expect(add(store, JSON.stringify(base))).toMatch(/-x\.drv$/);
  });

  const field = fc.constantFrom(
    "name",
    "builder",
    "system",
    "args",
    "env",
    "outputs",
    "inputDrvs",
    "inputSrcs",
  );
  test.prop([
    fc.oneof(fc.jsonValue(), fc.dictionary(field, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 })),
  ])("any JSON is a derivation or a DerivationError", (value) => {
    try {
      add(store, JSON.stringify(value) ?? "null");
    } catch (e) {
      expect(e).toBeInstanceOf(DerivationError);
    }
  });
});
