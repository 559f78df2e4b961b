// `runs diff A B`: what changed between two recorded runs, and why derivations were rebuilt.
// Goals are matched by derivation name (a changed derivation has another .drv path, so paths
// cannot match them). For each derivation rebuilt in B with another .drv than in A, the kept .drv
// texts say why: its own differences (drv-diff.ts), or a changed input derivation, followed down.
// Only derivations with a difference of their own are root causes; the rest are consequences.

import type { Derivation } from "../derivation/derivation.ts";
import { parseGoalKey } from "../machines/worker-events.ts";
import {
  changedInputDrvs,
  type DrvChange,
  diffDerivations,
  drvPathName,
  pairUp,
  storePathName,
} from "./drv-diff.ts";
import { DrvResolver, isDrvRef, type KeptDrv } from "./event-values.ts";
import type { RunEvent } from "./run-event.ts";
import { type RunLog, RunLogError, type RunState } from "./run-log.ts";

/** The effects whose answer is a goal's derivation (older runs read it with the second alone). */
const DRV_READERS = new Set(["readValidDerivation", "readDerivation"]);

export class RunDiffError extends Error {
  override name = "RunDiffError";
}

export class UnknownRunError extends RunDiffError {
  override name = "UnknownRunError";
  constructor(readonly run: number) {
    super(`there is no run ${run} in the run log; 'nixstate runs' lists the recorded runs`);
  }
}

/** A .drv whose text no recorded goal read: its differences cannot be known. */
export class MissingDrvTextError extends RunDiffError {
  override name = "MissingDrvTextError";
  constructor(
    readonly drvPath: string,
    readonly runs: [number, number],
  ) {
    super(
      `the run log has no text of '${drvPath}': no goal of run ${runs[0]} or ${runs[1]} (nor of any other recorded run) read it, as happens when its dependents were already valid; diff against a run that built it`,
    );
  }
}

/** One goal of a run, its restarts (`@2`…) folded in. */
export interface GoalRecord {
  /** The goal's key without `@n`. */
  key: string;
  kind: "derivation" | "substitution";
  /** The .drv path, or the substituted store path. */
  path: string;
  /** The derivation name, or the store path's name. */
  name: string;
  mode: string;
  /** Its last `goal.done` status; absent when the run ended before it did. */
  status?: string;
  /** A builder ran for it (built, or failed building). */
  built: boolean;
  /** Milliseconds its builders ran, summed over restarts. */
  buildMs?: number;
  outputs: string[];
}

export interface RunSide {
  id: number;
  state: RunState;
  exitCode: number | undefined;
  started: number;
  targets: string[];
}

export interface GoalRef {
  name: string;
  path: string;
  status?: string;
}

export interface RootCause {
  name: string;
  /** The .drv paths in run A and run B. */
  old: string;
  new: string;
  /** Its own differences; empty when `missing` says why they are unknown. */
  changes: DrvChange[];
  missing?: string;
  /** Its status in run B, when B had a goal for it. */
  status?: string;
  /** The derivations rebuilt in B because of it (through any chain of inputs). */
  consequences: GoalRef[];
}

export interface StatusChange {
  name: string;
  old: GoalRef;
  new: GoalRef;
  /** The .drv (or store path) differs between the runs. */
  pathChanged: boolean;
}

export interface DurationChange {
  name: string;
  oldMs: number;
  newMs: number;
}

export interface RunDiff {
  a: RunSide;
  b: RunSide;
  rootCauses: RootCause[];
  added: GoalRef[];
  removed: GoalRef[];
  statusChanges: StatusChange[];
  /** The builder times of every derivation built in both runs (the printer picks the notable). */
  durationChanges: DurationChange[];
}

export function diffRuns(log: RunLog, a: number, b: number): RunDiff {
  const [sideA, sideB] = [runSide(log, a), runSide(log, b)];
  const [eventsA, eventsB] = [log.events(a), log.events(b)];
  const texts = new DrvTexts(log, [a, b], [eventsA, eventsB]);
  const [goalsA, goalsB] = [collectGoals(eventsA), collectGoals(eventsB)];
  const matched = matchGoals(goalsA, goalsB);
  const drvGoalsB = goalsB.filter((g) => g.kind === "derivation");
  const explainer = new Explainer(texts, new Map(drvGoalsB.map((g) => [g.path, g])));
  const statusChanges: StatusChange[] = [];
  const durationChanges: DurationChange[] = [];
  for (const [o, n] of matched.pairs) {
    const pathChanged = o.path !== n.path;
    if (o.status !== n.status)
      statusChanges.push({ name: n.name, old: ref(o), new: ref(n), pathChanged });
    if (o.buildMs !== undefined && n.buildMs !== undefined)
      durationChanges.push({ name: n.name, oldMs: o.buildMs, newMs: n.buildMs });
    if (pathChanged && n.kind === "derivation" && n.built) explainer.rebuilt(o, n);
  }
  return {
    a: sideA,
    b: sideB,
    rootCauses: explainer.rootCauses(),
    added: matched.onlyNew.map(ref),
    removed: matched.onlyOld.map(ref),
    statusChanges,
    durationChanges,
  };
}

