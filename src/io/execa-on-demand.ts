// execa, loaded on first call: its ~150 modules cost every `nixstate` start about 90 ms, and most
// commands (--version, serve without builds, queries) never start a process. Node ≥ 20.19 loads
// an ES module through require(), which keeps this synchronous for callers.
import { createRequire } from "node:module";

type Execa = typeof import("execa");

let loaded: Execa | undefined;

function load(): Execa {
  loaded ??= createRequire(import.meta.url)("execa") as Execa;
  return loaded;
}

export const execa: Execa["execa"] = ((...args: unknown[]) =>
  (load().execa as (...a: unknown[]) => unknown)(...args)) as Execa["execa"];
