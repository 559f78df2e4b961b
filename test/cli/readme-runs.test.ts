// The README's worked example ("Debugging a failed build"), run as a user would.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { repoRoot } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-readme-runs-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

describe("README: debugging a failed build", () => {
  it("finds the root cause with runs, why and replay", () => {
    const env = { NIXSTATE_STATE_DIR: join(root, "state"), NIXSTATE_STORE_DIR: "" };
    const cli = (...args: string[]) => runCli(args, { env, cwd: repoRoot });
    const build = cli("build", "-k", "examples/broken/poster.json");
    expect(build.status).toBe(100);
    expect(build.stderr).toMatch(/> expected 'HELLO, NIXSTATE' in .*-greeting, got: HELLO, WORLD/);

    const runs = cli("runs").stdout.toString();
    expect(runs).toMatch(
      /^ {3}1 {2}\S+ \S+ +\d+\.\d s {2}exit 100 +1 built, 0 substituted, 0 valid, 2 failed {2}examples\/broken\/poster\.json\n$/,
    );
    const show = cli("runs", "show", "last").stdout.toString();
    expect(show).toMatch(/root causes:\n {2}drv:\S+-shout\.drv#normal: PermanentFailure/);
    expect(show).toMatch(
      /failed because of them: 1 goal\n {2}drv:\S+-poster\.drv#normal: DependencyFailed/,
    );

    const why = cli("why", "examples/broken/poster.json");
    expect(why.status).toBe(0);
    const text = why.stdout.toString();
    expect(text).toMatch(/^run 1: \S+-poster\.drv was not built: a dependency failed$/m);
    expect(text).toMatch(/^root cause: \S+-shout\.drv$/m);
    expect(text).toMatch(/^ {2}target examples\/broken\/poster\.json \(\S+-poster\.drv\)$/m);

    const replay = cli("replay", "last");
    expect(replay.status).toBe(0);
    expect(replay.stdout.toString()).toMatch(
      /^run 1: 3 goals, \d+ steps replayed, all equal to the record\n$/,
    );

    const store = join(root, "state", "store");
    const shout = join(store, readdirSync(store).find((f) => f.endsWith("-shout.drv"))!);
    const steps = cli("replay", "last", "--goal", shout, "--step")
      .stdout.toString()
      .trim()
      .split("\n");
    expect(steps[0]).toMatch(/^step 1 {2}\+\d+\.\d{3}s {2}state getDerivation\.loading$/);
    expect(steps.at(-2)).toMatch(/step \d+ .* state permanentFailure$/);
    const timeline = cli("replay", "last", "--goal", shout).stdout.toString();
    expect(timeline).toMatch(/builder started here \(pid \d+\)/);
    expect(timeline).toMatch(/done: PermanentFailure/);
  });
});
