// How a derivation's attributes become its environment, as Nix 2.8's `builtins.derivation`
// (prim_derivationStrict) coerces them: `coerceToString(…, coerceMore = true)` for each env
// value and each argument, or `printValueAsJSON` for `__structuredAttrs`.
import { DerivationError } from "../derivation/errors.ts";
import { type ApiDerivation, type ApiOutput, isApiDerivation, isApiOutput } from "./brand.ts";

/**
 * A value a derivation attribute may hold. Strings, numbers, booleans, `null`, lists of those,
 * derivations (or one of their outputs: `drv.dev`), and anything with a string `outPath`.
 * Plain objects are allowed only with `__structuredAttrs: true`, where they become JSON objects.
 */
export type AttrValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | ApiDerivation
  | ApiOutput
  | { readonly outPath: string }
  | readonly AttrValue[]
  | { readonly [key: string]: AttrValue | undefined };

/** Nix's `std::to_string(double)`: printf's `%f`, six decimals. */
function printFloatEnv(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  return x.toFixed(6);
}

/** Numbers that are whole and exactly representable are Nix integers, the rest floats. */
function isNixInt(x: number): boolean {
  return Number.isSafeInteger(x);
}

function outPathOf(v: unknown): string | undefined {
  if (isApiDerivation(v) || isApiOutput(v)) return v.outPath;
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const p = (v as { outPath?: unknown }).outPath;
    if (typeof p === "string") return p;
  }
  return undefined;
}

/**
 * An env value or argument as Nix coerces it: `true` → "1", `false` and `null` → "", integers in
 * decimal, other numbers with six decimals (`%f`), lists space-joined (no space after an empty
 * list, as Nix 2.8 does), derivations → the path of their default output.
 */
export function coerceToEnvString(value: unknown, what: string): string {
  if (typeof value === "string") return value;
  if (value === true) return "1";
  if (value === false || value === null) return "";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") return isNixInt(value) ? String(value) : printFloatEnv(value);
  if (Array.isArray(value)) {
    let result = "";
    value.forEach((item, i) => {
      result += coerceToEnvString(item, what);
      if (i < value.length - 1 && !(Array.isArray(item) && item.length === 0)) result += " ";
    });
    return result;
  }
  const p = outPathOf(value);
  if (p !== undefined) return p;
  throw new DerivationError(
    `cannot coerce ${describe(value)} to a string (attribute '${what}'); only structured attributes (__structuredAttrs = true) may hold objects`,
  );
}

function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  if (typeof v === "function") return "a function";
  if (typeof v === "symbol") return "a symbol";
  return "an object";
}

/** C's `%g` with six significant digits, as `std::ostream << double` prints (Nix's JSON). */
export function printFloatJson(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const exp = Number(x.toExponential(5).split("e")[1]);
  const strip = (s: string) => (s.includes(".") ? s.replace(/\.?0+$/, "") : s);
  if (exp < -4 || exp >= 6) {
    const [mant, e] = x.toExponential(5).split("e") as [string, string];
    const n = Math.abs(Number(e));
    return `${strip(mant)}e${e.startsWith("-") ? "-" : "+"}${n < 10 ? "0" : ""}${n}`;
  }
  return strip(x.toFixed(5 - exp));
}

/** A JSON string as Nix 2.8's JSON writer escapes it (only `"`, `\` and control characters). */
function jsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * A value as `printValueAsJSON` writes it into `__json`: compact, object keys in byte order,
 * derivations and objects with `outPath` as that path, floats as `%g`. Keys whose value is
 * `undefined` are left out (JavaScript's absent attribute).
 */
export function toNixJson(value: unknown, what: string): string {
  if (typeof value === "string") return jsonString(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value === null) return "null";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") return isNixInt(value) ? String(value) : printFloatJson(value);
  if (Array.isArray(value)) return `[${value.map((v) => toNixJson(v, what)).join(",")}]`;
  const p = outPathOf(value);
  if (p !== undefined) return jsonString(p);
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => byteOrder(a, b));
    return `{${entries.map(([k, v]) => `${jsonString(k)}:${toNixJson(v, `${what}.${k}`)}`).join(",")}}`;
  }
  throw new DerivationError(`cannot write ${describe(value)} as JSON (attribute '${what}')`);
}

/** Attribute names in the order Nix processes them (lexicographic; the result does not depend on it). */
export function attrNames(attrs: object): string[] {
  return Object.keys(attrs).sort(byteOrder);
}
