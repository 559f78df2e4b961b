// The viewer's data (src/viewer/view-model.ts) from a real failed build, and its promise: the
// compact per-goal model replays, at every seq, to the same state of every goal as the raw events
// (a property over generated event streams), and its time table round-trips.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GoalKey, RunEvent } from "../../src/events/run-event.ts";
import { runGraph } from "../../src/events/run-graph.ts";
import { RunLog, type RunRow } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { eventLabel, machineCharts } from "../../src/viewer/machine-charts.ts";
import { countsAt, decodeTimes, goalAt, timeAt } from "../../src/viewer/page/goal-at.ts";
import { EDGE_CRITICAL, type ViewData } from "../../src/viewer/page/view-data.ts";
import { encodeTimes, viewModel } from "../../src/viewer/view-model.ts";
import { runCli } from "../cli/run-cli.ts";
import { repoRoot } from "../vectors.ts";
import { rawStatesAt } from "./raw-goal-state.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-view-model-"));
const stateDir = join(root, "state");
let run: RunRow;
let events: RunEvent[];

beforeAll(() => {
  const env = { NIXSTATE_STATE_DIR: stateDir, NIXSTATE_STORE_DIR: "" };
  const build = runCli(["build", "-k", "examples/broken/poster.json"], { env, cwd: repoRoot });
  expect(build.status).toBe(100);
  const log = RunLog.open(stateDir);
  run = log.run(1);
  events = log.events(1);
  log.close();
}, 120_000);

afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

/** Every goal's state at every seq, by the compact model and by the raw events, side by side. */
function replayBothWays(data: ViewData, evs: RunEvent[]): void {
  const graph = runGraph(run, evs);
  const outcomes = new Map(graph.nodes.map((n) => [n.key, n.state as string]));
  for (let seq = 0; seq <= data.lastSeq; seq++) {
    const raw = rawStatesAt(evs, seq, outcomes);
    for (const g of data.goals) {
      const compact = goalAt(data, g, seq);
      const expected = raw.get(g.key) ?? { phase: "absent", state: null, outcome: null };
      if (JSON.stringify(compact) !== JSON.stringify(expected))
        expect({ seq, goal: g.key, ...compact }).toEqual({ seq, goal: g.key, ...expected });
    }
  }
}

