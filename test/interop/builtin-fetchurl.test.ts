// `builtin:fetchurl` as Nix 2.8 runs it: inside the engine, on any machine, the fixed-output hash
// checked; the same .drv gives the same output bytes and exit codes as Nix (102 on a mismatch).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { regularFileNarHash } from "../../src/nar/nar-hash.ts";
import { runCli } from "../cli/run-cli.ts";
import { haveRealNix, makeNixEnv, type NixEnv, nixDbFile, storeBeside } from "./real-nix.ts";

describe.runIf(haveRealNix())("builtin:fetchurl", () => {
  let nix: NixEnv | undefined;
  let scratch: string | undefined;
  afterAll(() => {
    nix?.cleanup();
    if (scratch) deleteTree(scratch);
  });

  it("fetches a file:// URL as Nix does; a wrong hash fails with 102 in both", () => {
    nix = makeNixEnv();
    scratch = mkdtempSync(join(tmpdir(), "nixstate-fetchurl-"));
    const source = join(scratch, "payload.sh");
    writeFileSync(source, "#!/bin/sh\necho fetched\n");
    // An executable download is hashed as a NAR (Nix refuses an executable flat output).
    const good = new Hash("sha256", regularFileNarHash(readFileSync(source), true).hash).format(
      "nix32",
    );
    const bad = Hash.of("sha256", "something else").format("nix32");
    const expr = (hash: string, name: string) => `
      derivation {
        name = "${name}"; builder = "builtin:fetchurl"; system = "builtin";
        url = "file://${source}"; executable = "1";
        outputHash = "${hash}"; outputHashAlgo = "sha256"; outputHashMode = "recursive";
      }`;
    const drvOf = (hash: string, name: string) =>
      nix!.run("nix-instantiate", [nix!.writeExpr(`${name}.nix`, expr(hash, name))]).trim();
    const goodDrv = drvOf(good, "fetched");
    const badDrv = drvOf(bad, "mismatch");
    const ours = (label: string) => [
      ...storeBeside(nix!, join(scratch!, label)),
      "--nix-db",
      nixDbFile(nix!),
    ];

    const nixOut = nix.run("nix-store", ["--realise", goodDrv]).trim();
    const r = runCli(["build", ...ours("a"), goodDrv], { env: { NIX_STATE_DIR: "" } });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    const out = r.stdout.toString().trim();
    expect(out).toBe(nixOut);
    const ourFile = join(scratch, "a", "root", out);
    expect(readFileSync(ourFile)).toEqual(readFileSync(nixOut));
    expect(statSync(ourFile).mode & 0o777).toBe(statSync(nixOut).mode & 0o777);

    const nixBad = spawnSync("nix-store", ["--realise", badDrv], { env: nix.env });
    const ourBad = runCli(["build", ...ours("b"), badDrv], { env: { NIX_STATE_DIR: "" } });
    expect(nixBad.status).toBe(102);
    expect(ourBad.status).toBe(102);
    expect(ourBad.stderr).toMatch(/hash mismatch in fixed-output derivation/);
  });
});
