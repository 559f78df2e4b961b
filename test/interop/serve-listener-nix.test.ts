// Real Nix 2.8 against a resident `nixstate serve --listen` (the CLI, as a build machine runs it),
// reached through bin/nixstate-serve-connect as the remote-program: the build hook's sessions
// (one per build) and `nix copy` both ways; then SIGTERM stops the server and removes its socket.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { SSH_STAND_IN } from "../fixtures/ssh-stand-in.ts";
import { repoRoot } from "../vectors.ts";
import { expectBuiltOnMachine, hookBuildArgs, hookBuildExpr } from "./hook-build-checks.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

describe.runIf(haveRealNix())("real Nix with a resident nixstate serve --listen", () => {
  let nix: NixEnv;
  let server: ChildProcess;
  let socket: string;
  let serverState: string;
  let url: string;
  let stderr = "";

  beforeAll(async () => {
    nix = makeNixEnv();
    const shimDir = join(nix.root, "shim");
    mkdirSync(shimDir);
    copyFileSync(SSH_STAND_IN, join(shimDir, "ssh"));
    chmodSync(join(shimDir, "ssh"), 0o755);
    nix.env.PATH = `${shimDir}:${process.env.PATH}`;
    serverState = join(nix.root, "nixstate");
    socket = join(nix.root, "serve.socket");
    server = spawn(
      process.execPath,
      [
        join(repoRoot, "bin/nixstate.js"),
        "serve",
        "--listen",
        socket,
        "--write",
        "--state-dir",
        serverState,
        "--store-dir",
        nix.storeDir,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    server.stderr!.on("data", (d) => {
      stderr += d;
    });
    const [line] = await once(server.stdout!, "data");
    expect(String(line)).toBe(`nixstate serve: listening on ${socket}\n`);
    // Nix runs `PROGRAM --serve --write` through ssh; the socket comes from the environment.
    nix.env.NIXSTATE_SERVE_SOCKET = socket;
    url = `ssh://buildbox?remote-program=${join(repoRoot, "bin/nixstate-serve-connect")}`;
  });

  afterAll(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
    deleteTree(nix.root);
    nix.cleanup();
  });

  it("builds for Nix's build hook, a session per build, logs relayed", () => {
    const client = join(nix.root, "client");
    const expr = nix.writeExpr("r.nix", hookBuildExpr("built by the resident server"));
    const build = spawnSync("nix-build", hookBuildArgs(expr, client, `${url} ${nixSystem()}`), {
      env: nix.env,
      encoding: "utf8",
    });
    expect(build.status, build.stderr).toBe(0);
    const out = build.stdout.trim();
    // The builder's output came back through the server's stderr frames.
    expect(build.stderr).toContain("built by the resident server");
    expectBuiltOnMachine(out, client, { stateDir: serverState, storeDir: nix.storeDir });
  });

  it("takes `nix copy --to` and gives the closure back to `nix copy --from`", () => {
    // Nix's side in a chroot store, apart from the server's files at the logical paths.
    const store = ["--store", `local?root=${join(nix.root, "copier")}`];
    const file = join(nix.root, "copied.txt");
    writeFileSync(file, "copied through the resident server\n");
    const main = nix.run("nix-store", [...store, "--add", file]).trim();
    const hash = nix.run("nix-store", [...store, "-q", "--hash", main]).trim();
    nix.run("nix", ["copy", ...store, "--to", url, main]);
    nix.run("nix-store", [...store, "--delete", main]);
    nix.run("nix", ["copy", ...store, "--no-check-sigs", "--from", url, main]);
    expect(nix.run("nix-store", [...store, "-q", "--hash", main]).trim()).toBe(hash);
    nix.run("nix-store", [...store, "--verify-path", main]);
  });

  it("stops at SIGTERM and removes its socket", async () => {
    expect(existsSync(socket)).toBe(true);
    server.kill("SIGTERM");
    const [code] = await once(server, "exit");
    expect(code).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(stderr).toBe("");
  });
});
