// `npm run bench -- dag [--sizes 1000,10000] [--rounds 3] [-j 2]`: build a fresh layered DAG of
// trivial /bin/sh derivations with real Nix (`nix-store --realise`, its fastest fair setup:
// builders as the calling user, no sandbox, no substituters, config via NIX_CONF_DIR) and with
// `nixstate build`, alternating rounds; compare with the floor of spawning the same builders from
// a bare Node script (fork, as Node does), and from a bare Python script with posix_spawn (as
// nixstate's spawner does, when Python is there). Prints medians, ratios and peak RSS.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { argsOf, median, nixEnv, type Run, timed } from "./bench-process.ts";
import { dagNixExpr, dagNodes } from "./dag-graph.ts";
import { writeDag } from "./nixstate-dag.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");

/**
 * The floor: a bare Node script (no nixstate code loaded) spawning the same number of trivial
 * builders, j at a time, each writing its line to a file, stdio ignored.
 */
const FLOOR_SCRIPT = `
const { spawn } = require("node:child_process");
const [n, j, dir] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]];
let started = 0, finished = 0;
const next = () => {
  if (started === n) { if (finished === n) process.exit(0); return; }
  const i = started++;
  spawn("/bin/sh", ["-c", "echo n" + i + " > " + dir + "/f" + i], { stdio: "ignore", detached: true })
    .on("exit", () => { finished++; next(); });
};
for (let k = 0; k < j; k++) next();
`;

async function floor(n: number, j: number, dir: string): Promise<number> {
  return (
    await timed(process.execPath, ["-e", FLOOR_SCRIPT, String(n), String(j), dir], process.env)
  ).ms;
}

/** The same with posix_spawn (vfork semantics: no page tables copied), from a bare Python. */
const SPAWN_FLOOR_SCRIPT = `
import os, sys
n, j, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
started = running = 0
while started < n or running:
    while running < j and started < n:
        os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "echo n%d > %s/f%d" % (started, d, started)], os.environ, setsid=True)
        started += 1; running += 1
    os.wait(); running -= 1
`;
const PYTHON = "/usr/bin/python3";

async function spawnFloor(n: number, j: number, dir: string): Promise<number> {
  return (
    await timed(
      PYTHON,
      ["-I", "-S", "-c", SPAWN_FLOOR_SCRIPT, String(n), String(j), dir],
      process.env,
    )
  ).ms;
}

export async function benchDag(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const sizes = arg("--sizes", "1000,10000").split(",").map(Number);
  const j = Number(arg("-j", "2"));
  const haveNix = spawnSync("sh", ["-c", "command -v nix-store"]).status === 0;
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-"));
  chmodSync(root, 0o755);
  const env = nixEnv(join(root, "nix"));
  const system = nixSystem();
  console.log(
    `dag benchmark: -j${j}, sizes ${sizes.join(", ")}${haveNix ? "" : " (nix-store not found: Nix rounds skipped)"}`,
  );
  try {
    for (const n of sizes) {
      const rounds = Number(arg("--rounds", n >= 10000 ? "1" : "3"));
      const nix: Run[] = [];
      const ours: Run[] = [];
      const floors: number[] = [];
      const spawnFloors: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const salt = `b${n}r${r}t${Date.now()}`;
        if (haveNix) {
          const expr = join(root, `${salt}.nix`);
          writeFileSync(expr, dagNixExpr(dagNodes(n, salt)));
          const drvs = spawnSync("nix-instantiate", [expr], {
            env,
            encoding: "utf8",
            maxBuffer: 1 << 30,
          })
            .stdout.trim()
            .split("\n");
          nix.push(await timed("nix-store", ["--realise", `-j${j}`, ...drvs], env));
        }
        const stateDir = join(root, `ns-${salt}`);
        const store = LocalStore.open({ stateDir });
        const drvs = writeDag(store, n, salt, system);
        store.close();
        ours.push(
          await timed(
            process.execPath,
            [join(repo, "bin/nixstate.js"), "build", `-j${j}`, "--state-dir", stateDir, ...drvs],
            process.env,
          ),
        );
        const fdir = join(root, `floor-${salt}`);
        mkdirSync(fdir);
        floors.push(await floor(n, j, fdir));
        if (existsSync(PYTHON)) {
          const sdir = join(root, `spawn-floor-${salt}`);
          mkdirSync(sdir);
          spawnFloors.push(await spawnFloor(n, j, sdir));
        }
      }
      const f = median(floors);
      const o = median(ours.map((x) => x.ms));
      const line = [
        `N=${n}: nixstate ${(o / 1000).toFixed(2)} s (peak RSS ${Math.max(...ours.map((x) => x.peakRssMb)).toFixed(0)} MB)`,
      ];
      if (nix.length > 0) {
        const x = median(nix.map((y) => y.ms));
        line.push(
          `nix ${(x / 1000).toFixed(2)} s (peak RSS ${Math.max(...nix.map((y) => y.peakRssMb)).toFixed(0)} MB)`,
          `nixstate/nix ${(o / x).toFixed(2)}`,
        );
      }
      line.push(`floor ${(f / 1000).toFixed(2)} s`, `nixstate/floor ${(o / f).toFixed(2)}`);
      if (spawnFloors.length > 0) {
        const p = median(spawnFloors);
        line.push(
          `posix_spawn floor ${(p / 1000).toFixed(2)} s`,
          `nixstate/posix_spawn floor ${(o / p).toFixed(2)}`,
        );
      }
      console.log(line.join(" | "));
      const secs = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(2)).join(" ");
      console.log(
        `  rounds: nixstate ${secs(ours.map((x) => x.ms))}${nix.length ? ` | nix ${secs(nix.map((x) => x.ms))}` : ""} | floor ${secs(floors)}${spawnFloors.length ? ` | posix_spawn floor ${secs(spawnFloors)}` : ""}`,
      );
      if (ours.some((x) => !x.ok) || nix.some((x) => !x.ok))
        console.log("  (some runs failed: see above)");
    }
  } finally {
    deleteTree(root);
  }
}
