// `nixstate completion bash|zsh`: the scripts, loaded by the shells as a user's shell would.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-completion-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function script(shell: string): string {
  const r = runCli(["completion", shell], { env: { XDG_CONFIG_HOME: root, NIXSTATE_CONF: "" } });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  const file = join(root, `nixstate.${shell}`);
  writeFileSync(file, r.stdout);
  return file;
}

describe("bash completion", () => {
  const file = script("bash");
  /** What bash offers for the command line `words` (the last one is the word being completed). */
  function complete(...words: string[]): string[] {
    const r = spawnSync(
      "bash",
      [
        "-c",
        `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _nixstate; printf '%s\\n' "\${COMPREPLY[@]}"; complete -p nixstate >&2`,
        "bash",
        file,
        ...words,
      ],
      { cwd: join(root, "cwd"), encoding: "utf8" },
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("complete -o filenames -F _nixstate nixstate\n");
    return r.stdout.split("\n").filter(Boolean);
  }
  mkdirSync(join(root, "cwd"), { recursive: true });
  writeFileSync(join(root, "cwd", "hello.json"), "{}");
  writeFileSync(join(root, "cwd", "other.txt"), "");

  it("completes commands and subcommands", () => {
    expect(complete("nixstate", "bu")).toEqual(["build"]);
    expect(complete("nixstate", "runs", "sh")).toEqual(["show"]);
    expect(complete("nixstate", "completion", "")).toEqual(["bash", "zsh"]);
  });

  it("completes a command's flags, past other flags and their values", () => {
    expect(complete("nixstate", "build", "--max-")).toEqual([
      "--max-jobs",
      "--max-silent-time",
      "--max-log-size",
    ]);
    expect(complete("nixstate", "build", "-j", "2", "--state-dir", "d", "--keep-")).toEqual([
      "--keep-going",
      "--keep-failed",
      "--keep-runs",
    ]);
    // The store flags come after the subcommand's name: `runs --state-dir D show --j`.
    expect(complete("nixstate", "runs", "--state-dir", "show", "show", "--j")).toEqual(["--json"]);
  });

  it("completes a flag's choices, else file names, and targets as file names", () => {
    expect(complete("nixstate", "build", "--log-format", "")).toEqual([
      "raw",
      "internal-json",
      "bar",
      "bar-with-logs",
    ]);
    expect(complete("nixstate", "build", "--nix-db", "oth")).toEqual(["other.txt"]);
    expect(complete("nixstate", "build", "-k", "he")).toEqual(["hello.json"]);
  });
});

describe("zsh completion", () => {
  const zsh = spawnSync("sh", ["-c", "command -v zsh"], { encoding: "utf8" }).stdout.trim();
  if (!zsh && process.env.CI === "true")
    throw new Error("zsh not found but CI=true: install zsh (.ci/run does) so this test runs");
  const file = script("zsh");

  it.skipIf(!zsh)("is valid zsh, and registers itself with compinit", () => {
    expect(spawnSync(zsh, ["-n", file], { encoding: "utf8" }).stderr).toBe("");
    const r = spawnSync(
      zsh,
      [
        "-f",
        "-c",
        `autoload -U compinit && compinit -u -D && source "$1" && print -r -- $_comps[nixstate]`,
        "zsh",
        file,
      ],
      { encoding: "utf8", env: { ...process.env, HOME: root } },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("_nixstate\n");
  });
});
