// `nixstate why` and `nixstate runs critical-path` on runs made by the real `nixstate build`.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { writeJsonDerivations } from "../events/json-dag.ts";
import { type CliResult, runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-why-cli-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const stateDir = () => join(root, `state-${n++}`);

function nixstate(args: string[]): CliResult {
  return runCli(args);
}
const text = (r: CliResult) => r.stdout.toString();

const drvPath = (state: string, name: string) =>
  join(state, "store", readdirSync(join(state, "store")).find((f) => f.endsWith(`-${name}.drv`))!);

describe("nixstate why", () => {
  it("separates the root cause from the cascade: a failing leaf under two layers, built with -k", () => {
    const s = stateDir();
    const dir = join(root, "cascade");
    writeJsonDerivations(dir, {
      leaf: ["echo leaf is broken >&2; exit 3"],
      ok: ["echo ok > $out"],
      mid: ["echo $leaf $ok > $out", ["leaf", "ok"]],
      top: ["echo $mid > $out", ["mid"]],
      side: ["echo side > $out"],
    });
    const b = runCli([
      "build",
      "-k",
      "-j2",
      "--state-dir",
      s,
      join(dir, "top.json"),
      join(dir, "side.json"),
    ]);
    expect(b.status).toBe(100);
    const [top, mid, leaf] = ["top", "mid", "leaf"].map((x) => drvPath(s, x));

    const r = nixstate(["why", "--state-dir", s, top!]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = text(r);
    expect(out).toContain(`run 1: ${top} was not built: a dependency failed\n`);
    expect(out).toContain(`  because ${mid} was not built: a dependency failed\n`);
    expect(out).toContain(
      `  because ${leaf} failed by itself (PermanentFailure): builder for '${leaf}' failed with exit code 3;\n`,
    );
    expect(out).toContain(`root cause: ${leaf}\nsee its build log: nixstate log ${leaf}\n`);
    expect(out).toContain(`wanted by:\n  target ${join(dir, "top.json")} (${top})\n`);

    // The leaf itself: it failed by itself, and the chain from the target down to it.
    const l = text(nixstate(["why", "--state-dir", s, leaf!]));
    expect(l).toMatch(/^run 1: .*-leaf\.drv failed by itself \(PermanentFailure\): builder for/);
    expect(l).toContain(
      `wanted by:\n  target ${join(dir, "top.json")} (${top})\n    which needs ${mid}\n      which needs ${leaf}\n`,
    );

    // A target as it was given; JSON for tools.
    const j = JSON.parse(
      text(nixstate(["why", "--state-dir", s, "--json", join(dir, "top.json")])),
    );
    expect(j.goal.outcome).toBe("dependencyFailed");
    expect(j.failureChain.map((f: { path: string }) => f.path)).toEqual([top, mid, leaf]);
    expect(j.rootCauses.map((f: { path: string }) => f.path)).toEqual([leaf]);
    expect(j.wantedBy.target).toEqual({ index: 0, text: join(dir, "top.json") });

    // What succeeded beside it says so.
    expect(text(nixstate(["why", "--state-dir", s, drvPath(s, "ok")]))).toMatch(
      /^run 1: .*-ok\.drv was built \(its builder ran \d+ ms\)\nwanted by:\n {2}target .*top\.json .*\n {4}which needs .*-mid\.drv\n {6}which needs .*-ok\.drv\n$/,
    );
  });

  it("says an output was already valid, and what happened in an earlier run with --run", () => {
    const s = stateDir();
    const dir = join(root, "valid");
    writeJsonDerivations(dir, { hello: ["echo hello > $out"] });
    const first = runCli(["build", "--state-dir", s, join(dir, "hello.json")]);
    expect(first.status).toBe(0);
    const output = first.stdout.toString().trim();
    expect(runCli(["build", "--state-dir", s, join(dir, "hello.json")]).status).toBe(0);

    const r = nixstate(["why", "--state-dir", s, output]);
    expect(r.status).toBe(0);
    expect(text(r)).toBe(
      `run 2: ${output} (output 'out' of ${drvPath(s, "hello")}) was not built: its outputs were already valid\nwanted by:\n  target ${join(dir, "hello.json")} (${drvPath(s, "hello")})\n`,
    );
    expect(text(nixstate(["why", "--state-dir", s, "--run", "1", output]))).toMatch(
      /^run 1: .* was built \(its builder ran \d+ ms\)\n/,
    );
  });

  it("names the failure that cancelled a build (no --keep-going)", () => {
    const s = stateDir();
    const dir = join(root, "cancel");
    writeJsonDerivations(dir, {
      leaf: ["exit 3"],
      mid: ["echo $leaf > $out", ["leaf"]],
      slow: ["/bin/sleep 5; echo slow > $out"],
    });
    const b = runCli([
      "build",
      "-j2",
      "--state-dir",
      s,
      join(dir, "mid.json"),
      join(dir, "slow.json"),
    ]);
    expect(b.status).toBe(100);
    const out = text(nixstate(["why", "--state-dir", s, join(dir, "slow.json")]));
    expect(out).toMatch(
      /^run 1: .*-slow\.drv was cancelled because another build failed \(use --keep-going to go on after failures\)\n/,
    );
    expect(out).toContain(`root cause: ${drvPath(s, "leaf")}\n`);
  });

  it("says so when a failure was cached by an earlier run", () => {
    const s = stateDir();
    const dir = join(root, "cached");
    writeJsonDerivations(dir, { flaky: ["exit 1"] });
    const f = join(dir, "flaky.json");
    expect(runCli(["build", "--cache-failures", "--state-dir", s, f]).status).toBe(100);
    expect(runCli(["build", "--cache-failures", "--state-dir", s, f]).status).toBe(1);
    expect(text(nixstate(["why", "--state-dir", s, f]))).toMatch(
      /^run 2: .*-flaky\.drv was not built: it failed in an earlier build, and that failure is cached/,
    );
    expect(text(nixstate(["why", "--state-dir", s, "--run", "1", f]))).toMatch(
      /^run 1: .*-flaky\.drv failed by itself \(PermanentFailure\): builder for .* failed with exit code 1\n/,
    );
  });

  it("errors say what to do", () => {
    const s = stateDir();
    const none = nixstate([
      "why",
      "--state-dir",
      s,
      "/nix/store/00000000000000000000000000000000-x",
    ]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(
      /^error: no recorded run built, substituted or checked '.*-x'; .*'nixstate runs' lists the recorded runs/,
    );
    const dir = join(root, "errors");
    writeJsonDerivations(dir, { one: ["echo 1 > $out"], two: ["echo 2 > $out"] });
    runCli(["build", "--state-dir", s, join(dir, "one.json")]);
    runCli(["build", "--state-dir", s, join(dir, "two.json")]);
    const wrongRun = nixstate(["why", "--state-dir", s, "--run", "2", drvPath(s, "one")]);
    expect(wrongRun.status).toBe(1);
    expect(wrongRun.stderr).toMatch(/^error: run 2 has no goal for '.*-one\.drv'; leave out --run/);
    expect(text(nixstate(["why", "--state-dir", s, drvPath(s, "one")]))).toMatch(/^run 1: /);
    const noRun = nixstate(["why", "--state-dir", s, "--run", "9", drvPath(s, "one")]);
    expect(noRun.stderr).toMatch(/^error: there is no run 9 in the run log/);
  });
});

describe("nixstate runs critical-path", () => {
  it("names exactly the slow chain of a DAG built with -j4", () => {
    const s = stateDir();
    const dir = join(root, "dag");
    const fast = Array.from({ length: 10 }, (_, i) => `fast${i}`);
    writeJsonDerivations(dir, {
      chain1: ["/bin/sleep 0.3; echo 1 > $out"],
      chain2: ["/bin/sleep 0.3; echo 2 > $out", ["chain1"]],
      chain3: ["/bin/sleep 0.3; echo 3 > $out", ["chain2"]],
      ...Object.fromEntries(fast.map((f) => [f, [`echo ${f} > $out`]])),
    });
    const targets = [...fast.slice(0, 5), "chain3", ...fast.slice(5)].map((f) =>
      join(dir, `${f}.json`),
    );
    expect(runCli(["build", "-j4", "--state-dir", s, ...targets]).status).toBe(0);
    const chain = ["chain1", "chain2", "chain3"].map((c) => drvPath(s, c));

    const r = nixstate(["runs", "critical-path", "--state-dir", s]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = text(r).trimEnd().split("\n");
    expect(lines[0]).toBe(`critical path of run 1: 3 goals, ending at target ${targets[5]}`);
    expect(lines.slice(2, 5).map((l) => l.replace(/^.*ms {2}|^.* s {2}/, ""))).toEqual(chain);
    // Each chain node sleeps 0.3 s; its builder's recorded span (from the spawner's report of
    // its pid to its exit) may come a few ms short of that.
    for (const l of lines.slice(2, 5))
      expect(l).toMatch(/ ((2[5-9]|[3-9]\d)\d ms|\d\.\d\d s) {2}\//);
    expect(lines[5]).toMatch(
      /^total: (\d+ ms|\d\.\d\d s) from the start of the run, ([789]\d\d ms|\d\.\d\d s) of it in builders on this path$/,
    );

    const j = JSON.parse(
      text(nixstate(["runs", "--state-dir", s, "critical-path", "1", "--json"])),
    );
    expect(j.steps.map((x: { path: string }) => x.path)).toEqual(chain);
    for (const x of j.steps) expect(x.buildMs).toBeGreaterThanOrEqual(250);
    expect(j.totalMs).toBeGreaterThanOrEqual(900);
    expect(j.buildMs).toBeGreaterThanOrEqual(750);
  });

  it("with no run recorded, says so", () => {
    const r = nixstate(["runs", "critical-path", "--state-dir", stateDir()]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: no run has been recorded yet/);
  });
});
