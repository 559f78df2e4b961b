// `derivation(attrs)` in TypeScript: the .drv Nix 2.8's `builtins.derivation` would write for the
// same attribute set, computed without touching the store.
//
// String context: a Nix string remembers which derivation outputs it was built from; a JS string
// does not. Instead every output path of a derivation made here is registered, and the builder,
// args and env of a new derivation are scanned for those paths: each one found makes that output
// an input, as interpolating `${drv}` does in Nix. Paths of derivations not made through this API
// (or written out by hand before the derivation was made) are not found.
import { nixSystem } from "../builder/build-settings.ts";
import { printDerivation } from "../derivation/aterm-print.ts";
import type { DerivationOutput, Derivation as DrvData } from "../derivation/derivation.ts";
import { DerivationError } from "../derivation/errors.ts";
import { type DrvHashCache, derivationPath, fillInOutputPaths } from "../derivation/hash-modulo.ts";
import { validateDerivation } from "../derivation/validate.ts";
import { HASH_SIZE, Hash, HashParseError, isHashAlgo } from "../hash/hash.ts";
import { type FileIngestionMethod, makeFixedOutputPath } from "../store-path/make-store-path.ts";
import { HASH_PART_LEN, type StoreDir } from "../store-path/store-path.ts";
import { type AttrValue, attrNames, coerceToEnvString, toNixJson } from "./attr-coercion.ts";
import {
  type ApiDerivation,
  type ApiOutput,
  DERIVATION_BRAND,
  type DrvNode,
  isApiDerivation,
  isApiOutput,
  OUTPUT_BRAND,
  type RegisteredOutput,
  sharedState,
} from "./brand.ts";

/**
 * The attributes of a derivation, as for Nix's `builtins.derivation`. Every attribute but `args`
 * (and `__ignoreNulls`, `__contentAddressed`/`__impure` when false) becomes an environment
 * variable of the builder, coerced as Nix does: `true` → "1", `false`/`null` → "", numbers in
 * decimal (non-integers with six decimals), lists joined with spaces, derivations → their default
 * output's path. Attributes whose value is `undefined` are left out.
 */
export interface DerivationAttrs {
  /** The derivation's name: part of every path it makes; must not end in `.drv`. */
  name: string;
  /** The platform that builds it, e.g. `x86_64-linux` (default: this machine's). */
  system?: string;
  /** The program run to build it (a store path of an input, or e.g. `/bin/sh`). */
  builder: string;
  /** The builder's arguments (coerced like env values; not in the environment). */
  args?: readonly AttrValue[];
  /** Output names (default `["out"]`); the first is the default output. */
  outputs?: readonly string[];
  /** A fixed output's expected hash (`sha256:…`, SRI, or a digest with `outputHashAlgo`). */
  outputHash?: string;
  /** The algorithm of `outputHash`: md5, sha1, sha256 or sha512. */
  outputHashAlgo?: string;
  /** `flat` (the default: the output is one file) or `recursive` (the NAR of the output). */
  outputHashMode?: "flat" | "recursive";
  /** Pass attributes as JSON (`__json`; `.attrs.json` for the builder) instead of env vars. */
  __structuredAttrs?: boolean;
  /** Leave out attributes whose value is `null` (instead of setting them to ""). */
  __ignoreNulls?: boolean;
  /** Any other attribute: an environment variable (or a JSON attribute, when structured). */
  readonly [attr: string]: AttrValue | undefined;
}

/** Output names of `attrs`: its `outputs` list, or `out`. */
export type OutputNames<A> = A extends { outputs: readonly (infer N extends string)[] } ? N : "out";

function storePathRegExp(storeDir: StoreDir): RegExp {
  const dir = storeDir.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`${dir}/([0-9a-df-np-sv-z]{${HASH_PART_LEN}})-`, "g");
}

/**
 * The outputs of derivations made through this API whose paths occur in `texts`: what a Nix
 * string's context would hold. A path followed by more characters (`${drv}/bin/sh`) counts.
 */
export function scanForOutputs(texts: Iterable<string>, storeDir: StoreDir): RegisteredOutput[] {
  const registry = sharedState().outputs;
  const found = new Map<string, RegisteredOutput>();
  const re = storePathRegExp(storeDir);
  for (const text of texts) {
    for (const m of text.matchAll(re)) {
      for (const o of registry.get(`${storeDir.path}/${m[1]}`) ?? []) {
        if (text.startsWith(o.outPath, m.index)) found.set(o.outPath, o);
      }
    }
  }
  return [...found.values()];
}

function register(node: DrvNode, outputName: string, outPath: string): void {
  const registry = sharedState().outputs;
  const key = outPath.slice(0, node.storeDir.length + 1 + HASH_PART_LEN);
  const list = registry.get(key) ?? [];
  if (!list.some((o) => o.outPath === outPath)) list.push({ node, outputName, outPath });
  registry.set(key, list);
}

