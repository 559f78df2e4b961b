// Settings become the defaults of the flags named like them (`--max-jobs` for max-jobs, on every
// command that has it), before the command line is parsed: flags still win, and `--help` shows the
// effective defaults. A Boolean setting gets both `--<name>` and `--no-<name>`, so a command line
// can turn off what a file turned on, and the other way round.
import { type Command, Option } from "commander";
import { describeSource, type LoadedSettings, SettingValueError } from "./settings.ts";

export function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

/** The setting a flag stands for: `--no-substitute` and `--substitute` both for substitute. */
export function settingNameOf(option: Option): string | undefined {
  return option.long?.replace(/^--(no-)?/, "");
}

/** `--no-x` beside `--x`, `--x` beside `--no-x` (hidden: the help shows one of them). */
function addOtherHalf(cmd: Command, option: Option, name: string): void {
  const other = option.negate ? `--${name}` : `--no-${name}`;
  if (cmd.options.some((o) => o.long === other)) return;
  cmd.addOption(new Option(other, `(setting ${name}) the opposite of ${option.long}`).hideHelp());
}

export function applySettings(program: Command, settings: LoadedSettings): void {
  for (const cmd of allCommands(program)) {
    for (const option of [...cmd.options]) {
      const name = settingNameOf(option);
      const s = name === undefined ? undefined : settings.values.get(name);
      if (!s) continue;
      if (s.def.kind === "bool") addOtherHalf(cmd, option, name!);
      if (s.source.kind === "default") continue;
      const value = option.isBoolean() || option.negate ? s.value : String(s.value);
      if (option.argChoices && !option.argChoices.includes(String(value))) {
        throw new SettingValueError(
          `${describeSource(s.source)}: setting '${name}' wants one of ${option.argChoices.join(", ")}, not '${value}'`,
        );
      }
      // A --no-x flag sets x to false: its default is the setting's value, as --x's would be.
      if (!option.negate) option.defaultValue = value;
      cmd.setOptionValueWithSource(option.attributeName(), value, "default");
    }
  }
}
