// The critical path read from hand-made event logs, and a property over random DAGs with random
// finishing times: each step is what the next one waited for, and it is the one that ended last.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CriticalPathError,
  criticalPath,
  criticalPathText,
} from "../../src/events/critical-path.ts";
import type { GoalCause, RunEvent } from "../../src/events/run-event.ts";
import type { RunRow } from "../../src/events/run-log.ts";

const drv = (name: string) => `drv:/nix/store/${name.padEnd(32, "a")}-${name}.drv#normal`;

const row = (id = 1, state: RunRow["state"] = "ended"): RunRow => ({
  id,
  started: 0,
  ended: 1,
  exitCode: 0,
  request: { command: "build", targets: [], options: {}, cwd: "/" },
  pid: 1,
  resumes: undefined,
  state,
});

/** Events at the given monotonic times (ms), sequence numbers in time order. */
function log(targets: string[], timed: [number, Record<string, unknown>][]): RunEvent[] {
  const all: [number, Record<string, unknown>][] = [
    [
      0,
      {
        type: "run.started",
        request: { command: "build", targets, options: {}, cwd: "/" },
        settings: {},
        version: "0",
        host: "h",
        pid: 1,
      },
    ],
    ...timed,
  ];
  return all
    .map(([mono, b], i) => ({ mono, i, b }))
    .sort((x, y) => x.mono - y.mono || x.i - y.i)
    .map(({ mono, b }, k) => ({ seq: k + 1, mono, wall: mono, ...b }) as RunEvent);
}

const created = (goal: string, cause: GoalCause) => ({
  type: "goal.created",
  goal,
  kind: "derivation",
  decision: "new",
  cause,
  input: {},
});
const done = (goal: string, status = "Built") => ({
  type: "goal.done",
  goal,
  kind: "derivation",
  status,
  error: "",
  outputs: {},
  output: {},
});
const builder = (goal: string, at: number, ms: number): [number, Record<string, unknown>][] => [
  [at, { type: "builder.started", goal, where: "local", machine: "localhost", pid: 1 }],
  [
    at + ms,
    { type: "builder.exited", goal, how: "succeeded", startTime: 0, stopTime: 0, logBytes: 0 },
  ],
];

