// What a build of some targets will run (`these N derivations will be built:`): derivations
// with a wanted output that is not valid, found by walking input derivations.

import type { Derivation } from "../derivation/derivation.ts";
import type { BuildTarget } from "../machines/build-attempt.ts";

export function plannedBuilds(
  targets: BuildTarget[],
  readDerivation: (drvPath: string) => Derivation,
  isValid: (path: string) => boolean,
): string[] {
  const planned = new Set<string>();
  const seen = new Set<string>();
  const visit = (drvPath: string, wanted: string[]) => {
    const key = `${drvPath}!${wanted.join(",")}`;
    if (seen.has(key)) return;
    seen.add(key);
    const drv = readDerivation(drvPath);
    const missing = [...drv.outputs].some(
      ([name, o]) =>
        (wanted.length === 0 || wanted.includes(name)) &&
        (o.type === "deferred" || !isValid(o.path)),
    );
    if (!missing) return;
    planned.add(drvPath);
    for (const [dep, outs] of drv.inputDrvs) visit(dep, outs);
  };
  for (const t of targets) if ("drvPath" in t) visit(t.drvPath, t.outputs);
  return [...planned].sort();
}
