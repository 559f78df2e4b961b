import { describe, expect, it } from "vitest";
import {
  SUBSTITUTION_GOAL_INVOKES,
  type SubstitutionGoalOutcome,
  substitutionGoalMachine,
} from "../../src/machines/substitution-goal.ts";
import { Worker, type WorkerSettings } from "../../src/machines/worker.ts";
import type { WorkerEvent } from "../../src/machines/worker-events.ts";
import { goalKeys, invokesOf, topStates } from "./event-views.ts";
import { FakeSubstituters } from "./fake-substituters.ts";
import { FakeWorld } from "./fake-world.ts";

const P = "/s/p0000000000000000000000000000000-p";
const R = "/s/r0000000000000000000000000000000-r";
const Q = "/s/q0000000000000000000000000000000-q";

function setup(names: string[] = ["cache-a", "cache-b"]) {
  const world = new FakeWorld();
  const subs = new FakeSubstituters(world, names);
  world.substitution = subs;
  return { world, subs };
}

function run(world: FakeWorld, settings: Partial<WorkerSettings> = {}) {
  const worker = new Worker(world, { maxJobs: 2, ...settings });
  const events: WorkerEvent[] = [];
  worker.subscribe((e) => events.push(e));
  const idsOf = (key: string, kind: "derivation" | "substitution") => goalKeys(events, key, kind);
  /** Top-level states of the substitution goal(s) for `path`, in order. */
  const statesOf = (path: string, kind: "derivation" | "substitution" = "substitution") =>
    topStates(events, idsOf(path, kind));
  const outcomeOf = (path: string): SubstitutionGoalOutcome | undefined => {
    const ids = idsOf(path, "substitution");
    const done = events.filter((e) => e.type === "goal.done" && ids.includes(e.goal));
    return (done.at(-1) as { output: SubstitutionGoalOutcome } | undefined)?.output;
  };
  /** Index in the event stream of the first event matching. */
  const indexOf = (pred: (e: WorkerEvent) => boolean) => events.findIndex(pred);
  return { worker, events, statesOf, outcomeOf, idsOf, indexOf };
}

const SUBSTITUTED = ["init", "tryNext", "referencesValid", "tryToRun", "finished", "substituted"];

