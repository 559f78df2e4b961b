// allowedReferences, allowedRequisites, disallowedReferences, disallowedRequisites
// (LocalDerivationGoal::checkOutputs, non-structured attributes).
import type { BasicDerivation } from "../derivation/derivation.ts";
import { words } from "./builder-env.ts";

export interface CheckedOutput {
  name: string;
  path: string;
  references: string[];
}

export class OutputCheckError extends Error {
  override name = "OutputCheckError";
}

/**
 * Throws OutputCheckError naming the forbidden paths. `closureOf` gives the requisites of a
 * path, outputs of this build included.
 */
export function checkOutputReferences(
  drv: BasicDerivation,
  outputs: CheckedOutput[],
  isStorePath: (s: string) => boolean,
  closureOf: (path: string) => Iterable<string>,
): void {
  const byName = new Map(outputs.map((o) => [o.name, o.path]));
  const spec = (attr: string): Set<string> | undefined => {
    if (!drv.env.has(attr)) return undefined;
    const set = new Set<string>();
    for (const w of words(drv.env.get(attr))) {
      if (isStorePath(w)) set.add(w);
      else if (byName.has(w)) set.add(byName.get(w)!);
      else throw new OutputCheckError(`derivation contains an illegal reference specifier '${w}'`);
    }
    return set;
  };
  const checks = [
    { attr: "allowedReferences", allowed: true, recursive: false },
    { attr: "allowedRequisites", allowed: true, recursive: true },
    { attr: "disallowedReferences", allowed: false, recursive: false },
    { attr: "disallowedRequisites", allowed: false, recursive: true },
  ];
  for (const out of outputs) {
    for (const c of checks) {
      const allowedSet = spec(c.attr);
      if (!allowedSet) continue;
      const used = new Set(c.recursive ? closureOf(out.path) : out.references);
      // Without structured attrs an output may always require itself.
      if (c.recursive) used.delete(out.path);
      const bad = [...used].filter((p) => allowedSet.has(p) !== c.allowed).sort();
      if (bad.length > 0) {
        throw new OutputCheckError(
          `output '${out.path}' is not allowed to refer to the following paths:${bad.map((p) => `\n  ${p}`).join("")}`,
        );
      }
    }
  }
}
