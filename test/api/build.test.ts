// build(): the .drv closure written into the store, built as `nixstate build` builds, recorded.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nixstate } from "../../src/api/index.ts";
import type { ReadonlyDeep, RunEvent } from "../../src/events/run-event.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-api-build-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

describe("build()", () => {
  const stateDir = join(root, "state");
  const { derivation, build, storeDir } = nixstate({ stateDir });

  it("builds a derivation and its inputs, and records the run", async () => {
    const lib = derivation({
      name: "lib",
      builder: "/bin/sh",
      outputs: ["out", "dev"],
      args: ["-c", 'echo lib > "$out"; echo header > "$dev"'],
    });
    const app = derivation({
      name: "app",
      builder: "/bin/sh",
      args: ["-c", `cat ${lib.dev} ${lib} > "$out"`],
      PATH: "/usr/bin:/bin",
    });
    expect(storeDir).toBe(join(stateDir, "store"));
    const seen: string[] = [];
    const run = build([app], { onEvent: (e) => seen.push(e.type) });
    expect(run.runId).toBe(1);
    const streamed: ReadonlyDeep<RunEvent>[] = [];
    for await (const e of run.events) streamed.push(e);
    const outcome = await run;
    expect(outcome.targets[0]!.result.errorMsg).toBe("");
    expect(outcome.success).toBe(true);
    expect(outcome.exitCode).toBe(0);
    expect(outcome.targets[0]!.result.status).toBe("Built");
    expect(readFileSync(app.outPath, "utf8")).toBe("header\nlib\n");
    expect(streamed[0]!.type).toBe("run.started");
    expect(streamed.at(-1)!.type).toBe("run.ended");
    expect(seen).toEqual(streamed.map((e) => e.type));
    const log = RunLog.open(stateDir);
    try {
      expect(log.run(1).state).toBe("ended");
    } finally {
      log.close();
    }

    const again = await build({ app, dev: lib.dev });
    expect(again.targets.map((t) => t.result.status)).toEqual(["AlreadyValid", "AlreadyValid"]);
    expect(again.targets[1]!.outputs).toEqual({ dev: lib.outputs.dev });
    expect(again.runId).toBe(2);
  });

  it("reports failures with Nix's exit status", async () => {
    const bad = derivation({ name: "bad", builder: "/bin/sh", args: ["-c", "exit 3"] });
    const outcome = await build(bad, { record: false });
    expect(outcome.success).toBe(false);
    expect(outcome.exitCode).toBe(100);
    expect(outcome.runId).toBeUndefined();
    expect(outcome.targets[0]!.result.errorMsg).toMatch(/failed with exit code 3/);
  });

  it("rejects what is not a derivation", async () => {
    await expect(build({ x: "hello" } as never)).rejects.toThrow(/target\.x is not a derivation/);
  });
});
