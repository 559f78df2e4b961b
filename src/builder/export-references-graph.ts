// exportReferencesGraph: the closure of input paths, for the builder. Without structured
// attributes, files in the build directory in the format of `nix-store --register-validity` with
// empty derivers (Nix 2.8); with them, JSON in `.attrs.json` (see structured-attrs.ts).
import type { Hash } from "../hash/hash.ts";
import type { ParsedDerivation } from "./structured-attrs.ts";

export class BuildSetupError extends Error {
  override name = "BuildSetupError";
}

export interface ReferencesGraphStore {
  isStorePath(s: string): boolean;
  /** Store path containing `s` (which may point inside it). */
  toStorePath(s: string): string;
  /** `s` itself, which must be a store path (Nix's parseStorePath); throws otherwise. */
  parseStorePath(s: string): string;
  closure(paths: string[]): string[];
  references(path: string): string[];
  pathInfo(path: string): {
    narHash: Hash;
    narSize: number;
    references: readonly string[];
    ca?: string | undefined;
  };
  /** Output paths of a .drv in the closure (to include their closures too). */
  derivationOutputs(drvPath: string): string[];
}

/**
 * Store::exportReferences: the closure of `paths`, each of which must be in the input closure,
 * with the closures of the outputs of any derivation in it; sorted.
 */
export function exportReferences(
  paths: string[],
  inputPaths: Set<string>,
  store: ReferencesGraphStore,
): string[] {
  for (const path of paths) {
    if (!inputPaths.has(path)) {
      throw new BuildSetupError(
        `cannot export references of path '${path}' because it is not in the input closure of the derivation`,
      );
    }
  }
  const closure = new Set(paths.length > 0 ? store.closure(paths) : []);
  const outs = [...closure]
    .filter((p) => p.endsWith(".drv"))
    .flatMap((p) => store.derivationOutputs(p));
  if (outs.length > 0) for (const p of store.closure(outs)) closure.add(p);
  return [...closure].sort();
}

/** The files of a derivation without structured attributes (none with them). */
export function exportReferencesGraphFiles(
  parsed: ParsedDerivation,
  inputPaths: Set<string>,
  store: ReferencesGraphStore,
): { name: string; contents: string }[] {
  if (parsed.hasStructuredAttrs) return [];
  const value = parsed.drv.env.get("exportReferencesGraph");
  if (value === undefined) return [];
  const ws = parsed.getStringsAttr("exportReferencesGraph")!;
  if (ws.length % 2 !== 0)
    throw new BuildSetupError(`odd number of tokens in 'exportReferencesGraph': '${value}'`);
  const files: { name: string; contents: string }[] = [];
  for (let i = 0; i < ws.length; i += 2) {
    const name = ws[i]!;
    const target = ws[i + 1]!;
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
      throw new BuildSetupError(`invalid file name '${name}' in 'exportReferencesGraph'`);
    }
    if (!store.isStorePath(target)) {
      throw new BuildSetupError(`'exportReferencesGraph' contains a non-store path '${target}'`);
    }
    let text = "";
    for (const p of exportReferences([store.toStorePath(target)], inputPaths, store)) {
      const refs = store.references(p);
      text += `${p}\n\n${refs.length}\n${refs.map((r) => `${r}\n`).join("")}`;
    }
    files.push({ name, contents: text });
  }
  return files;
}
