// What a derivation may say about its outputs (LocalDerivationGoal::checkOutputs, Nix 2.8):
// allowedReferences, allowedRequisites, disallowedReferences, disallowedRequisites as env
// attributes, or with structured attributes `outputChecks.<output>` holding those lists plus
// maxSize and maxClosureSize. Without structured attributes an output may always require itself;
// with them it may not, unless a list allows it.
import { compareBytes } from "../derivation/derivation.ts";
import { type ParsedDerivation, StructuredAttrsError } from "./structured-attrs.ts";
import { findKey, jsonElements, toUint64 } from "./structured-json.ts";

export interface CheckedOutput {
  name: string;
  path: string;
  references: string[];
  narSize: number;
}

/** What the checks need of a path: this build's outputs are not registered yet. */
export interface PathFacts {
  references: readonly string[];
  narSize: number;
}

export class OutputCheckError extends Error {
  override name = "OutputCheckError";
}

interface Checks {
  ignoreSelfRefs: boolean;
  maxSize?: bigint | undefined;
  maxClosureSize?: bigint | undefined;
  allowedReferences?: string[] | undefined;
  allowedRequisites?: string[] | undefined;
  disallowedReferences?: string[] | undefined;
  disallowedRequisites?: string[] | undefined;
}

const LISTS = [
  "allowedReferences",
  "allowedRequisites",
  "disallowedReferences",
  "disallowedRequisites",
] as const;

function legacyChecks(parsed: ParsedDerivation): Checks {
  const checks: Checks = { ignoreSelfRefs: true };
  for (const name of LISTS) checks[name] = parsed.getStringsAttr(name);
  return checks;
}

/** `outputChecks.<output>` of the structured attributes, or nothing when it has none. */
function structuredChecks(parsed: ParsedDerivation, output: string): Checks | undefined {
  const spec = findKey(findKey(parsed.structuredAttrs, "outputChecks"), output);
  if (spec === undefined) return undefined;
  const size = (name: string) => {
    const v = findKey(spec, name);
    if (v === undefined) return undefined;
    if (typeof v !== "bigint" && typeof v !== "number")
      throw parsed.typeMismatch("number", v, `outputChecks.${output}.${name}`);
    return toUint64(v);
  };
  const checks: Checks = {
    ignoreSelfRefs: false,
    maxSize: size("maxSize"),
    maxClosureSize: size("maxClosureSize"),
  };
  for (const name of LISTS) {
    const v = findKey(spec, name);
    if (v === undefined) continue;
    // As Nix iterates the value: a lone string is a list of one, null an empty list.
    const items = jsonElements(v);
    if (items.some((x) => typeof x !== "string")) {
      throw new StructuredAttrsError(
        `attribute '${name}' of derivation '${parsed.drvPath}' must be a list of strings`,
      );
    }
    checks[name] = items as string[];
  }
  return checks;
}

/**
 * Throws OutputCheckError naming what is wrong (StructuredAttrsError for checks of the wrong
 * type). `pathInfo` answers for valid paths; this build's outputs are taken from `outputs`.
 */
export function checkOutputs(
  parsed: ParsedDerivation,
  outputs: CheckedOutput[],
  isStorePath: (s: string) => boolean,
  pathInfo: (path: string) => PathFacts,
): void {
  const byName = new Map(outputs.map((o) => [o.name, o.path]));
  const byPath = new Map<string, PathFacts>(outputs.map((o) => [o.path, o]));
  const closure = (path: string) => {
    const seen = new Set<string>();
    let size = 0n;
    const todo = [path];
    while (todo.length > 0) {
      const p = todo.pop()!;
      if (seen.has(p)) continue;
      seen.add(p);
      const info = byPath.get(p) ?? pathInfo(p);
      size += BigInt(info.narSize);
      todo.push(...info.references);
    }
    return { paths: seen, size };
  };

  // Outputs in name order, as Nix's std::map.
  for (const out of [...outputs].sort((a, b) => compareBytes(a.name, b.name))) {
    const checks = parsed.hasStructuredAttrs
      ? structuredChecks(parsed, out.name)
      : legacyChecks(parsed);
    if (!checks) continue;
    if (checks.maxSize !== undefined && BigInt(out.narSize) > checks.maxSize) {
      throw new OutputCheckError(
        `path '${out.path}' is too large at ${out.narSize} bytes; limit is ${checks.maxSize} bytes`,
      );
    }
    if (checks.maxClosureSize !== undefined) {
      const { size } = closure(out.path);
      if (size > checks.maxClosureSize) {
        throw new OutputCheckError(
          `closure of path '${out.path}' is too large at ${size} bytes; limit is ${checks.maxClosureSize} bytes`,
        );
      }
    }
    const checkRefs = (value: string[] | undefined, allowed: boolean, recursive: boolean) => {
      if (!value) return;
      const spec = new Set<string>();
      for (const w of value) {
        if (isStorePath(w)) spec.add(w);
        else if (byName.has(w)) spec.add(byName.get(w)!);
        else
          throw new OutputCheckError(`derivation contains an illegal reference specifier '${w}'`);
      }
      const used = recursive ? closure(out.path).paths : new Set(out.references);
      if (recursive && checks.ignoreSelfRefs) used.delete(out.path);
      const bad = [...used].filter((p) => spec.has(p) !== allowed).sort();
      if (bad.length > 0) {
        throw new OutputCheckError(
          `output '${out.path}' is not allowed to refer to the following paths:${bad.map((p) => `\n  ${p}`).join("")}`,
        );
      }
    };
    checkRefs(checks.allowedReferences, true, false);
    checkRefs(checks.allowedRequisites, true, true);
    checkRefs(checks.disallowedReferences, false, false);
    checkRefs(checks.disallowedRequisites, false, true);
  }
}
