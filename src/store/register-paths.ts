// Making paths valid: one transaction per batch, so either every path of the batch becomes
// valid with its references, or none does. Checks that need no database (well-formed paths,
// contents on disk, readable derivations) run before the transaction.
import { lstatSync, readFileSync } from "node:fs";
import { parseDerivation } from "../derivation/aterm-parse.ts";
import type { Derivation } from "../derivation/derivation.ts";
import { validateDerivation } from "../derivation/validate.ts";
import { topoSortPaths } from "./path-graph.ts";
import type { PathInfoInput } from "./path-info.ts";
import type { StoreContext } from "./store-context.ts";
import { DanglingReferenceError, MissingContentsError, StoreError } from "./store-errors.ts";

interface PreparedInfo {
  path: string;
  hash: string;
  narSize: number;
  references: readonly string[];
  deriver: string | null;
  registrationTime: number;
  ultimate: number | null;
  sigs: string | null;
  ca: string | null;
  /** For .drv paths: output name → output path. */
  outputs: [string, string][];
}

/** Nix stores NAR hashes as `sha256:<base16>`. */
export function formatDbHash(info: PathInfoInput): string {
  return info.narHash.format("base16");
}

/** The outputs a .drv in the store promises (deferred outputs have no path yet). */
export function derivationOutputPaths(drv: Derivation): [string, string][] {
  const outs: [string, string][] = [];
  for (const [name, o] of drv.outputs) if (o.type !== "deferred") outs.push([name, o.path]);
  return outs;
}

/**
 * A .drv entering the store (`what` it is doing: "register '…'", "add '…'") must be a valid
 * derivation: its outputs are recorded from it.
 */
export function checkedStoreDerivation(
  ctx: StoreContext,
  path: string,
  name: string,
  bytes: Buffer,
  what: string,
): Derivation {
  try {
    const drv = parseDerivation(bytes, {
      name: name.slice(0, -".drv".length),
      storeDir: ctx.storeDir,
      source: path,
    });
    validateDerivation(drv, ctx.storeDir, path);
    return drv;
  } catch (e) {
    throw new StoreError(
      `cannot ${what}: its name ends in .drv but it is not a valid derivation: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

function readStoreDerivation(ctx: StoreContext, path: string, name: string): Derivation {
  const bytes = readFileSync(ctx.realPath(path));
  return checkedStoreDerivation(ctx, path, name, bytes, `register '${path}'`);
}

function prepare(
  ctx: StoreContext,
  info: PathInfoInput,
  now: number,
  knownDrvs: ReadonlyMap<string, Derivation> | undefined,
): PreparedInfo {
  const sp = ctx.storeDir.parseCanonicalPath(info.path);
  for (const r of info.references ?? []) ctx.storeDir.parseCanonicalPath(r, "reference");
  if (info.deriver !== undefined) ctx.storeDir.parseCanonicalPath(info.deriver, "deriver");
  if (!Number.isSafeInteger(info.narSize) || info.narSize < 0) {
    throw new StoreError(`cannot register '${info.path}': invalid NAR size ${info.narSize}`);
  }
  const real = ctx.realPath(info.path);
  try {
    lstatSync(real);
  } catch {
    throw new MissingContentsError(info.path, real);
  }
  const drv = sp.isDerivation()
    ? (knownDrvs?.get(info.path) ?? readStoreDerivation(ctx, info.path, sp.name))
    : undefined;
  return {
    path: info.path,
    hash: formatDbHash(info),
    narSize: info.narSize,
    references: info.references ?? [],
    deriver: info.deriver ?? null,
    registrationTime: info.registrationTime ?? now,
    ultimate: info.ultimate ? 1 : null,
    sigs: info.sigs && info.sigs.length > 0 ? info.sigs.join(" ") : null,
    ca: info.ca ?? null,
    outputs: drv ? derivationOutputPaths(drv) : [],
  };
}

/** Registers a batch of paths in one transaction (see makeRegistration). */
export type Registration = (
  infos: readonly PathInfoInput[],
  knownDrvs?: ReadonlyMap<string, Derivation>,
) => void;

/**
 * A function registering batches of paths for `ctx`. Paths already valid are left as they are
 * (their contents cannot have changed); references must be valid or in the same batch.
 */
export function makeRegistration(ctx: StoreContext): Registration {
  const { stmts } = ctx;
  const insertAll = ctx.db.transaction((items: PreparedInfo[]) => {
    const ids = new Map<string, number>();
    const fresh: PreparedInfo[] = [];
    for (const it of items) {
      if (ids.has(it.path)) continue;
      const existing = stmts.pathId.get(it.path);
      if (existing) {
        ids.set(it.path, existing.id);
        continue;
      }
      const { lastInsertRowid } = stmts.insertPath.run(
        it.path,
        it.hash,
        it.registrationTime,
        it.deriver,
        it.narSize,
        it.ultimate,
        it.sigs,
        it.ca,
      );
      ids.set(it.path, Number(lastInsertRowid));
      fresh.push(it);
    }
    for (const it of fresh) {
      const id = ids.get(it.path)!;
      for (const ref of it.references) {
        const refId = ids.get(ref) ?? stmts.pathId.get(ref)?.id;
        if (refId === undefined) throw new DanglingReferenceError(it.path, ref);
        stmts.insertRef.run(id, refId);
      }
      for (const [name, out] of it.outputs) stmts.insertDrvOutput.run(id, name, out);
    }
  });
  return (infos, knownDrvs) => {
    if (infos.length === 0) return;
    const now = Math.floor(Date.now() / 1000);
    const prepared = infos.map((info) => prepare(ctx, info, now, knownDrvs));
    // As Nix: a cycle (other than a self-reference) can only come from a bad batch; refuse it.
    if (prepared.length > 1) {
      const byPath = new Map(prepared.map((p) => [p.path, p.references]));
      topoSortPaths(byPath.keys(), (p) => byPath.get(p) ?? []);
    }
    insertAll.immediate(prepared);
  };
}
