// Plain mode on a recorded run: Nix's lines, a line per finished build, a failure in one piece,
// the heartbeat, -q; never a colour code or carriage return.
import { afterEach, describe, expect, it, vi } from "vitest";
import { plainPrinter } from "../../../src/cli/progress/plain-printer.ts";
import { ProgressModel } from "../../../src/cli/progress/progress-model.ts";
import { recorded } from "./recorded-runs.ts";

function print(verbosity: number, opts: { heartbeatMs?: number; wall?: () => number } = {}) {
  const writes: string[] = [];
  const p = plainPrinter({
    model: new ProgressModel(),
    write: (t) => writes.push(t),
    verbosity,
    logsShown: false,
    estimate: (g) => (g.name === "hello" ? 90_000 : undefined),
    summary: () => ["summary: the end"],
    ...(opts.heartbeatMs === undefined ? {} : { heartbeatMs: opts.heartbeatMs }),
    ...(opts.wall ? { wallClock: opts.wall } : {}),
  });
  return { p, writes };
}

describe("plain mode", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("prints Nix's start lines, a line per build that ends, failures whole, then the summary", () => {
    const { p, writes } = print(0);
    for (const e of recorded("build-run.jsonl")) p.listener(e);
    const text = writes.join("");
    expect(text).not.toMatch(/[\x1b\r]/);
    expect(text).toMatch(/^building '\S+-hello\.drv'\.\.\.$/m);
    expect(text).toMatch(/^built '\S+-hello\.drv' in \d+(ms|\.\ds)$/m);
    // The failure and the lines of its log it quotes: one write, nothing in between.
    const failure = writes.find((w) => w.startsWith("error: builder for"))!;
    expect(failure).toMatch(
      /failed with exit code 3;\nlast 1 log lines:\n> failing now\nFor full logs/,
    );
    expect(writes.at(-1)).toBe("summary: the end\n");
  });

  it("says where each copy comes from, as Nix does; -v says when it is done", () => {
    const { p, writes } = print(1);
    for (const e of recorded("substitute-run.jsonl")) p.listener(e);
    const text = writes.join("");
    expect(text).toMatch(/^copying path '\S+-hello' from 'file:\/\/\S+'\.\.\.$/m);
    expect(text).toMatch(/^copied '\S+-hello' in \d+(ms|\.\ds)$/m);
    const quiet = print(0);
    for (const e of recorded("substitute-run.jsonl")) quiet.p.listener(e);
    expect(quiet.writes.join("")).not.toContain("copied");
  });

  it("with -q: only the errors and the summary", () => {
    const { p, writes } = print(-1);
    for (const e of recorded("build-run.jsonl")) p.listener(e);
    expect(writes.filter((w) => !w.startsWith("error:"))).toEqual(["summary: the end\n"]);
  });

  it("a heartbeat while builds run: the time, what runs for how long, the counts, the time left", () => {
    vi.useFakeTimers();
    let wall = new Date(2026, 11, 3, 12, 3, 1).getTime();
    const { p, writes } = print(0, { heartbeatMs: 1000, wall: () => wall });
    const events = recorded("build-run.jsonl");
    const hello = events.findIndex(
      (e) => e.type === "builder.started" && e.goal.includes("-hello"),
    );
    for (const e of events.slice(0, hello + 1)) p.listener(e);
    wall += 80_000;
    const before = writes.length;
    vi.advanceTimersByTime(1000);
    expect(writes.slice(before)).toEqual([
      expect.stringMatching(
        /^\[12:04:2\d\] 1 running \(hello 1m20s\), \d\/4 done, 1 failed, ETA ~10s \(\+\d never built before\)\n$/,
      ),
    ]);
    // Nothing runs: no heartbeat.
    for (const e of events.slice(hello + 1)) if (e.type !== "run.ended") p.listener(e);
    const after = writes.length;
    vi.advanceTimersByTime(5000);
    expect(writes.length).toBe(after);
    p.listener(events.at(-1)!);
    vi.advanceTimersByTime(5000);
    expect(writes.at(-1)).toBe("summary: the end\n");
  });
});
