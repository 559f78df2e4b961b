// The objects `derivation()` returns, and the state every copy of this module shares. A program
// may load the API twice (its own import of "nixstate" and the CLI's bundle, or dist and src), so
// derivation objects are recognised by a global symbol rather than `instanceof`, and the registry
// of output paths and the defaults live on `globalThis` under global symbols.
import type { Derivation as DrvData } from "../derivation/derivation.ts";

/** Marks objects made by `derivation()` (a global symbol: shared by every copy of the module). */
export const DERIVATION_BRAND: unique symbol = Symbol.for("nixstate.api.derivation") as never;
/** Marks per-output objects (`drv.dev`). */
export const OUTPUT_BRAND: unique symbol = Symbol.for("nixstate.api.output") as never;

/** What a `.drv` needs to be written: its text and the derivations it needs written first. */
export interface DrvNode {
  readonly drvPath: string;
  readonly storeDir: string;
  readonly drv: DrvData;
  readonly bytes: Buffer;
  readonly inputs: readonly DrvNode[];
}

/**
 * One output of a derivation: interpolating it (`${drv.dev}`) gives its path, and a derivation
 * whose attributes contain that path depends on this output.
 */
export interface ApiOutput<N extends string = string> {
  readonly [OUTPUT_BRAND]: DrvNode;
  /** This output's name. */
  readonly outputName: N;
  /** The store path this output will have. */
  readonly outPath: string;
  /** The `.drv` path of the derivation this output belongs to. */
  readonly drvPath: string;
  /** The output's path (so template literals interpolate it). */
  toString(): string;
}

/**
 * A derivation made by `derivation()`: its `.drv` path, the path of its default output (the first
 * one listed in `outputs`, as in Nix), every output's path, and one sub-object per output
 * (`drv.out`, `drv.dev`…) usable wherever the derivation is. Nothing is in the store until it is
 * built.
 */
export type ApiDerivation<N extends string = string> = string extends N
  ? ApiDerivationBase<N>
  : ApiDerivationBase<N> & {
      readonly [K in Exclude<N, keyof ApiDerivationBase<N>>]: ApiOutput<K>;
    };

/** The fields every derivation object has; see {@link ApiDerivation}. */
export interface ApiDerivationBase<N extends string = string> {
  readonly [DERIVATION_BRAND]: DrvNode;
  /** The derivation's name (`name` attribute). */
  readonly name: string;
  /** The platform it builds on (`system` attribute). */
  readonly system: string;
  /** The store directory its paths are in. */
  readonly storeDir: string;
  /** Where the `.drv` file will be written. */
  readonly drvPath: string;
  /** The path of the default output (the first in `outputs`). */
  readonly outPath: string;
  /** The name of the default output. */
  readonly outputName: N;
  /** Output name → store path, for every output. */
  readonly outputs: Readonly<Record<N, string>>;
  /** The derivation as it will be written (builder, args, env, inputs). */
  readonly derivation: DrvData;
  /** The default output's path (so template literals interpolate it). */
  toString(): string;
}

export function isApiDerivation(v: unknown): v is ApiDerivation {
  return typeof v === "object" && v !== null && DERIVATION_BRAND in v;
}

export function isApiOutput(v: unknown): v is ApiOutput {
  return typeof v === "object" && v !== null && OUTPUT_BRAND in v;
}

/** An output path's derivation node and output name. */
export interface RegisteredOutput {
  readonly node: DrvNode;
  readonly outputName: string;
  readonly outPath: string;
}

interface SharedState {
  /** `<storeDir>/<hash part>` → outputs with that prefix (one, unless names differ). */
  readonly outputs: Map<string, RegisteredOutput[]>;
  /** Store settings used when no explicit ones are given (the CLI sets them for `-f`). */
  defaults: { storeDir?: string; stateDir?: string; storeRoot?: string } | undefined;
}

const SHARED = Symbol.for("nixstate.api.shared");

/** The registry and defaults shared by every copy of the API in this process. */
export function sharedState(): SharedState {
  const g = globalThis as { [SHARED]?: SharedState };
  g[SHARED] ??= { outputs: new Map(), defaults: undefined };
  return g[SHARED];
}
