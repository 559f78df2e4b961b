// Bundles the command line into ES modules, dist/nixstate.mjs and its chunks, with its pure-JavaScript
// dependencies inside: Node resolves, lexes and compiles each package it loads on its own at
// every start (BENCHMARKS.md, "Start-up"). Left outside: native or binary packages
// (better-sqlite3, esbuild), tsx (only for .ts build files), what is loaded on first use (execa,
// log-update, ws), and xstate, whose machine definitions name guards by their functions' names
// (`and`), which bundling renames where names clash (keeping every name costs as much as loading
// xstate on its own). execa, which remote builds load (the serve transport), gets a bundle of its own,
// dist/vendor/execa.mjs: one file for Node to load instead of ~150 modules (~100 → ~25 ms here).
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
  external: ["better-sqlite3", "esbuild", "tsx", "execa", "log-update", "ws", "xstate"],
  // The CommonJS package inside (commander) calls require() for Node's built-ins.
  banner: {
    js: `${requireBuiltins} ${distRoot}`,
  },
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
