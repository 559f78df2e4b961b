// `nixstate build -f FILE [-A ATTR]`: build what a TypeScript (or JavaScript) file exports.
import { pathToFileURL } from "node:url";
import { DerivationError } from "../derivation/errors.ts";
import { tsxApi } from "../io/on-demand.ts";
import type { BuildTarget } from "../machines/build-attempt.ts";
import type { LocalStore } from "../store/local-store.ts";
import { sharedState } from "./brand.ts";
import { flattenBuildables, writeDerivations } from "./build.ts";
import { nodeOf } from "./make-derivation.ts";

/** `a.b.c` in a module's exports (`a` a named export, or `default.x` explicitly). */
function pick(mod: Record<string, unknown>, attr: string, file: string): unknown {
  let value: unknown = mod;
  let path = "";
  for (const part of attr.split(".")) {
    path = path ? `${path}.${part}` : part;
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, part)) {
      const names =
        path === part ? ` (it exports: ${Object.keys(mod).join(", ") || "nothing"})` : "";
      throw new DerivationError(`${file} has no attribute '${path}'${names}`);
    }
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * Load `file` (TypeScript through tsx, or JavaScript) with `derivation()` defaulting to this
 * store's directory, write the .drv closure of what it exports into the store, and return the
 * build targets: the default export, or each `-A` attribute (dotted paths into the exports); a
 * derivation (all outputs), one output (`drv.dev`), or arrays and objects of those.
 */
export async function loadFileTargets(
  store: LocalStore,
  file: string,
  attrs: readonly string[] = [],
): Promise<BuildTarget[]> {
  const shared = sharedState();
  const before = shared.defaults;
  shared.defaults = { storeDir: store.storeDir.path, stateDir: store.layout.stateDir };
  let mod: Record<string, unknown>;
  try {
    const { tsImport } = tsxApi();
    mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
  } catch (e) {
    // "nixstate" is an ES module with top-level await: a file loaded as CommonJS cannot use it.
    if (e instanceof Error && /"cjs" output format/.test(e.message))
      throw new DerivationError(
        `${file} was loaded as CommonJS, which cannot import "nixstate": name it .mts, or put it in a package with "type": "module" (${e.message.split("\n")[0]})`,
      );
    throw e;
  } finally {
    shared.defaults = before;
  }
  const values =
    attrs.length > 0
      ? attrs.map((a) => ({ where: a, value: pick(mod, a, file) }))
      : [{ where: "the default export", value: pick(mod, "default", file) }];
  const wanted = values.flatMap(({ where, value }) => flattenBuildables(value, where).map(nodeOf));
  writeDerivations(
    store,
    wanted.map((w) => w.node),
  );
  return wanted.map((w) => ({ drvPath: w.node.drvPath, outputs: w.outputs }));
}
