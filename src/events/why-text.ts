// `nixstate why` in words: a WhyAnswer (run-why.ts) as the lines a Nix user reads — what happened
// to the goal, the chain of failures down to its root cause, the build log to look at, and the
// chain of requests from a top-level target that wanted it. Kept apart from the reasoning so the
// wording can change without touching what is concluded, and the JSON answer stays the same.

import { parseGoalKey } from "../machines/worker-events.ts";
import type { GoalCause } from "./run-event.ts";
import { goalLabel } from "./run-index.ts";
import type { GoalFacts, WhyAnswer } from "./run-why.ts";

function ms(n: number): string {
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

/** What happened to a goal, in one line, without its name. */
export function describeOutcome(f: GoalFacts): string {
  switch (f.outcome) {
    case "built":
      return f.buildMs === undefined ? "was built" : `was built (its builder ran ${ms(f.buildMs)})`;
    case "substituted":
      return "was substituted (copied from a binary cache), not built";
    case "alreadyValid":
      return f.kind === "derivation"
        ? "was not built: its outputs were already valid"
        : "was already valid";
    case "validUnderLock":
      return f.kind === "derivation"
        ? "was not built: another process built it while this build waited for the lock on its outputs"
        : "was not substituted: another process made it valid while this build waited for its lock";
    case "cachedFailure":
      return "was not built: it failed in an earlier build, and that failure is cached (--cache-failures; 'nixstate failed clear' forgets it)";
    case "failed":
      return `failed by itself (${f.status})${f.error ? `: ${f.error}` : ""}`;
    case "dependencyFailed":
      return f.kind === "derivation"
        ? "was not built: a dependency failed"
        : "was not substituted: a path it refers to could not be made valid";
    case "cancelled":
      return f.cancelledBy === undefined || /^(drv|sub):/.test(f.cancelledBy)
        ? "was cancelled because another build failed (use --keep-going to go on after failures)"
        : `was stopped before it ended (${f.cancelledBy})`;
    case "noSubstituter":
      return "could not be substituted: no substituter has it";
    case "unfinished":
      return "had not finished when the run's log ends (the run was interrupted or is still running)";
  }
}

const HOW_WANTED: Record<GoalCause["kind"], string> = {
  target: "",
  input: "needs",
  inputSource: "needs the input source",
  substitution: "substitutes",
  reference: "needs the reference",
  repair: "repairs",
};

/** The answer as a Nix user reads it. */
export function whyText(a: WhyAnswer): string {
  const g = a.goal;
  const subject = a.output
    ? `${a.query} (output '${a.output}' of ${goalLabel(g.goal)})`
    : goalLabel(g.goal);
  const lines = [`run ${a.run}: ${subject} ${describeOutcome(g)}`];
  const chain = a.failureChain;
  if (chain.length > 1) {
    for (let i = 1; i < chain.length; i++) {
      const f = chain[i]!;
      lines.push(
        chain[i - 1]!.outcome === "cancelled"
          ? `  stopped by the failure of ${goalLabel(f.goal)}, which ${describeOutcome(f)}`
          : `  because ${goalLabel(f.goal)} ${describeOutcome(f)}`,
      );
    }
  }
  if (a.rootCauses.length > 0 && chain.length > 1) {
    const roots = a.rootCauses;
    lines.push(
      roots.length === 1
        ? `root cause: ${goalLabel(roots[0]!.goal)}`
        : `root causes (${roots.length}):`,
    );
    if (roots.length > 1)
      for (const r of roots) lines.push(`  ${goalLabel(r.goal)}: ${describeOutcome(r)}`);
  }
  const logOf = (chain.length > 0 ? a.rootCauses : []).filter(
    (r) => r.kind === "derivation" && r.outcome === "failed" && r.buildMs !== undefined,
  );
  for (const r of logOf.slice(0, 3))
    lines.push(`see its build log: nixstate log ${parseGoalKey(r.goal).path}`);
  const w = a.wantedBy;
  if (w.target) {
    lines.push("wanted by:");
    w.chain.forEach((link, i) => {
      const pad = "  ".repeat(i + 1);
      lines.push(
        i === 0
          ? `${pad}target ${w.target!.text}${w.target!.text === parseGoalKey(link.goal).path ? "" : ` (${goalLabel(link.goal)})`}`
          : `${pad}which ${HOW_WANTED[link.as]} ${goalLabel(link.goal)}`,
      );
    });
    if (a.requestedBy > 1)
      lines.push(`  (and ${a.requestedBy - 1} other request${a.requestedBy === 2 ? "" : "s"})`);
  } else {
    lines.push("wanted by: no top-level target (its chain of requests is not in the log)");
  }
  return `${lines.join("\n")}\n`;
}
