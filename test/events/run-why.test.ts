// `why` read from hand-made event logs (every outcome, the choice of goal, the chain of requests),
// a property over random failing DAGs, and the search across a real run log's runs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { GoalCause, RunEvent } from "../../src/events/run-event.ts";
import { goalLabel, indexRun } from "../../src/events/run-index.ts";
import { RunLog } from "../../src/events/run-log.ts";
import {
  explain,
  findGoal,
  NotInAnyRunError,
  NotInRunError,
  outcomeOf,
  traceFailure,
  wantedBy,
  why,
} from "../../src/events/run-why.ts";
import { whyText } from "../../src/events/why-text.ts";

const S = "/nix/store";
const drv = (name: string, suffix = "") =>
  `drv:${S}/${name.padEnd(32, "a")}-${name}.drv#normal${suffix}`;
const out = (name: string) => `${S}/${name.padEnd(32, "b")}-${name}`;
const sub = (name: string) => `sub:${out(name)}`;

/** A run's events from their bodies: seq, mono (1 ms apart) and wall stamped in order. */
function log(targets: string[], bodies: Record<string, unknown>[]): RunEvent[] {
  const all = [
    {
      type: "run.started",
      request: { command: "build", targets, options: {}, cwd: "/work" },
      settings: {},
      version: "0",
      host: "h",
      pid: 1,
    },
    ...bodies,
  ];
  return all.map((b, i) => ({ seq: i + 1, mono: i, wall: 1000 + i, ...b }) as RunEvent);
}

const created = (
  goal: string,
  cause: GoalCause,
  kind = goal.startsWith("sub:") ? "substitution" : "derivation",
) => ({
  type: "goal.created",
  goal,
  kind,
  decision: "new",
  cause,
  input: {},
});
const target = (index: number) => ({ kind: "target", index }) as GoalCause;
const inputOf = (of: string) => ({ kind: "input", of }) as GoalCause;
const waits = (goal: string, on: string[]) => ({ type: "goal.waits", goal, on });
const done = (goal: string, status: string, error = "", outputs: Record<string, string> = {}) => ({
  type: "goal.done",
  goal,
  kind: goal.startsWith("sub:") ? "substitution" : "derivation",
  status,
  error,
  outputs,
  output: {},
});
const outputs = (goal: string, effect: string, valid: boolean, path = out("x")) => ({
  type: "effect.done",
  goal,
  invoke: effect,
  effect,
  output: [{ name: "out", path, valid, wanted: true }],
});

