// Cross-process locks on store paths (typically the outputs a build is about to write). A lock is
// a row in the PathLocks table naming the holder's pid and start time, written in an IMMEDIATE
// transaction, so at most one process holds a path. Nothing needs to be released when a holder
// dies (even by SIGKILL): a row whose process is gone counts as free and is taken over or swept.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Statement } from "better-sqlite3";
import { currentProcess, isAlive, type ProcessIdentity } from "./process-identity.ts";
import type { StoreDb } from "./store-database.ts";
import { LockTimeoutError } from "./store-errors.ts";

export interface LockHolder extends ProcessIdentity {
  token: string;
  /** Unix milliseconds. */
  acquired: number;
}

export interface LockWaitOptions {
  /** How often to look again while the lock is held (default 50 ms). */
  pollMs?: number;
  /** Give up with LockTimeoutError after this long (default: wait forever). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_POLL_MS = 50;

/** A held lock on one or more paths; release it exactly once (later calls do nothing). */
export class PathLock {
  #released = false;
  readonly #release: (token: string) => void;

  constructor(
    readonly paths: readonly string[],
    readonly token: string,
    release: (token: string) => void,
  ) {
    this.#release = release;
  }

  get released(): boolean {
    return this.#released;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#release(this.token);
  }
}

export class PathLocks {
  readonly #db: StoreDb;
  readonly owner: ProcessIdentity;
  readonly #held = new Set<PathLock>();
  readonly #get: Statement<[string], LockHolder>;
  readonly #insert: Statement<[string, number, number, string, number]>;
  readonly #deleteRow: Statement<[string, string]>;
  readonly #deleteToken: Statement<[string]>;
  readonly #holders: Statement<[], ProcessIdentity>;
  readonly #tryAll: (paths: string[], token: string, now: number) => boolean;
  readonly #tryEach: (paths: string[], token: string, now: number) => string[];

