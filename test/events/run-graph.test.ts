// The goal graph of a recorded run: a real build of a small DAG with a failure (nodes, edges,
// states, root causes and the goals blamed on them, the critical path), hand-made logs for what a
// small build does not show (cancellation, substitutions, requests never waited for, restarts,
// unfinished goals), and properties of the writers: any name gives DOT and Mermaid that parse to
// the same labels, and the JSON round-trips.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { criticalPath } from "../../src/events/critical-path.ts";
import {
  graphDot,
  graphMermaid,
  nodeLabelLines,
  parseGraphFormat,
  renderGraph,
  UnknownGraphFormatError,
} from "../../src/events/graph-formats.ts";
import type { GoalCause, RunEvent } from "../../src/events/run-event.ts";
import {
  type GraphNode,
  type RunGraph,
  runGraph,
  storePathName,
} from "../../src/events/run-graph.ts";
import { RunLog, type RunRow } from "../../src/events/run-log.ts";
import type { Outcome } from "../../src/events/run-why.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "../cli/run-cli.ts";
import { dotLabelText, mermaidLabelText, parseDot, parseMermaidFlowchart } from "./graph-syntax.ts";
import { depsOf, writeJsonDag } from "./json-dag.ts";

const hasDot = spawnSync("dot", ["-V"]).status === 0;
if (!hasDot && process.env.CI === "true")
  throw new Error("Graphviz's dot not found but CI=true: install graphviz (.ci/run does)");

// --- A real run --------------------------------------------------------------------------------

const root = mkdtempSync(join(tmpdir(), "nixstate-run-graph-"));
const stateDir = join(root, "state");
const N = 8;
const FAILING = 2;
let files: string[] = [];
let log: RunLog;

beforeAll(() => {
  files = writeJsonDag(join(root, "dag"), N, { fail: (i) => i === FAILING });
  const b = runCli(["build", "-k", "-j2", ...files], {
    env: { NIXSTATE_STATE_DIR: stateDir, NIXSTATE_STORE_DIR: "" },
  });
  expect(b.status).toBe(100);
  log = RunLog.open(stateDir);
}, 120_000);

