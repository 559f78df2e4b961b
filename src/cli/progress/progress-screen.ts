// The live view on a terminal, in the spirit of nix-output-monitor: a few lines redrawn in place
// (log-update) under whatever was printed for good (failures, notes, -L lines): each running
// build with where it runs, for how long and the last line its builder wrote, each copy from a
// substituter, then the counts and the time left. Redrawn at most ten times a second as events
// come, and once a second regardless, so elapsed times move and it never looks stalled.

import type { RunEvent } from "../../events/run-event.ts";
import type { RunListener } from "../../events/run-recorder.ts";
import { createLogUpdate } from "../../io/on-demand.ts";
import { type Eta, estimateRemaining } from "./build-eta.ts";
import type { GoalView, ProgressModel } from "./progress-model.ts";
import { durationText, type Paint } from "./progress-style.ts";

export interface ScreenOptions {
  /** Terminal columns: every line is cut to fit. */
  width: number;
  /** Running goals shown; the rest are counted. */
  maxRunning: number;
  paint: Paint;
  /** Now, on the events' clock (milliseconds since the run started). */
  now: number;
  eta: Eta | undefined;
}

/** Cut `text` (which may hold styles) to `width` visible columns. */
function cutToWidth(text: string, width: number, plain: string): string {
  return plain.length <= width ? text : `${plain.slice(0, Math.max(0, width - 1))}…`;
}

function whereText(g: GoalView): string {
  if (g.where === "substituter") return g.machine ? `from ${g.machine}` : "copying";
  if (g.where === "remote") return `on ${g.machine}`;
  return "here";
}

/** One running goal: `▶ hello-2.12  here  12s  │ checking for gcc...`. */
function runningLine(g: GoalView, o: ScreenOptions): string {
  const verb = g.kind === "substitution" ? "⇣" : "▶";
  const elapsed = durationText(o.now - (g.started ?? o.now));
  const head = `${verb} ${g.name}  ${whereText(g)}  ${elapsed}`;
  const room = o.width - head.length - 4;
  const last = g.lastLine && room > 8 ? g.lastLine.slice(0, room) : "";
  const plain = last ? `${head}  │ ${last}` : head;
  const styled = `${o.paint("yellow", verb)} ${o.paint("bold", g.name)}  ${o.paint("dim", whereText(g))}  ${elapsed}${last ? `  ${o.paint("dim", `│ ${last}`)}` : ""}`;
  return cutToWidth(styled, o.width, plain);
}

export function etaText(eta: Eta | undefined): string {
  if (!eta) return "";
  if (eta.remainingMs === undefined)
    return eta.unknown > 0 ? "ETA unknown (no earlier runs of these)" : "";
  const unknown = eta.unknown > 0 ? ` (+${eta.unknown} never built before)` : "";
  return `ETA ~${durationText(eta.remainingMs)}${unknown}`;
}

/** The counts line: `✔ 3/12 done · ▶ 2 running · ⏸ 6 waiting · ✘ 1 failed · 3.2s · ETA ~5s`. */
export function countsLine(model: ProgressModel, o: ScreenOptions): string {
  const c = model.counts();
  const done = c.built + c.substituted + c.skipped;
  const parts: [string, string][] = [
    [`✔ ${done}/${c.total} done`, o.paint("green", `✔ ${done}/${c.total} done`)],
    [`▶ ${c.running} running`, o.paint("yellow", `▶ ${c.running} running`)],
    [`⏸ ${c.waiting} waiting`, `⏸ ${c.waiting} waiting`],
  ];
  if (c.failed + c.dependencyFailed > 0) {
    const t = `✘ ${c.failed} failed${c.dependencyFailed > 0 ? ` (+${c.dependencyFailed} dependents)` : ""}`;
    parts.push([t, o.paint("red", t)]);
  }
  if (c.cancelled > 0)
    parts.push([`■ ${c.cancelled} stopped`, o.paint("yellow", `■ ${c.cancelled} stopped`)]);
  parts.push([durationText(o.now), durationText(o.now)]);
  const eta = etaText(o.eta);
  if (eta) parts.push([eta, o.paint("cyan", eta)]);
  const plain = parts.map((p) => p[0]).join(" · ");
  return cutToWidth(parts.map((p) => p[1]).join(" · "), o.width, plain);
}

