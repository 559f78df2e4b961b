// Runs the bundle, dist/nixstate.cjs, with the code V8 compiled for the same command in an
// earlier run: compiling the bundle's functions was ~45 ms of a 220 ms `build` start. V8 saves a
// script's code (not an ES module's, on Node 20), one file a command and script in
// dist/code-cache/, made at the exit of the first successful run that found none (or one V8
// refused: another Node, other flags) and read by every later run. Where dist/ cannot be
// written, runs go on without.
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import Module, { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { setFlagsFromString } from "node:v8";
import { Script } from "node:vm";

/** The saved code's name for the command line `args`: its first word, or "other". */
export function codeCacheKey(args) {
  const m = /^-{0,2}([a-z][a-z-]{0,40})$/.exec(args[0] ?? "");
  return m ? m[1] : "other";
}

/** Runs `bundle`, all ASCII (scripts/bundle.mjs checks), for the command line `args`. */
export function runBundle(bundle, args) {
  // Before compiling: V8 takes saved code only under the flags it was made with, and the
  // command line (src/cli/main.ts) sets this one too, to the same value (else every run's code
  // would be refused: test/cli/code-cache.test.ts would see it).
  setFlagsFromString("--heap-growing-percent=30");
  const dist = dirname(bundle);
  const cacheDir = join(dist, "code-cache", codeCacheKey(args));
  // The vendor scripts the bundle requires (xstate) are compiled and saved the same way.
  const vendor = join(dist, "vendor");
  const nodeRequire = createRequire(bundle);
  const loaded = new Map();
  const bundleRequire = (id) => {
    const file = id.startsWith("./vendor/") ? resolve(dist, id) : undefined;
    if (file === undefined || dirname(file) !== vendor || !file.endsWith(".cjs")) {
      return nodeRequire(id);
    }
    if (!loaded.has(file)) loaded.set(file, runScript(file, cacheDir, nodeRequire));
    return loaded.get(file);
  };
  bundleRequire.resolve = nodeRequire.resolve;
  runScript(bundle, cacheDir, bundleRequire);
}

/** Runs the CommonJS script `file` with saved code from `cacheDir`; returns its exports. */
function runScript(file, cacheDir, require) {
  // V8 checks only that the source has the length the code was made from: the file's size and
  // time in the name keep the code of another build from being taken (scripts/bundle.mjs also
  // deletes all saved code when it builds), and a file replaced while being read goes without.
  const before = statSync(file);
  const name = `${basename(file)}-${before.size}-${Math.trunc(before.mtimeMs)}`;
  const cacheFile = join(cacheDir, `${name}.bin`);
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {}
  const source = readFileSync(file, "latin1");
  const after = statSync(file);
  const unchanged = after.size === before.size && after.mtimeMs === before.mtimeMs;
  const script = new Script(Module.wrap(source), {
    filename: file,
    // No import() callback: Node 20 loses it with saved code (and warns of it as experimental),
    // so the bundle has no import() (scripts/bundle.mjs checks).
    cachedData: unchanged ? cachedData : undefined,
  });
  const state = !unchanged
    ? "replaced while read"
    : cachedData === undefined
      ? "absent"
      : script.cachedDataRejected
        ? "refused"
        : "taken";
  if (process.env.NIXSTATE_DEBUG_CODE_CACHE) {
    process.stderr.write(`code cache ${cacheFile}: ${state}\n`);
  }
  // At exit, the code holds every function this run compiled, not only the top level; a run that
  // failed (often early, a usage error) would save little of it.
  if (state === "absent" || state === "refused") {
    process.once("exit", (code) => {
      if (code === 0) saveCode(script, cacheFile, `${basename(file)}-`);
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, require, module, file, dirname(file));
  return module.exports;
}

/** Save `script`'s code as `file`, replacing the code of other builds (`prefix`…) beside it. */
function saveCode(script, file, prefix) {
  // Never fails the run: the code is only an aid. Written aside and renamed, so concurrent runs
  // each replace the file whole.
  const dir = dirname(file);
  const aside = `${file}.${process.pid}`;
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    writeFileSync(aside, script.createCachedData());
    renameSync(aside, file);
    for (const old of readdirSync(dir)) {
      if (old.startsWith(prefix) && old.endsWith(".bin") && join(dir, old) !== file) {
        rmSync(join(dir, old), { force: true });
      }
    }
  } catch {
    try {
      rmSync(aside, { force: true });
    } catch {}
  }
}
