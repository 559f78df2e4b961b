// The shape a JSON derivation file must have (Nix 2.8's show-derivation shape for one derivation,
// output paths optional), checked before anything is read from it, so that a wrong type is named
// with its file and field instead of being read as something else ("outputs": "out" as outputs
// 0, 1 and 2) or failing deep inside with a raw TypeError.
import { DerivationError } from "../derivation/errors.ts";

export type JsonDerivationFields = Record<string, unknown>;

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  return `a ${typeof v} (${JSON.stringify(v)})`;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Check `value` (the parsed file) and return it as the derivation's fields. */
export function checkJsonDerivation(value: unknown, file: string): JsonDerivationFields {
  const fail = (field: string, expected: string, got: unknown): never => {
    throw new DerivationError(`${file}: ${field} must be ${expected}, not ${kind(got)}`);
  };
  if (!isObject(value))
    fail("the file", 'a JSON object (a derivation: {"builder": …, "args": …, "env": …})', value);
  const d = value as Record<string, unknown>;
  const optional = (field: string, check: (v: unknown) => boolean, expected: string) => {
    if (d[field] !== undefined && !check(d[field])) fail(`'${field}'`, expected, d[field]);
  };
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
  optional("name", (v) => typeof v === "string", "a string");
  optional("builder", (v) => typeof v === "string", "a string (the builder's path)");
  optional("system", (v) => typeof v === "string", 'a string (e.g. "x86_64-linux")');
  optional("args", strings, "a list of strings");
  optional("inputSrcs", strings, "a list of store paths");
  optional("env", isObject, "an object of strings");
  optional("outputs", isObject, 'an object of outputs (e.g. {"out": {}, "dev": {}})');
  optional("inputDrvs", isObject, 'an object of input derivations (e.g. {"dep.json": ["out"]})');
  for (const [k, v] of Object.entries(isObject(d.env) ? d.env : {})) {
    if (typeof v !== "string") fail(`env.${k}`, "a string", v);
  }
  for (const [k, v] of Object.entries(isObject(d.outputs) ? d.outputs : {})) {
    if (!isObject(v)) fail(`outputs.${k}`, 'an object (e.g. {} or {"path": …})', v);
  }
  for (const [k, v] of Object.entries(isObject(d.inputDrvs) ? d.inputDrvs : {})) {
    if (!strings(v)) fail(`inputDrvs.${k}`, 'a list of output names (e.g. ["out"])', v);
  }
  if (d.builder === undefined)
    throw new DerivationError(`${file}: the derivation needs a builder ("builder": "/bin/sh")`);
  return d;
}
