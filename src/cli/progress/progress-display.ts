// The progress display `nixstate build` puts on stderr unless asked for Nix's raw lines or
// internal-json: the live view on a terminal, plain lines elsewhere (or with --no-progress), and
// the end summary in both. One model of the run feeds them; the history of earlier runs gives the
// time left; the summary reads failed builds' logs from the store.
import { readBuildLog } from "../../builder/build-log.ts";
import type { RunEvent } from "../../events/run-event.ts";
import type { RunListener } from "../../events/run-recorder.ts";
import { builderLogPrinter, buildPrinter } from "../build-printer.ts";
import { BuildHistory, historyEstimate } from "./build-eta.ts";
import { endSummary, SummaryEvents } from "./end-summary.ts";
import { plainPrinter } from "./plain-printer.ts";
import { type GoalView, ProgressModel } from "./progress-model.ts";
import { liveProgress } from "./progress-screen.ts";
import { colourPaint, plainPaint, wantsColour } from "./progress-style.ts";

export interface ProgressDisplayOptions {
  stream: NodeJS.WriteStream;
  /** The live view (a terminal, not --no-progress); plain lines otherwise. */
  live: boolean;
  /** -1 with -q, 0 by default, 1 with -v. */
  verbosity: number;
  /** -L / bar-with-logs: builders' lines printed as they come. */
  logsShown: boolean;
  /** The store's state directory (the run log, for the history) and build-log directory. */
  stateDir: string;
  logDir: string;
  heartbeatMs?: number;
}

export interface ProgressDisplay {
  listeners: RunListener[];
  /** Whether the worker must send its builders' lines (the live view shows the last one). */
  builderLogs: boolean;
  /** Write to stderr without breaking the display. */
  write(text: string): void;
  /** Take the live view off the screen (before the output paths go to stdout). */
  settle(): void;
}

/** The last `n` lines of a derivation's build log in the store. */
export function storeLogTail(logDir: string, drvPath: string, n: number): string[] | undefined {
  const log = readBuildLog(logDir, drvPath);
  if (!log || log.length === 0) return undefined;
  const lines = log.toString("utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.slice(-n).map((l) => l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ""));
}

/** NIXSTATE_HEARTBEAT_MS: an undocumented knob, so tests need not wait a minute for one. */
function heartbeatFromEnv(): number | undefined {
  const ms = Number(process.env.NIXSTATE_HEARTBEAT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

export function progressDisplay(o: ProgressDisplayOptions): ProgressDisplay {
  const model = new ProgressModel();
  // Read when the ETA is first wanted (the first frame, the first heartbeat), not before: a run
  // done within a minute in plain mode never pays for it.
  let fromHistory: ((g: GoalView) => number | undefined) | undefined;
  const estimate = (g: GoalView) => {
    fromHistory ??= historyEstimate(BuildHistory.load(o.stateDir));
    return fromHistory(g);
  };
  const kept = new SummaryEvents();
  const paint = o.live && wantsColour(o.stream) ? colourPaint : plainPaint;
  const summary = () =>
    endSummary(model, kept.index, {
      paint,
      logTail: (drv, n) => storeLogTail(o.logDir, drv, n),
    });
  const stderr = (text: string) => {
    o.stream.write(text);
  };
  if (o.live) {
    // Failures and notes are printed for good above the view; -L lines too.
    let buffer = "";
    const capture = (text: string) => {
      buffer += text;
    };
    const nix = buildPrinter(capture, { logsShown: o.logsShown, starts: false });
    const lines = o.logsShown ? builderLogPrinter(capture) : undefined;
    const live = liveProgress({
      model,
      stream: o.stream,
      paint,
      estimate,
      summary,
      persistent: (e: RunEvent) => {
        nix(e);
        lines?.(e);
        const text = buffer;
        buffer = "";
        return text;
      },
    });
    return {
      listeners: [kept.listener, live.listener],
      builderLogs: true,
      write: live.write,
      settle: live.settle,
    };
  }
  const plain = plainPrinter({
    model,
    write: stderr,
    verbosity: o.verbosity,
    logsShown: o.logsShown,
    estimate,
    summary,
    heartbeatMs: o.heartbeatMs ?? heartbeatFromEnv(),
  });
  const listeners = [kept.listener, plain.listener];
  if (o.logsShown) listeners.push(builderLogPrinter(stderr));
  return { listeners, builderLogs: o.logsShown, write: stderr, settle: () => {} };
}
