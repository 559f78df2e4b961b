// `nixstate build` driven as a user would, in temp state directories.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { repoRoot } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-build-cli-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const stateDir = () => join(root, `state-${n++}`);

function writeJson(dir: string, name: string, value: unknown): string {
  mkdirSync(dir, { recursive: true });
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify(value));
  return f;
}

describe("nixstate build", () => {
  it("runs the README's main job on a fresh default store", () => {
    const home = join(root, "home");
    const r = runCli(["build", join(repoRoot, "examples/hello/report.json")], {
      env: { HOME: home, XDG_DATA_HOME: "", NIXSTATE_STATE_DIR: "", NIXSTATE_STORE_DIR: "" },
    });
    expect(r.stderr).toMatch(/these 4 derivations will be built/);
    expect(r.status).toBe(0);
    const out = r.stdout.toString().trim();
    expect(out).toMatch(
      new RegExp(`^${home}/.local/share/nixstate/store/[a-z0-9]{32}-hello-report$`),
    );
    expect(readFileSync(join(out, "greeting.txt"), "utf8")).toBe(
      "Hello from a nixstate build, nixstate!\n",
    );
    // A second run finds everything valid and builds nothing.
    const again = runCli(["build", join(repoRoot, "examples/hello/report.json")], {
      env: { HOME: home, XDG_DATA_HOME: "", NIXSTATE_STATE_DIR: "", NIXSTATE_STORE_DIR: "" },
    });
    expect(again.status).toBe(0);
    expect(again.stderr).not.toMatch(/building/);
    expect(again.stdout.toString().trim()).toBe(out);
  });

  it("reports a failing builder as Nix does: exit 100, the log tail, the kept build dir", () => {
    const s = stateDir();
    const f = writeJson(join(root, "fail"), "f.json", {
      builder: "/bin/sh",
      args: ["-c", "echo step one; echo broken >&2; exit 2"],
      env: { name: "broken" },
    });
    const r = runCli(["build", "-K", "--state-dir", s, f]);
    expect(r.status).toBe(100);
    expect(r.stderr).toMatch(
      /error: builder for '.*-broken\.drv' failed with exit code 2;\nlast 2 log lines:\n> step one\n> broken\n/,
    );
    expect(r.stderr).toMatch(/note: keeping build directory '.*nix-build-.*-broken'/);
    const log = runCli(["log", "--state-dir", s, r.stderr.match(/'(\/[^']*-broken\.drv)'/)![1]!]);
    expect(log.stdout.toString()).toBe("step one\nbroken\n");
  });

  it("--dry-run plans without building; --cache-failures remembers failures until cleared", () => {
    const s = stateDir();
    const dir = join(root, "cache");
    const f = writeJson(dir, "f.json", {
      builder: "/bin/sh",
      args: ["-c", "exit 1"],
      env: { name: "flaky" },
    });
    const dry = runCli(["build", "--dry-run", "--state-dir", s, f]);
    expect(dry.status).toBe(0);
    expect(dry.stderr).toMatch(/this derivation will be built:\n {2}.*-flaky\.drv/);
    expect(dry.stderr).not.toMatch(/building/);
    expect(runCli(["build", "--cache-failures", "--state-dir", s, f]).status).toBe(100);
    const cached = runCli(["build", "--cache-failures", "--state-dir", s, f]);
    expect(cached.status).toBe(1);
    expect(cached.stderr).toMatch(/previously failed/);
    const list = runCli(["failed", "list", "--state-dir", s]).stdout.toString();
    expect(list).toMatch(/-flaky\n$/);
    runCli(["failed", "clear", "--state-dir", s]);
    expect(runCli(["failed", "list", "--state-dir", s]).stdout.toString()).toBe("");
    expect(runCli(["build", "--cache-failures", "--state-dir", s, f]).stderr).toMatch(
      /failed with exit code 1/,
    );
  });

  it("two processes building the same DAG build each derivation once, and both succeed", async () => {
    const s = stateDir();
    const dir = join(root, "race");
    const counter = join(dir, "count");
    const node = (i: number, deps: number[]) =>
      writeJson(dir, `n${i}.json`, {
        builder: "/bin/sh",
        args: ["-c", `echo n${i} >> ${counter}; /bin/sleep 0.05; echo n${i} > $out`],
        env: { name: `n${i}` },
        inputDrvs: Object.fromEntries(deps.map((d) => [`n${d}.json`, ["out"]])),
      });
    for (let i = 0; i < 12; i++)
      node(
        i,
        i === 0
          ? []
          : [Math.floor(i / 2), Math.floor(i / 3)].filter((d, k, a) => a.indexOf(d) === k),
      );
    const top = node(12, [11, 10, 9, 8, 7]);
    const run = () =>
      new Promise<number>((resolve) => {
        const p = spawn(
          process.execPath,
          [join(repoRoot, "bin/nixstate.js"), "build", "-j2", "--state-dir", s, top],
          { stdio: "ignore" },
        );
        p.on("exit", (code) => resolve(code ?? 1));
      });
    // Write the .drv files first so both processes start on an existing store.
    expect(runCli(["build", "--dry-run", "--state-dir", s, top]).status).toBe(0);
    const codes = await Promise.all([run(), run()]);
    expect(codes).toEqual([0, 0]);
    const built = readFileSync(counter, "utf8").trim().split("\n");
    const unique = new Set(built);
    expect(built.length).toBe(unique.size);
    // n0…n12 except n6, which nothing in n12's closure depends on.
    expect(unique.size).toBe(12);
  });
});

describe("nixstate build --substituters", () => {
  it("copies outputs from a binary-cache folder instead of building", async () => {
    const { LocalStore } = await import("../../src/store/local-store.ts");
    const { writeNarFolder } = await import("../../src/substituters/nar-folder-writer.ts");
    const storeDir = join(root, "shared-store");
    const builderDir = stateDir();
    const f = writeJson(join(root, "subst"), "s.json", {
      builder: "/bin/sh",
      args: ["-c", "test -e /tmp/nixstate-allow-build-$name || exit 7; echo built > $out"],
      env: { name: "substitutable" },
    });
    // Build it once where building is allowed (the marker file), then publish it as a cache.
    writeFileSync(`/tmp/nixstate-allow-build-substitutable`, "");
    const built = runCli(["build", "--state-dir", builderDir, "--store-dir", storeDir, f]);
    rmSync(`/tmp/nixstate-allow-build-substitutable`);
    expect(built.status).toBe(0);
    const out = built.stdout.toString().trim();
    const source = LocalStore.open({ stateDir: builderDir, storeDir });
    const cache = join(root, "cache");
    await writeNarFolder(source, cache, [out]);
    source.close();
    // A second store with the same store directory cannot build it, but can substitute it.
    const other = stateDir();
    const otherStore = join(root, "other-store");
    const noSubst = runCli(["build", "--state-dir", other, "--store-dir", otherStore, f]);
    expect(noSubst.status).toBe(100);
    const viaCache = runCli([
      "build",
      "--state-dir",
      stateDir(),
      "--store-dir",
      storeDir,
      "--substituters",
      `file://${cache}`,
      f,
    ]);
    expect(viaCache.stderr).not.toMatch(/building/);
    expect(viaCache.status).toBe(0);
    expect(viaCache.stdout.toString().trim()).toBe(out);
  });
});
