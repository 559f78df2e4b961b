// `--log-format internal-json`: the run's event stream told as Nix tells its own on stderr, one
// `@nix {json}` line per logger call (Nix 2.8's JSONLogger, src/libutil/logging.cc), so tools made
// for Nix (nix-output-monitor, Hydra's log readers) can follow a nixstate build. A listener of the
// run's events; it never changes the build.
//
// What Nix 2.8's worker says, and what here says it (measured with `nix-build --log-format
// internal-json -v` on a private store; see test/interop/internal-json.test.ts):
// - Realise (102), Builds (104) and CopyPaths (103) start with the worker (level 0, no text) and
//   stop with it in reverse order. Whenever a count changes, four results follow: Progress (105)
//   [done, expected, running, failed] of builds on Builds and of substitutions on CopyPaths, then
//   SetExpected (106) [101, download bytes] and [100, NAR bytes] on Realise. Every derivation goal
//   counts as an expected build from its creation until it ends; one that built counts as done,
//   one that failed (but for a failed dependency) as failed.
// - Build (105): "building '<drv>'" (`checking outputs of`, `repairing outputs of`; ` on
//   '<machine>'` for a remote build), level 3, fields [drvPath, machine or "", 1, 1], from its
//   builder's start to the goal's end; each line of the builder's output is a BuildLogLine (101)
//   result on it, and the builder's own `@nix` messages are read as Nix reads them (SetPhase
//   (104), messages, file transfers).
// - BuildWaiting (111): "waiting for lock on '<outputs>'" (level 1) while another process holds
//   the output locks.
// - Substitutions: QueryPathInfo (109) while a substituter is asked, then Substitute (108)
//   [path, substituter] holding CopyPath (100) "copying path '<path>' from '<substituter>'"
//   [path, substituter, store] while the NAR is imported.
// - A failure is a message at level 0 with its text in `raw_msg` and `msg` (`error:` in red).
// `parent` is written as Nix ≥ 2.18 writes it (0 at the top; a CopyPath's is its Substitute, a
// builder's file transfer's its Build). Nix prints no timestamps, and neither does this.
import type { RunEvent } from "../events/run-event.ts";
import type { RunListener } from "../events/run-recorder.ts";
import { type GoalKey, parseGoalKey } from "../machines/worker-events.ts";
import { type BuildStatusName, isSuccess } from "../protocol/build-result.ts";
import { withoutLogTail } from "./build-printer.ts";
import { badMessageText, parseBuilderMessage } from "./builder-json-message.ts";

/** Nix's ActivityType (logging.hh). */
export const ActivityType = {
  Unknown: 0,
  CopyPath: 100,
  FileTransfer: 101,
  Realise: 102,
  CopyPaths: 103,
  Builds: 104,
  Build: 105,
  OptimiseStore: 106,
  VerifyPaths: 107,
  Substitute: 108,
  QueryPathInfo: 109,
  PostBuildHook: 110,
  BuildWaiting: 111,
} as const;

/** Nix's ResultType (logging.hh). */
export const ResultType = {
  FileLinked: 100,
  BuildLogLine: 101,
  UntrustedPath: 102,
  CorruptedPath: 103,
  SetPhase: 104,
  Progress: 105,
  SetExpected: 106,
  PostBuildLogLine: 107,
} as const;

/** Nix's Verbosity levels that appear here. */
const Level = { error: 0, warn: 1, info: 3, talkative: 4 } as const;

const ANSI_RED_BOLD = "\x1b[31;1m";
const ANSI_WARNING = "\x1b[35;1m";
const ANSI_NORMAL = "\x1b[0m";
const CANCELLED_PREFIX = "build cancelled";

type Field = string | number;

export interface InternalJsonOptions {
  /** The first activity id; Nix's is its pid shifted left by 32 bits (the default here too). */
  firstId?: number;
  /** The store paths are copied into, as CopyPath's third field names it (Nix: `local`). */
  storeUri?: string;
}

/** What one goal has open, and what it counts for. */
interface GoalState {
  /** A derivation goal counts as an expected build from its creation to its end. */
  kind: "derivation" | "substitution";
  /** Its builder runs, or its substitution (counted in running builds or substitutions). */
  running: boolean;
  build?: number;
  waiting?: number;
  query?: number;
  substitute?: number;
  copy?: number;
  /** The builder's own file transfer activities: its ids → ours. */
  builderActivities?: Map<number, number>;
  /** Substitution goals: the NAR size counted as expected, once a substituter has the path. */
  expectedNar?: number;
  importTried?: boolean;
  substituters?: string[];
  substituter?: number;
  /** Output paths, for the lock message. */
  outputs?: string[];
}

