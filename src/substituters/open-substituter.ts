// From a substituter URI as Nix's `substituters` setting spells it to a Substituter. Only local
// binary-cache folders (`file:///path`) exist so far.
import { fileURLToPath } from "node:url";
import type { StoreDir } from "../store-path/store-path.ts";
import { NarFolderSubstituter } from "./nar-folder-substituter.ts";
import type { Substituter } from "./substituter.ts";
import { SubstituterLocationError } from "./substituter-errors.ts";

/** `file:///srv/cache` (query parameters such as `?trusted=1` are ignored) → a folder cache. */
export function openSubstituter(uri: string, storeDir: StoreDir): Substituter {
  if (!uri.startsWith("file://")) {
    throw new SubstituterLocationError(
      `unsupported substituter '${uri}': only local binary caches ('file:///path/to/cache') are supported`,
    );
  }
  let folder: string;
  try {
    const url = new URL(uri);
    url.search = "";
    folder = fileURLToPath(url);
  } catch (e) {
    throw new SubstituterLocationError(
      `substituter '${uri}' is not a valid file URL (write it as 'file:///absolute/path'): ${(e as Error).message}`,
    );
  }
  return new NarFolderSubstituter(folder, storeDir);
}