describe("critical path", () => {
  it("follows the input that ended last, from the target that ended last", () => {
    const [top, slow, fast, leaf, other] = ["top", "slow", "fast", "leaf", "other"].map(drv) as [
      string,
      string,
      string,
      string,
      string,
    ];
    const events = log(
      ["top.json", "other.json"],
      [
        [1, created(top, { kind: "target", index: 0 })],
        [1, { type: "target.started", index: 0, goal: top }],
        [2, created(other, { kind: "target", index: 1 })],
        [2, { type: "target.started", index: 1, goal: other }],
        [3, created(slow, { kind: "input", of: top })],
        [3, created(fast, { kind: "input", of: top })],
        [4, { type: "goal.waits", goal: top, on: [slow, fast] }],
        [5, created(leaf, { kind: "input", of: slow })],
        [6, { type: "goal.waits", goal: slow, on: [leaf] }],
        ...builder(leaf, 10, 100),
        [111, done(leaf)],
        ...builder(fast, 10, 20),
        [31, done(fast)],
        ...builder(other, 10, 50),
        [61, done(other)],
        ...builder(slow, 120, 200),
        [321, done(slow)],
        ...builder(top, 330, 10),
        [345, done(top)],
        [350, { type: "run.ended", exitCode: 0 }],
      ],
    );
    const p = criticalPath(row(), events);
    expect(p.target).toEqual({ index: 0, text: "top.json" });
    expect(p.steps.map((s) => s.goal)).toEqual([leaf, slow, top]);
    expect(p.steps.map((s) => [s.waitMs, s.buildMs])).toEqual([
      [5, 100],
      [117, 200],
      [329, 10],
    ]);
    expect(p.steps[1]!.ready).toBe(111);
    expect(p.totalMs).toBe(345);
    expect(p.buildMs).toBe(310);
    const text = criticalPathText(p);
    expect(text).toMatch(/^critical path of run 1: 3 goals, ending at target top\.json\n/);
    expect(text).toMatch(/\n +329 ms +10 ms {2}\/nix\/store\/.*-top\.drv\n/);
    expect(text).toMatch(/\ntotal: 345 ms from the start of the run, 310 ms of it in builders/);
  });

  it("stops at the failure that woke a goal early; a goal without a builder only waits", () => {
    const [top, bad, slow] = ["top", "bad", "slow"].map(drv) as [string, string, string];
    const events = log(
      ["top.json"],
      [
        [1, created(top, { kind: "target", index: 0 })],
        [2, created(bad, { kind: "input", of: top })],
        [2, created(slow, { kind: "input", of: top })],
        [3, { type: "goal.waits", goal: top, on: [bad, slow] }],
        ...builder(bad, 5, 10),
        [16, done(bad, "PermanentFailure")],
        [17, { type: "goal.woken", goal: top, by: bad }],
        [18, done(top, "DependencyFailed")],
        [30, done(slow, "MiscFailure")],
      ],
    );
    const p = criticalPath(row(), events);
    expect(p.steps.map((s) => [s.goal, s.status, s.waitMs, s.buildMs])).toEqual([
      [bad, "PermanentFailure", 3, 10],
      [top, "DependencyFailed", 17, 0],
    ]);
    expect(criticalPathText(p)).toMatch(/ {9}- {2}.*-top\.drv {2}\(DependencyFailed\)\n/);
  });

  it("says why there is none: no target ended yet", () => {
    const top = drv("top");
    const events = log(["top.json"], [[1, created(top, { kind: "target", index: 0 })]]);
    expect(() => criticalPath(row(4, "interrupted"), events)).toThrow(CriticalPathError);
    expect(() => criticalPath(row(4, "interrupted"), events)).toThrow(
      /no target of run 4 had ended .*nixstate runs resume 4/,
    );
    expect(() => criticalPath(row(5), log([], []))).toThrow(/run 5 has no targets/);
  });

  it("over random DAGs: each step is waited for by the next and is the waitee that ended last", () => {
    const dag = fc
      .integer({ min: 1, max: 15 })
      .chain((n) =>
        fc.tuple(
          fc.tuple(
            ...Array.from({ length: n }, (_, i) =>
              fc.subarray(Array.from({ length: i }, (_, j) => j)),
            ),
          ),
          fc.array(fc.integer({ min: 1, max: 50 }), { minLength: n, maxLength: n }),
          fc.array(fc.integer({ min: 0, max: 30 }), { minLength: n, maxLength: n }),
        ),
      );
    fc.assert(
      fc.property(dag, ([deps, build, lag]) => {
        const n = deps.length;
        const key = (i: number) => drv(`g${i}`);
        // Goals that nothing depends on are the targets.
        const targets = [...Array(n).keys()].filter((i) => !deps.some((d) => d.includes(i)));
        const end: number[] = [];
        const timed: [number, Record<string, unknown>][] = [];
        targets.forEach((t, index) => {
          timed.push([0, created(key(t), { kind: "target", index })]);
          timed.push([0, { type: "target.started", index, goal: key(t) }]);
        });
        for (let i = 0; i < n; i++) {
          const parent = deps.findIndex((d) => d.includes(i));
          if (parent >= 0) timed.push([0, created(key(i), { kind: "input", of: key(parent) })]);
          if (deps[i]!.length)
            timed.push([0, { type: "goal.waits", goal: key(i), on: deps[i]!.map(key) }]);
          const ready = Math.max(0, ...deps[i]!.map((d) => end[d]!));
          timed.push(...builder(key(i), ready + lag[i]!, build[i]!));
          end[i] = ready + lag[i]! + build[i]! + 1;
          timed.push([end[i]!, done(key(i))]);
        }
        const p = criticalPath(
          row(),
          log(
            targets.map((t) => `g${t}.json`),
            timed,
          ),
        );
        const idx = p.steps.map((s) => Number(/-g(\d+)\.drv/.exec(s.goal)![1]));
        const last = idx.at(-1)!;
        expect(targets).toContain(last);
        expect(end[last]).toBe(Math.max(...targets.map((t) => end[t]!)));
        expect(deps[idx[0]!]).toEqual([]);
        for (let k = 1; k < idx.length; k++) {
          const [below, above] = [idx[k - 1]!, idx[k]!];
          expect(deps[above]).toContain(below);
          expect(end[below]).toBe(Math.max(...deps[above]!.map((d) => end[d]!)));
        }
        expect(p.totalMs).toBe(end[last]);
      }),
      { numRuns: 200 },
    );
  });
});
