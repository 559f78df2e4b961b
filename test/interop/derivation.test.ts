// Differential test against real Nix 2.8: fast-check makes derivation expressions, nix-instantiate
// writes the .drv files, and nixstate must read, print, name and show them exactly as Nix does,
// and write them back from `nix show-derivation`'s JSON (`derivation add`) byte for byte.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { Derivation } from "../../src/derivation/derivation.ts";
import { derivationNameFromFile, readDerivationFile } from "../../src/derivation/drv-file.ts";
import { computeOutputPaths, type DrvHashCache } from "../../src/derivation/hash-modulo.ts";
import { HASH_ALGOS, Hash, type HashAlgo } from "../../src/hash/hash.ts";
import { regularFileNarHash } from "../../src/nar/nar-hash.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { repoRoot } from "../vectors.ts";
import { nixList, nixString } from "./nix-expr.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

interface Case {
  name: string;
  args: string[];
  env: [string, string][];
  outputs: string[];
  /** Indices (into the earlier cases of the batch) this one depends on, and which output. */
  deps: { index: number; output: string }[];
  /** A builtins.toFile source it refers to. */
  src?: { name: string; text: string };
  fixed?: {
    mode: "flat" | "recursive";
    algo: HashAlgo;
    content: string;
    format: "base16" | "nix32" | "sri";
  };
}

const nameChar = fc.constantFrom(..."abcxyzABC0123456789+-._?=");
const name = fc
  .string({ unit: nameChar, minLength: 1, maxLength: 20 })
  .filter((n) => !n.startsWith(".") && !n.endsWith(".drv"));
const tricky = fc.string({
  unit: fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        '"',
        "\\",
        "\n",
        "\r",
        "\t",
        "$",
        "{",
        "}",
        " ",
        "a",
        "'",
        "\x01",
        "\x7f",
      ),
    },
    { weight: 2, arbitrary: fc.constantFrom("é", "大", "🙂", "\u00a0", "ÅÄÖ") },
  ),
  maxLength: 16,
});

function caseArb(index: number): fc.Arbitrary<Case> {
  return fc.record(
    {
      name,
      args: fc.array(tricky, { maxLength: 4 }),
      env: fc.uniqueArray(
        fc.tuple(
          tricky.map((k) => `e_${k}`),
          tricky,
        ),
        { selector: (x) => x[0], maxLength: 5 },
      ),
      outputs: fc.constantFrom(["out"], ["out", "dev"], ["bin", "out", "lib"]),
      deps:
        index === 0
          ? fc.constant([])
          : fc.uniqueArray(
              fc.record({ index: fc.nat(index - 1), output: fc.constantFrom("out", "first") }),
              { selector: (d) => `${d.index}`, maxLength: 3 },
            ),
      src: fc.option(fc.record({ name, text: tricky }), { nil: undefined }),
      fixed: fc.option(
        fc.record({
          mode: fc.constantFrom<"flat" | "recursive">("flat", "recursive"),
          algo: fc.constantFrom<HashAlgo>(...HASH_ALGOS.filter((a) => a !== "md5")),
          content: tricky,
          format: fc.constantFrom<"base16" | "nix32" | "sri">("base16", "nix32", "sri"),
        }),
        { nil: undefined, freq: 4 },
      ),
    },
    { requiredKeys: ["name", "args", "env", "outputs", "deps"] },
  );
}

const BATCH = 25;
const batchArb = fc.tuple(...Array.from({ length: BATCH }, (_, i) => caseArb(i)));

function caseExpr(c: Case, i: number, all: Case[]): string {
  const attrs: string[] = [
    `name = ${nixString(c.name)};`,
    "system = builtins.currentSystem;",
    'builder = "/bin/sh";',
    `args = ${nixList(c.args.map(nixString))};`,
    ...c.env.map(([k, v]) => `${nixString(k)} = ${nixString(v)};`),
  ];
  if (c.fixed) {
    const body = Buffer.from(c.fixed.content);
    const digest =
      c.fixed.mode === "flat"
        ? Hash.of(c.fixed.algo, body)
        : new Hash(c.fixed.algo, regularFileNarHash(body, false, c.fixed.algo).hash);
    attrs.push(
      `outputHashMode = "${c.fixed.mode}";`,
      `outputHashAlgo = "${c.fixed.algo}";`,
      `outputHash = "${c.fixed.format === "sri" ? digest.toSri() : digest.format(c.fixed.format, false)}";`,
    );
  } else if (c.outputs.length > 1 || c.outputs[0] !== "out") {
    attrs.push(`outputs = ${nixList(c.outputs.map(nixString))};`);
  }
  for (const [k, d] of c.deps.entries()) {
    const dep = all[d.index]!;
    const outs = dep.fixed ? ["out"] : dep.outputs;
    const out = d.output === "first" ? outs[0]! : outs.includes("out") ? "out" : outs[0]!;
    attrs.push(`dep${k} = "\${d${d.index}.${out}}";`);
  }
  if (c.src) attrs.push(`src = builtins.toFile ${nixString(c.src.name)} ${nixString(c.src.text)};`);
  return `d${i} = derivation { ${attrs.join(" ")} };`;
}