function runSide(log: RunLog, id: number): RunSide {
  try {
    const r = log.run(id);
    return {
      id,
      state: r.state,
      exitCode: r.exitCode,
      started: r.started,
      targets: r.request.targets,
    };
  } catch (e) {
    if (e instanceof RunLogError) throw new UnknownRunError(id);
    throw e;
  }
}

const ref = (g: GoalRecord): GoalRef => ({
  name: g.name,
  path: g.path,
  ...(g.status === undefined ? {} : { status: g.status }),
});

/** Goal key → its parts: `drv:<path>#<mode>[@n]` or `sub:<path>[@n]`. */
function parseKey(goal: string) {
  const key = goal.replace(/@\d+$/, "");
  const { path, mode } = parseGoalKey(key);
  return mode === undefined
    ? { key, kind: "substitution" as const, path, name: storePathName(path), mode: "" }
    : { key, kind: "derivation" as const, path, name: drvPathName(path), mode };
}

/** Every goal of a run in creation order, restarts folded into the first. */
export function collectGoals(events: RunEvent[]): GoalRecord[] {
  const goals = new Map<string, GoalRecord>();
  const started = new Map<string, number>();
  for (const e of events) {
    if (!("goal" in e)) continue;
    const k = parseKey(e.goal);
    let g = goals.get(k.key);
    if (!g) {
      if (e.type !== "goal.created") continue;
      g = { ...k, built: false, outputs: [] };
      goals.set(k.key, g);
    }
    if (e.type === "goal.done") {
      g.status = e.status;
      g.outputs = Object.keys(e.outputs).sort();
    } else if (e.type === "builder.started") {
      g.built = true;
      started.set(e.goal, e.mono);
    } else if (e.type === "builder.exited") {
      const t = started.get(e.goal);
      if (t !== undefined) g.buildMs = (g.buildMs ?? 0) + (e.mono - t);
    }
  }
  return [...goals.values()];
}

/** Goals of two runs paired: same path, else same name and outputs, else same name in order. */
function matchGoals(a: GoalRecord[], b: GoalRecord[]) {
  const named = (g: GoalRecord) => `${g.kind}\0${g.mode}\0${g.name}`;
  return pairUp(a, b, [(g) => g.key, (g) => `${named(g)}\0${g.outputs.join(",")}`, named]);
}

/** The .drv texts a run log kept, by .drv path: read by a goal of run A or B, else of any run. */
class DrvTexts {
  private readonly hashes = new Map<string, string>();
  /** Hash → a run that kept its text, and the texts of the runs read so far. */
  private readonly keptBy = new Map<string, number>();
  private readonly texts = new Map<number, Map<string, KeptDrv>>();
  private readonly resolver: DrvResolver;
  private readonly cache = new Map<string, Derivation | MissingDrvTextError>();
  private otherRuns: number[] | undefined;

  /** `scanned`: runs A and B, whose events are given. */
  constructor(
    private readonly log: RunLog,
    private readonly scanned: [number, number],
    events: RunEvent[][],
  ) {
    this.resolver = new DrvResolver((h) => this.kept(h));
    events.forEach((list, i) => {
      for (const e of list) this.note(e, scanned[i]!);
    });
  }

  private note(e: RunEvent, run: number): boolean {
    if (e.type !== "effect.done" || !DRV_READERS.has(e.effect) || !isDrvRef(e.output)) return false;
    const path = parseKey(e.goal).path;
    if (!this.hashes.has(path)) this.hashes.set(path, e.output.$drv);
    if (!this.keptBy.has(e.output.$drv)) this.keptBy.set(e.output.$drv, run);
    return true;
  }

  private kept(hash: string): KeptDrv | undefined {
    const run = this.keptBy.get(hash);
    if (run === undefined) return undefined;
    let texts = this.texts.get(run);
    if (!texts) {
      texts = this.log.drvTexts(run);
      this.texts.set(run, texts);
    }
    return texts.get(hash);
  }

  get(path: string): Derivation | MissingDrvTextError {
    let d = this.cache.get(path);
    if (d === undefined) {
      const hash = this.hashes.get(path) ?? this.fromOtherRuns(path);
      d = hash === undefined ? undefined : this.resolve(hash);
      d ??= new MissingDrvTextError(path, this.scanned);
      this.cache.set(path, d);
    }
    return d;
  }