/** Derivation objects reachable from a value must be in the same store directory. */
function checkStoreDirs(value: unknown, storeDir: StoreDir, attr: string, depth = 0): void {
  if (depth > 100) return;
  if (isApiDerivation(value) || isApiOutput(value)) {
    const node = isApiDerivation(value) ? value[DERIVATION_BRAND] : value[OUTPUT_BRAND];
    if (node.storeDir !== storeDir.path)
      throw new DerivationError(
        `attribute '${attr}' holds '${value.drvPath}', made for store directory '${node.storeDir}', not '${storeDir.path}'`,
      );
    return;
  }
  if (Array.isArray(value)) for (const v of value) checkStoreDirs(v, storeDir, attr, depth + 1);
  else if (typeof value === "object" && value !== null)
    for (const [k, v] of Object.entries(value))
      checkStoreDirs(v, storeDir, `${attr}.${k}`, depth + 1);
}

function stringAttr(value: unknown, attr: string): string {
  if (typeof value !== "string")
    throw new DerivationError(`attribute '${attr}' must be a string, not ${typeof value}`);
  return value;
}

function boolAttr(value: unknown, attr: string): boolean {
  if (typeof value !== "boolean")
    throw new DerivationError(`attribute '${attr}' must be a boolean, not ${typeof value}`);
  return value;
}

function hashMode(s: string): FileIngestionMethod {
  if (s === "recursive") return "nar";
  if (s === "flat") return "flat";
  throw new DerivationError(`invalid value '${s}' for 'outputHashMode' attribute`);
}

function outputList(names: readonly string[], drvName: string): string[] {
  const seen: string[] = [];
  for (const n of names) {
    if (seen.includes(n))
      throw new DerivationError(`derivation '${drvName}': duplicate derivation output '${n}'`);
    if (n === "drv")
      throw new DerivationError(`derivation '${drvName}': invalid derivation output name 'drv'`);
    seen.push(n);
  }
  if (seen.length === 0)
    throw new DerivationError(
      `derivation '${drvName}': derivation cannot have an empty set of outputs`,
    );
  return seen;
}

/** Every derivation in the closure of `nodes`, by .drv path. */
function closureByPath(nodes: Iterable<DrvNode>): Map<string, DrvNode> {
  const all = new Map<string, DrvNode>();
  const todo = [...nodes];
  for (let n = todo.pop(); n; n = todo.pop()) {
    if (all.has(n.drvPath)) continue;
    all.set(n.drvPath, n);
    todo.push(...n.inputs);
  }
  return all;
}

/** Memo of modulo hashes of derivations already made (keyed by .drv path, so shared safely). */
function moduloCache(): DrvHashCache {
  const g = globalThis as { [k: symbol]: DrvHashCache | undefined };
  const key = Symbol.for("nixstate.api.moduloCache");
  g[key] ??= new Map();
  return g[key];
}

