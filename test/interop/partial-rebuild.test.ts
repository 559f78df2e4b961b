// Rebuilding a derivation when only some of its outputs are valid (one was deleted): as Nix 2.8,
// the builder writes the valid output to a scratch path, the valid one stays as it is, and the
// rebuilt output refers to the real path. Same exit code and same bytes as Nix.
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "../cli/run-cli.ts";
import { haveRealNix, makeNixEnv, type NixEnv, nixDbFile, storeBeside } from "./real-nix.ts";

const EXPR = `
derivation {
  name = "two"; system = builtins.currentSystem; builder = "/bin/sh";
  outputs = [ "first" "second" ];
  args = [ "-c" "read x < /dev/null; echo one > $first; echo \\"$first\\" > $second" ];
}
`;

describe.runIf(haveRealNix())("rebuilding with only some outputs valid", () => {
  let nix: NixEnv | undefined;
  let scratch: string | undefined;
  afterAll(() => {
    nix?.cleanup();
    if (scratch) deleteTree(scratch);
  });

  it("keeps the valid output, rebuilds the other referring to it, as Nix 2.8", () => {
    nix = makeNixEnv();
    scratch = mkdtempSync(join(tmpdir(), "nixstate-partial-"));
    // nix-instantiate names each output (`…drv!first`): the .drv is the part before the `!`.
    const drv = nix
      .run("nix-instantiate", [nix.writeExpr("two.nix", EXPR)])
      .trim()
      .split("!")[0]!;
    const db = nixDbFile(nix);
    const root = join(scratch, "root");
    const ours = storeBeside(nix, scratch);
    const env = { NIX_STATE_DIR: "" };

    // Nix: build both, delete `second`, build again.
    const outs = nix.run("nix-store", ["-q", "--outputs", drv]).trim().split("\n");
    const first = outs.find((p) => p.endsWith("-two-first"));
    const second = outs.find((p) => p.endsWith("-two-second"));
    nix.run("nix-store", ["--realise", drv]);
    nix.run("nix-store", ["--delete", second!]);
    nix.run("nix-store", ["--realise", drv]);
    expect(nix.run("nix-store", ["--check-validity", first!, second!])).toBe("");

    // nixstate, the same.
    const build = () => runCli(["build", ...ours, "--sandbox", "--nix-db", db, drv], { env });
    const b1 = build();
    expect(b1.stderr).not.toMatch(/error/);
    expect(b1.status).toBe(0);
    const firstFile = join(root, first!);
    const before = statSync(firstFile);
    const del = runCli(["store", "delete", ...ours, second!], { env });
    expect(del.status).toBe(0);
    const b2 = build();
    expect(b2.stderr).not.toMatch(/error|File exists/);
    expect(b2.status).toBe(0);
    expect(b2.stdout.toString().trim().split("\n").sort()).toEqual([first, second].sort());
    // The valid output was left alone; the rebuilt one names it, byte for byte as Nix's.
    expect(statSync(firstFile).ino).toBe(before.ino);
    expect(readFileSync(join(root, second!), "utf8")).toBe(`${first}\n`);
    expect(readFileSync(join(root, second!))).toEqual(readFileSync(second!));
    const info = runCli(["store", "path-info", ...ours, "--json", second!], { env });
    expect(info.status).toBe(0);
    expect(info.stdout.toString()).toContain(first!.slice(nix.storeDir.length + 1));
    // No scratch copy of `first` is left in the store.
    const leftovers = runCli(["store", "verify", ...ours], { env });
    expect(leftovers.status).toBe(0);
  });
});
