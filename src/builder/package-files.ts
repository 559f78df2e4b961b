// Files of the nixstate package itself (bin/nixstate.js, the Node spawner), found from wherever
// this code runs: the TypeScript sources (src/…), tsc's output (dist/…) or the bundle
// (dist/nixstate.cjs), which sit at different depths.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The folder holding nixstate's package.json. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "nixstate") {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find nixstate's package.json above its code");
    dir = up;
  }
}

/** Whether this code runs from the TypeScript sources (through tsx), not a build. */
export function runningFromSources(): boolean {
  return fileURLToPath(import.meta.url).endsWith(".ts");
}

/** `bin/nixstate.js`, the command (it picks the build or the sources itself). */
export function nixstateBin(): string {
  return join(packageRoot(), "bin/nixstate.js");
}
