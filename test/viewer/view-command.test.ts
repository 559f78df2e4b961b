// `nixstate view`'s errors say what to do.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "../cli/run-cli.ts";
import { repoRoot } from "../vectors.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-view-command-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

describe("nixstate view errors", () => {
  const env = { NIXSTATE_STATE_DIR: join(root, "state"), NIXSTATE_STORE_DIR: "" };
  const cli = (...args: string[]) => runCli(args, { env, cwd: repoRoot });

  it("says when there is no run, no such run, or a bad port", () => {
    const none = cli("view", "-o", join(root, "x.html"));
    expect(none.status).toBe(1);
    expect(none.stderr).toBe("error: no run has been recorded yet\n");
    const port = cli("view", "--port", "http");
    expect(port.status).toBe(1);
    expect(port.stderr).toBe(
      "error: --port wants a port number (0-65535, 0: any free port), not 'http'\n",
    );
    expect(cli("build", "examples/broken/greeting.json").status).toBe(0);
    const missing = cli("view", "7", "-o", join(root, "x.html"));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(
      "error: there is no run 7 in the run log ('nixstate runs' lists them)\n",
    );
    expect(cli("view", "1", "-o", join(root, "x.html")).stdout.toString()).toMatch(
      /^wrote run 1 \(1 goal\) to /,
    );
  });
});
