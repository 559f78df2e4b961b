// Bundles the command line into one ES module, dist/nixstate.mjs, with its pure-JavaScript
// dependencies inside: Node resolves, lexes and compiles each package it loads on its own at
// every start (BENCHMARKS.md, "Start-up"). Left outside: native or binary packages
// (better-sqlite3, esbuild), tsx (only for .ts build files), what is loaded on first use (execa,
// log-update, ws), and xstate, whose machine definitions name guards by their functions' names
// (`and`), which bundling renames where names clash (keeping every name costs as much as loading
// xstate on its own).
import { writeFileSync } from "node:fs";
import { build } from "esbuild";

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/nixstate.mjs",
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