describe("substitution goal", () => {
  it("an already valid path: alreadyValid, no substituter asked", async () => {
    const { world, subs } = setup();
    world.valid.add(P);
    subs.offer(0, P);
    const { worker, statesOf, outcomeOf } = run(world);
    const [r] = await worker.buildPaths([{ path: P }]);
    expect(r!.status).toBe("AlreadyValid");
    expect(statesOf(P)).toEqual(["init", "alreadyValid"]);
    expect(outcomeOf(P)).toEqual({ status: "alreadyValid", message: "", errors: [] });
    expect(subs.queries).toEqual([]);
  });

  it("no substituters configured: ends cleanly in noSubstituters", async () => {
    const world = new FakeWorld();
    const { worker, statesOf, outcomeOf } = run(world);
    const [r] = await worker.buildPaths([{ path: P }]);
    // tryNext is passed through without waiting, so no state event reports it.
    expect(statesOf(P)).toEqual(["init", "noSubstituters"]);
    const message = `path '${P}' is required, but there is no substituter that can build it`;
    expect(outcomeOf(P)).toEqual({ status: "noSubstituters", message, errors: [] });
    expect(r!.status).toBe("MiscFailure");
    expect(r!.errorMsg).toBe(message);
  });

  it("no substituter has the path: each is asked in order, then noSubstituters", async () => {
    const { world, subs } = setup();
    const { worker, statesOf, outcomeOf } = run(world);
    await worker.buildPaths([{ path: P }]);
    expect(subs.queries).toEqual([`cache-a ${P}`, `cache-b ${P}`]);
    expect(statesOf(P)).toEqual(["init", "tryNext", "noSubstituters"]);
    expect(outcomeOf(P)!.status).toBe("noSubstituters");
  });

  it("--no-substitute: the configured substituters are not asked", async () => {
    const { world, subs } = setup();
    subs.offer(0, P);
    const { worker, outcomeOf } = run(world, { useSubstitutes: false });
    await worker.buildPaths([{ path: P }]);
    expect(subs.queries).toEqual([]);
    expect(outcomeOf(P)!.status).toBe("noSubstituters");
  });

  it("substituted from the first substituter that has it", async () => {
    const { world, subs } = setup();
    subs.offer(1, P);
    const { worker, statesOf, outcomeOf } = run(world);
    const [r] = await worker.buildPaths([{ path: P }]);
    expect(r!.status).toBe("Substituted");
    expect(statesOf(P)).toEqual(SUBSTITUTED);
    expect(outcomeOf(P)).toEqual({ status: "substituted", message: "", errors: [] });
    expect(subs.imports).toEqual([`cache-b ${P}`]);
    expect(world.valid.has(P)).toBe(true);
  });

  it("realises references first (ignoring a self-reference), each in its own goal", async () => {
    const { world, subs } = setup();
    subs.offer(0, P, { references: [P, R, Q] });
    subs.offer(1, R, { references: [Q] });
    subs.offer(0, Q);
    const { worker, statesOf, idsOf, indexOf } = run(world);
    const [r] = await worker.buildPaths([{ path: P }]);
    expect(r!.status).toBe("Substituted");
    expect(subs.imports).toEqual([`cache-a ${Q}`, `cache-b ${R}`, `cache-a ${P}`]);
    for (const path of [P, Q, R]) {
      expect(statesOf(path)).toEqual(SUBSTITUTED);
      expect(idsOf(path, "substitution")).toHaveLength(1);
    }
    // R is done before P takes its lock.
    const [rId] = idsOf(R, "substitution");
    const [pId] = idsOf(P, "substitution");
    const rDone = indexOf((e) => e.type === "goal.done" && e.goal === rId);
    const pRun = indexOf(
      (e) =>
        e.type === "goal.transition" &&
        e.goal === pId &&
        (e.state === "tryToRun" || Object.keys(e.state as object)[0] === "tryToRun"),
    );
    expect(rDone).toBeGreaterThan(-1);
    expect(rDone).toBeLessThan(pRun);
  });

  it("a reference nobody has: incompleteClosure, nothing imported", async () => {
    const { world, subs } = setup();
    subs.offer(0, P, { references: [R] });
    const { worker, statesOf, outcomeOf } = run(world);
    const [r] = await worker.buildPaths([{ path: P }]);
    expect(statesOf(P)).toEqual(["init", "tryNext", "referencesValid", "incompleteClosure"]);
    expect(outcomeOf(R)!.status).toBe("noSubstituters");
    expect(outcomeOf(P)!.message).toBe(`some references of path '${P}' could not be realised`);
    expect(r!.status).toBe("MiscFailure");
    expect(subs.imports).toEqual([]);
    expect(world.valid.has(P)).toBe(false);
  });

  it("a reference whose substitute is corrupt: failed (not an incomplete closure)", async () => {
    const { world, subs } = setup(["cache-a"]);
    subs.offer(0, P, { references: [R] });
    subs.offer(0, R, { corrupt: true });
    const { worker, statesOf, outcomeOf } = run(world, { keepGoing: true });
    await worker.buildPaths([{ path: P }]);
    expect(outcomeOf(R)!.status).toBe("failed");
    expect(statesOf(P)).toEqual(["init", "tryNext", "referencesValid", "failed"]);
  });

  it("references claimed to form a cycle fail instead of hanging", async () => {
    const { world, subs } = setup(["cache-a"]);
    subs.offer(0, P, { references: [Q] }).offer(0, Q, { references: [R] });
    subs.offer(0, R, { references: [P] });
    const { worker, outcomeOf } = run(world, { keepGoing: true });
    const [r] = await worker.buildPaths([{ path: P }]);
    expect(r!.status).toBe("MiscFailure");
    expect(outcomeOf(R)!.status).toBe("failed");
    expect(outcomeOf(P)!.status).toBe("failed");
    expect(subs.imports).toEqual([]);
  });

  it("someone substituted it meanwhile: valid once we hold the lock, nothing fetched", async () => {
    const { world, subs } = setup();
    subs.offer(0, P);
    subs.lockedElsewhere.set(P, 2);
    subs.beatenBy.add(P);
    const { worker, statesOf } = run(world);
    const [r] = await worker.buildPaths([{ path: P }]);
    expect(r!.status).toBe("AlreadyValid");
    expect(statesOf(P)).toEqual(["init", "tryNext", "referencesValid", "tryToRun", "alreadyValid"]);
    expect(subs.imports).toEqual([]);
  });

  it("a corrupt NAR: the next substituter is tried; with none left the goal failed", async () => {
    const { world, subs } = setup(["cache-a"]);
    subs.offer(0, P, { corrupt: true });
    const { worker, statesOf, outcomeOf } = run(world);
    const [r] = await worker.buildPaths([{ path: P }]);
    expect(statesOf(P)).toEqual([
      "init",
      "tryNext",
      "referencesValid",
      "tryToRun",
      "finished",
      "failed",
    ]);
    const o = outcomeOf(P)!;
    expect(o.status).toBe("failed");
    expect(o.errors).toEqual([`cache-a: NAR of '${P}' does not match its path info`]);
    expect(r!.status).toBe("MiscFailure");
    expect(world.valid.has(P)).toBe(false);
    expect(subs.imports).toEqual([]);

    const two = setup();
    two.subs.offer(0, P, { corrupt: true }).offer(1, P);
    const second = run(two.world);
    expect((await second.worker.buildPaths([{ path: P }]))[0]!.status).toBe("Substituted");
    expect(two.subs.imports).toEqual([`cache-b ${P}`]);
  });

  it("a NAR that is gone counts as not there: noSubstituters, not failed", async () => {
    const { world, subs } = setup(["cache-a"]);
    subs.offer(0, P, { gone: true });
    const { worker, outcomeOf } = run(world);
    await worker.buildPaths([{ path: P }]);
    expect(outcomeOf(P)!.status).toBe("noSubstituters");
    expect(outcomeOf(P)!.errors).toEqual([`cache-a: the NAR of '${P}' is gone`]);
  });

  it("a substituter that cannot be queried fails the goal, unless --fallback", async () => {
    for (const tryFallback of [false, true]) {
      const { world, subs } = setup();
      subs.offer(0, P, { queryError: "connection refused" }).offer(1, P);
      const { worker, outcomeOf } = run(world, { tryFallback });
      const [r] = await worker.buildPaths([{ path: P }]);
      if (tryFallback) {
        expect(r!.status).toBe("Substituted");
        expect(outcomeOf(P)!.errors).toEqual(["cache-a: connection refused"]);
      } else {
        expect(outcomeOf(P)!.status).toBe("failed");
        expect(r!.errorMsg).toBe(
          `cannot query substituter 'cache-a' about '${P}': connection refused`,
        );
      }
    }
  });

  it("info about another path is skipped", async () => {
    const { world, subs } = setup();
    subs.offer(0, P, { reportedPath: Q }).offer(1, P);
    const { worker, outcomeOf } = run(world);
    expect((await worker.buildPaths([{ path: P }]))[0]!.status).toBe("Substituted");
    expect(outcomeOf(P)!.errors).toEqual([`asked 'cache-a' for '${P}' but got '${Q}'`]);
  });

  it("substitutes even with --max-jobs 0, one at a time", async () => {
    const { world, subs } = setup(["cache-a"]);
    subs.offer(0, P, { ms: 5 }).offer(0, Q, { ms: 5 });
    const { worker } = run(world, { maxJobs: 0 });
    const results = await worker.buildPaths([{ path: P }, { path: Q }]);
    expect(results.map((r) => r.status)).toEqual(["Substituted", "Substituted"]);
  });
});

