// Real Nix 2.8 as the client of `nixstate --serve --write`: `nix copy --to ssh://…` sends a
// closure (QueryValidPaths + AddToStoreNar), `nix copy --from ssh://…` fetches it back
// (QueryPathInfos, QueryClosure, DumpStorePath). The ssh stand-in runs the remote program
// locally; the nixstate store shares Nix's logical store directory but keeps its files apart.
// A remote build through Nix's build hook exercises BuildDerivation with Nix's own client.
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { SSH_STAND_IN } from "../fixtures/ssh-stand-in.ts";
import { repoRoot } from "../vectors.ts";
import { expectBuiltOnMachine, hookBuildArgs, hookBuildExpr } from "./hook-build-checks.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

const EXPR = `
let
  greeting = builtins.toFile "greeting.txt" "hello from builtins.toFile";
  dep = derivation {
    name = "dep"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" "echo dep > $out" ];
  };
in derivation {
  name = "main"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir $out; echo \${dep} > $out/ref; /bin/ln -s \${greeting} $out/g" ];
}
`;

describe.runIf(haveRealNix())("nix copy to and from nixstate serve", () => {
  let nix: NixEnv;
  let url: string;
  let stateDir: string;
  let storeRoot: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    nix = makeNixEnv();
    const shimDir = join(nix.root, "shim");
    mkdirSync(shimDir);
    copyFileSync(SSH_STAND_IN, join(shimDir, "ssh"));
    chmodSync(join(shimDir, "ssh"), 0o755);
    stateDir = join(nix.root, "nixstate");
    storeRoot = join(nix.root, "nixstate-root");
    const program = join(nix.root, "nixstate-remote");
    // Nix runs `PROGRAM --serve --write`: the wrapper adds where the nixstate store is.
    writeFileSync(
      program,
      `#!/bin/sh\nexec '${process.execPath}' '${repoRoot}/bin/nixstate.js' "$@" --state-dir '${stateDir}' --store-dir '${nix.storeDir}' --store-root '${storeRoot}'\n`,
    );
    chmodSync(program, 0o755);
    url = `ssh://buildbox?remote-program=${program}`;
    env = { ...nix.env, PATH: `${shimDir}:${process.env.PATH}` };
  });

  afterAll(() => {
    deleteTree(nix.root);
    nix.cleanup();
  });

  const nixRun = (args: string[]) => {
    const saved = { ...nix.env };
    Object.assign(nix.env, env);
    try {
      return nix.run("nix", args);
    } finally {
      for (const k of Object.keys(nix.env)) delete nix.env[k];
      Object.assign(nix.env, saved);
    }
  };

  it("receives a closure from `nix copy --to` and gives it back to `nix copy --from`", () => {
    const main = nix.run("nix-build", [nix.writeExpr("e.nix", EXPR), "--no-out-link"]).trim();
    const closure = nix.run("nix-store", ["-qR", main]).trim().split("\n").sort();
    expect(closure).toHaveLength(3);
    const hashes = new Map(
      closure.map((p) => [p, nix.run("nix-store", ["-q", "--hash", p]).trim()]),
    );

    nixRun(["copy", "--to", url, main]);
    const store = LocalStore.open({ stateDir, storeDir: nix.storeDir, storeRoot });
    try {
      for (const p of closure) {
        expect(store.isValidPath(p)).toBe(true);
        expect(store.queryPathInfo(p).narHash.format("nix32")).toBe(hashes.get(p));
      }
      expect(store.computeFSClosure([main])).toEqual(closure);
    } finally {
      store.close();
    }

    // greeting.txt stays: the .drv files in Nix's store keep it alive.
    const built = closure.filter((p) => !p.endsWith("-greeting.txt"));
    nix.run("nix-store", ["--delete", ...built]);
    expect(() => nix.run("nix-store", ["-q", "--hash", main])).toThrow();
    nixRun(["copy", "--no-check-sigs", "--from", url, main]);
    for (const p of closure) {
      expect(nix.run("nix-store", ["-q", "--hash", p]).trim()).toBe(hashes.get(p));
    }
    nix.run("nix-store", ["--verify-path", ...closure]);
  });

  it("builds for Nix's build hook (`--builders ssh://…`, -j0)", () => {
    // Here Nix's files live in a chroot store and nixstate's at the logical paths, so the
    // nixstate builder writes $out where its store expects it.
    const remote = makeNixEnv();
    try {
      const shimDir = join(remote.root, "shim");
      mkdirSync(shimDir);
      copyFileSync(SSH_STAND_IN, join(shimDir, "ssh"));
      chmodSync(join(shimDir, "ssh"), 0o755);
      const program = join(remote.root, "nixstate-remote");
      const serverState = join(remote.root, "nixstate");
      writeFileSync(
        program,
        `#!/bin/sh\nexec '${process.execPath}' '${repoRoot}/bin/nixstate.js' "$@" --state-dir '${serverState}' --store-dir '${remote.storeDir}'\n`,
      );
      chmodSync(program, 0o755);
      remote.env.PATH = `${shimDir}:${process.env.PATH}`;
      const client = join(remote.root, "client");
      const expr = remote.writeExpr("r.nix", hookBuildExpr("built on the remote side"));
      const machine = `ssh://buildbox?remote-program=${program} ${nixSystem()}`;
      const out = remote.run("nix-build", hookBuildArgs(expr, client, machine)).trim();
      expectBuiltOnMachine(out, client, { stateDir: serverState, storeDir: remote.storeDir });
    } finally {
      deleteTree(remote.root);
      remote.cleanup();
    }
  });
});
