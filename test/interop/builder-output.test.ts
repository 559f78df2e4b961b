// How a build ends, compared with Nix 2.8 on the same .drv: the end of the builder's output is
// the end of the build (a builder that closes it and keeps running is killed), and
// --max-log-size holds on the bytes as they arrive. nixstate builds in its sandbox (its store
// lives beside Nix's under the same store directory), where bwrap itself must not hold the log
// open. (Outside a sandbox a background process's late output is waited for, as Nix does: see
// test/builder/run-builder.test.ts; inside one it dies with the builder's pid namespace.)
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "../cli/run-cli.ts";
import { nixString } from "./nix-expr.ts";
import { haveRealNix, makeNixEnv, type NixEnv, nixDbFile, storeBeside } from "./real-nix.ts";

const drvExpr = (name: string, script: string) => `
derivation {
  name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" ${nixString(script)} ];
}
`;

describe.runIf(haveRealNix())("how a build ends, as Nix 2.8", () => {
  let nix: NixEnv | undefined;
  let scratch: string | undefined;
  afterAll(() => {
    nix?.cleanup();
    if (scratch) deleteTree(scratch);
  });

  const both = (name: string, script: string, nixFlags: string[] = [], ourFlags: string[] = []) => {
    nix ??= makeNixEnv();
    scratch ??= mkdtempSync(join(tmpdir(), "nixstate-ends-"));
    const drv = nix.run("nix-instantiate", [nix.writeExpr(`${name}.nix`, drvExpr(name, script))]);
    const path = drv.trim();
    const t0 = Date.now();
    const theirs = spawnSync("nix-store", ["--realise", path, ...nixFlags], {
      env: nix.env,
      encoding: "utf8",
    });
    const nixMs = Date.now() - t0;
    const t1 = Date.now();
    const ours = runCli(
      [
        "build",
        ...storeBeside(nix, scratch),
        "--sandbox",
        "--nix-db",
        nixDbFile(nix),
        ...ourFlags,
        path,
      ],
      { env: { NIX_STATE_DIR: "" } },
    );
    return { path, theirs, nixMs, ours, ourMs: Date.now() - t1 };
  };

  it("kills a builder that closes its output and keeps running: signal 9, exit 100", () => {
    const r = both("closer", "echo hi; exec >&- 2>&-; /bin/sleep 30; echo x > $out");
    expect(r.theirs.status).toBe(100);
    expect(r.theirs.stderr).toContain("failed due to signal 9 (Killed)");
    expect(r.ours.status).toBe(r.theirs.status);
    expect(r.ours.stderr.toString()).toContain(
      `builder for '${r.path}' failed due to signal 9 (Killed)`,
    );
    expect(r.ourMs).toBeLessThan(10_000);
  });

  it("stops a log flood at --max-log-size, exit 1 as Nix", () => {
    const script = "while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done";
    const r = both(
      "flood",
      script,
      ["--option", "max-log-size", "100000"],
      ["--max-log-size", "100000"],
    );
    expect(r.ours.status).toBe(r.theirs.status);
    expect(r.ours.stderr.toString()).toMatch(/killed after writing more than 100000 bytes/);
    const log = runCli(["log", ...storeBeside(nix!, scratch!), r.path], {
      env: { NIX_STATE_DIR: "" },
    });
    expect(log.stdout.length).toBeLessThanOrEqual(100_000);
  });
});
