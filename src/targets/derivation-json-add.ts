// `nixstate derivation add`: derivations in `nix show-derivation`'s JSON written to the store as
// .drv files. Unlike a JSON derivation target (json-derivation.ts), nothing is filled in: the JSON
// must say everything, its output paths must be the ones Nix computes and a `.drv` key must be the
// path the derivation hashes to, so what goes in is byte for byte the .drv Nix would write.
import { basename } from "node:path";
import { printDerivation } from "../derivation/aterm-print.ts";
import type { Derivation, DerivationOutput } from "../derivation/derivation.ts";
import { DerivationError } from "../derivation/errors.ts";
import { derivationReferences, fillInOutputPaths } from "../derivation/hash-modulo.ts";
import { derivationFromJson } from "../derivation/show-json.ts";
import { validateDerivation } from "../derivation/validate.ts";
import { Hash } from "../hash/hash.ts";
import type { LocalStore } from "../store/local-store.ts";
import { makeTextPath } from "../store-path/make-store-path.ts";

export interface AddDerivationsContext {
  store: LocalStore;
  readDerivation: (drvPath: string) => Derivation;
  /** Bring inputs the store lacks from elsewhere (a Nix store), or throw saying what is missing. */
  importInputs: (paths: string[]) => Promise<void>;
}

interface Entry {
  /** The .drv path the JSON names it by, if it does. */
  key: string | undefined;
  drv: Derivation;
}

/** A derivation's name from its .drv path (`<hash>-<name>.drv`). */
function nameOfKey(key: string): string {
  return basename(key).slice(33, -".drv".length);
}

function entriesOf(json: unknown, source: string): Entry[] {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new DerivationError(
      `${source}: expected nix show-derivation's JSON (an object of derivations keyed by .drv path, or one derivation)`,
    );
  }
  const keys = Object.keys(json);
  const one = (value: unknown, key: string | undefined): Entry => {
    const env = (value as { env?: Record<string, unknown> }).env;
    const name = key !== undefined ? nameOfKey(key) : env?.name;
    if (typeof name !== "string" || name === "")
      throw new DerivationError(`${source}: the derivation has no name (env.name)`);
    try {
      return { key, drv: derivationFromJson(value, name) };
    } catch (e) {
      if (e instanceof DerivationError)
        throw new DerivationError(`${source}${key ? ` (${key})` : ""}: ${e.message}`);
      throw e;
    }
  };
  if (keys.length > 0 && keys.every((k) => k.endsWith(".drv")))
    return keys.map((k) => one((json as Record<string, unknown>)[k], k));
  return [one(json, undefined)];
}

/**
 * Write the derivations in `json` (inputs first, within the JSON and from outside it) to the
 * store; returns their .drv paths in the JSON's order.
 */
export async function addDerivationsJson(
  json: unknown,
  source: string,
  ctx: AddDerivationsContext,
): Promise<string[]> {
  const { store } = ctx;
  const entries = entriesOf(json, source);
  const inJson = new Set(entries.flatMap((e) => (e.key === undefined ? [] : [e.key])));
  const missing = new Set<string>();
  for (const { drv } of entries) {
    for (const p of [...drv.inputSrcs, ...drv.inputDrvs.keys()])
      if (!inJson.has(p) && !store.isValidPath(p)) missing.add(p);
  }
  if (missing.size > 0) await ctx.importInputs([...missing].sort());

  const added = new Map<string, string>();
  const paths = new Array<string>(entries.length);
  let pending = entries.map((e, i) => ({ ...e, i }));
  while (pending.length > 0) {
    // Inputs first: a derivation's output paths hash its input derivations' texts.
    const ready = pending.filter((e) =>
      [...e.drv.inputDrvs.keys()].every((p) => !inJson.has(p) || added.has(p)),
    );
    if (ready.length === 0)
      throw new DerivationError(
        `${source}: the derivations depend on each other in a cycle (${pending.map((e) => e.key).join(", ")})`,
      );
    for (const e of ready) {
      const path = addOne(e.drv, e.key, source, ctx);
      if (e.key !== undefined) added.set(e.key, path);
      paths[e.i] = path;
    }
    pending = pending.filter((e) => !ready.includes(e));
  }
  return paths;
}

function addOne(
  drv: Derivation,
  key: string | undefined,
  source: string,
  ctx: AddDerivationsContext,
): string {
  const { store } = ctx;
  const where = `${source}: derivation '${key ?? drv.name}'`;
  validateDerivation(drv, store.storeDir, key ?? drv.name);
  // The output paths must be Nix's: compute them and compare.
  const blank: Derivation = {
    ...drv,
    outputs: new Map(
      [...drv.outputs].map(([o, out]): [string, DerivationOutput] => [
        o,
        out.type === "inputAddressed" ? { type: "deferred" } : out,
      ]),
    ),
  };
  const computed = fillInOutputPaths(blank, store.storeDir, ctx.readDerivation);
  for (const [o, out] of drv.outputs) {
    const want = computed.outputs.get(o);
    const wantPath = want && want.type !== "deferred" ? want.path : "";
    const got = out.type === "deferred" ? "" : out.path;
    if (got !== wantPath)
      throw new DerivationError(
        `${where}: output '${o}' should be at '${wantPath}', but the JSON says '${got}'`,
      );
  }
  const aterm = printDerivation(drv);
  const references = derivationReferences(drv);
  const path = store.storeDir.print(
    makeTextPath(
      store.storeDir,
      `${drv.name}.drv`,
      Hash.of("sha256", aterm),
      references.map((r) => store.parseStorePath(r)),
    ),
  );
  if (key !== undefined && key !== path)
    throw new DerivationError(`${where} hashes to '${path}', not to the path it is keyed by`);
  return store.addTextToStore(`${drv.name}.drv`, aterm, references).path;
}
