// The README's progress example ("Progress"): the summary of a failed build, run as a user would.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { repoRoot } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-readme-progress-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

const COMMAND = "$ nixstate build -k -q examples/broken/poster.json";

/** Durations vary from run to run; the columns they sit in do not. */
const timeless = (l: string) => l.replace(/\b\d+(\.\d)?(ms|s)\b|\b\d+m\d\ds\b/g, "<t>");

describe("README: progress", () => {
  it("prints the summary the README shows", () => {
    const lines = readFileSync(join(repoRoot, "README.md"), "utf8").split("\n");
    const at = lines.indexOf(COMMAND);
    expect(at).toBeGreaterThan(0);
    const shown = lines.slice(at + 1, lines.indexOf("```", at));
    const state = join(root, "state");
    const r = runCli(["build", "-k", "-q", "examples/broken/poster.json"], {
      env: { NIXSTATE_STATE_DIR: state, NIXSTATE_STORE_DIR: "" },
      cwd: repoRoot,
    });
    expect(r.status).toBe(100);
    const got = r.stderr
      .replaceAll(new RegExp(`${join(state, "store")}/[0-9a-z]{32}-`, "g"), "…-")
      .split("\n")
      .filter(Boolean);
    expect(got.map(timeless)).toEqual(shown.map(timeless));
  });
});
