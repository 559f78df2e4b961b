// The run log's line codec: any batch reads back as it was written, in compact lines when its
// stamps and names fit them and in full lines when they do not; a batch stops short at the first
// event JSON cannot hold.
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  decodeLines,
  ENC_COMPACT_BROTLI,
  ENC_FULL_BROTLI,
  LineEncoder,
  lastWall,
} from "../../src/events/event-lines.ts";
import type { RunEvent } from "../../src/events/run-event.ts";

const GOALS = ["drv:/s/a.drv#normal", "sub:/s/b", "drv:/s/\t\n.drv#check"];
const name = fc.oneof(
  fc.constantFrom("runBuild", "checkOutputs", "queryOutputs"),
  fc.string({ maxLength: 6, unit: fc.constantFrom("a", "\t", "\n", "1") }),
);
const payload = fc.dictionary(
  fc
    .string({ minLength: 1, maxLength: 8 })
    .filter((k) => !["type", "goal", "seq", "mono", "wall", "invoke", "effect"].includes(k))
    // Integer keys come first in any object, whatever order it was built in.
    .filter((k) => !/^\d+$/.test(k)),
  fc.jsonValue({ maxDepth: 3 }),
  { maxKeys: 4 },
);
/** null 9 times in 10. (`fc.option`'s `freq` is how rarely it gives null.) */
const rarely = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: fc.constant(null), weight: 9 }, { arbitrary: arb, weight: 1 });
const event = fc.record({
  type: fc.constantFrom(
    "goal.transition",
    "effect.started",
    "effect.done",
    "effect.failed",
    "run.ended",
    "some.future.kind",
    "17",
  ),
  goal: fc.option(fc.constantFrom(...GOALS)),
  names: fc.option(fc.tuple(name, name)),
  payload,
  // Mostly a recorder's stamps (whole microseconds, consecutive seq); now and then not.
  step: fc.nat({ max: 5_000_000 }),
  odd: rarely(fc.double({ noNaN: true, min: -1e9, max: 1e9 })),
  gap: rarely(fc.integer({ min: 2, max: 3 })),
  wallStep: fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 100 })),
});

type Shape = Omit<typeof event extends fc.Arbitrary<infer T> ? T : never, "type" | "names"> & {
  type: string;
  names: readonly [string, string] | null;
};

/** Events as a run would publish them, from the drawn shapes. */
function publish(shapes: Shape[], first: number, wall0: number): RunEvent[] {
  let seq = first - 1;
  let micro = 0;
  let wall = wall0;
  return shapes.map((s) => {
    seq += s.gap ?? 1;
    micro += s.step;
    wall += s.wallStep;
    const mono = s.odd === null || Object.is(s.odd, -0) ? micro / 1000 : s.odd;
    return {
      type: s.type,
      ...(s.goal === null ? {} : { goal: s.goal }),
      seq,
      mono,
      wall,
      ...(s.names === null ? {} : { invoke: s.names[0], effect: s.names[1] }),
      ...(JSON.parse(JSON.stringify(s.payload)) as object),
    } as unknown as RunEvent;
  });
}

function roundTrip(encoder: LineEncoder, events: RunEvent[], filter = { until: 2 ** 32 - 1 }) {
  const { text, enc, count } = encoder.encode(events);
  const goals = new Map<number, string>(encoder.newGoals.map(([n, k]) => [n, k]));
  const out: RunEvent[] = [];
  if (count > 0) decodeLines(text, enc, events[0]!.seq, goals, filter, out);
  return { out, enc, text };
}

