// The internal-json encoder on recorded runs (fixtures/internal-json: real `nixstate build` runs,
// see record.ts there) and on random event sequences.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { builderLogPrinter, withoutLogTail } from "../../src/cli/build-printer.ts";
import { parseBuilderMessage } from "../../src/cli/builder-json-message.ts";
import { InternalJsonEncoder, internalJsonPrinter } from "../../src/cli/internal-json-printer.ts";
import type { RunEvent } from "../../src/events/run-event.ts";
import { repoRoot } from "../vectors.ts";

const fixtures = join(repoRoot, "test/cli/fixtures/internal-json");

function recorded(name: string): RunEvent[] {
  return readFileSync(join(fixtures, name), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RunEvent);
}

interface Line {
  action: string;
  id?: number;
  type?: number;
  level?: number;
  parent?: number;
  text?: string;
  fields?: (string | number)[];
  msg?: string;
  raw_msg?: string;
}

function encode(events: RunEvent[]): { raw: string[]; lines: Line[] } {
  const encoder = new InternalJsonEncoder({ firstId: 1 });
  const raw = events.flatMap((e) => encoder.encode(e));
  return { raw, lines: raw.map((l) => JSON.parse(l.slice("@nix ".length)) as Line) };
}

/** Every start stopped exactly once, after it; no stop, result or parent of a closed id. */
function checkPairing(lines: Line[]): void {
  const open = new Set<number>();
  const seen = new Set<number>();
  for (const l of lines) {
    if (l.action === "start") {
      expect(seen.has(l.id!), `id ${l.id} started twice`).toBe(false);
      expect(l.parent === 0 || open.has(l.parent!), `parent ${l.parent} not open`).toBe(true);
      seen.add(l.id!);
      open.add(l.id!);
    } else if (l.action === "stop") {
      expect(open.delete(l.id!), `stop of ${l.id}, not open`).toBe(true);
    } else if (l.action === "result") {
      expect(open.has(l.id!), `result on ${l.id}, not open`).toBe(true);
    }
  }
  expect([...open]).toEqual([]);
}

const lastResult = (lines: Line[], id: number, type: number) =>
  lines.filter((l) => l.action === "result" && l.id === id && l.type === type).at(-1)?.fields;

