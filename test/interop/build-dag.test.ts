// Differential test against real Nix 2.8: fast-check makes layered DAGs of derivations (successes,
// failing builders, fixed outputs, allowedReferences), nix-instantiate writes them, and
// `nixstate build -k` must end with the same valid outputs (NAR hashes, references), the same
// per-target success and the same exit code as `nix-store --realise -k` on the same .drv files.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { derivationNameFromFile } from "../../src/derivation/drv-file.ts";
import { Hash } from "../../src/hash/hash.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { NixDbReader } from "../../src/store/nix-db-reader.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { repoRoot } from "../vectors.ts";
import { nixList, nixString } from "./nix-expr.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

type Kind = "ok" | "fail" | "fixed" | "allowedOk" | "allowedBad" | "multi";
interface DagNode {
  kind: Kind;
  deps: number[];
}

const dagArb = fc.integer({ min: 1, max: 200 }).chain((n) =>
  fc.tuple(
    ...Array.from({ length: n }, (_, i) =>
      fc.record({
        kind: fc.constantFrom<Kind>(
          "ok",
          "ok",
          "ok",
          "ok",
          "ok",
          "multi",
          "fail",
          "fixed",
          "allowedOk",
          "allowedBad",
        ),
        deps: i === 0 ? fc.constant<number[]>([]) : fc.uniqueArray(fc.nat(i - 1), { maxLength: 3 }),
      }),
    ),
  ),
);

function dagExpr(nodes: DagNode[], salt: string): string {
  const lines = nodes.map((node, i) => {
    const name = `n${i}-${salt}`;
    const deps = node.deps.map((d, k) => `dep${k} = d${d};`).join(" ");
    const refs = node.deps.map((_, k) => `$dep${k}`).join(" ");
    const base = `name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; ${deps}`;
    switch (node.kind) {
      case "fail":
        return `d${i} = derivation { ${base} args = ["-c" "echo failing ${name}; exit 1"]; };`;
      case "fixed": {
        const content = `fixed ${name}`;
        const h = Hash.of("sha256", content).toBase16();
        return `d${i} = derivation { ${base} args = ["-c" ${nixString(`printf '${content}' > $out`)}]; outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "${h}"; };`;
      }
      case "allowedOk":
        return `d${i} = derivation { ${base} args = ["-c" ${nixString(`echo ${refs} > $out`)}]; allowedReferences = [ ${node.deps.map((d) => `d${d}`).join(" ")} ]; };`;
      case "allowedBad":
        return `d${i} = derivation { ${base} args = ["-c" ${nixString(`echo ${refs} $out > $out`)}]; allowedReferences = []; };`;
      case "multi":
        return `d${i} = derivation { ${base} outputs = ["out" "dev"]; args = ["-c" ${nixString(`echo ${refs} > $out; echo $out > $dev`)}]; };`;
      default:
        return `d${i} = derivation { ${base} args = ["-c" ${nixString(`echo ${name} ${refs} > $out`)}]; };`;
    }
  });
  return `let ${lines.join("\n")}\nin ${nixList(nodes.map((_, i) => `d${i}`))}`;
}

interface Outcome {
  exitCode: number;
  /** Target .drv → whether all its outputs are valid afterwards. */
  succeeded: Record<string, boolean>;
  /** Output path → `narHash refs...` for valid outputs. */
  valid: Record<string, string>;
}

describe.runIf(haveRealNix())("builds against real Nix 2.8 on generated DAGs", () => {
  let nix: NixEnv;
  let round = 0;
  beforeAll(() => {
    nix = makeNixEnv();
  });
  afterAll(() => nix?.cleanup());

  it("ends with the same outputs, statuses and exit code as nix-store --realise -k", () => {
    const storeDir = new StoreDir(nix.storeDir);
    let sawFailure = false;
    let sawSuccess = false;

    fc.assert(
      fc.property(dagArb, (nodes) => {
        const salt = `r${round++}`;
        const file = nix.writeExpr(`${salt}.nix`, dagExpr(nodes, salt));
        const drvPaths = nix
          .run("nix-instantiate", [file])
          .trim()
          .split("\n")
          .map((l) => l.split("!")[0]!);
        const outputsOf = (drvPath: string) => {
          const drv = parseDerivation(readFileSync(drvPath), {
            name: derivationNameFromFile(drvPath),
            storeDir,
          });
          return [...drv.outputs.values()].map((o) => (o.type === "deferred" ? "" : o.path));
        };
        const allOutputs = drvPaths.flatMap(outputsOf);
        const describe = (info: { narHash: Hash; references?: readonly string[] } | undefined) =>
          info ? `${info.narHash.toBase16()} ${[...(info.references ?? [])].join(" ")}` : undefined;

        // Real Nix first; its results are read from its own database.
        const nixRun = spawnSync("nix-store", ["--realise", "-k", "-j2", ...drvPaths], {
          env: nix.env,
        });
        const nixDb = NixDbReader.open(join(nix.root, "var", "db", "db.sqlite"));
        const theirs: Outcome = { exitCode: nixRun.status ?? -1, succeeded: {}, valid: {} };
        for (const p of allOutputs) {
          const d = describe(nixDb.queryPathInfo(p));
          if (d) theirs.valid[p] = d;
        }
        nixDb.close();
        for (const d of drvPaths)
          theirs.succeeded[d] = outputsOf(d).every((p) => p in theirs.valid);

        // Then nixstate on the same .drv files and store directory, with its own database.
        const stateDir = join(nix.root, `ns-${salt}`);
        const ours = spawnSync(
          process.execPath,
          [
            join(repoRoot, "bin/nixstate.js"),
            "build",
            "-k",
            "-j2",
            "--store-dir",
            nix.storeDir,
            "--state-dir",
            stateDir,
            ...drvPaths,
          ],
          { env: nix.env },
        );
        const store = LocalStore.open({ stateDir, storeDir: nix.storeDir });
        const mine: Outcome = { exitCode: ours.status ?? -1, succeeded: {}, valid: {} };
        for (const p of allOutputs) {
          const d = describe(store.tryQueryPathInfo(p));
          if (d) mine.valid[p] = d;
        }
        store.close();
        for (const d of drvPaths) mine.succeeded[d] = outputsOf(d).every((p) => p in mine.valid);

        expect(mine.succeeded, ours.stderr.toString()).toEqual(theirs.succeeded);
        expect(mine.valid).toEqual(theirs.valid);
        expect(mine.exitCode, ours.stderr.toString()).toBe(theirs.exitCode);
        if (Object.values(theirs.succeeded).includes(false)) sawFailure = true;
        if (Object.values(theirs.succeeded).includes(true)) sawSuccess = true;
      }),
      { numRuns: 8 },
    );
    expect(sawFailure && sawSuccess).toBe(true);
  });
});
