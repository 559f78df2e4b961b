// Three `nixstate build` processes on overlapping DAGs in one store, with `store gc` running in a
// loop beside them: every build succeeds, every derivation is built once (the others wait on its
// lock and reuse it), nothing a running build needs is collected, and the store verifies.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { writeJsonDag } from "../events/json-dag.ts";
import { repoRoot } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-concurrent-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

interface Running {
  done: Promise<{ code: number | null; stderr: string }>;
  planned: Promise<void>;
}

function start(args: string[], env: NodeJS.ProcessEnv): Running {
  const p = spawn(process.execPath, [join(repoRoot, "bin/nixstate.js"), ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  let plannedResolve!: () => void;
  const planned = new Promise<void>((r) => (plannedResolve = r));
  p.stderr.on("data", (d) => {
    stderr += d;
    // The run has rooted everything it plans to read or make once it prints its plan.
    if (/will be built|building '/.test(stderr)) plannedResolve();
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    p.on("close", (code) => {
      plannedResolve();
      resolve({ code, stderr });
    }),
  );
  return { done, planned };
}

describe("concurrent builds and garbage collection", () => {
  it("three builds on overlapping DAGs beside a GC loop: each derivation built once", async () => {
    const env = { NIXSTATE_STATE_DIR: join(root, "state"), NIXSTATE_STORE_DIR: "" };
    const built = join(root, "built.log");
    const files = writeJsonDag(join(root, "dag"), 90, {
      sleep: () => 0.06,
      before: (i) => `echo n${i} >> ${built}`,
    });
    const builds = [files.slice(0, 50), files.slice(20, 70), files.slice(40, 90)].map((targets) =>
      start(["build", "-j2", ...targets], env),
    );
    await Promise.all(builds.map((b) => b.planned));
    let collecting = true;
    let collections = 0;
    const gcLoop = (async () => {
      while (collecting) {
        const gc = start(["store", "gc"], env);
        const r = await gc.done;
        expect(r.code, r.stderr).toBe(0);
        collections++;
      }
    })();
    const results = await Promise.all(builds.map((b) => b.done));
    collecting = false;
    await gcLoop;
    for (const r of results) {
      expect(r.stderr).not.toMatch(/^error/m);
      expect(r.code).toBe(0);
    }
    expect(collections).toBeGreaterThan(0);
    console.log(`concurrent builds: ${collections} collections ran beside them`);
    const names = readFileSync(built, "utf8").trim().split("\n");
    expect(names.length).toBe(new Set(names).size);
    expect(new Set(names).size).toBe(90);
    const verify = runCli(["store", "verify"], { env });
    expect(verify.status).toBe(0);
    expect(verify.stderr).toMatch(/all good/);
  }, 180_000);
});
