import { describe, expect, it } from "vitest";
import { createActor, fromPromise, toPromise } from "xstate";
import type { BasicDerivation } from "../../src/derivation/derivation.ts";
import type { BuildAttempt, BuildMode, OutputStatus } from "../../src/machines/build-attempt.ts";
import type { GoalEvent } from "../../src/machines/derivation-goal.ts";
import {
  DERIVATION_GOAL_INVOKES,
  derivationGoalMachine,
} from "../../src/machines/derivation-goal.ts";
import { Worker, type WorkerSettings } from "../../src/machines/worker.ts";
import type { WorkerEvent } from "../../src/machines/worker-events.ts";
import { goalKeys, invokesOf, topStates } from "./event-views.ts";
import { FakeWorld } from "./fake-world.ts";

function run(world: FakeWorld, settings: Partial<WorkerSettings> = {}) {
  const worker = new Worker(world, { maxJobs: 2, ...settings });
  const events: WorkerEvent[] = [];
  worker.subscribe((e) => events.push(e));
  const statesOf = (drvPath: string) => topStates(events, goalKeys(events, drvPath, "derivation"));
  return { worker, events, statesOf };
}

describe("derivation goal", () => {
  // Nix's states where a goal waits: Nix calls loadDerivation (a valid .drv) and
  // outputsSubstituted (nothing to substitute) at once, without yielding, and so does the machine.
  it("walks Nix's states for a plain build", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "hello" });
    const { worker, statesOf } = run(world);
    const [r] = await worker.buildPaths([{ drvPath: p, outputs: [] }]);
    expect(r!.status).toBe("Built");
    expect(r!.builtOutputs.out?.outPath).toBe(world.outPath("hello", "out"));
    expect(statesOf(p)).toEqual([
      "getDerivation",
      "haveDerivation",
      "inputsRealised",
      "tryToBuild",
      "buildDone",
      "built",
    ]);
    expect(worker.exitStatus()).toBe(1);
  });

  it("skips valid outputs: AlreadyValid without building", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "done" });
    world.valid.add(world.outPath("done", "out"));
    const { worker, statesOf } = run(world);
    const [r] = await worker.buildPaths([{ drvPath: p, outputs: [] }]);
    expect(r!.status).toBe("AlreadyValid");
    expect(r!.builtOutputs.out?.outPath).toBe(world.outPath("done", "out"));
    expect(statesOf(p)).toEqual(["getDerivation", "haveDerivation", "alreadyValid"]);
    expect(world.builds).toEqual([]);
  });

  it("stops early on a cached failure only when cacheFailures is on", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "flaky" });
    world.failedBefore.add(world.outPath("flaky", "out"));
    const on = run(world, { cacheFailures: true });
    const [r] = await on.worker.buildPaths([{ drvPath: p, outputs: [] }]);
    expect(r!.status).toBe("CachedFailure");
    expect(r!.errorMsg).toContain("failed-path cache");
    expect(on.statesOf(p)).toEqual(["getDerivation", "haveDerivation", "cachedFailure"]);
    const off = run(world);
    expect((await off.worker.buildPaths([{ drvPath: p, outputs: [] }]))[0]!.status).toBe("Built");
  });

  it("someone beat us to it: valid after taking the locks, no build", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "raced" });
    world.beatenBy.add(p);
    world.lockedElsewhere.set(p, 2);
    const { worker, statesOf } = run(world);
    const [r] = await worker.buildPaths([{ drvPath: p, outputs: [] }]);
    expect(r!.status).toBe("AlreadyValid");
    expect(world.builds).toEqual([]);
    expect(statesOf(p).slice(-2)).toEqual(["tryToBuild", "alreadyValid"]);
  });

  it("builds inputs first and only once, within the job limit", async () => {
    const world = new FakeWorld();
    const a = world.add({ name: "a", ms: 5 });
    const b = world.add({ name: "b", deps: ["a"], ms: 5 });
    const c = world.add({ name: "c", deps: ["a"], ms: 5 });
    const d = world.add({ name: "d", deps: ["b", "c"], ms: 5 });
    const { worker } = run(world, { maxJobs: 2 });
    const results = await worker.buildPaths([
      { drvPath: d, outputs: [] },
      { drvPath: b, outputs: [] },
    ]);
    expect(results.map((r) => r.status)).toEqual(["Built", "Built"]);
    expect(world.builds.sort()).toEqual([a, b, c, d].sort());
    expect(world.builds.indexOf(a)).toBe(0);
    expect(world.builds.at(-1)).toBe(d);
    expect(world.maxRunning).toBeLessThanOrEqual(2);
  });

  it("propagates failure: DependencyFailed with Nix's message, exit 100", async () => {
    const world = new FakeWorld();
    world.add({ name: "bad", fail: true });
    const top = world.add({ name: "top", deps: ["bad"] });
    const { worker } = run(world);
    const [r] = await worker.buildPaths([{ drvPath: top, outputs: [] }]);
    expect(r!.status).toBe("DependencyFailed");
    expect(r!.errorMsg).toBe(`1 dependencies of derivation '${top}' failed to build`);
    expect(worker.exitStatus()).toBe(100);
  });

  it("without --keep-going a failure cancels other builds; with it they finish", async () => {
    for (const keepGoing of [false, true]) {
      const world = new FakeWorld();
      const bad = world.add({ name: "bad", fail: true, ms: 1 });
      const slow = world.add({ name: "slow", ms: 200 });
      const { worker } = run(world, { keepGoing, maxJobs: 2 });
      const results = await worker.buildPaths([
        { drvPath: bad, outputs: [] },
        { drvPath: slow, outputs: [] },
      ]);
      expect(results[0]!.status).toBe("PermanentFailure");
      expect(results[1]!.status).toBe(keepGoing ? "Built" : "MiscFailure");
      expect(world.killed).toEqual(keepGoing ? [] : [slow]);
    }
  });

  it("a failing fixed-output builder is a transient failure (exit 1, as Nix)", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "fetch", fail: true });
    const drv = world.drvs.get(p)!;
    drv.outputs = new Map([
      [
        "out",
        {
          type: "fixed",
          path: world.outPath("fetch", "out"),
          method: "flat",
          hash: (await import("../../src/hash/hash.ts")).Hash.of("sha256", ""),
        },
      ],
    ]);
    const { worker } = run(world);
    const [r] = await worker.buildPaths([{ drvPath: p, outputs: [] }]);
    expect(r!.status).toBe("TransientFailure");
    expect(worker.exitStatus()).toBe(1);
  });

  it("a missing input source with substitution disabled fails with Nix's message", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "needs", srcs: ["/s/00000000000000000000000000000000-src"] });
    const { worker } = run(world, { useSubstitutes: false });
    const [r] = await worker.buildPaths([{ drvPath: p, outputs: [] }]);
    expect(r!.status).toBe("MiscFailure");
    expect(r!.errorMsg).toBe(
      `dependency '/s/00000000000000000000000000000000-src' of '${p}' does not exist, and substitution is disabled`,
    );
  });

  it("buildDerivation of an in-memory derivation starts at haveDerivation", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "mem" });
    const basic: BasicDerivation = { ...world.drvs.get(p)! };
    world.valid.delete(p);
    world.drvs.delete(p);
    const { worker, statesOf } = run(world);
    const r = await worker.buildDerivation(p, basic);
    expect(r.status).toBe("Built");
    expect(statesOf(p)).toEqual([
      "haveDerivation",
      "inputsRealised",
      "tryToBuild",
      "buildDone",
      "built",
    ]);
  });

  it("a missing .drv with no substituter fails cleanly", async () => {
    const world = new FakeWorld();
    const { worker } = run(world);
    const [r] = await worker.buildPaths([{ drvPath: world.drvPath("ghost"), outputs: [] }]);
    expect(r!.status).toBe("MiscFailure");
    expect(r!.errorMsg).toBe(`cannot build missing derivation '${world.drvPath("ghost")}'`);
  });

  it("maxJobs 0 refuses to build locally", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "x" });
    const { worker } = run(world, { maxJobs: 0 });
    const [r] = await worker.buildPaths([{ drvPath: p, outputs: [] }]);
    expect(r!.errorMsg).toMatch(/unable to start any build/);
  });

  // Nix's getDerivation: only normal mode loads a valid .drv at once; the others go through a
  // substitution goal for it first, valid or not.
  it("reads a valid .drv at once in normal mode, after a substitution goal in the others", async () => {
    for (const mode of ["normal", "check", "repair"] as const) {
      const world = new FakeWorld();
      const p = world.add({ name: "x" });
      world.valid.add(world.outPath("x", "out"));
      const { worker, events } = run(world);
      await worker.buildPaths([{ drvPath: p, outputs: [] }], mode);
      const [key] = goalKeys(events, p, "derivation");
      const effects = events
        .filter((e) => e.type === "effect.started" && e.goal === key)
        .map((e) => (e as { effect: string }).effect);
      expect(effects.slice(0, 2), mode).toEqual(
        mode === "normal"
          ? ["readValidDerivation", "queryOutputs"]
          : ["substitutePaths", "readDerivation"],
      );
    }
  });

  it("a second request wanting more outputs restarts the goal (Nix's needRestart)", async () => {
    const world = new FakeWorld();
    const p = world.add({ name: "multi", outputs: ["out", "dev"], ms: 20 });
    // "out" is already valid: a goal wanting only "out" would be done at haveDerivation.
    world.valid.add(world.outPath("multi", "out"));
    const a = world.add({ name: "wantsOut", deps: [] });
    const drvA = world.drvs.get(a)!;
    drvA.inputDrvs = new Map([[p, ["out"]]]);
    const b = world.add({ name: "wantsDev" });
    world.drvs.get(b)!.inputDrvs = new Map([[p, ["dev"]]]);
    const { worker, events } = run(world);
    const results = await worker.buildPaths([
      { drvPath: a, outputs: [] },
      { drvPath: b, outputs: [] },
    ]);
    expect(results.map((r) => r.status)).toEqual(["Built", "Built"]);
    // One goal for the shared input, which built once, for its dev output.
    const created = goalKeys(events, p, "derivation");
    expect(created).toHaveLength(1);
    expect(world.builds.filter((x) => x === p)).toHaveLength(1);
    expect(world.valid.has(world.outPath("multi", "dev"))).toBe(true);
  });
});

