// `npm run bench -- nar [--mb 243] [--rounds 5]`: NAR throughput side by side with Nix 2.8 on a
// generated tree (one large file of ~60 % of the size and 3,000 small ones, page cache warm):
// dump to a pipe and to a file (`nix-store --dump`), restore (`nix-store --restore`), and NAR
// hashing (`nix-hash --type sha256`). Contenders alternate within each round; medians, MB/s of
// NAR bytes, and nixstate's throughput as a fraction of Nix's (≥ 1 is the target). A third
// contender, the floor (scripts/bench/nar-floor.mjs), is the least a Node program does for the
// same job: where it is below Nix, Node's own costs (start-up, its fs calls) are the limit.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { argsOf, median, nixEnv, requireNix } from "./bench-process.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");

/** A deterministic tree: one big file and many small ones in nested directories. */
function writeTree(root: string, totalMb: number): void {
  mkdirSync(root);
  const big = Math.floor(totalMb * 0.6 * 1024 * 1024);
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  const parts: Buffer[] = [];
  for (let done = 0; done < big; done += chunk.length) parts.push(chunk.subarray(0, big - done));
  writeFileSync(join(root, "big.bin"), Buffer.concat(parts));
  const smallTotal = totalMb * 1024 * 1024 - big;
  const each = Math.max(64, Math.floor(smallTotal / 3000));
  for (let d = 0; d < 30; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir);
    for (let f = 0; f < 100; f++) {
      const size = (each * ((f % 7) + 1)) / 4;
      writeFileSync(join(dir, `f${f}.txt`), chunk.subarray(f, f + Math.floor(size)));
    }
  }
}

interface Contender {
  label: string;
  /** Instead of NAR MB/s: the build's wall time, and after it without the copy (see below). */
  build?: boolean;
  /**
   * A shell command line: `$T` the tree, `$N` its NAR, `$O` a file, `$R` a directory to restore
   * to, `$X` nixstate, `$S` a salt new each run, `$D` the file holding Nix's .drv path.
   */
  nix: string;
  ours: string;
  /** The same job for the Node floor, where there is one. */
  floor?: string;
  /** Run before each timed command (not timed). */
  before?: string;
}

/** The copying builder's script; `salt` makes each run's derivation a new one. */
const COPY_SCRIPT = "PATH=/usr/bin:/bin; cp -r $src $out; echo $salt > /dev/null";

/** The copying derivation, for Nix (an expression) and for nixstate (a JSON derivation). */
function copyDerivations(root: string): { expr: string; json: string } {
  const expr = join(root, "copy.nix");
  writeFileSync(
    expr,
    `{ salt }: derivation { name = "copied-tree"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(COPY_SCRIPT)} ]; src = "${join(root, "tree")}"; inherit salt; }\n`,
  );
  const json = join(root, "copy.json");
  return { expr, json };
}

function writeCopyJson(json: string, tree: string, salt: string): void {
  writeFileSync(
    json,
    JSON.stringify({
      builder: "/bin/sh",
      args: ["-c", COPY_SCRIPT],
      env: { name: "copied-tree", src: tree, salt },
    }),
  );
}

