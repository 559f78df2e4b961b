// Real Nix 2.8 copies to and from `nixstate --serve --write` through a real OpenSSH server on
// 127.0.0.1 (serve-nix-client.test.ts does the same through a stand-in ssh). Nix runs
// `ssh root@127.0.0.1 -x -a $NIX_SSHOPTS PROGRAM --serve --write`; PROGRAM is one word, so it is a
// wrapper script that starts nixstate with absolute paths (the remote login PATH may lack node).
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { repoRoot } from "../vectors.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";
import { haveSshd, type SshServer, startSshd } from "./sshd.ts";

const EXPR = `
let dep = derivation {
  name = "dep"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "echo dep > $out" ];
};
in derivation {
  name = "main"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir $out; echo \${dep} > $out/ref; echo over-sshd > $out/via" ];
}
`;

describe.runIf(haveRealNix() && haveSshd())(
  "nix copy through a real sshd to nixstate serve",
  () => {
    let nix: NixEnv;
    let sshd: SshServer;
    let url: string;
    let stateDir: string;
    let storeRoot: string;

    beforeAll(async () => {
      nix = makeNixEnv();
      sshd = await startSshd();
      stateDir = join(nix.root, "nixstate");
      storeRoot = join(nix.root, "nixstate-root");
      const program = join(nix.root, "nixstate-remote");
      writeFileSync(
        program,
        `#!/bin/sh\nexec '${process.execPath}' '${repoRoot}/bin/nixstate.js' "$@" --state-dir '${stateDir}' --store-dir '${nix.storeDir}' --store-root '${storeRoot}'\n`,
      );
      chmodSync(program, 0o755);
      url = `ssh://${sshd.destination}?remote-program=${program}`;
      nix.env.NIX_SSHOPTS = sshd.nixSshOpts;
    });

    afterAll(async () => {
      await sshd?.stop();
      if (nix) {
        deleteTree(nix.root);
        nix.cleanup();
      }
    });

    it("sends a closure with `nix copy --to` and fetches it back with `nix copy --from`", async () => {
      const main = nix.run("nix-build", [nix.writeExpr("e.nix", EXPR), "--no-out-link"]).trim();
      const closure = nix.run("nix-store", ["-qR", main]).trim().split("\n").sort();
      expect(closure).toHaveLength(2);
      const hashes = new Map(
        closure.map((p) => [p, nix.run("nix-store", ["-q", "--hash", p]).trim()]),
      );

      try {
        nix.run("nix", ["copy", "--to", url, main]);
      } catch (e) {
        throw new Error(`${(e as Error).message}\nsshd log:\n${sshd.log()}`);
      }
      // The copy really went through sshd, not a shortcut.
      await sshd.waitForLog(/Accepted publickey for root from 127\.0\.0\.1/);
      const store = LocalStore.open({ stateDir, storeDir: nix.storeDir, storeRoot });
      try {
        for (const p of closure) {
          expect(store.isValidPath(p)).toBe(true);
          expect(store.queryPathInfo(p).narHash.format("nix32")).toBe(hashes.get(p));
        }
      } finally {
        store.close();
      }

      nix.run("nix-store", ["--delete", ...closure]);
      expect(() => nix.run("nix-store", ["-q", "--hash", main])).toThrow();
      nix.run("nix", ["copy", "--no-check-sigs", "--from", url, main]);
      for (const p of closure) {
        expect(nix.run("nix-store", ["-q", "--hash", p]).trim()).toBe(hashes.get(p));
      }
      nix.run("nix-store", ["--verify-path", ...closure]);
    });
  },
);