/** Compute the derivation for `attrs` in `storeDir` (nothing is written). */
export function makeDerivation<const A extends DerivationAttrs>(
  attrs: A,
  storeDir: StoreDir,
): ApiDerivation<OutputNames<A>> {
  if (typeof attrs !== "object" || attrs === null)
    throw new DerivationError("derivation() wants an object of attributes");
  const name = stringAttr(attrs.name, "name");
  const given: Record<string, unknown> = { ...attrs };
  if (given.system === undefined) given.system = nixSystem();
  const structured =
    given.__structuredAttrs !== undefined && boolAttr(given.__structuredAttrs, "__structuredAttrs");
  const ignoreNulls =
    given.__ignoreNulls !== undefined && boolAttr(given.__ignoreNulls, "__ignoreNulls");

  const env = new Map<string, string>();
  const args: string[] = [];
  const json: string[] = [];
  let builder = "";
  let platform = "";
  let outputHash: string | undefined;
  let outputHashAlgo = "";
  let method: FileIngestionMethod | undefined;
  let outputs = ["out"];
  for (const key of attrNames(given)) {
    const value = given[key];
    if (key === "__ignoreNulls" || value === undefined) continue;
    if (ignoreNulls && value === null) continue;
    checkStoreDirs(value, storeDir, key);
    if (key === "__contentAddressed" || key === "__impure") {
      if (boolAttr(value, key))
        throw new DerivationError(
          `derivation '${name}': ${key} needs an experimental Nix feature nixstate does not implement`,
        );
      continue;
    }
    if (key === "args") {
      if (!Array.isArray(value)) throw new DerivationError("attribute 'args' must be a list");
      for (const a of value) args.push(coerceToEnvString(a, "args"));
      continue;
    }
    if (structured) {
      if (key === "__structuredAttrs") continue;
      json.push(`${toNixJson(key, key)}:${toNixJson(value, key)}`);
      if (key === "builder") builder = stringAttr(value, key);
      else if (key === "system") platform = stringAttr(value, key);
      else if (key === "outputHash") outputHash = stringAttr(value, key);
      else if (key === "outputHashAlgo") outputHashAlgo = stringAttr(value, key);
      else if (key === "outputHashMode") method = hashMode(stringAttr(value, key));
      else if (key === "outputs") {
        if (!Array.isArray(value)) throw new DerivationError("attribute 'outputs' must be a list");
        outputs = outputList(
          value.map((v) => stringAttr(v, "outputs")),
          name,
        );
      }
      continue;
    }
    const s = coerceToEnvString(value, key);
    env.set(key, s);
    if (key === "builder") builder = s;
    else if (key === "system") platform = s;
    else if (key === "outputHash") outputHash = s;
    else if (key === "outputHashAlgo") outputHashAlgo = s;
    else if (key === "outputHashMode") method = hashMode(s);
    else if (key === "outputs") outputs = outputList(s.split(/[ \t\n\r]+/).filter(Boolean), name);
  }
  if (structured) env.set("__json", `{${json.join(",")}}`);

  const inputDrvs = new Map<string, string[]>();
  const inputNodes = new Map<string, DrvNode>();
  for (const o of scanForOutputs([builder, ...args, ...env.values()], storeDir)) {
    inputNodes.set(o.node.drvPath, o.node);
    inputDrvs.set(o.node.drvPath, [...(inputDrvs.get(o.node.drvPath) ?? []), o.outputName]);
  }

  if (builder === "")
    throw new DerivationError(`derivation '${name}': required attribute 'builder' missing`);
  if (platform === "")
    throw new DerivationError(`derivation '${name}': required attribute 'system' missing`);
  if (name.endsWith(".drv"))
    throw new DerivationError(`derivation names are not allowed to end in '.drv' ('${name}')`);

  const drvOutputs = new Map<string, DerivationOutput>();
  if (outputHash !== undefined) {
    if (outputs.length !== 1 || outputs[0] !== "out")
      throw new DerivationError(
        `derivation '${name}': multiple outputs are not supported in fixed-output derivations`,
      );
    const algo = outputHashAlgo === "" ? undefined : outputHashAlgo;
    if (algo !== undefined && !isHashAlgo(algo))
      throw new DerivationError(`derivation '${name}': unknown hash algorithm '${algo}'`);
    let hash: Hash;
    try {
      hash =
        outputHash === "" && algo
          ? new Hash(algo, Buffer.alloc(HASH_SIZE[algo]))
          : Hash.parse(outputHash, algo);
    } catch (e) {
      if (e instanceof HashParseError)
        throw new DerivationError(`derivation '${name}': outputHash: ${e.message}`);
      throw e;
    }
    const m = method ?? "flat";
    const path = storeDir.print(makeFixedOutputPath(storeDir, name, m, hash));
    drvOutputs.set("out", { type: "fixed", path, method: m, hash });
  } else {
    for (const o of outputs) drvOutputs.set(o, { type: "deferred" });
  }

  const closure = closureByPath(inputNodes.values());
  const resolve = (p: string): DrvData => {
    const n = closure.get(p);
    if (!n) throw new DerivationError(`input derivation '${p}' is unknown`);
    return n.drv;
  };
  const drv = fillInOutputPaths(
    {
      name,
      outputs: drvOutputs,
      inputSrcs: [],
      platform,
      builder,
      args,
      env,
      inputDrvs,
    } satisfies DrvData,
    storeDir,
    resolve,
    moduloCache(),
  );
  validateDerivation(drv, storeDir, name);
  const bytes = printDerivation(drv);
  const node: DrvNode = {
    drvPath: derivationPath(drv, bytes, storeDir),
    storeDir: storeDir.path,
    drv,
    bytes,
    inputs: [...inputNodes.values()],
  };
  return derivationObject(node, outputs) as ApiDerivation<OutputNames<A>>;
}

const BASE_KEYS = new Set([
  "name",
  "system",
  "storeDir",
  "drvPath",
  "outPath",
  "outputName",
  "outputs",
  "derivation",
  "toString",
]);

function derivationObject(node: DrvNode, outputNames: string[]): ApiDerivation {
  const paths: Record<string, string> = {};
  for (const n of outputNames) {
    const o = node.drv.outputs.get(n)!;
    if (o.type === "deferred") throw new Error(`output '${n}' has no path`);
    paths[n] = o.path;
    register(node, n, o.path);
  }
  const first = outputNames[0]!;
  const outPath = paths[first]!;
  const obj: Record<string | symbol, unknown> = {
    [DERIVATION_BRAND]: node,
    name: node.drv.name,
    system: node.drv.platform,
    storeDir: node.storeDir,
    drvPath: node.drvPath,
    outPath,
    outputName: first,
    outputs: Object.freeze(paths),
    derivation: node.drv,
    toString: () => outPath,
  };
  for (const n of outputNames) {
    if (BASE_KEYS.has(n)) continue;
    const p = paths[n]!;
    obj[n] = Object.freeze({
      [OUTPUT_BRAND]: node,
      outputName: n,
      outPath: p,
      drvPath: node.drvPath,
      toString: () => p,
    } satisfies ApiOutput);
  }
  return Object.freeze(obj) as unknown as ApiDerivation;
}

/** The derivation nodes of values given as targets, with the outputs wanted (empty: all). */
export function nodeOf(value: ApiDerivation | ApiOutput): { node: DrvNode; outputs: string[] } {
  if (isApiDerivation(value)) return { node: value[DERIVATION_BRAND], outputs: [] };
  return { node: value[OUTPUT_BRAND], outputs: [value.outputName] };
}
