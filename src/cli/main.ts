// The `nixstate` command line. Each command lives in its own module under commands/.
import { setFlagsFromString } from "node:v8";
import { Command, CommanderError } from "commander";
import { registerBuildCommands } from "./commands/build.ts";
import { registerCompletionCommand } from "./commands/completion.ts";
import { registerDerivationCommands } from "./commands/derivation.ts";
import { registerGraphCommand } from "./commands/graph.ts";
import { registerHashCommands } from "./commands/hash.ts";
import { registerLogCommands } from "./commands/log.ts";
import { registerNarCommands } from "./commands/nar.ts";
import { registerRunsCommands } from "./commands/runs.ts";
import { registerRunsDiffCommand } from "./commands/runs-diff.ts";
import { registerServeCommands, serveFlagToCommand } from "./commands/serve.ts";
import { registerShowConfigCommand } from "./commands/show-config.ts";
import { registerStoreCommands } from "./commands/store.ts";
import { registerViewCommand } from "./commands/view.ts";
import { registerCriticalPathCommand, registerWhyCommand } from "./commands/why.ts";
import { applySettings } from "./settings/apply-settings.ts";
import { type LoadedSettings, loadSettings } from "./settings/settings.ts";

// V8 lets its heap grow to up to 4x what survived the last full collection; a build's live heap is
// small (45 MB at 10,000 goals) but its garbage is not, and a 10,000-goal build peaked at 380 MB.
// Growing by at most 30% keeps it near what it uses (measured in BENCHMARKS.md, "Memory").
setFlagsFromString("--heap-growing-percent=30");

export function makeProgram(settings: LoadedSettings = loadSettings()): Command {
  const program = new Command("nixstate")
    .description("A Nix-compatible build engine whose goals are XState machines")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  registerBuildCommands(program);
  registerDerivationCommands(program);
  registerNarCommands(program);
  registerHashCommands(program);
  registerLogCommands(program);
  const runs = registerRunsCommands(program);
  registerRunsDiffCommand(runs);
  registerCriticalPathCommand(runs);
  registerWhyCommand(program);
  registerGraphCommand(program);
  registerServeCommands(program);
  registerStoreCommands(program);
  registerViewCommand(program);
  registerShowConfigCommand(program, settings);
  registerCompletionCommand(program);
  // Last: settings become the defaults of every command's flags.
  applySettings(program, settings);
  return program;
}

function describeErrno(code: string): string {
  const known: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EEXIST: "it already exists",
    ENOTDIR: "a parent is not a directory",
    EISDIR: "it is a directory",
  };
  return known[code] ?? code;
}

/** Print an error the way Nix does (`error: …`) and exit 1; stack traces only on request. */
function reportAndExit(e: unknown): never {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  const sys = e as NodeJS.ErrnoException;
  const msg =
    sys?.code && sys.syscall && sys.path
      ? `cannot ${sys.syscall} '${sys.path}': ${describeErrno(sys.code)}`
      : e instanceof Error
        ? e.message
        : String(e);
  process.stderr.write(`error: ${msg}\n`);
  if (process.env.NIXSTATE_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}

try {
  const settings = loadSettings();
  for (const w of settings.warnings) process.stderr.write(`${w}\n`);
  await makeProgram(settings).parseAsync(serveFlagToCommand(process.argv.slice(2)), {
    from: "user",
  });
} catch (e) {
  reportAndExit(e);
}
