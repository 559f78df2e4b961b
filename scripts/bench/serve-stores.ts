// The serve benchmark's stores: one logical store directory held twice, by a nixstate store (its
// files under a store root) and by real Nix 2.8 (NIX_STORE_DIR), both with the same small paths
// and the same large one; the commands that serve each; and fresh content to import.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeChunks } from "../../src/io/writable-sink.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { nixEnv } from "./bench-process.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");

export type Server = "nixstate" | "nix";

/**
 * One server's store. The two live in different store directories of the same length (a
 * nixstate store with its files elsewhere could not build without a sandbox), so their paths are
 * named differently but hold the same bytes and NARs of the same sizes.
 */
export interface ServerStore {
  server: Server;
  storeDir: StoreDir;
  small: string[];
  big: string;
  /** `argv` and environment starting the server on its store. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** A `remote-program` script for `ssh://…?remote-program=` (run as `P --serve --write`). */
  remoteProgram: string;
  /**
   * nixstate: the remote-program reaching a resident `nixstate serve --listen` at
   * `residentSocket` (bin/nixstate-serve-connect); the caller starts and stops that server.
   */
  residentProgram?: string;
  residentSocket?: string;
  /** nixstate: the arguments naming its store, for a server the caller starts. */
  storeArgs?: string[];
  /** A nixstate store of the same store directory (files elsewhere) to make content to import. */
  scratch: LocalStore;
}

export interface ServeStores {
  of(server: Server): ServerStore;
  /** Bytes of the large path's NAR and of all the small ones' NARs (the same for both). */
  bigNarBytes: number;
  smallNarBytes: number;
  /** Real Nix's environment as a client of `server`'s store directory, the ssh stand-in on PATH. */
  nixClientEnv(server: Server): NodeJS.ProcessEnv;
  close(): void;
}

/** Deterministic bytes that do not repeat within a MiB (nothing in the path compresses them). */
export function pattern(bytes: number, salt: string): Buffer {
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  const out = Buffer.allocUnsafe(bytes);
  for (let at = 0; at < bytes; at += chunk.length) chunk.copy(out, at, 0, bytes - at);
  out.write(salt.slice(0, Math.min(salt.length, bytes)));
  return out;
}

/** `n` small text paths of about `kb` KiB, each referring to up to three earlier ones. */
export function addSmallPaths(store: LocalStore, n: number, kb: number, salt: string): string[] {
  const body = pattern(kb * 1024, salt)
    .toString("base64")
    .slice(0, kb * 1024);
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const refs = [paths[i - 1], paths[i - 7], paths[i - 31]].filter((p) => p !== undefined);
    paths.push(
      store.addTextToStore(`small-${salt}-${i}`, `${i} ${refs.join(" ")}\n${body}`, refs).path,
    );
  }
  return paths;
}

export async function addBigPath(store: LocalStore, dir: string, mb: number, salt: string) {
  const file = join(dir, `big-${salt}`);
  writeFileSync(file, pattern(mb * 1024 * 1024, salt));
  return (await store.addToStore(file, { name: `big-${salt}` })).path;
}

export async function setUpStores(
  root: string,
  options: { small: number; smallKb: number; mb: number; profile?: string | undefined },
): Promise<ServeStores> {
  const shim = join(root, "shim");
  mkdirSync(shim);
  copyFileSync(join(repo, "test/fixtures/ssh-stand-in"), join(shim, "ssh"));
  const PATH = `${shim}:${process.env.PATH}`;
  const nix = nixEnv(join(root, "nx"));
  const dirs: Record<Server, string> = {
    nixstate: join(root, "ns", "store"),
    nix: nix.NIX_STORE_DIR!,
  };
  const nsState = join(root, "ns", "var");
  const nixstateArgs = ["--state-dir", nsState, "--store-dir", dirs.nixstate];

  const program = (server: Server | "resident", body: string) => {
    const file = join(root, `remote-${server}`);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  };
  const scratch = (server: Server) =>
    LocalStore.open({
      stateDir: join(root, `scratch-${server}`, "var"),
      storeDir: dirs[server],
      storeRoot: join(root, `scratch-${server}`, "root"),
    });

  // nixstate's copy straight into its store; Nix's made alike, then `nix-store --import`ed.
  const ns = LocalStore.open({ stateDir: nsState, storeDir: dirs.nixstate });
  const nsSmall = addSmallPaths(ns, options.small, options.smallKb, "seed");
  const nsBig = await addBigPath(ns, root, options.mb, "seed");
  const narSize = (p: string) => ns.queryPathInfo(p).narSize;
  const smallNarBytes = nsSmall.reduce((sum, p) => sum + narSize(p), 0);
  const bigNarBytes = narSize(nsBig);
  ns.close();
  const nixScratch = scratch("nix");
  const nixSmall = addSmallPaths(nixScratch, options.small, options.smallKb, "seed");
  const nixBig = await addBigPath(nixScratch, root, options.mb, "seed");
  const exported = join(root, "seed.export");
  const file = createWriteStream(exported);
  await writeChunks(nixScratch.exportPaths([...nixSmall, nixBig]), file);
  await new Promise((done) => file.end(done));
  const imported = spawnSync("sh", ["-c", `nix-store --import < '${exported}' > /dev/null`], {
    env: nix,
    encoding: "utf8",
  });
  if (imported.status !== 0) throw new Error(`nix-store --import failed: ${imported.stderr}`);
  spawnSync("rm", ["-f", exported]);

  const stores: Record<Server, ServerStore> = {
    nixstate: {
      server: "nixstate",
      storeDir: new StoreDir(dirs.nixstate),
      small: nsSmall,
      big: nsBig,
      // `--profile DIR`: a CPU profile of each nixstate serve session started by this process.
      argv: [
        process.execPath,
        ...(options.profile ? ["--cpu-prof", `--cpu-prof-dir=${options.profile}`] : []),
        join(repo, "bin/nixstate.js"),
        "serve",
        "--write",
        ...nixstateArgs,
      ],
      env: process.env,
      remoteProgram: program(
        "nixstate",
        `exec '${process.execPath}' '${repo}/bin/nixstate.js' "$@" ${nixstateArgs.map((a) => `'${a}'`).join(" ")}`,
      ),
      residentProgram: program(
        "resident",
        `exec '${repo}/bin/nixstate-serve-connect' --socket '${join(root, "serve.socket")}' "$@"`,
      ),
      residentSocket: join(root, "serve.socket"),
      storeArgs: nixstateArgs,
      scratch: scratch("nixstate"),
    },
    nix: {
      server: "nix",
      storeDir: new StoreDir(dirs.nix),
      small: nixSmall,
      big: nixBig,
      argv: ["nix-store", "--serve", "--write"],
      env: nix,
      remoteProgram: program(
        "nix",
        `export NIX_REMOTE=local NIX_STORE_DIR='${dirs.nix}' NIX_STATE_DIR='${nix.NIX_STATE_DIR}' NIX_LOG_DIR='${nix.NIX_LOG_DIR}' NIX_CONF_DIR='${nix.NIX_CONF_DIR}'\nexec nix-store "$@"`,
      ),
      scratch: nixScratch,
    },
  };
  return {
    of: (server) => stores[server],
    bigNarBytes,
    smallNarBytes,
    nixClientEnv: (server) => ({ ...nix, NIX_STORE_DIR: dirs[server], PATH }),
    close: () => {
      stores.nixstate.scratch.close();
      stores.nix.scratch.close();
    },
  };
}
