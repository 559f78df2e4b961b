// The environment a builder starts with, as Nix 2.8 sets it up (LocalDerivationGoal::initEnv
// and initTmpDir): fixed variables, the derivation's env, passAsFile, and for fixed-output
// derivations the impureEnvVars of the caller. With structured attributes the derivation's env is
// not passed at all (nor passAsFile): the builder reads `.attrs.json`/`.attrs.sh` instead.

import { type BasicDerivation, isFixedOutput } from "../derivation/derivation.ts";
import { Hash } from "../hash/hash.ts";
import { ParsedDerivation, words } from "./structured-attrs.ts";

export { words };

export interface BuilderEnvOptions {
  drv: BasicDerivation;
  /** For error messages (structured attributes of the wrong type). */
  drvPath?: string;
  storeDir: string;
  /** The build directory as the builder sees it. */
  buildDir: string;
  cores: number;
  /** The caller's environment, for impureEnvVars. */
  callerEnv?: NodeJS.ProcessEnv;
}

export interface BuilderEnv {
  env: Record<string, string>;
  /** Files to create in the build directory before starting (passAsFile). */
  files: { name: string; contents: string }[];
}

/** Throws StructuredAttrsError for a malformed `__json` or impureEnvVars of the wrong type. */
export function builderEnv(o: BuilderEnvOptions): BuilderEnv {
  const parsed = new ParsedDerivation(o.drvPath ?? `${o.drv.name}.drv`, o.drv);
  const env: Record<string, string> = {
    PATH: "/path-not-set",
    HOME: "/homeless-shelter",
    NIX_STORE: o.storeDir,
    NIX_BUILD_CORES: String(o.cores),
  };
  const files: BuilderEnv["files"] = [];
  if (!parsed.hasStructuredAttrs) {
    const passAsFile = new Set(words(o.drv.env.get("passAsFile")));
    for (const [k, v] of o.drv.env) {
      if (!passAsFile.has(k)) {
        env[k] = v;
        continue;
      }
      const name = `.attr-${Hash.of("sha256", k).toNix32()}`;
      files.push({ name, contents: v });
      env[`${k}Path`] = `${o.buildDir}/${name}`;
    }
  }
  env.NIX_BUILD_TOP = o.buildDir;
  env.TMPDIR = env.TEMPDIR = env.TMP = env.TEMP = o.buildDir;
  env.PWD = o.buildDir;
  if (isFixedOutput(o.drv)) {
    env.NIX_OUTPUT_CHECKED = "1";
    // Only fixed-output builds may see the caller's proxies etc.: their output is checked anyway.
    for (const name of parsed.getStringsAttr("impureEnvVars") ?? [])
      env[name] = o.callerEnv?.[name] ?? "";
  }
  env.NIX_LOG_FD = "2";
  env.TERM = "xterm-256color";
  return { env, files };
}
