// What shell completion needs to know of the command line, read from the commander program itself
// (so a new command or flag completes without anyone editing the scripts).
import type { Command } from "commander";

export interface CommandSpec {
  /** Subcommand names from the top, e.g. "runs show" ("" for `nixstate` itself). */
  path: string;
  subcommands: string[];
  /** Flags offered (long ones; hidden ones are left out). */
  flags: string[];
  /** Flags whose next word is their value (short and long, hidden ones too). */
  valueFlags: string[];
  /** The values some flags allow (e.g. --log-format's). */
  choices: Record<string, string[]>;
  /** The words its arguments may be, when they are a fixed list (e.g. `completion bash|zsh`). */
  argumentWords: string[];
  /** Whether it takes other arguments (offered as file names). */
  takesArguments: boolean;
}

/** Words the scripts put unquoted into shell code. */
const SAFE = /^[A-Za-z0-9_.:@+=/-]+$/;

function safe(words: string[]): string[] {
  for (const w of words) if (!SAFE.test(w)) throw new Error(`cannot complete the word '${w}'`);
  return words;
}

export function completionSpecs(program: Command): CommandSpec[] {
  const specs: CommandSpec[] = [];
  const visit = (cmd: Command, path: string) => {
    const options = cmd.options;
    const flags = options.filter((o) => !o.hidden).flatMap((o) => (o.long ? [o.long] : []));
    if (!options.some((o) => o.long === "--help")) flags.push("--help");
    const choices: Record<string, string[]> = {};
    for (const o of options)
      if (o.argChoices) for (const f of [o.short, o.long]) if (f) choices[f] = safe(o.argChoices);
    const fixed = cmd.registeredArguments.flatMap((a) => a.argChoices ?? []);
    specs.push({
      path,
      subcommands: safe(cmd.commands.flatMap((c) => [c.name(), ...c.aliases()])),
      flags: safe(flags),
      valueFlags: safe(
        options
          .filter((o) => o.required)
          .flatMap((o) => [o.short, o.long].filter((f): f is string => !!f)),
      ),
      choices,
      argumentWords: safe(fixed),
      takesArguments: cmd.registeredArguments.some((a) => !a.argChoices),
    });
    for (const c of cmd.commands) visit(c, path ? `${path} ${c.name()}` : c.name());
  };
  visit(program, "");
  return specs;
}
