// Bundles the command line into ES modules, dist/nixstate.mjs and its chunks, with its pure-JavaScript
// dependencies inside: Node resolves, lexes and compiles each package it loads on its own at
// every start (BENCHMARKS.md, "Start-up"). Left outside: native or binary packages
// (better-sqlite3, esbuild), tsx (only for .ts build files), what is loaded on first use (execa,
// log-update, ws), and xstate. execa, which remote builds load (the serve transport), gets a bundle
// of its own, dist/vendor/execa.mjs: one file for Node to load instead of ~150 modules (~100 → ~25
// ms here). xstate gets one too, dist/vendor/xstate.mjs, from its ES-module build and with its
// functions' names kept (its guard helpers are known by name, `and`, which bundling with our code
// would rename where names clash): Node loads xstate's package as CommonJS through a wrapper,
// ~18 ms a start, the vendor file in ~5. The bundle imports it as `#vendor/xstate`
// (package.json's "imports"), which Node resolves from the package root wherever it lies.
import { rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

// Chunks of an earlier build would stay beside the new ones; without the stamp, a bundle that
// fails to build is not taken for fresh (bin/nixstate.js then runs the sources).
rmSync("dist/.stamp", { force: true });
rmSync("dist/chunks", { recursive: true, force: true });
rmSync("dist/vendor", { recursive: true, force: true });
// CommonJS code inside a bundle calls require() for Node's built-ins.
const requireBuiltins =
  'import { createRequire as __nixstateRequire } from "node:module"; const require = __nixstateRequire(import.meta.url);';
// Every output file knows where dist/ is (src/io/on-demand.ts finds the vendor bundles by it).
const distRoot =
  'const __nixstateDist = new URL(import.meta.url.includes("/chunks/") ? "../" : "./", import.meta.url);';
/** Imports of `name` left to Node as `#vendor/name`, its bundle in dist/vendor/. */
function vendored(name) {
  return {
    name: `vendored-${name}`,
    setup(b) {
      b.onResolve({ filter: new RegExp(`^${name}$`) }, () => ({
        path: `#vendor/${name}`,
        external: true,
      }));
    },
  };
}

await build({
  entryPoints: { nixstate: "src/cli/main.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  // Each command's module is loaded when that command runs (src/cli/program.ts): a chunk
  // of its own, and what commands share in shared chunks.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  platform: "node",
  format: "esm",
  external: ["better-sqlite3", "esbuild", "tsx", "execa", "log-update", "ws"],
  plugins: [vendored("xstate")],
  // The CommonJS package inside (commander) calls require() for Node's built-ins.
  banner: {
    js: `${requireBuiltins} ${distRoot}`,
  },
  logLevel: "warning",
});
await build({
  entryPoints: { "vendor/xstate": "xstate" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  // xstate's ES-module build, not the CommonJS one Node's "import" condition picks.
  conditions: ["module"],
  keepNames: true,
  logLevel: "warning",
});
await build({
  entryPoints: { "vendor/execa": fileURLToPath(import.meta.resolve("execa")) },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  // cross-spawn and others inside are CommonJS and require Node's built-ins.
  banner: {
    js: requireBuiltins,
  },
  logLevel: "warning",
});
writeFileSync("dist/.stamp", "");
