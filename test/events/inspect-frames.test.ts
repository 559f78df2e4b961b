// The run's events as @statelyai/inspect frames: the definitions and version as the package itself
// writes them, the actor tree and events of a small run, and for any event sequence the order a
// receiver needs (every actor announced before anything refers to it, frames numbered without gaps).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { createInspector } from "@statelyai/inspect";
import { describe, expect, it } from "vitest";
import {
  type ActorFrame,
  type EventFrame,
  INSPECT_PROTOCOL_VERSION,
  type InspectFrame,
  InspectFrames,
  machineDefinition,
  type SnapshotFrame,
} from "../../src/events/inspect-frames.ts";
import type { RunEvent } from "../../src/events/run-event.ts";
import { derivationGoalMachine } from "../../src/machines/derivation-goal.ts";
import { substitutionGoalMachine } from "../../src/machines/substitution-goal.ts";
import type { GoalCause, WorkerEvent } from "../../src/machines/worker-events.ts";
import { repoRoot } from "../vectors.ts";

type Unstamped =
  | WorkerEvent
  | Extract<RunEvent, { type: "run.started" | "run.ended" }> extends infer E
  ? E extends RunEvent
    ? Omit<E, "seq" | "mono" | "wall">
    : E
  : never;

function stamp(events: Unstamped[]): RunEvent[] {
  return events.map(
    (e, i) => ({ seq: i + 1, mono: i * 10, wall: 1_700_000_000_000 + i * 10, ...e }) as RunEvent,
  );
}

function framesOf(events: RunEvent[]): InspectFrame[] {
  const f = new InspectFrames();
  return events.flatMap((e) => f.frames(e));
}

/** The frame the package's own inspector makes for an actor of this machine. */
function packageActorFrame(machine: typeof derivationGoalMachine | typeof substitutionGoalMachine) {
  const sent: Record<string, unknown>[] = [];
  const inspector = createInspector({ send: (e) => void sent.push(e as never) });
  inspector.actor({ sessionId: "x:1", logic: machine } as never, { status: "active" });
  return sent[0]!;
}

const A = "drv:/s/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-top.drv#normal";
const B = "drv:/s/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib.drv#normal";
const C = "sub:/s/cccccccccccccccccccccccccccccccc-lib";
const D = "drv:/s/dddddddddddddddddddddddddddddddd-side.drv#check";

const RUN_STARTED: Unstamped = {
  type: "run.started",
  request: { command: "build", targets: ["top.json"], options: {}, cwd: "/" },
  settings: {},
  version: "0.1.0",
  host: "h",
  pid: 42,
};

