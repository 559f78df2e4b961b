// Path infos already read, kept while the database is unchanged, as Nix keeps its path-info
// cache: a serve session answering QueryPathInfos for the same paths again, or a build checking
// the same outputs, reads SQLite and parses hashes once. Only valid paths are kept. Whether the
// database changed is whether another connection committed (database-changes.ts); this
// connection's own deletions clear the cache where they happen (the collector).
// Insertions by this connection cannot change a kept info: a valid path's row never changes.
import type { ValidPathInfo } from "./path-info.ts";

/** As many infos as a 1000-path closure several times over, a few MB at most. */
const DEFAULT_LIMIT = 16_384;

export class PathInfoCache {
  readonly #infos = new Map<string, ValidPathInfo>();
  readonly #changed: () => boolean;
  readonly #limit: number;

  /** `changed`: whether another connection committed since its last call. */
  constructor(changed: () => boolean, limit = DEFAULT_LIMIT) {
    this.#changed = changed;
    this.#limit = limit;
  }

  /** Forget everything if another connection committed since the last look. */
  revalidate(): void {
    if (this.#changed()) this.#infos.clear();
  }

  get(path: string): ValidPathInfo | undefined {
    return this.#infos.get(path);
  }

  /** Keep `info` (frozen: callers share it) and return it. */
  add(info: ValidPathInfo): ValidPathInfo {
    if (this.#infos.size >= this.#limit) this.#infos.clear();
    Object.freeze(info.references);
    Object.freeze(info.sigs);
    this.#infos.set(info.path, Object.freeze(info));
    return info;
  }

  clear(): void {
    this.#infos.clear();
  }

  get size(): number {
    return this.#infos.size;
  }
}
