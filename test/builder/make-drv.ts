// Write derivations into a test store the way `derivation` would: fill in output paths, print
// the ATerm, add it as a text path referencing its inputs.

import { readFileSync } from "node:fs";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { Derivation, DerivationOutput } from "../../src/derivation/derivation.ts";
import { derivationNameFromFile } from "../../src/derivation/drv-file.ts";
import { derivationReferences, fillInOutputPaths } from "../../src/derivation/hash-modulo.ts";
import type { Hash } from "../../src/hash/hash.ts";
import type { LocalStore } from "../../src/store/local-store.ts";

export interface DrvSpec {
  name: string;
  /** Shell script run by /bin/sh -c. */
  script: string;
  /** Input derivations: drv path → outputs (default ["out"]). */
  deps?: (string | [string, string[]])[];
  srcs?: string[];
  env?: Record<string, string>;
  outputs?: string[];
  fixed?: { method: "flat" | "nar"; hash: Hash };
  system?: string;
}

export function makeDrv(store: LocalStore, spec: DrvSpec): { drvPath: string; drv: Derivation } {
  const outputNames = spec.fixed ? ["out"] : (spec.outputs ?? ["out"]);
  const outputs = new Map<string, DerivationOutput>(
    outputNames.map((o) => [
      o,
      spec.fixed
        ? { type: "fixed", path: "", method: spec.fixed.method, hash: spec.fixed.hash }
        : { type: "deferred" },
    ]),
  );
  const env = new Map<string, string>([
    ["builder", "/bin/sh"],
    ["name", spec.name],
    ["system", spec.system ?? "x86_64-linux"],
    ...Object.entries(spec.env ?? {}),
  ]);
  if (outputNames.length > 1 || outputNames[0] !== "out") env.set("outputs", outputNames.join(" "));
  const inputDrvs = new Map<string, string[]>(
    (spec.deps ?? []).map((d) => (typeof d === "string" ? [d, ["out"]] : d)),
  );
  const resolve = (p: string) =>
    parseDerivation(readFileSync(store.toRealPath(p)), {
      name: derivationNameFromFile(p),
      storeDir: store.storeDir,
    });
  const drv = fillInOutputPaths(
    {
      name: spec.name,
      outputs,
      inputDrvs,
      inputSrcs: spec.srcs ?? [],
      platform: spec.system ?? "x86_64-linux",
      builder: "/bin/sh",
      args: ["-c", spec.script],
      env,
    } as Derivation,
    store.storeDir,
    resolve,
  );
  const info = store.addTextToStore(
    `${spec.name}.drv`,
    printDerivation(drv),
    derivationReferences(drv),
  );
  return { drvPath: info.path, drv };
}

export function outPath(drv: Derivation, output = "out"): string {
  const o = drv.outputs.get(output)!;
  if (o.type === "deferred") throw new Error("deferred");
  return o.path;
}
