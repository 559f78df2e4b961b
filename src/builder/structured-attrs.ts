// Structured attributes (`__structuredAttrs = true`, a derivation env holding `__json`), as Nix
// 2.8 does them: ParsedDerivation (parsed-derivations.cc) reads attributes from the JSON instead of
// the env, and LocalDerivationGoal::writeStructuredAttrs puts `.attrs.json` and `.attrs.sh` into
// the build directory, naming them in NIX_ATTRS_JSON_FILE and NIX_ATTRS_SH_FILE. The builder then
// gets none of the derivation's env (not even `out`): the output paths are in the files.

import type { BasicDerivation } from "../derivation/derivation.ts";
import { Hash } from "../hash/hash.ts";
import { exportReferences, type ReferencesGraphStore } from "./export-references-graph.ts";
import {
  dumpJson,
  findKey,
  isJsonObject,
  type JsonObject,
  JsonParseError,
  JsonTypeError,
  type JsonValue,
  jsonElements,
  parseJson,
  sortedEntries,
  toFloat32,
  toInt32,
  typeName,
} from "./structured-json.ts";

/**
 * A derivation whose structured attributes cannot be used: `__json` is not JSON, or an attribute
 * has the wrong type. As in Nix 2.8 the build fails (Nix's error, exit status 1).
 */
export class StructuredAttrsError extends Error {
  override name = "StructuredAttrsError";
}

/** `/<nix32 of sha256("nix-output:<name>")>`: what stands for an output path before it is known. */
export function hashPlaceholder(outputName: string): string {
  return `/${Hash.of("sha256", `nix-output:${outputName}`).toNix32()}`;
}