function time(cmd: string, env: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  const r = spawnSync("sh", ["-c", cmd], { env, stdio: ["ignore", "ignore", "pipe"] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`'${cmd}' failed: ${r.stderr.toString()}`);
  return ms;
}

/** Who runs in round `r`: the order turns each round so no contender always follows another. */
function whoRuns(c: Contender, r: number): ("nix" | "ours" | "floor")[] {
  const all = c.floor ? (["nix", "ours", "floor"] as const) : (["nix", "ours"] as const);
  const k = r % all.length;
  return [...all.slice(k), ...all.slice(0, k)];
}

/** The floor's NAR and hash are Nix's (else it would not be a floor of the same job). */
function checkFloor(env: NodeJS.ProcessEnv): void {
  time("$F dump $T | cmp -s - $N", env);
  const ours = spawnSync("sh", ["-c", "$F hash $T"], { env }).stdout.toString().trim();
  const nix = spawnSync("sh", ["-c", "nix-hash --type sha256 $T"], { env })
    .stdout.toString()
    .trim();
  if (ours !== nix) throw new Error(`the Node floor's hash ${ours} is not Nix's ${nix}`);
}

export async function benchNar(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const mb = Number(arg("--mb", "243"));
  const rounds = Number(arg("--rounds", "5"));
  requireNix("nar");
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-nar-"));
  try {
    const tree = join(root, "tree");
    writeTree(tree, mb);
    const nar = join(root, "tree.nar");
    spawnSync("sh", ["-c", `nix-store --dump '${tree}' > '${nar}'`]);
    const narMb = statSync(nar).size / 1e6;
    const { expr, json } = copyDerivations(root);
    const env: NodeJS.ProcessEnv = {
      ...nixEnv(join(root, "nix")),
      NS_STATE: join(root, "nixstate"),
      NS_STORE: join(root, "nixstate-store"),
      EXPR: expr,
      J: json,
      D: join(root, "drv-path"),
      T: tree,
      N: nar,
      O: join(root, "out"),
      R: join(root, "restored"),
      X: `${process.execPath} ${repo}/bin/nixstate.js`,
      F: `${process.execPath} ${repo}/scripts/bench/nar-floor.mjs`,
    };
    const contenders: Contender[] = [
      {
        label: "dump | pipe",
        nix: "nix-store --dump $T | cat > /dev/null",
        ours: "$X nar dump $T | cat > /dev/null",
        floor: "$F dump $T | cat > /dev/null",
      },
      {
        label: "dump > file",
        nix: "nix-store --dump $T > $O",
        ours: "$X nar dump $T > $O",
        floor: "$F dump $T > $O",
        before: "rm -f $O",
      },
      {
        label: "restore",
        nix: "nix-store --restore $R < $N",
        ours: "$X nar restore $R < $N",
        floor: "$F restore $R < $N",
        before: "chmod -R u+w $R 2>/dev/null; rm -rf $R",
      },
      {
        label: "hash path",
        nix: "nix-hash --type sha256 $T",
        ours: "$X hash path --type sha256 $T",
        floor: "$F hash $T",
      },
      {
        label: "build+scan",
        build: true,
        nix: "nix-store --realise $(cat $D) > /dev/null",
        ours: "$X build --no-progress --state-dir $NS_STATE --store-dir $NS_STORE $J > /dev/null",
      },
    ];
    // Each build needs a derivation not built before: a new salt, its .drv made untimed.
    const prepareBuild = (who: "nix" | "ours", salt: string) => {
      if (who === "nix") time(`nix-instantiate $EXPR --argstr salt ${salt} > $D`, env);
      else writeCopyJson(json, tree, salt);
    };
    const copyMs: number[] = [];
    const copyFloor = () => {
      time(`rm -rf ${join(root, "copy")}`, env);
      copyMs.push(time(`cp -r $T ${join(root, "copy")}`, env));
    };
    console.log(
      `nar benchmark: tree of ${mb} MB (one large file, 3,000 small), NAR ${narMb.toFixed(0)} MB, ${rounds} rounds`,
    );
    let salt = 0;
    type Who = "nix" | "ours" | "floor";
    const command = (c: Contender, who: Who) =>
      who === "nix" ? c.nix : who === "ours" ? c.ours : c.floor!;
    const run = (c: Contender, who: Who): number => {
      if (c.before) time(c.before, env);
      if (c.build) prepareBuild(who === "nix" ? "nix" : "ours", `s${salt++}`);
      return time(command(c, who), env);
    };
    checkFloor(env);
    // Warm the page cache and every program once.
    for (const c of contenders) for (const who of whoRuns(c, 0)) run(c, who);
    for (const c of contenders) {
      const times: Record<Who, number[]> = { nix: [], ours: [], floor: [] };
      for (let r = 0; r < rounds; r++) {
        for (const who of whoRuns(c, r)) times[who].push(run(c, who));
        if (c.build) copyFloor();
      }
      const [a, b] = [median(times.ours), median(times.nix)];
      const mbps = (ms: number) => (narMb / (ms / 1000)).toFixed(0);
      const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      if (c.build) {
        // What follows the builder: the build less the copy (`cp -r` of the tree, timed apart).
        const cp = median(copyMs);
        console.log(
          `${c.label.padEnd(12)} nixstate ${s(a)} | nix ${s(b)} | nixstate/nix time ${(a / b).toFixed(2)} | cp -r alone ${s(cp)}; after the builder: nixstate ${s(a - cp)}, nix ${s(b - cp)}, throughput nixstate/nix ${((b - cp) / (a - cp)).toFixed(2)}`,
        );
        continue;
      }
      const f = median(times.floor);
      console.log(
        `${c.label.padEnd(12)} nixstate ${s(a)} (${mbps(a)} MB/s) | Node floor ${s(f)} (${mbps(f)} MB/s) | nix ${s(b)} (${mbps(b)} MB/s) | throughput nixstate/nix ${(b / a).toFixed(2)}, floor/nix ${(b / f).toFixed(2)}, nixstate/floor ${(f / a).toFixed(2)}`,
      );
    }
  } finally {
    spawnSync("sh", ["-c", `chmod -R u+w '${root}' 2>/dev/null`]);
    deleteTree(root);
  }
}
