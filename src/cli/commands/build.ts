// `nixstate build TARGET...`: realise derivations as `nix-store --realise` does, with its options,
// messages and exit codes.

import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import type { Command } from "commander";
import {
  LocalBuildEffects,
  type LocalBuildSettings,
  nixSystem,
} from "../../builder/local-build-effects.ts";
import { parseDerivation } from "../../derivation/aterm-parse.ts";
import { derivationNameFromFile } from "../../derivation/drv-file.ts";
import type { BuildMode, BuildTarget } from "../../machines/build-attempt.ts";
import { Worker } from "../../machines/worker.ts";
import { isSuccess } from "../../protocol/build-result.ts";
import { parseMachines } from "../../remote/machines-file.ts";
import { RemoteBuildEffects } from "../../remote/remote-build-effects.ts";
import type { LocalStore } from "../../store/local-store.ts";
import { openSubstituter } from "../../substituters/open-substituter.ts";
import { plannedBuilds } from "../../targets/planned-builds.ts";
import { resolveTargets } from "../build-targets.ts";
import { CliUsageError } from "../cli-error.ts";
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
        "<targets...>",
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
      ),
  ).action(async (args: string[], o: BuildOptions) => {
    if (o.check && o.repair)
      throw new CliUsageError("--check and --repair cannot be used together");
    const mode: BuildMode = o.check ? "check" : o.repair ? "repair" : "normal";
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
      effects.onNote = (msg) => process.stderr.write(`${msg}\n`);
      const targets = await resolveTargets(store, args, {
        store,
        system: nixSystem(),
        readDerivation: (p) => effects.readDerivation(p),
      });
      const plan = plannedBuilds(
        targets,
        (p) => effects.parseDerivation(p),
        (p) => store.isValidPath(p),
      );
      // Root everything this run reads or makes in one transaction, not one per goal.
      effects.protect([...plan, ...targets.flatMap((t) => ("drvPath" in t ? [t.drvPath] : []))]);
      if (plan.length > 0 && mode === "normal") {
        process.stderr.write(
          `${o.dryRun ? "these" : "these"} ${plan.length} derivation${plan.length === 1 ? "" : "s"} will be built:\n${plan.map((p) => `  ${p}\n`).join("")}`,
        );
      }
      if (o.dryRun) return 0;
      return runBuild(store, effects, targets, mode, o);
    });
    process.exitCode = code;
  });
}

async function runBuild(
  store: LocalStore,
  effects: LocalBuildEffects,
  targets: BuildTarget[],
  mode: BuildMode,
  o: BuildOptions,
): Promise<number> {
  const worker = new Worker(effects, {
    maxJobs: count(o.maxJobs, "--max-jobs"),
    remoteSlots: effects instanceof RemoteBuildEffects ? effects.remoteSlots : 0,
    keepGoing: !!o.keepGoing,
    useSubstitutes: o.substitute,
    cacheFailures: !!o.cacheFailures,
    tryFallback: !!o.fallback,
  });
  const drvOf = new Map<number, string>();
  worker.subscribe((e) => {
    if (e.type === "goal.created") drvOf.set(e.goalId, e.key);
    else if (e.type === "goal.state" && e.state === "buildDone") {
      process.stderr.write(
        `${mode === "check" ? "checking outputs of" : "building"} '${drvOf.get(e.goalId)}'...\n`,
      );
    } else if (e.type === "substitution.done" && e.outcome.status === "failed") {
      process.stderr.write(`error: ${[e.outcome.message, ...e.outcome.errors].join("\n")}\n`);
    } else if (
      e.type === "goal.done" &&
      !isSuccess(e.outcome.result.status) &&
      !e.outcome.result.errorMsg.startsWith("build cancelled")
    ) {
      process.stderr.write(`error: ${e.outcome.result.errorMsg}\n`);
    }
  });
  const onSignal = () => void worker.cancel();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const results = await worker.buildPaths(targets, mode);
  await effects.drain();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);

  const failed = targets.filter((_, i) => !isSuccess(results[i]!.status));
  if (failed.length > 0) {
    if (failed.length > 1) {
      const names = failed.map((t) => `'${"drvPath" in t ? t.drvPath : t.path}'`).join(", ");
      process.stderr.write(`error: build of ${names} failed\n`);
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
