// The effective value of each known setting (known-settings.ts): its default, then nixstate.conf,
// then NIXSTATE_<NAME> environment variables; command-line flags win over all of them
// (apply-settings.ts turns these values into the flags' defaults).
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { SETTINGS, type SettingDef, type SettingValue } from "./known-settings.ts";
import { parseSettingsFile, type ReadSettingsFile } from "./settings-file.ts";

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
