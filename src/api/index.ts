// The package's API: `import { derivation, build } from "nixstate"`.
//
// ```ts
// import { build, derivation } from "nixstate";
// const hello = derivation({ name: "hello", builder: "/bin/sh", args: ["-c", "echo hi > $out"] });
// const { targets } = await build(hello);
// ```
import { resolveStoreLayout } from "../store/store-settings.ts";
import type { StoreDir } from "../store-path/store-path.ts";
import { type ApiDerivation, sharedState } from "./brand.ts";
import { type Buildable, type BuildOptions, type BuildRun, build as runBuild } from "./build.ts";
import { type DerivationAttrs, makeDerivation, type OutputNames } from "./make-derivation.ts";

export type { AttrValue } from "./attr-coercion.ts";
export type {
  ApiDerivation as Derivation,
  ApiDerivationBase as DerivationBase,
  ApiOutput as DerivationOutput,
} from "./brand.ts";
export { isApiDerivation as isDerivation, isApiOutput as isDerivationOutput } from "./brand.ts";
export type {
  Buildable,
  BuildOptions,
  BuildOutcome,
  BuildRun,
  StoreSettings,
  TargetOutcome,
} from "./build.ts";
export type { DerivationAttrs, OutputNames } from "./make-derivation.ts";

/** Store settings: the CLI's `--state-dir`, `--store-dir` and `--store-root`. */
export interface NixstateSettings {
  /** Database, GC roots, logs, the run log (default NIXSTATE_STATE_DIR, else $XDG_DATA_HOME/nixstate). */
  stateDir?: string;
  /** The store directory every path is named in (default NIXSTATE_STORE_DIR, else <state-dir>/store). */
  storeDir?: string;
  /** Keep the store's files under this directory, paths keeping `storeDir` (Nix's `--store ROOT`). */
  storeRoot?: string;
}

/** `derivation()` and `build()` bound to one store. */
export interface Nixstate {
  /** The store directory derivations made here are named in. */
  readonly storeDir: string;
  /**
   * Compute a derivation as Nix's `builtins.derivation` does, for this store directory. Pure: no
   * file is written until it is built. See {@link derivation}.
   */
  derivation<const A extends DerivationAttrs>(attrs: A): ApiDerivation<OutputNames<A>>;
  /** Build derivations in this store. See {@link build}. */
  build(targets: Buildable, options?: Omit<BuildOptions, keyof NixstateSettings>): BuildRun;
}

function storeDirOf(settings: NixstateSettings): StoreDir {
  return resolveStoreLayout(settings).storeDir;
}

/**
 * `derivation()` and `build()` for one store, e.g.
 * `const { derivation, build } = nixstate({ stateDir: "/tmp/s" })`.
 * Settings not given come from NIXSTATE_STATE_DIR / NIXSTATE_STORE_DIR / NIXSTATE_STORE_ROOT and
 * the defaults, as for the CLI.
 */
export function nixstate(settings: NixstateSettings = {}): Nixstate {
  const storeDir = storeDirOf(settings);
  return {
    storeDir: storeDir.path,
    derivation: (attrs) => makeDerivation(attrs, storeDir),
    build: (targets, options = {}) => runBuild(targets, { ...options, ...settings }),
  };
}

/** The settings the top-level `derivation()` and `build()` use: those the CLI set, else none. */
function defaults(): NixstateSettings {
  return sharedState().defaults ?? {};
}

/**
 * A derivation, computed exactly as Nix 2.8's `builtins.derivation` computes it for the same
 * attributes: the same `.drv` text, `.drv` path and output paths. Pure: nothing is written until
 * {@link build} builds it.
 *
 * Attributes become the builder's environment as in Nix: `true` → "1", `false` and `null` → ""
 * (left out with `__ignoreNulls: true`), numbers in decimal (non-integers as `%f`), lists joined
 * with spaces, derivations → their default output's path, `outputs: ["out", "dev"]` → "out dev"
 * plus one variable per output holding its path. `args` is not in the environment. With
 * `__structuredAttrs: true` the attributes go to the builder as JSON (`__json`) instead. `system`
 * defaults to this machine's.
 *
 * Dependencies: an attribute string that contains an output path of a derivation made with this
 * API (`${gcc}/bin/gcc`, `` `${lib.dev}` ``, or the derivation object itself) makes that output
 * an input, as Nix's string context does. JavaScript strings carry no context, so inputs are
 * found by scanning for those paths; a path typed by hand, or of a derivation made elsewhere, is
 * not an input.
 *
 * The store directory is the CLI's default (NIXSTATE_STORE_DIR, else <state-dir>/store), or the
 * one `nixstate build --store-dir` uses when it loads a file with `-f`; for another one use
 * {@link nixstate}.
 *
 * @example
 * const lib = derivation({ name: "lib", builder: "/bin/sh", outputs: ["out", "dev"],
 *   args: ["-c", "echo lib > $out; echo h > $dev"] });
 * const app = derivation({ name: "app", builder: "/bin/sh",
 *   args: ["-c", `cat ${lib.dev} > $out`] }); // depends on lib's dev output
 */
export function derivation<const A extends DerivationAttrs>(
  attrs: A,
): ApiDerivation<OutputNames<A>> {
  return makeDerivation(attrs, storeDirOf(defaults()));
}

/**
 * Build derivations made with {@link derivation}: their `.drv` files are written into the store
 * (inputs first), then built as `nixstate build` builds them, recorded in the run log. Returns
 * at once a {@link BuildRun}: await it for the results, read its `runId`, iterate its `events`.
 * Store settings not in `options` are the top-level defaults (see {@link derivation}).
 */
export function build(targets: Buildable, options: BuildOptions = {}): BuildRun {
  return runBuild(targets, { ...defaults(), ...options });
}
