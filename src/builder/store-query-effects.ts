// The worker's effects that only ask the store: derivations (parsed once), their outputs'
// validity and ids, input closures (from memoised references), locks. LocalBuildEffects adds
// running builds.

import { lstatSync, readFileSync } from "node:fs";
import { parseDerivation } from "../derivation/aterm-parse.ts";
import type { Derivation } from "../derivation/derivation.ts";
import { derivationNameFromFile } from "../derivation/drv-file.ts";
import { type DrvHashCache, hashDerivationModulo } from "../derivation/hash-modulo.ts";
import type {
  AnyDerivation,
  InputPathsInput,
  OutputStatus,
  QueryOutputsInput,
  RepairInput,
} from "../machines/build-attempt.ts";
import type { OutputLock } from "../machines/worker-effects.ts";
import { narHash } from "../nar/nar-hash.ts";
import type { LocalStore } from "../store/local-store.ts";

export class StoreQueryEffects {
  private readonly drvs = new Map<string, Derivation>();
  private readonly hashes: DrvHashCache = new Map();
  private readonly references = new Map<string, readonly string[]>();
  private readonly ids = new Map<string, Map<string, string>>();

  constructor(protected readonly store: LocalStore) {}

  isValidPath(path: string): boolean | Promise<boolean> {
    return this.store.isValidPath(path);
  }

  /** Read a .drv from the store and keep it alive with a temp root. */
  readDerivation(drvPath: string): Derivation {
    // The store remembers its temp roots: rooting a path again costs a Set lookup.
    this.store.addTempRoot(drvPath);
    return this.parseDerivation(drvPath);
  }

  /** Read a .drv (parsed once) without rooting it, e.g. to plan a run. */
  parseDerivation(drvPath: string): Derivation {
    const cached = this.drvs.get(drvPath);
    if (cached) return cached;
    const drv = parseDerivation(readFileSync(this.store.toRealPath(drvPath)), {
      name: derivationNameFromFile(drvPath),
      storeDir: this.store.storeDir,
      source: drvPath,
    });
    this.drvs.set(drvPath, drv);
    return drv;
  }

  forgetDerivation(drvPath: string): void {
    this.drvs.delete(drvPath);
    this.ids.delete(drvPath);
  }

  /** Keep derivations and their outputs alive against GC for this run, in one transaction. */
  protect(drvPaths: Iterable<string>): void {
    const paths: string[] = [];
    for (const p of drvPaths) {
      paths.push(p);
      for (const o of this.parseDerivation(p).outputs.values())
        if (o.type !== "deferred") paths.push(o.path);
    }
    this.store.addTempRoots(paths);
  }

  /** DrvOutput ids (`sha256:<masked hashDerivationModulo>!<output>`) of a derivation. */
  private outputIds(drvPath: string, drv: AnyDerivation): Map<string, string> {
    // Only .drv files read from the store are cached: an in-memory derivation is hashed as sent.
    const cacheable = this.drvs.get(drvPath) === drv;
    const cached = cacheable ? this.ids.get(drvPath) : undefined;
    if (cached) return cached;
    const resolve = (p: string) => this.readDerivation(p);
    const hashes = hashDerivationModulo(drv, this.store.storeDir, true, resolve, this.hashes);
    const ids = new Map([...hashes].map(([name, h]) => [name, `sha256:${h.toBase16()}!${name}`]));
    if (cacheable) this.ids.set(drvPath, ids);
    return ids;
  }

  /** Repair mode: a registered path counts as valid only if its contents match its NAR hash. */
  private async contentsGood(path: string): Promise<boolean> {
    const info = this.store.tryQueryPathInfo(path);
    const real = this.store.toRealPath(path);
    if (!info || !lstatSync(real, { throwIfNoEntry: false })) return false;
    return (await narHash(real)).hash.equals(info.narHash.digest);
  }

  async queryOutputs(input: QueryOutputsInput): Promise<OutputStatus[]> {
    const ids = this.outputIds(input.drvPath, input.drv);
    const all = input.wantedOutputs.length === 0;
    const outputs: OutputStatus[] = [];
    for (const [name, o] of input.drv.outputs) {
      if (o.type === "deferred")
        throw new Error(`output '${name}' of '${input.drvPath}' has no known path`);
      outputs.push({
        name,
        path: o.path,
        id: ids.get(name)!,
        valid: this.store.isValidPath(o.path),
        wanted: all || input.wantedOutputs.includes(name),
        failedBefore: input.cacheFailures && this.store.hasFailedPath(o.path),
      });
    }
    this.store.addTempRoots(outputs.map((o) => o.path));
    if (input.mode === "repair") {
      for (const o of outputs) if (o.valid && !(await this.contentsGood(o.path))) o.valid = false;
    }
    return outputs;
  }

  /** References of a valid path (they never change), each asked of the database once. */
  private referencesOf(path: string): readonly string[] {
    let refs = this.references.get(path);
    if (!refs) {
      refs = this.store.queryReferences(path);
      this.references.set(path, refs);
    }
    return refs;
  }

  computeInputPaths(input: InputPathsInput): string[] {
    const roots = [...input.drv.inputSrcs];
    const inputDrvs = (input.drv as Partial<Derivation>).inputDrvs ?? new Map<string, string[]>();
    for (const [drvPath, outs] of inputDrvs) {
      for (const out of outs) {
        let path = input.inputDrvOutputs[`${drvPath}!${out}`];
        if (!path) {
          const o = this.readDerivation(drvPath).outputs.get(out);
          if (!o || o.type === "deferred") {
            throw new Error(
              `derivation '${input.drvPath}' requires non-existent output '${out}' from input derivation '${drvPath}'`,
            );
          }
          path = o.path;
        }
        roots.push(path);
      }
    }
    // A walk over cached references: memoising whole closures instead would keep a set per
    // path, which for a large DAG is most of the run's memory.
    const all = new Set<string>(roots);
    const todo = [...all];
    for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
      for (const ref of this.referencesOf(p)) {
        if (!all.has(ref)) {
          all.add(ref);
          todo.push(ref);
        }
      }
    }
    return [...all];
  }

  tryLockOutputs(
    _drvPath: string,
    outputs: OutputStatus[],
  ): OutputLock | undefined | Promise<OutputLock | undefined> {
    const lock = this.store.locks.tryLock(outputs.map((o) => o.path));
    return lock && { release: () => lock.release() };
  }

  queryDeriver(path: string): string | undefined {
    return this.store.tryQueryPathInfo(path)?.deriver;
  }

  /** Paths in the outputs' closure (other than the outputs) whose contents do not match. */
  async checkOutputClosure(input: RepairInput): Promise<string[]> {
    const own = new Set(input.outputs.map((o) => o.path));
    const closure = this.store.computeFSClosure(
      input.outputs.filter((o) => o.wanted).map((o) => o.path),
    );
    const corrupt: string[] = [];
    for (const p of closure) {
      if (!own.has(p) && !(await this.contentsGood(p))) corrupt.push(p);
    }
    return corrupt;
  }
}
