// `runs resume` builds a run's targets again in the store the run used, whatever the working
// directory and however the store was named; a run still going is not resumed.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RunLog } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-resume-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

describe("nixstate runs resume", () => {
  it("resumes into the run's own store from another directory", () => {
    const project = join(root, "project");
    const elsewhere = join(root, "elsewhere");
    mkdirSync(project);
    mkdirSync(elsewhere);
    const marker = join(root, "fixed");
    writeFileSync(
      join(project, "flaky.json"),
      JSON.stringify({
        builder: "/bin/sh",
        args: ["-c", `test -e ${marker} || exit 1; echo fixed > $out`],
        env: { name: "flaky" },
      }),
    );
    // The store is named relative to the project directory.
    const first = runCli(["build", "--state-dir", "st", "flaky.json"], { cwd: project });
    expect(first.status).toBe(100);
    writeFileSync(marker, "");
    const resumed = runCli(["runs", "resume", "1"], {
      cwd: elsewhere,
      env: { NIXSTATE_STATE_DIR: join(project, "st"), NIXSTATE_STORE_DIR: "" },
    });
    expect(resumed.stderr).not.toMatch(/error/);
    expect(resumed.status).toBe(0);
    expect(resumed.stdout.toString()).toMatch(
      new RegExp(`^${join(project, "st", "store")}/\\S+-flaky\\n$`),
    );
    expect(existsSync(join(elsewhere, "st"))).toBe(false);
    const log = RunLog.open(join(project, "st"));
    try {
      expect(log.runs().map((r) => [r.id, r.exitCode, r.resumes])).toEqual([
        [1, 100, undefined],
        [2, 0, 1],
      ]);
    } finally {
      log.close();
    }
  });

  it("refuses a run that is still going", () => {
    const state = join(root, "busy");
    const log = RunLog.open(state);
    // A run begun by this (live) process and not ended is running.
    log.begin({ command: "build", targets: ["x.json"], options: {}, cwd: root });
    log.close();
    const r = runCli(["runs", "resume", "1", "--state-dir", state]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^error: run 1 is still running \(process \d+\); resume it once it has ended or been killed\n$/,
    );
  });
});
