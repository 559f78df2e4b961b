// The worker's effects for a local store: SQLite queries, locks, and real builder processes.

import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { lstat, rm } from "node:fs/promises";
import { join } from "node:path";
import { isFixedOutput } from "../derivation/derivation.ts";
import { nix32Encode } from "../hash/nix32.ts";
import { deleteTree } from "../io/delete-tree.ts";
import type {
  AnyDerivation,
  BuildAttempt,
  OutputStatus,
  RunBuildInput,
} from "../machines/build-attempt.ts";
import type {
  BuildHooks,
  OutputLock,
  SubstitutionEffects,
  WorkerEffects,
} from "../machines/worker-effects.ts";
import type { LocalStore } from "../store/local-store.ts";
import type { NixStoreAdopter } from "../store/nix-store-adopt.ts";
import { makeTempName } from "../store/temp-names.ts";
import type { Substituter } from "../substituters/substituter.ts";
import { LocalSubstitutionEffects } from "../substituters/substitution-effects.ts";
import { BuildDirPool } from "./build-dir-pool.ts";
import { compressLog, logPaths, logTail } from "./build-log.ts";
import { DEFAULT_BUILD_SETTINGS, type LocalBuildSettings } from "./build-settings.ts";
import { builderEnv } from "./builder-env.ts";
import { isBuiltinBuilder, runBuiltinBuilder } from "./builtin-fetchurl.ts";
import {
  BuildSetupError,
  exportReferencesGraphFiles,
  type ReferencesGraphStore,
} from "./export-references-graph.ts";
import { LogLineSink } from "./log-lines.ts";
import { registerOutputs } from "./register-outputs.ts";
import { describeExit, runBuilder } from "./run-builder.ts";
import { SANDBOX_BUILD_DIR, sandboxAvailable, sandboxCommand } from "./sandbox.ts";
import { type FileLocks, Spawner } from "./spawner.ts";
import { StoreQueryEffects } from "./store-query-effects.ts";
import {
  lenientStringsAttr,
  ParsedDerivation,
  StructuredAttrsError,
  structuredAttrsFiles,
} from "./structured-attrs.ts";

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * The derivation's `requiredSystemFeatures` (from its structured attributes when it has them; one
 * of the wrong type reads as none here and fails the build when it is set up).
 */
export function requiredFeatures(drv: AnyDerivation): string[] {
  return lenientStringsAttr(drv, "requiredSystemFeatures") ?? [];
}

export class LocalBuildEffects extends StoreQueryEffects implements WorkerEffects {
  readonly settings: LocalBuildSettings;
  /** Messages for the user (kept build directories…). */
  private readonly buildDirs: BuildDirPool;
  private readonly spawner: Spawner;
  /** Whether `drain` ends the spawner (not when the caller shares one across builds). */
  private readonly ownsSpawner: boolean;
  private adopter: NixStoreAdopter | undefined;
  /** Sandbox store directories of running builds (removed when they end). */
  private readonly privateStores = new Set<string>();
  /** Clean-ups left to run off the main thread (build directories, log compression). */
  private readonly background = new Set<Promise<void>>();

  /** Substituters to copy paths from before building (none: build everything). */
  readonly substitution: SubstitutionEffects | undefined;

  constructor(
    store: LocalStore,
    settings: Partial<LocalBuildSettings> = {},
    substituters: readonly Substituter[] = [],
    /** A spawner to share (a serve session's builds: starting one costs a process per build). */
    spawner?: Spawner,
  ) {
    super(store);
    this.spawner = spawner ?? new Spawner();
    this.ownsSpawner = spawner === undefined;
    this.substitution =
      substituters.length > 0
        ? new LocalSubstitutionEffects(store, substituters, (paths) => this.lockFiles(paths))
        : undefined;
    this.settings = { ...DEFAULT_BUILD_SETTINGS, ...settings };
    this.buildDirs = new BuildDirPool(
      this.settings.buildDirRoot ?? join(store.layout.stateDir, "builds"),
    );
  }

  /**
   * The store's lock rows and, as Nix takes them, flocks on `<output>.lock`: so nixstate and
   * Nix building in one store exclude each other (the one that waits then finds the outputs
   * valid), and builders that expect `$out.lock` find it.
   */
  override async tryLockOutputs(
    drvPath: string,
    outputs: OutputStatus[],
  ): Promise<OutputLock | undefined> {
    const rows = await super.tryLockOutputs(drvPath, outputs);
    if (!rows) return undefined;
    let files: FileLocks | undefined;
    try {
      files = await this.lockFiles(outputs.map((o) => o.path));
    } finally {
      if (!files) rows.release(false);
    }
    if (!files) return undefined;
    const held = files;
    const onDisk = held.onDisk;
    return {
      release: (built) => {
        held.release();
        rows.release(built);
      },
      ...(onDisk
        ? { onDisk: new Set(outputs.filter((_, i) => onDisk[i]).map((o) => o.path)) }
        : {}),
    };
  }

