// Print a derivation as Nix 2.8's ATerm, byte for byte. Nix escapes only the builder, args and
// env; names, paths, hashes and the platform go out raw, which is why validate() refuses
// derivations where those hold characters that would need escaping.
import { encodeBytes } from "./byte-string.ts";
import {
  type BasicDerivation,
  type Derivation,
  printMethodAlgo,
  sortBytewise,
} from "./derivation.ts";

const NEEDS_ESCAPE = /["\\\n\r\t]/;
const ESCAPE_G = /["\\\n\r\t]/g;
const ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

export function escapeAtermString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPE_G, (c) => ESCAPES[c]!) : s;
}

const quoted = (s: string) => `"${escapeAtermString(s)}"`;
const raw = (s: string) => `"${s}"`;

export interface PrintOptions {
  /** Print output paths and output env vars as "" (for hashDerivationModulo). */
  maskOutputs?: boolean;
  /** Replace inputDrvs by these keys (hashes) → output names, as hashDerivationModulo does. */
  inputsOverride?: Map<string, Iterable<string>>;
}

function sortedKeys<V>(m: Map<string, V>): string[] {
  return sortBytewise(m.keys());
}

export function printDerivationString(
  drv: BasicDerivation & Partial<Pick<Derivation, "inputDrvs">>,
  opts: PrintOptions = {},
): string {
  const mask = opts.maskOutputs ?? false;
  const outputs = sortedKeys(drv.outputs).map((name) => {
    const o = drv.outputs.get(name)!;
    if (o.type === "fixed") {
      return `(${raw(name)},${raw(mask ? "" : o.path)},${raw(printMethodAlgo(o.method, o.hash))},${raw(o.hash.toBase16())})`;
    }
    const path = o.type === "inputAddressed" && !mask ? o.path : "";
    return `(${raw(name)},${raw(path)},"","")`;
  });
  const inputs = opts.inputsOverride ?? drv.inputDrvs ?? new Map<string, string[]>();
  const inputDrvs = sortBytewise(inputs.keys()).map(
    (k) =>
      `(${raw(k)},[${sortBytewise(new Set(inputs.get(k)!))
        .map(raw)
        .join(",")}])`,
  );
  const env = sortedKeys(drv.env).map((k) => {
    const v = mask && drv.outputs.has(k) ? "" : drv.env.get(k)!;
    return `(${quoted(k)},${quoted(v)})`;
  });
  return (
    `Derive([${outputs.join(",")}],[${inputDrvs.join(",")}],` +
    `[${sortBytewise(new Set(drv.inputSrcs)).map(raw).join(",")}],${raw(drv.platform)},` +
    `${quoted(drv.builder)},[${drv.args.map(quoted).join(",")}],[${env.join(",")}])`
  );
}

/** The exact bytes of the .drv file. */
export function printDerivation(
  drv: BasicDerivation & Partial<Pick<Derivation, "inputDrvs">>,
  opts: PrintOptions = {},
): Buffer {
  return encodeBytes(printDerivationString(drv, opts));
}