afterAll(() => {
  log?.close();
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

/** Whether node i's failure comes from the failing node: it depends on it, directly or not. */
const dependsOnFailing = (i: number): boolean =>
  depsOf(i).some((d) => d === FAILING || dependsOnFailing(d));

describe("the goal graph of a real run", () => {
  it("has every goal with its outcome, every input as a waited edge, the root cause apart", () => {
    const g = runGraph(log.run(1), log.events(1));
    expect(g.run).toBe(1);
    expect(g.runState).toBe("ended");
    expect(g.targets).toEqual(files);
    const byName = new Map(g.nodes.map((n) => [n.name, n]));
    expect([...byName.keys()].sort()).toEqual(Array.from({ length: N }, (_, i) => `n${i}`).sort());
    const failing = byName.get(`n${FAILING}`)!;

    for (let i = 0; i < N; i++) {
      const n = byName.get(`n${i}`)!;
      expect(n.kind).toBe("derivation");
      expect(n.key).toBe(`drv:${n.drvPath}#normal`);
      expect(n.drvPath).toMatch(new RegExp(`/[0-9a-z]{32}-n${i}\\.drv$`));
      expect(n.targets).toEqual([files[i]]);
      expect(n.durationMs).toBeGreaterThanOrEqual(0);
      if (i === FAILING) {
        expect(n).toMatchObject({ state: "failed", status: "PermanentFailure", rootCause: true });
        expect(n.error).toMatch(/^builder for '.*-n2\.drv' failed with exit code 1/);
        expect(n.failedBecauseOf).toBeUndefined();
      } else if (dependsOnFailing(i)) {
        expect(n).toMatchObject({ state: "dependencyFailed", status: "DependencyFailed" });
        expect(n.rootCause).toBeUndefined();
        // Blamed on the failing input when it is a direct one (else on the input that failed
        // because of it).
        if (depsOf(i).includes(FAILING)) expect(n.failedBecauseOf).toContain(failing.key);
        else expect(n.failedBecauseOf).not.toHaveLength(0);
      } else {
        expect(n).toMatchObject({ state: "built", status: "Built" });
        expect(n.buildMs).toBeGreaterThanOrEqual(0);
        expect(n.rootCause).toBeUndefined();
        expect(n.error).toBeUndefined();
      }
    }

    // One edge per input: the goal that needed it, waiting for it.
    const expected = Array.from({ length: N }, (_, i) =>
      depsOf(i).map((d) => [`n${i}`, `n${d}`, "input", true]),
    ).flat();
    const name = (key: string) => g.nodes.find((n) => n.key === key)!.name;
    const edges = g.edges.map((e) => [name(e.from), name(e.to), e.kind, e.waited]);
    expect(edges.sort()).toEqual(expected.sort());
  });

  it("marks the critical path criticalPath() finds, goals and the edges between them", () => {
    const g = runGraph(log.run(1), log.events(1));
    const p = criticalPath(log.run(1), log.events(1));
    expect(g.criticalPathMs).toBeCloseTo(p.totalMs, 3);
    expect(g.nodes.filter((n) => n.onCriticalPath).map((n) => n.key)).toEqual(
      g.nodes.filter((n) => p.steps.some((s) => s.goal === n.key)).map((n) => n.key),
    );
    const onPath = g.edges.filter((e) => e.onCriticalPath).map((e) => [e.from, e.to]);
    expect(onPath).toHaveLength(p.steps.length - 1);
    for (let i = 1; i < p.steps.length; i++)
      expect(onPath).toContainEqual([p.steps[i]!.goal, p.steps[i - 1]!.goal]);
  });

  it("writes DOT and Mermaid that parse to the same graph", () => {
    const g = runGraph(log.run(1), log.events(1));
    const dot = parseDot(graphDot(g));
    expect([...dot.nodes.keys()]).toEqual(g.nodes.map((n) => n.key));
    expect(dot.edges.map((e) => [e.from, e.to])).toEqual(g.edges.map((e) => [e.from, e.to]));
    const failing = g.nodes.find((n) => n.rootCause)!;
    expect(dotLabelText(dot.nodes.get(failing.key)!.label!)).toMatch(
      /^n2\nfailed \(root cause\), \d+ ms$/,
    );
    expect(dot.nodes.get(failing.key)!.penwidth).toBe("3");

    const m = parseMermaidFlowchart(graphMermaid(g));
    expect([...m.nodes.values()].map((l) => l.split("\n")[0])).toEqual(g.nodes.map((n) => n.name));
    expect(m.edges).toHaveLength(g.edges.length);
    const id = `g${g.nodes.indexOf(failing)}`;
    expect(m.classes.get("rootCause")!.members).toEqual([id]);
    expect(m.classes.get("dependencyFailed")!.members).toHaveLength(
      g.nodes.filter((n) => n.state === "dependencyFailed").length,
    );

    if (hasDot) {
      const r = spawnSync("dot", ["-Tsvg"], { input: graphDot(g) });
      expect(r.stderr.toString()).toBe("");
      expect(r.status).toBe(0);
    }
  });
});

// --- Hand-made logs ----------------------------------------------------------------------------

const S = "/nix/store";
const drv = (name: string, suffix = "") =>
  `drv:${S}/${name.padEnd(32, "a")}-${name}.drv#${suffix || "normal"}`;
const out = (name: string) => `${S}/${name.padEnd(32, "b")}-${name}`;
const sub = (name: string) => `sub:${out(name)}`;

const row = (state: RunRow["state"] = "ended"): RunRow => ({
  id: 4,
  started: 0,
  ended: state === "ended" ? 1 : undefined,
  exitCode: state === "ended" ? 1 : undefined,
  request: { command: "build", targets: [], options: {}, cwd: "/" },
  pid: 1,
  resumes: undefined,
  state,
});

/** A run's events from their bodies: seq, mono (10 ms apart) and wall stamped in order. */
function events(targets: string[], bodies: Record<string, unknown>[]): RunEvent[] {
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
  return all.map((b, i) => ({ seq: i + 1, mono: i * 10, wall: 1000 + i, ...b }) as RunEvent);
}
const created = (goal: string, cause: GoalCause, decision = "new") => ({
  type: "goal.created",
  goal,
  kind: goal.startsWith("sub:") ? "substitution" : "derivation",
  decision,
  cause,
  input: {},
});
const target = (index: number): GoalCause => ({ kind: "target", index });
const waits = (goal: string, on: string[]) => ({ type: "goal.waits", goal, on });
const done = (goal: string, status: string, error = "") => ({
  type: "goal.done",
  goal,
  kind: goal.startsWith("sub:") ? "substitution" : "derivation",
  status,
  error,
  outputs: {},
});

describe("the goal graph of hand-made logs", () => {
  it("cancelled goals blame the failure that stopped the run; substitutions and references are edges", () => {
    const [top, leaf, slow] = [drv("top"), drv("leaf"), drv("slow")];
    const [src, ref] = [sub("src"), sub("ref")];
    const g = runGraph(
      row(),
      events(
        ["top.json", "slow.json"],
        [
          created(top, target(0)),
          created(slow, target(1)),
          created(leaf, { kind: "input", of: top }),
          created(src, { kind: "inputSource", of: top }),
          created(ref, { kind: "reference", of: src }),
          waits(top, [leaf, src]),
          done(ref, "alreadyValid"),
          done(src, "substituted"),
          done(leaf, "PermanentFailure", "builder for 'leaf' failed with exit code 2;\nmore"),
          { type: "worker.cancelAll", cause: leaf },
          { type: "goal.woken", goal: top, by: leaf },
          done(top, "DependencyFailed", "1 dependencies of derivation 'top' failed to build"),
          { type: "goal.stopped", goal: slow, by: "cancelAll" },
          done(slow, "MiscFailure", "build cancelled"),
          { type: "run.ended", exitCode: 1 },
        ],
      ),
    );
    const node = (key: string) => g.nodes.find((n) => n.key === key)!;
    expect(g.nodes.map((n) => n.key)).toEqual([top, slow, leaf, src, ref]);
    expect(node(leaf)).toMatchObject({
      state: "failed",
      rootCause: true,
      error: "builder for 'leaf' failed with exit code 2;",
      durationMs: 60,
    });
    expect(node(top)).toMatchObject({ state: "dependencyFailed", failedBecauseOf: [leaf] });
    expect(node(top).targets).toEqual(["top.json"]);
    expect(node(slow)).toMatchObject({ state: "cancelled", failedBecauseOf: [leaf] });
    expect(node(slow).rootCause).toBeUndefined();
    expect(node(src)).toMatchObject({
      kind: "substitution",
      name: "src",
      path: out("src"),
      state: "substituted",
    });
    expect(node(src).drvPath).toBeUndefined();
    expect(node(ref).state).toBe("alreadyValid");
    expect(g.edges).toEqual([
      { from: top, to: leaf, kind: "input", waited: true },
      { from: top, to: src, kind: "inputSource", waited: true },
      { from: src, to: ref, kind: "reference", waited: false },
    ]);
    // slow ended last, and it waited for nothing: it is the critical path by itself.
    expect(g.nodes.filter((n) => n.onCriticalPath).map((n) => n.key)).toEqual([slow]);
    expect(g.criticalPathMs).toBe(140);

    const dot = parseDot(graphDot(g));
    expect(dot.edges.find((e) => e.to === ref)!.attrs).toMatchObject({
      style: "dashed",
      label: "reference",
    });
    const m = parseMermaidFlowchart(graphMermaid(g));
    expect(m.edges.map((e) => `${e.from} ${e.arrow}${e.label ?? ""} ${e.to}`)).toEqual([
      "g0 --> g2",
      "g0 -->inputSource g3",
      "g3 -.->reference g4",
    ]);
    expect(m.nodes.get("g1")).toBe("slow\ncancelled, 120 ms");
    expect(m.nodes.get("g3")).toBe("src (substitution)\nsubstituted, 40 ms");
  });

  it("an interrupted run: unfinished goals, no critical path, restarts and modes named", () => {
    const [top, again, checked] = [drv("top"), drv("top", "normal@2"), drv("chk", "check")];
    const g = runGraph(
      row("interrupted"),
      events(
        ["top.json"],
        [
          created(top, target(0)),
          created(checked, { kind: "input", of: top }),
          waits(top, [checked]),
          done(checked, "Built"),
          done(top, "Built"),
          created(again, target(0), "restarted"),
          { type: "goal.wants", goal: again, outputs: ["dev"], cause: target(0) },
        ],
      ),
    );
    const node = (key: string) => g.nodes.find((n) => n.key === key)!;
    expect(g.runState).toBe("interrupted");
    expect(node(again)).toMatchObject({
      name: "top",
      attempt: 2,
      state: "unfinished",
      status: null,
      durationMs: null,
      targets: ["top.json"],
    });
    expect(node(checked)).toMatchObject({ name: "chk", mode: "check", state: "built" });
    expect(nodeLabelLines(node(again))).toEqual(["top (attempt 2)", "unfinished"]);
    expect(nodeLabelLines(node(checked))).toEqual(["chk (--check)", "built, 20 ms"]);
    // The first instance of the target ended: that is the path so far.
    expect(g.criticalPathMs).toBe(50);
    expect(g.nodes.filter((n) => n.onCriticalPath).map((n) => n.key)).toEqual([top, checked]);

    const never = runGraph(row("interrupted"), events(["top.json"], [created(top, target(0))]));
    expect(never.criticalPathMs).toBeNull();
    expect(never.nodes).toEqual([
      expect.objectContaining({ key: top, state: "unfinished", durationMs: null }),
    ]);
    expect(never.nodes[0]!.onCriticalPath).toBeUndefined();
    expect(never.edges).toEqual([]);
  });

  it("names: the store path's name without hash, and .drv for derivations only", () => {
    expect(storePathName(`${S}/${"a".repeat(32)}-hello-2.12.drv`, "derivation")).toBe("hello-2.12");
    expect(storePathName(`${S}/${"a".repeat(32)}-x.drv`, "substitution")).toBe("x.drv");
    expect(storePathName("/elsewhere/no-hash", "substitution")).toBe("no-hash");
  });
});

// --- The writers -------------------------------------------------------------------------------

describe("graph formats", () => {
  it("knows its formats, and says which there are", () => {
    expect(parseGraphFormat("DOT")).toBe("dot");
    expect(parseGraphFormat("mermaid")).toBe("mermaid");
    expect(() => parseGraphFormat("svg")).toThrow(UnknownGraphFormatError);
    expect(() => parseGraphFormat("svg")).toThrow(
      /^unknown graph format 'svg'; use --format dot, mermaid or json \(for an image, pipe DOT to Graphviz: nixstate graph --format dot \| dot -Tsvg > run\.svg\)$/,
    );
  });
});

const OUTCOMES: Outcome[] = [
  "built",
  "substituted",
  "alreadyValid",
  "validUnderLock",
  "cachedFailure",
  "failed",
  "dependencyFailed",
  "cancelled",
  "noSubstituter",
  "unfinished",
];

/** What a DOT or Mermaid file can hold of a string: lone surrogates and controls are U+FFFD. */
const dotClean = (s: string) =>
  s
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD")
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "\uFFFD");

/** Any text: every code point, lone surrogates and controls included, and the tricky ones. */
const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 16 }),
  fc.string({ unit: "binary-ascii", maxLength: 16 }),
  fc.string({ unit: fc.constantFrom(...'\\"#;:<>&`%[](){}|\n\r\t\u0000 -ab'), maxLength: 12 }),
  fc.constantFrom("end", "style:#35;", "classDef x fill:#fff;", "\\N", "a\\", "#quot;", "<br>"),
  fc.string({ unit: "grapheme", maxLength: 8 }).map((s) => `${s}\ud800`),
);

