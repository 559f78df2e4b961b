// Derivations written as JSON files: Nix 2.8's show-derivation shape for one derivation, where
// output paths may be left out (they are computed), `system` defaults to this machine, and
// `inputDrvs` keys may name other JSON files (relative to this one) as well as .drv paths, and an
// env value that is exactly such a key (`"src": "source.json"`, or `"source.json!dev"`) becomes
// that input's output path, as interpolating a derivation does in Nix.
// Each file is written into the store as a .drv, inputs first.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { printDerivation } from "../derivation/aterm-print.ts";
import type { Derivation, DerivationOutput } from "../derivation/derivation.ts";
import { DerivationError } from "../derivation/errors.ts";
import { derivationReferences, fillInOutputPaths } from "../derivation/hash-modulo.ts";
import { derivationFromJson } from "../derivation/show-json.ts";
import { validateDerivation } from "../derivation/validate.ts";
import type { LocalStore } from "../store/local-store.ts";
import { checkJsonDerivation } from "./json-derivation-schema.ts";

export interface JsonDrvContext {
  store: LocalStore;
  system: string;
  readDerivation: (drvPath: string) => Derivation;
  /** JSON file → .drv path, so shared inputs are written once. */
  written?: Map<string, string>;
  /** Files being written, to report cycles. */
  stack?: string[];
}

/** Write the derivation in `file` (and the JSON inputs it names) to the store; its .drv path. */
export function addJsonDerivation(file: string, ctx: JsonDrvContext): string {
  const full = resolve(file);
  ctx.written ??= new Map();
  ctx.stack ??= [];
  const { written, stack } = ctx;
  const done = written.get(full);
  if (done) return done;
  if (stack.includes(full))
    throw new DerivationError(
      `derivation files depend on each other in a cycle: ${[...stack, full].join(" -> ")}`,
    );
  stack.push(full);
  try {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(full, "utf8"));
    } catch (e) {
      if (e instanceof SyntaxError)
        throw new DerivationError(`${full}: not valid JSON (${e.message})`);
      if ((e as NodeJS.ErrnoException).code === "EISDIR")
        throw new DerivationError(`${full} is a directory, not a JSON derivation`);
      throw e;
    }
    // `{ "<drv path>": {…} }` as printed by show-derivation, or the derivation object itself.
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      const keys = Object.keys(parsed);
      const only = (parsed as Record<string, unknown>)[keys[0]!];
      if (keys.length === 1 && keys[0]!.endsWith(".drv") && typeof only === "object") parsed = only;
    }
    const value = checkJsonDerivation(parsed, full);
    const env = (value.env ?? {}) as Record<string, unknown>;
    const name =
      typeof env.name === "string"
        ? env.name
        : typeof value.name === "string"
          ? value.name
          : undefined;
    if (!name) throw new DerivationError(`${full}: the derivation needs a name (env.name)`);
    const inputDrvs: Record<string, unknown> = {};
    const inputByKey = new Map<string, string>();
    for (const [k, outs] of Object.entries((value.inputDrvs ?? {}) as Record<string, unknown>)) {
      const key = k.endsWith(".json") ? addJsonDerivation(resolve(dirname(full), k), ctx) : k;
      inputDrvs[key] = outs;
      inputByKey.set(k, key);
    }
    const envOut: Record<string, unknown> = { ...env };
    for (const [k, v] of Object.entries(env)) {
      if (typeof v !== "string") continue;
      const [ref, output = "out"] = v.split("!");
      const drvPath = inputByKey.get(ref!);
      if (!drvPath) continue;
      const o = ctx.readDerivation(drvPath).outputs.get(output);
      if (!o || o.type === "deferred")
        throw new DerivationError(
          `${full}: env.${k} names output '${output}' of '${ref}', which has no such output`,
        );
      envOut[k] = o.path;
    }
    const outputs = (value.outputs ?? { out: {} }) as Record<string, Record<string, unknown>>;
    const withPaths = Object.fromEntries(
      Object.entries(outputs).map(([o, v]) => [o, { path: "", ...v }]),
    );
    const system = (value.system as string | undefined) ?? ctx.system;
    const drv = derivationFromJson(
      {
        ...value,
        system,
        outputs: withPaths,
        inputDrvs,
        env: {
          ...envOut,
          name,
          system: env.system ?? system,
          builder: env.builder ?? value.builder,
        },
      },
      name,
    );
    // Output paths are always computed, so a stale path in the file cannot slip through.
    for (const [o, out] of drv.outputs) {
      if (out.type === "inputAddressed")
        drv.outputs.set(o, { type: "deferred" } satisfies DerivationOutput);
    }
    const filled = fillInOutputPaths(drv, ctx.store.storeDir, ctx.readDerivation);
    validateDerivation(filled, ctx.store.storeDir, full);
    const info = ctx.store.addTextToStore(
      `${name}.drv`,
      printDerivation(filled),
      derivationReferences(filled),
    );
    written.set(full, info.path);
    return info.path;
  } finally {
    stack.pop();
  }
}
