// The command line: its top-level commands and the modules that define them. A run loads only
// the module of the command it runs (each a chunk of its own in dist/): `nixstate nar dump` or
// `hash path` need not compile and evaluate the build machinery, the store and the protocol.
// `--help`, `completion`, `show-config` (it checks every setting against the flags' choices)
// and words that name no command load them all, in the help's order; `--version` none.
import { Command } from "commander";
import { NIXSTATE_VERSION } from "../events/nixstate-version.ts";
import { applySettings } from "./settings/apply-settings.ts";
import { type LoadedSettings, loadSettings } from "./settings/settings.ts";

type Register = (program: Command, settings: LoadedSettings) => void;

const runsCommands = async (): Promise<Register> => {
  const [runs, diff, why] = await Promise.all([
    import("./commands/runs.ts"),
    import("./commands/runs-diff.ts"),
    import("./commands/why.ts"),
  ]);
  return (program) => {
    const group = runs.registerRunsCommands(program);
    diff.registerRunsDiffCommand(group);
    why.registerCriticalPathCommand(group);
  };
};

/** In the order `--help` lists them; a loader registers its module's commands. */
const LOADERS: [names: string[], load: () => Promise<Register>][] = [
  [["build"], async () => (await import("./commands/build.ts")).registerBuildCommands],
  [
    ["derivation"],
    async () => (await import("./commands/derivation.ts")).registerDerivationCommands,
  ],
  [["nar"], async () => (await import("./commands/nar.ts")).registerNarCommands],
  [["hash"], async () => (await import("./commands/hash.ts")).registerHashCommands],
  [["log", "failed"], async () => (await import("./commands/log.ts")).registerLogCommands],
  [["runs", "replay"], runsCommands],
  [["why"], async () => (await import("./commands/why.ts")).registerWhyCommand],
  [["graph"], async () => (await import("./commands/graph.ts")).registerGraphCommand],
  [["serve"], async () => (await import("./commands/serve.ts")).registerServeCommands],
  [["store"], async () => (await import("./commands/store.ts")).registerStoreCommands],
  [["view"], async () => (await import("./commands/view.ts")).registerViewCommand],
  [
    ["show-config"],
    async () => (await import("./commands/show-config.ts")).registerShowConfigCommand,
  ],
  [
    ["completion"],
    async () => (await import("./commands/completion.ts")).registerCompletionCommand,
  ],
];

/** Commands that need every command's flags: completion describes them, show-config checks them. */
const LOAD_ALL = new Set(["completion", "show-config"]);

/** Every command's name, for tests: each must have its loader. */
export const COMMAND_NAMES: readonly string[] = LOADERS.flatMap(([names]) => names);

/** The command line with the commands `args` need (all of them when it names none). */
export async function makeProgram(
  settings: LoadedSettings = loadSettings(),
  args: readonly string[] = [],
): Promise<Command> {
  const program = new Command("nixstate")
    .description("A Nix-compatible build engine whose goals are XState machines")
    .version(NIXSTATE_VERSION)
    .showHelpAfterError()
    .exitOverride();
  await registerCommands(program, settings, args[0]);
  // Last: settings become the defaults of every command's flags.
  applySettings(program, settings);
  return program;
}

/**
 * Register the command `word` names on `program`, or every command when it names none (or
 * needs them all: completion describes every command).
 */
async function registerCommands(
  program: Command,
  settings: LoadedSettings,
  word: string | undefined,
): Promise<void> {
  // The version is the program's own: no command needs loading for it.
  if (word === "--version" || word === "-V") return;
  const one = LOADERS.find(([names]) => !LOAD_ALL.has(word ?? "") && names.includes(word ?? ""));
  const registers = await Promise.all((one ? [one] : LOADERS).map(([, load]) => load()));
  for (const register of registers) register(program, settings);
}

/**
 * Nix starts a remote program as `PROGRAM --serve --write`: turn the `--serve` flag into the
 * `serve` command (only before a `--`, where it can be nothing else).
 */
export function serveFlagToCommand(args: readonly string[]): string[] {
  const end = args.indexOf("--");
  const at = args.indexOf("--serve");
  if (at < 0 || (end >= 0 && at > end)) return [...args];
  return ["serve", ...args.slice(0, at), ...args.slice(at + 1)];
}