/** A JSON line as Nix writes it: `@nix ` and the object, keys in the order given (Nix's sorted). */
function line(o: Record<string, unknown>): string {
  return `@nix ${JSON.stringify(o)}\n`;
}

/** Nix's `@nix` line for a message at info level (what Nix prints with printInfo). */
export function internalJsonInfo(text: string): string {
  return line({ action: "msg", level: Level.info, msg: text });
}

/** Nix's `@nix` line for an error; `raw` may carry Nix's colour codes around names. */
export function internalJsonError(raw: string): string {
  return line({
    action: "msg",
    column: null,
    file: null,
    level: Level.error,
    line: null,
    msg: `${ANSI_RED_BOLD}error:${ANSI_NORMAL} ${raw}`,
    raw_msg: raw,
  });
}

/** Paths as Nix highlights them in a message (magenta, bold). */
export function highlighted(text: string): string {
  return `${ANSI_WARNING}${text}${ANSI_NORMAL}`;
}

/** Turns run events into Nix's `@nix` lines. */
export class InternalJsonEncoder {
  private nextId: number;
  private readonly storeUri: string;
  private realise: number | undefined;
  private builds = 0;
  private copyPaths = 0;
  private readonly goals = new Map<GoalKey, GoalState>();
  private out: string[] = [];
  // Nix's Worker counters.
  private doneBuilds = 0;
  private expectedBuilds = 0;
  private runningBuilds = 0;
  private failedBuilds = 0;
  private doneSubstitutions = 0;
  private expectedSubstitutions = 0;
  private runningSubstitutions = 0;
  private failedSubstitutions = 0;
  private expectedNarSize = 0;
  private doneNarSize = 0;
  private lastProgress = "0,0,0,0,0,0,0,0,0";
  private ended = false;

  constructor(options: InternalJsonOptions = {}) {
    // Nix: pid << 32. Kept below 2^53 so that every id is an exact JSON integer.
    this.nextId = options.firstId ?? (process.pid % 2 ** 21) * 2 ** 32;
    this.storeUri = options.storeUri ?? "local";
  }

  /** The lines (each ending in a newline) that this event makes. */
  encode(e: RunEvent): string[] {
    this.out = [];
    if (this.ended) return this.out;
    if (this.realise === undefined) this.startWorker();
    this.handle(e);
    if (e.type === "run.ended") this.endWorker();
    else this.progress();
    return this.out;
  }

  private handle(e: RunEvent): void {
    switch (e.type) {
      case "goal.created":
        // A key is created once; should it come again, the old goal is over.
        this.goalEnded(e.goal, undefined);
        if (e.kind === "derivation") {
          this.goals.set(e.goal, { kind: "derivation", running: false });
          this.expectedBuilds++;
        } else {
          const input = e.input as { substituters?: unknown } | undefined;
          const subs = Array.isArray(input?.substituters) ? (input.substituters as string[]) : [];
          this.goals.set(e.goal, { kind: "substitution", running: false, substituters: subs });
        }
        return;
      case "effect.started":
        this.effectStarted(e.goal, e.effect, e.input);
        return;
      case "effect.done":
        this.effectEnded(e.goal, e.effect, e.output);
        return;
      case "effect.failed":
        this.effectEnded(e.goal, e.effect, undefined);
        return;
      case "lock.busy": {
        const g = this.goals.get(e.goal);
        if (g?.kind !== "derivation" || g.waiting !== undefined) return;
        const paths = g.outputs ?? [parseGoalKey(e.goal).path];
        const shown = paths.map((p) => `'${p}'`).join(", ");
        g.waiting = this.start(
          ActivityType.BuildWaiting,
          Level.warn,
          `waiting for lock on ${ANSI_WARNING}${shown}${ANSI_NORMAL}`,
        );
        return;
      }
      case "builder.started":
        this.builderStarted(e.goal, e.where === "remote" ? e.machine : "");
        return;
      case "builder.log":
        this.builderLog(e.goal, e.lines);
        return;
      case "builder.exited": {
        // Still running to Nix's counts until the goal ends (its done or failed count goes up
        // in the same update); the builder's own activities end with it.
        const g = this.building(e.goal);
        if (g) this.stopBuilderActivities(g);
        return;
      }
      case "goal.note":
        this.out.push(line({ action: "msg", level: Level.error, msg: e.message }));
        return;
      case "goal.stopped":
        this.goalEnded(e.goal, undefined);
        return;
      case "goal.done": {
        this.goalEnded(e.goal, e.status);
        if (e.kind === "substitution") {
          if (e.status !== "failed") return;
          const errors = (e.output as { errors?: string[] } | undefined)?.errors ?? [];
          this.error([e.error, ...errors].join("\n"));
        } else if (
          !isSuccess(e.status as BuildStatusName) &&
          !e.error.startsWith(CANCELLED_PREFIX)
        ) {
          this.error(withoutLogTail(e.error));
        }
        return;
      }
      default:
        return;
    }
  }

