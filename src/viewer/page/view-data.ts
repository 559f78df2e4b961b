// The data a viewer page is made from (view-model.ts builds it from a run's events; the page reads
// it inlined, or pushed again and again while a run goes on). Compact on purpose: a 10,000-goal run
// logs ~360,000 events, so each goal keeps only what the page draws — its transitions, effects,
// waits, builder runs and end, as seq numbers into one shared time table — and the page rebuilds
// any goal's state at any seq from that (goal-at.ts).

/** The page's phase of a goal at a point of the run. */
export type Phase =
  /** Not asked for yet. */
  | "absent"
  /** Created, doing its own steps. */
  | "running"
  /** Its builder runs. */
  | "building"
  /** Waits for other goals (goal.waits) until the effect that waits answers. */
  | "waiting"
  /** Ended: its outcome says how. */
  | "ended";

/** One state of a goal machine's chart. */
export interface ChartState {
  /** Its path, as transitions name states: `inputsRealised.waiting`. */
  id: string;
  /** Its own name: `waiting`. */
  label: string;
  /** The compound state it is in, if any. */
  parent: string | null;
  kind: "atomic" | "compound" | "final";
}

/** Transitions between two states, with the events that take them (merged). */
export interface ChartEdge {
  from: string;
  to: string;
  label: string;
}

/** A goal machine's definition, drawn as a statechart. */
export interface Chart {
  states: ChartState[];
  edges: ChartEdge[];
  /** The state a new goal starts in. */
  initial: string;
}

/** One goal. Seqs are the run's event numbers; `strings` indices name states, effects, statuses. */
export interface GoalView {
  key: string;
  /** The store path's name (`hello-2.12`). */
  name: string;
  kind: "derivation" | "substitution";
  /** Seq of the first event naming it. */
  created: number;
  /** Transitions: `[seq, state string index]` pairs, flat. */
  tr: number[];
  /** Effects: `[started seq, ended seq (0: still open), effect string index, ok (1) / failed (0) / open (-1)]`, flat. */
  ef: number[];
  /** Waits: `[seq, until seq (0: still waiting), ...goal indices]` each. */
  wt: number[][];
  /** Builder runs: `[started seq, exited seq (0: still running)]` pairs, flat. */
  bd: number[];
  /** Its end: `[seq, outcome string index, status string index]`. */
  end?: number[];
  /** First line of its error, when it did not succeed. */
  error?: string;
  /** It failed by itself (the failures of others are blamed on it). */
  rootCause?: true;
  /** The goals its failure is blamed on (indices). */
  because?: number[];
  onCriticalPath?: true;
  /** Top-level targets (as given to the build) it is the goal of. */
  targets?: string[];
  /** The last lines of its build log, read from the store when the page was made. */
  log?: string[];
}

export interface ViewData {
  format: 1;
  run: {
    id: number;
    state: "running" | "ended" | "interrupted";
    /** Unix ms. */
    started: number;
    exitCode?: number;
    targets: string[];
  };
  /** The page follows a live run (a server pushes newer data). */
  live: boolean;
  /** The last event's seq. */
  lastSeq: number;
  /** Interned strings: states, effects, outcomes, statuses. */
  strings: string[];
  /**
   * When kept events happened: `[seq delta, mono delta in 0.1 ms]` pairs, flat, from (0, 0), so a
   * seq's time is that of the greatest kept seq at or before it.
   */
  times: number[];
  goals: GoalView[];
  /** `[from, to, flags]` triples, flat: from asked for / waited on to. Flags: 1 waited, 2 critical path. */
  edges: number[];
  criticalPathMs: number | null;
  charts: { derivation: Chart; substitution: Chart };
}

export const EDGE_WAITED = 1;
export const EDGE_CRITICAL = 2;
