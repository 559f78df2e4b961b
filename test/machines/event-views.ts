// Views of a worker's event stream that the machine tests assert on.
import { expect } from "vitest";
import type { AnyStateMachine, AnyStateNode } from "xstate";
import { parseGoalKey, type WorkerEvent } from "../../src/machines/worker-events.ts";

/** Keys of the goals created for `path` of this kind, in order. */
export function goalKeys(
  events: WorkerEvent[],
  path: string,
  kind: "derivation" | "substitution",
): string[] {
  return events
    .filter(
      (e) => e.type === "goal.created" && e.kind === kind && parseGoalKey(e.goal).path === path,
    )
    .map((e) => (e as { goal: string }).goal);
}

/** Top-level states the goals entered, in order (a state repeated by one goal counts once). */
export function topStates(events: WorkerEvent[], keys: string[]): string[] {
  const last = new Map<string, string>();
  const out: string[] = [];
  for (const e of events) {
    if (e.type !== "goal.transition" || !keys.includes(e.goal)) continue;
    const s = typeof e.state === "string" ? e.state : Object.keys(e.state as object)[0]!;
    if (last.get(e.goal) === s) continue;
    last.set(e.goal, s);
    out.push(s);
  }
  return out;
}

/** Every invoke of a machine: its id → the effect (actor) it runs; ids must be unique. */
export function invokesOf(machine: AnyStateMachine): Record<string, string> {
  const invokes: Record<string, string> = {};
  const walk = (node: AnyStateNode) => {
    for (const invoke of node.invoke) {
      expect(invokes[invoke.id], `invoke id ${invoke.id} used twice`).toBeUndefined();
      invokes[invoke.id] = invoke.src as string;
    }
    for (const child of Object.values(node.states)) walk(child);
  };
  walk(machine.root);
  return invokes;
}
