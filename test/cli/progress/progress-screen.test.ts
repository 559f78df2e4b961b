// The live view's frames from a recorded run, and how often it redraws (fake timers).
import { stripVTControlCharacters } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BuildHistory,
  estimateRemaining,
  historyEstimate,
} from "../../../src/cli/progress/build-eta.ts";
import { ProgressModel } from "../../../src/cli/progress/progress-model.ts";
import { liveProgress, renderScreen } from "../../../src/cli/progress/progress-screen.ts";
import {
  colourPaint,
  durationText,
  plainPaint,
  wantsColour,
} from "../../../src/cli/progress/progress-style.ts";
import type { RunEvent } from "../../../src/events/run-event.ts";
import { recorded } from "./recorded-runs.ts";

function upTo(events: RunEvent[], pred: (e: RunEvent) => boolean): ProgressModel {
  const m = new ProgressModel();
  for (const e of events) {
    m.apply(e);
    if (pred(e)) break;
  }
  return m;
}

const screenOptions = { width: 70, maxRunning: 5, paint: plainPaint, eta: undefined };

describe("the live view's frame", () => {
  const events = recorded("build-run.jsonl");
  const lastLog = [...events].reverse().find((e) => e.type === "builder.log")!;

  it("shows each running build with where, for how long, its last line; then the counts", () => {
    const m = upTo(events, (e) => e === lastLog);
    const now = m.lastMono + 2500;
    const lines = renderScreen(m, { ...screenOptions, now });
    const running = m.runningGoals()[0]!;
    expect(lines[0]).toContain(`▶ ${running.name}  here  ${durationText(now - running.started!)}`);
    // The last line, cut to what is left of the width.
    expect(lines[0]).toContain(`│ ${running.lastLine!.slice(0, 20)}`);
    expect(lines.at(-1)).toMatch(/^✔ \d+\/4 done · ▶ 1 running · ⏸ \d+ waiting/);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(70);
  });

  it("cuts lines to the terminal's width and counts the running builds it has no room for", () => {
    const m = upTo(events, (e) => e === lastLog);
    // Three more builds running at once.
    for (const n of [1, 2, 3])
      m.apply({
        type: "builder.started",
        goal: `drv:/s/x${n}-other-${n}.drv#normal`,
        where: "remote",
        machine: `box${n}`,
        seq: 0,
        mono: m.lastMono,
        wall: 0,
      });
    const lines = renderScreen(m, { ...screenOptions, width: 30, maxRunning: 2, now: m.lastMono });
    expect(lines).toHaveLength(4);
    // Two more running, and whatever waits for a lock.
    expect(lines[2]).toContain(`… and ${2 + m.lockedGoals().length} more`);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(30);
    const wide = renderScreen(m, { ...screenOptions, width: 100, maxRunning: 9, now: m.lastMono });
    expect(wide.some((l) => l.includes("other-3  on box3"))).toBe(true);
  });

  it("shows a build waiting for another process's lock, and for how long", () => {
    const m = upTo(events, (e) => e.type === "lock.busy");
    const busy = events.find((e) => e.type === "lock.busy")!;
    const lines = renderScreen(m, { ...screenOptions, width: 100, now: busy.mono + 4000 });
    expect(lines).toContain("⏳ slow  waits for a lock another process holds  4.0s");
    // Once it ends (valid: the other process built it), it waits no more.
    const end = upTo(events, () => false);
    expect(end.lockedGoals()).toEqual([]);
  });

  it("shows the time left, and says when there is no history for what is left", () => {
    const m = upTo(events, (e) => e.type === "builder.started");
    const h = BuildHistory.empty();
    h.add("hello", "localhost", 90_000);
    h.add("uses", "localhost", 30_000);
    const eta = estimateRemaining(m.goals, historyEstimate(h), m.lastMono, m.slots);
    const lines = renderScreen(m, { ...screenOptions, width: 200, eta, now: m.lastMono });
    expect(lines.at(-1)).toMatch(/ETA ~\d+m\d\ds \(\+\d never built before\)$/);
    const none = estimateRemaining(m.goals, () => undefined, m.lastMono, 1);
    expect(renderScreen(m, { ...screenOptions, width: 200, eta: none, now: 0 }).at(-1)).toContain(
      "ETA unknown",
    );
  });

  it("colours only when asked, and colour is wanted on a terminal without NO_COLOR", () => {
    const m = upTo(events, (e) => e === lastLog);
    const coloured = renderScreen(m, { ...screenOptions, width: 200, paint: colourPaint, now: 0 });
    expect(coloured.join("\n")).toContain("\x1b[");
    expect(stripVTControlCharacters(coloured.join("\n"))).toBe(
      renderScreen(m, { ...screenOptions, width: 200, now: 0 }).join("\n"),
    );
    expect(wantsColour({ isTTY: true }, {})).toBe(true);
    expect(wantsColour({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(wantsColour({ isTTY: true }, { TERM: "dumb" })).toBe(false);
    expect(wantsColour({ isTTY: false }, {})).toBe(false);
  });
});

describe("the live view's redraws", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function fakeTerminal() {
    const writes: string[] = [];
    const stream = {
      isTTY: true,
      columns: 100,
      rows: 20,
      write: (s: string) => {
        writes.push(s);
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    return { stream, writes };
  }

  it("at most ten frames a second however many events come, at least one a second without any", () => {
    vi.useFakeTimers();
    const { stream, writes } = fakeTerminal();
    const events = recorded("build-run.jsonl");
    const live = liveProgress({
      model: new ProgressModel(),
      stream,
      paint: plainPaint,
      estimate: () => undefined,
      persistent: () => "",
      summary: () => ["the summary"],
      clock: () => Date.now(),
    });
    const untilEnd = events.filter((e) => e.type !== "run.ended");
    for (const e of untilEnd) live.listener(e);
    expect(writes).toHaveLength(0);
    vi.advanceTimersByTime(100);
    expect(writes).toHaveLength(1);
    // Nothing happens for three seconds: the elapsed time still moves on screen.
    vi.advanceTimersByTime(3000);
    expect(writes.length).toBeGreaterThanOrEqual(3);
    expect(writes.length).toBeLessThanOrEqual(4);
    // A burst of events within 100 ms: one frame.
    const before = writes.length;
    for (let i = 0; i < 50; i++) live.listener({ ...untilEnd.at(-1)!, mono: 5000 + i });
    vi.advanceTimersByTime(100);
    expect(writes.length - before).toBe(1);
    live.listener(events.at(-1)!);
    expect(writes.at(-1)).toBe("the summary\n");
    const n = writes.length;
    vi.advanceTimersByTime(5000);
    expect(writes).toHaveLength(n);
  });

  it("prints failures for good above the view", () => {
    vi.useFakeTimers();
    const { stream, writes } = fakeTerminal();
    const live = liveProgress({
      model: new ProgressModel(),
      stream,
      paint: plainPaint,
      estimate: () => undefined,
      persistent: (e) => (e.type === "goal.done" && e.error ? `error: ${e.error}\n` : ""),
      summary: () => [],
      clock: () => Date.now(),
    });
    for (const e of recorded("build-run.jsonl")) {
      live.listener(e);
      vi.advanceTimersByTime(10);
    }
    const all = stripVTControlCharacters(writes.join(""));
    expect(all).toMatch(/error: builder for '.*-fails\.drv' failed with exit code 3/);
  });
});
