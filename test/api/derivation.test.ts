// derivation() against what Nix 2.8's builtins.derivation writes: the .drv paths below were made
// by nix-instantiate with NIX_STORE_DIR=/tmp/nixprobe/store for the same attribute sets.
import { fc, test as fcTest } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { coerceToEnvString, printFloatJson } from "../../src/api/attr-coercion.ts";
import { type DerivationAttrs, nixstate } from "../../src/api/index.ts";
import { scanForOutputs } from "../../src/api/make-derivation.ts";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import { DerivationError } from "../../src/derivation/errors.ts";
import { checkOutputPaths, derivationPath } from "../../src/derivation/hash-modulo.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";

const STORE = "/tmp/nixprobe/store";
const { derivation } = nixstate({ storeDir: STORE, stateDir: "/nonexistent/state" });
const sys = "x86_64-linux";
const a = derivation({ name: "a", system: sys, builder: "/bin/sh", outputs: ["out", "dev"] });

describe("derivation(): the same .drv as Nix 2.8", () => {
  it("coerces env values as builtins.derivation does", () => {
    const b = derivation({
      name: "b",
      system: sys,
      builder: "/bin/sh",
      args: ["-c", `${a.dev} x`, 1, true],
      t: true,
      f: false,
      n: null,
      i: 42,
      neg: -3,
      fl: 1.5,
      fl2: 0.1,
      big: 1e20, // not a safe integer: a float, as Nix's 100000000000000000000.0
      l: [1, [], "x", [], [2, 3], null, false],
      d: a,
    });
    expect(b.drvPath).toBe(`${STORE}/fa7a6xgak83g381g6ld3x5va1xgn43sj-b.drv`);
    const env = b.derivation.env;
    expect(env.get("t")).toBe("1");
    expect(env.get("f")).toBe("");
    expect(env.get("n")).toBe("");
    expect(env.get("fl")).toBe("1.500000");
    expect(env.get("l")).toBe("1 x 2 3  ");
    expect(env.get("d")).toBe(a.outPath);
    expect(env.has("args")).toBe(false);
    expect(b.derivation.args).toEqual(["-c", `${a.dev.outPath} x`, "1", "1"]);
    // `${a.dev}` and `d = a`: both outputs of a are inputs.
    expect([...b.derivation.inputDrvs]).toEqual([[a.drvPath, ["dev", "out"]]]);
  });

  it("writes structured attributes as Nix's JSON", () => {
    const s = derivation({
      name: "s",
      system: sys,
      builder: "/bin/sh",
      __structuredAttrs: true,
      t: true,
      n: null,
      fl: 1.5,
      fl2: 0.1,
      big: 1e20,
      l: [1, 'x\n"\té', a],
      o: { z: 1, a: { outPath: "p" } },
      d: a,
      outputs: ["out", "bin"],
    });
    expect(s.drvPath).toBe(`${STORE}/f3k0sd2id1hd5j74l489phz258cwpvq0-s.drv`);
    expect(s.outputs.bin).toMatch(/-s-bin$/);
    expect(s.bin.outPath).toBe(s.outputs.bin);
  });

  it("leaves out nulls with __ignoreNulls", () => {
    const ig = derivation({
      name: "ig",
      system: sys,
      builder: "/bin/sh",
      __ignoreNulls: true,
      n: null,
      m: 1,
    });
    expect(ig.drvPath).toBe(`${STORE}/78j1c2di5ldfiggjdw5mw225nr7knsw4-ig.drv`);
    expect(ig.derivation.env.has("__ignoreNulls")).toBe(false);
  });

  it("makes fixed-output derivations", () => {
    const fo = derivation({
      name: "fo",
      system: sys,
      builder: "/bin/sh",
      outputHashMode: "recursive",
      outputHashAlgo: "sha256",
      outputHash: "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
    });
    expect(fo.drvPath).toBe(`${STORE}/kq1knw7cdz9lhviggz5biiiiz9vsn68z-fo.drv`);
    expect(fo.outPath).toBe(`${STORE}/3pc56jy2h0yr7ma2w1dqmm91bdw1h97l-fo`);
    const sri = derivation({
      name: "fo",
      system: sys,
      builder: "/bin/sh",
      outputHashMode: "recursive",
      outputHash: "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
    });
    expect(sri.outPath).toBe(fo.outPath);
    expect(() =>
      derivation({
        name: "x",
        builder: "/bin/sh",
        outputHash: "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
        outputs: ["out", "dev"],
      }),
    ).toThrow(/multiple outputs are not supported in fixed-output derivations/);
  });

  it("has one sub-object per output, the first being the default", () => {
    const lib = derivation({ name: "lib", builder: "/bin/sh", outputs: ["dev", "out"] });
    expect(lib.outputName).toBe("dev");
    expect(`${lib}`).toBe(lib.outputs.dev);
    expect(lib.dev.outPath).toBe(lib.outputs.dev);
    expect(lib.out.drvPath).toBe(lib.drvPath);
    expect(lib.derivation.env.get("outputs")).toBe("dev out");
    expect(lib.derivation.env.get("out")).toBe(lib.outputs.out);
    expect(lib.derivation.env.get("system")).toBe(lib.system);
  });
});

