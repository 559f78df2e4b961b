// Write the benchmark DAG into a nixstate store as .drv files (not timed); returns their paths.
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { Derivation, DerivationOutput } from "../../src/derivation/derivation.ts";
import {
  type DrvHashCache,
  derivationReferences,
  fillInOutputPaths,
} from "../../src/derivation/hash-modulo.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { type DagNode, dagNodes } from "./dag-graph.ts";

export function writeDag(store: LocalStore, n: number, salt: string, system: string): string[] {
  const drvs = new Map<string, Derivation>();
  const cache: DrvHashCache = new Map();
  const resolve = (p: string) => drvs.get(p)!;
  const paths: string[] = [];
  const outPath = (d: Derivation) => (d.outputs.get("out") as { path: string }).path;
  const add = (name: string, script: string, deps: number[]) => {
    const env = new Map<string, string>([
      ["builder", "/bin/sh"],
      ["name", name],
      ["system", system],
    ]);
    for (const [k, d] of deps.entries()) env.set(`dep${k}`, outPath(drvs.get(paths[d]!)!));
    const drv = fillInOutputPaths(
      {
        name,
        outputs: new Map<string, DerivationOutput>([["out", { type: "deferred" }]]),
        inputDrvs: new Map(deps.map((d) => [paths[d]!, ["out"]])),
        inputSrcs: [],
        platform: system,
        builder: "/bin/sh",
        args: ["-c", script],
        env,
      } as Derivation,
      store.storeDir,
      resolve,
      cache,
    );
    const path = store.addTextToStore(
      `${name}.drv`,
      printDerivation(drv),
      derivationReferences(drv),
    ).path;
    drvs.set(path, drv);
    return path;
  };
  const nodes: DagNode[] = dagNodes(n, salt);
  for (const node of nodes) paths.push(add(node.name, `echo ${node.name} > $out`, node.deps));
  return paths;
}
