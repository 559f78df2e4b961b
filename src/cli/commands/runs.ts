// `nixstate runs` (list, show, resume) and `nixstate replay`: questions about recorded runs,
// each answered from the run log alone (`--json` for tools, plain text for people).

import type { Command } from "commander";
import { NIXSTATE_VERSION } from "../../events/nixstate-version.ts";
import { describeStep, statePath } from "../../events/replay-goal.ts";
import { replayRun } from "../../events/replay-run.ts";
import { RunLog } from "../../events/run-log.ts";
import { type RunSummary, SUMMARY_EVENTS, summarizeRun } from "../../events/run-summary.ts";
import { firstLine } from "../../events/run-why.ts";
import { resolveStoreLayout } from "../../store/store-settings.ts";
import { CliUsageError } from "../cli-error.ts";
import { parseSpeed, streamRunToInspector } from "../replay-inspect.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions } from "../store-options.ts";
import { buildCommand } from "./build.ts";

interface JsonOption {
  json?: boolean;
}

/** Open the run log of the store these options name. */
export function openRunLog(o: StoreCliOptions): RunLog {
  const layout = resolveStoreLayout({
    stateDir: o.stateDir,
    storeDir: o.storeDir,
    storeRoot: o.storeRoot,
  });
  return RunLog.open(layout.stateDir);
}

/** A run named on the command line: its number, or `last`. */
export function runIdOf(log: RunLog, text: string | undefined): number {
  if (text === undefined || text === "last") {
    const latest = log.latest();
    if (!latest) throw new CliUsageError("no run has been recorded yet");
    return latest.id;
  }
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0)
    throw new CliUsageError(
      `a run is named by its number (see 'nixstate runs') or 'last', not '${text}'`,
    );
  return n;
}

