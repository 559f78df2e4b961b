// The goal machines' definitions as charts the page draws (page/view-data.ts's Chart): every
// state with its parent, every transition as an arrow labelled with the events that take it.
// Read from the machines themselves, so the chart is always the machine that ran.
import type { AnyStateMachine } from "xstate";
import { derivationGoalMachine } from "../machines/derivation-goal.ts";
import { substitutionGoalMachine } from "../machines/substitution-goal.ts";
import type { Chart, ChartEdge, ChartState } from "./page/view-data.ts";

/** The parts of XState's StateNode this reads. */
interface Node {
  path: string[];
  key: string;
  type: string;
  states: Record<string, Node>;
  transitions: Map<string, { target?: Node[] }[]>;
  always?: { target?: Node[] }[];
  initial?: { target: Node[] };
}

/** An event's name in a few words: `xstate.done.actor.readDrv` → `readDrv done`. */
export function eventLabel(event: string): string {
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
  if (m) return `${m[2]} ${m[1] === "done" ? "done" : "failed"}`;
  return event;
}

export function machineChart(machine: AnyStateMachine): Chart {
  const states: ChartState[] = [];
  const edges = new Map<string, ChartEdge>();
  const id = (n: Node) => n.path.join(".");
  const add = (from: Node, target: Node, label: string) => {
    // An arrow into a compound state goes to the state it starts in: the layout (dagre) draws
    // compound states as boxes around their children, which arrows cannot end at.
    let to = target;
    while (to.type === "compound" && to.initial) to = to.initial.target[0]!;
    const k = `${id(from)}\u0000${id(to)}`;
    const e = edges.get(k);
    if (!e) edges.set(k, { from: id(from), to: id(to), label });
    else if (label && !e.label.split(", ").includes(label))
      e.label = e.label ? `${e.label}, ${label}` : label;
  };
  const walk = (n: Node, parent: Node | undefined) => {
    if (parent) {
      const kind = n.type === "final" ? "final" : n.type === "compound" ? "compound" : "atomic";
      states.push({
        id: id(n),
        label: n.key,
        parent: parent.path.length > 0 ? id(parent) : null,
        kind,
      });
      for (const [event, ts] of n.transitions)
        for (const t of ts) for (const to of t.target ?? []) add(n, to, eventLabel(event));
      for (const t of n.always ?? []) for (const to of t.target ?? []) add(n, to, "");
    }
    for (const c of Object.values(n.states)) walk(c, n);
  };
  const root = machine.root as unknown as Node;
  walk(root, undefined);
  // Transitions on the machine itself (addWantedOutputs) change context, not state: not drawn.
  let initial = root.initial?.target[0];
  while (initial?.type === "compound" && initial.initial) initial = initial.initial.target[0];
  return { states, edges: [...edges.values()], initial: initial ? id(initial) : "" };
}

let cached: { derivation: Chart; substitution: Chart } | undefined;

export function machineCharts(): { derivation: Chart; substitution: Chart } {
  cached ??= {
    derivation: machineChart(derivationGoalMachine),
    substitution: machineChart(substitutionGoalMachine),
  };
  return cached;
}