describe("inspector frames", () => {
  it("carry the machine definitions and version exactly as @statelyai/inspect writes them", () => {
    for (const m of [derivationGoalMachine, substitutionGoalMachine]) {
      const theirs = packageActorFrame(m);
      expect(machineDefinition(m)).toBe(theirs.definition);
      expect(theirs.name).toBe(m.id);
      // The package's depth limit would cut a deeper config short.
      expect(machineDefinition(m)).not.toContain("[Object]");
    }
    const pkg = JSON.parse(
      readFileSync(join(repoRoot, "node_modules/@statelyai/inspect/package.json"), "utf8"),
    ) as { version: string };
    expect(INSPECT_PROTOCOL_VERSION).toBe(pkg.version);
    expect(packageActorFrame(derivationGoalMachine)._version).toBe(pkg.version);
  });

  it("show a run as the worker, a goal actor each with its parent, snapshots and events between goals", () => {
    const events = stamp([
      RUN_STARTED,
      {
        type: "goal.created",
        goal: A,
        kind: "derivation",
        decision: "new",
        cause: { kind: "target", index: 0 },
        input: {},
      },
      {
        type: "goal.transition",
        goal: A,
        state: { getDerivation: "checking" },
        event: "xstate.init",
      },
      { type: "target.started", index: 0, goal: A },
      { type: "effect.started", goal: A, invoke: "i", effect: "e", input: {} },
      {
        type: "goal.created",
        goal: B,
        kind: "derivation",
        decision: "new",
        cause: { kind: "input", of: A },
        input: {},
      },
      {
        type: "goal.created",
        goal: C,
        kind: "substitution",
        decision: "new",
        cause: { kind: "substitution", for: B },
        input: {},
      },
      { type: "goal.waits", goal: A, on: [B] },
      { type: "goal.waits", goal: B, on: [C] },
      { type: "goal.wants", goal: B, outputs: ["dev"], cause: { kind: "input", of: A } },
      { type: "goal.reused", goal: B, cause: { kind: "target", index: 1 }, running: true },
      {
        type: "goal.done",
        goal: C,
        kind: "substitution",
        status: "noSubstituters",
        error: "no substituter has it",
        outputs: {},
      },
      { type: "goal.transition", goal: C, state: "failed", event: "xstate.done.actor.q" },
      { type: "goal.woken", goal: A, by: B },
      {
        type: "goal.done",
        goal: B,
        kind: "derivation",
        status: "Built",
        error: "",
        outputs: { out: "/s/o" },
      },
      { type: "goal.stopped", goal: A, by: "cancelled" },
      { type: "worker.cancelAll", cause: B },
      { type: "target.done", index: 0, goal: A, status: "MiscFailure" },
      { type: "run.ended", exitCode: 1 },
    ]);
    const frames = framesOf(events);
    const root = "nixstate-42-1700000000000";
    const id = (k: string) => `${root}/${k}`;

    const actors = frames.filter((f): f is ActorFrame => f.type === "@xstate.actor");
    expect(actors.map((a) => [a.sessionId, a.parentId, a.name])).toEqual([
      [root, undefined, "worker"],
      [id(A), root, "top"],
      [id(B), id(A), "lib"],
      [id(C), id(B), "substitute lib"],
    ]);
    expect(actors.every((a) => a.rootId === root && a._version === INSPECT_PROTOCOL_VERSION)).toBe(
      true,
    );
    expect(actors[1]!.definition).toBe(machineDefinition(derivationGoalMachine));
    expect(actors[3]!.definition).toBe(machineDefinition(substitutionGoalMachine));

    const sent = frames
      .filter((f): f is EventFrame => f.type === "@xstate.event")
      .map((f) => [f.sourceId, f.sessionId, f.event.type]);
    expect(sent).toEqual([
      [root, id(A), "target.started"],
      [id(A), id(B), "goal.waits"],
      [id(B), id(C), "goal.waits"],
      [id(A), id(B), "goal.wants"],
      [root, id(B), "goal.reused"],
      [id(C), id(B), "goal.waiteeDone"],
      [id(B), id(A), "goal.woken"],
      // A was woken, not done: B's end is still told to it.
      [id(B), id(A), "goal.waiteeDone"],
      [id(B), root, "worker.cancelAll"],
      [id(A), root, "target.done"],
    ]);

    const snaps = frames.filter((f): f is SnapshotFrame => f.type === "@xstate.snapshot");
    expect(
      snaps.map((s) => [s.sessionId, s.snapshot.status, s.snapshot.value, s.event.type]),
    ).toEqual([
      [id(A), "active", { getDerivation: "checking" }, "xstate.init"],
      [id(C), "error", null, "goal.done"],
      // The machine's last transition comes after the worker's goal.done: the status stays.
      [id(C), "error", "failed", "xstate.done.actor.q"],
      [id(B), "done", null, "goal.done"],
      [id(A), "stopped", { getDerivation: "checking" }, "goal.stopped"],
      [root, "error", "ended", "run.ended"],
    ]);
    expect(snaps[3]!.snapshot.output).toEqual({ status: "Built", outputs: { out: "/s/o" } });
    expect(snaps[1]!.snapshot.error).toEqual({
      status: "noSubstituters",
      message: "no substituter has it",
    });
    // createdAt is the event's wall time; runSeq the event's number.
    const wants = frames.find((f) => f.type === "@xstate.event" && f.event.type === "goal.wants")!;
    const wantsEvent = events.find((e) => e.type === "goal.wants")!;
    expect([wants.createdAt, wants.runSeq]).toEqual([String(wantsEvent.wall), wantsEvent.seq]);
  });

  it("announce a goal first seen in the middle of a log under the worker", () => {
    const frames = framesOf(stamp([{ type: "goal.transition", goal: D, state: "x", event: "e" }]));
    expect(frames.map((f) => [f.type, f.sessionId])).toEqual([
      ["@xstate.actor", "nixstate"],
      ["@xstate.actor", `nixstate/${D}`],
      ["@xstate.snapshot", `nixstate/${D}`],
    ]);
    expect((frames[1] as ActorFrame).name).toBe("side (check)");
  });
});

