// The README's internal-json example ("Log formats: -L and internal-json"), run as a user would,
// and `-L` on the same build.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { repoRoot } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-readme-log-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

const COMMAND = "$ nixstate build -k --log-format internal-json examples/broken/poster.json";

/** The example's output lines as the README shows them. */
function readmeExample(): string[] {
  const lines = readFileSync(join(repoRoot, "README.md"), "utf8").split("\n");
  const at = lines.findIndex((l) => l.startsWith(COMMAND));
  expect(at).toBeGreaterThan(0);
  const end = lines.indexOf("```", at);
  // The command goes on over one more line (its filters).
  return lines.slice(at + 2, end);
}

describe("README: log formats", () => {
  it("prints the internal-json lines the README shows", () => {
    const state = join(root, "json");
    const r = runCli(
      ["build", "-k", "--log-format", "internal-json", "examples/broken/poster.json"],
      { env: { NIXSTATE_STATE_DIR: state, NIXSTATE_STORE_DIR: "" }, cwd: repoRoot },
    );
    expect(r.status).toBe(100);
    // As the README's filters: `@nix` lines without the counts; ids renumbered, paths shortened.
    const ids = new Map<string, number>();
    const shown = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("@nix ") && !/"action":"result","fields":\[[0-9]/.test(l))
      .map((l) =>
        l
          .replaceAll(new RegExp(`${join(state, "store")}/[0-9a-z]{32}-`, "g"), "/…/store/…-")
          .replace(/"id":(\d+)/g, (_, id: string) => {
            if (!ids.has(id)) ids.set(id, ids.size + 1);
            return `"id":${ids.get(id)}`;
          }),
      );
    // The plan lists paths in hash order, which differs from store to store: compare as sets.
    const planSorted = (lines: string[]) => {
      const plan = (l: string) => l.includes('"msg":"  /');
      return [...lines.filter((l) => !plan(l)), ...lines.filter(plan).sort()];
    };
    expect(planSorted(shown)).toEqual(planSorted(readmeExample()));
  });

  it("-L prints the builder's lines, and the failure without the log tail", () => {
    const r = runCli(["build", "-k", "-L", "examples/broken/poster.json"], {
      env: { NIXSTATE_STATE_DIR: join(root, "plain"), NIXSTATE_STORE_DIR: "" },
      cwd: repoRoot,
    });
    expect(r.status).toBe(100);
    expect(r.stderr).toMatch(
      /^shout> expected 'HELLO, NIXSTATE' in \S+-greeting, got: HELLO, WORLD$/m,
    );
    expect(r.stderr).toMatch(/^error: builder for '\S+-shout\.drv' failed with exit code 1$/m);
    expect(r.stderr).not.toContain("log lines");
    expect(r.stderr).not.toContain("@nix");
  });
});