describe("substitution goals in derivation goals", () => {
  it("valid outputs from a substituter: Substituted, no build", async () => {
    const { world, subs } = setup();
    const p = world.add({ name: "hello" });
    subs.offer(0, world.outPath("hello", "out"));
    const { worker, statesOf } = run(world);
    const [r] = await worker.buildPaths([{ drvPath: p, outputs: [] }]);
    expect(r!.status).toBe("Substituted");
    expect(r!.builtOutputs.out?.outPath).toBe(world.outPath("hello", "out"));
    expect(world.builds).toEqual([]);
    expect(statesOf(p, "derivation")).toEqual([
      "getDerivation",
      "haveDerivation",
      "outputsSubstituted",
      "substituted",
    ]);
  });

  it("a failed output substitute: TransientFailure with Nix's message; --fallback builds", async () => {
    for (const tryFallback of [false, true]) {
      const { world, subs } = setup();
      const p = world.add({ name: "hello" });
      subs.offer(0, world.outPath("hello", "out"), { corrupt: true });
      const { worker } = run(world, { tryFallback });
      const [r] = await worker.buildPaths([{ drvPath: p, outputs: [] }]);
      if (tryFallback) {
        expect(r!.status).toBe("Built");
        continue;
      }
      expect(r!.status).toBe("TransientFailure");
      expect(r!.errorMsg).toBe(
        `some substitutes for the outputs of derivation '${p}' failed (usually happens due to networking issues); try '--fallback' to build derivation from source `,
      );
      expect(world.builds).toEqual([]);
      expect(worker.exitStatus()).toBe(1);
    }
  });

  it("an incomplete closure builds the inputs, then substitutes again", async () => {
    const { world, subs } = setup();
    world.add({ name: "dep" });
    const top = world.add({ name: "top", deps: ["dep"] });
    subs.offer(0, world.outPath("top", "out"), { references: [world.outPath("dep", "out")] });
    const { worker, statesOf, idsOf } = run(world);
    const [r] = await worker.buildPaths([{ drvPath: top, outputs: [] }]);
    expect(r!.status).toBe("Substituted");
    expect(world.builds).toEqual([world.drvPath("dep")]);
    expect(idsOf(world.outPath("top", "out"), "substitution")).toHaveLength(2);
    expect(statesOf(top, "derivation")).toEqual([
      "getDerivation",
      "haveDerivation",
      "outputsSubstituted",
      "inputsRealised",
      "haveDerivation",
      "outputsSubstituted",
      "substituted",
    ]);
  });

  it("substitutes a missing .drv and missing input sources, one goal per path", async () => {
    const { world, subs } = setup();
    const src = "/s/src00000000000000000000000000000-src";
    const a = world.add({ name: "a", srcs: [src] });
    const b = world.add({ name: "b", srcs: [src] });
    world.valid.delete(a);
    subs.offer(1, a).offer(0, src);
    const { worker, idsOf } = run(world);
    const results = await worker.buildPaths([
      { drvPath: a, outputs: [] },
      { drvPath: b, outputs: [] },
    ]);
    expect(results.map((r) => r.status)).toEqual(["Built", "Built"]);
    expect(subs.imports.sort()).toEqual([`cache-a ${src}`, `cache-b ${a}`]);
    expect(idsOf(src, "substitution")).toHaveLength(1);
  });
});

describe("substitution goal machine", () => {
  it("SUBSTITUTION_GOAL_INVOKES lists every invoke: its id and the effect it runs", () => {
    expect(invokesOf(substitutionGoalMachine)).toEqual(SUBSTITUTION_GOAL_INVOKES);
  });
});
