// Temp roots taken inside a scope (a resident server's session) are given back when it ends,
// unless another live scope, or the process outside any scope, still holds them. A process's temp
// roots otherwise last as long as it lives: for `nixstate serve --listen`, weeks of every path
// any session imported, built or locked, which the collector could never free.
import { AsyncLocalStorage } from "node:async_hooks";

export class TempRootScopes {
  readonly #current = new AsyncLocalStorage<Set<string>>();
  /** Path → how many live scopes hold it. */
  readonly #holders = new Map<string, number>();
  /** Paths rooted outside any scope: kept for the process's life. */
  readonly #unscoped = new Set<string>();

  /** Run `body` as a scope; at its end, `release` gets the paths no one holds any more. */
  async run<T>(body: () => Promise<T>, release: (paths: string[]) => void): Promise<T> {
    const mine = new Set<string>();
    try {
      return await this.#current.run(mine, body);
    } finally {
      const free: string[] = [];
      for (const path of mine) {
        const left = (this.#holders.get(path) ?? 1) - 1;
        if (left > 0) this.#holders.set(path, left);
        else {
          this.#holders.delete(path);
          if (!this.#unscoped.has(path)) free.push(path);
        }
      }
      if (free.length > 0) release(free);
    }
  }

  /** `paths` were rooted just now, by the current scope or, outside any, by the process. */
  note(paths: readonly string[]): void {
    const scope = this.#current.getStore();
    for (const path of paths) {
      if (scope === undefined) this.#unscoped.add(path);
      else if (!scope.has(path)) {
        scope.add(path);
        this.#holders.set(path, (this.#holders.get(path) ?? 0) + 1);
      }
    }
  }
}
