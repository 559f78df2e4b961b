// The live progress view as a person sees it: `nixstate build` in a real terminal (tmux, 120×30),
// on a DAG with a slow build that prints a line a second and a failing one (-k), run once before
// so the history gives an ETA. A capture while it runs shows the running build with its last line,
// the counts and the ETA; the capture after it ends shows the summary with the root cause's log.
// The captures are kept under test-output/progress/ to be looked at.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { writeJsonDerivations } from "../events/json-dag.ts";
import { repoRoot } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

function haveTmux(): boolean {
  const ok = spawnSync("tmux", ["-V"]).status === 0;
  if (!ok && process.env.CI === "true")
    throw new Error("tmux not found but CI=true: install it (apt-get install -y tmux)");
  return ok;
}

const root = mkdtempSync(join(tmpdir(), "nixstate-progress-tmux-"));
// A server of this test's own, so no other tmux session is touched.
const socket = `nixstate-progress-${process.pid}`;
const tmux = (...args: string[]) => {
  const r = spawnSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
afterAll(() => {
  spawnSync("tmux", ["-L", socket, "kill-server"]);
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});
const outDir = join(repoRoot, "test-output/progress");

/** The DAG, salted: `slow` ticks for 3 s, `broken` fails, `app` needs both, `docs` is quick. */
function dag(salt: string): string[] {
  const dir = join(root, salt);
  const drvs: Record<string, [string, string[]?]> = {
    base: ["echo base > $out"],
    slow: [
      "for i in 1 2 3; do echo compiling part $i of 3; /bin/sleep 1; done; echo slow > $out",
      ["base"],
    ],
    broken: [
      "echo checking the config; echo 'broken: missing setting FOO'; echo 'broken: giving up'; exit 1",
      ["base"],
    ],
    app: ["echo $slow $broken > $out", ["slow", "broken"]],
    docs: ["/bin/sleep 0.5; echo docs > $out", ["base"]],
  };
  writeJsonDerivations(dir, drvs, { salt });
  return ["app", "docs"].map((n) => join(dir, `${n}.json`));
}

/** The screen as text, wrapped lines joined (as a person reads them), trailing blanks dropped. */
const capture = (...args: string[]) =>
  tmux("capture-pane", "-p", "-J", "-t", "progress", ...args).replace(/[ \t]+$/gm, "");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForScreen(pred: (s: string) => boolean, ms: number): Promise<string> {
  const until = Date.now() + ms;
  let screen = "";
  while (Date.now() < until) {
    screen = capture();
    if (pred(screen)) return screen;
    await sleep(100);
  }
  throw new Error(`the screen never showed what was expected; last capture:\n${screen}`);
}

describe.runIf(haveTmux())("the live progress view in a terminal", () => {
  it("shows running builds, counts and an ETA, then the summary with the root cause's log", async () => {
    const state = join(root, "state");
    // History: the same derivations (other hashes) built once before.
    const first = runCli(["build", "-k", "-j2", "--state-dir", state, ...dag("first")]);
    expect(first.status).toBe(100);

    tmux("new-session", "-d", "-s", "progress", "-x", "120", "-y", "30", "-c", repoRoot);
    const cmd = [
      "env -u NO_COLOR",
      process.execPath,
      join(repoRoot, "bin/nixstate.js"),
      "build -k -j2 --state-dir",
      state,
      ...dag("second"),
      "; echo EXIT=$?",
    ].join(" ");
    tmux("send-keys", "-t", "progress", "clear", "Enter");
    tmux("send-keys", "-t", "progress", cmd, "Enter");

    const live = await waitForScreen(
      (s) => /▶ slow .*│ compiling part [23] of 3/.test(s) && /ETA ~/.test(s),
      30_000,
    );
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, "live.txt"), live);
    expect(live).toMatch(/^▶ slow {2}here {2}\d+(\.\d)?m?s {2}│ compiling part [23] of 3$/m);
    expect(live).toMatch(
      /^✔ \d\/5 done · ▶ \d running · ⏸ \d waiting · .*ETA ~\d+(\.\d)?m?s( \(\+1 never built before\))?$/m,
    );
    // In colour (the view's counts are green, yellow, red), as tmux keeps them.
    expect(capture("-e")).toMatch(/\x1b\[3[123]m/);
    // The failure was printed for good above the view.
    expect(live).toMatch(/^error: builder for '\S+-broken\.drv' failed with exit code 1;$/m);

    const end = await waitForScreen((s) => /^EXIT=\d+$/m.test(s), 60_000);
    const whole = capture("-S", "-100");
    writeFileSync(join(outDir, "final.txt"), whole);
    expect(end).toMatch(/^EXIT=100$/m);
    expect(whole).toMatch(/^summary: 3 built, 1 failed, 1 not built because of a failure, in \d/m);
    expect(whole).toMatch(/^root cause: broken \(\S+-broken\.drv\)$/m);
    expect(whole).toContain(
      "  the last 3 lines of its build log:\n  │ checking the config\n  │ broken: missing setting FOO\n  │ broken: giving up\n",
    );
    expect(whole).toMatch(/^ {2}1 goal not built because of it: app$/m);
    // The live view left the screen: no frame of it remains.
    expect(whole).not.toMatch(/^▶ |ETA ~/m);
  }, 120_000);

  it("Ctrl-C cancels the build and still prints the summary; NO_COLOR leaves colour out", async () => {
    const state = join(root, "state-interrupted");
    tmux("send-keys", "-t", "progress", "clear", "Enter");
    const cmd = [
      "NO_COLOR=1",
      process.execPath,
      join(repoRoot, "bin/nixstate.js"),
      "build -k -j2 --state-dir",
      state,
      ...dag("interrupted"),
      "; echo EXIT=$?",
    ].join(" ");
    tmux("send-keys", "-t", "progress", cmd, "Enter");
    await waitForScreen((s) => /^▶ slow .*│ compiling part 1 of 3$/m.test(s), 30_000);
    // NO_COLOR: the same view without colour.
    expect(capture("-e")).not.toMatch(/\x1b\[3\dm/);
    tmux("send-keys", "-t", "progress", "C-c");
    // The build ended by itself (a process killed by the signal would take `; echo` with it).
    const end = await waitForScreen((s) => /^EXIT=\d+$/m.test(s), 30_000);
    writeFileSync(join(outDir, "interrupted.txt"), end);
    expect(end).toMatch(/^summary: .*\d+ stopped, .*in \d/m);
    expect(end).toMatch(/^stopped: interrupted by SIGINT$/m);
    expect(end).not.toMatch(/^▶ /m);
  }, 120_000);
});
