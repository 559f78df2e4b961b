// The substitution goals' effects for a local store: ask the configured substituters, lock the
// path, stream the NAR into the store (which checks its hash and size and registers atomically).

import type { ImportResult, OutputLock, SubstitutionEffects } from "../machines/worker-effects.ts";
import type { LocalStore } from "../store/local-store.ts";
import type { PathInfoInput } from "../store/path-info.ts";
import type { Substituter } from "./substituter.ts";
import { SubstituteGoneError, SubstituterError } from "./substituter-errors.ts";

/** Take flocks on the lock files of `paths`, all or none (undefined: one is held elsewhere). */
export type LockFiles = (paths: string[]) => Promise<{ release(): void } | undefined>;

export class LocalSubstitutionEffects implements SubstitutionEffects {
  readonly substituters: readonly string[];
  readonly #store: LocalStore;
  readonly #subs: readonly Substituter[];

  readonly #lockFiles: LockFiles | undefined;

  /** `lockFiles`: Nix's flocks on `<path>.lock` as well as the store's lock rows. */
  constructor(store: LocalStore, substituters: readonly Substituter[], lockFiles?: LockFiles) {
    this.#store = store;
    this.#lockFiles = lockFiles;
    this.#subs = substituters;
    this.substituters = substituters.map((s) => s.name);
  }

  queryPathInfo(index: number, path: string): Promise<PathInfoInput | undefined> {
    return this.#sub(index).queryPathInfo(path);
  }

  async tryLockPath(path: string): Promise<OutputLock | undefined> {
    const lock = this.#store.locks.tryLock(path);
    if (!lock) return undefined;
    let files: { release(): void } | undefined;
    try {
      files = this.#lockFiles ? await this.#lockFiles([path]) : { release: () => {} };
    } finally {
      if (!files) lock.release();
    }
    if (!files) return undefined;
    const held = files;
    return {
      release: () => {
        held.release();
        lock.release();
      },
    };
  }

  async importPath(
    index: number,
    info: PathInfoInput,
    repair: boolean,
    signal: AbortSignal,
  ): Promise<ImportResult> {
    const sub = this.#sub(index);
    try {
      // The goal holds the path's lock from its validity re-check until here.
      await this.#store.importPath(info, abortable(sub.fetchNar(info.path), signal), {
        lockHeld: true,
        repair,
      });
      return "imported";
    } catch (e) {
      if (e instanceof SubstituteGoneError) return "gone";
      throw e;
    }
  }

  #sub(index: number): Substituter {
    const sub = this.#subs[index];
    if (!sub) throw new SubstituterError(`there is no substituter number ${index}`);
    return sub;
  }
}

/** Stop a download as soon as the goal is cancelled. */
async function* abortable(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (signal.aborted) throw new SubstituterError("substitution cancelled");
    yield chunk;
  }
}
