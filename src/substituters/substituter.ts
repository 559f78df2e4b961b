// A source of store paths to copy instead of building them (Nix's substituters). Substitution
// goals ask each configured substituter in turn; the store checks what it delivers.
import type { PathInfoInput } from "../store/path-info.ts";

export interface Substituter {
  /** Shown in messages, e.g. `file:///srv/cache`. */
  readonly name: string;
  /** What the substituter knows about `path` (a full store path); undefined if it lacks it. */
  queryPathInfo(path: string): Promise<PathInfoInput | undefined>;
  /**
   * The uncompressed NAR of `path`. Throws SubstituteGoneError when the path is listed but its
   * NAR is missing; the hash and size are checked by whoever imports it.
   */
  fetchNar(path: string): AsyncIterable<Uint8Array>;
}
