// Acceptance for replay: a 200-node DAG with failing, multi-output and already-valid nodes, built
// with -k through the real CLI; every goal replays from the log with every step equal; a machine
// with one guard flipped is caught, naming the goal and the step; replay is deterministic.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NIXSTATE_VERSION } from "../../src/events/nixstate-version.ts";
import { replayRun } from "../../src/events/replay-run.ts";
import type { RunEvent } from "../../src/events/run-event.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { derivationGoalMachine } from "../../src/machines/derivation-goal.ts";
import { substitutionGoalMachine } from "../../src/machines/substitution-goal.ts";
import { runCli } from "../cli/run-cli.ts";
import { writeJsonDag } from "./json-dag.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-replay-"));
const stateDir = join(root, "state");
const env = { NIXSTATE_STATE_DIR: stateDir, NIXSTATE_STORE_DIR: "" };
let log: RunLog;

beforeAll(() => {
  const files = writeJsonDag(join(root, "dag"), 200, {
    fail: (i) => i % 37 === 5,
    multi: (i) => i % 10 === 3,
  });
  // Run 1 makes the first 60 valid (or failed); run 2 is the one under test.
  const first = runCli(["build", "-k", "-j2", ...files.slice(0, 60)], { env });
  expect(first.status).toBe(100);
  const second = runCli(["build", "-k", "-j2", ...files], { env });
  expect(second.status).toBe(100);
  log = RunLog.open(stateDir);
}, 120_000);

afterAll(() => {
  log?.close();
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

describe("replay of a recorded run", () => {
  it("reproduces every goal's transitions, effects and outcome", async () => {
    const events = log.events(2);
    const done = events.filter((e) => e.type === "goal.done");
    const statuses = new Set(done.map((e) => (e as { status: string }).status));
    for (const s of ["Built", "AlreadyValid", "PermanentFailure", "DependencyFailed"])
      expect(statuses).toContain(s);
    // Outcomes are plain data: a built goal's outputs survive JSON.
    const built = done.find((e) => (e as { status: string }).status === "Built") as {
      outputs: Record<string, string>;
    };
    expect(Object.keys(built.outputs)).not.toHaveLength(0);
    // Multi-output nodes are asked for more outputs while they run (or restarted).
    expect(events.some((e) => e.type === "goal.wants" || e.type === "goal.reused")).toBe(true);

    const r = await replayRun(log, 2);
    expect(r.divergences).toEqual([]);
    expect(r.goals).toHaveLength(events.filter((e) => e.type === "goal.created").length);
    expect(r.goals.every((g) => g.done)).toBe(true);
    expect(r.steps).toBeGreaterThan(200 * 8);
  });

  it("names the goal and the step where a changed machine departs from the record", async () => {
    const flipped = derivationGoalMachine.provide({
      guards: { allWantedOutputsValid: () => false },
    });
    const r = await replayRun(log, 2, {
      machines: { derivation: flipped, substitution: substitutionGoalMachine },
    });
    expect(r.divergences.length).toBeGreaterThan(0);
    const d = r.divergences[0]!.divergence!;
    expect(d.goal).toMatch(/^drv:.*\.drv#normal$/);
    expect(d.seq).toBeGreaterThan(0);
    // An output that was valid: the record went to alreadyValid, the changed machine did not.
    expect(d.expected).toContain("alreadyValid");
    expect(d.got).not.toContain("alreadyValid");
    expect(d.state).toBe("haveDerivation.checking");
  });

  it("replays up to any event, including the end of a goal", async () => {
    const ends = log
      .events(2)
      .filter((e) => e.type === "goal.done")
      .map((e) => e.seq);
    for (const seq of ends.filter((_, i) => i % 25 === 0)) {
      const r = await replayRun(log, 2, { untilSeq: seq });
      expect(r.divergences).toEqual([]);
    }
  });

  it("is deterministic, and the CLI exits 0 with a count, 1 on a divergence", () => {
    const a = runCli(["replay", "2", "--json"], { env });
    const b = runCli(["replay", "2", "--json"], { env });
    expect(a.status).toBe(0);
    expect(a.stdout.toString()).toBe(b.stdout.toString());
    const text = runCli(["replay", "2"], { env });
    expect(text.stdout.toString()).toMatch(
      /^run 2: \d+ goals, \d+ steps replayed, all equal to the record$/m,
    );
  });

  it("shows one goal's steps, and every goal's state at an event", () => {
    const events = log.events(2);
    const failing = events.find(
      (e) => e.type === "goal.done" && (e as { status: string }).status === "PermanentFailure",
    ) as { goal: string };
    const steps = runCli(["replay", "2", "--goal", failing.goal, "--step"], { env });
    expect(steps.status).toBe(0);
    const lines = steps.stdout.toString().trim().split("\n");
    expect(lines[0]).toMatch(/step 1 .* state getDerivation\.loading/);
    expect(lines.at(-2)).toMatch(/state permanentFailure$/);
    const middle = events[Math.floor(events.length / 2)]!.seq;
    const at = runCli(["replay", "2", "--until", String(middle)], { env });
    expect(at.status).toBe(0);
    expect(at.stdout.toString()).toMatch(/^drv:\S+\s+(done|\S+)$/m);
  });

  it("says which version recorded a run that does not replay", () => {
    // One goal of run 2 as an older nixstate recorded it: its first effect was another one.
    const events = log.events(2);
    const goal = (events.find((e) => e.type === "goal.created") as { goal: string }).goal;
    const w = log.begin({ command: "build", targets: [], options: {}, cwd: "/" });
    let seq = 0;
    let renamed = false;
    for (const e of events) {
      if (e.type !== "run.started" && (e as { goal?: string }).goal !== goal) continue;
      const copy = { ...e, seq: ++seq } as Record<string, unknown>;
      if (e.type === "run.started") copy.version = "0.1.0";
      if (e.type === "effect.started" && !renamed) {
        renamed = true;
        Object.assign(copy, { invoke: "checkDrvValid", effect: "queryDrvValid" });
      }
      w.append(copy as unknown as RunEvent);
    }
    w.end(0);
    const out = runCli(["replay", String(w.runId)], { env });
    expect(out.status).toBe(1);
    const json = runCli(["replay", String(w.runId), "--json"], { env });
    expect(JSON.parse(json.stdout.toString()).recordedBy).toBe("0.1.0");
    expect(out.stdout.toString()).toContain(
      `run ${w.runId} was recorded by nixstate 0.1.0, whose goal machines may differ from this version's (${NIXSTATE_VERSION}): replay it with nixstate 0.1.0`,
    );
  });
});