describe("what happened to a goal", () => {
  it("already valid, or made valid by another process while we waited for the lock", () => {
    const a = drv("a");
    const b = drv("b");
    const idx = indexRun(
      log(
        ["a.json", "b.json"],
        [
          created(a, target(0)),
          outputs(a, "queryOutputs", true, out("a")),
          done(a, "AlreadyValid", "", { out: out("a") }),
          created(b, target(1)),
          outputs(b, "queryOutputs", false, out("b")),
          outputs(b, "lockOutputs", true, out("b")),
          done(b, "AlreadyValid", "", { out: out("b") }),
        ],
      ),
    );
    expect(outcomeOf(idx.goals.get(a)!, idx)).toBe("alreadyValid");
    expect(outcomeOf(idx.goals.get(b)!, idx)).toBe("validUnderLock");
    const text = whyText(explain(idx, 7, out("b"), [out("b")]));
    expect(text).toMatch(
      /^run 7: .*-b \(output 'out' of .*-b\.drv\) was not built: another process built it while this build waited for the lock on its outputs\n/,
    );
    expect(text).toMatch(/wanted by:\n {2}target b\.json/);
    expect(whyText(explain(idx, 7, "a.json", ["/work/a.json"]))).toMatch(
      /-a\.drv was not built: its outputs were already valid/,
    );
  });

  it("a substitution another process finished while this one waited, and one no substituter had", () => {
    const top = drv("top");
    const s1 = sub("s1");
    const s2 = sub("s2");
    const idx = indexRun(
      log(
        ["top.json"],
        [
          created(top, target(0)),
          created(s1, { kind: "substitution", for: top }),
          created(s2, { kind: "reference", of: s1 }),
          waits(top, [s1]),
          waits(s1, [s2]),
          done(
            s2,
            "noSubstituters",
            "path is required, but there is no substituter that can build it",
          ),
          { type: "effect.done", goal: s1, invoke: "lockPath", effect: "lockPath", output: true },
          done(s1, "alreadyValid"),
          done(top, "Built"),
        ],
      ),
    );
    expect(outcomeOf(idx.goals.get(s1)!, idx)).toBe("validUnderLock");
    const a = explain(idx, 1, out("s2"), [out("s2")]);
    expect(a.goal.outcome).toBe("noSubstituter");
    expect(a.wantedBy.chain.map((l) => [l.goal, l.as])).toEqual([
      [top, "target"],
      [s1, "substitution"],
      [s2, "reference"],
    ]);
    expect(whyText(a)).toMatch(
      /could not be substituted: no substituter has it\nwanted by:\n {2}target top\.json .*\n {4}which substitutes .*-s1\n {6}which needs the reference .*-s2\n$/,
    );
  });

  it("a cascade: the woken-by goal is blamed first, every root cause is listed", () => {
    const [top, m1, m2, l1, l2] = [drv("top"), drv("m1"), drv("m2"), drv("l1"), drv("l2")];
    const idx = indexRun(
      log(
        ["top.json"],
        [
          created(top, target(0)),
          created(m1, inputOf(top)),
          created(m2, inputOf(top)),
          waits(top, [m1, m2]),
          created(l1, inputOf(m1)),
          waits(m1, [l1]),
          created(l2, inputOf(m2)),
          waits(m2, [l2]),
          done(l1, "PermanentFailure", "builder for 'l1' failed with exit code 1;\nlast lines"),
          done(m1, "DependencyFailed", "1 dependencies of derivation 'm1' failed to build"),
          done(l2, "TimedOut", "builder for 'l2' timed out after 5 seconds"),
          done(m2, "DependencyFailed", "1 dependencies of derivation 'm2' failed to build"),
          { type: "goal.woken", goal: top, by: m2 },
          done(top, "DependencyFailed", "2 dependencies of derivation 'top' failed to build"),
        ],
      ),
    );
    const t = traceFailure(top, idx);
    expect(t.chain.map((f) => f.goal)).toEqual([top, m2, l2]);
    expect(t.rootCauses.map((f) => f.goal)).toEqual([l2, l1]);
    expect(t.rootCauses[1]!.error).toBe("builder for 'l1' failed with exit code 1;");
    const text = whyText(explain(idx, 3, "top.json", ["top.json"]));
    expect(text).toMatch(/root causes \(2\):\n {2}.*-l2\.drv: failed by itself \(TimedOut\)/);
    expect(text).toMatch(
      /because .*-l2\.drv failed by itself \(TimedOut\): builder for 'l2' timed out/,
    );
  });

  it("cancelled: by the failed goal named in goal.stopped, or stopped by a signal", () => {
    const [a, b, c] = [drv("a"), drv("b"), drv("c")];
    const cancelled =
      "build cancelled because another build failed (use --keep-going to go on after failures)";
    const idx = indexRun(
      log(
        ["a.json", "b.json"],
        [
          created(a, target(0)),
          created(b, target(1)),
          done(a, "PermanentFailure", "builder for 'a' failed with exit code 2;"),
          { type: "worker.cancelAll", cause: a },
          { type: "goal.stopped", goal: b, by: a },
          done(b, "MiscFailure", cancelled),
        ],
      ),
    );
    const t = explain(idx, 1, "b.json", ["b.json"]);
    expect(t.goal.outcome).toBe("cancelled");
    expect(t.rootCauses.map((r) => r.goal)).toEqual([a]);
    expect(whyText(t)).toMatch(
      /was cancelled because another build failed.*\n {2}stopped by the failure of .*-a\.drv, which failed by itself \(PermanentFailure\): builder for 'a' failed with exit code 2;\nroot cause: .*-a\.drv\n/,
    );
    const sig = indexRun(
      log(
        ["c.json"],
        [
          created(c, target(0)),
          { type: "worker.cancelAll", cause: "SIGINT" },
          { type: "goal.stopped", goal: c, by: "SIGINT" },
          done(c, "MiscFailure", cancelled),
        ],
      ),
    );
    expect(whyText(explain(sig, 2, "c.json", ["c.json"]))).toMatch(
      /-c\.drv was stopped before it ended \(SIGINT\)\n/,
    );
  });

  it("cached failures, unfinished goals, and inputs no substituter has", () => {
    const [a, b, top] = [drv("a"), drv("b"), drv("top")];
    const src = sub("src");
    const idx = indexRun(
      log(
        ["a.json", "b.json", "top.json"],
        [
          created(a, target(0)),
          done(a, "CachedFailure", "build of 'a' previously failed"),
          created(b, target(1)),
          created(top, target(2)),
          created(src, { kind: "inputSource", of: top }),
          waits(top, [src]),
          done(
            src,
            "noSubstituters",
            "path 'src' is required, but there is no substituter that can build it",
          ),
          done(top, "DependencyFailed", "1 dependencies of derivation 'top' failed to build"),
        ],
      ),
    );
    expect(whyText(explain(idx, 1, "a.json", ["a.json"]))).toMatch(
      /was not built: it failed in an earlier build, and that failure is cached .*'nixstate failed clear'/,
    );
    expect(outcomeOf(idx.goals.get(b)!, idx)).toBe("unfinished");
    const t = traceFailure(top, idx);
    expect(t.chain.map((f) => [f.goal, f.outcome])).toEqual([
      [top, "dependencyFailed"],
      [src, "noSubstituter"],
    ]);
  });
});