describe("internal-json on a recorded build (-k: a builder with @nix messages, one failing, a lock held elsewhere)", () => {
  const events = recorded("build-run.jsonl");
  const { raw, lines } = encode(events);
  const drv = (name: string) =>
    events
      .map((e) => ("goal" in e ? e.goal : ""))
      .find((g) => g.endsWith(`-${name}.drv#normal`))!
      .slice(4, -"#normal".length);
  const buildOf = (name: string) =>
    lines.find((l) => l.action === "start" && l.type === 105 && l.fields?.[0] === drv(name));
  const between = (id: number) => {
    const from = lines.findIndex((l) => l.action === "start" && l.id === id);
    const to = lines.findIndex((l) => l.action === "stop" && l.id === id);
    // Without the worker's counts (on activities 1 to 3) and other goals' activities.
    return raw
      .slice(from + 1, to)
      .filter((l) => !/"id":[123],"type":10[56]}/.test(l) && !l.includes('"type":111'));
  };

  it("writes one '@nix ' JSON line per call, keys in Nix's (sorted) order", () => {
    for (const l of raw) {
      expect(l).toMatch(/^@nix \{.*\}\n$/);
      const keys = Object.keys(JSON.parse(l.slice(5)));
      expect(keys).toEqual([...keys].sort());
    }
    checkPairing(lines);
  });

  it("starts Realise, Builds and CopyPaths first and stops them last, in reverse", () => {
    expect(raw.slice(0, 3)).toEqual([
      '@nix {"action":"start","id":1,"level":0,"parent":0,"text":"","type":102}\n',
      '@nix {"action":"start","id":2,"level":0,"parent":0,"text":"","type":104}\n',
      '@nix {"action":"start","id":3,"level":0,"parent":0,"text":"","type":103}\n',
    ]);
    expect(raw.slice(-3)).toEqual([
      '@nix {"action":"stop","id":3}\n',
      '@nix {"action":"stop","id":2}\n',
      '@nix {"action":"stop","id":1}\n',
    ]);
  });

  it("counts builds as Nix does: [done, expected, running, failed]", () => {
    const progress = lines
      .filter((l) => l.action === "result" && l.id === 2 && l.type === 105)
      .map((l) => l.fields);
    // Four goals; fails fails (1 failed), hello and uses are built, slow was built by another
    // process (valid after its lock: neither done nor failed).
    expect(progress[0]).toEqual([0, 1, 0, 0]);
    expect(progress).toContainEqual([0, 4, 1, 0]);
    expect(progress.at(-1)).toEqual([2, 2, 0, 1]);
    expect(lastResult(lines, 3, 105)).toEqual([0, 0, 0, 0]);
    expect(lastResult(lines, 1, 106)).toEqual([100, 0]);
  });

  it("gives each build a Build activity with Nix's text and fields", () => {
    for (const name of ["fails", "hello", "uses"]) {
      expect(buildOf(name)).toEqual({
        action: "start",
        fields: [drv(name), "", 1, 1],
        id: buildOf(name)!.id,
        level: 3,
        parent: 0,
        text: `building '${drv(name)}'`,
        type: 105,
      });
    }
    expect(buildOf("slow")).toBeUndefined();
  });

  it("puts the builder's lines on its Build activity and reads its @nix messages as Nix does", () => {
    const hello = buildOf("hello")!.id!;
    expect(between(hello)).toEqual([
      `@nix {"action":"result","fields":["line one"],"id":${hello},"type":101}\n`,
      `@nix {"action":"result","fields":[""],"id":${hello},"type":101}\n`,
      `@nix {"action":"result","fields":["Xbc"],"id":${hello},"type":101}\n`,
      `@nix {"action":"result","fields":["buildPhase"],"id":${hello},"type":104}\n`,
      '@nix {"action":"msg","level":1,"msg":"hello from the builder"}\n',
      `@nix {"action":"start","fields":["x"],"id":${hello + 1},"level":4,"parent":${hello},"text":"fetching","type":101}\n`,
      `@nix {"action":"result","fields":[1,2,0,0],"id":${hello + 1},"type":105}\n`,
      `@nix {"action":"stop","id":${hello + 1}}\n`,
      `@nix {"action":"msg","level":0,"msg":"bad JSON log message from builder: ${JSON.stringify(
        (parseBuilderMessage("@nix bad json") as { error: string }).error,
      ).slice(1, -1)}"}\n`,
      `@nix {"action":"result","fields":["@nix bad json"],"id":${hello},"type":101}\n`,
      `@nix {"action":"result","fields":["no newline"],"id":${hello},"type":101}\n`,
    ]);
  });

  it("reports the failure as a level-0 message, without the log tail already shown", () => {
    const fails = buildOf("fails")!.id!;
    expect(between(fails)).toEqual([
      `@nix {"action":"result","fields":["failing now"],"id":${fails},"type":101}\n`,
    ]);
    const text = `builder for '${drv("fails")}' failed with exit code 3`;
    const errors = lines.filter((l) => l.action === "msg" && l.level === 0 && l.raw_msg);
    expect(errors).toEqual([
      {
        action: "msg",
        column: null,
        file: null,
        level: 0,
        line: null,
        msg: `\x1b[31;1merror:\x1b[0m ${text}`,
        raw_msg: text,
      },
    ]);
  });

  it("says when a build waits for a lock another process holds, once, until it has it", () => {
    const waits = lines.filter((l) => l.action === "start" && l.type === 111);
    const out = (
      events.find(
        (e) => e.type === "effect.done" && e.effect === "queryOutputs" && e.goal.includes("-slow"),
      ) as { output: { path: string }[] }
    ).output[0]!.path;
    expect(waits).toEqual([
      {
        action: "start",
        id: waits[0]!.id,
        level: 1,
        parent: 0,
        text: `waiting for lock on \x1b[35;1m'${out}'\x1b[0m`,
        type: 111,
      },
    ]);
    const stopAt = lines.findIndex((l) => l.action === "stop" && l.id === waits[0]!.id);
    const lockedAt = events.findIndex(
      (e) => e.type === "effect.done" && e.effect === "lockOutputs" && e.goal.includes("-slow"),
    );
    // Stopped by the event that says the lock was taken: nothing of later events comes first.
    const before = encode(events.slice(0, lockedAt)).raw.length;
    expect(stopAt).toBe(before);
  });
});

