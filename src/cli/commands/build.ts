// `nixstate build TARGET...`: realise derivations as `nix-store --realise` does, with its options,
// messages and exit codes.

import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { loadFileTargets } from "../../api/load-file.ts";
import { type LocalBuildSettings, nixSystem } from "../../builder/build-settings.ts";
import { LocalBuildEffects } from "../../builder/local-build-effects.ts";
import { parseDerivation } from "../../derivation/aterm-parse.ts";
import { derivationNameFromFile } from "../../derivation/drv-file.ts";
import { INSPECT_DRAIN_MS, InspectSender, parseInspectUrl } from "../../events/inspect-sender.ts";
import { parseRetention } from "../../events/run-retention.ts";
import { RunSession } from "../../events/run-session.ts";
import type { BuildMode, BuildTarget } from "../../machines/build-attempt.ts";
import { Worker } from "../../machines/worker.ts";
import { isSuccess } from "../../protocol/build-result.ts";
import { parseMachines } from "../../remote/machines-file.ts";
import { RemoteBuildEffects } from "../../remote/remote-build-effects.ts";
import type { LocalStore } from "../../store/local-store.ts";
import { findNixDbFile, NixDbReader } from "../../store/nix-db-reader.ts";
import { NixStoreAdopter } from "../../store/nix-store-adopt.ts";
import { openSubstituter } from "../../substituters/open-substituter.ts";
import { plannedBuilds } from "../../targets/planned-builds.ts";
import { builderLogPrinter, buildPrinter } from "../build-printer.ts";
import { resolveTargets } from "../build-targets.ts";
import { CliUsageError } from "../cli-error.ts";
import {
  highlighted,
  internalJsonError,
  internalJsonInfo,
  internalJsonPrinter,
} from "../internal-json-printer.ts";
import { type ProgressDisplay, progressDisplay } from "../progress/progress-display.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions, withStore } from "../store-options.ts";