describe("viewModel of a real run", () => {
  it("has every goal with its outcome, root cause, blame, waits, log and the critical path", () => {
    const asked: string[] = [];
    const data = viewModel(run, events, {
      logTail: (drv) => {
        asked.push(drv);
        return drv.endsWith("-shout.drv") ? ["a line", "the last line"] : undefined;
      },
    });
    const byName = new Map(data.goals.map((g, i) => [g.name, { g, i }]));
    expect([...byName.keys()]).toEqual(["poster", "shout", "greeting"]);
    const { g: shout, i: shoutI } = byName.get("shout")!;
    const { g: poster } = byName.get("poster")!;
    const { g: greeting, i: greetingI } = byName.get("greeting")!;

    const at = (g: typeof shout, seq: number) => goalAt(data, g, seq);
    expect(at(shout, data.lastSeq)).toEqual({
      phase: "ended",
      state: "permanentFailure",
      outcome: "failed",
    });
    expect(at(poster, data.lastSeq).outcome).toBe("dependencyFailed");
    expect(at(greeting, data.lastSeq).outcome).toBe("built");
    expect(shout.rootCause).toBe(true);
    expect(poster.because).toEqual([shoutI]);
    expect(shout.error).toMatch(/builder for .*-shout\.drv' failed with exit code 1/);
    // Only goals whose builder wrote something have their log read.
    expect(asked.map((p) => p.replace(/.*-/, ""))).toEqual(["shout.drv"]);
    expect(shout.log).toEqual(["a line", "the last line"]);
    expect(greeting.log).toBeUndefined();

    // The poster waited for shout from its goal.waits until its realiseInputs answered.
    const waits = events.find((e) => e.type === "goal.waits" && e.goal === poster.key)!;
    const answered = events.find(
      (e) => e.type === "effect.done" && e.goal === poster.key && e.invoke === "realiseInputs",
    )!;
    expect(poster.wt).toEqual([[waits.seq, answered.seq, shoutI]]);
    expect(at(poster, waits.seq).phase).toBe("waiting");
    expect(at(poster, answered.seq).phase).toBe("running");
    expect(at(greeting, greeting.created - 1).phase).toBe("absent");
    expect(at(greeting, greeting.bd[0]!).phase).toBe("building");

    // Transitions and effects are all there, with their times.
    const transitions = events.filter((e) => e.type === "goal.transition" && e.goal === shout.key);
    expect(shout.tr.length / 2).toBe(transitions.length);
    const times = decodeTimes(data.times);
    // Kept to 0.1 ms.
    for (const t of transitions)
      expect(Math.abs(timeAt(times, t.seq) - t.mono)).toBeLessThanOrEqual(0.05 + 1e-9);
    const effects = events.filter((e) => e.type === "effect.started" && e.goal === shout.key);
    expect(shout.ef.length / 4).toBe(effects.length);
    expect(shout.ef.filter((_, k) => k % 4 === 3).every((ok) => ok === 1)).toBe(true);

    // Both edges are on the critical path; none other.
    expect(data.edges).toEqual([
      0,
      shoutI,
      1 | EDGE_CRITICAL,
      shoutI,
      greetingI,
      1 | EDGE_CRITICAL,
    ]);
    expect(countsAt(data, data.lastSeq)).toEqual({
      done: 1,
      running: 0,
      waiting: 0,
      failed: 2,
      notStarted: 0,
    });
    expect(countsAt(data, 0).notStarted).toBe(3);
    expect(data.charts.derivation.states.map((s) => s.id)).toContain("inputsRealised.waiting");
  });

  it("draws every step the goals took as arrows of their machine's chart", () => {
    const data = viewModel(run, events);
    const chart = data.charts.derivation;
    const ids = new Set(chart.states.map((s) => s.id));
    for (const e of chart.edges) expect([ids.has(e.from), ids.has(e.to)]).toEqual([true, true]);
    // A macrostep may pass through eventless states (`decided`): follow "" arrows after the first.
    const reaches = (from: string, to: string) => {
      let frontier = chart.edges.filter((e) => e.from === from).map((e) => e.to);
      const seen = new Set(frontier);
      while (frontier.length > 0) {
        if (frontier.includes(to)) return true;
        frontier = chart.edges
          .filter((e) => frontier.includes(e.from) && e.label === "" && !seen.has(e.to))
          .map((e) => e.to);
        for (const f of frontier) seen.add(f);
      }
      return false;
    };
    let steps = 0;
    for (const g of data.goals) {
      const states = g.tr.filter((_, k) => k % 2 === 1).map((i) => data.strings[i]!);
      // The first recorded state is where the machine settles from its initial one.
      expect(states[0] === chart.initial || reaches(chart.initial, states[0]!)).toBe(true);
      for (let k = 1; k < states.length; k++) {
        expect(`${states[k - 1]} → ${states[k]}: ${reaches(states[k - 1]!, states[k]!)}`).toBe(
          `${states[k - 1]} → ${states[k]}: true`,
        );
        steps++;
      }
    }
    expect(steps).toBeGreaterThan(10);
    expect(machineCharts().substitution.states.map((s) => s.id)).toContain("tryNext.querying");
    expect(eventLabel("xstate.done.actor.readDrv")).toBe("readDrv done");
    expect(eventLabel("xstate.error.actor.runBuild")).toBe("runBuild failed");
  });

  it("replays to the raw events' state of every goal at every seq", () => {
    replayBothWays(JSON.parse(JSON.stringify(viewModel(run, events))) as ViewData, events);
  });
});

// --- Generated runs ----------------------------------------------------------------------------

type Step =
  | { kind: "transition"; state: string }
  | { kind: "start"; invoke: number }
  | { kind: "answer"; invoke: number; ok: boolean }
  | { kind: "waits"; on: number[] }
  | { kind: "builder"; start: boolean }
  | { kind: "stopped" }
  | { kind: "slot" }
  | { kind: "done"; ok: boolean };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("transition" as const),
    state: fc.constantFrom("start", "haveDerivation.checking", "inputsRealised.waiting", "built"),
  }),
  fc.record({ kind: fc.constant("start" as const), invoke: fc.nat(2) }),
  fc.record({ kind: fc.constant("answer" as const), invoke: fc.nat(2), ok: fc.boolean() }),
  fc.record({ kind: fc.constant("waits" as const), on: fc.array(fc.nat(5), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant("builder" as const), start: fc.boolean() }),
  fc.constant({ kind: "stopped" as const }),
  fc.constant({ kind: "slot" as const }),
  fc.record({ kind: fc.constant("done" as const), ok: fc.boolean() }),
);

