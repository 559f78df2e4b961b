// A layered DAG of JSON derivations for run-log tests: node i depends on nodes ⌊i/2⌋ and ⌊i/3⌋
// (as the benchmark DAG), some nodes fail, some have two outputs (dependents want one or the
// other), and each may sleep to stretch the run.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface JsonDagOptions {
  /** Nodes whose builder exits 1. */
  fail?: (i: number) => boolean;
  /** Nodes with outputs `out` and `dev`. */
  multi?: (i: number) => boolean;
  /** Seconds each builder sleeps first. */
  sleep?: (i: number) => number;
  /** Changes every derivation (another salt, other paths). */
  salt?: string;
  /** Extra env per node. */
  env?: (i: number) => Record<string, string>;
  /** Shell run before the node's own commands (e.g. to count builds in a file). */
  before?: (i: number) => string;
}

export function depsOf(i: number): number[] {
  return i === 0 ? [] : [...new Set([Math.floor(i / 2), Math.floor(i / 3)])].filter((d) => d < i);
}

/** Write nodes 0..n-1 as `n<i>.json` into `dir`; their file paths, in order. */
export function writeJsonDag(dir: string, n: number, o: JsonDagOptions = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const multi = o.multi?.(i) ?? false;
    const deps = depsOf(i);
    const env: Record<string, string> = { salt: o.salt ?? "", ...(o.env?.(i) ?? {}) };
    const inputDrvs: Record<string, string[]> = {};
    deps.forEach((d, k) => {
      const out = (o.multi?.(d) ?? false) && i % 2 === 0 ? "dev" : "out";
      inputDrvs[`n${d}.json`] = [...(inputDrvs[`n${d}.json`] ?? []), out];
      env[`dep${k}`] = out === "out" ? `n${d}.json` : `n${d}.json!${out}`;
    });
    const sleep = o.sleep?.(i) ?? 0;
    const body = o.fail?.(i)
      ? `echo failing n${i}; exit 1`
      : multi
        ? `echo n${i} > $out; echo n${i}-dev > $dev`
        : `echo n${i} > $out`;
    const first = o.before ? `${o.before(i)}; ` : "";
    const script = `${first}${sleep > 0 ? `/bin/sleep ${sleep}; ` : ""}${body}`;
    const drv = {
      name: `n${i}`,
      builder: "/bin/sh",
      args: ["-c", script],
      env: multi ? { ...env, outputs: "out dev" } : env,
      ...(multi ? { outputs: { out: {}, dev: {} } } : {}),
      inputDrvs,
    };
    const file = join(dir, `n${i}.json`);
    writeFileSync(file, JSON.stringify(drv));
    files.push(file);
  }
  return files;
}

/**
 * Named JSON derivations in `dir`: name → [shell script, input names]. Each input is passed in
 * the env under its name (its output path); `env` goes into every one (a salt, say).
 */
export function writeJsonDerivations(
  dir: string,
  drvs: Record<string, [string, string[]?]>,
  env: Record<string, string> = {},
): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, [script, inputs = []]] of Object.entries(drvs)) {
    writeFileSync(
      join(dir, `${name}.json`),
      JSON.stringify({
        name,
        builder: "/bin/sh",
        args: ["-c", script],
        env: { ...env, ...Object.fromEntries(inputs.map((i) => [i, `${i}.json`])) },
        inputDrvs: Object.fromEntries(inputs.map((i) => [`${i}.json`, ["out"]])),
      }),
    );
  }
}
