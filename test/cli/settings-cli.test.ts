// Settings through the real command: nixstate.conf < NIXSTATE_<NAME> < flags, seen by show-config
// and by what a build does; the README's example.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { repoRoot } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-settings-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A fresh config home (with this nixstate.conf) and state directory; the CLI run there. */
function setup(conf: string) {
  const home = join(root, `h${n++}`);
  mkdirSync(join(home, "config", "nixstate"), { recursive: true });
  writeFileSync(join(home, "config", "nixstate", "nixstate.conf"), conf);
  const base = {
    XDG_CONFIG_HOME: join(home, "config"),
    NIXSTATE_STATE_DIR: join(home, "state"),
    NIXSTATE_STORE_DIR: "",
    NIXSTATE_CONF: "",
    NIXSTATE_MAX_JOBS: undefined,
  };
  return {
    home,
    cli: (args: string[], env: Record<string, string> = {}) =>
      runCli(args, { env: { ...base, ...env }, cwd: home }),
  };
}

function drv(dir: string, name: string): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({ name, builder: "/bin/sh", args: ["-c", "echo hi > $out"], env: {} }),
  );
  return file;
}

describe("settings through the CLI", () => {
  it("show-config: the file says 3, the environment 2, the flag 1", () => {
    const { cli } = setup("max-jobs = 3\n");
    const line = (r: ReturnType<typeof cli>) =>
      r.stdout
        .toString()
        .split("\n")
        .find((l) => l.startsWith("max-jobs "));
    expect(line(cli(["show-config"]))).toBe("max-jobs = 3");
    expect(line(cli(["show-config"], { NIXSTATE_MAX_JOBS: "2" }))).toBe("max-jobs = 2");
    const flagged = cli(["show-config", "--max-jobs", "1"], { NIXSTATE_MAX_JOBS: "2" });
    expect(line(flagged)).toBe("max-jobs = 1");

    const json = (args: string[], env?: Record<string, string>) =>
      JSON.parse(cli(["show-config", "--json", ...args], env).stdout.toString());
    expect(json([])["max-jobs"]).toMatchObject({
      value: 3,
      defaultValue: 1,
      source: expect.stringMatching(/nixstate\.conf:1$/),
    });
    expect(json([], { NIXSTATE_MAX_JOBS: "2" })["max-jobs"]).toMatchObject({
      value: 2,
      source: "environment NIXSTATE_MAX_JOBS",
    });
    expect(json(["--max-jobs", "1"], { NIXSTATE_MAX_JOBS: "2" })["max-jobs"]).toMatchObject({
      value: 1,
      source: "flag --max-jobs",
    });
    // Sorted, every setting once, as nix show-config prints them.
    const names = cli(["show-config"])
      .stdout.toString()
      .trim()
      .split("\n")
      .map((l) => l.split(" = ")[0]);
    expect(names).toEqual([...names].sort());
    expect(names).toContain("substituters");
  });

  it("build: max-jobs = 0 (no local builds) from the file, then overridden by the environment and by -j", () => {
    const { home, cli } = setup("max-jobs = 3\n");
    const built = (args: string[], env?: Record<string, string>) => {
      const r = cli(["build", ...args], env);
      return r.status === 0
        ? "built"
        : r.stderr.includes("unable to start any build")
          ? "refused"
          : r.stderr;
    };
    // Each case a fresh derivation: a valid one would need no build whatever max-jobs says.
    expect(built([drv(home, "a")], { NIXSTATE_MAX_JOBS: "0" })).toBe("refused");
    expect(built(["-j", "1", drv(home, "b")], { NIXSTATE_MAX_JOBS: "0" })).toBe("built");
    const zero = setup("max-jobs = 0\n");
    expect(zero.cli(["build", drv(zero.home, "c")]).stderr).toMatch(/unable to start any build/);
    expect(zero.cli(["build", drv(zero.home, "d")], { NIXSTATE_MAX_JOBS: "2" }).status).toBe(0);
    expect(zero.cli(["build", "-j0", drv(zero.home, "e")], { NIXSTATE_MAX_JOBS: "2" }).status).toBe(
      1,
    );
  });

  it("build --help shows the effective defaults", () => {
    const { cli } = setup("max-jobs = 3\nkeep-going = true\n");
    const help = cli(["build", "--help"]).stdout.toString().replace(/\s+/g, " ");
    expect(help).toMatch(
      /--max-jobs <n> builds to run at once \('auto': one per core\) \(default: "3"\)/,
    );
    expect(help).toMatch(
      /--keep-going keep building other derivations after one fails \(default: true\)/,
    );
  });

  it("warns about an unknown setting and stops at a bad line, naming file and line", () => {
    const warned = setup("# ok\nfrobnicate = yes\n");
    const r = warned.cli(["show-config"]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(
      `warning: unknown setting 'frobnicate' (${join(warned.home, "config/nixstate/nixstate.conf")}:2)\n`,
    );
    const bad = setup("max-jobs = 1\nsandbox\n");
    const e = bad.cli(["build", "x.json"]);
    expect(e.status).toBe(1);
    expect(e.stderr).toBe(
      `error: ${join(bad.home, "config/nixstate/nixstate.conf")}:2: illegal configuration line 'sandbox'\n`,
    );
  });

  it("runs the README's example", () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8").split("\n");
    const at = readme.indexOf("$ cat ~/.config/nixstate/nixstate.conf");
    expect(at).toBeGreaterThan(0);
    const cmd = readme.findIndex((l, i) => i > at && l.startsWith("$ "));
    const end = readme.indexOf("```", cmd);
    const { cli } = setup(`${readme.slice(at + 1, cmd).join("\n")}\n`);
    const env = /^\$ NIXSTATE_MAX_JOBS=(\d+) nixstate show-config/.exec(readme[cmd]!);
    expect(env).not.toBeNull();
    const shown = cli(["show-config"], { NIXSTATE_MAX_JOBS: env![1]! })
      .stdout.toString()
      .split("\n")
      .filter((l) => /^(keep-going|max-jobs|substituters) /.test(l));
    expect(shown).toEqual(readme.slice(cmd + 1, end));
  });
});