  /**
   * The spawner says which outputs exist as it takes their locks, so the usual case (none do)
   * costs no lookup here. Without it, looked up on libuv's pool: a lookup in the store directory
   * waits while builders create their outputs there.
   */
  async removeStaleOutputs(paths: string[], lock: OutputLock): Promise<void> {
    for (const p of paths) {
      const real = this.store.toRealPath(p);
      if (lock.onDisk ? lock.onDisk.has(p) : await exists(real)) deleteTree(real);
    }
  }

  locksReleased(): Promise<void> {
    return this.spawner.locksReleased();
  }

  /**
   * Start the builder spawner now, when builds are known to come: its process then starts while
   * the goals are set up instead of when the first one locks its outputs (~70 ms of a one-build
   * run, BENCHMARKS.md). Not before that is known: a run with nothing to build never starts it.
   */
  startSpawner(): void {
    this.spawner.start();
  }

  /** Paths Nix holds as valid in a store whose files are shared with it are valid here too. */
  shareStoreWith(adopter: NixStoreAdopter): void {
    this.adopter = adopter;
  }

  override isValidPath(path: string): boolean | Promise<boolean> {
    if (this.store.isValidPath(path)) return true;
    return this.adopter ? this.adopter.adopt(path) : false;
  }

  /** Nix's flocks on `<real path>.lock` for each of `paths` (store paths), all or none. */
  private lockFiles(paths: string[]): Promise<FileLocks | undefined> {
    return this.spawner.tryLockFiles(paths.map((p) => this.store.toRealPath(p)));
  }

  async runBuild(
    input: RunBuildInput,
    signal: AbortSignal,
    hooks?: BuildHooks,
  ): Promise<BuildAttempt> {
    if (!this.settings.localBuilds) {
      const now = nowSeconds();
      return {
        kind: "error",
        message: `unable to start any build; either increase '--max-jobs' or enable remote builds (no machine can build '${input.drvPath}' for '${input.drv.platform}')`,
        startTime: now,
        stopTime: now,
      };
    }
    return this.runLocalBuild(input, signal, hooks);
  }

  /**
   * Whether this machine may build `drv` at all (Nix's ParsedDerivation::canBuildLocally):
   * builds are allowed (not `-j0`), the platform is ours and every required feature is here.
   */
  canBuildLocally(drv: AnyDerivation): boolean {
    const s = this.settings;
    // Builtin builders run inside the engine, on any machine (Nix's platform "builtin").
    const platformOk = isBuiltinBuilder(drv)
      ? drv.platform === "builtin" || drv.platform === s.system
      : drv.platform === s.system;
    return (
      s.localBuilds &&
      platformOk &&
      requiredFeatures(drv).every((f) => s.systemFeatures.includes(f))
    );
  }