describe("event lines", () => {
  test.prop([fc.array(event, { maxLength: 30 }), fc.nat({ max: 1e6 }), fc.nat({ max: 2e12 })], {
    numRuns: 300,
  })("give back any batch as it was", (shapes, first, wall0) => {
    const events = publish(shapes, first + 1, wall0);
    const { out } = roundTrip(new LineEncoder(), events);
    expect(out).toEqual(events);
    // The fields in the order earlier versions read them back: type, goal, stamps, the rest.
    const order = (e: object) => {
      const { type, goal, seq, mono, wall, ...rest } = e as Record<string, unknown>;
      return Object.keys({
        type,
        ...(goal === undefined ? {} : { goal }),
        seq,
        mono,
        wall,
        ...rest,
      });
    };
    expect(out.map((e) => Object.keys(e))).toEqual(events.map(order));
  });

  test.prop([fc.array(event, { minLength: 1, maxLength: 30 }), fc.nat({ max: 2e12 })])(
    "are compact for a recorder's events, and know the last one's wall time",
    (shapes, wall0) => {
      const regular = shapes.map((s) => ({
        ...s,
        odd: null,
        gap: null,
        type: s.type === "17" ? "goal.note" : s.type,
        names: s.type.startsWith("effect.")
          ? ([
              s.step % 2 ? "lockOutputs" : "checkOutputs",
              s.step % 3 ? "lockOutputs" : "queryOutputs",
            ] as const)
          : null,
      }));
      const events = publish(regular, 1, wall0);
      const encoder = new LineEncoder();
      const { out, enc, text } = roundTrip(encoder, events);
      expect(enc).toBe(ENC_COMPACT_BROTLI);
      expect(out).toEqual(events);
      expect(lastWall(text, enc)).toBe(events.at(-1)!.wall);
      // Smaller than the lines earlier versions wrote, from the second line on (the first line's
      // stamps are whole, and a whole mono in microseconds is longer).
      const full = events
        .map((e) => {
          const { type, seq, mono, wall, goal, ...rest } = e as RunEvent & { goal?: string };
          return `${type}\t${goal === undefined ? "" : 1}\t${seq}\t${mono}\t${wall}\t${JSON.stringify(rest)}`;
        })
        .join("\n");
      if (events.length >= 2) expect(text.length).toBeLessThan(full.length);
    },
  );

  it("writes full lines when a stamp or a name does not fit, and reads them", () => {
    const base = { type: "effect.done", goal: GOALS[0], seq: 1, wall: 1e12, output: 1 };
    const cases = [
      { ...base, mono: 0.0001, invoke: "a", effect: "b" },
      { ...base, mono: 1, invoke: "a\tb", effect: "b" },
      { ...base, mono: 1, invoke: "", effect: "b" },
      { ...base, mono: 1, wall: 1e12 + 0.5, invoke: "a", effect: "b" },
      { ...base, mono: 1, type: "12", invoke: "a", effect: "b" },
      { ...base, mono: 1, invoke: "a" },
      { ...base, mono: 2 ** 60, invoke: "a", effect: "b" },
      { ...base, mono: 1, wall: 2 ** 60, invoke: "a", effect: "b" },
    ] as unknown as RunEvent[];
    for (const e of cases) {
      const { out, enc, text } = roundTrip(new LineEncoder(), [e]);
      expect(enc, JSON.stringify(e)).toBe(ENC_FULL_BROTLI);
      expect(out).toEqual([e]);
      expect(lastWall(text, enc)).toBe(e.wall);
    }
  });

  it("keeps stamps that differences in microseconds cannot say exactly", () => {
    const at = (seq: number, mono: number, wall: number) =>
      ({ type: "goal.note", seq, mono, wall, message: "m" }) as RunEvent;
    for (const batch of [
      [at(1, Infinity, 1), at(2, Infinity, 1)],
      [at(1, -(2 ** 52) / 1000, 1), at(2, 2 ** 52 / 1000, 1)],
      [at(1, 1, -(2 ** 52)), at(2, 1, 2 ** 52)],
    ]) {
      const { out, enc } = roundTrip(new LineEncoder(), batch);
      expect(enc).toBe(ENC_FULL_BROTLI);
      expect(out).toEqual(batch);
    }
  });

  it("numbers each goal once a run, across batches", () => {
    const encoder = new LineEncoder();
    const at = (seq: number, goal: string) =>
      ({ type: "goal.note", goal, seq, mono: seq, wall: 1e12, message: "m" }) as RunEvent;
    encoder.encode([at(1, GOALS[0]!), at(2, GOALS[1]!), at(3, GOALS[0]!)]);
    expect(encoder.newGoals).toEqual([
      [1, GOALS[0]],
      [2, GOALS[1]],
    ]);
    encoder.newGoals = [];
    encoder.encode([at(4, GOALS[1]!), at(5, GOALS[2]!)]);
    expect(encoder.newGoals).toEqual([[3, GOALS[2]]]);
  });

  it("stops a batch short at the first event JSON cannot hold", () => {
    const ok = { type: "goal.note", seq: 1, mono: 1, wall: 1e12, message: "a" };
    const bad = { ...ok, seq: 2, message: 1n };
    const after = { ...ok, seq: 3 };
    const { text, count, error, enc } = new LineEncoder().encode([ok, bad, after] as RunEvent[]);
    expect(enc).toBe(ENC_COMPACT_BROTLI);
    expect(count).toBe(1);
    expect(String(error)).toMatch(/BigInt/);
    const out: RunEvent[] = [];
    decodeLines(text, ENC_COMPACT_BROTLI, 1, new Map(), { until: 10 }, out);
    expect(out).toEqual([ok]);
  });

  it("stops reading past `until`, and reads only the goal and types asked for", () => {
    const encoder = new LineEncoder();
    const events = [1, 2, 3, 4].map(
      (seq) =>
        ({
          type: seq % 2 ? "goal.note" : "goal.done",
          goal: GOALS[seq % 2],
          seq,
          mono: seq / 10,
          wall: 1e12 + seq,
        }) as unknown as RunEvent,
    );
    const { text, enc } = encoder.encode(events);
    const goals = new Map(encoder.newGoals);
    const read = (filter: Parameters<typeof decodeLines>[4]) => {
      const out: RunEvent[] = [];
      const more = decodeLines(text, enc, 1, goals, filter, out);
      return { seqs: out.map((e) => e.seq), more };
    };
    expect(read({ until: 2 })).toEqual({ seqs: [1, 2], more: false });
    expect(read({ until: 9, goal: GOALS[1] })).toEqual({ seqs: [1, 3], more: true });
    expect(read({ until: 9, types: new Set(["goal.done"]) })).toEqual({
      seqs: [2, 4],
      more: true,
    });
  });
});