  constructor(db: StoreDb, owner: ProcessIdentity = currentProcess()) {
    this.#db = db;
    this.owner = owner;
    this.#get = db.prepare<[string], LockHolder>(
      "SELECT pid, startTime, token, acquired FROM PathLocks WHERE path = ?",
    );
    this.#insert = db.prepare<[string, number, number, string, number]>(
      "INSERT INTO PathLocks (path, pid, startTime, token, acquired) VALUES (?, ?, ?, ?, ?)",
    );
    this.#deleteRow = db.prepare<[string, string]>(
      "DELETE FROM PathLocks WHERE path = ? AND token = ?",
    );
    this.#deleteToken = db.prepare<[string]>("DELETE FROM PathLocks WHERE token = ?");
    this.#holders = db.prepare<[], ProcessIdentity>(
      "SELECT DISTINCT pid, startTime FROM PathLocks",
    );
    /** Is `path` free (no row, or its holder died)? Frees a dead holder's row. */
    const claimable = (path: string): boolean => {
      const row = this.#get.get(path);
      if (row === undefined) return true;
      if (isAlive(row)) return false;
      this.#deleteRow.run(path, row.token);
      return true;
    };
    const tryAll = db.transaction((paths: string[], token: string, now: number): boolean => {
      for (const p of paths) if (!claimable(p)) return false;
      for (const p of paths) this.#insert.run(p, this.owner.pid, this.owner.startTime, token, now);
      return true;
    });
    this.#tryAll = (paths, token, now) => tryAll.immediate(paths, token, now);
    const tryEach = db.transaction((paths: string[], token: string, now: number): string[] => {
      const locked: string[] = [];
      for (const p of paths) {
        if (!claimable(p)) continue;
        this.#insert.run(p, this.owner.pid, this.owner.startTime, token, now);
        locked.push(p);
      }
      return locked;
    });
    // Called inside the garbage collector's transaction too (then it is a savepoint).
    this.#tryEach = (paths, token, now) =>
      db.inTransaction ? tryEach(paths, token, now) : tryEach.immediate(paths, token, now);
  }

  /** Lock all of `paths` at once, or none of them if any is held. Never waits. */
  tryLock(paths: string | Iterable<string>): PathLock | undefined {
    const list = uniquePaths(paths);
    const token = this.#newToken();
    if (!this.#tryAll(list, token, Date.now())) return undefined;
    return this.#lockObject(list, token);
  }

  /** Lock whichever of `paths` are free (each on its own); the lock covers those only. */
  tryLockEach(paths: Iterable<string>): PathLock {
    const token = this.#newToken();
    return this.#lockObject(this.#tryEach(uniquePaths(paths), token, Date.now()), token);
  }

  /** Wait until all of `paths` are free and lock them together. */
  async lock(paths: string | Iterable<string>, options: LockWaitOptions = {}): Promise<PathLock> {
    const list = uniquePaths(paths);
    const deadline = deadlineOf(options);
    for (;;) {
      const lock = this.tryLock(list);
      if (lock) return lock;
      this.#checkDeadline(list, deadline, options);
      options.signal?.throwIfAborted();
      await sleep(options.pollMs ?? DEFAULT_POLL_MS, undefined, { signal: options.signal });
    }
  }

  /** `lock` for synchronous callers: blocks the thread while it waits. */
  lockSync(paths: string | Iterable<string>, options: LockWaitOptions = {}): PathLock {
    const list = uniquePaths(paths);
    const deadline = deadlineOf(options);
    const cell = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      const lock = this.tryLock(list);
      if (lock) return lock;
      this.#checkDeadline(list, deadline, options);
      Atomics.wait(cell, 0, 0, options.pollMs ?? DEFAULT_POLL_MS);
    }
  }

  /** The live holder of `path`, if any. */
  holder(path: string): LockHolder | undefined {
    const row = this.#get.get(path);
    return row !== undefined && isAlive(row) ? row : undefined;
  }

  /** Whether this process (under any lock object) holds `path`. */
  isLockedByMe(path: string): boolean {
    const row = this.#get.get(path);
    return row?.pid === this.owner.pid && row.startTime === this.owner.startTime;
  }

  /** Delete the rows of holders that died; returns how many holders were dead. */
  sweepDeadHolders(): number {
    const dead = this.#holders.all().filter((h) => !isAlive(h));
    if (dead.length === 0) return 0;
    const del = this.#db.prepare("DELETE FROM PathLocks WHERE pid = ? AND startTime = ?");
    this.#db.transaction(() => {
      for (const h of dead) del.run(h.pid, h.startTime);
    })();
    return dead.length;
  }

  /** Release every lock taken through this object and not yet released (on close). */
  releaseAll(): void {
    for (const lock of [...this.#held]) lock.release();
  }

  #lockObject(paths: string[], token: string): PathLock {
    const lock: PathLock = new PathLock(paths, token, (t) => {
      this.#held.delete(lock);
      // After the store is closed there is nothing left to delete from.
      if (this.#db.open) this.#deleteToken.run(t);
    });
    this.#held.add(lock);
    return lock;
  }

  #newToken(): string {
    return randomUUID();
  }

  #checkDeadline(paths: string[], deadline: number, options: LockWaitOptions): void {
    if (Date.now() < deadline) return;
    const holder = paths.map((p) => this.holder(p)).find((h) => h !== undefined);
    throw new LockTimeoutError(
      paths,
      options.timeoutMs ?? 0,
      holder ? `process ${holder.pid}` : undefined,
    );
  }
}

function uniquePaths(paths: string | Iterable<string>): string[] {
  return typeof paths === "string" ? [paths] : [...new Set(paths)].sort();
}

function deadlineOf(options: LockWaitOptions): number {
  return options.timeoutMs === undefined
    ? Number.POSITIVE_INFINITY
    : Date.now() + options.timeoutMs;
}
