// What `nixstate build` prints on stderr while it runs, as nix-store --realise does: a line per
// build started, a substitution's failure, a goal's error. A listener of the run's event stream.

import type { RunEvent } from "../events/run-event.ts";
import type { RunListener } from "../events/run-recorder.ts";
import { parseGoalKey } from "../machines/worker-events.ts";
import { isSuccess } from "../protocol/build-result.ts";

const CANCELLED_PREFIX = "build cancelled";

/** The top-level state of a state value (`"buildDone"` or `{ inputsRealised: "waiting" }`). */
export function topState(value: unknown): string {
  return typeof value === "string" ? value : Object.keys(value as object)[0]!;
}

export function buildPrinter(write: (line: string) => void): RunListener {
  const lastState = new Map<string, string>();
  return (e: RunEvent) => {
    switch (e.type) {
      case "goal.transition": {
        if (!e.goal.startsWith("drv:")) return;
        const state = topState(e.state);
        if (state === lastState.get(e.goal)) return;
        lastState.set(e.goal, state);
        if (state !== "buildDone") return;
        const verb = e.goal.includes("#check") ? "checking outputs of" : "building";
        write(`${verb} '${parseGoalKey(e.goal).path}'...\n`);
        return;
      }
      case "goal.note":
        write(`${e.message}\n`);
        return;
      case "goal.done": {
        lastState.delete(e.goal);
        if (e.kind === "substitution") {
          if (e.status !== "failed") return;
          const errors = (e.output as { errors?: string[] }).errors ?? [];
          write(`error: ${[e.error, ...errors].join("\n")}\n`);
        } else if (
          !isSuccess(e.status as Parameters<typeof isSuccess>[0]) &&
          !e.error.startsWith(CANCELLED_PREFIX)
        ) {
          write(`error: ${e.error}\n`);
        }
        return;
      }
      default:
        return;
    }
  };
}
