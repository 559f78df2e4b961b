// `nixstate graph` run as a user would: the README's example (its command and output read from
// README.md), every format on the same run, and the errors.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { parseDot, parseMermaidFlowchart } from "../events/graph-syntax.ts";
import { repoRoot } from "../vectors.ts";
import { type CliResult, runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-graph-cli-"));
const stateDir = join(root, "state");
const env = { NIXSTATE_STATE_DIR: stateDir, NIXSTATE_STORE_DIR: "" };
const cli = (...args: string[]) => runCli(args, { env, cwd: repoRoot });
const text = (r: CliResult) => r.stdout.toString();
const hasDot = spawnSync("dot", ["-V"]).status === 0;
if (!hasDot && process.env.CI === "true")
  throw new Error("Graphviz's dot not found but CI=true: install graphviz (.ci/run does)");

beforeAll(() => {
  const build = cli("build", "-k", "examples/broken/poster.json");
  expect(build.status).toBe(100);
}, 120_000);

afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

/** The README's "goal graph" example: the command after `$ ` and the lines it prints. */
function readmeExample(): { args: string[]; output: string[] } {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### The goal graph of a run"));
  const block = /```console\n\$ nixstate (.*)\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error("README.md: no console example under 'The goal graph of a run'");
  return { args: block[1]!.split(" "), output: block[2]!.trimEnd().split("\n") };
}

/** Durations differ from run to run. */
const timeless = (line: string) => line.replace(/\d+(\.\d+)? (ms|s)\b/g, "<t>");

describe("nixstate graph", () => {
  it("prints the README's example", () => {
    const { args, output } = readmeExample();
    expect(args).toEqual(["graph", "last", "--format", "mermaid"]);
    const r = cli(...args);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(text(r).trimEnd().split("\n").map(timeless)).toEqual(output.map(timeless));
  });

  it("writes DOT by default, the same graph as JSON and Mermaid", () => {
    const dot = cli("graph");
    expect(dot.status).toBe(0);
    const d = parseDot(text(dot));
    expect(d.name).toBe("nixstate run 1");

    const json = JSON.parse(text(cli("graph", "1", "--format", "json")));
    expect(JSON.parse(text(cli("graph", "--json")))).toEqual(json);
    expect(json).toMatchObject({
      run: 1,
      runState: "ended",
      targets: ["examples/broken/poster.json"],
    });
    const byName = Object.fromEntries(
      json.nodes.map((n: { name: string }) => [n.name, n]),
    ) as Record<string, Record<string, unknown>>;
    expect(Object.keys(byName)).toEqual(["poster", "shout", "greeting"]);
    expect(byName.shout).toMatchObject({
      state: "failed",
      status: "PermanentFailure",
      rootCause: true,
    });
    expect(byName.poster).toMatchObject({
      state: "dependencyFailed",
      failedBecauseOf: [byName.shout!.key],
      targets: ["examples/broken/poster.json"],
    });
    expect(byName.greeting).toMatchObject({ state: "built", status: "Built" });
    for (const n of Object.values(byName)) {
      expect(n.kind).toBe("derivation");
      expect(n.drvPath).toMatch(/^\/.*\/[0-9a-z]{32}-[a-z]+\.drv$/);
      expect(n.durationMs).toBeGreaterThanOrEqual(0);
      expect(n.onCriticalPath).toBe(true);
    }
    expect(json.edges).toEqual([
      {
        from: byName.poster!.key,
        to: byName.shout!.key,
        kind: "input",
        waited: true,
        onCriticalPath: true,
      },
      {
        from: byName.shout!.key,
        to: byName.greeting!.key,
        kind: "input",
        waited: true,
        onCriticalPath: true,
      },
    ]);
    expect(json.criticalPathMs).toBeGreaterThan(0);

    expect([...d.nodes.keys()]).toEqual(json.nodes.map((n: { key: string }) => n.key));
    expect(d.edges.map((e) => [e.from, e.to])).toEqual(
      json.edges.map((e: { from: string; to: string }) => [e.from, e.to]),
    );
    const m = parseMermaidFlowchart(text(cli("graph", "--format", "mermaid")));
    expect(m.nodes.size).toBe(3);
    expect(m.edges.map((e) => `${e.from}${e.arrow}${e.to}`)).toEqual(["g0==>g1", "g1==>g2"]);

    if (hasDot) {
      const svg = spawnSync("dot", ["-Tsvg"], { input: dot.stdout });
      expect(svg.stderr.toString()).toBe("");
      expect(svg.status).toBe(0);
      expect(svg.stdout.toString()).toContain("failed (root cause)");
    }
  });

  it("errors say what to do", () => {
    const format = cli("graph", "--format", "svg");
    expect(format.status).toBe(1);
    expect(format.stderr).toBe(
      "error: unknown graph format 'svg'; use --format dot, mermaid or json (for an image, pipe DOT to Graphviz: nixstate graph --format dot | dot -Tsvg > run.svg)\n",
    );
    const run = cli("graph", "9");
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      "error: there is no run 9 in the run log ('nixstate runs' lists them)\n",
    );
    const name = cli("graph", "first");
    expect(name.status).toBe(1);
    expect(name.stderr).toMatch(
      /^error: a run is named by its number \(see 'nixstate runs'\) or 'last', not 'first'\n$/,
    );
    const empty = runCli(["graph", "--state-dir", join(root, "empty")]);
    expect(empty.status).toBe(1);
    expect(empty.stderr).toMatch(/^error: no run has been recorded yet\n$/);
    expect(empty.stdout.toString()).toBe("");
  });
});
