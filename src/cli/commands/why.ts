// `nixstate why PATH` (what happened to a derivation or path in a recorded run, the root cause of
// a failure, and the targets that wanted it) and `nixstate runs critical-path` (the chain of goals
// that set a run's wall time). Both read the run log only.
import type { Command } from "commander";
import { criticalPath, criticalPathText } from "../../events/critical-path.ts";
import { queryForms, why } from "../../events/run-why.ts";
import { whyText } from "../../events/why-text.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions } from "../store-options.ts";
import { runIdOf, withRunLog } from "./runs.ts";

interface WhyCliOptions extends StoreCliOptions {
  run?: string;
  json?: boolean;
}

export function registerWhyCommand(program: Command): Command {
  return addStoreOptions(
    program
      .command("why")
      .description(
        "say what happened to a derivation or path in a recorded build: built, substituted, skipped or failed, the root cause of a failure, and the target that wanted it",
      )
      .argument(
        "<path>",
        "a .drv path, an output path, a store path, or a target as given to build",
      )
      .option("--run <run>", "look in this run (number or 'last'); default: the newest run with it")
      .option("--json", "print JSON"),
  ).action(async (path: string, _o: WhyCliOptions, cmd: Command) => {
    const o = cmd.optsWithGlobals<WhyCliOptions>();
    await withRunLog(o, async (log) => {
      const run = o.run === undefined ? undefined : runIdOf(log, o.run);
      const answer = why(log, path, {
        forms: queryForms(path),
        ...(run === undefined ? {} : { run }),
      });
      await writeStdout(o.json ? `${JSON.stringify(answer)}\n` : whyText(answer));
    });
  });
}

export function registerCriticalPathCommand(runs: Command): Command {
  return addStoreOptions(
    runs
      .command("critical-path")
      .description(
        "the chain of goals that set a run's wall time: from the target that ended last down through the input each waited for last",
      )
      .argument("[run]", "run number or 'last'", "last")
      .option("--json", "print JSON"),
  ).action(async (runText: string, _o: StoreCliOptions, cmd: Command) => {
    // `runs` has the store options too: take them from wherever they were given.
    const o = cmd.optsWithGlobals<StoreCliOptions & { json?: boolean }>();
    await withRunLog(o, async (log) => {
      const id = runIdOf(log, runText);
      const path = criticalPath(log.run(id), log.events(id));
      await writeStdout(o.json ? `${JSON.stringify(path)}\n` : criticalPathText(path));
    });
  });
}