  private async runLocalBuild(
    input: RunBuildInput,
    signal: AbortSignal,
    hooks?: BuildHooks,
  ): Promise<BuildAttempt> {
    const { drv, drvPath } = input;
    const startTime = nowSeconds();
    const stamp = () => ({ startTime, stopTime: nowSeconds() });
    const s = this.settings;
    // Builtin builders (builtin:fetchurl…) are not implemented: they fail this check too.
    if (!this.canBuildLocally(drv)) {
      return {
        kind: "error",
        message: `a '${drv.platform}' with features {${requiredFeatures(drv).join(", ")}} is required to build '${drvPath}', but I am a '${s.system}' with features {${s.systemFeatures.join(", ")}}`,
        ...stamp(),
      };
    }

    // Where each output is built: its real path, or a scratch path next to it when the real one
    // must stay as it is (check mode compares against it).
    const builtAt = new Map<string, string>();
    const envPath = new Map<string, string>();
    for (const o of input.outputs) {
      // A valid output is not built over (unless repairing it): check mode compares against it,
      // and a build for the other outputs keeps it, as Nix 2.8 does.
      if (o.valid && input.mode !== "repair") {
        const scratch = `${this.store.storeDir.path}/${nix32Encode(randomBytes(20))}-${o.path.slice(this.store.storeDir.path.length + 34)}`;
        envPath.set(o.name, scratch);
        builtAt.set(o.name, this.store.toRealPath(scratch));
      } else {
        builtAt.set(o.name, this.store.toRealPath(o.path));
        // Stale contents of an invalid output went when its lock was taken
        // (removeStaleOutputs); a valid one being repaired is built over here.
        const real = this.store.toRealPath(o.path);
        if (input.mode === "repair" && lstatSync(real, { throwIfNoEntry: false })) deleteTree(real);
      }
    }

    const buildDir = this.buildDirs.acquire();
    let keep = false;
    const log = logPaths(this.store.layout.logDir, drvPath);
    let logKept = true;
    try {
      let privateStore: string | undefined;
      if (s.sandbox && !isBuiltinBuilder(drv)) {
        if (!sandboxAvailable()) {
          return {
            kind: "error",
            message:
              "sandboxing was requested but bubblewrap ('bwrap') is missing or cannot create namespaces here; install bubblewrap or build without --sandbox",
            ...stamp(),
          };
        }
        privateStore = join(this.store.layout.realStoreDir, makeTempName());
        mkdirSync(privateStore);
        this.privateStores.add(privateStore);
      }
      let env: Record<string, string>;
      const files: { name: string; contents: string }[] = [];
      try {
        const parsed = new ParsedDerivation(drvPath, drv);
        // Nix reads these before building (canBuildLocally): a wrong type fails the build.
        parsed.requiredSystemFeatures();
        const built = builderEnv({
          drv,
          drvPath,
          storeDir: this.store.storeDir.path,
          buildDir: privateStore ? SANDBOX_BUILD_DIR : buildDir,
          cores: s.cores,
          callerEnv: process.env,
        });
        env = built.env;
        files.push(...built.files);
        if (parsed.hasStructuredAttrs) {
          // The output paths are in the files, where placeholders become where outputs are built.
          const structured = structuredAttrsFiles({
            parsed,
            store: this.referencesGraphStore(),
            inputPaths: new Set(input.inputPaths),
            outputs: input.outputs.map((o) => ({
              name: o.name,
              path: o.path,
              builtAt: envPath.get(o.name) ?? o.path,
            })),
            hostBuildDir: buildDir,
          });
          files.push(...structured.files);
          Object.assign(env, structured.env);
        } else {
          for (const [name, p] of envPath) env[name] = p;
          files.push(
            ...exportReferencesGraphFiles(
              parsed,
              new Set(input.inputPaths),
              this.referencesGraphStore(),
            ),
          );
        }
      } catch (e) {
        if (e instanceof BuildSetupError)
          return { kind: "inputRejected", message: e.message, ...stamp() };
        // As Nix 2.8, where these are errors of the whole command (exit status 1).
        if (e instanceof StructuredAttrsError)
          return { kind: "error", message: e.message, ...stamp() };
        throw e;
      }
      for (const f of files) writeFileSync(join(buildDir, f.name), f.contents);

      const command = privateStore
        ? sandboxCommand({
            builder: drv.builder,
            args: drv.args,
            storeDir: this.store.storeDir.path,
            privateStore,
            buildDir,
            inputs: new Map(input.inputPaths.map((p) => [p, this.store.toRealPath(p)])),
            network: isFixedOutput(drv),
            sandboxPaths: s.sandboxPaths,
          })
        : { cmd: drv.builder, args: drv.args, outputFd: 1 as const };
      // Lines only for a listener that wants them (-L, internal-json): else Node sees no output.
      const lines = hooks?.builderLog ? new LogLineSink((l) => hooks.builderLog?.(l)) : undefined;
      const exit = isBuiltinBuilder(drv)
        ? await runBuiltinBuilder(drv, builtAt.get("out") ?? "", log.raw, signal)
        : await runBuilder(
            {
              builder: command.cmd,
              args: command.args,
              env,
              cwd: buildDir,
              logFile: log.raw,
              maxSilentTime: s.maxSilentTime,
              buildTimeout: s.buildTimeout,
              maxLogSize: s.maxLogSize,
              outputFd: command.outputFd,
              signal,
              onStarted: (pid) =>
                hooks?.builderStarted?.({ where: "local", machine: "localhost", pid }),
              ...(lines ? { onOutput: lines.push } : {}),
            },
            this.spawner,
          );
      lines?.end();
      hooks?.builderExited({
        how: exit.kind === "exited" && exit.code === 0 ? "succeeded" : describeExit(exit),
        ...stamp(),
        logBytes:
          exit.kind === "exited"
            ? exit.logSize
            : (statSync(log.raw, { throwIfNoEntry: false })?.size ?? 0),
      });
      if (privateStore) {
        // Outputs were written into the sandbox's private store: move them into the real one.
        const inside = privateStore;
        for (const o of input.outputs) {
          const logical = envPath.get(o.name) ?? o.path;
          const from = join(inside, logical.slice(this.store.storeDir.path.length + 1));
          if (lstatSync(from, { throwIfNoEntry: false })) renameSync(from, builtAt.get(o.name)!);
        }
        this.privateStores.delete(inside);
        this.inBackground(
          rm(inside, { recursive: true, force: true }).catch(() => deleteTree(inside)),
        );
      }
      if (exit.kind === "exited" && exit.logSize === 0) logKept = false;
      const failed = exit.kind !== "exited" || exit.code !== 0;
      if (failed) {
        for (const [name, at] of builtAt) {
          const o = input.outputs.find((x) => x.name === name)!;
          if (!o.valid || at !== this.store.toRealPath(o.path)) deleteTree(at);
          if (s.cacheFailures && exit.kind !== "aborted") this.store.registerFailedPath(o.path);
        }
        keep = s.keepFailed;
        if (keep) {
          // Pooled directories have anonymous names; a kept one is named after its derivation.
          const named = `${buildDir}-${drv.name}`;
          renameSync(buildDir, named);
          hooks?.note?.(`note: keeping build directory '${named}'`);
        }
      }
      switch (exit.kind) {
        case "aborted":
          return { kind: "error", message: `build of '${drvPath}' was interrupted`, ...stamp() };
        case "timedOut":
          return {
            kind: "timedOut",
            silence: exit.silence,
            seconds: exit.seconds,
            startTime,
            stopTime: 0,
          };
        case "logLimitExceeded":
          return { kind: "logLimitExceeded", limit: exit.limit, startTime, stopTime: 0 };
        case "spawnFailed":
        case "signaled":
          return {
            kind: "builderFailed",
            how: describeExit(exit),
            logTail: logTail(log.raw, s.logLines),
            ...stamp(),
          };
        case "exited":
          if (exit.code !== 0) {
            return {
              kind: "builderFailed",
              how: describeExit(exit),
              logTail: logTail(log.raw, s.logLines),
              ...stamp(),
            };
          }
      }

      const r = await registerOutputs({
        store: this.store,
        drvPath,
        drv,
        outputs: input.outputs,
        builtAt,
        inputPaths: input.inputPaths,
        mode: input.mode,
      });
      if (r.kind !== "registered") {
        for (const [name, at] of builtAt) {
          const o = input.outputs.find((x) => x.name === name)!;
          if (!this.store.isValidPath(o.path) || at !== this.store.toRealPath(o.path))
            deleteTree(at);
        }
        return r.kind === "outputRejected"
          ? { kind: "outputRejected", message: r.message, hashMismatch: r.hashMismatch, ...stamp() }
          : { kind: "notDeterministic", message: r.message, ...stamp() };
      }
      return { kind: "success", builtOutputs: r.builtOutputs, ...stamp() };
    } finally {
      if (!keep) {
        const removing = this.buildDirs.release(buildDir);
        if (removing) this.inBackground(removing);
      }
      if (logKept) this.inBackground(compressLog(log.raw, log.compressed).catch(() => {}));
    }
  }

