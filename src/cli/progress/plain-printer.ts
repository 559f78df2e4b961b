// Plain mode: what `nixstate build` prints when stderr is not a terminal (or with --no-progress):
// Nix 2.8's lines as each build starts, a line as each ends with how long it took, a failure's
// message with its log tail written whole in one piece (never split by another builder's lines),
// a heartbeat line while builds run (at most once a minute: a log file or CI page shows the run is
// alive) and the end summary. No colour, no carriage returns, no cursor movement. `-q` keeps the
// errors and the summary only; `-v` adds substitutions' ends and every running goal to the
// heartbeat.
import type { RunEvent } from "../../events/run-event.ts";
import type { RunListener } from "../../events/run-recorder.ts";
import { buildPrinter } from "../build-printer.ts";
import { estimateRemaining } from "./build-eta.ts";
import type { GoalView, ProgressModel } from "./progress-model.ts";
import { etaText } from "./progress-screen.ts";
import { clockText, durationText } from "./progress-style.ts";

/** How long between heartbeats unless told otherwise. */
export const HEARTBEAT_MS = 60_000;

export interface PlainPrinterOptions {
  model: ProgressModel;
  write: (text: string) => void;
  /** -1 with -q, 0 by default, 1 with -v. */
  verbosity: number;
  /** -L: builders' lines are printed as they come (by another listener). */
  logsShown: boolean;
  /** Milliseconds between heartbeats (HEARTBEAT_MS when undefined). */
  heartbeatMs?: number | undefined;
  estimate: (g: GoalView) => number | undefined;
  /** The summary's lines, printed when the run ends. */
  summary: () => string[];
  /** Unix milliseconds now (Date.now, or a test's clock). */
  wallClock?: () => number;
}

export interface PlainPrinter {
  listener: RunListener;
  /** The heartbeat's line for now, if builds run (exposed for tests). */
  heartbeat(): string | undefined;
}

export function plainPrinter(o: PlainPrinterOptions): PlainPrinter {
  const wallClock = o.wallClock ?? Date.now;
  // With -q the summary quotes failed builds' logs: their messages leave the tail out.
  const nix = buildPrinter(o.write, {
    logsShown: o.logsShown || o.verbosity < 0,
    starts: o.verbosity >= 0,
  });
  /** Unix ms − event mono: turns wall time into the events' time. */
  let offset: number | undefined;
  const now = () => (offset === undefined ? 0 : wallClock() - offset);

  const heartbeat = (): string | undefined => {
    const running = o.model.runningGoals();
    if (running.length === 0) return undefined;
    const t = now();
    const shown = o.verbosity > 0 ? running : running.slice(0, 3);
    const names = shown.map((g) => `${g.name} ${durationText(t - (g.started ?? t))}`);
    if (shown.length < running.length) names.push(`${running.length - shown.length} more`);
    const c = o.model.counts();
    const done = c.built + c.substituted + c.skipped;
    const left = estimateRemaining(o.model.goals, o.estimate, t, o.model.slots);
    // With no history at all, say nothing of the time left rather than "unknown" every minute.
    const eta = left.remainingMs === undefined ? "" : etaText(left);
    const failed = c.failed > 0 ? `, ${c.failed} failed` : "";
    return `[${clockText(wallClock())}] ${running.length} running (${names.join(", ")}), ${done}/${c.total} done${failed}${eta ? `, ${eta}` : ""}`;
  };

  const timer =
    o.verbosity >= 0
      ? setInterval(() => {
          const line = heartbeat();
          if (line) o.write(`${line}\n`);
        }, o.heartbeatMs ?? HEARTBEAT_MS)
      : undefined;
  timer?.unref();

  const listener = (e: RunEvent) => {
    offset = wallClock() - e.mono;
    o.model.apply(e);
    nix(e);
    if (e.type === "run.ended") {
      if (timer) clearInterval(timer);
      o.write(`${o.summary().join("\n")}\n`);
      return;
    }
    if (o.verbosity < 0) return;
    const line = progressLine(e, o.model, o.verbosity);
    if (line) o.write(`${line}\n`);
  };
  return { listener, heartbeat };
}

/** A line for a copy's start, or a goal's end (failures are Nix's own message, from buildPrinter). */
function progressLine(e: RunEvent, model: ProgressModel, verbosity: number): string | undefined {
  if (e.type === "effect.started" && e.effect === "importSubstitute") {
    const g = model.goals.get(e.goal);
    // Nix's words for a substitution's start.
    return g ? `copying path '${g.path}' from '${g.machine ?? "?"}'...` : undefined;
  }
  if (e.type !== "goal.done") return undefined;
  const g = model.goals.get(e.goal);
  if (!g?.end) return undefined;
  const took = g.workMs === undefined ? "" : ` in ${durationText(g.workMs)}`;
  if (g.end === "built") {
    const where = g.where === "remote" ? ` on '${g.machine}'` : "";
    return `built '${g.path}'${where}${took}`;
  }
  if (g.end === "substituted" && verbosity > 0) return `copied '${g.path}'${took}`;
  return undefined;
}
