// Every .drv vector: parse, print back byte for byte, recompute its path and output paths, and
// compare with the JSON twin; the bad-* and newer-than-2.8 ones must be refused.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { Derivation } from "../../src/derivation/derivation.ts";
import {
  derivationNameFromFile,
  loadDerivation,
  readDerivationFile,
} from "../../src/derivation/drv-file.ts";
import { AtermParseError, DerivationError } from "../../src/derivation/errors.ts";
import {
  checkOutputPaths,
  computeOutputPaths,
  derivationPath,
  hashDerivationModulo,
} from "../../src/derivation/hash-modulo.ts";
import {
  derivationFromJson,
  derivationToJson,
  renderShowDerivation,
} from "../../src/derivation/show-json.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { haveVectors, readVectorJson, vectorPath } from "../vectors.ts";

const sd = StoreDir.nix;
const drvFiles = (dir: string) =>
  haveVectors
    ? readdirSync(vectorPath(dir))
        .filter((f) => f.endsWith(".drv"))
        .map((f) => join(dir, f))
    : [];

/** The hash-modulo fixtures are named `source-first.drv` etc.; their derivation name is `source`. */
const fixtureName = (f: string) =>
  derivationNameFromFile(f).replace(/-(first|second|split|joined)$/, "");

/** Resolve input derivations from the .drv files of the same folder, by their computed paths. */
function folderResolver(dir: string): (p: string) => Derivation {
  const byPath = new Map<string, Derivation>();
  for (const f of drvFiles(dir)) {
    try {
      const bytes = readFileSync(vectorPath(f));
      const name = fixtureName(f);
      const drv = parseDerivation(bytes, { name, storeDir: sd });
      byPath.set(derivationPath(drv, bytes, sd), drv);
    } catch {
      // refused files are not inputs of anything here
    }
  }
  return (p) => {
    const d = byPath.get(p);
    if (!d) throw new Error(`input ${p} not among the vectors`);
    return d;
  };
}

