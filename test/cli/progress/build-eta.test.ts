// The time left: medians of earlier runs, the longest chain of goals not yet done, the work spread
// over the build slots.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  BuildHistory,
  estimateRemaining,
  historyEstimate,
  median,
} from "../../../src/cli/progress/build-eta.ts";
import {
  type GoalView,
  newGoalView,
  ProgressModel,
} from "../../../src/cli/progress/progress-model.ts";
import { runLogFile } from "../../../src/events/run-log.ts";
import { recorded } from "./recorded-runs.ts";

function goal(key: string, over: Partial<GoalView> = {}): GoalView {
  return { ...newGoalView(`drv:/s/h-${key}.drv#normal`, "derivation", 0), key, name: key, ...over };
}

const graph = (gs: GoalView[]) => new Map(gs.map((g) => [g.key, g]));

describe("medians from earlier runs", () => {
  it("takes the middle sample, or the mean of the two middle ones", () => {
    expect(median([5])).toBe(5);
    expect(median([9, 1, 5])).toBe(5);
    expect(median([1, 2, 10, 20])).toBe(6);
  });

  it("keys builds by name and machine, falling back to the name on another machine", () => {
    const h = BuildHistory.empty();
    h.add("gcc", "localhost", 100);
    h.add("gcc", "localhost", 300);
    h.add("gcc", "localhost", 200);
    h.add("gcc", "big-box", 20);
    expect(h.estimate("gcc", "localhost")).toBe(200);
    expect(h.estimate("gcc", "big-box")).toBe(20);
    expect(h.estimate("gcc", "unseen")).toBe(100 + 50);
    expect(h.estimate("clang", "localhost")).toBeUndefined();
  });

  it("reads builders' run times and substitutions' durations from a recorded run", () => {
    const h = BuildHistory.empty();
    const events = recorded("build-run.jsonl");
    h.addRun(events);
    const started = events.find((e) => e.type === "builder.started" && e.goal.includes("-hello"))!;
    const exited = events.find((e) => e.type === "builder.exited" && e.goal.includes("-hello"))!;
    expect(h.estimate("hello", "localhost")).toBeCloseTo(exited.mono - started.mono, 6);
    const subs = BuildHistory.empty();
    subs.addRun(recorded("substitute-run.jsonl"));
    expect(subs.estimate("cached")).toBeGreaterThan(0);
  });

  it("finds no history, and creates no run log, where there is none", () => {
    const dir = mkdtempSync(join(tmpdir(), "nixstate-eta-"));
    expect(BuildHistory.load(dir).size).toBe(0);
    expect(existsSync(runLogFile(dir))).toBe(false);
  });
});

describe("the time left", () => {
  const est = (ms: Record<string, number>) => (g: GoalView) => ms[g.name];

  it("is the longest chain of goals not done, a running one counted at what is left of it", () => {
    const gs = graph([
      goal("top", { waitsOn: ["mid", "side"] }),
      goal("mid", { waitsOn: ["leaf"] }),
      goal("leaf", { phase: "running", started: 1000 }),
      goal("side"),
      goal("old", { phase: "done" }),
    ]);
    const eta = estimateRemaining(
      gs,
      est({ top: 10, mid: 20, leaf: 300, side: 50, old: 999 }),
      1100,
      8,
    );
    expect(eta.remainingMs).toBe(10 + 20 + 200);
    expect(eta.criticalPath).toEqual(["leaf", "mid", "top"]);
    expect(eta.unknown).toBe(0);
  });

  it("spreads wide work over the slots when that takes longer than the longest chain", () => {
    const gs = graph(["a", "b", "c", "d"].map((k) => goal(k)));
    const e = est({ a: 10, b: 10, c: 10, d: 10 });
    expect(estimateRemaining(gs, e, 0, 1).remainingMs).toBe(40);
    expect(estimateRemaining(gs, e, 0, 2).remainingMs).toBe(20);
    expect(estimateRemaining(gs, e, 0, 8).remainingMs).toBe(10);
  });

  it("counts goals never built before, and has no estimate when none has one", () => {
    const gs = graph([goal("new", { waitsOn: ["known"] }), goal("known")]);
    expect(estimateRemaining(gs, est({ known: 30 }), 0, 1)).toMatchObject({
      remainingMs: 30,
      unknown: 1,
    });
    expect(estimateRemaining(gs, est({}), 0, 1)).toMatchObject({
      remainingMs: undefined,
      unknown: 2,
    });
  });

  it("walks a chain 20000 goals long (no recursion to overflow the stack)", () => {
    const n = 20_000;
    const gs = graph(
      Array.from({ length: n }, (_, i) => goal(`c${i}`, { waitsOn: i > 0 ? [`c${i - 1}`] : [] })),
    );
    const eta = estimateRemaining(gs, () => 1, 0, 4);
    expect(eta.remainingMs).toBe(n);
    expect(eta.criticalPath).toHaveLength(n);
  });

  it("survives a cycle in the waits", () => {
    const gs = graph([goal("a", { waitsOn: ["b"] }), goal("b", { waitsOn: ["a"] })]);
    expect(estimateRemaining(gs, est({ a: 1, b: 2 }), 0, 1).remainingMs).toBe(3);
  });

  it("estimates a model's goals by their name and machine", () => {
    const h = BuildHistory.empty();
    h.add("hello", "localhost", 500);
    const m = new ProgressModel();
    for (const e of recorded("build-run.jsonl")) {
      m.apply(e);
      if (e.type === "builder.started" && e.goal.includes("-hello")) break;
    }
    const eta = estimateRemaining(m.goals, historyEstimate(h), m.lastMono, m.slots);
    expect(eta.remainingMs).toBeLessThanOrEqual(500);
    expect(eta.remainingMs).toBeGreaterThan(0);
  });

  const dags = fc
    .array(
      fc.record({
        ms: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
        deps: fc.array(fc.nat(30), { maxLength: 3 }),
        running: fc.boolean(),
      }),
      { minLength: 1, maxLength: 30 },
    )
    .map((nodes) => ({
      goals: graph(
        nodes.map((n, i) =>
          goal(`g${i}`, {
            waitsOn: n.deps.filter((d) => d < i).map((d) => `g${d}`),
            ...(n.running ? { phase: "running" as const, started: 0 } : {}),
          }),
        ),
      ),
      ms: Object.fromEntries(
        nodes.flatMap((n, i) => (n.ms === undefined ? [] : [[`g${i}`, n.ms]])),
      ),
    }));

  test.prop([dags, fc.integer({ min: 1, max: 8 }), fc.nat(2000)])(
    "lies between the longest single goal and all the work, and shrinks as time passes",
    ({ goals, ms }, slots, t) => {
      const e = estimateRemaining(goals, est(ms), 0, slots);
      const later = estimateRemaining(goals, est(ms), t, slots);
      const values = Object.values(ms);
      if (values.length === 0) {
        expect(e.remainingMs).toBeUndefined();
        return;
      }
      expect(e.remainingMs!).toBeGreaterThanOrEqual(Math.max(...values));
      expect(e.remainingMs!).toBeLessThanOrEqual(values.reduce((a, b) => a + b, 0));
      expect(later.remainingMs!).toBeLessThanOrEqual(e.remainingMs!);
      expect(e.unknown).toBe(goals.size - values.length);
    },
  );
});