export async function withRunLog<T>(o: StoreCliOptions, body: (log: RunLog) => Promise<T> | T) {
  const log = openRunLog(o);
  try {
    return await body(log);
  } finally {
    log.close();
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const when = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 19);

function listLine(s: RunSummary): string {
  const state = s.state === "ended" ? `exit ${s.exitCode}` : s.state;
  const targets = s.targets.length === 1 ? s.targets[0] : `${s.targets.length} targets`;
  const counts = `${s.built} built, ${s.substituted} substituted, ${s.alreadyValid} valid, ${s.failed} failed`;
  return `${String(s.id).padStart(4)}  ${when(s.started)}  ${seconds(s.duration).padStart(8)}  ${state.padEnd(11)}  ${counts}  ${targets}`;
}

function showText(s: RunSummary): string {
  const lines = [
    `run ${s.id}${s.resumes === undefined ? "" : ` (resumes run ${s.resumes})`}: ${s.state === "ended" ? `ended with exit code ${s.exitCode}` : s.state}`,
    `started ${when(s.started)}, took ${seconds(s.duration)}, ${s.events} events`,
    `targets: ${s.targets.join(" ")}`,
    `${s.built} built, ${s.substituted} substituted, ${s.alreadyValid} already valid, ${s.failed} failed${s.unfinished ? `, ${s.unfinished} unfinished` : ""}`,
  ];
  if (s.rootCauses.length > 0) {
    lines.push("root causes:");
    for (const f of s.rootCauses) lines.push(`  ${f.goal}: ${f.status}: ${firstLine(f.error)}`);
  }
  if (s.cascade.length > 0) {
    lines.push(
      `failed because of them: ${s.cascade.length} goal${s.cascade.length === 1 ? "" : "s"}`,
    );
    for (const f of s.cascade.slice(0, 20)) lines.push(`  ${f.goal}: ${f.status}`);
    if (s.cascade.length > 20) lines.push(`  … and ${s.cascade.length - 20} more`);
  }
  if (s.state === "interrupted") lines.push(`resume it with: nixstate runs resume ${s.id}`);
  return `${lines.join("\n")}\n`;
}

export function registerRunsCommands(program: Command): Command {
  const runs = addStoreOptions(
    program
      .command("runs")
      .description("list recorded runs (see also: runs show, diff, critical-path, resume)")
      .option("--json", "print JSON"),
  ).action(async (o: StoreCliOptions & JsonOption) => {
    await withRunLog(o, async (log) => {
      const summaries = log
        .runs()
        .map((r) => summarizeRun(r, log.events(r.id, { types: SUMMARY_EVENTS }), log.extent(r.id)));
      await writeStdout(
        o.json
          ? `${JSON.stringify(summaries.map(({ rootCauses, cascade, ...s }) => s))}\n`
          : summaries.map((s) => `${listLine(s)}\n`).join(""),
      );
    });
  });

  addStoreOptions(
    runs
      .command("show")
      .description("summarize a run: outcome counts, root causes of failures")
      .argument("[run]", "run number or 'last'", "last")
      .option("--json", "print JSON"),
  ).action(async (run: string, _o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<StoreCliOptions & JsonOption>();
    await withRunLog(o, async (log) => {
      const id = runIdOf(log, run);
      const s = summarizeRun(log.run(id), log.events(id));
      await writeStdout(o.json ? `${JSON.stringify(s)}\n` : showText(s));
    });
  });

  addStoreOptions(
    runs
      .command("resume")
      .description("build an interrupted run's targets again, with its options (a new run)")
      .argument("<run>", "run number or 'last'"),
  ).action(async (run: string, _o: unknown, cmd: Command) => {
    // The parent `runs` takes the store options too: read them wherever they were given.
    const o = cmd.optsWithGlobals<StoreCliOptions>();
    const { old, stateDir } = await withRunLog(o, (log) => ({
      old: log.run(runIdOf(log, run)),
      stateDir: log.stateDir,
    }));
    if (old.request.command !== "build") {
      throw new CliUsageError(
        `run ${old.id} was a build received over 'serve'; the client that sent it must send it again`,
      );
    }
    if (old.state === "running") {
      throw new CliUsageError(
        `run ${old.id} is still running (process ${old.pid}); resume it once it has ended or been killed`,
      );
    }
    // The store is the one the run used: its log is here, and its options may have named it
    // relative to another working directory (or by environment variables).
    const recorded = old.request.store;
    const store = {
      stateDir,
      ...(recorded ? { storeDir: recorded.storeDir } : {}),
      ...(recorded?.storeRoot ? { storeRoot: recorded.storeRoot } : {}),
    };
    process.exitCode = await buildCommand(
      old.request.targets,
      { ...old.request.options, ...store } as unknown as Parameters<typeof buildCommand>[1],
      { cwd: old.request.cwd, resumes: old.id },
    );
  });

  addStoreOptions(
    program
      .command("replay")
      .description(
        "re-drive every goal of a recorded run from its log (no builds, no store) and check each step",
      )
      .argument("[run]", "run number or 'last'", "last")
      .option(
        "--goal <key>",
        "only this goal (e.g. 'drv:/nix/store/…-x.drv#normal'); prints its timeline",
      )
      .option(
        "--until <seq>",
        "replay events up to this sequence number; prints every goal's state",
      )
      .option("--step", "print the goal's steps, numbered (with --goal)")
      .option(
        "--inspect [url]",
        "instead, send the run (up to --until) to an XState inspector as the live build did (default ws://127.0.0.1:8080); give it as --inspect=URL",
      )
      .option("--speed <x>", "with --inspect: times faster than recorded (0: as fast as possible)")
      .option("--json", "print JSON"),
  ).action(async (run: string, o: StoreCliOptions & ReplayCliOptions) => {
    process.exitCode = await withRunLog(o, (log) => replayCommand(log, runIdOf(log, run), o));
  });
  return runs;
}

interface ReplayCliOptions extends JsonOption {
  goal?: string;
  until?: string;
  step?: boolean;
  inspect?: string | boolean;
  speed?: string;
}

async function replayCommand(log: RunLog, id: number, o: ReplayCliOptions): Promise<number> {
  const until = o.until === undefined ? undefined : Number(o.until);
  if (until !== undefined && (!Number.isInteger(until) || until < 1))
    throw new CliUsageError(`--until wants an event number, not '${o.until}'`);
  if (o.inspect !== undefined) {
    const speed = parseSpeed(o.speed);
    const events = log.events(id, until === undefined ? {} : { untilSeq: until });
    const r = await streamRunToInspector(events, o.inspect, speed);
    await writeStdout(`run ${id}: ${r.delivered} of ${r.frames} frames sent to the inspector\n`);
    return r.delivered === r.frames ? 0 : 1;
  }
  const goal = o.goal === undefined ? undefined : resolveGoalKey(log, id, o.goal);
  const r = await replayRun(log, id, {
    ...(goal === undefined ? {} : { goal }),
    ...(until === undefined ? {} : { untilSeq: until }),
  });
  if (goal !== undefined && r.goals.length === 0)
    throw new CliUsageError(`run ${id} has no goal '${o.goal}'`);
  const run = log.run(id);
  const code = r.divergences.length > 0 ? 1 : 0;
  // Goal machines change between versions: an older run replays only with its own version.
  const [first] = log.events(id, { untilSeq: 1 });
  const recordedBy = first?.type === "run.started" ? first.version : undefined;
  if (o.json) {
    const timeline =
      goal === undefined
        ? undefined
        : log.events(id, { goal, ...(until ? { untilSeq: until } : {}) });
    await writeStdout(
      `${JSON.stringify({ ...r, state: run.state, recordedBy, ...(timeline ? { timeline } : {}) })}\n`,
    );
    return code;
  }
  const out: string[] = [];
  if (goal !== undefined) {
    const events = log.events(id, { goal, ...(until ? { untilSeq: until } : {}) });
    let step = 0;
    for (const e of events) {
      if (o.step && e.type !== "goal.transition") continue;
      const label = o.step ? `step ${++step}` : `#${e.seq}`;
      out.push(
        `${label.padStart(8)}  +${(e.mono / 1000).toFixed(3)}s  ${e.type === "goal.created" ? `created (${e.cause.kind}${"of" in e.cause ? ` of ${e.cause.of}` : "for" in e.cause ? ` for ${e.cause.for}` : ""})` : describeEvent(e)}`,
      );
    }
  } else if (until !== undefined) {
    for (const g of r.goals) out.push(`${g.goal}  ${g.done ? "done" : g.state}`);
  }
  for (const g of r.divergences) {
    const d = g.divergence!;
    out.push(
      `run ${id} does not replay: at event ${d.seq}, goal ${d.goal} (in state '${d.state}')`,
      `  the record says it ${d.expected}`,
      `  the replay        ${d.got}`,
    );
  }
  if (code !== 0 && recordedBy !== undefined && recordedBy !== NIXSTATE_VERSION)
    out.push(
      `run ${id} was recorded by nixstate ${recordedBy}, whose goal machines may differ from this version's (${NIXSTATE_VERSION}): replay it with nixstate ${recordedBy}`,
    );
  const interrupted =
    run.state === "interrupted" ? " (interrupted run: replayed up to the last event logged)" : "";
  out.push(
    code === 0
      ? `run ${id}: ${r.goals.length} goals, ${r.steps} steps replayed, all equal to the record${interrupted}`
      : `run ${id}: ${r.divergences.length} of ${r.goals.length} goals diverge from the record`,
  );
  await writeStdout(`${out.join("\n")}\n`);
  return code;
}

function describeEvent(e: ReturnType<RunLog["events"]>[number]): string {
  switch (e.type) {
    case "goal.transition":
      return `state ${statePath(e.state)}`;
    case "goal.done":
      return `done: ${e.status}${e.error ? `: ${firstLine(e.error)}` : ""}`;
    case "goal.wants":
      return `wants outputs ${e.outputs.join(",") || "(all)"}`;
    case "goal.waits":
      return `waits for ${e.on.length} goal${e.on.length === 1 ? "" : "s"}: ${e.on.slice(0, 3).join(" ")}${e.on.length > 3 ? " …" : ""}`;
    case "goal.woken":
      return `woken early: ${e.by} failed`;
    case "goal.reused":
      return `reused (${e.cause.kind})`;
    case "goal.stopped":
      return `stopped: ${e.by}`;
    case "slot.granted":
      return `got a build slot (${e.held}/${e.limit})`;
    case "slot.released":
      return `gave its slot back (${e.reason})${e.to ? ` to ${e.to}` : ""}`;
    case "lock.busy":
      return `lock held by another process; retry in ${e.retryMs} ms`;
    case "builder.started":
      return `builder started ${e.where === "local" ? `here (pid ${e.pid})` : `on ${e.machine}`}`;
    case "builder.exited":
      return `builder ${e.how} (${e.logBytes} bytes of log)`;
    default:
      return describeStep(e);
  }
}

/** A goal named by its key, or by a .drv path or store path (the first goal for it). */
function resolveGoalKey(log: RunLog, id: number, text: string): string {
  if (/^(drv|sub):/.test(text)) return text;
  const created = log
    .events(id)
    .filter((e) => e.type === "goal.created")
    .map((e) => (e as { goal: string }).goal);
  const match = created.find(
    (k) => k.startsWith(`drv:${text}#`) || k === `sub:${text}` || k.startsWith(`sub:${text}@`),
  );
  if (!match) throw new CliUsageError(`run ${id} has no goal for '${text}'`);
  return match;
}
