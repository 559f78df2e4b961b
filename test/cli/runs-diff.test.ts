// `nixstate runs diff A B` on real runs: builds recorded by the real CLI, then diffed.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunDiff } from "../../src/events/run-diff.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { type CliResult, runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-runs-diff-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

function diffCli(args: string[]): CliResult {
  return runCli(["runs", "diff", ...args]);
}

interface Node {
  deps: number[];
  env?: Record<string, string>;
}

/** Writes JSON derivation `n<i>.json` for each node: an echo naming its inputs' outputs. */
function writeDag(dir: string, nodes: Node[]): string[] {
  mkdirSync(dir, { recursive: true });
  return nodes.map(({ deps, env }, i) => {
    const f = join(dir, `n${i}.json`);
    const refs = Object.fromEntries(deps.map((d, k) => [`dep${k}`, `n${d}.json`]));
    writeFileSync(
      f,
      JSON.stringify({
        builder: "/bin/sh",
        args: ["-c", `echo n${i} ${deps.map((_, k) => `$dep${k}`).join(" ")} > $out`],
        env: { name: `n${i}`, ...refs, ...env },
        inputDrvs: Object.fromEntries(deps.map((d) => [`n${d}.json`, ["out"]])),
      }),
    );
    return f;
  });
}

function build(state: string, targets: string[]): void {
  const r = runCli(["build", "-j2", "-k", "--state-dir", state, ...targets]);
  expect(r.stderr).not.toMatch(/error:/);
  expect(r.status).toBe(0);
}

function diffJson(state: string, a: string, b: string): RunDiff {
  const r = diffCli([a, b, "--json", "--state-dir", state]);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout.toString()) as RunDiff;
}

describe("nixstate runs diff", () => {
  it("a 200-node DAG with one node's env changed: that node is the one root cause, its dependents the consequences", () => {
    const state = join(root, "dag-state");
    const dir = join(root, "dag");
    const N = 200;
    const CHANGED = 7;
    const deps = (i: number) =>
      i === 0 ? [] : [...new Set([Math.floor(i / 2), Math.floor(i / 3)])];
    const dag = (greeting: string) =>
      writeDag(
        dir,
        Array.from({ length: N }, (_, i) => ({
          deps: deps(i),
          ...(i === CHANGED ? { env: { greeting } } : {}),
        })),
      );
    build(state, dag("hello"));
    const targets = dag("hi");
    build(state, targets);

    // Its dependents: every node with a chain of inputs down to it.
    const dependent = (i: number): boolean => deps(i).some((d) => d === CHANGED || dependent(d));
    const expected = Array.from({ length: N }, (_, i) => i)
      .filter(dependent)
      .map((i) => `n${i}`);

    const d = diffJson(state, "1", "2");
    expect(d.rootCauses).toHaveLength(1);
    const [root0] = d.rootCauses;
    expect(root0!.name).toBe(`n${CHANGED}`);
    expect(root0!.status).toBe("Built");
    expect(root0!.changes).toEqual([{ kind: "env", key: "greeting", old: "hello", new: "hi" }]);
    expect(root0!.consequences.map((c) => c.name).sort()).toEqual([...expected].sort());
    expect(root0!.consequences.every((c) => c.status === "Built")).toBe(true);
    // Everything else was found valid: the same .drv, not built again.
    expect(d.statusChanges).toHaveLength(N - expected.length - 1);
    expect(d.statusChanges.every((s) => !s.pathChanged && s.new.status === "AlreadyValid")).toBe(
      true,
    );
    expect(d.added).toEqual([]);
    expect(d.removed).toEqual([]);

    const text = diffCli(["1", "2", "--state-dir", state]).stdout.toString();
    expect(text).toMatch(/^run 1 → run 2\n/);
    expect(text).toContain(`root cause: n${CHANGED} (`);
    expect(text).toContain(`  env 'greeting' changed: "hello" → "hi"\n`);
    expect(text).toContain(`  ${expected.length} derivations rebuilt because of it: `);
    expect(text).toContain(`${N - expected.length - 1} Built → AlreadyValid (same .drv): `);
    expect(text.indexOf("root cause")).toBeLessThan(text.indexOf("other changes"));
  }, 30_000);

  it("follows inputs a no-op run did not read into other runs, and says when no run kept them", () => {
    const state = join(root, "chain-state");
    const dir = join(root, "chain");
    const chain = (greeting: string) =>
      writeDag(dir, [{ deps: [], env: { greeting } }, { deps: [0] }, { deps: [1] }]);
    const top = () => chain("hello")[2]!;
    build(state, [top()]); // run 1 builds all three
    build(state, [top()]); // run 2 finds the target valid: it reads n2's text only
    build(state, [chain("hi")[2]!]); // run 3 rebuilds all three

    // n1 and n0 as they were are in run 1 only: found there. Run 2 had no goal for n1, yet
    // run 3 rebuilt it because of n0.
    const d = diffJson(state, "2", "3");
    expect(d.rootCauses.map((r) => [r.name, r.changes, r.consequences.map((c) => c.name)])).toEqual(
      [["n0", [{ kind: "env", key: "greeting", old: "hello", new: "hi" }], ["n1", "n2"]]],
    );

    // Once run 1 is gone, nothing kept the old n1: the diff says so, and blames nothing else.
    const log = RunLog.open(state);
    log.prune({ count: 3 });
    log.close();
    const gone = diffJson(state, "2", "3");
    expect(gone.rootCauses).toHaveLength(1);
    expect(gone.rootCauses[0]).toMatchObject({ name: "n1", changes: [] });
    expect(gone.rootCauses[0]!.missing).toMatch(/the run log has no text of '.*-n1\.drv'/);
    expect(gone.rootCauses[0]!.consequences.map((c) => c.name)).toEqual(["n2"]);
    expect(diffCli(["2", "3", "--state-dir", state]).stdout.toString()).toMatch(
      /root cause: n1 .*\n {2}unknown change: the run log has no text of/,
    );
  }, 30_000);

  it("names a run that does not exist, and how to list them", () => {
    const state = join(root, "empty-state");
    const r = diffCli(["2", "99", "--state-dir", state]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "error: there is no run 2 in the run log; 'nixstate runs' lists the recorded runs\n",
    );
    expect(diffCli(["two", "3", "--state-dir", state]).stderr).toMatch(
      /a run is named by its number/,
    );
  });
});
