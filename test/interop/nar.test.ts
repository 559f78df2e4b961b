// Differential tests of src/nar against real Nix 2.8: for random trees, our NAR equals
// `nix-store --dump`, our NAR hash equals `nix-hash`, Nix restores our NAR to a tree that dumps
// back identically, and our listing equals `nix nar ls --json -R`. Nix is run once per batch (a
// shell loop over all trees), not once per tree, to keep the run to seconds.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { narHash } from "../../src/nar/nar-hash.ts";
import { narListing, renderNarListing } from "../../src/nar/nar-listing.ts";
import { restoreNar } from "../../src/nar/nar-restore.ts";
import { isUtf8Tree, type TreeNode, treeArb, writeTree } from "../nar/file-tree.ts";
import { dumpToBuffer } from "../nar/nar-chunks.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

interface Case {
  path: string;
  tree: TreeNode;
  nar: Buffer;
  sha256: string;
}

const TREES = 200;
const RESTORED_BY_NIX = 40;
const LISTED_BY_NIX = 40;

describe.runIf(haveRealNix())("NAR interop with Nix 2.8", () => {
  let nix: NixEnv;
  const cases: Case[] = [];

  /** Run a shell loop `script` over `paths` (as "$@") in the private Nix environment. */
  const loop = (script: string, paths: string[]) =>
    nix.runBuffer("sh", ["-c", `set -e; for p in "$@"; do ${script}; done`, "sh", ...paths]);

  const describeCase = (c: Case) => `${c.path}: ${fc.stringify(c.tree).slice(0, 2000)}`;

  afterAll(() => nix?.cleanup());

  it(`dumps ${TREES} random trees exactly like nix-store --dump, hashes like nix-hash`, async () => {
    nix = makeNixEnv();
    const trees = join(nix.root, "trees");
    mkdirSync(trees);
    await fc.assert(
      fc.asyncProperty(treeArb({ maxEntries: 4 }), async (tree) => {
        const path = join(trees, `t${cases.length}`);
        writeTree(path, tree);
        const nar = await dumpToBuffer(path);
        const { hash } = await narHash(path);
        cases.push({ path, tree, nar, sha256: hash.toString("hex") });
      }),
      { numRuns: TREES },
    );
    expect(cases.length).toBe(TREES);
    const paths = cases.map((c) => c.path);
    loop('nix-store --dump "$p" > "$p.nix.nar"', paths);
    const hashes = nix
      .run("nix-hash", ["--type", "sha256", ...paths])
      .trim()
      .split("\n");
    expect(hashes.length).toBe(TREES);

    const dumpMismatches = cases.filter((c) => !readFileSync(`${c.path}.nix.nar`).equals(c.nar));
    expect(dumpMismatches.map(describeCase)).toEqual([]);
    const hashMismatches = cases.filter((c, i) => hashes[i] !== c.sha256);
    expect(hashMismatches.map(describeCase)).toEqual([]);
  });

  it("hashes like nix-hash with md5, sha1 and sha512", async () => {
    const sample = cases.slice(0, 30);
    expect(sample.length).toBeGreaterThan(0);
    for (const algorithm of ["md5", "sha1", "sha512"] as const) {
      const theirs = nix
        .run("nix-hash", ["--type", algorithm, ...sample.map((c) => c.path)])
        .trim()
        .split("\n");
      const ours = await Promise.all(
        sample.map(async (c) => (await narHash(c.path, algorithm)).hash.toString("hex")),
      );
      expect(ours).toEqual(theirs);
    }
  });

  it("Nix restores our NARs to trees that dump back identically; we restore Nix's", async () => {
    const sample = cases.slice(0, RESTORED_BY_NIX);
    expect(sample.length).toBeGreaterThan(0);
    for (const c of sample) writeFileSync(`${c.path}.ours.nar`, c.nar);
    loop(
      'nix-store --restore "$p.by-nix" < "$p.ours.nar"; nix-store --dump "$p.by-nix" > "$p.redump.nar"',
      sample.map((c) => c.path),
    );
    const mismatches = sample.filter((c) => !readFileSync(`${c.path}.redump.nar`).equals(c.nar));
    expect(mismatches.map(describeCase)).toEqual([]);
    for (const c of sample) {
      const target = `${c.path}.by-us`;
      await restoreNar([readFileSync(`${c.path}.nix.nar`)], target);
      expect((await dumpToBuffer(target)).equals(c.nar), describeCase(c)).toBe(true);
    }
  });

  it("lists NARs exactly like `nix nar ls --json -R` (UTF-8 names)", async () => {
    const sample = cases.filter((c) => isUtf8Tree(c.tree)).slice(0, LISTED_BY_NIX);
    expect(sample.length).toBeGreaterThan(0);
    const script = 'nix nar ls --json -R "$p.nix.nar" / > "$p.ls.json"';
    loop(
      script,
      sample.map((c) => c.path),
    );
    const mismatches: string[] = [];
    for (const c of sample) {
      const theirs = readFileSync(`${c.path}.ls.json`, "utf8").trim();
      const ours = renderNarListing(await narListing([c.nar]));
      if (ours !== `{"version":1,"root":${theirs}}`) {
        mismatches.push(`${describeCase(c)}\n ours:   ${ours}\n theirs: ${theirs}`);
      }
    }
    expect(mismatches).toEqual([]);
  });
});