describe("finding the goal", () => {
  const [a, a2, chk] = [drv("a"), drv("a", "@2"), `drv:${S}/${"a".padEnd(32, "a")}-a.drv#check`];
  const events = log(
    ["./a.json"],
    [
      created(a, target(0)),
      outputs(a, "queryOutputs", false, out("a")),
      done(a, "Built", "", { out: out("a") }),
      created(a2, inputOf(a)),
      {
        ...outputs(a2, "queryOutputs", false, out("a-dev")),
        output: [{ name: "dev", path: out("a-dev"), valid: false, wanted: true }],
      },
      done(a2, "PermanentFailure", "builder failed"),
      created(chk, inputOf(a)),
      created(sub("ref"), { kind: "reference", of: sub("x") }),
    ],
  );
  const idx = indexRun(events);

  it("by .drv path (the newest goal), output path (done or only queried), store path, goal key, target", () => {
    const path = `${S}/${"a".padEnd(32, "a")}-a.drv`;
    expect(findGoal(idx, [path])).toEqual({ goal: chk });
    expect(findGoal(idx, [out("a")])).toEqual({ goal: a, output: "out" });
    expect(findGoal(idx, [out("a-dev")])).toEqual({ goal: a2, output: "dev" });
    expect(findGoal(idx, [out("ref")])).toEqual({ goal: sub("ref") });
    expect(findGoal(idx, [a2])).toEqual({ goal: a2 });
    expect(findGoal(idx, ["/work/a.json"])).toEqual({ goal: a });
    expect(findGoal(idx, [`${S}/nothing`])).toBeUndefined();
  });

  it("names goals as Nix users do", () => {
    expect(goalLabel(a)).toBe(`${S}/${"a".padEnd(32, "a")}-a.drv`);
    expect(goalLabel(a2)).toMatch(/-a\.drv \(started again, 2nd time\)$/);
    expect(goalLabel(chk)).toMatch(/-a\.drv \(--check\)$/);
    expect(goalLabel(sub("ref"))).toBe(out("ref"));
  });

  it("the chain of requests is the shortest one from a target", () => {
    const [t0, t1, m, n, x] = [drv("t0"), drv("t1"), drv("m"), drv("n"), drv("x")];
    const w = indexRun(
      log(
        ["t0.json", "t1.json"],
        [
          created(t0, target(0)),
          created(m, inputOf(t0)),
          created(n, inputOf(m)),
          created(x, inputOf(n)),
          created(t1, target(1)),
          { type: "goal.reused", goal: x, cause: inputOf(t1), running: true },
        ],
      ),
    );
    expect(wantedBy(x, w)).toEqual({
      target: { index: 1, text: "t1.json" },
      chain: [
        { goal: t1, as: "target" },
        { goal: x, as: "input" },
      ],
    });
    expect(explain(w, 1, x, [x]).requestedBy).toBe(2);
  });
});

