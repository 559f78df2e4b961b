// The registry's end of a goal: a goal started while the run is being cancelled ends at once as
// cancelled (with its goal.done), instead of waiting forever.
import { describe, expect, it } from "vitest";
import { derivationGoalMachine } from "../../src/machines/derivation-goal.ts";
import { GoalTracer } from "../../src/machines/goal-actor.ts";
import { GoalRegistry } from "../../src/machines/goal-registry.ts";
import { substitutionGoalMachine } from "../../src/machines/substitution-goal.ts";
import type { WorkerEvent } from "../../src/machines/worker-events.ts";

function registry(events: WorkerEvent[]) {
  const emit = (e: WorkerEvent) => events.push(e);
  const released: number[] = [];
  const r = new GoalRegistry({
    derivationMachine: derivationGoalMachine,
    substitutionMachine: substitutionGoalMachine,
    tracer: new GoalTracer(emit),
    emit,
    goalSettings: () => ({
      useSubstitutes: false,
      cacheFailures: false,
      tryFallback: false,
      haveSubstituters: false,
      substituters: [],
    }),
    released: (id) => released.push(id),
    derivationFinished: () => {},
  });
  return { r, released };
}

describe("goal registry", () => {
  it("ends a goal started after stop-all as cancelled, releasing what it held", async () => {
    const events: WorkerEvent[] = [];
    const { r, released } = registry(events);
    r.stopAll("drv:/s/failed.drv#normal");
    const d = r.derivationGoal("/s/x.drv", [], "normal", { kind: "target", index: 0 });
    const s = r.substitutionGoal("/s/p", false, { kind: "target", index: 1 });
    expect((await d.done).result.errorMsg).toMatch(/^build cancelled because another build failed/);
    expect((await s.done).status).toBe("failed");
    const lifecycle = events.filter((e) =>
      ["goal.created", "goal.stopped", "goal.done"].includes(e.type),
    );
    expect(lifecycle.map((e) => [e.type, "goal" in e ? e.goal : ""])).toEqual([
      ["goal.created", "drv:/s/x.drv#normal"],
      ["goal.stopped", "drv:/s/x.drv#normal"],
      ["goal.done", "drv:/s/x.drv#normal"],
      ["goal.created", "sub:/s/p"],
      ["goal.stopped", "sub:/s/p"],
      ["goal.done", "sub:/s/p"],
    ]);
    expect(lifecycle[1]).toMatchObject({ by: "drv:/s/failed.drv#normal" });
    expect(released).toEqual([1, 2]);
  });
});