/** Whitespace-separated words, as Nix's tokenizeString. */
export function words(s: string | undefined): string[] {
  return (s ?? "").split(/[ \t\n\r]+/).filter((w) => w.length > 0);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

// Derivations are immutable once read; their __json is parsed once.
const parsedJson = new WeakMap<BasicDerivation, { value: JsonValue } | { error: JsonParseError }>();

function parseOnce(drv: BasicDerivation): { value: JsonValue } | { error: JsonParseError } {
  let r = parsedJson.get(drv);
  if (!r) {
    try {
      r = { value: parseJson(drv.env.get("__json")!) };
    } catch (e) {
      if (!(e instanceof JsonParseError)) throw e;
      r = { error: e };
    }
    parsedJson.set(drv, r);
  }
  return r;
}

/** Nix's ParsedDerivation: a derivation's attributes, from `__json` when it has one. */
export class ParsedDerivation {
  /** The parsed `__json`, or undefined for a derivation without structured attributes. */
  readonly structuredAttrs: JsonValue | undefined;

  /** Throws StructuredAttrsError when `__json` is not JSON. */
  constructor(
    readonly drvPath: string,
    readonly drv: BasicDerivation,
  ) {
    if (!drv.env.has("__json")) return;
    const r = parseOnce(drv);
    if ("error" in r) {
      throw new StructuredAttrsError(
        `cannot process __json attribute of '${baseName(drvPath)}': ${r.error.message}`,
      );
    }
    this.structuredAttrs = r.value;
  }

  get hasStructuredAttrs(): boolean {
    return this.structuredAttrs !== undefined;
  }

  private wrongType(name: string, what: string): StructuredAttrsError {
    return new StructuredAttrsError(
      `attribute '${name}' of derivation '${baseName(this.drvPath)}' must be ${what}`,
    );
  }

  getStringAttr(name: string): string | undefined {
    if (!this.hasStructuredAttrs) return this.drv.env.get(name);
    const v = findKey(this.structuredAttrs, name);
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw this.wrongType(name, "a string");
    return v;
  }

  /** Without structured attributes only "1" is true. */
  getBoolAttr(name: string, def = false): boolean {
    if (!this.hasStructuredAttrs) {
      const v = this.drv.env.get(name);
      return v === undefined ? def : v === "1";
    }
    const v = findKey(this.structuredAttrs, name);
    if (v === undefined) return def;
    if (typeof v !== "boolean") throw this.wrongType(name, "a Boolean");
    return v;
  }

  /** A list of strings; without structured attributes, the words of the env value. */
  getStringsAttr(name: string): string[] | undefined {
    if (!this.hasStructuredAttrs) {
      const v = this.drv.env.get(name);
      return v === undefined ? undefined : words(v);
    }
    const v = findKey(this.structuredAttrs, name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
      throw this.wrongType(name, "a list of strings");
    return [...(v as string[])];
  }

  /** nlohmann's message for a value of the wrong type, and where it is. */
  typeMismatch(expected: string, v: JsonValue, where: string): StructuredAttrsError {
    return new StructuredAttrsError(
      `[json.exception.type_error.302] type must be ${expected}, but is ${typeName(v)} (at '${where}' in the structured attributes of '${this.drvPath}')`,
    );
  }

  /** `requiredSystemFeatures`, without duplicates. */
  requiredSystemFeatures(): string[] {
    return [...new Set(this.getStringsAttr("requiredSystemFeatures") ?? [])];
  }

  /**
   * The JSON the builder gets (ParsedDerivation::prepareStructuredAttrs): `__json` with an
   * `outputs` object (output name → placeholder) and, for each `exportReferencesGraph` entry, a
   * top-level attribute listing the closure of its paths (pathInfoToJSON: path, narHash,
   * narSize, references, ca, closureSize). Throws BuildSetupError for a path outside the input
   * closure, StructuredAttrsError for values of the wrong type.
   */
  prepareStructuredAttrs(
    store: ReferencesGraphStore,
    inputPaths: Set<string>,
  ): JsonObject | undefined {
    const attrs = this.structuredAttrs;
    if (attrs === undefined) return undefined;
    // `json["outputs"] = …` turns null into an object and fails on any other non-object.
    if (attrs !== null && !isJsonObject(attrs)) {
      throw new StructuredAttrsError(
        `[json.exception.type_error.305] cannot use operator[] with a string argument with ${typeName(attrs)} (the __json of '${this.drvPath}' must be an object)`,
      );
    }
    const json: JsonObject = new Map(attrs ?? []);
    json.set(
      "outputs",
      new Map([...this.drv.outputs.keys()].map((name) => [name, hashPlaceholder(name)])),
    );
    const graph = json.get("exportReferencesGraph");
    if (isJsonObject(graph)) {
      for (const [key, value] of sortedEntries(graph)) {
        const roots = jsonElements(value).map((p) => {
          if (typeof p !== "string")
            throw this.typeMismatch("string", p, `exportReferencesGraph.${key}`);
          try {
            return store.parseStorePath(p);
          } catch (e) {
            throw new StructuredAttrsError(`in 'exportReferencesGraph': ${(e as Error).message}`);
          }
        });
        json.set(key, pathInfoJson(store, exportReferences(roots, inputPaths, store)));
      }
    }
    return json;
  }
}

/** Store::pathInfoToJSON(paths, includeImpureInfo = false, showClosureSize = true). */
function pathInfoJson(store: ReferencesGraphStore, paths: string[]): JsonValue[] {
  return paths.map((path) => {
    const info = store.pathInfo(path);
    const entry: JsonObject = new Map<string, JsonValue>([
      ["path", path],
      ["narHash", info.narHash.format("nix32")],
      ["narSize", BigInt(info.narSize)],
      ["references", [...info.references]],
    ]);
    if (info.ca !== undefined) entry.set("ca", info.ca);
    let closureSize = 0n;
    for (const p of store.closure([path])) closureSize += BigInt(store.pathInfo(p).narSize);
    entry.set("closureSize", closureSize);
    return entry;
  });
}

// ---- .attrs.sh ----

/** Nix's shellEscape: single quotes, `'` as `'\''`. */
export function shellEscape(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** A value bash can hold as a scalar, as writeStructuredAttrsShell's handleSimpleType writes it. */
function simpleShellValue(v: JsonValue): string | undefined {
  if (typeof v === "string") return shellEscape(v);
  if (typeof v === "bigint" || typeof v === "number") {
    // Nix tests the value as a float and prints it as an int: 2.9999999999 gives 2, 3000000000
    // gives -1294967296, 0.5 is left out.
    const f = toFloat32(v);
    return Math.ceil(f) === f ? String(toInt32(v)) : undefined;
  }
  if (v === null) return "''";
  if (typeof v === "boolean") return v ? "1" : "";
  return undefined;
}

const SH_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * writeStructuredAttrsShell: a `declare` line for each top-level attribute bash can hold (a valid
 * variable name whose value is a scalar, or an array or object of scalars), keys in byte order.
 */
export function structuredAttrsShell(json: JsonObject): string {
  let sh = "";
  for (const [key, value] of sortedEntries(json)) {
    if (!SH_VAR_NAME.test(key)) continue;
    const simple = simpleShellValue(value);
    if (simple !== undefined) sh += `declare ${key}=${simple}\n`;
    else if (Array.isArray(value)) {
      const items = value.map(simpleShellValue);
      if (items.every((s) => s !== undefined))
        sh += `declare -a ${key}=(${items.map((s) => `${s} `).join("")})\n`;
    } else if (isJsonObject(value)) {
      const items = sortedEntries(value).map(([k, v]) => [k, simpleShellValue(v)] as const);
      if (items.every(([, s]) => s !== undefined))
        sh += `declare -A ${key}=(${items.map(([k, s]) => `[${shellEscape(k)}]=${s} `).join("")})\n`;
    }
  }
  return sh;
}

// ---- writing the files ----

/** Nix's rewriteStrings: each rewrite in key order, every occurrence, in turn. */
export function rewriteStrings(s: string, rewrites: Map<string, string>): string {
  for (const [from, to] of [...rewrites].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (from === to || from === "") continue;
    // Nix searches again from where the replacement starts; that only differs (and loops
    // forever) when `to` contains `from`, which no placeholder or hash part does.
    const step = to.includes(from) ? to.length : 0;
    let j = s.indexOf(from);
    while (j >= 0) {
      s = s.slice(0, j) + to + s.slice(j + from.length);
      j = s.indexOf(from, j + step);
    }
  }
  return s;
}

export interface StructuredAttrsFilesInput {
  parsed: ParsedDerivation;
  store: ReferencesGraphStore;
  inputPaths: Set<string>;
  /**
   * Each output's path and the path it is built at (a scratch path for an output that is valid
   * already). Placeholders become the latter, and the hash part of the one the other.
   */
  outputs: { name: string; path: string; builtAt: string }[];
  /** The build directory on the host (Nix 2.8 names it even in a sandbox: tmpDir, not /build). */
  hostBuildDir: string;
}

/**
 * `.attrs.json` and `.attrs.sh` for the build directory and the variables naming them
 * (LocalDerivationGoal::writeStructuredAttrs); nothing for a derivation without `__json`.
 */
export function structuredAttrsFiles(i: StructuredAttrsFilesInput): {
  files: { name: string; contents: string }[];
  env: Record<string, string>;
} {
  const json = i.parsed.prepareStructuredAttrs(i.store, i.inputPaths);
  if (!json) return { files: [], env: {} };
  const rewrites = new Map<string, string>();
  for (const o of i.outputs) {
    rewrites.set(hashPlaceholder(o.name), o.builtAt);
    if (o.builtAt !== o.path) rewrites.set(hashPart(o.path), hashPart(o.builtAt));
  }
  const outputs = json.get("outputs")!;
  // An exportReferencesGraph entry may have replaced `outputs`.
  if (!isJsonObject(outputs)) throw i.parsed.typeMismatch("object", outputs, "outputs");
  json.set(
    "outputs",
    new Map(
      [...outputs].map(([name, v]) => {
        if (typeof v !== "string") throw i.parsed.typeMismatch("string", v, `outputs.${name}`);
        return [name, rewriteStrings(v, rewrites)];
      }),
    ),
  );
  let text: string;
  try {
    text = dumpJson(json);
  } catch (e) {
    if (e instanceof JsonTypeError) throw new StructuredAttrsError(e.message);
    throw e;
  }
  return {
    files: [
      { name: ".attrs.sh", contents: rewriteStrings(structuredAttrsShell(json), rewrites) },
      { name: ".attrs.json", contents: rewriteStrings(text, rewrites) },
    ],
    env: {
      NIX_ATTRS_SH_FILE: `${i.hostBuildDir}/.attrs.sh`,
      NIX_ATTRS_JSON_FILE: `${i.hostBuildDir}/.attrs.json`,
    },
  };
}

function hashPart(path: string): string {
  return baseName(path).slice(0, 32);
}

// ---- for readers that must not fail (choosing where to build) ----

/**
 * An attribute read where a failure cannot be reported (machine choice, canBuildLocally): a
 * malformed `__json` or a value of the wrong type reads as absent here; the build then fails
 * when it is set up, with Nix's message.
 */
export function lenientStringsAttr(drv: BasicDerivation, name: string): string[] | undefined {
  try {
    return new ParsedDerivation("", drv).getStringsAttr(name);
  } catch (e) {
    if (e instanceof StructuredAttrsError) return undefined;
    throw e;
  }
}

export function lenientBoolAttr(drv: BasicDerivation, name: string, def: boolean): boolean {
  try {
    return new ParsedDerivation("", drv).getBoolAttr(name, def);
  } catch (e) {
    if (e instanceof StructuredAttrsError) return def;
    throw e;
  }
}
