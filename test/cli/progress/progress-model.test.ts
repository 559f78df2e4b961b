// The progress model on recorded runs (real `nixstate build` logs, test/cli/fixtures) and on random
// event streams: every goal counted once, the counts adding up, running goals as their builders
// and copies say.
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { ProgressModel, storeName } from "../../../src/cli/progress/progress-model.ts";
import type { RunEvent } from "../../../src/events/run-event.ts";
import { recorded } from "./recorded-runs.ts";

function fold(events: RunEvent[]): ProgressModel {
  const m = new ProgressModel();
  for (const e of events) m.apply(e);
  return m;
}

const sum = (c: ReturnType<ProgressModel["counts"]>) =>
  c.waiting +
  c.running +
  c.built +
  c.substituted +
  c.skipped +
  c.failed +
  c.dependencyFailed +
  c.cancelled;

describe("progress model on recorded runs", () => {
  it("a build with -k: one built with its last log line, one failed, one valid under another's lock", () => {
    const events = recorded("build-run.jsonl");
    const m = fold(events);
    const c = m.counts();
    expect(c).toEqual({
      total: 4,
      waiting: 0,
      running: 0,
      built: 2,
      substituted: 0,
      skipped: 1,
      failed: 1,
      dependencyFailed: 0,
      cancelled: 0,
    });
    const byName = new Map([...m.goals.values()].map((g) => [g.name, g]));
    expect(byName.get("fails")?.end).toBe("failed");
    expect(byName.get("fails")?.error).toMatch(/failed with exit code 3/);
    expect(byName.get("hello")?.where).toBe("local");
    expect(byName.get("hello")?.workMs).toBeGreaterThanOrEqual(0);
    // The last line the builder wrote that a person reads (not a setPhase message).
    const helloLogs = events.filter(
      (e): e is Extract<RunEvent, { type: "builder.log" }> =>
        e.type === "builder.log" && e.goal === byName.get("hello")!.key,
    );
    expect(helloLogs.length).toBeGreaterThan(0);
    expect(byName.get("hello")?.lastLine).toBeTruthy();
    expect(m.exitCode).toBe(100);
    expect(m.targets.size).toBe(3);
  });

  it("midway through a run: running builds and their machine, the rest waiting", () => {
    const events = recorded("build-run.jsonl");
    const firstStart = events.findIndex((e) => e.type === "builder.started");
    const m = fold(events.slice(0, firstStart + 1));
    const running = m.runningGoals();
    expect(running).toHaveLength(1);
    expect(running[0]!.machine).toBe("localhost");
    expect(m.counts().running).toBe(1);
    expect(sum(m.counts())).toBe(m.counts().total);
  });

  it("a substitution from a binary cache: copying from its substituter, then copied", () => {
    const events = recorded("substitute-run.jsonl");
    const copy = events.findIndex(
      (e) => e.type === "effect.started" && e.effect === "importSubstitute",
    );
    const mid = fold(events.slice(0, copy + 1));
    const [g] = mid.runningGoals();
    expect(g?.kind).toBe("substitution");
    expect(g?.where).toBe("substituter");
    expect(g?.machine).toMatch(/^file:\/\//);
    const end = fold(events).counts();
    // The two paths copied; the derivation whose output was copied had nothing to do itself.
    expect(end.substituted).toBe(2);
    expect(end.skipped).toBe(1);
    expect(end.running + end.waiting).toBe(0);
  });

  it("a goal started again is the same goal, and stays built when its restart finds it valid", () => {
    const events = recorded("build-run.jsonl");
    const done = events.find(
      (e): e is Extract<RunEvent, { type: "goal.done" }> =>
        e.type === "goal.done" && e.status === "Built",
    )!;
    const again = [
      { ...done, type: "goal.created", goal: `${done.goal}@2`, decision: "restarted" },
      { ...done, goal: `${done.goal}@2`, status: "AlreadyValid" },
    ] as RunEvent[];
    const m = fold([...events.filter((e) => e.type !== "run.ended"), ...again]);
    expect(m.counts()).toMatchObject({ total: 4, built: 2, skipped: 1 });
    expect(m.goals.get(done.goal)?.end).toBe("built");
  });

  it("names paths without their hash", () => {
    expect(storeName("/nix/store/0w811q99k4w2bx626vg31d08n20gqd6i-hello-2.12.drv")).toBe(
      "hello-2.12",
    );
    expect(storeName("/nix/store/0w811q99k4w2bx626vg31d08n20gqd6i-hello")).toBe("hello");
  });
});

// --- Random streams ------------------------------------------------------------------------------

const STATUSES = ["Built", "AlreadyValid", "PermanentFailure", "DependencyFailed", "substituted"];

/** Events for `n` goals: each created, maybe waiting on earlier ones, maybe built, maybe ended. */
const streams = fc
  .array(
    fc.record({
      builds: fc.boolean(),
      ends: fc.boolean(),
      status: fc.constantFrom(...STATUSES),
      waitsOn: fc.array(fc.nat(20), { maxLength: 3 }),
      repeat: fc.boolean(),
      cancelled: fc.boolean(),
      restarted: fc.boolean(),
    }),
    { minLength: 1, maxLength: 20 },
  )
  .chain((goals) => {
    const perGoal: RunEvent[][] = goals.map((g, i) => {
      const key =
        g.status === "substituted" ? `sub:/s/h${i}-p${i}` : `drv:/s/h${i}-p${i}.drv#normal`;
      const kind = key.startsWith("sub:") ? "substitution" : "derivation";
      const stamp = { seq: 0, mono: 0, wall: 0 };
      const es: RunEvent[] = [
        {
          ...stamp,
          type: "goal.created",
          goal: key,
          kind,
          decision: "new",
          cause: { kind: "target", index: i },
          input: {},
        },
      ] as RunEvent[];
      const on = g.waitsOn.filter((w) => w < i).map((w) => `drv:/s/h${w}-p${w}.drv#normal`);
      if (on.length) es.push({ ...stamp, type: "goal.waits", goal: key, on } as RunEvent);
      if (g.builds)
        es.push({
          ...stamp,
          type: "builder.started",
          goal: key,
          where: "local",
          machine: "localhost",
        } as RunEvent);
      if (g.ends) {
        const done = {
          ...stamp,
          type: "goal.done",
          goal: key,
          kind,
          status: g.status,
          error: g.cancelled ? "build cancelled because another build failed" : "",
          outputs: {},
        } as RunEvent;
        es.push(done);
        // A late or repeated event must not count the goal again.
        if (g.repeat)
          es.push(done, {
            ...stamp,
            type: "builder.started",
            goal: key,
            where: "local",
            machine: "x",
          } as RunEvent);
        // Started again in the same run (more outputs wanted): the same goal, counted once.
        if (g.restarted)
          es.push(
            {
              ...stamp,
              type: "goal.created",
              goal: `${key}@2`,
              kind,
              decision: "restarted",
              cause: { kind: "target", index: i },
              input: {},
            } as RunEvent,
            { ...done, goal: `${key}@2`, status: "AlreadyValid", error: "" } as RunEvent,
          );
      }
      return es;
    });
    // Interleave the goals' events, each goal's in its own order.
    return fc
      .shuffledSubarray(
        perGoal.flatMap((es, i) => es.map((_, j) => [i, j] as const)),
        { minLength: perGoal.flat().length, maxLength: perGoal.flat().length },
      )
      .map((order) => {
        const next = perGoal.map(() => 0);
        const out: RunEvent[] = [];
        for (const [i] of order) out.push(perGoal[i]![next[i]!++]!);
        return out.map((e, k) => ({ ...e, seq: k + 1, mono: k }));
      });
  });

describe("progress model on random event streams", () => {
  test.prop([streams])("counts every goal once and the counts add up", (events) => {
    const m = new ProgressModel();
    for (const e of events) {
      m.apply(e);
      const c = m.counts();
      expect(sum(c)).toBe(c.total);
      expect(c.running).toBe(m.runningGoals().length);
    }
    const base = (k: string) => k.replace(/@2$/, "");
    const keys = new Set(events.flatMap((e) => ("goal" in e ? [base(e.goal)] : [])));
    for (const e of events) if (e.type === "goal.waits") for (const w of e.on) keys.add(w);
    expect(m.counts().total).toBe(keys.size);
    // A goal ended when its last instance did.
    const last = new Map<string, RunEvent>();
    for (const e of events)
      if (e.type === "goal.created" || e.type === "goal.done") last.set(base(e.goal), e);
    const ended = new Set([...last].flatMap(([k, e]) => (e.type === "goal.done" ? [k] : [])));
    const c = m.counts();
    expect(sum(c) - c.waiting - c.running).toBe(ended.size);
    for (const g of m.runningGoals()) expect(ended.has(g.key)).toBe(false);
  });
});