  private effectStarted(goal: GoalKey, effect: string, input: unknown): void {
    const g = this.goals.get(goal);
    if (g?.kind !== "substitution") return;
    const path = parseGoalKey(goal).path;
    const index = (input as { substituter?: unknown } | undefined)?.substituter;
    if (typeof index === "number") g.substituter = index;
    const uri = g.substituters?.[g.substituter ?? 0] ?? "";
    if (effect === "queryPathInfo" && g.query === undefined) {
      g.query = this.start(
        ActivityType.QueryPathInfo,
        Level.talkative,
        `querying info about '${path}' on '${uri}'`,
        [path, uri],
      );
    } else if (effect === "importSubstitute" && g.substitute === undefined) {
      g.importTried = true;
      g.running = true;
      this.runningSubstitutions++;
      g.substitute = this.start(ActivityType.Substitute, Level.error, "", [path, uri]);
      g.copy = this.start(
        ActivityType.CopyPath,
        Level.info,
        `copying path '${path}' from '${uri}'`,
        [path, uri, this.storeUri],
        g.substitute,
      );
    }
  }

  private effectEnded(goal: GoalKey, effect: string, output: unknown): void {
    const g = this.goals.get(goal);
    if (!g) return;
    switch (effect) {
      case "queryOutputs":
        if (Array.isArray(output)) {
          g.outputs = (output as { path?: unknown }[])
            .map((o) => o.path)
            .filter((p): p is string => typeof p === "string")
            .sort();
        }
        return;
      case "lockOutputs":
        g.waiting = this.stop(g.waiting);
        return;
      case "queryPathInfo": {
        if (g.kind !== "substitution") return;
        g.query = this.stop(g.query);
        const narSize = (output as { narSize?: unknown } | undefined)?.narSize;
        if (typeof narSize !== "number") return;
        // A substituter has it: an expected substitution (replacing one counted before).
        this.uncountSubstitution(g);
        g.expectedNar = narSize;
        this.expectedSubstitutions++;
        this.expectedNarSize += narSize;
        return;
      }
      case "importSubstitute":
        if (g.kind === "substitution") this.endSubstitute(g);
        return;
      default:
        return;
    }
  }

  private builderStarted(goal: GoalKey, machine: string): void {
    const g = this.goals.get(goal);
    if (g?.kind !== "derivation" || g.build !== undefined) return;
    g.waiting = this.stop(g.waiting);
    const { path, mode } = parseGoalKey(goal);
    const verb =
      mode === "check"
        ? "checking outputs of"
        : mode === "repair"
          ? "repairing outputs of"
          : "building";
    const where = machine ? ` on '${machine}'` : "";
    g.build = this.start(ActivityType.Build, Level.info, `${verb} '${path}'${where}`, [
      path,
      machine,
      1,
      1,
    ]);
    g.running = true;
    this.runningBuilds++;
  }

  /** The goal's state once its Build activity is open (started here if its builder had no pid). */
  private building(goal: GoalKey): GoalState | undefined {
    const g = this.goals.get(goal);
    if (g?.kind !== "derivation") return undefined;
    if (g.build === undefined) this.builderStarted(goal, "");
    return g;
  }

  private builderLog(goal: GoalKey, lines: string[]): void {
    const g = this.building(goal);
    if (!g || g.build === undefined) return;
    const build = g.build;
    for (const text of lines) {
      const m = parseBuilderMessage(text);
      if (m === undefined || m.kind === "invalid") {
        if (m)
          this.out.push(line({ action: "msg", level: Level.error, msg: badMessageText(m.error) }));
        this.result(build, ResultType.BuildLogLine, [text]);
        continue;
      }
      switch (m.kind) {
        case "setPhase":
          this.result(build, ResultType.SetPhase, [m.phase]);
          break;
        case "msg":
          this.out.push(line({ action: "msg", level: m.level, msg: m.msg }));
          break;
        case "start": {
          g.builderActivities ??= new Map();
          this.stop(g.builderActivities.get(m.id));
          g.builderActivities.set(m.id, this.start(m.type, m.level, m.text, m.fields, build));
          break;
        }
        case "stop": {
          const id = g.builderActivities?.get(m.id);
          if (id === undefined) break;
          g.builderActivities?.delete(m.id);
          this.stop(id);
          break;
        }
        case "result": {
          const id = g.builderActivities?.get(m.id);
          if (id !== undefined) this.result(id, m.type, m.fields);
          break;
        }
        default:
          break;
      }
    }
  }