describe("internal-json on a recorded substitution from a file:// cache", () => {
  const events = recorded("substitute-run.jsonl");
  const { raw, lines } = encode(events);
  const cache = (events[0] as unknown as { request: { options: { substituters: string } } }).request
    .options.substituters;
  const infos = events.filter(
    (e): e is Extract<RunEvent, { type: "effect.done" }> =>
      e.type === "effect.done" && e.effect === "queryPathInfo",
  );
  const narBytes = infos.reduce((n, e) => n + (e.output as { narSize: number }).narSize, 0);

  it("asks (QueryPathInfo), then substitutes (Substitute holding CopyPath) each path", () => {
    checkPairing(lines);
    const paths = infos.map((e) => (e.output as { path: string }).path);
    expect(paths).toHaveLength(2);
    for (const path of paths) {
      const query = lines.filter((l) => l.type === 109 && l.fields?.[0] === path);
      expect(query).toEqual([
        {
          action: "start",
          fields: [path, cache],
          id: query[0]!.id,
          level: 4,
          parent: 0,
          text: `querying info about '${path}' on '${cache}'`,
          type: 109,
        },
      ]);
      const sub = lines.find(
        (l) => l.action === "start" && l.type === 108 && l.fields?.[0] === path,
      )!;
      expect(sub).toMatchObject({ level: 0, parent: 0, text: "", fields: [path, cache] });
      const copy = lines.find(
        (l) => l.action === "start" && l.type === 100 && l.fields?.[0] === path,
      )!;
      expect(copy).toEqual({
        action: "start",
        fields: [path, cache, "local"],
        id: sub.id! + 1,
        level: 3,
        parent: sub.id,
        text: `copying path '${path}' from '${cache}'`,
        type: 100,
      });
      // CopyPath stops first, then its Substitute.
      const stops = raw.filter(
        (l) =>
          l === `@nix {"action":"stop","id":${copy.id}}\n` ||
          l === `@nix {"action":"stop","id":${sub.id}}\n`,
      );
      expect(stops).toEqual([
        `@nix {"action":"stop","id":${copy.id}}\n`,
        `@nix {"action":"stop","id":${sub.id}}\n`,
      ]);
    }
  });

  it("counts substitutions and their bytes as Nix does", () => {
    expect(lastResult(lines, 3, 105)).toEqual([2, 2, 0, 0]);
    expect(lines.filter((l) => l.id === 3 && l.type === 105).map((l) => l.fields)).toContainEqual([
      1, 2, 1, 0,
    ]);
    // The derivation goal is expected to build until its outputs are substituted.
    expect(lines.filter((l) => l.id === 2 && l.type === 105)[0]!.fields).toEqual([0, 1, 0, 0]);
    expect(lastResult(lines, 2, 105)).toEqual([0, 0, 0, 0]);
    const expected = lines.filter((l) => l.id === 1 && l.type === 106);
    expect(expected.at(-2)!.fields).toEqual([101, narBytes]);
    expect(expected.at(-1)!.fields).toEqual([100, narBytes]);
  });
});

// Events a run could send in any order, for goals of both kinds, including ones the encoder
// never heard of; then the run ends.
const DRVS = ["drv:/s/aaa-a.drv#normal", "drv:/s/bbb-b.drv#check", "drv:/s/ccc-c.drv#normal@2"];
const SUBS = ["sub:/s/ddd-d", "sub:/s/eee-e"];
const builderLine = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    '@nix {"action":"setPhase","phase":"unpackPhase"}',
    '@nix {"action":"msg","level":2,"msg":"hi"}',
    '@nix {"action":"start","id":1,"level":3,"text":"t","type":101}',
    '@nix {"action":"start","id":2,"level":3,"text":"t","type":101,"fields":["u",1]}',
    '@nix {"action":"start","id":1,"level":3,"text":"t","type":100}',
    '@nix {"action":"result","id":1,"type":105,"fields":[1,2,0,0]}',
    '@nix {"action":"result","id":9,"type":105,"fields":[]}',
    '@nix {"action":"stop","id":1}',
    '@nix {"action":"stop","id":2}',
    '@nix {"action":"setPhase"}',
    "@nix {",
    "@nix []",
  ),
);
const eventArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc
    .record({
      type: fc.constant("goal.created"),
      goal: fc.constantFrom(...DRVS, ...SUBS),
      input: fc.constant({ substituters: ["file:///c"] }),
    })
    .map((e) => ({ ...e, kind: e.goal.startsWith("drv:") ? "derivation" : "substitution" })),
  fc.record({
    type: fc.constantFrom("effect.started", "effect.done", "effect.failed"),
    goal: fc.constantFrom(...DRVS, ...SUBS),
    effect: fc.constantFrom("queryPathInfo", "importSubstitute", "lockOutputs", "queryOutputs"),
    input: fc.constant({ substituter: 0 }),
    output: fc.oneof(
      fc.constant(undefined),
      fc.record({ narSize: fc.nat(1000) }),
      fc.constant([{ name: "out", path: "/s/out" }]),
    ),
  }),
  fc.record({ type: fc.constant("lock.busy"), goal: fc.constantFrom(...DRVS, ...SUBS) }),
  fc.record({
    type: fc.constant("builder.started"),
    goal: fc.constantFrom(...DRVS),
    where: fc.constantFrom("local", "remote"),
    machine: fc.constantFrom("localhost", "ssh://b"),
  }),
  fc.record({
    type: fc.constant("builder.log"),
    goal: fc.constantFrom(...DRVS),
    lines: fc.array(builderLine, { maxLength: 4 }),
  }),
  fc.record({ type: fc.constant("builder.exited"), goal: fc.constantFrom(...DRVS) }),
  fc.record({
    type: fc.constant("goal.note"),
    goal: fc.constantFrom(...DRVS),
    message: fc.string(),
  }),
  fc.record({ type: fc.constant("goal.stopped"), goal: fc.constantFrom(...DRVS, ...SUBS) }),
  fc
    .record({
      type: fc.constant("goal.done"),
      goal: fc.constantFrom(...DRVS, ...SUBS),
      status: fc.constantFrom(
        "Built",
        "AlreadyValid",
        "PermanentFailure",
        "DependencyFailed",
        "substituted",
        "failed",
      ),
      error: fc.string(),
      output: fc.constant({ errors: ["e"] }),
    })
    .map((e) => ({ ...e, kind: e.goal.startsWith("drv:") ? "derivation" : "substitution" })),
);

