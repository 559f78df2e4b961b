// hashDerivationModulo (Nix 2.8) and what it is for: output paths of input-addressed
// derivations, and the path of the .drv file itself.
import { Hash } from "../hash/hash.ts";
import {
  makeFixedOutputPath,
  makeOutputPath,
  makeTextPath,
} from "../store-path/make-store-path.ts";
import type { StoreDir } from "../store-path/store-path.ts";
import { printDerivation } from "./aterm-print.ts";
import {
  type BasicDerivation,
  type Derivation,
  type DerivationOutput,
  printMethodAlgo,
} from "./derivation.ts";
import { DerivationError } from "./errors.ts";

/** Reads an input derivation by its .drv path (from a store, a folder, memory…). */
export type DerivationResolver = (drvPath: string) => Derivation;

/** Memo of unmasked modulo hashes per .drv path, shared across a batch of derivations. */
export type DrvHashCache = Map<string, Map<string, Hash>>;

type AnyDerivation = BasicDerivation & Partial<Pick<Derivation, "inputDrvs">>;

/**
 * One hash per output. Fixed outputs hash only what they promise (so refetching the same
 * content from elsewhere changes nothing downstream); others hash the ATerm with each input
 * .drv replaced by its own modulo hash, optionally with the outputs masked.
 */
export function hashDerivationModulo(
  drv: AnyDerivation,
  storeDir: StoreDir,
  maskOutputs: boolean,
  resolve: DerivationResolver,
  cache: DrvHashCache = new Map(),
): Map<string, Hash> {
  const fixed = [...drv.outputs].filter(([, o]) => o.type === "fixed");
  if (fixed.length > 0) {
    const result = new Map<string, Hash>();
    for (const [name, o] of fixed) {
      if (o.type !== "fixed") continue;
      const path = storeDir.print(makeFixedOutputPath(storeDir, drv.name, o.method, o.hash));
      result.set(
        name,
        Hash.of(
          "sha256",
          `fixed:out:${printMethodAlgo(o.method, o.hash)}:${o.hash.toBase16()}:${path}`,
        ),
      );
    }
    return result;
  }
  const inputs = new Map<string, Set<string>>();
  for (const [drvPath, wanted] of drv.inputDrvs ?? []) {
    let hashes = cache.get(drvPath);
    if (!hashes) {
      hashes = hashDerivationModulo(resolve(drvPath), storeDir, false, resolve, cache);
      cache.set(drvPath, hashes);
    }
    for (const out of wanted) {
      const h = hashes.get(out);
      if (!h) {
        throw new DerivationError(
          `derivation '${drv.name}' wants output '${out}' of '${drvPath}', which has no such output`,
        );
      }
      const key = h.toBase16();
      const set = inputs.get(key) ?? new Set<string>();
      set.add(out);
      inputs.set(key, set);
    }
  }
  const hash = Hash.of("sha256", printDerivation(drv, { maskOutputs, inputsOverride: inputs }));
  return new Map([...drv.outputs.keys()].map((name) => [name, hash]));
}

/** The output paths this derivation must have, computed as `derivation` does when creating it. */
export function computeOutputPaths(
  drv: AnyDerivation,
  storeDir: StoreDir,
  resolve: DerivationResolver,
  cache?: DrvHashCache,
): Map<string, string> {
  const result = new Map<string, string>();
  const fixed = [...drv.outputs].find(([, o]) => o.type === "fixed");
  if (fixed) {
    const [name, o] = fixed as [string, Extract<DerivationOutput, { type: "fixed" }>];
    if (drv.outputs.size !== 1 || name !== "out") {
      throw new DerivationError(
        `fixed-output derivation '${drv.name}' must have exactly one output, named 'out'`,
      );
    }
    result.set(name, storeDir.print(makeFixedOutputPath(storeDir, drv.name, o.method, o.hash)));
    return result;
  }
  const hashes = hashDerivationModulo(drv, storeDir, true, resolve, cache);
  for (const [name, h] of hashes) {
    result.set(name, storeDir.print(makeOutputPath(storeDir, name, h, drv.name)));
  }
  return result;
}

/**
 * Fill in output paths and their env vars, as the `derivation` primop does: each output's env
 * var exists (empty) while hashing, then gets the path.
 */
export function fillInOutputPaths<D extends AnyDerivation>(
  drv: D,
  storeDir: StoreDir,
  resolve: DerivationResolver,
  cache?: DrvHashCache,
): D {
  const env = new Map(drv.env);
  const outputs = new Map<string, DerivationOutput>();
  for (const [name, o] of drv.outputs) {
    env.set(name, "");
    outputs.set(name, o.type === "fixed" ? o : { type: "deferred" });
  }
  const blank = { ...drv, env, outputs };
  const paths = computeOutputPaths(blank, storeDir, resolve, cache);
  for (const [name, path] of paths) {
    env.set(name, path);
    const o = outputs.get(name)!;
    outputs.set(name, o.type === "fixed" ? { ...o, path } : { type: "inputAddressed", path });
  }
  return { ...drv, env, outputs };
}

/** Throws unless the recorded output paths and their env vars are the ones Nix would compute. */
export function checkOutputPaths(
  drv: AnyDerivation,
  storeDir: StoreDir,
  resolve: DerivationResolver,
  cache?: DrvHashCache,
  source = drv.name,
): void {
  const expected = computeOutputPaths(drv, storeDir, resolve, cache);
  for (const [name, path] of expected) {
    const o = drv.outputs.get(name)!;
    const got = o.type === "deferred" ? "" : o.path;
    if (got !== path) {
      throw new DerivationError(
        `derivation '${source}' has incorrect output '${got}', should be '${path}'`,
      );
    }
    if (drv.env.get(name) !== path) {
      throw new DerivationError(
        `derivation '${source}' has incorrect environment variable '${name}', should be '${path}'`,
      );
    }
  }
}

/** References of a .drv file: its input sources and input derivations. */
export function derivationReferences(drv: AnyDerivation): string[] {
  return [...new Set([...drv.inputSrcs, ...(drv.inputDrvs?.keys() ?? [])])];
}

/** The store path of the .drv file holding `bytes` (a text object with the drv's references). */
export function derivationPath(drv: AnyDerivation, bytes: Uint8Array, storeDir: StoreDir): string {
  const refs = derivationReferences(drv).map((p) => storeDir.parsePath(p));
  return storeDir.print(makeTextPath(storeDir, `${drv.name}.drv`, Hash.of("sha256", bytes), refs));
}
