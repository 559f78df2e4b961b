// Nix 2.8's `nix show-derivation` JSON, both directions. Strings are printed the way Nix 2.8's
// JSON writer does: only quote, backslash and control characters are escaped, bytes go out raw.
import { Hash, HashParseError, isHashAlgo } from "../hash/hash.ts";
import type { FileIngestionMethod } from "../store-path/make-store-path.ts";
import { encodeBytes } from "./byte-string.ts";
import {
  type Derivation,
  type DerivationOutput,
  printMethodAlgo,
  sortBytewise,
} from "./derivation.ts";
import { DerivationError } from "./errors.ts";

type Json = string | Json[] | { [k: string]: Json };

export function jsonString(s: string): string {
  let out = '"';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(last, i);
    last = i + 1;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else out += `\\u${c.toString(16).padStart(4, "0")}`;
  }
  return `${out + s.slice(last)}"`;
}

function render(v: Json, indent: string): string {
  if (typeof v === "string") return jsonString(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return `[\n${v.map((x) => inner + render(x, inner)).join(",\n")}\n${indent}]`;
  }
  const keys = Object.keys(v);
  if (keys.length === 0) return "{}";
  return `{\n${keys.map((k) => `${inner}${jsonString(k)}: ${render(v[k]!, inner)}`).join(",\n")}\n${indent}}`;
}

function outputJson(o: DerivationOutput): { [k: string]: Json } {
  if (o.type === "deferred") return {};
  if (o.type === "inputAddressed") return { path: o.path };
  return { path: o.path, hashAlgo: printMethodAlgo(o.method, o.hash), hash: o.hash.toBase16() };
}

/** The JSON value Nix 2.8 prints for one derivation (keys in its order). */
export function derivationToJson(drv: Derivation): { [k: string]: Json } {
  const obj = <V>(m: Map<string, V>, f: (v: V) => Json) =>
    Object.fromEntries(sortBytewise(m.keys()).map((k) => [k, f(m.get(k)!)]));
  return {
    outputs: obj(drv.outputs, outputJson),
    inputSrcs: sortBytewise(new Set(drv.inputSrcs)),
    inputDrvs: obj(drv.inputDrvs, (outs) => sortBytewise(new Set(outs))),
    system: drv.platform,
    builder: drv.builder,
    args: drv.args,
    env: obj(drv.env, (v) => v),
  };
}

/** Bytes of `nix show-derivation` for these (drv path, derivation) pairs, newline-terminated. */
export function renderShowDerivation(entries: Iterable<[string, Derivation]>): Buffer {
  const top: { [k: string]: Json } = {};
  for (const [path, drv] of entries) top[path] = derivationToJson(drv);
  return encodeBytes(`${render(top, "")}\n`);
}

function expectString(v: unknown, what: string): string {
  if (typeof v !== "string") throw new DerivationError(`derivation JSON: ${what} must be a string`);
  return v;
}

function expectStrings(v: unknown, what: string): string[] {
  if (!Array.isArray(v))
    throw new DerivationError(`derivation JSON: ${what} must be an array of strings`);
  return v.map((x, i) => expectString(x, `${what}[${i}]`));
}

function expectObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new DerivationError(`derivation JSON: ${what} must be an object`);
  }
  return v as Record<string, unknown>;
}

function parseOutputJson(name: string, v: unknown): DerivationOutput {
  const o = expectObject(v, `outputs.${name}`);
  const path = o.path === undefined ? "" : expectString(o.path, `outputs.${name}.path`);
  if (o.hashAlgo === undefined && o.hash === undefined) {
    return path === "" ? { type: "deferred" } : { type: "inputAddressed", path };
  }
  let algo = expectString(o.hashAlgo, `outputs.${name}.hashAlgo`);
  const hash = expectString(o.hash ?? "", `outputs.${name}.hash`);
  let method: FileIngestionMethod = "flat";
  if (algo.startsWith("r:")) {
    method = "nar";
    algo = algo.slice(2);
  }
  if (!isHashAlgo(algo)) {
    throw new DerivationError(
      `derivation JSON: outputs.${name}.hashAlgo '${algo}' is not one Nix 2.8 supports`,
    );
  }
  // A fixed output may leave its path out (it follows from the hash); without a hash it floats.
  if (hash === "") {
    throw new DerivationError(
      `derivation JSON: output '${name}' is a floating content-addressed output, which needs a Nix newer than 2.8`,
    );
  }
  try {
    return { type: "fixed", path, method, hash: Hash.parseDigest(hash, algo, false) };
  } catch (e) {
    if (e instanceof HashParseError)
      throw new DerivationError(`derivation JSON: outputs.${name}.hash: ${e.message}`);
    throw e;
  }
}

/** Read one derivation value of `nix show-derivation` JSON. */
export function derivationFromJson(value: unknown, name: string): Derivation {
  const d = expectObject(value, "the derivation");
  const map = <V>(v: unknown, what: string, f: (k: string, x: unknown) => V) =>
    new Map(Object.entries(expectObject(v ?? {}, what)).map(([k, x]) => [k, f(k, x)]));
  return {
    name,
    outputs: map(d.outputs, "outputs", parseOutputJson),
    inputSrcs: expectStrings(d.inputSrcs ?? [], "inputSrcs"),
    inputDrvs: map(d.inputDrvs, "inputDrvs", (k, x) => expectStrings(x, `inputDrvs.${k}`)),
    platform: expectString(d.system, "system"),
    builder: expectString(d.builder, "builder"),
    args: expectStrings(d.args ?? [], "args"),
    env: map(d.env, "env", (k, x) => expectString(x, `env.${k}`)),
  };
}
