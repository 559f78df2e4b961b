// bin/run-bundle.mjs: the bundle runs with the code V8 saved for the same command in an earlier
// run, and runs the same without it (none yet, refused, or nowhere to save it).
import { spawnSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { repoRoot } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

const runBundleUrl = pathToFileURL(join(repoRoot, "bin/run-bundle.mjs")).href;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) deleteTree(d);
});

/** A dist/ of two scripts: a bundle that requires its vendor script, as the real one does. */
function fakeDist(): string {
  const dist = mkdtempSync(join(tmpdir(), "nixstate-code-cache-"));
  dirs.push(dist);
  mkdirSync(join(dist, "vendor"));
  writeFileSync(
    join(dist, "vendor/helper.cjs"),
    '"use strict";\nexports.twice = function twice(s) { return s + s; };\n',
  );
  writeFileSync(
    join(dist, "bundle.cjs"),
    [
      '"use strict";',
      'const { twice } = require("./vendor/helper.cjs");',
      'const path = require("node:path");',
      "const args = process.argv.slice(2);",
      "process.stdout.write(twice(args.join(',')) + ' ' + path.basename(__filename) + '\\n');",
      // Strict as the sources: a frozen object refuses writes (in sloppy mode, silently).
      "try { Object.freeze({ a: 1 }).a = 2; } catch { process.stdout.write('strict\\n'); }",
      "if (args.includes('fail')) process.exitCode = 3;",
    ].join("\n"),
  );
  // As bin/nixstate.js: the command line is the process's, after the script's own path.
  writeFileSync(
    join(dist, "run.mjs"),
    `import { runBundle } from ${JSON.stringify(runBundleUrl)};\nrunBundle(${JSON.stringify(join(dist, "bundle.cjs"))}, process.argv.slice(2));\n`,
  );
  return dist;
}

const CACHE_LINE = /^code cache .*\/([^/]+)\/([^/]+?)-\d+-\d+\.bin: (\w+)$/;

/** The run's status, output, what it found of each script's code, and any other stderr. */
function run(dist: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(dist, "run.mjs"), ...args], {
    env: { ...process.env, NIXSTATE_DEBUG_CODE_CACHE: "1" },
    encoding: "utf8",
  });
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  const states = lines.flatMap((l) => {
    const m = CACHE_LINE.exec(l);
    return m ? [`${m[1]}/${m[2]} ${m[3]}`] : [];
  });
  const stderr = lines.filter((l) => !CACHE_LINE.test(l)).join("\n");
  return { status: r.status, stdout: r.stdout, states, stderr };
}

/** What a run of `command` found of the bundle's code and its vendor script's. */
const both = (command: string, state: string) => [
  `${command}/bundle.cjs ${state}`,
  `${command}/helper.cjs ${state}`,
];

/** The files of saved code for `command`. */
const saved = (dist: string, command: string) =>
  readdirSync(join(dist, "code-cache", command)).sort();

describe("the bundle's saved code", () => {
  it("is made by the first run of a command and taken by the next, per command", () => {
    const dist = fakeDist();
    expect(run(dist, ["build", "x"])).toEqual({
      status: 0,
      stdout: "build,xbuild,x bundle.cjs\nstrict\n",
      states: both("build", "absent"),
      stderr: "",
    });
    expect(run(dist, ["build", "y"])).toEqual({
      status: 0,
      stdout: "build,ybuild,y bundle.cjs\nstrict\n",
      states: both("build", "taken"),
      stderr: "",
    });
    // Another command has code of its own.
    expect(run(dist, ["--serve"]).states).toEqual(both("serve", "absent"));
    expect(run(dist, ["/some/file.json"]).states[0]).toBe("other/bundle.cjs absent");
  });

  it("is not made by a run that fails", () => {
    const dist = fakeDist();
    expect(run(dist, ["build", "fail"]).status).toBe(3);
    expect(run(dist, ["build"]).states).toEqual(both("build", "absent"));
    expect(run(dist, ["build"]).states).toEqual(both("build", "taken"));
  });

  it("is refused when it is not V8's, and made again", () => {
    const dist = fakeDist();
    run(dist, ["build"]);
    const [bundleCode] = saved(dist, "build").filter((f) => f.startsWith("bundle.cjs-"));
    writeFileSync(join(dist, "code-cache/build", bundleCode!), "not code at all");
    expect(run(dist, ["build"])).toEqual({
      status: 0,
      stdout: "buildbuild bundle.cjs\nstrict\n",
      states: ["build/bundle.cjs refused", "build/helper.cjs taken"],
      stderr: "",
    });
    expect(run(dist, ["build"]).states).toEqual(both("build", "taken"));
  });

  it("is not taken for another build of the bundle, even one of the same length", () => {
    const dist = fakeDist();
    run(dist, ["build"]);
    const bundle = join(dist, "bundle.cjs");
    const source = readFileSync(bundle, "utf8");
    // Same length, other behaviour: V8 itself would take the old code for it.
    writeFileSync(bundle, source.replace("exitCode = 3", "exitCode = 4"));
    utimesSync(bundle, new Date(), new Date(Date.now() + 5000));
    const r = run(dist, ["build", "fail"]);
    expect([r.status, r.states[0]]).toEqual([4, "build/bundle.cjs absent"]);
    run(dist, ["build"]);
    expect(run(dist, ["build"]).states[0]).toBe("build/bundle.cjs taken");
    // The old build's code went when the new one's was saved.
    expect(saved(dist, "build").filter((f) => f.startsWith("bundle.cjs-"))).toHaveLength(1);
  });

  it("is not needed: where it cannot be saved, the command runs the same", () => {
    const dist = fakeDist();
    // A file where the cache directory would be: nothing can be made under it.
    writeFileSync(join(dist, "code-cache"), "");
    for (let i = 0; i < 2; i++) {
      expect(run(dist, ["build"])).toEqual({
        status: 0,
        stdout: "buildbuild bundle.cjs\nstrict\n",
        states: both("build", "absent"),
        stderr: "",
      });
    }
  });

  it("belongs to scripts that run strict, as their ES-module sources did", () => {
    for (const script of ["dist/nixstate.cjs", "dist/vendor/xstate.cjs"]) {
      expect(readFileSync(join(repoRoot, script), "latin1").slice(0, 13)).toBe('"use strict";');
    }
  });

  it("serves the real command line, as the README shows", () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    const block =
      /```console\n\$ NIXSTATE_DEBUG_CODE_CACHE=1 nixstate --version\n([\s\S]*?)```/.exec(readme);
    expect(block).not.toBeNull();
    const [cacheLine, versionLine] = block![1]!.trimEnd().split("\n");
    const env = { NIXSTATE_DEBUG_CODE_CACHE: "1" };
    runCli(["--version"], { env });
    const r = runCli(["--version"], { env });
    expect(r.status).toBe(0);
    const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    expect([r.stdout.toString(), versionLine]).toEqual([`${version}\n`, version]);
    // The README's line with this checkout's path, size and time in place of its own.
    const shape = (line: string) =>
      line
        .replace(/^code cache .*\/dist\//, "code cache …/dist/")
        .replace(/-\d+-\d+\.bin/, "-N-T.bin");
    expect(shape(r.stderr.trimEnd())).toBe(shape(cacheLine!));
    expect(r.stderr).toMatch(
      /code cache .*dist\/code-cache\/version\/nixstate\.cjs-\d+-\d+\.bin: taken/,
    );
  });
});
