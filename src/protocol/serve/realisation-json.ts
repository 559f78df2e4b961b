// The JSON text a Realisation travels as before protocol 0x208 (in builtOutputs and on its own):
// `{"dependentRealisations":{…},"id":"<drvoutput>","outPath":"<base name>","signatures":[…]}`,
// compact, keys in alphabetical order (nlohmann::json), store paths without the store dir.

import { isUtf8 } from "node:buffer";
import { sortBytewise } from "../../derivation/derivation.ts";
import { type StoreDir, StorePath, StorePathError } from "../../store-path/store-path.ts";
import { WireValueError } from "../wire/wire-value-error.ts";
import { DrvOutputIdError, parseDrvOutputId } from "./drv-output.ts";

/**
 * How to write it:
 * - `nix-2.8`: all four keys, signatures as `"key:base64"` strings (Nix 2.4 – 2.34);
 * - `compat`: only `id` and `outPath` (what current Nix sends to 0x206/0x207 peers);
 * - `signature-objects`: all four keys, signatures as `{"keyName","sig"}` (current Nix's JSON,
 *   seen in upstream test vectors; Nix 2.8 cannot read it).
 */
export type RealisationJsonForm = "nix-2.8" | "compat" | "signature-objects";

/** The content of a realisation JSON, with full store paths. */
export interface RealisationJson {
  /** The DrvOutput id as written, e.g. `sha256:<hex>!out`. */
  id: string;
  outPath: string;
  /** Sorted, without duplicates. */
  signatures: string[];
  /** DrvOutput id → full output path of realisations this one depends on. */
  dependentRealisations: Record<string, string>;
}

/** JSON that is not a realisation Nix could read. */
export class RealisationJsonError extends Error {
  override name = "RealisationJsonError";
}

export function parseRealisationJson(bytes: Uint8Array, storeDir: StoreDir): RealisationJson {
  if (!isUtf8(bytes)) throw new RealisationJsonError("realisation JSON is not valid UTF-8");
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new RealisationJsonError(`realisation is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(value)) throw new RealisationJsonError("realisation JSON is not an object");
  const id = checkId(requiredString(value, "id"));
  const outPath = fullPath(storeDir, requiredString(value, "outPath"), "outPath");
  const signatures = parseSignatures(value.signatures);
  const deps = value.dependentRealisations;
  if (deps !== undefined && !isObject(deps)) {
    throw new RealisationJsonError("realisation field 'dependentRealisations' is not an object");
  }
  // Object.fromEntries makes every key an own property (the ids cannot be `__proto__` anyway).
  const dependentRealisations = Object.fromEntries(
    Object.entries(deps ?? {}).map(([depId, depPath]) => {
      if (typeof depPath !== "string") {
        throw new RealisationJsonError(`dependent realisation '${depId}' is not a store path`);
      }
      return [checkId(depId), fullPath(storeDir, depPath, `dependent realisation '${depId}'`)];
    }),
  );
  return { id, outPath, signatures, dependentRealisations };
}

export function renderRealisationJson(
  r: RealisationJson,
  storeDir: StoreDir,
  form: RealisationJsonForm,
): string {
  const id = JSON.stringify(r.id);
  const outPath = JSON.stringify(baseName(storeDir, r.outPath));
  if (form === "compat") return `{"id":${id},"outPath":${outPath}}`;
  const deps = sortBytewise(Object.keys(r.dependentRealisations))
    .map(
      (k) =>
        `${JSON.stringify(k)}:${JSON.stringify(baseName(storeDir, r.dependentRealisations[k]!))}`,
    )
    .join(",");
  const sigs = sortBytewise(new Set(r.signatures))
    .map((s) => (form === "signature-objects" ? signatureObject(s) : JSON.stringify(s)))
    .join(",");
  return `{"dependentRealisations":{${deps}},"id":${id},"outPath":${outPath},"signatures":[${sigs}]}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function requiredString(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  if (typeof v !== "string") {
    throw new RealisationJsonError(
      v === undefined
        ? `realisation JSON lacks the field '${key}'`
        : `realisation field '${key}' is not a string`,
    );
  }
  return v;
}

function checkId(id: string): string {
  try {
    parseDrvOutputId(id);
    return id;
  } catch (error) {
    if (error instanceof DrvOutputIdError) throw new RealisationJsonError(error.message);
    throw error;
  }
}

function fullPath(storeDir: StoreDir, base: string, what: string): string {
  try {
    return storeDir.print(StorePath.parseBaseName(base));
  } catch (error) {
    if (error instanceof StorePathError) {
      throw new RealisationJsonError(`realisation ${what}: ${error.message}`);
    }
    throw error;
  }
}

/** Nix 2.8 reads `"key:base64"` strings; current Nix writes `{"keyName","sig"}` objects. */
function parseSignatures(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new RealisationJsonError("realisation 'signatures' is not a list");
  const out = v.map((s) => {
    if (typeof s === "string") return s;
    if (isObject(s) && typeof s.keyName === "string" && typeof s.sig === "string") {
      return `${s.keyName}:${s.sig}`;
    }
    throw new RealisationJsonError("realisation signature is neither a string nor {keyName, sig}");
  });
  return sortBytewise(new Set(out));
}

function signatureObject(sig: string): string {
  const colon = sig.indexOf(":");
  if (colon < 0) throw new WireValueError(`signature '${sig}' lacks the 'keyName:' prefix`);
  return `{"keyName":${JSON.stringify(sig.slice(0, colon))},"sig":${JSON.stringify(sig.slice(colon + 1))}}`;
}

function baseName(storeDir: StoreDir, path: string): string {
  try {
    const parsed = storeDir.parsePath(path);
    if (storeDir.print(parsed) === path) return parsed.baseName;
  } catch (error) {
    if (!(error instanceof StorePathError)) throw error;
    throw new WireValueError(`realisation path '${path}': ${error.message}`);
  }
  throw new WireValueError(`realisation path '${path}' is not canonical in ${storeDir.path}`);
}
