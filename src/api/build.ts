// `build(targets)`: write the .drv closure of derivations made with `derivation()` into the store
// and realise them as `nixstate build` does (LocalBuildEffects, a Worker, a recorded RunSession).
import { cpus } from "node:os";
import type { LocalBuildSettings } from "../builder/build-settings.ts";
import { LocalBuildEffects } from "../builder/local-build-effects.ts";
import { DerivationError } from "../derivation/errors.ts";
import { derivationReferences } from "../derivation/hash-modulo.ts";
import type { ReadonlyDeep, RunEvent } from "../events/run-event.ts";
import { parseRetention } from "../events/run-retention.ts";
import { RunSession } from "../events/run-session.ts";
import type { BuildMode, BuildTarget } from "../machines/build-attempt.ts";
import { Worker } from "../machines/worker.ts";
import { type BuildResult, isSuccess } from "../protocol/build-result.ts";
import { LocalStore } from "../store/local-store.ts";
import type { StoreSettingsInput } from "../store/store-settings.ts";
import {
  type ApiDerivation,
  type ApiOutput,
  type DrvNode,
  isApiDerivation,
  isApiOutput,
} from "./brand.ts";
import { nodeOf } from "./make-derivation.ts";

/**
 * What `build()` accepts: a derivation, one of its outputs (`drv.dev`: only that output), or
 * arrays and plain objects of those (nested as deep as you like, as an attribute set of packages).
 */
export type Buildable =
  | ApiDerivation
  | ApiOutput
  | readonly Buildable[]
  | { readonly [name: string]: Buildable };

/** Where the store is: the CLI's `--state-dir`, `--store-dir`, `--store-root`. */
export type StoreSettings = StoreSettingsInput;

/** How to build; the defaults are `nixstate build`'s. */
export interface BuildOptions extends StoreSettings {
  /** Builds at once (`-j`; default 1). */
  maxJobs?: number;
  /** NIX_BUILD_CORES for each builder (`--cores`; 0: all cores; default: this machine's count). */
  cores?: number;
  /** Go on building other derivations after one fails (`-k`). */
  keepGoing?: boolean;
  /** Build in a bubblewrap sandbox (`--sandbox`). */
  sandbox?: boolean;
  /** Keep the build directory of failed builds (`-K`). */
  keepFailed?: boolean;
  /** `check`: rebuild and compare; `repair`: rebuild corrupt or missing outputs. */
  mode?: BuildMode;
  /** Write the run to the run log (`runs.sqlite`; default true, as without `--no-record`). */
  record?: boolean;
  /** How many runs the log keeps (`--keep-runs`: `100` or `30d`). */
  keepRuns?: string;
  /**
   * Called with every event of the run as it happens (before `events` yields it). Events are
   * read-only: the run log writes them a little later.
   */
  onEvent?: (event: ReadonlyDeep<RunEvent>) => void;
}

/** One target's outcome. */
export interface TargetOutcome {
  /** The `.drv` built. */
  drvPath: string;
  /** The outputs asked for (empty: all). */
  wantedOutputs: string[];
  /** Output name → path, for the outputs asked for. */
  outputs: Record<string, string>;
  /** Nix's BuildResult for this target. */
  result: BuildResult;
}

/** What a build came to. */
export interface BuildOutcome {
  /** The run's number in the run log (`nixstate runs show <id>`); undefined when not recorded. */
  runId: number | undefined;
  /** Whether every target succeeded. */
  success: boolean;
  /** Nix's exit status for the build: 0, 1, or 100–104 as `nixstate build` exits. */
  exitCode: number;
  /** Per target, in the order given (arrays and objects flattened, depth first). */
  targets: TargetOutcome[];
}

/**
 * A build under way. Await it (it is a promise of the {@link BuildOutcome}), read `runId` at
 * once, and iterate `events` (each event of the run from its start, ending with `run.ended`).
 */
export interface BuildRun extends PromiseLike<BuildOutcome> {
  /** The run's number in the run log; undefined when not recorded or before the store opened. */
  readonly runId: number | undefined;
  /** Every event of the run, from the first (read-only); the iteration ends when the run does. */
  readonly events: AsyncIterable<ReadonlyDeep<RunEvent>>;
  /** The outcome (the same promise awaiting the run gives). */
  readonly result: Promise<BuildOutcome>;
}

/** Flatten targets: derivations and outputs, depth first, in order. */
export function flattenBuildables(value: unknown, where = "target"): (ApiDerivation | ApiOutput)[] {
  if (isApiDerivation(value) || isApiOutput(value)) return [value];
  if (Array.isArray(value)) return value.flatMap((v, i) => flattenBuildables(v, `${where}[${i}]`));
  if (typeof value === "object" && value !== null)
    return Object.entries(value).flatMap(([k, v]) => flattenBuildables(v, `${where}.${k}`));
  throw new DerivationError(
    `${where} is not a derivation (made with derivation() from nixstate), nor an array or object of derivations`,
  );
}