describe("derivation goal machine: named guards, actions and invokes", () => {
  // An in-memory derivation whose one output is already valid; every effect is faked.
  const OUT = "/s/o0000000000000000000000000000000-named";
  const valid: OutputStatus[] = [
    { name: "out", path: OUT, id: "sha256:00!out", valid: true, wanted: true, failedBefore: false },
  ];
  const basicDrv: BasicDerivation = {
    name: "named",
    outputs: new Map([["out", { type: "inputAddressed", path: OUT }]]),
    inputSrcs: [],
    platform: "x86_64-linux",
    builder: "/bin/sh",
    args: [],
    env: new Map(),
  };

  interface GoalOptions {
    mode?: BuildMode;
    wantedOutputs?: string[];
    /** What queryOutputs answers (default: the one output, valid). */
    outputs?: OutputStatus[];
    /** Told as each queryOutputs starts (the first is 1), with a way to send the goal an event. */
    onQuery?: (n: number, send: (e: GoalEvent) => void) => void;
  }

  /** Run the goal to its end: its status, the effects it ran and its top-level states. */
  async function runGoal(machine: typeof derivationGoalMachine, o: GoalOptions = {}) {
    const effects: string[] = [];
    const states: string[] = [];
    const ran = <T>(effect: string, result: T): T => {
      effects.push(effect);
      return result;
    };
    let queries = 0;
    const actor = createActor(
      machine.provide({
        actors: {
          queryOutputs: fromPromise(async () => {
            o.onQuery?.(++queries, (e) => actor.send(e));
            return ran("queryOutputs", o.outputs ?? valid);
          }),
          checkOutputClosure: fromPromise(async () => ran<string[]>("checkOutputClosure", [])),
          realiseInputs: fromPromise(async () =>
            ran("realiseInputs", {
              nrFailed: 0,
              nrNoSubstituters: 0,
              nrIncompleteClosure: 0,
              inputDrvOutputs: {},
            }),
          ),
          computeInputPaths: fromPromise(async () => ran<string[]>("computeInputPaths", [])),
          lockOutputs: fromPromise(async () => ran("lockOutputs", valid)),
          runBuild: fromPromise(async () =>
            ran<BuildAttempt>("runBuild", {
              kind: "success",
              builtOutputs: { out: { id: "sha256:00!out", outPath: OUT } },
              startTime: 1,
              stopTime: 2,
            }),
          ),
        },
      }),
      {
        input: {
          goalId: 1,
          drvPath: "/s/d0000000000000000000000000000000-named.drv",
          wantedOutputs: o.wantedOutputs ?? [],
          mode: o.mode ?? "normal",
          basicDrv,
          settings: { useSubstitutes: false, cacheFailures: false, tryFallback: false },
        },
      },
    );
    actor.subscribe((s) => {
      const top = typeof s.value === "string" ? s.value : Object.keys(s.value)[0]!;
      if (states.at(-1) !== top) states.push(top);
    });
    actor.start();
    const outcome = await toPromise(actor);
    return { status: outcome.result.status, effects, states };
  }

  it("valid outputs end AlreadyValid; with allWantedOutputsValid flipped, the goal builds", async () => {
    const asDeclared = await runGoal(derivationGoalMachine);
    expect(asDeclared).toEqual({
      status: "AlreadyValid",
      effects: ["queryOutputs"],
      states: ["haveDerivation", "alreadyValid"],
    });
    // The guard is looked up by name, so providing it replaces every use: the outputs never
    // count as valid, and the goal goes all the way to a build.
    const flipped = derivationGoalMachine.provide({
      guards: { allWantedOutputsValid: () => false },
    });
    expect(await runGoal(flipped)).toEqual({
      status: "Built",
      effects: ["queryOutputs", "realiseInputs", "computeInputPaths", "lockOutputs", "runBuild"],
      states: ["haveDerivation", "inputsRealised", "tryToBuild", "buildDone", "built"],
    });
  });

  // With nothing to substitute, outputsSubstituted decides on the outputs just checked.
  it("nothing to substitute: check mode needs valid outputs, repair checks their closure", async () => {
    const invalid = valid.map((x) => ({ ...x, valid: false }));
    expect(await runGoal(derivationGoalMachine, { mode: "check", outputs: invalid })).toEqual({
      status: "MiscFailure",
      effects: ["queryOutputs"],
      states: ["haveDerivation", "miscFailure"],
    });
    expect(await runGoal(derivationGoalMachine, { mode: "repair" })).toEqual({
      status: "AlreadyValid",
      effects: ["queryOutputs", "checkOutputClosure"],
      states: ["haveDerivation", "repairClosure", "alreadyValid"],
    });
  });

  it("more outputs wanted while the outputs are checked: checked again (Nix's needRestart)", async () => {
    const invalid = valid.map((x) => ({ ...x, valid: false }));
    const r = await runGoal(derivationGoalMachine, {
      outputs: invalid,
      wantedOutputs: ["out"],
      // Now all of them (an empty list), while the first check runs.
      onQuery: (n, send) => {
        if (n === 1) send({ type: "addWantedOutputs", outputs: [] });
      },
    });
    expect(r.effects.slice(0, 3)).toEqual(["queryOutputs", "queryOutputs", "realiseInputs"]);
  });

  it("DERIVATION_GOAL_INVOKES lists every invoke: its id and the effect it runs", () => {
    expect(invokesOf(derivationGoalMachine)).toEqual(DERIVATION_GOAL_INVOKES);
  });
});