const graphArb: fc.Arbitrary<RunGraph> = fc
  .uniqueArray(text, { minLength: 1, maxLength: 6, selector: (k) => dotClean(k) })
  .chain((keys) =>
    fc.record({
      run: fc.integer({ min: 1, max: 1e6 }),
      runState: fc.constantFrom("ended" as const, "interrupted" as const, "running" as const),
      targets: fc.array(text, { maxLength: 2 }),
      nodes: fc.tuple(
        ...keys.map((key) =>
          fc.record(
            {
              key: fc.constant(key),
              kind: fc.constantFrom("derivation" as const, "substitution" as const),
              name: text,
              drvPath: text,
              state: fc.constantFrom(...OUTCOMES),
              status: fc.option(text),
              durationMs: fc.option(fc.nat().map((n) => n / 1000)),
              mode: fc.constantFrom("repair", "check"),
              attempt: fc.integer({ min: 2, max: 9 }),
              error: text,
              targets: fc.array(text, { minLength: 1, maxLength: 2 }),
              rootCause: fc.constant(true as const),
              failedBecauseOf: fc.array(fc.constantFrom(...keys), { minLength: 1 }),
              onCriticalPath: fc.constant(true as const),
            },
            { requiredKeys: ["key", "kind", "name", "state", "status", "durationMs"] },
          ),
        ),
      ) as fc.Arbitrary<GraphNode[]>,
      edges: fc.array(
        fc.record(
          {
            from: fc.constantFrom(...keys),
            to: fc.constantFrom(...keys),
            kind: fc.constantFrom(
              "input" as const,
              "inputSource" as const,
              "substitution" as const,
              "reference" as const,
              "repair" as const,
              "waits" as const,
            ),
            waited: fc.boolean(),
            onCriticalPath: fc.constant(true as const),
          },
          { requiredKeys: ["from", "to", "kind", "waited"] },
        ),
        { maxLength: 8 },
      ),
      criticalPathMs: fc.option(fc.nat()),
    }),
  );