describe.runIf(haveRealNix())("derivations against real Nix 2.8", () => {
  let nix: NixEnv;
  let batchNo = 0;
  let checked = 0;
  const seen = { fixed: 0, inputDrvs: 0, inputSrcs: 0, multiOutput: 0 };
  beforeAll(() => {
    nix = makeNixEnv();
  });
  afterAll(() => nix?.cleanup());

  it("reads, prints, names and shows every generated derivation as Nix does (≥ 200 cases)", () => {
    const storeDir = new StoreDir(nix.storeDir);
    fc.assert(
      fc.property(batchArb, (cases) => {
        const expr = `let ${cases.map((c, i) => caseExpr(c, i, cases)).join("\n")}\nin [ ${cases.map((_, i) => `d${i}`).join(" ")} ]`;
        const file = nix.writeExpr(`batch${batchNo++}.nix`, expr);
        // A derivation whose first output is not `out` is printed as `path!output`.
        const drvPaths = nix
          .run("nix-instantiate", [file])
          .trim()
          .split("\n")
          .map((l) => l.split("!")[0]!);
        expect(drvPaths).toHaveLength(cases.length);

        const cache: DrvHashCache = new Map();
        const resolve = (p: string): Derivation =>
          parseDerivation(readFileSync(p), { name: derivationNameFromFile(p), storeDir });
        for (const drvPath of drvPaths) {
          const bytes = readFileSync(drvPath);
          const loaded = readDerivationFile(drvPath, storeDir);
          expect(printDerivation(loaded.drv).equals(bytes), `re-printed ${drvPath}`).toBe(true);
          expect(loaded.drvPath).toBe(drvPath);
          const computed = computeOutputPaths(loaded.drv, storeDir, resolve, cache);
          for (const [out, o] of loaded.drv.outputs) {
            expect(o.type === "deferred" ? "" : o.path, `${drvPath}!${out}`).toBe(
              computed.get(out),
            );
          }
          checked++;
          if ([...loaded.drv.outputs.values()].some((o) => o.type === "fixed")) seen.fixed++;
          if (loaded.drv.inputDrvs.size > 0) seen.inputDrvs++;
          if (loaded.drv.inputSrcs.length > 0) seen.inputSrcs++;
          if (loaded.drv.outputs.size > 1) seen.multiOutput++;
        }
        // `nixstate derivation show` equals `nix show-derivation`, for the whole batch at once.
        const theirs = JSON.parse(nix.run("nix", ["show-derivation", ...drvPaths]));
        const ours = JSON.parse(
          execFileSync(
            process.execPath,
            [join(repoRoot, "bin/nixstate.js"), "derivation", "show", ...drvPaths],
            {
              env: { ...process.env, NIXSTATE_STORE_DIR: "" },
              maxBuffer: 1 << 28,
            },
          ).toString("utf8"),
        );
        expect(ours).toEqual(theirs);
        // `nixstate derivation add` of that JSON writes the same .drv files at the same paths
        // (into a store beside Nix's: same store directory, its own files; sources come along).
        const beside = join(nix.root, `ours${batchNo}`);
        const added = execFileSync(
          process.execPath,
          [
            join(repoRoot, "bin/nixstate.js"),
            "derivation",
            "add",
            "--store-dir",
            nix.storeDir,
            "--store-root",
            join(beside, "root"),
            "--state-dir",
            join(beside, "state"),
            "--nix-db",
            join(nix.root, "var", "db", "db.sqlite"),
          ],
          { input: JSON.stringify(theirs), env: { ...process.env, NIXSTATE_STORE_DIR: "" } },
        )
          .toString("utf8")
          .trim()
          .split("\n");
        expect(added).toEqual(Object.keys(theirs));
        for (const p of added) {
          expect(readFileSync(join(beside, "root", p)).equals(readFileSync(p)), p).toBe(true);
        }
      }),
      { numRuns: 8 },
    );
    expect(checked).toBeGreaterThanOrEqual(200);
    // The generator must actually reach every kind of derivation it claims to cover.
    for (const [kind, n] of Object.entries(seen)) expect(n, kind).toBeGreaterThan(5);
  });
});
