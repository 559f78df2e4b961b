// The settings nixstate knows: Nix's names (and older aliases) for Nix's settings, nixstate's own,
// with their kinds, defaults and descriptions. settings.ts gives them their effective values.
import { DEFAULT_BUILD_SETTINGS } from "../../builder/build-settings.ts";
import { DEFAULT_RETENTION } from "../../events/run-retention.ts";
import { resolveStoreLayout } from "../../store/store-settings.ts";

/**
 * How a setting's text is read: Nix's Boolean, integer, max-jobs ('auto') and string list; a
 * `dir` left empty is not set at all (as NIXSTATE_STATE_DIR= has always meant the default).
 */
export type SettingKind = "bool" | "count" | "jobs" | "string" | "list" | "retention" | "dir";

export type SettingValue = string | boolean;

export interface SettingDef {
  name: string;
  kind: SettingKind;
  description: string;
  /** Nix's older names for the same setting (nix.conf files still use them). */
  aliases?: readonly string[];
  /** The value when nothing sets it; `given` tells what sets another setting (if anything). */
  default(env: NodeJS.ProcessEnv, given: (name: string) => SettingValue | undefined): SettingValue;
}

const fixed = (v: SettingValue) => () => v;

function storeLayoutOf(env: NodeJS.ProcessEnv, given: (name: string) => SettingValue | undefined) {
  const dir = (name: string) => (given(name) as string | undefined) || undefined;
  return resolveStoreLayout(
    { stateDir: dir("state-dir"), storeDir: dir("store-dir"), storeRoot: dir("store-root") },
    env,
  );
}

export const SETTINGS: readonly SettingDef[] = [
  {
    name: "max-jobs",
    kind: "jobs",
    description: "builds to run at once ('auto': one per core)",
    aliases: ["build-max-jobs"],
    default: fixed("1"),
  },
  {
    name: "cores",
    kind: "count",
    description: "NIX_BUILD_CORES for each builder (0: use all cores)",
    aliases: ["build-cores"],
    default: fixed(String(DEFAULT_BUILD_SETTINGS.cores)),
  },
  {
    name: "sandbox",
    kind: "bool",
    description: "build in a bubblewrap sandbox",
    aliases: ["build-use-sandbox", "build-use-chroot"],
    default: fixed(false),
  },
  {
    name: "builders",
    kind: "string",
    description: "remote build machines (machines-file lines separated by ';', or @FILE)",
    default: fixed(""),
  },
  {
    name: "substituters",
    kind: "list",
    description: "substituters tried before building",
    aliases: ["binary-caches"],
    default: fixed(""),
  },
  {
    name: "max-silent-time",
    kind: "count",
    description: "kill builders silent this many seconds (0: never)",
    aliases: ["build-max-silent-time"],
    default: fixed("0"),
  },
  {
    name: "timeout",
    kind: "count",
    description: "kill builders running this many seconds (0: never)",
    aliases: ["build-timeout"],
    default: fixed("0"),
  },
  {
    name: "max-log-size",
    kind: "count",
    description: "kill builders logging more than this many bytes (0: no limit)",
    aliases: ["build-max-log-size"],
    default: fixed("0"),
  },
  {
    name: "keep-going",
    kind: "bool",
    description: "keep building other derivations after one fails",
    default: fixed(false),
  },
  {
    name: "keep-failed",
    kind: "bool",
    description: "keep the build directory of failed builds",
    default: fixed(false),
  },
  {
    name: "fallback",
    kind: "bool",
    description: "build from source when a substituter fails",
    aliases: ["build-fallback"],
    default: fixed(false),
  },
  {
    name: "system-features",
    kind: "list",
    description: "features this machine offers builders",
    default: fixed(DEFAULT_BUILD_SETTINGS.systemFeatures.join(" ")),
  },
  {
    name: "substitute",
    kind: "bool",
    description: "use substituters",
    aliases: ["build-use-substitutes"],
    default: fixed(true),
  },
  {
    name: "cache-failures",
    kind: "bool",
    description: "remember failed outputs and refuse to rebuild them",
    aliases: ["build-cache-failures"],
    default: fixed(false),
  },
  {
    name: "keep-runs",
    kind: "retention",
    description: "runs the run log keeps: a count (100) or days (30d)",
    default: fixed(String(DEFAULT_RETENTION.count)),
  },
  {
    name: "record",
    kind: "bool",
    description: "write each run to the run log",
    default: fixed(true),
  },
  {
    name: "log-format",
    kind: "string",
    description: "how a build is told on stderr (raw, internal-json, bar, bar-with-logs)",
    default: fixed("raw"),
  },
  {
    name: "state-dir",
    kind: "dir",
    description: "where the database, GC roots, logs and run log live",
    default: (env, given) => storeLayoutOf(env, given).stateDir,
  },
  {
    name: "store-dir",
    kind: "dir",
    description: "the logical store directory baked into every path",
    default: (env, given) => storeLayoutOf(env, given).storeDir.path,
  },
  {
    name: "store-root",
    kind: "dir",
    description: "keep the store's files under this directory (Nix's --store ROOT)",
    default: fixed(""),
  },
];
