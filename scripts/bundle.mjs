// Bundles the command line into one CommonJS script, dist/nixstate.cjs, with its pure-JavaScript
// dependencies inside: Node resolves, lexes and compiles each package or ES module it loads on its
// own at every start (BENCHMARKS.md, "Start-up"). A script, not an ES module, because V8 can save
// a script's compiled code and take it back at the next start (bin/run-bundle.mjs), and Node 20
// offers that for no ES module. Left outside: binary packages (esbuild, better-sqlite3's addon),
// tsx (only for .ts build files), what is loaded on first use (execa, log-update, ws), and xstate.
// execa, which remote builds load (the serve transport), gets a bundle of its own,
// dist/vendor/execa.mjs: one file for Node to load instead of ~150 modules (~100 → ~25 ms here).
// xstate gets one too, dist/vendor/xstate.cjs, with its functions' names kept: its guard helpers
// are known by name (`and`), which bundling with our code would rename where names clash.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

// Files of an earlier build would stay beside the new ones; without the stamp, a bundle that
// fails to build is not taken for fresh (bin/nixstate.js then runs the sources). Saved compiled
// code belongs to the bundle it was made from.
rmSync("dist/.stamp", { force: true });
for (const old of ["chunks", "vendor", "code-cache", "nixstate.mjs"]) {
  rmSync(`dist/${old}`, { recursive: true, force: true });
}

/** Imports of `name` left to Node as a require of dist/vendor/`file`, bundled below. */
function vendored(name, file) {
  return {
    name: `vendored-${name}`,
    setup(b) {
      b.onResolve({ filter: new RegExp(`^${name}$`) }, () => ({
        path: `./vendor/${file}`,
        external: true,
      }));
    },
  };
}

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/nixstate.cjs",
  bundle: true,
  platform: "node",
  format: "cjs",
  // better-sqlite3's JavaScript is inside; its addon is loaded by path (src/store/sqlite-addon.ts).
  external: ["esbuild", "tsx", "execa", "log-update", "ws", "bindings"],
  plugins: [vendored("xstate", "xstate.cjs")],
  // Less source for Node to read and V8 to scan at every start (names stay, for stack traces).
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  // The sources are ES modules: a script has no import.meta, so its uses get the bundle's file.
  // (import.meta.resolve is only called when running from sources.)
  define: { "import.meta.url": "__nixstateUrl", "import.meta.resolve": "__nixstateResolve" },
  // dist/ itself: src/io/on-demand.ts finds the vendor bundles by it.
  // "use strict" first: after the banner's statements, esbuild's own would be no directive, and
  // the sources are ES modules, strict throughout (a frozen object must refuse writes).
  banner: {
    js: [
      '"use strict";',
      'const __nixstateUrl = require("node:url").pathToFileURL(__filename).href;',
      'const __nixstateResolve = (id) => require("node:url").pathToFileURL(require.resolve(id)).href;',
      'const __nixstateDist = new URL("./", __nixstateUrl);',
    ].join(" "),
  },
  logLevel: "warning",
});
await build({
  entryPoints: { "vendor/xstate": "xstate" },
  outdir: "dist",
  outExtension: { ".js": ".cjs" },
  bundle: true,
  platform: "node",
  format: "cjs",
  keepNames: true,
  banner: { js: '"use strict";' },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  logLevel: "warning",
});
// bin/run-bundle.mjs reads these as Latin-1, which Node does in a third of the time of UTF-8
// (esbuild escapes what strings hold beyond ASCII; minifying drops the comments). And it runs them
// with saved code, where Node 20 cannot run import(): packages load through require()
// (src/io/on-demand.ts).
for (const script of ["dist/nixstate.cjs", "dist/vendor/xstate.cjs"]) {
  const bytes = readFileSync(script);
  if (!bytes.toString("latin1", 0, 13).startsWith('"use strict";')) {
    throw new Error(`${script} does not start with "use strict": it would run in sloppy mode`);
  }
  if (bytes.some((byte) => byte > 0x7f)) {
    throw new Error(`${script} holds bytes beyond ASCII: bin/run-bundle.mjs reads it as Latin-1`);
  }
  const dynamicImport = /(?<![\w$.])import\(/.exec(bytes.toString("latin1"));
  if (dynamicImport) {
    throw new Error(`${script} calls import() (at ${dynamicImport.index}): load it with require()`);
  }
}
await build({
  entryPoints: { "vendor/execa": fileURLToPath(import.meta.resolve("execa")) },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  // cross-spawn and others inside are CommonJS and require Node's built-ins.
  banner: {
    js: 'import { createRequire as __nixstateRequire } from "node:module"; const require = __nixstateRequire(import.meta.url);',
  },
  logLevel: "warning",
});
writeFileSync("dist/.stamp", "");