describe("string context by scanning", () => {
  it("finds outputs inside longer strings, and only registered ones", () => {
    const tool = derivation({ name: "tool", builder: "/bin/sh" });
    const text = `exec ${tool}/bin/tool --x=${a.dev}suffix /tmp/nixprobe/store/${"0".repeat(32)}-other`;
    const found = scanForOutputs([text], new StoreDir(STORE)).map((o) => o.outputName);
    expect(found.sort()).toEqual(["dev", "out"]);
    const user = derivation({ name: "user", builder: `${tool}/bin/tool`, env: "none" });
    expect([...user.derivation.inputDrvs.keys()]).toEqual([tool.drvPath]);
  });

  it("refuses derivations of another store directory", () => {
    const other = nixstate({ storeDir: "/tmp/other-store", stateDir: "/nonexistent" });
    expect(() => other.derivation({ name: "x", builder: "/bin/sh", dep: a })).toThrow(
      /made for store directory '\/tmp\/nixprobe\/store'/,
    );
  });
});

describe("attribute errors", () => {
  it("says what is wrong", () => {
    expect(() => derivation({ name: "x.drv", builder: "/bin/sh" })).toThrow(DerivationError);
    expect(() => derivation({ name: "x", builder: "" })).toThrow(/'builder' missing/);
    expect(() => derivation({ name: "x", builder: "/bin/sh", obj: { a: 1 } as never })).toThrow(
      /cannot coerce an object to a string/,
    );
    expect(() => derivation({ name: "x", builder: "/bin/sh", outputs: ["out", "out"] })).toThrow(
      /duplicate derivation output 'out'/,
    );
    expect(() =>
      derivation({ name: "x", builder: "/bin/sh", outputHashMode: "deep" as never }),
    ).toThrow(/invalid value 'deep'/);
  });
});

describe("coercion rules", () => {
  it("matches Nix's coerceToString", () => {
    expect(coerceToEnvString([[], "a", [[]], "b"], "x")).toBe("a  b"); // [[]] is not empty: a space follows it
    expect(coerceToEnvString([1, -0.25, 10n], "x")).toBe("1 -0.250000 10");
    expect(coerceToEnvString([null, true, false, "z"], "x")).toBe(" 1  z");
  });
  it("prints JSON floats as %g", () => {
    expect([1.5, 0.1, 1e20, 1e-7, 123456.7, 1234567.5, 0.0001].map(printFloatJson)).toEqual([
      "1.5",
      "0.1",
      "1e+20",
      "1e-07",
      "123457",
      "1.23457e+06",
      "0.0001",
    ]);
  });
});

const attrName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/);
const scalar = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }),
);
const attrValue = fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }));

describe("property: every .drv parses back and hashes to its path", () => {
  fcTest.prop(
    [
      fc.dictionary(attrName, attrValue, { maxKeys: 6 }),
      fc.boolean(),
      fc.uniqueArray(fc.stringMatching(/^[a-z]{1,5}$/), { minLength: 1, maxLength: 3 }),
      fc.boolean(),
    ],
    { numRuns: 60 },
  )("random attribute sets", (extra, structured, outputs, withInput) => {
    const dep = derivation({ name: "dep", builder: "/bin/sh", outputs: ["out", "lib"] });
    const attrs = Object.fromEntries(
      Object.entries(extra).filter(
        ([k]) =>
          !["name", "builder", "system", "args", "outputs"].includes(k) &&
          !k.startsWith("__") &&
          !k.startsWith("outputHash"),
      ),
    );
    const drv = derivation({
      ...attrs,
      name: "random",
      builder: "/bin/sh",
      outputs: outputs.filter((o) => o !== "drv"),
      ...(structured ? { __structuredAttrs: true } : {}),
      ...(withInput ? { dep: `${dep.lib}/x` } : {}),
    } as DerivationAttrs);
    const parsed = parseDerivation(printDerivation(drv.derivation), {
      name: "random",
      storeDir: new StoreDir(STORE),
    });
    const bytes = printDerivation(parsed);
    expect(derivationPath(parsed, bytes, new StoreDir(STORE))).toBe(drv.drvPath);
    checkOutputPaths(parsed, new StoreDir(STORE), (p) => {
      if (p !== dep.drvPath) throw new Error(`unexpected input ${p}`);
      return dep.derivation;
    });
    if (withInput) expect(parsed.inputDrvs.get(dep.drvPath)).toEqual(["lib"]);
  });
});
