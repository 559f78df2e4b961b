// `nixstate build` with stderr on a pipe: plain mode (no colour, no carriage returns), the
// heartbeat, a failure's log whole while another builder prints, the summary; -q; and
// `--log-format raw` still Nix's lines alone.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { writeJsonDerivations } from "../events/json-dag.ts";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-progress-plain-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const stateDir = () => join(root, `state-${n++}`);

/** Two builders printing at once: `loud` fails after 8 lines, `chatty` prints 8 and succeeds. */
const dir = join(root, "dag");
writeJsonDerivations(dir, {
  loud: ["for i in 1 2 3 4 5 6 7 8; do echo loud-$i; /bin/sleep 0.1; done; exit 1"],
  chatty: ["for i in 1 2 3 4 5 6 7 8; do echo chatty-$i; /bin/sleep 0.1; done; echo ok > $out"],
  slow: ["/bin/sleep 1.5; echo slow > $out"],
  top: ["echo $loud $chatty > $out", ["loud", "chatty"]],
});
const targets = [join(dir, "top.json"), join(dir, "slow.json")];
const CONTROL = /[\x1b\r]/;

describe("plain mode (stderr not a terminal)", () => {
  it("prints no escape codes, a heartbeat, the failure's log whole, and the summary", () => {
    const r = runCli(["build", "-k", "-j3", "--state-dir", stateDir(), ...targets], {
      env: { NIXSTATE_HEARTBEAT_MS: "400", NO_COLOR: "" },
    });
    expect(r.status).toBe(100);
    const err = r.stderr;
    expect(err).not.toMatch(CONTROL);
    expect(err).toMatch(/^these 4 derivations will be built:$/m);
    expect(err).toMatch(/^building '\S+-slow\.drv'\.\.\.$/m);
    expect(err).toMatch(/^built '\S+-slow\.drv' in \d+(\.\d)?s$/m);
    expect(err).toMatch(/^\[\d\d:\d\d:\d\d\] \d running \((\S+ \d\S*(, )?)+\), \d\/\d+ done/m);
    // The failure with all it printed, in one piece, though `chatty` printed at the same time.
    const loud = Array.from({ length: 8 }, (_, i) => `> loud-${i + 1}`).join("\n");
    expect(err).toMatch(
      new RegExp(
        `^error: builder for '\\S+-loud\\.drv' failed with exit code 1;\\nlast 8 log lines:\\n${loud}\\nFor full logs, run 'nixstate log \\S+-loud\\.drv'\\.$`,
        "m",
      ),
    );
    expect(err).not.toContain("chatty-");
    // The summary: counts, the root cause with its whole log, the dependent that failed.
    expect(err).toMatch(
      /^summary: 2 built, 1 failed, 1 not built because of a failure, in \d+(\.\d)?s$/m,
    );
    const tail = Array.from({ length: 8 }, (_, i) => `  │ loud-${i + 1}`).join("\n");
    expect(err).toMatch(
      new RegExp(
        `^root cause: loud \\(\\S+-loud\\.drv\\)\\n.*\\n  the last 8 lines of its build log:\\n${tail}\\n`,
        "m",
      ),
    );
    expect(err).toMatch(/^ {2}1 goal not built because of it: top$/m);
  });

  it("with -L: the builders' lines as they come, each failure's tail only in the summary", () => {
    const r = runCli(["build", "-k", "-j3", "-L", "--state-dir", stateDir(), ...targets]);
    expect(r.status).toBe(100);
    expect(r.stderr).toMatch(/^chatty> chatty-8$/m);
    expect(r.stderr).toMatch(/^loud> loud-8$/m);
    expect(r.stderr).toMatch(/^error: builder for '\S+-loud\.drv' failed with exit code 1$/m);
    expect(r.stderr).toContain("  the last 8 lines of its build log:\n  │ loud-1\n");
    expect(r.stderr).not.toMatch(CONTROL);
  });

  it("-q: only the errors and the summary", () => {
    const r = runCli(["build", "-k", "-j3", "-q", "--state-dir", stateDir(), ...targets]);
    expect(r.status).toBe(100);
    expect(r.stderr).not.toMatch(/will be built|^building|^built|^\[/m);
    // The log's tail is in the summary only.
    expect(r.stderr).toMatch(/^error: builder for '\S+-loud\.drv' failed with exit code 1$/m);
    expect(r.stderr).toContain("  the last 8 lines of its build log:\n  │ loud-1\n");
    expect(r.stderr).toMatch(/^summary: 2 built, 1 failed/m);
  });

  it("--log-format raw: Nix's lines and nothing more", () => {
    const r = runCli([
      "build",
      "-k",
      "-j3",
      "--log-format",
      "raw",
      "--state-dir",
      stateDir(),
      ...targets,
    ]);
    expect(r.status).toBe(100);
    const lines = r.stderr.split("\n").filter(Boolean);
    for (const l of lines)
      expect(l).toMatch(
        /^(these 4 derivations will be built:| {2}\S+\.drv|building '\S+'\.\.\.|error: .*|last 8 log lines:|> loud-\d|For full logs, .*)$/,
      );
  });
});
