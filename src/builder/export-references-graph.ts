// exportReferencesGraph: files in the build directory describing the closure of input paths,
// in the format of `nix-store --register-validity` with empty derivers (Nix 2.8).
import type { BasicDerivation } from "../derivation/derivation.ts";
import { words } from "./builder-env.ts";

export class BuildSetupError extends Error {
  override name = "BuildSetupError";
}

export interface ReferencesGraphStore {
  isStorePath(s: string): boolean;
  /** Store path containing `s` (which may point inside it). */
  toStorePath(s: string): string;
  closure(paths: string[]): string[];
  references(path: string): string[];
  /** Output paths of a .drv in the closure (to include their closures too). */
  derivationOutputs(drvPath: string): string[];
}

export function exportReferencesGraphFiles(
  drv: BasicDerivation,
  inputPaths: Set<string>,
  store: ReferencesGraphStore,
): { name: string; contents: string }[] {
  const value = drv.env.get("exportReferencesGraph");
  if (value === undefined || drv.env.has("__json")) return [];
  const ws = words(value);
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
    const path = store.toStorePath(target);
    if (!inputPaths.has(path)) {
      throw new BuildSetupError(
        `cannot export references of path '${path}' because it is not in the input closure of the derivation`,
      );
    }
    let paths = store.closure([path]);
    const outs = paths.filter((p) => p.endsWith(".drv")).flatMap((p) => store.derivationOutputs(p));
    if (outs.length > 0) paths = [...new Set([...paths, ...store.closure(outs)])].sort();
    let text = "";
    for (const p of paths) {
      const refs = store.references(p);
      text += `${p}\n\n${refs.length}\n${refs.map((r) => `${r}\n`).join("")}`;
    }
    files.push({ name, contents: text });
  }
  return files;
}