  /** Run `p` (a clean-up or a log compression) without making the build wait for it. */
  protected inBackground(p: Promise<unknown>): void {
    const q = p.then(() => {});
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }

  /** Wait for background clean-ups; call before exiting. */
  async drain(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    await this.buildDirs.close();
    for (const dir of this.privateStores) deleteTree(dir);
    this.privateStores.clear();
    if (this.ownsSpawner) this.spawner.close();
    this.adopter?.close();
  }

  private referencesGraphStore(): ReferencesGraphStore {
    const store = this.store;
    return {
      isStorePath: (p) => {
        try {
          store.storeDir.toStorePath(p);
          return true;
        } catch {
          return false;
        }
      },
      toStorePath: (p) => store.storeDir.print(store.storeDir.toStorePath(p).path),
      parseStorePath: (p) => store.storeDir.print(store.storeDir.parsePath(p)),
      closure: (paths) => store.computeFSClosure(paths),
      references: (p) => store.queryReferences(p),
      pathInfo: (p) => store.queryPathInfo(p),
      derivationOutputs: (p) =>
        [...store.queryDerivationOutputs(p).values()].filter((o) => store.isValidPath(o)),
    };
  }
}

/** Whether `path` exists (a dangling symlink does), looked up on libuv's pool. */
async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}
