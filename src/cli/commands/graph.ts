// `nixstate graph [RUN] --format dot|mermaid|json`: a recorded run's goal graph, read from the run
// log only — every goal with what happened to it, what asked for and waited on what, the root
// causes of failures apart from the goals that failed because of them, and the critical path.
import type { Command } from "commander";
import { type GraphFormat, parseGraphFormat, renderGraph } from "../../events/graph-formats.ts";
import { runGraph } from "../../events/run-graph.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions } from "../store-options.ts";
import { runIdOf, withRunLog } from "./runs.ts";

interface GraphCliOptions extends StoreCliOptions {
  format: string;
  json?: boolean;
}

export function registerGraphCommand(program: Command): Command {
  return addStoreOptions(
    program
      .command("graph")
      .description(
        "print a recorded run's goal graph: goals with their outcome and duration, what waited for what, root causes of failures and the critical path",
      )
      .argument("[run]", "run number or 'last'", "last")
      .option(
        "--format <format>",
        "dot (for Graphviz: nixstate graph | dot -Tsvg > run.svg), mermaid (a flowchart for Markdown) or json",
        "dot",
      )
      .option("--json", "print JSON (the same as --format json)"),
  ).action(async (runText: string, _o: GraphCliOptions, cmd: Command) => {
    const o = cmd.optsWithGlobals<GraphCliOptions>();
    // A wrong format is said before the log is opened.
    const format: GraphFormat = o.json ? "json" : parseGraphFormat(o.format);
    await withRunLog(o, async (log) => {
      const id = runIdOf(log, runText);
      await writeStdout(renderGraph(runGraph(log.run(id), log.events(id)), format));
    });
  });
}