describe("graph formats, for any names", () => {
  it("DOT parses as Graphviz reads it: every id and label comes back", () => {
    fc.assert(
      fc.property(graphArb, (g) => {
        const dot = parseDot(graphDot(g));
        // Ids come back as the (cleaned) keys: one node per key, edges between declared nodes.
        const ids = [...dot.nodes.keys()];
        expect(ids.map(dotLabelText)).toEqual(g.nodes.map((n) => dotClean(n.key)));
        for (const e of dot.edges) {
          expect(dot.nodes.has(e.from)).toBe(true);
          expect(dot.nodes.has(e.to)).toBe(true);
        }
        expect(dot.edges).toHaveLength(g.edges.length);
        g.nodes.forEach((n, i) => {
          const attrs = [...dot.nodes.values()][i]!;
          expect(dotLabelText(attrs.label!)).toBe(dotClean(nodeLabelLines(n).join("\n")));
          expect(dotLabelText(attrs.tooltip!)).toBe(
            dotClean(n.error ? `${n.key}\n${n.error}` : n.key),
          );
        });
      }),
      { numRuns: 300 },
    );
  });

  it("Mermaid labels hold no quote or HTML and decode to the names; ids are safe", () => {
    fc.assert(
      fc.property(graphArb, (g) => {
        const m = parseMermaidFlowchart(graphMermaid(g));
        expect([...m.nodes.keys()]).toEqual(g.nodes.map((_, i) => `g${i}`));
        // Lone surrogates are written as their code point, which shows as U+FFFD.
        const shown = (s: string) => dotClean(s).replace(/\uFFFD/g, "?");
        expect([...m.nodes.values()].map(shown)).toEqual(
          g.nodes.map((n) => shown(nodeLabelLines(n).join("\n"))),
        );
        expect(m.edges).toHaveLength(g.edges.length);
        for (const raw of graphMermaid(g).matchAll(/\["([^"]*)"\]/g))
          expect(() => mermaidLabelText(raw[1]!)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it("JSON round-trips", () => {
    fc.assert(
      fc.property(graphArb, (g) => {
        expect(JSON.parse(renderGraph(g, "json"))).toEqual(g);
      }),
      { numRuns: 200 },
    );
  });

  it.skipIf(!hasDot)("Graphviz itself takes the DOT (dot is installed here)", () => {
    fc.assert(
      fc.property(graphArb, (g) => {
        const r = spawnSync("dot", ["-Tjson0"], { input: graphDot(g) });
        expect(r.stderr.toString()).toBe("");
        expect(r.status).toBe(0);
        const parsed = JSON.parse(r.stdout.toString()) as { objects?: unknown[] };
        expect(parsed.objects ?? []).toHaveLength(g.nodes.length);
      }),
      { numRuns: 40 },
    );
  });
});
