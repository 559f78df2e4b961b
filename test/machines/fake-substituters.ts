// In-memory substituters for goal machines: which caches offer which paths (with references),
// and substitutes that are corrupt, gone, unqueryable or about another path. Importing a path
// makes it valid in the FakeWorld.

import { Hash } from "../../src/hash/hash.ts";
import type {
  ImportResult,
  OutputLock,
  SubstitutionEffects,
} from "../../src/machines/worker-effects.ts";
import type { PathInfoInput } from "../../src/store/path-info.ts";

export interface FakeSubstitute {
  references?: string[];
  /** The NAR does not match the info: the import throws. */
  corrupt?: boolean;
  /** Listed, but the NAR is missing. */
  gone?: boolean;
  /** Querying this cache about the path throws this. */
  queryError?: string;
  /** The cache answers with info about this path instead. */
  reportedPath?: string;
  /** The download takes this many ms. */
  ms?: number;
}

export class FakeSubstituters implements SubstitutionEffects {
  readonly substituters: string[];
  readonly caches: Map<string, FakeSubstitute>[];
  /** `cache path` of every import that succeeded, in order. */
  imports: string[] = [];
  queries: string[] = [];
  /** Paths whose lock another process holds for this many more attempts. */
  lockedElsewhere = new Map<string, number>();
  /** Paths another process substitutes by the time we get the lock. */
  beatenBy = new Set<string>();

  constructor(
    private readonly world: { valid: Set<string> },
    names: string[],
  ) {
    this.substituters = names;
    this.caches = names.map(() => new Map());
  }

  offer(cache: number, path: string, substitute: FakeSubstitute = {}): this {
    this.caches[cache]!.set(path, substitute);
    return this;
  }

  async queryPathInfo(index: number, path: string): Promise<PathInfoInput | undefined> {
    this.queries.push(`${this.substituters[index]} ${path}`);
    const s = this.caches[index]!.get(path);
    if (!s) return undefined;
    if (s.queryError) throw new Error(s.queryError);
    return {
      path: s.reportedPath ?? path,
      narHash: Hash.of("sha256", path),
      narSize: 1,
      references: s.references ?? [],
    };
  }

  tryLockPath(path: string): OutputLock | undefined {
    const n = this.lockedElsewhere.get(path) ?? 0;
    if (n > 0) {
      this.lockedElsewhere.set(path, n - 1);
      return undefined;
    }
    if (this.beatenBy.has(path)) this.world.valid.add(path);
    return { release: () => {} };
  }

  async importPath(
    index: number,
    info: PathInfoInput,
    _repair: boolean,
    signal: AbortSignal,
  ): Promise<ImportResult> {
    const s = this.caches[index]!.get(info.path)!;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, s.ms ?? 0);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        reject(new Error("aborted"));
      });
    });
    if (s.gone) return "gone";
    if (s.corrupt) throw new Error(`NAR of '${info.path}' does not match its path info`);
    for (const r of info.references ?? []) {
      if (r !== info.path && !this.world.valid.has(r)) throw new Error(`dangling reference ${r}`);
    }
    this.world.valid.add(info.path);
    this.imports.push(`${this.substituters[index]} ${info.path}`);
    return "imported";
  }
}