interface BuildOptions extends StoreCliOptions {
  maxJobs: string;
  cores: string;
  keepGoing?: boolean;
  check?: boolean;
  repair?: boolean;
  keepFailed?: boolean;
  maxSilentTime: string;
  timeout: string;
  maxLogSize: string;
  substitute: boolean;
  dryRun?: boolean;
  cacheFailures?: boolean;
  sandbox?: boolean;
  substituters: string;
  fallback?: boolean;
  builders: string;
  systemFeatures?: string;
  record: boolean;
  keepRuns?: string;
  nixDb?: string;
  /** `-f FILE`: build what a TypeScript file exports (see src/api/load-file.ts). */
  file?: string;
  /** `-A ATTR`: which of the file's exports (default: its default export). */
  attr?: string[];
  logFormat?: LogFormat;
  printBuildLogs?: boolean;
  /** `--inspect[=URL]`: send the run to an XState inspector (src/events/inspect-sender.ts). */
  inspect?: string | boolean;
  /** `--no-progress`: plain lines even on a terminal. */
  progress?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

/** Nix's `--log-format` values. */
const LOG_FORMATS = ["raw", "internal-json", "bar", "bar-with-logs"] as const;
type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * The listeners that tell the run on stderr, whether they need the builders' output lines, how
 * others write to stderr meanwhile, and how to take a live view off the screen.
 */
function logListeners(o: BuildOptions, store: LocalStore): ProgressDisplay {
  const format = o.logFormat;
  if (format !== undefined && !LOG_FORMATS.includes(format))
    throw new CliUsageError(`--log-format wants one of ${LOG_FORMATS.join(", ")}, not '${format}'`);
  const stderr = (text: string) => process.stderr.write(text);
  const none = () => {};
  if (format === "internal-json")
    return {
      listeners: [internalJsonPrinter(stderr)],
      builderLogs: true,
      write: stderr,
      settle: none,
    };
  const withLogs = !!o.printBuildLogs || format === "bar-with-logs";
  if (format !== "raw") {
    // Not asked for Nix's raw lines: the progress display (live on a terminal, else plain).
    return progressDisplay({
      stream: process.stderr,
      live: o.progress !== false && !o.quiet && process.stderr.isTTY === true,
      verbosity: o.quiet ? -1 : o.verbose ? 1 : 0,
      logsShown: withLogs,
      stateDir: store.layout.stateDir,
      logDir: store.layout.logDir,
    });
  }
  const listeners = [buildPrinter(stderr, { logsShown: withLogs })];
  if (withLogs) listeners.push(builderLogPrinter(stderr));
  return { listeners, builderLogs: withLogs, write: stderr, settle: none };
}

/** What `build` itself tells (the plan, the final failure), in the chosen log format. */
interface BuildMessages {
  /** Lines at info level (Nix's printInfo: one message a line under internal-json). */
  info(lines: string[]): void;
  /** An error; `highlight` wraps what Nix shows in colour under internal-json. */
  error(text: (highlight: (s: string) => string) => string): void;
}

function buildMessages(
  o: BuildOptions,
  stderr: (text: string) => void = (text) => process.stderr.write(text),
): BuildMessages {
  if (o.logFormat === "internal-json") {
    return {
      info: (lines) => stderr(lines.map(internalJsonInfo).join("")),
      error: (text) => stderr(internalJsonError(text(highlighted))),
    };
  }
  return {
    info: (lines) => stderr(lines.map((l) => `${l}\n`).join("")),
    error: (text) => stderr(`error: ${text((x) => x)}\n`),
  };
}

/** Where a build was asked for, so `runs resume` can ask again. */
export interface BuildInvocation {
  cwd: string;
  /** The run this build resumes. */
  resumes?: number;
}

function count(value: string, flag: string): number {
  if (value === "auto") return cpus().length;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CliUsageError(`${flag} wants a whole number (or 'auto'), not '${value}'`);
  return n;
}

export function registerBuildCommands(program: Command): void {
  addStoreOptions(
    program
      .command("build")
      .description("build derivations (as nix-store --realise) and print their output paths")
      .argument(
        "[targets...]",
        ".drv paths (optionally with !out,dev), .drv files from a Nix store, or JSON derivations",
      )
      .option("-j, --max-jobs <n>", "builds to run at once ('auto': one per core)", "1")
      .option(
        "--cores <n>",
        "NIX_BUILD_CORES for each builder (0: use all cores)",
        String(cpus().length),
      )
      .option("-k, --keep-going", "keep building other derivations after one fails")
      .option("--check", "rebuild valid outputs and compare (non-deterministic builds exit 104)")
      .option("--repair", "rebuild outputs whose contents are corrupt or missing")
      .option("-K, --keep-failed", "keep the build directory of failed builds")
      .option("--max-silent-time <seconds>", "kill builders silent this long (0: never)", "0")
      .option("--timeout <seconds>", "kill builders running this long (0: never)", "0")
      .option("--max-log-size <bytes>", "kill builders logging more than this (0: no limit)", "0")
      .option("--no-substitute", "do not use substituters")
      .option("--dry-run", "show what would be built, build nothing")
      .option(
        "--cache-failures",
        "remember failed outputs and refuse to rebuild them (see 'nixstate failed')",
      )
      .option(
        "--substituters <uris>",
        "space-separated substituters tried before building (file:///dir: a binary-cache folder)",
        "",
      )
      .option("--fallback", "build from source when a substituter fails")
      .option(
        "--builders <spec>",
        "remote build machines, as Nix's 'builders' (machines-file lines separated by ';', or @FILE)",
        "",
      )
      .option(
        "--system-features <features>",
        "space-separated features this machine offers builders (Nix's system-features)",
      )
      .option(
        "--sandbox",
        "build in a bubblewrap sandbox: no network (but for fixed outputs), only the inputs and system paths visible",
      )
      .option(
        "--nix-db <file>",
        "Nix's database, for .drv files from a Nix store (default: $NIX_STATE_DIR/db/db.sqlite or <store-dir>/../var/nix/db/db.sqlite, when there)",
      )
      .addOption(
        new Option(
          "--log-format <format>",
          "how the build is told on stderr: raw (Nix's plain lines, nothing else), internal-json (Nix's '@nix {...}' lines, for tools such as nix-output-monitor), bar (the progress display: live on a terminal, plain lines and a summary elsewhere; the default), bar-with-logs (bar with -L)",
        ).choices(LOG_FORMATS),
      )
      .option("--no-progress", "plain lines instead of the live progress view, even on a terminal")
      .option("-v, --verbose", "say more: copies' ends, every running build in the heartbeat")
      .option("-q, --quiet", "print only errors and the end summary")
      .option(
        "-L, --print-build-logs",
        "print each builder's output lines as '<name>> <line>' (internal-json always has them)",
      )
      .option("-f, --file <file>", "build what this TypeScript file exports (its default export)")
      .option(
        "-A, --attr <attr>",
        "with -f: build this export (a dotted path) instead; repeatable",
        (a: string, all: string[] = []) => [...all, a],
      )
      .option(
        "--inspect [url]",
        "send the run to an XState inspector (@statelyai/inspect's protocol) at this WebSocket URL (default ws://127.0.0.1:8080); give it as --inspect=URL",
      )
      .option("--no-record", "do not write this run to the run log (see 'nixstate runs')")
      .option(
        "--keep-runs <n>",
        "runs the log keeps: a count (100) or days (30d); older ones are dropped as this run starts",
      ),
  ).action(async (args: string[], o: BuildOptions) => {
    process.exitCode = await buildCommand(args, o, { cwd: process.cwd() });
  });
}

/** `nixstate build ARGS` with these options; the exit code. Also what `runs resume` runs. */
export async function buildCommand(
  args: string[],
  o: BuildOptions,
  invocation: BuildInvocation,
): Promise<number> {
  {
    if (o.check && o.repair)
      throw new CliUsageError("--check and --repair cannot be used together");
    const mode: BuildMode = o.check ? "check" : o.repair ? "repair" : "normal";
    if (o.inspect !== undefined) parseInspectUrl(o.inspect);
    const machines = parseMachines(o.builders, { source: "--builders" });
    const maxJobs = count(o.maxJobs, "--max-jobs");
    const code = await withStore(o, async (store) => {
      const settings: Partial<LocalBuildSettings> = {
        cores: count(o.cores, "--cores"),
        maxSilentTime: count(o.maxSilentTime, "--max-silent-time"),
        buildTimeout: count(o.timeout, "--timeout"),
        maxLogSize: count(o.maxLogSize, "--max-log-size"),
        keepFailed: !!o.keepFailed,
        cacheFailures: !!o.cacheFailures,
        sandbox: !!o.sandbox,
        localBuilds: maxJobs > 0,
        ...(o.systemFeatures === undefined
          ? {}
          : { systemFeatures: o.systemFeatures.split(/\s+/).filter(Boolean) }),
      };
      const substituters = o.substituters
        .split(/\s+/)
        .filter(Boolean)
        .map((u) => openSubstituter(u, store.storeDir));
      const effects =
        machines.length > 0
          ? new RemoteBuildEffects(store, { machines, maxJobs }, settings, substituters)
          : new LocalBuildEffects(store, settings, substituters);
      const nixDbFile = o.nixDb === undefined ? undefined : resolve(invocation.cwd, o.nixDb);
      // Sharing the files of a Nix store: what Nix built there counts as built (see the adopter).
      const sharedDb = NixStoreAdopter.sharesFiles(store)
        ? (nixDbFile ?? findNixDbFile(store.storeDir.path))
        : undefined;
      if (sharedDb !== undefined) {
        effects.shareStoreWith(new NixStoreAdopter(store, NixDbReader.open(sharedDb)));
      }
      if (args.length === 0 && o.file === undefined)
        throw new CliUsageError("nothing to build: give targets, or a TypeScript file with -f");
      const fileTargets =
        o.file === undefined
          ? []
          : await loadFileTargets(store, resolve(invocation.cwd, o.file), o.attr);
      const argTargets = await resolveTargets(
        store,
        args.map((a) => resolveArg(a, invocation.cwd)),
        {
          store,
          system: nixSystem(),
          readDerivation: (p) => effects.readDerivation(p),
        },
        nixDbFile,
      );
      const targets = [...argTargets, ...fileTargets];
      const plan = plannedBuilds(
        targets,
        (p) => effects.parseDerivation(p),
        (p) => store.isValidPath(p),
      );
      // Root everything this run reads or makes in one transaction, not one per goal.
      effects.protect([...plan, ...targets.flatMap((t) => ("drvPath" in t ? [t.drvPath] : []))]);
      if (plan.length > 0 && mode === "normal" && !o.quiet) {
        // Nix 2.8's words: "this derivation will be built:", "these 2 derivations will be built:".
        buildMessages(o).info([
          `${plan.length === 1 ? "this derivation" : `these ${plan.length} derivations`} will be built:`,
          ...plan.map((p) => `  ${p}`),
        ]);
      }
      if (o.dryRun) return 0;
      if (plan.length > 0 && maxJobs > 0) effects.startSpawner();
      return runBuild(store, effects, targets, mode, o, { ...invocation, args });
    });
    return code;
  }
}

/** The store a run used, as `runs resume` must find it again. */
function storeOf(store: LocalStore): { stateDir: string; storeDir: string; storeRoot?: string } {
  const { stateDir, storeDir, realStoreDir } = store.layout;
  const root =
    realStoreDir === storeDir.path ? undefined : realStoreDir.slice(0, -storeDir.path.length);
  return { stateDir, storeDir: storeDir.path, ...(root ? { storeRoot: root } : {}) };
}

/** Relative JSON targets are found from where the build was asked for. */
function resolveArg(arg: string, cwd: string): string {
  return arg.startsWith("/") || !arg.endsWith(".json") ? arg : resolve(cwd, arg);
}

async function runBuild(
  store: LocalStore,
  effects: LocalBuildEffects,
  targets: BuildTarget[],
  mode: BuildMode,
  o: BuildOptions,
  invocation: BuildInvocation & { args: string[] },
): Promise<number> {
  const logs = logListeners(o, store);
  const stderr = logs.write;
  let session: RunSession | undefined;
  const inspectUrl = o.inspect === undefined ? undefined : parseInspectUrl(o.inspect);
  const inspector =
    inspectUrl === undefined
      ? undefined
      : new InspectSender(inspectUrl, {
          // Through the display: a warning must not tear the live view.
          warn: (message) => stderr(`${message}\n`),
          later: () => session?.runId && `nixstate replay ${session.runId} --inspect=${inspectUrl}`,
        });
  const worker = new Worker(effects, {
    builderLogs: logs.builderLogs,
    maxJobs: count(o.maxJobs, "--max-jobs"),
    remoteSlots: effects instanceof RemoteBuildEffects ? effects.remoteSlots : 0,
    keepGoing: !!o.keepGoing,
    useSubstitutes: o.substitute,
    cacheFailures: !!o.cacheFailures,
    tryFallback: !!o.fallback,
  });
  session = RunSession.start(
    worker,
    {
      command: "build",
      targets: invocation.args,
      options: { ...o },
      cwd: invocation.cwd,
      store: storeOf(store),
    },
    {
      stateDir: store.layout.stateDir,
      record: o.record !== false,
      ...(o.keepRuns === undefined ? {} : { retention: parseRetention(o.keepRuns) }),
      ...(invocation.resumes === undefined ? {} : { resumes: invocation.resumes }),
      warn: (message) => stderr(`${message}\n`),
    },
    inspector ? [...logs.listeners, inspector.listener()] : logs.listeners,
  );
  const onSignal = (signal: NodeJS.Signals) => void worker.cancel(`interrupted by ${signal}`);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let code = 1;
  try {
    code = await finishBuild(
      store,
      worker,
      effects,
      targets,
      mode,
      buildMessages(o, stderr),
      logs.settle,
    );
    return code;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    session.end(code);
    await inspector?.finish(INSPECT_DRAIN_MS);
  }
}

async function finishBuild(
  store: LocalStore,
  worker: Worker,
  effects: LocalBuildEffects,
  targets: BuildTarget[],
  mode: BuildMode,
  messages: BuildMessages,
  settle: () => void,
): Promise<number> {
  const results = await worker.buildPaths(targets, mode);
  await effects.drain();
  // The live view leaves the screen before the output paths are printed.
  settle();

  const failed = targets.filter((_, i) => !isSuccess(results[i]!.status));
  if (failed.length > 0) {
    if (failed.length > 1) {
      const names = failed.map((t) => `'${"drvPath" in t ? t.drvPath : t.path}'`).join(", ");
      messages.error((highlight) => `build of ${highlight(names)} failed`);
    }
    return worker.exitStatus();
  }
  const lines: string[] = [];
  for (const t of targets) {
    if (!("drvPath" in t)) {
      lines.push(t.path);
      continue;
    }
    const drv = parseDerivation(readFileSync(store.toRealPath(t.drvPath)), {
      name: derivationNameFromFile(t.drvPath),
      storeDir: store.storeDir,
    });
    for (const [name, out] of drv.outputs) {
      if (out.type === "deferred" || (t.outputs.length > 0 && !t.outputs.includes(name))) continue;
      lines.push(out.path);
    }
  }
  await writeStdout(lines.map((l) => `${l}\n`).join(""));
  return 0;
}