const keys = [A, B, C, D, `${A}@2`];
const key = fc.constantFrom(...keys);
const cause: fc.Arbitrary<GoalCause> = fc.oneof(
  fc.record({ kind: fc.constant("target" as const), index: fc.nat(3) }),
  fc.record({
    kind: fc.constantFrom("input" as const, "inputSource" as const, "reference" as const),
    of: key,
  }),
  fc.record({ kind: fc.constantFrom("substitution" as const, "repair" as const), for: key }),
);
const stateValue = fc.oneof(
  fc.constantFrom("start", "built", "failed"),
  fc.dictionary(
    fc.constantFrom("inputsRealised", "getDerivation"),
    fc.constantFrom("waiting", "checking"),
  ),
);
const event: fc.Arbitrary<Unstamped> = fc.oneof(
  fc.constant(RUN_STARTED),
  fc.record({ type: fc.constant("run.ended" as const), exitCode: fc.constantFrom(0, 1, 100) }),
  fc.record({
    type: fc.constant("goal.created" as const),
    goal: key,
    kind: fc.constantFrom("derivation" as const, "substitution" as const),
    decision: fc.constantFrom("new" as const, "restarted" as const),
    cause,
    input: fc.constant({}),
  }),
  fc.record({
    type: fc.constant("goal.transition" as const),
    goal: key,
    state: stateValue,
    event: fc.string(),
  }),
  fc.record({
    type: fc.constant("goal.done" as const),
    goal: key,
    kind: fc.constantFrom("derivation" as const, "substitution" as const),
    status: fc.constantFrom("Built", "PermanentFailure", "substituted", "failed"),
    error: fc.string(),
    outputs: fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 5 })),
  }),
  fc.record({ type: fc.constant("goal.stopped" as const), goal: key, by: fc.string() }),
  fc.record({
    type: fc.constant("goal.waits" as const),
    goal: key,
    on: fc.array(key, { maxLength: 3 }),
  }),
  fc.record({ type: fc.constant("goal.woken" as const), goal: key, by: key }),
  fc.record({
    type: fc.constant("goal.wants" as const),
    goal: key,
    outputs: fc.array(fc.string({ maxLength: 3 })),
    cause,
  }),
  fc.record({ type: fc.constant("goal.reused" as const), goal: key, cause, running: fc.boolean() }),
  fc.record({ type: fc.constant("target.started" as const), index: fc.nat(3), goal: key }),
  fc.record({
    type: fc.constant("target.done" as const),
    index: fc.nat(3),
    goal: key,
    status: fc.string(),
  }),
  fc.record({ type: fc.constant("worker.cancelAll" as const), cause: fc.oneof(key, fc.string()) }),
  fc.record({
    type: fc.constant("slot.granted" as const),
    goal: key,
    held: fc.nat(),
    limit: fc.nat(),
  }),
);

describe("inspector frames of any event sequence", () => {
  test.prop([fc.array(event, { maxLength: 40 })])(
    "announce every actor before anything refers to it, once, and number frames without gaps",
    (unstamped) => {
      const events = stamp(unstamped);
      const frames = framesOf(events);
      const announced = new Set<string>();
      let lastRunSeq = 0;
      frames.forEach((f, i) => {
        expect(f.seq).toBe(i + 1);
        expect(f.runSeq).toBeGreaterThanOrEqual(lastRunSeq);
        lastRunSeq = f.runSeq;
        if (f.type === "@xstate.actor") {
          expect(announced.has(f.sessionId)).toBe(false);
          if (f.parentId !== undefined) expect(announced.has(f.parentId)).toBe(true);
          expect(announced.has(f.rootId)).toBe(f.parentId !== undefined);
          announced.add(f.sessionId);
        } else {
          expect(announced.has(f.sessionId)).toBe(true);
          if (f.type === "@xstate.event" && f.sourceId !== undefined)
            expect(announced.has(f.sourceId)).toBe(true);
        }
        // What the receiver gets is JSON.parse of the text sent: nothing may be lost on the way.
        expect(JSON.parse(JSON.stringify(f))).toEqual(f);
      });
      // Every transition has its snapshot, with the state it reached.
      const transitions = events.filter((e) => e.type === "goal.transition");
      const at = new Set(transitions.map((t) => t.seq));
      const snaps = frames.filter(
        (f): f is SnapshotFrame => f.type === "@xstate.snapshot" && at.has(f.runSeq),
      );
      expect(snaps.map((s) => [s.runSeq, s.snapshot.value])).toEqual(
        transitions.map((t) => [t.seq, t.state]),
      );
    },
  );

  test.prop([fc.array(event, { maxLength: 40 })])(
    "are the same for the same events",
    (unstamped) => {
      const events = stamp(unstamped);
      expect(framesOf(events)).toEqual(framesOf(JSON.parse(JSON.stringify(events))));
    },
  );
});
