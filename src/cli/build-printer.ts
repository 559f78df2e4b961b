// What `nixstate build` prints on stderr while it runs, as nix-store --realise does: a line per
// build started, a substitution's failure, a goal's error; with `-L`, each builder's output lines
// too (`name> line`, as Nix's `bar-with-logs`). Listeners of the run's event stream.

import type { RunEvent } from "../events/run-event.ts";
import type { RunListener } from "../events/run-recorder.ts";
import { parseGoalKey } from "../machines/worker-events.ts";
import { isSuccess } from "../protocol/build-result.ts";
import { badMessageText, parseBuilderMessage } from "./builder-json-message.ts";

const CANCELLED_PREFIX = "build cancelled";

/** The top-level state of a state value (`"buildDone"` or `{ inputsRealised: "waiting" }`). */
export function topState(value: unknown): string {
  return typeof value === "string" ? value : Object.keys(value as object)[0]!;
}

/**
 * A builder failure's message without the last lines of its log, as Nix words it when those
 * lines were shown already (`-L`, internal-json).
 */
export function withoutLogTail(error: string): string {
  return error.replace(/;\nlast \d+ log lines:\n(?:> .*\n)*For full logs, run '[^\n]*'\.$/, "");
}

export interface BuildPrinterOptions {
  /** The builders' output is shown (`-L`): failures leave out the tail of the log. */
  logsShown?: boolean;
  /** Print a line as each build starts (default); the live view and `-q` leave them out. */
  starts?: boolean;
}

export function buildPrinter(
  write: (line: string) => void,
  options: BuildPrinterOptions = {},
): RunListener {
  const message = options.logsShown ? withoutLogTail : (error: string) => error;
  const lastState = new Map<string, string>();
  return (e: RunEvent) => {
    switch (e.type) {
      case "goal.transition": {
        if (!e.goal.startsWith("drv:")) return;
        const state = topState(e.state);
        if (state === lastState.get(e.goal)) return;
        lastState.set(e.goal, state);
        if (state !== "buildDone" || options.starts === false) return;
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
          write(`error: ${message(e.error)}\n`);
        }
        return;
      }
      default:
        return;
    }
  };
}

/** A derivation's name from its path (`/nix/store/<hash>-hello-1.0.drv` → `hello-1.0`). */
function drvName(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf("/") + 1).replace(/\.drv$/, "");
  const dash = base.indexOf("-");
  return dash >= 0 ? base.slice(dash + 1) : base;
}

/**
 * `-L`: each line a builder writes, as `<name>> <line>` (Nix's `--print-build-logs`); empty lines
 * are left out, a builder's `@nix` messages are read (a `msg` is printed, a phase is not).
 */
export function builderLogPrinter(write: (line: string) => void): RunListener {
  return (e: RunEvent) => {
    if (e.type !== "builder.log") return;
    const name = drvName(parseGoalKey(e.goal).path);
    let text = "";
    for (const l of e.lines) {
      const m = parseBuilderMessage(l);
      if (m?.kind === "msg") text += `${m.msg}\n`;
      if (m !== undefined && m.kind !== "invalid") continue;
      if (m) text += `${badMessageText(m.error)}\n`;
      const shown = l.trimEnd();
      if (shown) text += `${name}> ${shown}\n`;
    }
    if (text) write(text);
  };
}
