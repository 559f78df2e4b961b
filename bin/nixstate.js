#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ when it is at least as new as every source file (built by
// `npm ci`/`npm run build`), and the TypeScript sources through tsx otherwise, so an edit is never
// run stale.
import { readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = new URL("..", import.meta.url);

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function distIsFresh() {
  try {
    return (
      statSync(new URL("dist/.stamp", root)).mtimeMs >=
      newestSource(fileURLToPath(new URL("src", root)))
    );
  } catch {
    return false;
  }
}

if (distIsFresh()) {
  // The bundle (scripts/bundle.mjs): the ~190 separate source modules would cost Node far more to
  // resolve and compile at every start.
  const { runBundle } = await import("./run-bundle.mjs");
  runBundle(fileURLToPath(new URL("dist/nixstate.cjs", root)), process.argv.slice(2));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("src/cli/main.ts", root).href);
}
