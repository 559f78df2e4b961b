// The settings nixstate knows (Nix's names for Nix's settings), and their effective values:
// defaults, then nixstate.conf, then NIXSTATE_<NAME> environment variables; command-line flags
// win over all of them (apply-settings.ts turns these values into the flags' defaults).
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { DEFAULT_BUILD_SETTINGS } from "../../builder/local-build-effects.ts";
import { DEFAULT_RETENTION } from "../../events/run-log.ts";
import { resolveStoreLayout } from "../../store/store-settings.ts";
import { parseSettingsFile, type ReadSettingsFile } from "./settings-file.ts";

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

/** Where a setting's effective value came from. */
export type SettingSource =
  | { kind: "default" }
  | { kind: "file"; file: string; line: number }
  | { kind: "env"; variable: string }
  | { kind: "flag"; flag: string };

export interface EffectiveSetting {
  def: SettingDef;
  value: SettingValue;
  source: SettingSource;
}

export interface LoadedSettings {
  /** Every known setting by name. */
  values: Map<string, EffectiveSetting>;
  /** The file read, if any. */
  file: string | undefined;
  /** Nix's "unknown setting" warnings, each naming its file and line. */
  warnings: string[];
}

/** A setting given a value it cannot have; the message names where it was given. */
export class SettingValueError extends Error {
  override name = "SettingValueError";
}

export function describeSource(s: SettingSource): string {
  switch (s.kind) {
    case "default":
      return "default";
    case "file":
      return `${s.file}:${s.line}`;
    case "env":
      return `environment ${s.variable}`;
    case "flag":
      return `flag ${s.flag}`;
  }
}

/** The setting's text as its kind reads it (Nix's words for the errors); throws SettingValueError. */
export function parseSettingValue(def: SettingDef, text: string, where: string): SettingValue {
  const bad = (wants: string) =>
    new SettingValueError(`${where}: setting '${def.name}' wants ${wants}, not '${text}'`);
  const trimmed = text.trim();
  switch (def.kind) {
    case "bool":
      if (["true", "yes", "1"].includes(trimmed)) return true;
      if (["false", "no", "0"].includes(trimmed)) return false;
      throw bad("true or false");
    case "jobs":
      if (trimmed === "auto") return trimmed;
      if (!/^\d+$/.test(trimmed)) throw bad("'auto' or a whole number");
      return String(Number(trimmed));
    case "count":
      if (!/^\d+$/.test(trimmed)) throw bad("a whole number");
      return String(Number(trimmed));
    case "retention":
      if (!/^\d+d?$/.test(trimmed)) throw bad("a number of runs (100) or of days (30d)");
      return trimmed;
    case "list":
      return trimmed.split(/\s+/).filter(Boolean).join(" ");
    case "string":
    case "dir":
      return trimmed;
  }
}

/** NIXSTATE_MAX_JOBS for max-jobs. */
export function envVariableOf(name: string): string {
  return `NIXSTATE_${name.toUpperCase().replace(/-/g, "_")}`;
}

/** `NIXSTATE_CONF`, else $XDG_CONFIG_HOME/nixstate/nixstate.conf (~/.config when unset). */
export function settingsFileOf(env: NodeJS.ProcessEnv): { path: string; named: boolean } {
  if (env.NIXSTATE_CONF) return { path: env.NIXSTATE_CONF, named: true };
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg?.startsWith("/") ? xdg : join(homedir(), ".config");
  return { path: join(base, "nixstate", "nixstate.conf"), named: false };
}

const readIfThere: ReadSettingsFile = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
};

const byName = new Map(SETTINGS.flatMap((d) => [d.name, ...(d.aliases ?? [])].map((n) => [n, d])));

/** The effective settings from the defaults, the settings file and the environment. */
export function loadSettings(
  env: NodeJS.ProcessEnv = process.env,
  read: ReadSettingsFile = readIfThere,
): LoadedSettings {
  const set = new Map<string, { value: SettingValue; source: SettingSource }>();
  const warnings: string[] = [];
  const given = (name: string) => set.get(name)?.value;
  const current = (def: SettingDef) => String(given(def.name) ?? def.default(env, given));
  const apply = (name: string, text: string, source: SettingSource, where: string) => {
    const extra = name.startsWith("extra-") ? byName.get(name.slice(6)) : undefined;
    // As Nix: `extra-` only for lists; anything else by that name is unknown.
    const def = extra?.kind === "list" ? extra : byName.get(name);
    if (!def) return false;
    const parsed = parseSettingValue(def, text, where);
    if (def.kind === "dir" && parsed === "") return true;
    const joined = def === extra ? `${current(def)} ${parsed}`.trim() : parsed;
    set.set(def.name, { value: joined, source });
    return true;
  };

  const { path, named } = settingsFileOf(env);
  const text = read(path);
  if (text === undefined && named)
    throw new SettingValueError(`NIXSTATE_CONF names '${path}', which does not exist`);
  for (const l of text === undefined ? [] : parseSettingsFile(text, path, read)) {
    const where = `${l.file}:${l.line}`;
    if (!apply(l.name, l.value, { kind: "file", file: l.file, line: l.line }, where))
      warnings.push(`warning: unknown setting '${l.name}' (${where})`);
  }
  for (const def of SETTINGS) {
    for (const name of [def.name, ...(def.kind === "list" ? [`extra-${def.name}`] : [])]) {
      const variable = envVariableOf(name);
      const text = env[variable];
      if (text !== undefined) apply(name, text, { kind: "env", variable }, variable);
    }
  }
  const values = new Map<string, EffectiveSetting>();
  for (const def of SETTINGS) {
    const s = set.get(def.name);
    values.set(def.name, {
      def,
      value: s ? s.value : def.default(env, given),
      source: s ? s.source : { kind: "default" },
    });
  }
  return { values, file: text === undefined ? undefined : path, warnings };
}