/** Write each .drv of the closure of `nodes` into the store, inputs first. */
export function writeDerivations(store: LocalStore, nodes: Iterable<DrvNode>): void {
  const done = new Set<string>();
  const visit = (n: DrvNode): void => {
    if (done.has(n.drvPath)) return;
    done.add(n.drvPath);
    if (n.storeDir !== store.storeDir.path)
      throw new DerivationError(
        `'${n.drvPath}' was made for store directory '${n.storeDir}', but the store's is '${store.storeDir.path}'`,
      );
    for (const i of n.inputs) visit(i);
    const info = store.addTextToStore(`${n.drv.name}.drv`, n.bytes, derivationReferences(n.drv));
    if (info.path !== n.drvPath)
      throw new Error(`'${n.drv.name}.drv' was written as '${info.path}', not '${n.drvPath}'`);
  };
  for (const n of nodes) visit(n);
}

/** An async iterable over events pushed as they come, from the first, for any number of readers. */
class EventBuffer implements AsyncIterable<RunEvent> {
  private readonly events: RunEvent[] = [];
  private ended = false;
  private wake: (() => void)[] = [];

  push = (e: RunEvent): void => {
    this.events.push(e);
    this.notify();
  };

  end(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = [];
    for (const f of w) f();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RunEvent> {
    let i = 0;
    for (;;) {
      while (i < this.events.length) yield this.events[i++]!;
      if (this.ended) return;
      await new Promise<void>((r) => this.wake.push(r));
    }
  }
}

/**
 * Build derivations made with `derivation()`: their .drv files (and their inputs') are written
 * into the store, then built as `nixstate build` builds, recorded as a run in the run log.
 * Settings not given come from NIXSTATE_STATE_DIR / NIXSTATE_STORE_DIR and the defaults.
 *
 * @example
 * const run = build([hello, hello.dev]);
 * for await (const e of run.events) if (e.type === "run.ended") console.log(e.exitCode);
 * const { success, targets } = await run;
 */
export function build(targets: Buildable, options: BuildOptions = {}): BuildRun {
  const events = new EventBuffer();
  let runId: number | undefined;
  const result = (async (): Promise<BuildOutcome> => {
    const wanted = flattenBuildables(targets).map(nodeOf);
    const store = LocalStore.open({
      stateDir: options.stateDir,
      storeDir: options.storeDir,
      storeRoot: options.storeRoot,
    });
    let session: RunSession | undefined;
    let exitCode = 1;
    try {
      writeDerivations(
        store,
        wanted.map((w) => w.node),
      );
      const cores = options.cores ?? cpus().length;
      const settings: Partial<LocalBuildSettings> = {
        cores,
        keepFailed: !!options.keepFailed,
        sandbox: !!options.sandbox,
        localBuilds: (options.maxJobs ?? 1) > 0,
      };
      const effects = new LocalBuildEffects(store, settings);
      const buildTargets: BuildTarget[] = wanted.map((w) => ({
        drvPath: w.node.drvPath,
        outputs: w.outputs,
      }));
      effects.protect(buildTargets.map((t) => ("drvPath" in t ? t.drvPath : t.path)));
      const worker = new Worker(effects, {
        maxJobs: options.maxJobs ?? 1,
        keepGoing: !!options.keepGoing,
        useSubstitutes: false,
      });
      const listeners = [...(options.onEvent ? [options.onEvent] : []), events.push];
      session = RunSession.start(
        worker,
        {
          command: "build",
          targets: wanted.map((w) =>
            w.outputs.length > 0 ? `${w.node.drvPath}!${w.outputs.join(",")}` : w.node.drvPath,
          ),
          // In `nixstate build`'s form, so `nixstate runs resume` can build the same again.
          options: {
            maxJobs: String(options.maxJobs ?? 1),
            cores: String(cores),
            keepGoing: !!options.keepGoing,
            check: options.mode === "check",
            repair: options.mode === "repair",
            keepFailed: !!options.keepFailed,
            sandbox: !!options.sandbox,
            maxSilentTime: "0",
            timeout: "0",
            maxLogSize: "0",
            substitute: false,
            substituters: "",
            builders: "",
            record: options.record !== false,
            ...(options.keepRuns === undefined ? {} : { keepRuns: options.keepRuns }),
          },
          cwd: process.cwd(),
          store: { stateDir: store.layout.stateDir, storeDir: store.storeDir.path },
        },
        {
          stateDir: store.layout.stateDir,
          record: options.record !== false,
          ...(options.keepRuns === undefined
            ? {}
            : { retention: parseRetention(options.keepRuns) }),
        },
        listeners,
      );
      runId = session.runId;
      const results = await worker.buildPaths(buildTargets, options.mode ?? "normal");
      await effects.drain();
      const success = results.every((r) => isSuccess(r.status));
      exitCode = success ? 0 : worker.exitStatus();
      return {
        runId,
        success,
        exitCode,
        targets: wanted.map((w, i) => ({
          drvPath: w.node.drvPath,
          wantedOutputs: w.outputs,
          outputs: Object.fromEntries(
            [...w.node.drv.outputs]
              .filter(([n]) => w.outputs.length === 0 || w.outputs.includes(n))
              .map(([n, o]) => [n, o.type === "deferred" ? "" : o.path]),
          ),
          result: results[i]!,
        })),
      };
    } finally {
      session?.end(exitCode);
      store.close();
      events.end();
    }
  })();
  return {
    get runId() {
      return runId;
    },
    events,
    result,
    // biome-ignore lint/suspicious/noThenProperty: a BuildRun is meant to be awaited
    then: (onFulfilled, onRejected) => result.then(onFulfilled, onRejected),
  };
}