describe.runIf(haveVectors)("derivation vectors", () => {
  const roundTrip = [
    ...drvFiles("derivation/go-nix"),
    ...drvFiles("derivation/nix-2.8"),
    ...drvFiles("nix/libstore-tests/data/derivation/ia"),
    ...drvFiles("nix/libstore-tests/data/derivation/hash-modulo").filter(
      (f) => !f.endsWith("-modulo.drv"),
    ),
    "nix/libstore-tests/data/derivation/simple-derivation.drv",
    "nix/libstore-tests/fuzz/data/derivations/hello-not-structured.drv",
    "nix/libstore-tests/fuzz/data/derivations/hello.drv",
  ];

  it.each(roundTrip)("%s parses and prints back byte for byte", (f) => {
    const bytes = readFileSync(vectorPath(f));
    const drv = parseDerivation(bytes, {
      name: derivationNameFromFile(f),
      storeDir: sd,
      source: f,
    });
    expect(printDerivation(drv).toString("latin1")).toBe(bytes.toString("latin1"));
  });

  it.each(["hello.drv", "firefox.drv"])("%s (anonymised, unsorted) parses", (f) => {
    const drv = parseDerivation(readFileSync(vectorPath("nix/libstore-tests/data/derivation", f)), {
      name: "x",
      storeDir: sd,
    });
    expect(drv.outputs.size).toBeGreaterThan(0);
    expect(drv.env.size).toBeGreaterThan(0);
  });

  const named = [...drvFiles("derivation/go-nix"), ...drvFiles("derivation/nix-2.8")];
  it.each(named)("%s: computed .drv path and output paths equal the recorded ones", (f) => {
    const loaded = readDerivationFile(vectorPath(f), sd);
    expect(basename(loaded.drvPath)).toBe(basename(f));
    const resolve = folderResolver(dirname(f));
    const inputsPresent = [...loaded.drv.inputDrvs.keys()].every((p) => {
      try {
        resolve(p);
        return true;
      } catch {
        return false;
      }
    });
    if (inputsPresent) checkOutputPaths(loaded.drv, sd, resolve);
  });

  it.each(
    named.filter(
      (f) =>
        !f.includes("bootstrap") &&
        !f.includes("jq-") &&
        !f.includes("bash44") &&
        !f.includes("foo-file"),
    ),
  )("%s: show-derivation JSON equals its twin", (f) => {
    const loaded = readDerivationFile(vectorPath(f), sd);
    const twin = vectorPath(`${f}${f.includes("nix-2.8") ? ".show-derivation.json" : ".json"}`);
    const twinBytes = readFileSync(twin);
    const twinText = twinBytes.toString("utf8");
    const ours = renderShowDerivation([[loaded.drvPath, loaded.drv]]);
    expect(JSON.parse(ours.toString("utf8"))).toEqual(JSON.parse(twinText));
    // Twins in Nix 2.8's own key order must match byte for byte (raw non-UTF-8 bytes included).
    const nixOrder = /nix-2\.8|latin1|cp1252/.test(f);
    if (nixOrder)
      expect(ours.toString("latin1").trimEnd()).toBe(twinBytes.toString("latin1").trimEnd());
    // and back: JSON → derivation → the same ATerm bytes (JSON loses non-UTF-8 bytes)
    if (!/latin1|cp1252/.test(f)) {
      const back = derivationFromJson(JSON.parse(twinText)[loaded.drvPath], loaded.drv.name);
      expect(printDerivation(back).equals(loaded.bytes)).toBe(true);
      expect(derivationToJson(back)).toEqual(derivationToJson(loaded.drv));
    }
  });

  it("hashDerivationModulo matches the compiled cases", () => {
    type C = { drv: string; hashDerivationModuloHex: string; maskedATerm?: string };
    const { cases } = readVectorJson<{ cases: C[] }>("derivation", "hash-modulo-cases.json");
    for (const c of cases) {
      const f = c.drv;
      const bytes = readFileSync(vectorPath(f));
      const drv = parseDerivation(bytes, { name: fixtureName(f), storeDir: sd });
      const resolve = folderResolver(dirname(f));
      const hashes = hashDerivationModulo(drv, sd, c.maskedATerm !== undefined, resolve);
      expect(hashes.get("out")!.toBase16(), f).toBe(c.hashDerivationModuloHex);
    }
  });

  it("masked ATerms of the hash-modulo fixtures equal the *-modulo.drv files (with the merge rule)", () => {
    const dir = "nix/libstore-tests/data/derivation/hash-modulo";
    const resolve = folderResolver(dir);
    for (const which of [
      "intermediate-first",
      "intermediate-second",
      "parent-split",
      "parent-joined",
    ]) {
      const drv = parseDerivation(readFileSync(vectorPath(dir, `${which}.drv`)), {
        name: which.split("-")[0]!,
        storeDir: sd,
      });
      const masked = readFileSync(vectorPath(dir, `${which}-modulo.drv`));
      const want = createHash("sha256").update(masked).digest("hex");
      expect(hashDerivationModulo(drv, sd, true, resolve).get("out")!.toBase16(), which).toBe(want);
    }
  });

  it("the nix-2.8 derivations' output paths recompute from scratch", () => {
    const dir = "derivation/nix-2.8";
    const resolve = folderResolver(dir);
    for (const f of drvFiles(dir)) {
      const { drv } = readDerivationFile(vectorPath(f), sd);
      const computed = computeOutputPaths(drv, sd, resolve);
      for (const [name, o] of drv.outputs) {
        expect(o.type === "deferred" ? "" : o.path).toBe(computed.get(name));
      }
    }
  });

  type ErrorClass = abstract new (...args: never[]) => Error;
  const refused: [string, RegExp, ErrorClass][] = [
    [
      "nix/libstore-tests/data/derivation/bad-version.drv",
      /unknown derivation version/,
      DerivationError,
    ],
    [
      "nix/libstore-tests/data/derivation/dyn-dep-derivation.drv",
      /dynamic derivations/,
      DerivationError,
    ],
    [
      "nix/libstore-tests/data/derivation/bad-old-version-dyn-deps.drv",
      /expected '\['/,
      AtermParseError,
    ],
    [
      "nix/libstore-tests/data/derivation/bad-ca-fixed-path.drv",
      /incorrect output/,
      DerivationError,
    ],
    [
      "nix/libstore-tests/fuzz/data/derivations/bad-version.drv",
      /unknown derivation version/,
      DerivationError,
    ],
    [
      "nix/libstore-tests/fuzz/data/derivations/dyn-dep-derivation.drv",
      /dynamic derivations/,
      DerivationError,
    ],
    [
      "nix/libstore-tests/fuzz/data/derivations/unterminated-string.drv",
      /end of a string|end of file/,
      AtermParseError,
    ],
    ["derivation/tvix/duplicate.drv", /duplicate environment variable/, AtermParseError],
    ...drvFiles("nix/libstore-tests/data/derivation/ca").map(
      (f) => [f, /ca-derivations/, DerivationError] as [string, RegExp, ErrorClass],
    ),
  ];
  it.each(refused)("%s is refused", (f, msg, type) => {
    const bytes = readFileSync(vectorPath(f));
    const load = () => loadDerivation(bytes, { name: "fixed", storeDir: sd, source: f });
    expect(load).toThrow(type);
    expect(load).toThrow(msg);
  });
});
