// nixstate.conf, in the syntax of Nix's nix.conf (Nix 2.8's Config::applyConfigFile): one
// `name = value` a line, `#` starts a comment anywhere, words are separated by blanks (a value is
// its words joined by one space), `include FILE` / `!include FILE` (relative to the including
// file; `!` ignores a missing one). What the names mean is settings.ts's business, not this file's.
import { dirname, resolve } from "node:path";

/** One `name = value` line, where it was written. */
export interface SettingLine {
  name: string;
  value: string;
  file: string;
  line: number;
}

/** A line nixstate.conf cannot contain, or an include that cannot be read. */
export class SettingsFileError extends Error {
  override name = "SettingsFileError";
  constructor(
    readonly file: string,
    readonly line: number,
    problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
  }
}

/** The text of an included file, or undefined when there is none. */
export type ReadSettingsFile = (path: string) => string | undefined;

// Nix follows includes without a limit; a file including itself would never end.
const MAX_INCLUDE_DEPTH = 16;

/** The settings lines of `text` (read from `file`) and of the files it includes, in order. */
export function parseSettingsFile(
  text: string,
  file: string,
  readInclude: ReadSettingsFile = () => undefined,
  depth = 0,
): SettingLine[] {
  const out: SettingLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    const hash = raw.indexOf("#");
    const tokens = (hash >= 0 ? raw.slice(0, hash) : raw).split(/[ \t\r]+/).filter(Boolean);
    if (tokens.length === 0) return;
    const illegal = () =>
      new SettingsFileError(file, line, `illegal configuration line '${raw.trim()}'`);
    if (tokens.length < 2) throw illegal();
    if (tokens[0] === "include" || tokens[0] === "!include") {
      if (tokens.length !== 2) throw illegal();
      if (depth >= MAX_INCLUDE_DEPTH)
        throw new SettingsFileError(file, line, `includes nest deeper than ${MAX_INCLUDE_DEPTH}`);
      const path = resolve(dirname(file), tokens[1]!);
      const included = readInclude(path);
      if (included === undefined) {
        if (tokens[0] === "!include") return;
        throw new SettingsFileError(file, line, `included file '${path}' not found`);
      }
      out.push(...parseSettingsFile(included, path, readInclude, depth + 1));
      return;
    }
    if (tokens[1] !== "=") throw illegal();
    out.push({ name: tokens[0]!, value: tokens.slice(2).join(" "), file, line });
  });
  return out;
}

/** `name = value` lines that parseSettingsFile reads back as the same settings. */
export function printSettings(settings: readonly { name: string; value: string }[]): string {
  return settings.map((s) => `${s.name} = ${s.value}\n`).join("");
}
