// The end summary: counts, the tree of what was built (or the slowest of a big run), root causes
// with their log tails and the goals that failed because of them.
import { describe, expect, it } from "vitest";
import { endSummary, SummaryEvents } from "../../../src/cli/progress/end-summary.ts";
import { ProgressModel } from "../../../src/cli/progress/progress-model.ts";
import type { RunEvent } from "../../../src/events/run-event.ts";
import { recorded } from "./recorded-runs.ts";

function summarize(events: RunEvent[], tails: Record<string, string[]> = {}, o = {}): string {
  const m = new ProgressModel();
  const kept = new SummaryEvents();
  for (const e of events) {
    kept.listener(e);
    m.apply(e);
  }
  const logTail = (drv: string, n: number) => tails[drv]?.slice(-n);
  return endSummary(m, kept.index, { logTail, ...o }).join("\n");
}

/** A run of derivations `name → inputs`, each built for `ms[name]` ms, `failing` failing. */
function run(
  drvs: Record<string, string[]>,
  failing: string[] = [],
  ms: Record<string, number> = {},
): RunEvent[] {
  const key = (n: string) => `drv:/s/${n.padEnd(32, "x")}-${n}.drv#normal`;
  const out: Omit<RunEvent, "seq" | "wall">[] = [];
  let t = 0;
  const stamp = () => ({ mono: t++ });
  out.push({
    type: "run.started",
    request: { command: "build", targets: [], options: {}, cwd: "/" },
    settings: { maxJobs: 1 },
    version: "0",
    host: "h",
    pid: 1,
    ...stamp(),
  } as never);
  const inputs = new Set(Object.values(drvs).flat());
  const tops = Object.keys(drvs).filter((n) => !inputs.has(n));
  for (const [i, n] of tops.entries())
    out.push({
      type: "goal.created",
      goal: key(n),
      kind: "derivation",
      decision: "new",
      cause: { kind: "target", index: i },
      input: {},
      ...stamp(),
    } as never);
  for (const [n, deps] of Object.entries(drvs)) {
    for (const d of deps)
      out.push({
        type: "goal.created",
        goal: key(d),
        kind: "derivation",
        decision: "new",
        cause: { kind: "input", of: key(n) },
        input: {},
        ...stamp(),
      } as never);
    if (deps.length)
      out.push({ type: "goal.waits", goal: key(n), on: deps.map(key), ...stamp() } as never);
  }
  // Leaves first: each goal after its inputs.
  const order: string[] = [];
  const ordered = new Set<string>();
  const visit = (n: string) => {
    if (ordered.has(n)) return;
    ordered.add(n);
    for (const d of drvs[n] ?? []) visit(d);
    order.push(n);
  };
  for (const n of Object.keys(drvs)) visit(n);
  const failed = new Set<string>();
  for (const n of order) {
    const depFailed = (drvs[n] ?? []).some((d) => failed.has(d));
    if (depFailed) {
      failed.add(n);
      out.push({
        type: "goal.done",
        goal: key(n),
        kind: "derivation",
        status: "DependencyFailed",
        error: `1 dependencies of derivation '/s/${n}.drv' failed to build`,
        outputs: {},
        ...stamp(),
      } as never);
      continue;
    }
    out.push({
      type: "builder.started",
      goal: key(n),
      where: "local",
      machine: "localhost",
      ...stamp(),
    } as never);
    t += ms[n] ?? 10;
    out.push({
      type: "builder.exited",
      goal: key(n),
      how: "",
      startTime: 0,
      stopTime: 0,
      logBytes: 0,
      ...stamp(),
    } as never);
    if (failing.includes(n)) {
      failed.add(n);
      out.push({
        type: "goal.done",
        goal: key(n),
        kind: "derivation",
        status: "PermanentFailure",
        error: `builder for '/s/${n}.drv' failed with exit code 2;\nlast 1 log lines:\n> oops\nFor full logs, run 'nixstate log /s/${n}.drv'.`,
        outputs: {},
        ...stamp(),
      } as never);
    } else {
      out.push({
        type: "goal.done",
        goal: key(n),
        kind: "derivation",
        status: "Built",
        error: "",
        outputs: {},
        ...stamp(),
      } as never);
    }
  }
  out.push({ type: "run.ended", exitCode: failed.size ? 100 : 0, ...stamp() } as never);
  return out.map((e, i) => ({ ...e, seq: i + 1, wall: 0 }) as RunEvent);
}

describe("the end summary", () => {
  it("a recorded run: counts, what was built, the root cause with its log's last lines", () => {
    const events = recorded("build-run.jsonl");
    const fails = events.find((e) => e.type === "goal.done" && e.goal.includes("-fails"))!;
    const drv = (fails as { goal: string }).goal.slice(4, -"#normal".length);
    const text = summarize(events, { [drv]: ["step 1", "step 2", "failing now"] });
    expect(text).toMatch(/^summary: 2 built, 1 failed, 1 up to date, in \d/);
    expect(text).toMatch(/\n {2}uses +\d+ms\n {2}└─ hello +\d+ms\n/);
    expect(text).toContain(`root cause: fails (${drv})\n  builder failed with exit code 3\n`);
    expect(text).toContain(
      "  the last 3 lines of its build log:\n  │ step 1\n  │ step 2\n  │ failing now\n",
    );
    expect(text).toContain(`  the whole log: nixstate log ${drv}`);
  });

  it("counts the goals that failed because of each root cause, and shows them in the tree", () => {
    const text = summarize(
      run({ top: ["mid", "side"], mid: ["leaf", "ok"], side: ["ok"], leaf: [], ok: [] }, ["leaf"]),
    );
    expect(text).toMatch(/^summary: 2 built, 1 failed, 2 not built because of a failure/);
    expect(text).toContain("2 goals not built because of it: top, mid");
    expect(text).toContain("top not built");
    expect(text).toContain("leaf failed");
    // Without a log in the store: the lines Nix's message quotes.
    expect(text).toContain("  the last line of its build log:\n  │ oops\n");
  });

  it("lists the slowest of a big run, and how many more", () => {
    const drvs: Record<string, string[]> = {};
    const ms: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      drvs[`p${i}`] = i === 0 ? [] : [`p${i - 1}`];
      ms[`p${i}`] = i === 7 ? 5000 : 10 + i;
    }
    const text = summarize(run(drvs, [], ms), {}, { treeLimit: 20, top: 5 });
    const lines = text.split("\n");
    expect(lines[1]).toBe("slowest 5 of 40:");
    expect(lines[2]).toMatch(/^ {2}p7 +5\.0s$/);
    expect(lines[3]).toMatch(/^ {2}p39 +50ms$/);
    expect(lines).toHaveLength(1 + 1 + 5 + 1);
    expect(lines.at(-1)).toMatch(/^ {2}… and 35 more \(\d+\.\ds of work in all\)$/);
  });

  it("blames a cascade 5000 goals deep on its root cause, quickly", () => {
    const drvs: Record<string, string[]> = {};
    for (let i = 0; i < 5000; i++) drvs[`c${i}`] = i === 0 ? [] : [`c${i - 1}`];
    const events = run(drvs, ["c0"]);
    const started = performance.now();
    const text = summarize(events);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(text).toContain("4999 goals not built because of it: ");
  });

  it("says when there was nothing to do", () => {
    const events = run({ a: [] }).filter((e) => !e.type.startsWith("builder."));
    const done = events.find((e) => e.type === "goal.done") as { status: string };
    done.status = "AlreadyValid";
    expect(summarize(events)).toMatch(/^summary: nothing to do, 1 up to date, in \d+ms$/);
  });
});
