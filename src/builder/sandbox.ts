// Builds in a bubblewrap sandbox (Nix's `sandbox = true`): no network unless fixed-output, no
// host file system but the configured sandbox paths, store inputs read-only, the build directory
// at /build. Outputs are written into a private store directory bound over the store and moved
// into the real store afterwards, as Nix does with its chroot.
import { spawnSync } from "node:child_process";

/** What the sandbox shows of the host, read-only (Nix's `sandbox-paths`). */
export const DEFAULT_SANDBOX_PATHS = ["/bin", "/usr", "/lib", "/lib64", "/lib32", "/libx32"];

/** Files fixed-output builds see for name resolution (their network is not isolated). */
const NETWORK_FILES = [
  "/etc/resolv.conf",
  "/etc/hosts",
  "/etc/services",
  "/etc/nsswitch.conf",
  "/etc/ssl",
];

export const SANDBOX_BUILD_DIR = "/build";

export class SandboxError extends Error {
  override name = "SandboxError";
}

let bwrapPath: string | null | undefined;

/** The absolute path of a working `bwrap` (builders run with PATH=/path-not-set), or null. */
function findBwrap(): string | null {
  if (bwrapPath !== undefined) return bwrapPath;
  const which = spawnSync("sh", ["-c", "command -v bwrap"], { encoding: "utf8" });
  const path = which.status === 0 ? which.stdout.trim() : "";
  const works =
    path !== "" &&
    spawnSync(path, ["--unshare-all", "--ro-bind", "/", "/", "true"], { stdio: "ignore" })
      .status === 0;
  bwrapPath = works ? path : null;
  return bwrapPath;
}

/** Whether bubblewrap exists and can create namespaces here. */
export function sandboxAvailable(): boolean {
  return findBwrap() !== null;
}

export interface SandboxSpec {
  builder: string;
  args: string[];
  /** Logical store directory (what paths say). */
  storeDir: string;
  /** Host directory bound writable at the store directory: outputs land here. */
  privateStore: string;
  /** Host build directory, seen at /build. */
  buildDir: string;
  /** Store paths the builder may read: logical path → host path. */
  inputs: Map<string, string>;
  /** Fixed-output builds keep the network. */
  network: boolean;
  sandboxPaths: string[];
}

// bwrap keeps its own stdout and stderr open while the sandbox runs, so a builder that closes
// its output would not end the log. When the sandbox shows the host's /bin/sh (the default
// sandbox paths do), the output pipe goes in as fd 3 and this puts it in the builder's place;
// bwrap's own messages go to the log directly. `exec` leaves the builder's pid, argv and env.
const FD3_WRAPPER = 'exec 1>&3 2>&3 3>&-; exec "$0" "$@"';

function showsBinSh(paths: string[]): boolean {
  const has = (p: string) => paths.includes(p);
  return (has("/") || has("/bin") || has("/bin/sh")) && (has("/") || has("/lib"));
}

/**
 * The bwrap command line running the builder inside the sandbox; `outputFd` 3 when the builder
 * gets its output pipe through fd 3 (see FD3_WRAPPER).
 */
export function sandboxCommand(s: SandboxSpec): { cmd: string; args: string[]; outputFd: 1 | 3 } {
  const a = ["--unshare-all", "--die-with-parent", "--new-session", "--unshare-user-try"];
  if (s.network) a.push("--share-net");
  for (const p of s.sandboxPaths) a.push("--ro-bind-try", p, p);
  if (s.network) for (const p of NETWORK_FILES) a.push("--ro-bind-try", p, p);
  a.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp");
  a.push("--bind", s.privateStore, s.storeDir);
  for (const [logical, host] of [...s.inputs].sort()) a.push("--ro-bind", host, logical);
  a.push("--bind", s.buildDir, SANDBOX_BUILD_DIR, "--chdir", SANDBOX_BUILD_DIR);
  const outputFd = showsBinSh(s.sandboxPaths) ? 3 : 1;
  if (outputFd === 3) a.push("--", "/bin/sh", "-c", FD3_WRAPPER, s.builder, ...s.args);
  else a.push("--", s.builder, ...s.args);
  const bwrap = findBwrap();
  if (!bwrap) throw new SandboxError("bubblewrap ('bwrap') is not available");
  return { cmd: bwrap, args: a, outputFd };
}
