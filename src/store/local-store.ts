// The local store: contents in the store directory, metadata in SQLite. Queries and
// registration are synchronous (better-sqlite3 is); only what streams file contents is async.
// How paths are written safely is in store-writer.ts, registration in register-paths.ts, the
// collector in garbage-collector.ts; this class ties them to one database connection.
import { existsSync, mkdirSync, readlinkSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { ByteReader, ByteSource } from "../io/byte-reader.ts";
import type { StoreDir, StorePath } from "../store-path/store-path.ts";
import { type DatabaseChanges, databaseChanges } from "./database-changes.ts";
import { writeExport } from "./export-format.ts";
import {
  collectGarbage,
  type GcOptions,
  type GcResult,
  sweepDeadTempRoots,
} from "./garbage-collector.ts";
import {
  addIndirectRoot,
  addPermRoot,
  findGcRoots,
  type GcRoots,
  removePermRoot,
} from "./gc-roots.ts";
import { closureOf, topoSortPaths } from "./path-graph.ts";
import type { PathInfoInput, ValidPathInfo } from "./path-info.ts";
import { PathInfoCache } from "./path-info-cache.ts";
import { PathLocks } from "./path-locks.ts";
import { currentProcess, type ProcessIdentity } from "./process-identity.ts";
import { makeRegistration, type Registration } from "./register-paths.ts";
import type { StoreContext } from "./store-context.ts";
import { openStoreDatabase, type StoreDb } from "./store-database.ts";
import { InvalidPathError, UnusableDirectoryError } from "./store-errors.ts";
import { resolveStoreLayout, type StoreLayout, type StoreSettingsInput } from "./store-settings.ts";
import { pathInfoOfRow, StoreStatements } from "./store-statements.ts";
import { type ImportOptions, StoreWriter } from "./store-writer.ts";
import { TempRootScopes } from "./temp-root-scopes.ts";
import { type VerifyOptions, type VerifyReport, verifyStore } from "./verify-store.ts";

export interface LocalStoreOptions extends StoreSettingsInput {
  /** A resolved layout; wins over stateDir/storeDir. */
  layout?: StoreLayout;
  /** Environment to read NIXSTATE_STATE_DIR / NIXSTATE_STORE_DIR from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * The process that owns the temp roots and locks made through this store (default: this one).
   * For tests, and for a daemon acting on behalf of its clients.
   */
  owner?: ProcessIdentity;
  /**
   * Give every path added or imported (or found already valid while adding) a temp root, so a
   * concurrent garbage collector cannot take it before the caller uses it; as Nix does.
   * Default true.
   */
  tempRootsOnAdd?: boolean;
  /**
   * Take back the locks and temp roots of processes that died holding them as the store opens
   * (default true): a killed run leaves nothing that waits for a GC. Off for what must change
   * nothing, such as a dry-run garbage collection.
   */
  sweepDeadLocks?: boolean;
}

export interface ClosureOptions {
  /** Follow referrers instead of references. */
  flipDirection?: boolean;
  /** Forward: add the valid outputs of every .drv; flipped: add the valid derivers of outputs. */
  includeOutputs?: boolean;
  /** Forward: add each path's deriver when it is valid. */
  includeDerivers?: boolean;
}

/** Marks a store directory nixstate created, so the collector may remove anything invalid in it. */
const OWNED_MARKER = ".nixstate-store";

export class LocalStore {
  readonly layout: StoreLayout;
  readonly storeDir: StoreDir;
  readonly locks: PathLocks;
  readonly #ctx: StoreContext;
  readonly #register: Registration;
  readonly #writer: StoreWriter;
  /** Temp roots already recorded by this store object (they last as long as the process). */
  readonly #tempRoots = new Set<string>();
  readonly #rootScopes = new TempRootScopes();
  readonly #tempRootsOnAdd: boolean;
  #closed = false;
  readonly #changes: DatabaseChanges;

  private constructor(
    layout: StoreLayout,
    db: StoreDb,
    owner: ProcessIdentity,
    owns: boolean,
    tempRootsOnAdd: boolean,
  ) {
    this.layout = layout;
    this.#tempRootsOnAdd = tempRootsOnAdd;
    this.storeDir = layout.storeDir;
    this.locks = new PathLocks(db, owner);
    const realStoreDir = layout.realStoreDir;
    const logical = `${layout.storeDir.path}/`;
    const stmts = new StoreStatements(db);
    this.#changes = databaseChanges(db, () => stmts.dataVersion.get()!);
    const changes = this.#changes;
    this.#ctx = {
      db,
      stmts,
      infoCache: new PathInfoCache(() => changes.changed()),
      layout,
      storeDir: layout.storeDir,
      locks: this.locks,
      owner,
      ownsStoreDir: owns,
      realPath:
        realStoreDir === layout.storeDir.path
          ? (p) => p
          : (p) => (p.startsWith(logical) ? join(realStoreDir, p.slice(logical.length)) : p),
    };
    this.#register = makeRegistration(this.#ctx);
    this.#writer = new StoreWriter(this.#ctx, {
      register: this.#register,
      query: (p) => this.tryQueryPathInfo(p),
      rootAdded: (paths) => this.#rootAdded(paths),
    });
  }

  /** Open (creating on first use) the store described by `options`, flags and environment. */
  static open(options: LocalStoreOptions = {}): LocalStore {
    const layout = options.layout ?? resolveStoreLayout(options, options.env);
    checkUsableLayout(layout);
    for (const dir of [layout.stateDir, layout.gcRootsDir, layout.logDir, layout.tmpDir]) {
      mkdirSync(dir, { recursive: true });
    }
    let owns = existsSync(join(layout.realStoreDir, OWNED_MARKER));
    if (!existsSync(layout.realStoreDir)) {
      mkdirSync(layout.realStoreDir, { recursive: true });
      writeFileSync(join(layout.realStoreDir, OWNED_MARKER), "");
      owns = true;
    }
    const db = openStoreDatabase(layout.dbFile, layout.dbDir);
    const store = new LocalStore(
      layout,
      db,
      options.owner ?? currentProcess(),
      owns,
      options.tempRootsOnAdd ?? true,
    );
    if (options.sweepDeadLocks !== false) {
      store.locks.sweepDeadHolders();
      // IMMEDIATE: it reads then writes, and a deferred transaction could not wait for another
      // process's write ("database is locked" at once, seen with builds and GC side by side).
      store.#ctx.db.transaction(() => sweepDeadTempRoots(store.#ctx)).immediate();
    }
    return store;
  }

  /** Close the database; locks still held through this store are released. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.locks.releaseAll();
    this.#changes.close();
    this.#ctx.db.close();
  }

  /** The database connection, for tests and tools that inspect the tables. */
  get database(): StoreDb {
    return this.#ctx.db;
  }

  // ---- paths -------------------------------------------------------------------------------

  /** Parse a full store path of this store (throws StorePathError when malformed). */
  parseStorePath(path: string): StorePath {
    return this.storeDir.parsePath(path);
  }

  /** Where the contents of `path` are on disk. */
  toRealPath(path: string): string {
    return this.#ctx.realPath(path);
  }

  /**
   * The store path a user means by `arg`: a store path, a path inside one, or a symlink (chain)
   * leading to one, such as a `result` link.
   */
  followLinksToStorePath(arg: string): string {
    let current = this.#toLogical(resolve(arg));
    for (let hop = 0; hop < 40; hop++) {
      if (current === this.storeDir.path || current.startsWith(`${this.storeDir.path}/`)) {
        return this.storeDir.print(this.storeDir.toStorePath(current).path);
      }
      let target: string;
      try {
        target = readlinkSync(current);
      } catch {
        break;
      }
      current = this.#toLogical(isAbsolute(target) ? target : resolve(dirname(current), target));
    }
    return this.storeDir.print(this.storeDir.toStorePath(resolve(arg)).path);
  }

  /** A path under the real store directory (chroot store) as the logical path it stands for. */
  #toLogical(path: string): string {
    const real = this.layout.realStoreDir;
    if (real === this.storeDir.path || !path.startsWith(`${real}/`)) return path;
    return `${this.storeDir.path}${path.slice(real.length)}`;
  }

  // ---- queries -----------------------------------------------------------------------------

  isValidPath(path: string): boolean {
    this.storeDir.parsePath(path);
    return this.#ctx.stmts.pathId.get(path) !== undefined;
  }

  /** The subset of `paths` that is valid. */
  queryValidPaths(paths: Iterable<string>): string[] {
    return [...paths].filter((p) => this.isValidPath(p));
  }

  queryAllValidPaths(): string[] {
    return this.#ctx.stmts.allPaths
      .all()
      .map((r) => r.path)
      .sort();
  }

  /** Path info of a valid path; InvalidPathError otherwise. */
  queryPathInfo(path: string): ValidPathInfo {
    const info = this.tryQueryPathInfo(path);
    if (info === undefined) throw new InvalidPathError(path);
    return info;
  }

  tryQueryPathInfo(path: string): ValidPathInfo | undefined {
    const cacheable = this.#revalidateCache();
    return this.#infoOf(path, cacheable);
  }

  /**
   * Infos of the valid ones among `paths`, in order. What the cache does not hold is read in one
   * transaction: one read lock on the database for all of them instead of two per path.
   */
  tryQueryPathInfos(paths: readonly string[]): ValidPathInfo[] {
    const cacheable = this.#revalidateCache();
    const read = () =>
      paths.flatMap((p) => {
        const info = this.#infoOf(p, cacheable);
        return info ? [info] : [];
      });
    const cache = this.#ctx.infoCache;
    const misses = cacheable
      ? paths.filter((p) => cache.get(p) === undefined).length
      : paths.length;
    return misses > 1 ? this.#ctx.db.transaction(read)() : read();
  }

  /**
   * Whether infos may come from and go to the cache: not inside a transaction someone else
   * opened (it may yet write or roll back). Then the cache is checked against the database.
   */
  #revalidateCache(): boolean {
    if (this.#ctx.db.inTransaction) return false;
    this.#ctx.infoCache.revalidate();
    return true;
  }

  #infoOf(path: string, cacheable: boolean): ValidPathInfo | undefined {
    this.storeDir.parsePath(path);
    const { stmts, infoCache } = this.#ctx;
    const cached = cacheable ? infoCache.get(path) : undefined;
    if (cached) return cached;
    const row = stmts.pathRow.get(path);
    if (row === undefined) return undefined;
    const references = stmts.referencesOf.all(row.id).map((r) => r.path);
    const info = pathInfoOfRow(path, row, references);
    return cacheable ? infoCache.add(info) : info;
  }

  queryReferences(path: string): string[] {
    return this.#edges(path, false);
  }

  queryReferrers(path: string): string[] {
    return this.#edges(path, true);
  }

  #idOf(path: string): number {
    this.storeDir.parsePath(path);
    const row = this.#ctx.stmts.pathId.get(path);
    if (row === undefined) throw new InvalidPathError(path);
    return row.id;
  }

  #edges(path: string, referrers: boolean): string[] {
    const id = this.#idOf(path);
    const stmt = referrers ? this.#ctx.stmts.referrersOf : this.#ctx.stmts.referencesOf;
    return stmt
      .all(id)
      .map((r) => r.path)
      .sort();
  }

  /** Valid .drv paths that have `path` among their outputs. */
  queryValidDerivers(path: string): string[] {
    this.storeDir.parsePath(path);
    return this.#ctx.stmts.validDerivers
      .all(path)
      .map((r) => r.path)
      .sort();
  }

  /** Output name → output path of a valid derivation. */
  queryDerivationOutputs(drvPath: string): Map<string, string> {
    const id = this.#idOf(drvPath);
    const outs = this.#ctx.stmts.drvOutputs.all(id).sort((a, b) => (a.id < b.id ? -1 : 1));
    return new Map(outs.map((o) => [o.id, o.path]));
  }

  /** The closure of `paths` (all must be valid), sorted. */
  computeFSClosure(paths: Iterable<string>, options: ClosureOptions = {}): string[] {
    const start = [...paths];
    for (const p of start) this.#idOf(p);
    const { stmts } = this.#ctx;
    const closure = closureOf(start, (p) => {
      const row = stmts.pathRow.get(p);
      if (row === undefined) return [];
      if (options.flipDirection) {
        const next = stmts.referrersOf.all(row.id).map((r) => r.path);
        if (options.includeOutputs) next.push(...this.queryValidDerivers(p));
        return next;
      }
      const next = stmts.referencesOf.all(row.id).map((r) => r.path);
      if (options.includeOutputs && p.endsWith(".drv")) {
        for (const o of stmts.drvOutputs.all(row.id))
          if (stmts.pathId.get(o.path)) next.push(o.path);
      }
      if (options.includeDerivers && row.deriver !== null && stmts.pathId.get(row.deriver)) {
        next.push(row.deriver);
      }
      return next;
    });
    return [...closure].sort();
  }

  /** Valid `paths` in dependency order (references before referrers; see path-graph.ts). */
  topoSortPaths(paths: Iterable<string>): string[] {
    const list = [...paths];
    for (const p of list) this.#idOf(p);
    return topoSortPaths(list, (p) => this.queryReferences(p));
  }

  // ---- adding paths ------------------------------------------------------------------------

  /**
   * Make paths valid whose contents are already in the store directory, in one transaction:
   * all or none. References must be valid or in the batch; paths already valid stay unchanged.
   */
  registerValidPaths(infos: readonly PathInfoInput[]): void {
    this.#register(infos);
  }

  registerValidPath(info: PathInfoInput): void {
    this.#register([info]);
  }

  /**
   * Copy the file tree at `src` into the store as `nix-store --add` does: NAR-hashed (recursive
   * sha256), read-only, mtime 1. Returns the (possibly already valid) path's info.
   */
  addToStore(src: string, options: { name?: string } = {}): Promise<ValidPathInfo> {
    return this.#writer.addToStore(src, options);
  }

  /**
   * Add a text file (a `.drv`, a `builtins.toFile` result) whose path depends on its contents
   * and references, which must be valid. Synchronous: it is small and on every build's path.
   */
  addTextToStore(
    name: string,
    text: string | Uint8Array,
    references: Iterable<string> = [],
  ): ValidPathInfo {
    return this.#writer.addTextToStore(name, text, references);
  }

  /**
   * Unpack the NAR in `nar` as `info.path`, checking it against `info`'s NAR hash and size. With
   * a ByteReader, exactly the NAR is consumed (also when the path is already valid).
   */
  importPath(
    info: PathInfoInput,
    nar: ByteReader | ByteSource,
    options: ImportOptions = {},
  ): Promise<ValidPathInfo> {
    return this.#writer.importPath(info, nar, options);
  }

  /**
   * Import a `nix-store --export` stream, all or nothing: every path is unpacked and checked
   * first, then all are registered in one transaction. Returns the paths in stream order.
   */
  importExport(source: ByteReader | ByteSource): Promise<string[]> {
    return this.#writer.importExport(source);
  }

  #rootAdded(paths: string[]): void {
    if (this.#tempRootsOnAdd) this.addTempRoots(paths);
  }

  /** The export stream (`nix-store --export`) of `paths`, sorted dependencies first. */
  exportPaths(paths: Iterable<string>): AsyncGenerator<Buffer, void, undefined> {
    const sorted = this.topoSortPaths(paths);
    const items = sorted.map((p) => {
      const info = this.queryPathInfo(p);
      return {
        path: p,
        references: info.references,
        deriver: info.deriver,
        physicalPath: this.toRealPath(p),
      };
    });
    return writeExport(items);
  }

  // ---- failed paths ------------------------------------------------------------------------

  /** Remember that building `path` failed (so it is not retried until cleared). */
  registerFailedPath(path: string): void {
    this.storeDir.parsePath(path);
    this.#ctx.stmts.insertFailed.run(path, Math.floor(Date.now() / 1000));
  }

  hasFailedPath(path: string): boolean {
    return this.#ctx.stmts.isFailed.get(path) !== undefined;
  }

  queryFailedPaths(): string[] {
    return this.#ctx.stmts.allFailed
      .all()
      .map((r) => r.path)
      .sort();
  }

  /** Forget the given failed paths, or all of them. */
  clearFailedPaths(paths?: Iterable<string>): void {
    const { db, stmts } = this.#ctx;
    if (paths === undefined) {
      stmts.deleteAllFailed.run();
      return;
    }
    const list = [...paths];
    db.transaction(() => {
      for (const p of list) stmts.deleteFailed.run(p);
    })();
  }

  // ---- roots -------------------------------------------------------------------------------

  /**
   * Keep `path` (valid or about to be built) from the garbage collector for as long as the
   * owning process lives. Add it before checking validity, as a running collector may otherwise
   * delete the path in between.
   */
  addTempRoot(path: string): void {
    this.addTempRoots([path]);
  }

  addTempRoots(paths: Iterable<string>): void {
    const all = [...paths];
    for (const p of all) this.storeDir.parsePath(p);
    this.#rootScopes.note(all);
    const fresh = all.filter((p) => !this.#tempRoots.has(p));
    if (fresh.length === 0) return;
    const { db, stmts, owner } = this.#ctx;
    db.transaction(() => {
      for (const p of fresh) stmts.insertTempRoot.run(p, owner.pid, owner.startTime);
    }).immediate();
    for (const p of fresh) this.#tempRoots.add(p);
  }

  /**
   * Run `body` (a resident server's session) with the temp roots it takes given back at its end,
   * unless another scope or this process outside any still holds them.
   */
  withTempRootScope<T>(body: () => Promise<T>): Promise<T> {
    return this.#rootScopes.run(body, (free) => {
      if (this.#closed) return;
      const { db, stmts, owner } = this.#ctx;
      db.transaction(() => {
        for (const p of free) stmts.deleteTempRoot.run(p, owner.pid, owner.startTime);
      }).immediate();
      for (const p of free) this.#tempRoots.delete(p);
    });
  }

  /** Drop the temp roots of this store's owner (they also go when it exits). */
  removeTempRoots(): void {
    const { owner, stmts } = this.#ctx;
    stmts.deleteTempRootsOf.run(owner.pid, owner.startTime);
    this.#tempRoots.clear();
  }

  /** A permanent root: the symlink `<stateDir>/gcroots/<name>` → `path`. Returns the link. */
  addPermRoot(path: string, name: string): string {
    this.storeDir.toStorePath(path); // a path inside a store path roots that store path

    return addPermRoot(this.layout.gcRootsDir, name, path);
  }

  /** Make the symlink `link` (pointing into the store) an indirect root, as nix-build's `result`. */
  addIndirectRoot(link: string): string {
    return addIndirectRoot(this.layout.gcRootsDir, link);
  }

  removePermRoot(name: string): boolean {
    return removePermRoot(this.layout.gcRootsDir, name);
  }

  /** Store path → the root links that keep it. */
  findRoots(): GcRoots {
    return findGcRoots(this.layout.gcRootsDir, this.storeDir);
  }

  // ---- garbage collection and checks -------------------------------------------------------

  collectGarbage(options: GcOptions = {}): Promise<GcResult> {
    return collectGarbage(this.#ctx, options);
  }

  /** Delete `path` if nothing keeps it alive and nothing else refers to it (PathInUseError). */
  async deletePath(path: string): Promise<GcResult> {
    return collectGarbage(this.#ctx, { paths: [path] });
  }

  verifyStore(options: VerifyOptions = {}): Promise<VerifyReport> {
    return verifyStore(this.#ctx, options);
  }
}

/** Kernel file systems: creating directories there fails oddly (Node's recursive mkdir loops). */
const KERNEL_FS = ["/proc", "/sys", "/dev"];

/**
 * Refuse directories no store can live in before touching them: the root directory as a store
 * (its paths would be `/<hash>-name`, written straight into `/`) and anything on /proc, /sys or
 * /dev.
 */
function checkUsableLayout(layout: StoreLayout): void {
  checkUsableDirectory("state directory", layout.stateDir, "--state-dir");
  checkUsableDirectory("store directory", layout.storeDir.path, "--store-dir");
  checkUsableDirectory("store directory's files", layout.realStoreDir, "--store-root");
}

/** Refuse `dir` for the store's `what` (named by option `flag`) if no store can live there. */
export function checkUsableDirectory(what: string, dir: string, flag: string): void {
  if (dir === "/") {
    throw new UnusableDirectoryError(
      `the ${what} cannot be '/': give ${flag} a directory of its own (e.g. /nix/store for the store)`,
    );
  }
  const k = KERNEL_FS.find((fs) => dir === fs || dir.startsWith(`${fs}/`));
  if (k) {
    throw new UnusableDirectoryError(
      `the ${what} '${dir}' is on ${k}, a kernel file system that cannot hold a store; choose another with ${flag}`,
    );
  }
}
