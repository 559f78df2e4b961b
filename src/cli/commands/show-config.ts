// `nixstate show-config [--json]`: every setting's effective value as `nix show-config` prints
// them (`name = value`, sorted), with `--json` also where each value came from. Each setting is
// also a flag here, so `show-config --max-jobs 4` shows what a command given that flag would use.
import type { Command } from "commander";
import { SETTINGS, type SettingDef, type SettingValue } from "../settings/known-settings.ts";
import {
  describeSource,
  type EffectiveSetting,
  type LoadedSettings,
  parseSettingValue,
} from "../settings/settings.ts";
import { writeStdout } from "../stdout.ts";

const attributeOf = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The value as Nix's `show-config --json` types it: numbers, Booleans, lists as arrays. */
function jsonValue(s: SettingDef, v: SettingValue): unknown {
  if (typeof v === "boolean") return v;
  if (s.kind === "count" || (s.kind === "jobs" && v !== "auto")) return Number(v);
  if (s.kind === "list") return v.split(" ").filter(Boolean);
  return v;
}

export function registerShowConfigCommand(program: Command, settings: LoadedSettings): void {
  const cmd = program
    .command("show-config")
    .description(
      "print every setting's effective value (defaults < nixstate.conf < NIXSTATE_<NAME> < flags)",
    )
    .option("--json", "print JSON, with each value's default, description and source");
  for (const def of SETTINGS) {
    if (def.kind === "bool") cmd.option(`--${def.name}`, def.description);
    else cmd.option(`--${def.name} <value>`, def.description);
  }
  cmd.action(async (o: Record<string, unknown>) => {
    const effective = SETTINGS.map((def): EffectiveSetting => {
      const attr = attributeOf(def.name);
      if (cmd.getOptionValueSource(attr) !== "cli") return settings.values.get(def.name)!;
      const given = o[attr];
      const flag = `--${given === false ? "no-" : ""}${def.name}`;
      const value =
        typeof given === "boolean" ? given : parseSettingValue(def, String(given), flag);
      return { def, value, source: { kind: "flag", flag } };
    }).sort((a, b) => (a.def.name < b.def.name ? -1 : 1));
    if (o.json) {
      const json = Object.fromEntries(
        effective.map((s) => [
          s.def.name,
          {
            value: jsonValue(s.def, s.value),
            defaultValue: jsonValue(
              s.def,
              s.def.default(process.env, () => ""),
            ),
            description: s.def.description,
            aliases: s.def.aliases ?? [],
            source: describeSource(s.source),
          },
        ]),
      );
      await writeStdout(`${JSON.stringify(json, null, 2)}\n`);
      return;
    }
    await writeStdout(effective.map((s) => `${s.def.name} = ${s.value}\n`).join(""));
  });
}
