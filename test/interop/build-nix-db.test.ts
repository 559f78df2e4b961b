// `nixstate build` of a .drv from a Nix store whose database is not where it is looked for
// (not $NIX_STATE_DIR, not beside the store): --nix-db names it, and the error says so.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "../cli/run-cli.ts";
import { haveRealNix, makeNixEnv, type NixEnv, nixDbFile, storeBeside } from "./real-nix.ts";

// A source that refers to another: only Nix's database tells its references.
const EXPR = `
let
  greeting = builtins.toFile "greeting.txt" "hello from a source";
  note = builtins.toFile "note.txt" "see \${greeting}";
in derivation {
  name = "greet"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "read line < \${note}; echo \\"$line\\" > $out" ];
}
`;

describe.runIf(haveRealNix())("nixstate build --nix-db", () => {
  let nix: NixEnv | undefined;
  let scratch: string | undefined;
  afterAll(() => {
    nix?.cleanup();
    if (scratch) deleteTree(scratch);
  });

  it("builds a Nix store's .drv with the database named, as Nix does; without it, says how", () => {
    nix = makeNixEnv();
    scratch = mkdtempSync(join(tmpdir(), "nixstate-nix-db-"));
    const drv = nix.run("nix-instantiate", [nix.writeExpr("greet.nix", EXPR)]).trim();
    // This Nix keeps its database in <root>/var/db, where nothing would find it by itself.
    const db = nixDbFile(nix);
    const ours = (label: string) => storeBeside(nix!, join(scratch!, label));
    const env = { NIX_STATE_DIR: "" };

    const without = runCli(["build", ...ours("a"), drv], { env });
    expect(without.status).toBe(1);
    expect(without.stderr).toMatch(
      /note\.txt' \(its references are unknown\) without Nix's database; give it to 'nixstate build' .* with --nix-db/,
    );

    // The builder must see the inputs at their store paths while their files are kept elsewhere
    // (--store-root): the sandbox binds them there.
    const withDb = runCli(["build", ...ours("b"), "--sandbox", "--nix-db", db, drv], { env });
    expect(withDb.stderr).not.toMatch(/error/);
    expect(withDb.status).toBe(0);
    const out = withDb.stdout.toString().trim();
    const nixOut = nix.run("nix-store", ["--realise", drv]).trim();
    expect(out).toBe(nixOut);
    const ourFile = join(scratch, "b", "root", out);
    expect(readFileSync(ourFile, "utf8")).toBe(readFileSync(nixOut, "utf8"));
    expect(readFileSync(ourFile, "utf8")).toMatch(/^see \/\S+-greeting\.txt\n$/);
  });
});