/** One goal waiting for another process's lock: `⏳ hello-2.12  waits for a lock  4.0s`. */
function lockedLine(g: GoalView, o: ScreenOptions): string {
  const plain = `⏳ ${g.name}  waits for a lock another process holds  ${durationText(o.now - g.lockedSince!)}`;
  return cutToWidth(o.paint("dim", plain), o.width, plain);
}

/**
 * The view's lines: running goals, then those waiting for a lock (at most `maxRunning` in all,
 * then a count), then the counts.
 */
export function renderScreen(model: ProgressModel, o: ScreenOptions): string[] {
  const running = model.runningGoals();
  const locked = model.lockedGoals();
  const lines = running.slice(0, o.maxRunning).map((g) => runningLine(g, o));
  const room = Math.max(0, o.maxRunning - lines.length);
  lines.push(...locked.slice(0, room).map((g) => lockedLine(g, o)));
  const hidden = running.length + locked.length - lines.length;
  if (hidden > 0) lines.push(o.paint("dim", `  … and ${hidden} more`));
  lines.push(countsLine(model, o));
  return lines;
}

export interface LiveProgressOptions {
  model: ProgressModel;
  stream: NodeJS.WriteStream;
  paint: Paint;
  /** A goal's estimate from earlier runs (build-eta.ts). */
  estimate: (g: GoalView) => number | undefined;
  /** What to print for good as an event comes (failures, notes, -L lines); "" for nothing. */
  persistent: (e: RunEvent) => string;
  /** The summary's lines, printed when the run ends. */
  summary: () => string[];
  /** performance.now, or a test's clock. */
  clock?: () => number;
}

export interface LiveProgress {
  listener: RunListener;
  /** Print text for good above the view (what others write to stderr while it runs). */
  write(text: string): void;
  /** Take the view off the screen for good (before the output paths are printed). */
  settle(): void;
}

export function liveProgress(o: LiveProgressOptions): LiveProgress {
  const clock = o.clock ?? (() => performance.now());
  // The cursor stays visible: hiding it loads signal-exit (through cli-cursor), whose SIGINT
  // handler kills the process when it is the last listener left, and `build` listens with
  // `once`; Ctrl-C must cancel the build and still print the summary.
  const log = createLogUpdate(o.stream, { showCursor: true });
  /** clock() − event mono: turns the clock into the events' time. */
  let offset: number | undefined;
  let pending = "";
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  let lastDraw = -Infinity;
  let eta: { at: number; value: Eta } | undefined;
  const tick = setInterval(() => draw(), 1000);
  tick.unref();

  const now = () => (offset === undefined ? 0 : clock() - offset);
  const draw = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (settled) return;
    lastDraw = clock();
    if (pending) {
      // Written as it is, not through log-update's persist: that hard-wraps long lines (paths in
      // error messages), which then copy badly.
      log.clear();
      o.stream.write(pending);
      pending = "";
    }
    const t = now();
    // The critical path is a walk over every goal: once a second is enough.
    if (!eta || t - eta.at >= 1000) {
      eta = {
        at: t,
        value: estimateRemaining(o.model.goals, o.estimate, t, o.model.slots),
      };
    }
    const rows = o.stream.rows ?? 24;
    log(
      renderScreen(o.model, {
        width: Math.max(20, (o.stream.columns ?? 80) - 1),
        maxRunning: Math.max(1, Math.min(10, rows - 6)),
        paint: o.paint,
        now: t,
        eta: eta.value,
      }).join("\n"),
    );
  };
  const schedule = () => {
    if (timer || settled) return;
    // At most ten frames a second: a chatty build must not cost a redraw per line.
    timer = setTimeout(draw, Math.max(0, 100 - (clock() - lastDraw)));
    timer.unref();
  };
  const settle = () => {
    if (settled) return;
    settled = true;
    clearInterval(tick);
    if (timer) clearTimeout(timer);
    log.clear();
    log.done();
    if (pending) o.stream.write(pending);
    pending = "";
  };
  const write = (text: string) => {
    if (settled) o.stream.write(text);
    else {
      pending += text;
      schedule();
    }
  };
  const listener = (e: RunEvent) => {
    offset = clock() - e.mono;
    o.model.apply(e);
    const text = o.persistent(e);
    if (text) write(text);
    if (e.type === "run.ended") {
      settle();
      o.stream.write(`${o.summary().join("\n")}\n`);
      return;
    }
    schedule();
  };
  return { listener, write, settle };
}
