// Running the benchmarked programs: wall time and peak RSS of a child process, and real Nix's
// fastest fair configuration in a private folder (see ../shared/notes/real-nix.md).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Run {
  ms: number;
  peakRssMb: number;
  ok: boolean;
}

/** Run a command, sampling its peak RSS (VmHWM) until it exits. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((done) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    let peak = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited
      }
    };
    const timer = setInterval(sample, 20);
    child.on("exit", (code) => {
      clearInterval(timer);
      if (code !== 0) process.stderr.write(`${cmd} failed (${code}):\n${stderr}\n`);
      done({ ms: performance.now() - t0, peakRssMb: peak, ok: code === 0 });
    });
  });
}

export function nixEnv(root: string): NodeJS.ProcessEnv {
  const conf = join(root, "conf");
  mkdirSync(conf, { recursive: true });
  writeFileSync(join(conf, "nix.conf"), "substituters =\nsandbox = false\nbuild-users-group =\n");
  mkdirSync(join(root, "tmp"), { recursive: true });
  return {
    ...process.env,
    NIX_REMOTE: "local",
    NIX_STORE_DIR: join(root, "store"),
    NIX_STATE_DIR: join(root, "var"),
    NIX_LOG_DIR: join(root, "log"),
    NIX_CONF_DIR: conf,
    // Build directories in a fresh folder, as nixstate's are (a long-lived /tmp can be slow).
    TMPDIR: join(root, "tmp"),
  };
}

/** The middle value (the upper one of an even count). */
export const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A benchmark's `--name value` options: `arg("--rounds", "3")`. */
export function argsOf(argv: string[]): (name: string, def: string) => string {
  return (name, def) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1]! : def;
  };
}

/** Exit with a message when real Nix is not installed: `bench` is the benchmark's name. */
export function requireNix(bench: string): void {
  if (spawnSync("sh", ["-c", "command -v nix-store"]).status === 0) return;
  console.error(`${bench} benchmark: needs real Nix (apt-get install -y nix-bin)`);
  process.exit(1);
}
