// `npm run bench -- remote [--n 100] [--rounds 3]`: the benchmark DAG built entirely on a build
// machine (`-j0 --builders`, 2 jobs there) reached through the ssh stand-in, for each client
// (nixstate build, real Nix's nix-store --realise and its build hook) and each machine
// (nixstate serve; a resident nixstate serve --listen behind bin/nixstate-serve-connect; real
// nix-store --serve), fresh stores every round. Prints medians and ratios
// against Nix → Nix, and the same DAG built locally by nixstate (-j2) as the no-network floor.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { argsOf, median, nixEnv, type Run, requireNix, timed } from "./bench-process.ts";
import { dagNixExpr, dagNodes } from "./dag-graph.ts";
import { writeDag } from "./nixstate-dag.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");

type Client = "nixstate" | "nix";
/** "listen": a resident `nixstate serve --listen`, reached through bin/nixstate-serve-connect. */
type Machine = "nixstate" | "nix" | "listen";

export async function benchRemote(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const n = Number(arg("--n", "100"));
  const rounds = Number(arg("--rounds", "3"));
  requireNix("remote");
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-remote-"));
  chmodSync(root, 0o755);
  const storeDir = join(root, "store");
  const shim = join(root, "shim");
  mkdirSync(shim);
  copyFileSync(join(repo, "test/fixtures/ssh-stand-in"), join(shim, "ssh"));
  const system = nixSystem();
  const path = `${shim}:${process.env.PATH}`;
  console.log(
    `remote benchmark: N=${n}, ${rounds} rounds, machine with 2 jobs via the ssh stand-in`,
  );

  /** A fresh machine: its serve program, on its own state, at the shared logical store. */
  const machine = (kind: Machine, salt: string): string => {
    const program = join(root, `machine-${kind}-${salt}`);
    const state = join(root, `machine-state-${salt}`);
    const body =
      kind === "nixstate"
        ? `exec '${process.execPath}' '${repo}/bin/nixstate.js' "$@" --state-dir '${state}' --store-dir '${storeDir}'`
        : kind === "listen"
          ? `exec '${repo}/bin/nixstate-serve-connect' --socket '${socketOf(salt)}' "$@"`
          : `export NIX_REMOTE=local NIX_STORE_DIR='${storeDir}' NIX_STATE_DIR='${state}' NIX_LOG_DIR='${state}/log' NIX_CONF_DIR='${root}/nix/conf'\nexec nix-store "$@"`;
    writeFileSync(program, `#!/bin/sh\n${body}\n`);
    chmodSync(program, 0o755);
    return `ssh://buildbox?remote-program=${program} ${system} - 2`;
  };

  const socketOf = (salt: string) => join(root, `${salt.slice(0, 24)}.sock`);
  /** The resident server of a "listen" machine, started before the build and stopped after. */
  const startServer = async (salt: string): Promise<{ ms: number; stop: () => Promise<void> }> => {
    const t0 = performance.now();
    const state = join(root, `machine-state-${salt}`);
    const server = spawn(
      process.execPath,
      [join(repo, "bin/nixstate.js"), "serve", "--listen", socketOf(salt), "--write"].concat([
        "--state-dir",
        state,
        "--store-dir",
        storeDir,
      ]),
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = await once(server.stdout, "data");
    if (!String(line).includes("listening")) throw new Error(`server said: ${line}`);
    const ms = performance.now() - t0;
    return {
      ms,
      stop: async () => {
        server.kill("SIGTERM");
        if (server.exitCode === null) await once(server, "exit");
      },
    };
  };

  const nixBase = { ...nixEnv(join(root, "nix")), NIX_STORE_DIR: storeDir, PATH: path };
  const build = async (client: Client, on: Machine, salt: string): Promise<Run> => {
    const builders = machine(on, salt);
    if (client === "nix") {
      // Nix's own files in a chroot store; only the machine builds.
      const store = `local?root=${join(root, `nix-client-${salt}`)}`;
      const expr = join(root, `${salt}.nix`);
      writeFileSync(expr, dagNixExpr(dagNodes(n, salt)));
      const drvs = spawnSync("nix-instantiate", ["--store", store, expr], {
        env: nixBase,
        encoding: "utf8",
        maxBuffer: 1 << 30,
      })
        .stdout.trim()
        .split("\n");
      const args = ["--store", store, "--realise", "-j0", "--builders", builders, ...drvs];
      return timed("nix-store", args, nixBase);
    }
    const stateDir = join(root, `client-${salt}`);
    const storeRoot = join(root, `client-root-${salt}`);
    const store = LocalStore.open({ stateDir, storeDir, storeRoot });
    const drvs = writeDag(store, n, salt, system);
    store.close();
    const flags = ["--state-dir", stateDir, "--store-dir", storeDir, "--store-root", storeRoot];
    return timed(
      process.execPath,
      [join(repo, "bin/nixstate.js"), "build", "-j0", "--builders", builders, ...flags, ...drvs],
      { ...process.env, PATH: path },
    );
  };

  const pairs: [Client, Machine][] = [
    ["nix", "nix"],
    ["nixstate", "nix"],
    ["nix", "nixstate"],
    ["nix", "listen"],
    ["nixstate", "nixstate"],
    ["nixstate", "listen"],
  ];
  const serverStarts: number[] = [];
  const times = new Map<string, number[]>(pairs.map(([c, m]) => [`${c}→${m}`, []]));
  const local: number[] = [];
  let failed = false;
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [c, m] of pairs) {
        const salt = `${c}${m}r${r}t${Date.now()}`;
        // The resident server runs before the build, as sshd does; its start is printed apart.
        const server = m === "listen" ? await startServer(salt) : undefined;
        if (server) serverStarts.push(server.ms);
        const run = await build(c, m, salt);
        await server?.stop();
        failed ||= !run.ok;
        times.get(`${c}→${m}`)!.push(run.ms);
      }
      const stateDir = join(root, `local-${r}`);
      const store = LocalStore.open({ stateDir });
      const drvs = writeDag(store, n, `localr${r}t${Date.now()}`, system);
      store.close();
      const run = await timed(
        process.execPath,
        [join(repo, "bin/nixstate.js"), "build", "-j2", "--state-dir", stateDir, ...drvs],
        process.env,
      );
      failed ||= !run.ok;
      local.push(run.ms);
    }
    const reference = median(times.get("nix→nix")!);
    for (const [key, ms] of times) {
      const m = median(ms);
      console.log(
        `client→machine ${key.padEnd(18)} ${(m / 1000).toFixed(2)} s (${(m / n).toFixed(1)} ms/drv) | ÷ nix→nix ${(m / reference).toFixed(2)} | rounds ${ms.map((x) => (x / 1000).toFixed(2)).join(" ")}`,
      );
    }
    console.log(
      `("listen": a resident nixstate serve --listen, started before each build in ${median(serverStarts).toFixed(0)} ms (median), reached by bin/nixstate-serve-connect)`,
    );
    const l = median(local);
    console.log(
      `nixstate local -j2 (no machine)  ${(l / 1000).toFixed(2)} s (${(l / n).toFixed(1)} ms/drv)`,
    );
    if (failed) console.log("  (some runs failed: see above)");
  } finally {
    deleteTree(root);
  }
}
