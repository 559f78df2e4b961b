// Copying store paths over a serve session, both ways, as remote builds need: inputs to the
// build machine before BuildDerivation, outputs back after it (serve-protocol.md §8.1–8.3).

import { dumpNar } from "../nar/nar-dump.ts";
import { pathInfoInputFromServe } from "../protocol/serve/serve-path-info.ts";
import { formatServeVersion, supportsServeFeature } from "../protocol/serve/serve-version.ts";
import type { LocalStore } from "../store/local-store.ts";
import { topoSortPaths } from "../store/path-graph.ts";
import type { PathInfoInput } from "../store/path-info.ts";
import type { QueryValidPathsOptions, ServeClient } from "./serve-client.ts";

export class ServeCopyError extends Error {
  override name = "ServeCopyError";
}

/**
 * Make the closure of `paths` (valid in `store`) valid on the server: ask which are there, then
 * send the others dependencies first, one AddToStoreNar each (server ≥ 2.5, as Nix 2.8 does) or
 * one ImportPaths export stream for older servers. Returns the paths sent, in that order.
 */
export async function copyClosureToServe(
  store: LocalStore,
  client: ServeClient,
  paths: Iterable<string>,
  options: QueryValidPathsOptions = {},
): Promise<string[]> {
  const closure = store.computeFSClosure(paths);
  const present = new Set(await client.queryValidPaths(closure, options));
  const missing = store.topoSortPaths(closure.filter((p) => !present.has(p)));
  if (missing.length === 0) return [];
  if (supportsServeFeature(client.version, "addToStoreNar")) {
    for (const path of missing) {
      await client.addToStoreNar(store.queryPathInfo(path), dumpNar(store.toRealPath(path)));
    }
  } else {
    await client.importPaths(store.exportPaths(missing));
  }
  return missing;
}

/**
 * Make the closure of `paths` (valid on the server) valid in `store`: path infos of the paths
 * missing locally, then each NAR, dependencies first, checked against the server's NAR hash and
 * size by the import. Signatures are not required (as Nix's build hook). Returns the paths
 * imported, in that order. `adjust` may change what is registered (a build's deriver, ultimate);
 * `lockHeld` names paths whose locks the caller holds (a build's outputs, locked by the worker).
 */
export async function copyClosureFromServe(
  client: ServeClient,
  store: LocalStore,
  paths: Iterable<string>,
  adjust: (info: PathInfoInput) => PathInfoInput = (info) => info,
  lockHeld: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  if (!supportsServeFeature(client.version, "pathInfoHashes")) {
    throw new ServeCopyError(
      `copying paths back needs their NAR hashes, sent from serve protocol 2.4 on; this session speaks ${formatServeVersion(client.version)}`,
    );
  }
  const closure = await client.queryClosure(paths, false);
  const missing = closure.filter((p) => !store.isValidPath(p));
  if (missing.length === 0) return [];
  const infos = new Map((await client.queryPathInfos(missing)).map((i) => [i.path, i]));
  for (const path of missing) {
    if (!infos.has(path)) {
      throw new ServeCopyError(
        `'${path}' is in the server's closure but it has no path info for it (deleted meanwhile?)`,
      );
    }
  }
  const order = topoSortPaths(missing, (p) => infos.get(p)?.references ?? []);
  for (const path of order) {
    const info = adjust(pathInfoInputFromServe(infos.get(path)!));
    await store.importPath(info, client.dumpStorePath(path), { lockHeld: lockHeld.has(path) });
  }
  return order;
}