  private stopBuilderActivities(g: GoalState): void {
    for (const id of g.builderActivities?.values() ?? []) this.stop(id);
    g.builderActivities = undefined;
  }

  private endSubstitute(g: GoalState): void {
    g.copy = this.stop(g.copy);
    g.substitute = this.stop(g.substitute);
    if (g.running) {
      g.running = false;
      this.runningSubstitutions--;
    }
  }

  private uncountSubstitution(g: GoalState): void {
    if (g.expectedNar === undefined) return;
    this.expectedSubstitutions--;
    this.expectedNarSize -= g.expectedNar;
    g.expectedNar = undefined;
  }

  /** The goal ended (`status`) or was stopped (undefined): close what it has open, count it. */
  private goalEnded(goal: GoalKey, status: string | undefined): void {
    const g = this.goals.get(goal);
    if (!g) return;
    this.goals.delete(goal);
    g.waiting = this.stop(g.waiting);
    g.query = this.stop(g.query);
    this.stopBuilderActivities(g);
    g.build = this.stop(g.build);
    if (g.kind === "derivation") {
      if (g.running) this.runningBuilds--;
      this.expectedBuilds--;
      if (status === undefined) return;
      if (isSuccess(status as BuildStatusName)) {
        if (status === "Built") this.doneBuilds++;
      } else if (status !== "DependencyFailed") {
        this.failedBuilds++;
      }
      return;
    }
    this.endSubstitute(g);
    const narSize = g.expectedNar ?? 0;
    this.uncountSubstitution(g);
    if (status === "substituted") {
      this.doneSubstitutions++;
      this.doneNarSize += narSize;
    } else if (status === "failed" && g.importTried) {
      this.failedSubstitutions++;
    }
  }

  private error(text: string): void {
    this.out.push(internalJsonError(text));
  }

  private startWorker(): void {
    this.realise = this.start(ActivityType.Realise, Level.error, "");
    this.builds = this.start(ActivityType.Builds, Level.error, "");
    this.copyPaths = this.start(ActivityType.CopyPaths, Level.error, "");
  }

  private endWorker(): void {
    for (const goal of [...this.goals.keys()]) this.goalEnded(goal, undefined);
    this.progress();
    this.stop(this.copyPaths);
    this.stop(this.builds);
    this.stop(this.realise);
    this.ended = true;
  }

  /** Nix's Worker::updateProgress, when a count has changed. */
  private progress(): void {
    const builds = [
      this.doneBuilds,
      this.expectedBuilds + this.doneBuilds,
      this.runningBuilds,
      this.failedBuilds,
    ];
    const subs = [
      this.doneSubstitutions,
      this.expectedSubstitutions + this.doneSubstitutions,
      this.runningSubstitutions,
      this.failedSubstitutions,
    ];
    // nixstate reads uncompressed NARs only: what is downloaded is the NAR.
    const bytes = this.expectedNarSize + this.doneNarSize;
    const key = [...builds, ...subs, bytes].join(",");
    if (key === this.lastProgress) return;
    this.lastProgress = key;
    this.result(this.builds, ResultType.Progress, builds);
    this.result(this.copyPaths, ResultType.Progress, subs);
    this.result(this.realise!, ResultType.SetExpected, [ActivityType.FileTransfer, bytes]);
    this.result(this.realise!, ResultType.SetExpected, [ActivityType.CopyPath, bytes]);
  }

  private start(type: number, level: number, text: string, fields: Field[] = [], parent = 0) {
    const id = this.nextId++;
    this.out.push(
      line({
        action: "start",
        ...(fields.length > 0 ? { fields } : {}),
        id,
        level,
        parent,
        text,
        type,
      }),
    );
    return id;
  }

  /** Stop activity `id` if there is one; undefined, for the field that held it. */
  private stop(id: number | undefined): undefined {
    if (id !== undefined) this.out.push(line({ action: "stop", id }));
    return undefined;
  }

  private result(id: number, type: number, fields: Field[]): void {
    this.out.push(line({ action: "result", fields, id, type }));
  }
}

/** The listener: each event's lines written as they come. */
export function internalJsonPrinter(
  write: (text: string) => void,
  options: InternalJsonOptions = {},
): RunListener {
  const encoder = new InternalJsonEncoder(options);
  return (e: RunEvent) => {
    const lines = encoder.encode(e);
    if (lines.length > 0) write(lines.join(""));
  };
}
