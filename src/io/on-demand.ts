// Packages loaded at first use, not at every start: most commands never need them, and loading
// them costs every `nixstate` start (BENCHMARKS.md, "Start-up"). Node ≥ 20.19 loads an ES module
// through require(), which keeps these synchronous for callers. Always require(), never import():
// the bundle runs as a script with saved code (bin/run-bundle.mjs), where Node 20 loses the
// callback that import() needs.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const load = createRequire(import.meta.url);

/** The exports of package `id` (or of the file it names), loaded at the first call. */
function onDemand<T>(id: string | (() => string)): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= load(typeof id === "string" ? id : id()) as T;
    return loaded;
  };
}

/** dist/, in the bundle (scripts/bundle.mjs defines it in dist/nixstate.cjs); not from sources. */
declare const __nixstateDist: URL | undefined;

type Execa = typeof import("execa");
// The bundle's own copy of execa is one file; from sources, the package.
const execaModule = onDemand<Execa>(
  typeof __nixstateDist === "undefined"
    ? "execa"
    : fileURLToPath(new URL("vendor/execa.mjs", __nixstateDist)),
);

/** execa (~150 modules, ~100 ms; ~25 ms bundled): only remote builds start processes through it. */
export const execa: Execa["execa"] = ((...args: unknown[]) =>
  (execaModule().execa as (...a: unknown[]) => unknown)(...args)) as Execa["execa"];

type LogUpdate = typeof import("log-update");
const logUpdateModule = onDemand<LogUpdate>("log-update");

/** log-update brings string-width's emoji expression (~14 ms): only the live terminal view. */
export const createLogUpdate: LogUpdate["createLogUpdate"] = (...args) =>
  logUpdateModule().createLogUpdate(...args);

/** ws, with Node's stream modules (~12 ms): only runs sent to an inspector. */
export const webSocket = onDemand<typeof import("ws").default>("ws");

/** esbuild, which bundles the viewer's page script. */
export const esbuild = onDemand<typeof import("esbuild")>("esbuild");

/**
 * tsx's loader, for derivations written in TypeScript (`build -f file.ts`): its ES-module build,
 * which require() would not choose (tsx's CommonJS build of `tsImport` looks for a file it lacks).
 */
export const tsxApi = onDemand<typeof import("tsx/esm/api")>(() =>
  join(dirname(load.resolve("tsx/package.json")), "dist/esm/api/index.mjs"),
);
