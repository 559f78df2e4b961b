// A run killed outright (SIGKILL, at random moments) keeps its log up to its last batch: `runs`
// shows it as interrupted, `replay` replays it up to the kill, and `runs resume` completes it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { runCli } from "../cli/run-cli.ts";
import { repoRoot } from "../vectors.ts";
import { writeJsonDag } from "./json-dag.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-durable-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

/** Start `nixstate ARGS` and SIGKILL it `ms` after its first build started; resolves when gone. */
function killAfter(args: string[], env: NodeJS.ProcessEnv, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, "bin/nixstate.js"), ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    child.stderr.on("data", (d) => {
      stderr += d;
      if (!timer && stderr.includes("building '"))
        timer = setTimeout(() => child.kill("SIGKILL"), ms);
    });
    child.on("exit", () => {
      clearTimeout(timer);
      resolve(stderr);
    });
  });
}

interface RunJson {
  id: number;
  state: string;
  built: number;
  alreadyValid: number;
  failed: number;
  resumes?: number;
}

describe("a run killed with SIGKILL", () => {
  it("is listed as interrupted, replays up to the kill, and resumes to completion", async () => {
    const stateDir = join(root, "state");
    const env = { NIXSTATE_STATE_DIR: stateDir, NIXSTATE_STORE_DIR: "" };
    const files = writeJsonDag(join(root, "dag"), 200, { sleep: () => 0.05 });
    const args = ["build", "-j2", ...files];
    // Ten random moments, each in what is left of the build (5 s of builders at -j2).
    const moments = Array.from({ length: 10 }, () => 50 + Math.floor(Math.random() * 400));
    for (const ms of moments) await killAfter(args, env, ms);

    // The next start takes back what the killed runs held: no locks, no temp roots of theirs.
    const store = LocalStore.open({ stateDir, env: {} });
    try {
      const count = (t: string) =>
        store.database.prepare(`SELECT count(*) FROM ${t}`).pluck().get();
      expect([count("PathLocks"), count("TempRoots")]).toEqual([0, 0]);
    } finally {
      store.close();
    }

    const runs = JSON.parse(runCli(["runs", "--json"], { env }).stdout.toString()) as RunJson[];
    expect(runs).toHaveLength(moments.length);
    const interrupted = runs.filter((r) => r.state === "interrupted");
    // A kill after the build ended would be no interruption; the moments are well inside it.
    expect(interrupted.length).toBeGreaterThanOrEqual(moments.length - 1);
    // Each killed run made progress that later runs found valid.
    expect(runs.reduce((n, r) => n + r.built, 0)).toBeGreaterThan(0);
    for (const r of interrupted) {
      const replay = runCli(["replay", String(r.id)], { env });
      expect(replay.stderr).toBe("");
      expect(replay.status).toBe(0);
      expect(replay.stdout.toString()).toMatch(
        /all equal to the record \(interrupted run: replayed up to the last event logged\)/,
      );
    }
    const show = runCli(["runs", "show", String(interrupted.at(-1)!.id)], { env });
    expect(show.stdout.toString()).toMatch(/: interrupted\n/);
    expect(show.stdout.toString()).toMatch(/resume it with: nixstate runs resume \d+/);

    const last = interrupted.at(-1)!.id;
    const resumed = runCli(["runs", "resume", String(last)], { env });
    expect(resumed.status).toBe(0);
    expect(resumed.stdout.toString().trim().split("\n")).toHaveLength(200);
    const after = JSON.parse(runCli(["runs", "--json"], { env }).stdout.toString()) as RunJson[];
    const final = after.at(-1)!;
    expect(final.resumes).toBe(last);
    expect(final.state).toBe("ended");
    expect(final.failed).toBe(0);
    expect(final.built + final.alreadyValid).toBe(200);
    // Nothing the killed runs left half-done: the store verifies.
    const verify = runCli(["store", "verify"], { env });
    expect(verify.stderr).toMatch(/^checked \d+ paths: all good\n$/);
    expect(verify.status).toBe(0);
  }, 120_000);
});
