// A local build's settings and their defaults, apart from the builder: the command line reads
// the defaults at every start (settings, --help) and must not load the builder for them.
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { DEFAULT_SANDBOX_PATHS } from "./sandbox.ts";

export interface LocalBuildSettings {
  /** This machine's platform, e.g. x86_64-linux. */
  system: string;
  systemFeatures: string[];
  /** NIX_BUILD_CORES given to builders (0: all cores). */
  cores: number;
  maxSilentTime: number;
  buildTimeout: number;
  maxLogSize: number;
  /** Keep the build directory of failed builds. */
  keepFailed: boolean;
  /** Log lines quoted in a failed build's error (0 when the log is shown live). */
  logLines: number;
  cacheFailures: boolean;
  /** Build in a bubblewrap sandbox (Nix's `sandbox`). */
  sandbox: boolean;
  /** Host paths visible read-only in the sandbox (Nix's `sandbox-paths`). */
  sandboxPaths: string[];
  /** Where build directories go (default: `<state-dir>/builds`, away from a crowded /tmp). */
  buildDirRoot?: string;
  /** False with `--max-jobs 0`: a build no machine takes fails instead of running here. */
  localBuilds: boolean;
}

export function nixSystem(): string {
  const arch =
    { x64: "x86_64", arm64: "aarch64", ia32: "i686" }[process.arch as string] ?? process.arch;
  return `${arch}-${process.platform}`;
}

export const DEFAULT_BUILD_SETTINGS: LocalBuildSettings = {
  system: nixSystem(),
  systemFeatures: [
    "benchmark",
    "big-parallel",
    "nixos-test",
    ...(existsSync("/dev/kvm") ? ["kvm"] : []),
  ],
  // As Nix: NIX_BUILD_CORES defaults to the number of CPUs (0 asks builders to use all).
  cores: cpus().length,
  maxSilentTime: 0,
  buildTimeout: 0,
  maxLogSize: 0,
  keepFailed: false,
  logLines: 10,
  cacheFailures: false,
  // Off by default, as in Debian's nix.conf for Nix 2.8.
  sandbox: false,
  sandboxPaths: DEFAULT_SANDBOX_PATHS,
  localBuilds: true,
};