describe("root causes of random failing DAGs", () => {
  // Goal i waits for some goals below it; a goal whose inputs all succeeded fails by itself when
  // its flag says so, and one with a failed input fails with DependencyFailed (as with -k).
  const dag = fc
    .integer({ min: 2, max: 14 })
    .chain((n) =>
      fc.tuple(
        fc.array(fc.boolean(), { minLength: n, maxLength: n }),
        fc.tuple(
          ...Array.from({ length: n }, (_, i) =>
            fc.subarray(Array.from({ length: i }, (_, j) => j)),
          ),
        ),
      ),
    );

  it("every root cause is a self-failed goal in the closure, and each link is blamed by the one before", () => {
    fc.assert(
      fc.property(dag, ([fails, deps]) => {
        const n = fails.length;
        const key = (i: number) => drv(`g${i}`);
        const status: string[] = [];
        const bodies: Record<string, unknown>[] = [created(key(n - 1), target(0))];
        for (let i = n - 2; i >= 0; i--) {
          const parent = deps.findIndex((d) => d.includes(i));
          bodies.push(created(key(i), parent < 0 ? target(0) : inputOf(key(parent))));
        }
        for (let i = 0; i < n; i++) {
          if (deps[i]!.length) bodies.push(waits(key(i), deps[i]!.map(key)));
          const depFailed = deps[i]!.some((d) => status[d] !== "Built");
          status[i] = depFailed ? "DependencyFailed" : fails[i] ? "PermanentFailure" : "Built";
          bodies.push(done(key(i), status[i]!, status[i] === "Built" ? "" : `g${i} failed`));
        }
        const idx = indexRun(log(["g.json"], bodies));
        for (let i = 0; i < n; i++) {
          const t = traceFailure(key(i), idx);
          if (status[i] === "Built") {
            expect(t.chain).toEqual([]);
            continue;
          }
          const closure = new Set<number>();
          const visit = (j: number) => {
            if (closure.has(j)) return;
            closure.add(j);
            for (const d of deps[j]!) visit(d);
          };
          visit(i);
          const expected = [...closure].filter((j) => status[j] === "PermanentFailure").map(key);
          expect(new Set(t.rootCauses.map((r) => r.goal))).toEqual(new Set(expected));
          expect(t.chain.at(-1)!.outcome).toBe("failed");
          expect(t.rootCauses[0]!.goal).toBe(t.chain.at(-1)!.goal);
          for (let k = 1; k < t.chain.length; k++) {
            const from = Number(/g(\d+)/.exec(t.chain[k - 1]!.goal)![1]);
            expect(deps[from]!.map(key)).toContain(t.chain[k]!.goal);
            expect(t.chain[k - 1]!.outcome).toBe("dependencyFailed");
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("searching the run log", () => {
  const dir = mkdtempSync(join(tmpdir(), "nixstate-why-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("answers from the newest run that has the goal, or from the run asked for", () => {
    const runLog = RunLog.open(dir);
    try {
      const record = (targets: string[], bodies: Record<string, unknown>[]) => {
        const w = runLog.begin({ command: "build", targets, options: {}, cwd: "/work" });
        for (const e of log(targets, bodies)) w.append(e);
        w.end(0);
        return w.runId;
      };
      const a = drv("a");
      const r1 = record(
        ["a.json"],
        [created(a, target(0)), done(a, "Built", "", { out: out("a") })],
      );
      const r2 = record(
        ["a.json"],
        [created(a, target(0)), done(a, "AlreadyValid", "", { out: out("a") })],
      );
      const r3 = record(["b.json"], [created(drv("b"), target(0)), done(drv("b"), "Built")]);
      expect(why(runLog, out("a"), { forms: [out("a")] })).toMatchObject({
        run: r2,
        goal: { outcome: "alreadyValid" },
      });
      expect(why(runLog, out("a"), { forms: [out("a")], run: r1 }).goal.outcome).toBe("built");
      expect(() => why(runLog, out("a"), { forms: [out("a")], run: r3 })).toThrow(NotInRunError);
      expect(() => why(runLog, `${S}/missing`, { forms: [`${S}/missing`] })).toThrow(
        NotInAnyRunError,
      );
      expect(() => why(runLog, `${S}/missing`)).toThrow(/'nixstate runs' lists the recorded runs/);
    } finally {
      runLog.close();
    }
  });
});
