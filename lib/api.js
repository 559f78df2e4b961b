// The package's entry point (`import { derivation, build } from "nixstate"`): the compiled
// dist/api/index.js when it is at least as new as every source file (as bin/nixstate.js decides),
// else the TypeScript sources through tsx, so an edit is never run stale.
import { readdirSync, statSync } from "node:fs";

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
      statSync(new URL("dist/.stamp", root)).mtimeMs >= newestSource(new URL("src", root).pathname)
    );
  } catch {
    return false;
  }
}

async function load() {
  if (distIsFresh()) return import(new URL("dist/api/index.js", root).href);
  const { tsImport } = await import("tsx/esm/api");
  return tsImport(new URL("src/api/index.ts", root).href, import.meta.url);
}

const api = await load();

export const { build, derivation, isDerivation, isDerivationOutput, nixstate } = api;
