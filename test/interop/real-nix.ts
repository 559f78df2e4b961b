// Access to a real Nix 2.8 for differential tests. Each test gets a private store
// (NIX_STORE_DIR etc. under one temp folder) so nothing touches /nix and runs don't interfere.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function findNixStore(): string | undefined {
  const r = spawnSync("sh", ["-c", "command -v nix-store"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export const nixStoreBin = findNixStore();

/**
 * Whether interop tests can run. In CI a missing Nix is an error, not a skip:
 * the differential tests are the project's ground truth.
 */
export function haveRealNix(): boolean {
  if (nixStoreBin) return true;
  if (process.env.CI === "true") {
    throw new Error(
      "nix-store not found but CI=true: install nix-bin (apt-get install -y nix-bin) so interop tests run",
    );
  }
  return false;
}

export interface NixEnv {
  /** The temp folder holding store, state, log and conf. */
  root: string;
  /** The logical (and physical) store directory, e.g. /tmp/xyz/store. */
  storeDir: string;
  env: NodeJS.ProcessEnv;
  /** Run a Nix command and return stdout; throws with stderr on failure. */
  run(cmd: string, args: string[], input?: string | Buffer): string;
  runBuffer(cmd: string, args: string[], input?: string | Buffer): Buffer;
  /** Write a Nix expression to a file and return its path. */
  writeExpr(name: string, text: string): string;
  cleanup(): void;
}

export function makeNixEnv(): NixEnv {
  const root = mkdtempSync(join(tmpdir(), "nixstate-nix-"));
  // Nix as root may run builders as nixbld users: they must reach the store.
  chmodSync(root, 0o755);
  const storeDir = join(root, "store");
  const conf = join(root, "conf");
  mkdirSync(conf);
  writeFileSync(
    join(conf, "nix.conf"),
    "substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command\n",
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIX_REMOTE: "local",
    NIX_STORE_DIR: storeDir,
    NIX_STATE_DIR: join(root, "var"),
    NIX_LOG_DIR: join(root, "log"),
    NIX_CONF_DIR: conf,
    NIX_PATH: "",
  };
  const runBuffer = (cmd: string, args: string[], input?: string | Buffer): Buffer => {
    try {
      return execFileSync(cmd, args, {
        env,
        input,
        maxBuffer: 1 << 30,
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`${cmd} ${args.join(" ")} failed: ${err.stderr?.toString() ?? err.message}`);
    }
  };
  return {
    root,
    storeDir,
    env,
    runBuffer,
    run: (cmd, args, input) => runBuffer(cmd, args, input).toString("utf8"),
    writeExpr(name, text) {
      const p = join(root, name);
      writeFileSync(p, text);
      return p;
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Options for a nixstate store in `dir` whose paths are named like `nix`'s (same store
 * directory) while its files live apart (`--store-root`).
 */
export function storeBeside(nix: NixEnv, dir: string): string[] {
  return [
    "--store-dir",
    nix.storeDir,
    "--store-root",
    join(dir, "root"),
    "--state-dir",
    join(dir, "state"),
  ];
}

/** Where this Nix keeps its database (<root>/var/db: nothing finds it there by itself). */
export function nixDbFile(nix: NixEnv): string {
  return join(nix.root, "var", "db", "db.sqlite");
}
