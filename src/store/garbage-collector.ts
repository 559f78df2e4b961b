// The garbage collector. It decides in one IMMEDIATE transaction what is alive (reachable from a
// GC root, a temp root of a live process, a path locked by a live process, or a store path a
// running process uses) and, in the same transaction, invalidates everything else and takes the
// path locks of what it will delete. Only then are files removed: a builder that wants one of
// those paths waits for its lock, and a path is never valid without its contents. Paths being
// deleted are listed in GcPending, so a collector killed halfway is finished by the next one.
import { readdirSync } from "node:fs";
import { deleteTree } from "../io/delete-tree.ts";
import { TimeSlicer } from "../io/time-slicer.ts";
import { StorePath } from "../store-path/store-path.ts";
import { findGcRoots } from "./gc-roots.ts";
import { closureOf } from "./path-graph.ts";
import { isAlive } from "./process-identity.ts";
import { findRuntimeRoots } from "./runtime-roots.ts";
import type { StoreContext } from "./store-context.ts";
import { PathInUseError } from "./store-errors.ts";
import { tempNameOwner } from "./temp-names.ts";

export interface GcOptions {
  /** Report what would be deleted, change nothing. */
  dryRun?: boolean;
  /** Delete just these paths (refused for any that is alive), instead of all garbage. */
  paths?: readonly string[];
  /** Keep the .drv a live output was built by (Nix's keep-derivations; default true). */
  keepDerivations?: boolean;
  /** Keep the outputs of live derivations (Nix's keep-outputs; default false). */
  keepOutputs?: boolean;
  /** Treat store paths used by running processes as roots (default true). */
  runtimeRoots?: boolean;
}

export interface GcResult {
  /** Valid paths deleted (or, in a dry run, that would be), sorted. */
  deleted: string[];
  /** Other entries of the store directory removed: stale temp files, unregistered leftovers. */
  removedEntries: string[];
  /** Bytes freed (in a dry run: the NAR sizes of the paths that would be deleted). */
  bytesFreed: number;
}

interface Liveness {
  live: Set<string>;
  roots: Map<string, string[]>;
  tempRoots: Set<string>;
  locked: Set<string>;
  runtime: Set<string>;
}

/** Rows touched per transaction while files are being removed. */
const RELEASE_BATCH = 100;

/** Carries a dry run's plan out of the transaction it rolls back. */
class DryRunPlan extends Error {
  constructor(
    readonly deadValid: string[],
    readonly toRemove: string[],
  ) {
    super("dry run");
  }
}

export async function collectGarbage(
  ctx: StoreContext,
  options: GcOptions = {},
): Promise<GcResult> {
  const roots = findGcRoots(ctx.layout.gcRootsDir, ctx.storeDir);
  const runtime =
    options.runtimeRoots === false ? new Set<string>() : findRuntimeRoots(ctx.storeDir);
  const entries = listStoreDir(ctx.layout.realStoreDir);

  let plan: {
    deadValid: string[];
    toRemove: string[];
    lock: ReturnType<typeof ctx.locks.tryLockEach> | undefined;
  };
  try {
    plan = ctx.db
      .transaction(() => {
        sweepDeadTempRoots(ctx);
        ctx.locks.sweepDeadHolders();
        const liveness = computeLiveness(ctx, roots, runtime, options);
        const deadValid = selectDeadValid(ctx, liveness, options);
        const junk = options.paths ? [] : selectJunk(ctx, entries, liveness);
        const pending = options.paths ? [] : selectPending(ctx, liveness);
        const deadSet = new Set(deadValid);
        const toRemove = [...new Set([...junk, ...pending])].filter((p) => !deadSet.has(p));
        // A dry run plans exactly as a real one (dead processes' rows swept first), then rolls
        // the whole transaction back: it changes nothing.
        if (options.dryRun) throw new DryRunPlan(deadValid, toRemove);
        const lock = ctx.locks.tryLockEach([...deadValid, ...toRemove]);
        invalidate(ctx, deadValid);
        return { deadValid, toRemove, lock };
      })
      .immediate();
  } catch (e) {
    if (!(e instanceof DryRunPlan)) throw e;
    plan = { deadValid: e.deadValid, toRemove: e.toRemove, lock: undefined };
  }

  if (options.dryRun) {
    const bytes = plan.deadValid.reduce((n, p) => n + (narSizeOf(ctx, p) ?? 0), 0);
    return {
      deleted: plan.deadValid.sort(),
      removedEntries: plan.toRemove.sort(),
      bytesFreed: bytes,
    };
  }

  // Files go after the commit; each path's pending row and lock are released in batches.
  let bytesFreed = 0;
  const slicer = new TimeSlicer();
  const release = ctx.db.prepare("DELETE FROM PathLocks WHERE path = ? AND token = ?");
  const finish = ctx.db.transaction((paths: string[]) => {
    for (const p of paths) {
      ctx.stmts.deleteGcPending.run(p);
      release.run(p, plan.lock!.token);
    }
  });
  const locked = new Set(plan.lock!.paths);
  let batch: string[] = [];
  try {
    for (const p of [...plan.deadValid, ...plan.toRemove]) {
      if (!locked.has(p)) continue;
      bytesFreed += deleteTree(ctx.realPath(p));
      batch.push(p);
      if (batch.length >= RELEASE_BATCH) {
        finish.immediate(batch);
        batch = [];
      }
      if (slicer.due()) await slicer.yieldToEventLoop();
    }
    finish.immediate(batch);
  } finally {
    plan.lock!.release();
  }
  const temps = removeDeadTempEntries(ctx, entries);
  return {
    deleted: plan.deadValid.sort(),
    removedEntries: [...plan.toRemove, ...temps.removed].sort(),
    bytesFreed: bytesFreed + temps.bytes,
  };
}

function listStoreDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Drop the temp roots of processes that are gone (they protect nothing any more). */
export function sweepDeadTempRoots(ctx: StoreContext): void {
  for (const owner of ctx.stmts.tempRootOwners.all()) {
    if (!isAlive(owner)) ctx.stmts.deleteTempRootsOf.run(owner.pid, owner.startTime);
  }
}

function computeLiveness(
  ctx: StoreContext,
  roots: Map<string, string[]>,
  runtime: Set<string>,
  options: GcOptions,
): Liveness {
  const { stmts } = ctx;
  const tempRoots = new Set(stmts.tempRootPaths.all().map((r) => r.path));
  const locked = new Set(stmts.allLockedPaths.all().map((r) => r.path));
  const keepDerivations = options.keepDerivations ?? true;
  const keepOutputs = options.keepOutputs ?? false;
  const start = [...roots.keys(), ...tempRoots, ...locked, ...runtime];
  const live = closureOf(start, (p) => {
    const row = stmts.pathRow.get(p);
    if (row === undefined) return [];
    const next = stmts.referencesOf.all(row.id).map((r) => r.path);
    if (keepDerivations && row.deriver !== null) {
      // Only a deriver that is valid and really lists this path among its outputs.
      const derivers = stmts.validDerivers.all(p).map((r) => r.path);
      if (derivers.includes(row.deriver)) next.push(row.deriver);
    }
    if (keepOutputs && p.endsWith(".drv")) {
      for (const o of stmts.drvOutputs.all(row.id)) if (stmts.pathId.get(o.path)) next.push(o.path);
    }
    return next;
  });
  return { live, roots, tempRoots, locked, runtime };
}

function whyAlive(ctx: StoreContext, path: string, l: Liveness): string {
  const links = l.roots.get(path);
  if (links) return `it is a GC root (${links.join(", ")})`;
  if (l.tempRoots.has(path)) return "a running process holds a temporary root on it";
  if (l.locked.has(path)) return "it is locked by a running process (being built?)";
  if (l.runtime.has(path)) return "a running process is using it";
  const row = ctx.stmts.pathId.get(path)!;
  const referrer = ctx.stmts.referrersOf.all(row.id).find((r) => l.live.has(r.path));
  if (referrer) return `it is still referenced by '${referrer.path}', which is alive`;
  return "it is kept alive by a live derivation or output (keep-derivations/keep-outputs)";
}

/** Valid paths to delete: all dead ones, or just the requested ones (refusing live ones). */
function selectDeadValid(ctx: StoreContext, l: Liveness, options: GcOptions): string[] {
  const { stmts } = ctx;
  if (options.paths === undefined) {
    return stmts.allPaths
      .all()
      .map((r) => r.path)
      .filter((p) => !l.live.has(p));
  }
  const requested = new Set<string>();
  for (const p of options.paths) {
    ctx.storeDir.parsePath(p);
    if (stmts.pathId.get(p)) requested.add(p);
  }
  for (const p of requested) {
    if (l.live.has(p)) throw new PathInUseError(p, whyAlive(ctx, p, l));
    const id = stmts.pathId.get(p)!.id;
    const other = stmts.referrersOf.all(id).find((r) => r.path !== p && !requested.has(r.path));
    if (other) {
      throw new PathInUseError(p, `it is still referenced by '${other.path}'; delete that first`);
    }
  }
  return [...requested];
}

/** Entries of the store directory that are not valid and that nothing protects. */
function selectJunk(ctx: StoreContext, entries: string[], l: Liveness): string[] {
  if (!ctx.ownsStoreDir) return [];
  const junk: string[] = [];
  for (const name of entries) {
    if (name.startsWith(".")) continue;
    let path: string;
    try {
      path = ctx.storeDir.print(StorePath.parseBaseName(name));
    } catch {
      continue;
    }
    if (l.live.has(path) || ctx.stmts.pathId.get(path)) continue;
    junk.push(path);
  }
  return junk;
}

/** Paths a previous collector invalidated but did not finish deleting. */
function selectPending(ctx: StoreContext, l: Liveness): string[] {
  const out: string[] = [];
  for (const { path } of ctx.stmts.allGcPending.all()) {
    if (ctx.stmts.pathId.get(path)) ctx.stmts.deleteGcPending.run(path);
    else if (!l.live.has(path)) out.push(path);
  }
  return out;
}

/** Drop the rows of `paths`, all dead (so all their referrers are in `paths` too). */
function invalidate(ctx: StoreContext, paths: string[]): void {
  const { stmts } = ctx;
  const ids = paths.map((p) => stmts.pathId.get(p)!.id);
  for (const p of paths) stmts.insertGcPending.run(p);
  // References first: Refs.reference is ON DELETE RESTRICT.
  for (const id of ids) stmts.deleteRefsFrom.run(id);
  for (const id of ids) stmts.deletePath.run(id);
  ctx.infoCache.clear();
}

function narSizeOf(ctx: StoreContext, path: string): number | undefined {
  return ctx.stmts.pathRow.get(path)?.narSize;
}

/** Remove temp entries (`.nixstate-tmp-…`) whose writer died. */
function removeDeadTempEntries(
  ctx: StoreContext,
  entries: string[],
): { removed: string[]; bytes: number } {
  const removed: string[] = [];
  let bytes = 0;
  for (const name of entries) {
    const owner = tempNameOwner(name);
    if (owner === undefined || isAlive(owner)) continue;
    bytes += deleteTree(`${ctx.layout.realStoreDir}/${name}`);
    removed.push(`${ctx.storeDir.path}/${name}`);
  }
  return { removed, bytes };
}