/** A run's events from steps of goals 0..5, interleaved as generated; a goal ends at its done. */
function eventsOf(steps: { goal: number; step: Step }[]): RunEvent[] {
  const evs: RunEvent[] = [];
  let seq = 0;
  let mono = 0;
  const stamp = () => {
    seq += 1;
    mono += 0.37;
    return { seq, mono, wall: 1_700_000_000_000 + mono };
  };
  const key = (i: number): GoalKey => `drv:/nix/store/${"a".repeat(32)}-g${i}.drv#normal`;
  const created = new Set<number>();
  const ended = new Set<number>();
  evs.push({
    type: "run.started",
    ...stamp(),
    request: { command: "build", targets: ["t"], options: {}, cwd: "/" },
    settings: {},
    version: "0",
    host: "h",
    pid: 1,
  });
  for (const { goal, step } of steps) {
    if (ended.has(goal)) continue;
    const g = key(goal);
    if (!created.has(goal)) {
      created.add(goal);
      evs.push({
        type: "goal.created",
        ...stamp(),
        goal: g,
        kind: "derivation",
        decision: "new",
        cause: goal === 0 ? { kind: "target", index: 0 } : { kind: "input", of: key(0) },
        input: {},
      });
    }
    const invoke = (n: number) => ["checkOutputs", "realiseInputs", "runBuild"][n]!;
    switch (step.kind) {
      case "transition":
        evs.push({
          type: "goal.transition",
          ...stamp(),
          goal: g,
          state: step.state.includes(".")
            ? { [step.state.split(".")[0]!]: step.state.split(".")[1]! }
            : step.state,
          event: "x",
        });
        break;
      case "start":
        evs.push({
          type: "effect.started",
          ...stamp(),
          goal: g,
          invoke: invoke(step.invoke),
          effect: invoke(step.invoke),
          input: {},
        });
        break;
      case "answer":
        evs.push(
          step.ok
            ? {
                type: "effect.done",
                ...stamp(),
                goal: g,
                invoke: invoke(step.invoke),
                effect: invoke(step.invoke),
                output: null,
              }
            : {
                type: "effect.failed",
                ...stamp(),
                goal: g,
                invoke: invoke(step.invoke),
                effect: invoke(step.invoke),
                error: "e",
              },
        );
        break;
      case "waits":
        evs.push({ type: "goal.waits", ...stamp(), goal: g, on: step.on.map(key) });
        break;
      case "builder":
        evs.push(
          step.start
            ? { type: "builder.started", ...stamp(), goal: g, where: "local", machine: "localhost" }
            : {
                type: "builder.exited",
                ...stamp(),
                goal: g,
                how: "succeeded",
                startTime: 0,
                stopTime: 0,
                logBytes: 0,
              },
        );
        break;
      case "stopped":
        evs.push({ type: "goal.stopped", ...stamp(), goal: g, by: "cancel" });
        break;
      case "slot":
        evs.push({ type: "slot.granted", ...stamp(), goal: g, held: 1, limit: 1 });
        break;
      case "done":
        ended.add(goal);
        evs.push({
          type: "goal.done",
          ...stamp(),
          goal: g,
          kind: "derivation",
          status: step.ok ? "Built" : "PermanentFailure",
          error: step.ok ? "" : "failed",
          outputs: {},
        });
        break;
    }
  }
  evs.push({ type: "run.ended", ...stamp(), exitCode: 0 });
  return evs;
}

describe("the compact model (property)", () => {
  it("gives every goal's state at every seq as the raw events do", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ goal: fc.nat(5), step: stepArb }), { maxLength: 80 }),
        (steps) => {
          const evs = eventsOf(steps);
          const row: RunRow = { ...run, id: 7, state: "ended" };
          const data = JSON.parse(JSON.stringify(viewModel(row, evs))) as ViewData;
          replayBothWays(data, evs);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("keeps times: encoded pairs decode to the same seqs and times (to 0.1 ms)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0, max: 1e4, noNaN: true })),
          { maxLength: 50 },
        ),
        (steps) => {
          let seq = 0;
          let mono = 0;
          const seqs: number[] = [];
          const monos: number[] = [];
          for (const [ds, dm] of steps) {
            seq += ds;
            mono += dm;
            seqs.push(seq);
            monos.push(mono);
          }
          const t = decodeTimes(encodeTimes(seqs, monos));
          expect([...t.seqs]).toEqual(seqs);
          t.ms.forEach((m, k) => {
            expect(Math.abs(m - monos[k]!)).toBeLessThanOrEqual(0.05 + 1e-9);
          });
          if (seqs.length > 0) {
            expect(timeAt(t, seqs[0]! - 1)).toBe(0);
            expect(timeAt(t, seqs.at(-1)! + 5)).toBe(t.ms[seqs.length - 1]);
          }
        },
      ),
    );
  });
});
