// `npm run bench -- startup [--runs 15] [--compare DIR]`: what a `nixstate` process costs before
// its command does anything. Median wall times of `--version`, `serve` reaching its first read
// (stdin is empty, so it reads EOF and ends), `build` of an already valid path and `hash path` of
// a small file (a command that loads little), beside bare `node -e 0` (the floor) and
// `nix-store --version`. `--compare DIR` also runs the nixstate commands of another checkout (e.g.
// an older commit, with its dist/ built), interleaved, so both see the same machine load. Every
// case runs once untimed, then once per round, `--runs` rounds.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { median } from "./bench-process.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");

// GNU time reports the child's CPU time (user + system), which other load on the machine disturbs
// far less than the wall time.
const GNU_TIME = "/usr/bin/time";

interface Sample {
  wall: number;
  cpu: number | undefined;
}

function once(cmd: string, args: string[], env: NodeJS.ProcessEnv, cpuFile: string): Sample {
  const timed = existsSync(GNU_TIME);
  const argv = timed ? ["-f", "%U %S", "-o", cpuFile, cmd, ...args] : args;
  const t0 = performance.now();
  const r = spawnSync(timed ? GNU_TIME : cmd, argv, { env, stdio: ["ignore", "ignore", "pipe"] });
  const wall = performance.now() - t0;
  // serve reads EOF where the client's hello should be: Nix's "protocol mismatch", as expected.
  const expected =
    r.status === 0 || (args[1] === "serve" && /protocol mismatch/.test(`${r.stderr}`));
  if (!expected) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  const cpu = timed
    ? readFileSync(cpuFile, "utf8")
        .trim()
        .split("\n")
        .at(-1)!
        .split(" ")
        .reduce((sum, s) => sum + Number(s) * 1000, 0)
    : undefined;
  return { wall, cpu };
}

type Case = [name: string, cmd: string, args: string[]];

function nixstateCases(checkout: string, drv: string, label: string): Case[] {
  const bin = join(checkout, "bin/nixstate.js");
  return [
    [`nixstate --version${label}`, process.execPath, [bin, "--version"]],
    [`nixstate serve (to first read)${label}`, process.execPath, [bin, "serve"]],
    [`nixstate build (valid path)${label}`, process.execPath, [bin, "build", drv]],
    [`nixstate hash path (a small file)${label}`, process.execPath, [bin, "hash", "path", drv]],
  ];
}

export async function benchStartup(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const runs = Number(arg("--runs") ?? 15);
  const compare = arg("--compare");
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-startup-"));
  // Settings from the caller's own nixstate.conf would change what is measured.
  const env = {
    ...process.env,
    NIXSTATE_STATE_DIR: join(root, "state"),
    XDG_CONFIG_HOME: join(root, "config"),
  };
  const drv = join(root, "hello.json");
  writeFileSync(
    drv,
    JSON.stringify({ name: "hello", builder: "/bin/sh", args: ["-c", "echo hi > $out"], env: {} }),
  );
  const cpuFile = join(root, "cpu");
  once(process.execPath, [join(repo, "bin/nixstate.js"), "build", drv], env, cpuFile); // now valid
  const cases: Case[] = [
    ["node -e 0 (floor)", process.execPath, ["-e", "0"]],
    ["nix-store --version", "nix-store", ["--version"]],
    ...nixstateCases(repo, drv, ""),
    ...(compare ? nixstateCases(resolve(compare), drv, ` [${compare}]`) : []),
  ];
  const times = cases.map(() => [] as Sample[]);
  try {
    // One round untimed: each command's first run saves its compiled code (bin/run-bundle.mjs).
    for (const [, cmd, args] of cases) spawnSync(cmd, args, { env, stdio: "ignore" });
    for (let r = 0; r < runs; r++) {
      cases.forEach(([, cmd, args], k) => {
        try {
          times[k]!.push(once(cmd, args, env, cpuFile));
        } catch (e) {
          if (r === 0) console.error(String(e));
        }
      });
    }
  } finally {
    deleteTree(root);
  }
  console.log(`start-up: medians of ${runs} runs (ms); wall time (min–max), CPU time (user+sys)`);
  cases.forEach(([name], k) => {
    const t = times[k]!;
    if (t.length === 0) {
      console.log(`${name.padEnd(44)} not run`);
      return;
    }
    const wall = t.map((s) => s.wall);
    const cpu = t.flatMap((s) => (s.cpu === undefined ? [] : [s.cpu]));
    const range = `${Math.min(...wall).toFixed(0)}–${Math.max(...wall).toFixed(0)}`;
    const cpuText = cpu.length > 0 ? `cpu ${median(cpu).toFixed(0).padStart(4)}` : "";
    console.log(
      `${name.padEnd(44)} ${median(wall).toFixed(1).padStart(7)} (${range.padEnd(9)}) ${cpuText}`,
    );
  });
}
