// `nixstate runs diff A B`: what changed between two recorded runs and why derivations were
// rebuilt (src/events/run-diff.ts). People get the root causes first, in words; tools get --json.
import type { Command } from "commander";
import { describeChange } from "../../events/drv-diff.ts";
import { diffRuns, type GoalRef, type RunDiff, type RunSide } from "../../events/run-diff.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions } from "../store-options.ts";
import { runIdOf, withRunLog } from "./runs.ts";

/** Adds `diff` to the `runs` command (as registerRunsCommands returns it). */
export function registerRunsDiffCommand(runs: Command): Command {
  return addStoreOptions(
    runs
      .command("diff")
      .description(
        "what changed between two runs, and why derivations were rebuilt (which input of which derivation)",
      )
      .argument("<a>", "the earlier run: its number or 'last'")
      .argument("<b>", "the later run: its number or 'last'")
      .option("--json", "print JSON"),
  ).action(async (a: string, b: string, _o: unknown, cmd: Command) => {
    // `runs` has the store options and --json too: take them from wherever they were given.
    const o = cmd.optsWithGlobals<StoreCliOptions & { json?: boolean }>();
    await withRunLog(o, async (log) => {
      const d = diffRuns(log, runIdOf(log, a), runIdOf(log, b));
      await writeStdout(o.json ? `${JSON.stringify(d)}\n` : diffText(d));
    });
  });
}

/** Lists of names are cut after this many. */
const SHOWN = 10;
/** Build times closer than this (ms, or ratio) are noise, not a change worth a line. */
const NOTABLE_MS = 1000;
const NOTABLE_RATIO = 2;

export function diffText(d: RunDiff): string {
  const out = [`run ${d.a.id} → run ${d.b.id}`, `  ${sideLine(d.a)}`, `  ${sideLine(d.b)}`];
  const same = d.a.targets.join("\0") === d.b.targets.join("\0");
  if (same) out.push(`  targets: ${targetsText(d.a.targets)}`);
  else out.push(`  targets: ${targetsText(d.a.targets)} → ${targetsText(d.b.targets)}`);

  // Goals the root causes already account for are not repeated among the other changes.
  const explained = new Set<string>();
  for (const r of d.rootCauses) {
    explained.add(r.new);
    for (const c of r.consequences) explained.add(c.path);
    out.push("", `root cause: ${r.name} (${r.new}${r.status ? `, ${r.status}` : ""})`);
    for (const c of r.changes) out.push(`  ${describeChange(c)}`);
    if (r.missing) out.push(`  unknown change: ${r.missing}`);
    const n = r.consequences.length;
    out.push(
      `  ${n} derivation${n === 1 ? "" : "s"} rebuilt because of it${n ? `: ${names(r.consequences)}` : ""}`,
    );
  }

  const other: string[] = [];
  const groups = new Map<string, GoalRef[]>();
  for (const s of d.statusChanges) {
    if (explained.has(s.new.path)) continue;
    const label = `${s.old.status ?? "unfinished"} → ${s.new.status ?? "unfinished"}${s.pathChanged ? "" : " (same .drv)"}`;
    groups.set(label, [...(groups.get(label) ?? []), s.new]);
  }
  for (const [label, gs] of groups) other.push(`${gs.length} ${label}: ${names(gs)}`);
  if (d.added.length) other.push(`${d.added.length} only in run ${d.b.id}: ${names(d.added)}`);
  if (d.removed.length)
    other.push(`${d.removed.length} only in run ${d.a.id}: ${names(d.removed)}`);
  const notable = d.durationChanges
    .filter(({ oldMs, newMs }) => {
      const delta = Math.abs(newMs - oldMs);
      const ratio = Math.max(oldMs, newMs) / Math.max(1, Math.min(oldMs, newMs));
      return delta >= NOTABLE_MS || (ratio >= NOTABLE_RATIO && delta >= NOTABLE_MS / 5);
    })
    .sort((x, y) => Math.abs(y.newMs - y.oldMs) - Math.abs(x.newMs - x.oldMs));
  for (const t of notable.slice(0, SHOWN))
    other.push(`${t.name} built in ${secs(t.newMs)}, was ${secs(t.oldMs)}`);
  if (other.length) out.push("", "other changes:", ...other.map((l) => `  ${l}`));
  if (d.rootCauses.length === 0 && other.length === 0)
    out.push("", "no differences: the same goals, with the same outcomes");
  return `${out.join("\n")}\n`;
}

function sideLine(s: RunSide): string {
  const when = new Date(s.started).toISOString().replace("T", " ").slice(0, 19);
  const state = s.state === "ended" ? `exit ${s.exitCode}` : s.state;
  return `run ${s.id}: ${when}, ${state}`;
}

function targetsText(t: string[]): string {
  return t.length <= 3 ? t.join(" ") : `${t.length} targets (${t.slice(0, 2).join(" ")} …)`;
}

function names(gs: GoalRef[]): string {
  const shown = gs.slice(0, SHOWN).map((g) => g.name);
  return gs.length > SHOWN
    ? `${shown.join(", ")}, … (${gs.length - SHOWN} more)`
    : shown.join(", ");
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
