// `nixstate view [RUN]`: a recorded run in the browser — the goal graph coloured by state with a
// timeline to step through it, each goal's history, effects, waits, build log and statechart —
// served on 127.0.0.1 (following a run still going on), or written with `-o` as one
// self-contained HTML file.
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { logPaths, logTail, readBuildLog } from "../../builder/build-log.ts";
import { resolveStoreLayout } from "../../store/store-settings.ts";
import { pageHtml } from "../../viewer/page-html.ts";
import { viewModel } from "../../viewer/view-model.ts";
import { ViewServer } from "../../viewer/view-server.ts";
import { CliUsageError } from "../cli-error.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions } from "../store-options.ts";
import { openRunLog, runIdOf } from "./runs.ts";

interface ViewCliOptions extends StoreCliOptions {
  port: string;
  output?: string;
}

/** Lines of build log a goal's panel shows. */
const LOG_LINES = 30;

/** The last lines of a derivation's build log: the finished (compressed) one, or the one being written. */
function logTailOf(logDir: string): (drvPath: string) => string[] | undefined {
  return (drvPath) => {
    const running = logTail(logPaths(logDir, drvPath).raw, LOG_LINES);
    if (running.length > 0) return running;
    const log = readBuildLog(logDir, drvPath);
    if (!log) return undefined;
    const lines = log.toString("utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    return lines.slice(-LOG_LINES);
  };
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new CliUsageError(
      `--port wants a port number (0-65535, 0: any free port), not '${text}'`,
    );
  return n;
}

export function registerViewCommand(program: Command): Command {
  return addStoreOptions(
    program
      .command("view")
      .description(
        "show a recorded run in the browser: its goal graph over time, each goal's states, effects, waits, build log and statechart (live while the run goes on)",
      )
      .argument("[run]", "run number or 'last'", "last")
      .option("--port <port>", "serve on this port of 127.0.0.1 (default: any free port)", "0")
      .option("-o, --output <file>", "write the page as one self-contained HTML file instead"),
  ).action(async (runText: string, _o: ViewCliOptions, cmd: Command) => {
    const o = cmd.optsWithGlobals<ViewCliOptions>();
    const port = parsePort(o.port);
    const logDir = resolveStoreLayout({
      stateDir: o.stateDir,
      storeDir: o.storeDir,
      storeRoot: o.storeRoot,
    }).logDir;
    const log = openRunLog(o);
    try {
      const id = runIdOf(log, runText);
      const run = log.run(id);
      if (o.output !== undefined) {
        const data = viewModel(run, log.events(id), { logTail: logTailOf(logDir) });
        writeFileSync(o.output, await pageHtml(data));
        const goals = `${data.goals.length} goal${data.goals.length === 1 ? "" : "s"}`;
        await writeStdout(`wrote run ${id} (${goals}) to ${o.output}\n`);
        return;
      }
      const server = await ViewServer.start({ log, run: id, port, logTail: logTailOf(logDir) });
      await writeStdout(
        `nixstate view: run ${id} (${run.state}) at ${server.url}  (Ctrl-C to stop)\n`,
      );
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await server.close();
    } finally {
      log.close();
    }
  });
}
