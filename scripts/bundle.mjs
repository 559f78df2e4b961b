// Bundles the command line into ES modules, dist/nixstate.mjs and its chunks, with its pure-JavaScript
// dependencies inside: Node resolves, lexes and compiles each package it loads on its own at
// every start (BENCHMARKS.md, "Start-up"). Left outside: native or binary packages
// (better-sqlite3, esbuild), tsx (only for .ts build files), what is loaded on first use (execa,
// log-update, ws), and xstate, whose machine definitions name guards by their functions' names
// (`and`), which bundling renames where names clash (keeping every name costs as much as loading
// xstate on its own).
import { rmSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

// Chunks of an earlier build would stay beside the new ones; without the stamp, a bundle that
// fails to build is not taken for fresh (bin/nixstate.js then runs the sources).
rmSync("dist/.stamp", { force: true });
rmSync("dist/chunks", { recursive: true, force: true });
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
    js: 'import { createRequire as __nixstateRequire } from "node:module"; const require = __nixstateRequire(import.meta.url);',
  },
  logLevel: "warning",
});
writeFileSync("dist/.stamp", "");
