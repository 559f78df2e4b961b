// Writing paths into the store. Every write goes: contents under a temp name in the store
// directory → canonical (read-only, mtime 1) → path lock → rename to the final name → row in one
// transaction → unlock. So a valid path always has its contents, nobody sees a half-written path
// under its name, and a failed registration leaves neither row nor contents behind.
import { createHash } from "node:crypto";
import { lstatSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { Derivation } from "../derivation/derivation.ts";
import { Hash } from "../hash/hash.ts";
import { ByteReader, type ByteSource } from "../io/byte-reader.ts";
import { deleteTree } from "../io/delete-tree.ts";
import { dumpNar } from "../nar/nar-dump.ts";
import { narHash, regularFileNarHash } from "../nar/nar-hash.ts";
import { parseNar } from "../nar/nar-parse.ts";
import { restoreNar } from "../nar/nar-restore.ts";
import {
  type ContentAddress,
  parseContentAddress,
  renderContentAddress,
} from "../store-path/content-address.ts";
import { makeFixedOutputPath, makeTextPath } from "../store-path/make-store-path.ts";
import { checkStorePathName } from "../store-path/store-path.ts";
import { canonicaliseTree } from "./canonical-tree.ts";
import { readExport } from "./export-format.ts";
import type { PathInfoInput, ValidPathInfo } from "./path-info.ts";
import { checkedStoreDerivation, type Registration } from "./register-paths.ts";
import type { StoreContext } from "./store-context.ts";
import {
  ContentAddressMismatchError,
  DanglingReferenceError,
  InvalidPathError,
  NarHashMismatchError,
  StoreError,
} from "./store-errors.ts";
import { makeTempName } from "./temp-names.ts";

export interface StoreWriterDeps {
  register: Registration;
  /** Path info of a valid path, undefined otherwise. */
  query: (path: string) => ValidPathInfo | undefined;
  /** Called with every path about to be added or found valid (to temp-root them). */
  rootAdded: (paths: string[]) => void;
}

export interface ImportOptions {
  /**
   * The caller already holds `info.path`'s lock (a substitution goal takes it before fetching, to
   * re-check validity under it); the import must not wait for it.
   */
  lockHeld?: boolean;
  /** Replace the contents of a valid path (which must be registered with the same NAR hash). */
  repair?: boolean;
}

export class StoreWriter {
  readonly #ctx: StoreContext;
  readonly #register: Registration;
  readonly #query: (path: string) => ValidPathInfo | undefined;
  readonly #rootAdded: (paths: string[]) => void;

  constructor(ctx: StoreContext, deps: StoreWriterDeps) {
    this.#ctx = ctx;
    this.#register = deps.register;
    this.#query = deps.query;
    this.#rootAdded = deps.rootAdded;
  }

  #isValid(path: string): boolean {
    this.#ctx.storeDir.parsePath(path);
    return this.#ctx.stmts.pathId.get(path) !== undefined;
  }

  #mustQuery(path: string): ValidPathInfo {
    const info = this.#query(path);
    if (info === undefined) throw new InvalidPathError(path);
    return info;
  }

  /**
   * Copy the file tree at `src` into the store as `nix-store --add` does: NAR-hashed (recursive
   * sha256), read-only, mtime 1. Returns the (possibly already valid) path's info.
   */
  async addToStore(src: string, options: { name?: string } = {}): Promise<ValidPathInfo> {
    const name = options.name ?? basename(resolve(src));
    checkStorePathName(name);
    const tmp = this.#tempPath();
    try {
      const restored = await restoreNar(dumpNar(src), tmp, { hashAlgorithm: "sha256" });
      const narHash = new Hash("sha256", restored.narHash!);
      const path = this.#ctx.storeDir.print(
        makeFixedOutputPath(this.#ctx.storeDir, name, "nar", narHash),
      );
      this.#rootAdded([path]);
      const existing = this.#query(path);
      if (existing) return existing;
      canonicaliseTree(tmp);
      const ca = renderContentAddress({ method: "nar", hash: narHash });
      const lock = await this.#ctx.locks.lock(path);
      try {
        this.#moveIntoPlace([{ tmp, info: { path, narHash, narSize: restored.narSize, ca } }]);
        return this.#mustQuery(path);
      } finally {
        lock.release();
      }
    } finally {
      deleteTree(tmp);
    }
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
    const bytes = typeof text === "string" ? Buffer.from(text) : Buffer.from(text);
    const refs = [...new Set(references)].sort();
    const contentHash = Hash.of("sha256", bytes);
    const sp = makeTextPath(
      this.#ctx.storeDir,
      name,
      contentHash,
      refs.map((r) => this.#ctx.storeDir.parsePath(r)),
    );
    const path = this.#ctx.storeDir.print(sp);
    this.#rootAdded([path]);
    const existing = this.#query(path);
    if (existing) return existing;
    for (const r of refs) {
      if (!this.#ctx.stmts.pathId.get(r)) throw new DanglingReferenceError(path, r);
    }
    const drvs = new Map<string, Derivation>();
    if (sp.isDerivation())
      drvs.set(path, checkedStoreDerivation(this.#ctx, path, name, bytes, `add '${name}'`));
    const nar = regularFileNarHash(bytes);
    const info: PathInfoInput = {
      path,
      narHash: new Hash("sha256", nar.hash),
      narSize: nar.size,
      references: refs,
      ca: renderContentAddress({ method: "text", hash: contentHash }),
    };
    const lock = this.#ctx.locks.tryLock(path) ?? this.#ctx.locks.lockSync(path);
    const tmp = this.#tempPath();
    try {
      const valid = this.#query(path);
      if (valid) return valid;
      writeFileSync(tmp, bytes, { mode: 0o444 });
      canonicaliseTree(tmp);
      this.#moveIntoPlace([{ tmp, info }], drvs);
      return this.#mustQuery(path);
    } finally {
      lock.release();
      deleteTree(tmp);
    }
  }

  /**
   * Unpack the NAR in `nar` as `info.path`, checking it against `info`'s NAR hash and size. With
   * a ByteReader, exactly the NAR is consumed (also when the path is already valid).
   */
  async importPath(
    info: PathInfoInput,
    nar: ByteReader | ByteSource,
    options: ImportOptions = {},
  ): Promise<ValidPathInfo> {
    this.#ctx.storeDir.parsePath(info.path);
    const reader = nar instanceof ByteReader ? nar : new ByteReader(nar);
    this.#rootAdded([info.path]);
    const existing = this.#query(info.path);
    if (existing && !options.repair) {
      await parseNar(reader);
      return existing;
    }
    for (const r of info.references ?? []) {
      if (r !== info.path && !this.#isValid(r)) throw new DanglingReferenceError(info.path, r);
    }
    const tmp = this.#tempPath();
    try {
      const restored = await restoreNar(reader, tmp, { hashAlgorithm: info.narHash.algo });
      const got = new Hash(info.narHash.algo, restored.narHash!);
      if (!got.equals(info.narHash)) {
        throw new NarHashMismatchError(info.path, info.narHash.toString(), got.toString());
      }
      if (restored.narSize !== info.narSize) {
        throw new NarHashMismatchError(
          info.path,
          `NAR size ${info.narSize}`,
          `NAR size ${restored.narSize}`,
        );
      }
      if (info.ca !== undefined) await checkContentAddress(info.path, info.ca, tmp);
      canonicaliseTree(tmp);
      const lock = options.lockHeld ? undefined : await this.#ctx.locks.lock(info.path);
      try {
        const valid = options.repair ? this.#query(info.path) : undefined;
        if (valid) this.#replaceContents(tmp, valid, info);
        else this.#moveIntoPlace([{ tmp, info }]);
        return this.#mustQuery(info.path);
      } finally {
        lock?.release();
      }
    } finally {
      deleteTree(tmp);
    }
  }

  /**
   * Swap checked contents in for those of a valid path (repair): the old ones are renamed aside
   * first, so the path is never half-written. The registration stays as it is.
   */
  #replaceContents(tmp: string, valid: ValidPathInfo, info: PathInfoInput): void {
    if (!valid.narHash.equals(info.narHash)) {
      throw new StoreError(
        `cannot repair '${info.path}' from contents with NAR hash ${info.narHash.toString()}: it is registered with ${valid.narHash.toString()}`,
      );
    }
    const real = this.#ctx.realPath(info.path);
    const old = this.#tempPath();
    if (lstatSync(real, { throwIfNoEntry: false })) renameSync(real, old);
    renameSync(tmp, real);
    deleteTree(old);
  }

  /**
   * Import a `nix-store --export` stream, all or nothing: every path is unpacked and checked
   * first, then all are registered in one transaction. Returns the paths in stream order.
   */
  async importExport(source: ByteReader | ByteSource): Promise<string[]> {
    const reader = source instanceof ByteReader ? source : new ByteReader(source);
    const staged: { tmp: string; info: PathInfoInput }[] = [];
    const order: string[] = [];
    const inStream = new Set<string>();
    const restore = async (r: ByteReader) => {
      const tmp = this.#tempPath();
      try {
        const restored = await restoreNar(r, tmp, { hashAlgorithm: "sha256" });
        return { tmp, narSize: restored.narSize, narHash: new Hash("sha256", restored.narHash!) };
      } catch (e) {
        // Not staged yet, so the clean-up below does not know it: remove it here.
        deleteTree(tmp);
        throw e;
      }
    };
    try {
      for await (const { meta, nar } of readExport(reader, restore)) {
        staged.push({
          tmp: nar.tmp,
          info: {
            path: meta.path,
            narHash: nar.narHash,
            narSize: nar.narSize,
            references: meta.references,
            deriver: meta.deriver,
          },
        });
        // Checked before anything is staged further: exactly as Nix writes paths, or refused.
        const dir = this.#ctx.storeDir;
        dir.parseCanonicalPath(meta.path, "exported path");
        for (const r of meta.references) dir.parseCanonicalPath(r, `reference of '${meta.path}'`);
        if (meta.deriver) dir.parseCanonicalPath(meta.deriver, `deriver of '${meta.path}'`);
        for (const r of meta.references) {
          if (r !== meta.path && !inStream.has(r) && !this.#isValid(r)) {
            throw new DanglingReferenceError(meta.path, r);
          }
        }
        inStream.add(meta.path);
        order.push(meta.path);
      }
      this.#rootAdded(order);
      const fresh = staged.filter((s) => !this.#isValid(s.info.path));
      for (const s of fresh) canonicaliseTree(s.tmp);
      const lock = await this.#ctx.locks.lock(fresh.map((s) => s.info.path));
      try {
        this.#moveIntoPlace(fresh);
      } finally {
        lock.release();
      }
      return order;
    } finally {
      for (const s of staged) deleteTree(s.tmp);
    }
  }

  /**
   * Rename staged contents to their paths and register them in one transaction; on failure the
   * renamed contents are removed again. The caller holds the paths' locks.
   */
  #moveIntoPlace(
    items: readonly { tmp: string; info: PathInfoInput }[],
    drvs?: ReadonlyMap<string, Derivation>,
  ): void {
    const todo = items.filter((it) => !this.#ctx.stmts.pathId.get(it.info.path));
    const placed: string[] = [];
    try {
      for (const { tmp, info } of todo) {
        const real = this.#ctx.realPath(info.path);
        if (placed.includes(real)) continue;
        deleteTree(real); // a leftover of a crashed writer: we hold the lock, it is ours to replace
        renameSync(tmp, real);
        placed.push(real);
      }
      this.#register(
        todo.map((t) => t.info),
        drvs,
      );
    } catch (e) {
      for (const real of placed) deleteTree(real);
      throw e;
    }
  }

  #tempPath(): string {
    return join(this.#ctx.layout.realStoreDir, makeTempName());
  }
}

/**
 * Contents must have the hash their content address claims, as Nix 2.8 checks on import: a
 * text or flat address hashes the file, a recursive one its NAR, with the address's algorithm.
 */
async function checkContentAddress(path: string, text: string, contents: string): Promise<void> {
  let ca: ContentAddress;
  try {
    ca = parseContentAddress(text);
  } catch (e) {
    throw new StoreError(
      `path '${path}' comes with an invalid content address: ${(e as Error).message}`,
    );
  }
  const algo = ca.hash.algo;
  let digest: Buffer;
  if (ca.method === "nar") {
    digest = (await narHash(contents, algo)).hash;
  } else if (lstatSync(contents).isFile()) {
    digest = createHash(algo).update(readFileSync(contents)).digest();
  } else {
    throw new ContentAddressMismatchError(path, ca.hash.format("nix32"), "(not a regular file)");
  }
  const got = new Hash(algo, digest);
  if (!got.equals(ca.hash)) {
    throw new ContentAddressMismatchError(path, ca.hash.format("nix32"), got.format("nix32"));
  }
}