  private resolve(hash: string): Derivation | undefined {
    try {
      return this.resolver.resolve({ $drv: hash });
    } catch {
      return undefined; // the text was pruned with its runs
    }
  }

  /** Read by a goal of another run (newest first): an AlreadyValid run A reads only its targets. */
  private fromOtherRuns(path: string): string | undefined {
    this.otherRuns ??= this.log
      .runs()
      .map((r) => r.id)
      .filter((id) => !this.scanned.includes(id))
      .reverse();
    for (const id of this.otherRuns) {
      for (const e of this.log.events(id, { goal: `drv:${path}#normal` }))
        if (this.note(e, id)) return this.hashes.get(path);
    }
    return undefined;
  }
}

/** Follows changed derivations down their changed inputs to the ones that changed themselves. */
class Explainer {
  /** Old and new .drv path → the root causes (same keys) it comes from. */
  private readonly memo = new Map<string, Set<string>>();
  private readonly roots = new Map<string, Omit<RootCause, "consequences">>();
  /** Root cause key → the rebuilt derivations of run B it explains, by .drv path. */
  private readonly consequences = new Map<string, Map<string, GoalRef>>();

  constructor(
    private readonly texts: DrvTexts,
    private readonly goalsB: Map<string, GoalRecord>,
  ) {}

  /** Derivation goal `n` of run B was built and has another .drv than `o` of run A. */
  rebuilt(o: GoalRecord, n: GoalRecord): void {
    this.explain(n.name, o.path, n.path);
  }

  rootCauses(): RootCause[] {
    const byName = (x: { name: string }, y: { name: string }) =>
      x.name.localeCompare(y.name, "en", { numeric: true });
    const roots = [...this.roots].map(([key, r]) => ({
      ...r,
      consequences: [...(this.consequences.get(key)?.values() ?? [])].sort(byName),
    }));
    return roots.sort((x, y) => y.consequences.length - x.consequences.length || byName(x, y));
  }

  /** The root causes of a changed derivation; one rebuilt in B is listed as their consequence. */
  private explain(name: string, old: string, neu: string): Set<string> {
    const key = pairKey(old, neu);
    let causes = this.memo.get(key);
    if (causes) return causes;
    causes = this.causes(key, name, old, neu);
    this.memo.set(key, causes);
    const goal = this.goalsB.get(neu);
    if (goal?.built) {
      for (const r of causes) {
        if (r === key) continue;
        const list = this.consequences.get(r) ?? new Map<string, GoalRef>();
        list.set(goal.path, ref(goal));
        this.consequences.set(r, list);
      }
    }
    return causes;
  }

  private causes(key: string, name: string, old: string, neu: string): Set<string> {
    const causes = new Set<string>();
    const [a, b] = [this.texts.get(old), this.texts.get(neu)];
    if (a instanceof MissingDrvTextError || b instanceof MissingDrvTextError) {
      this.addRoot(key, name, old, neu, [], (a instanceof Error ? a : (b as Error)).message);
      causes.add(key);
      return causes;
    }
    // Each changed input: its own causes, and its old paths mapped to the new for the comparison.
    const exact = new Map<string, string>();
    const byName = new Map<string, string>();
    for (const [oi, ni] of changedInputDrvs(a, b)) {
      for (const c of this.explain(ni.name, oi.path, ni.path)) causes.add(c);
      const [ao, bo] = [this.texts.get(oi.path), this.texts.get(ni.path)];
      if (bo instanceof MissingDrvTextError) continue;
      for (const [out, o] of bo.outputs) {
        if (!("path" in o)) continue;
        const was = ao instanceof MissingDrvTextError ? undefined : ao.outputs.get(out);
        if (was && "path" in was) exact.set(was.path, o.path);
        else byName.set(storePathName(o.path), o.path);
      }
    }
    const changes = diffDerivations(a, b, { exact, byName });
    // Different .drv paths with nothing to show would hide a cause: name the derivation itself.
    if (changes.length > 0 || causes.size === 0) {
      const why = changes.length > 0 ? undefined : "the .drv texts differ in nothing compared here";
      this.addRoot(key, name, old, neu, changes, why);
      causes.add(key);
    }
    return causes;
  }

  private addRoot(
    key: string,
    name: string,
    old: string,
    neu: string,
    changes: DrvChange[],
    missing?: string,
  ) {
    const status = this.goalsB.get(neu)?.status;
    this.roots.set(key, {
      name,
      old,
      new: neu,
      changes,
      ...(missing === undefined ? {} : { missing }),
      ...(status === undefined ? {} : { status }),
    });
  }
}

const pairKey = (old: string, neu: string) => `${old}\0${neu}`;