describe("internal-json on any sequence of events", () => {
  test.prop([fc.boolean(), fc.array(eventArb, { maxLength: 60 })], { numRuns: 500 })(
    "every line is '@nix ' + JSON, every start has one stop with its id, counts never go negative",
    (announced, body) => {
      const events = [
        ...(announced ? [{ type: "run.started", request: {}, settings: {} }] : []),
        ...body,
        { type: "run.ended", exitCode: 0 },
      ].map((e, i) => ({ seq: i + 1, mono: i, wall: i, ...e }) as RunEvent);
      const written: string[] = [];
      const listener = internalJsonPrinter((t) => written.push(t), { firstId: 100 });
      for (const e of events) listener(e);
      const text = written.join("");
      expect(text.endsWith("\n")).toBe(true);
      const lines = text
        .slice(0, -1)
        .split("\n")
        .map((l) => {
          expect(l.startsWith("@nix ")).toBe(true);
          return JSON.parse(l.slice(5)) as Line;
        });
      checkPairing(lines);
      for (const l of lines) {
        if (l.action === "result" && (l.type === 105 || l.type === 106) && l.id! < 103)
          for (const f of l.fields!) expect(f).toBeGreaterThanOrEqual(0);
      }
      // Events after the end say nothing more.
      written.length = 0;
      listener(events[0]!);
      expect(written).toEqual([]);
    },
  );
});

describe("-L and the plain printer", () => {
  it("prints builder lines as '<name>> <line>', messages plainly, no phases or empty lines", () => {
    let text = "";
    const print = builderLogPrinter((t) => {
      text += t;
    });
    print({
      seq: 1,
      mono: 0,
      wall: 0,
      type: "builder.log",
      goal: "drv:/nix/store/0123-hello-1.0.drv#normal",
      lines: [
        "compiling  ",
        "",
        '@nix {"action":"setPhase","phase":"buildPhase"}',
        '@nix {"action":"msg","level":1,"msg":"a message"}',
        "@nix oops",
      ],
    });
    expect(text).toBe(
      `hello-1.0> compiling\na message\nbad JSON log message from builder: ${
        (parseBuilderMessage("@nix oops") as { error: string }).error
      }\nhello-1.0> @nix oops\n`,
    );
  });

  it("leaves the log tail out of a builder failure when the lines were shown", () => {
    const head = "builder for '/s/x.drv' failed with exit code 3";
    const tail = ";\nlast 2 log lines:\n> one\n> two\nFor full logs, run 'nixstate log /s/x.drv'.";
    expect(withoutLogTail(head + tail)).toBe(head);
    expect(withoutLogTail(head)).toBe(head);
    expect(withoutLogTail(`${head}; last 2 log lines`)).toBe(`${head}; last 2 log lines`);
  });
});
