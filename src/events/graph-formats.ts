// A run's goal graph (run-graph.ts) written out: DOT for Graphviz (`nixstate graph | dot -Tsvg`),
// a Mermaid flowchart for Markdown pages and issues, or the graph itself as JSON. Every name that
// comes from the log is escaped for the format it goes into, so any derivation name, however
// odd, gives a file the tool parses.

import { durationWords, OUTCOME_WORDS } from "./outcome-words.ts";
import type { GraphEdge, GraphNode, RunGraph } from "./run-graph.ts";
import type { Outcome } from "./run-why.ts";

export const GRAPH_FORMATS = ["dot", "mermaid", "json"] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/** `--format` named a format the graph cannot be written in. */
export class UnknownGraphFormatError extends Error {
  override name = "UnknownGraphFormatError";
  constructor(readonly format: string) {
    super(
      `unknown graph format '${format}'; use --format dot, mermaid or json (for an image, pipe DOT to Graphviz: nixstate graph --format dot | dot -Tsvg > run.svg)`,
    );
  }
}

export function parseGraphFormat(text: string): GraphFormat {
  const f = text.toLowerCase();
  if ((GRAPH_FORMATS as readonly string[]).includes(f)) return f as GraphFormat;
  throw new UnknownGraphFormatError(text);
}

export function renderGraph(g: RunGraph, format: GraphFormat): string {
  switch (format) {
    case "dot":
      return graphDot(g);
    case "mermaid":
      return graphMermaid(g);
    case "json":
      return `${JSON.stringify(g)}\n`;
  }
}

// --- What every format shows -------------------------------------------------------------------

const STATE_WORDS: Record<Outcome, string> = OUTCOME_WORDS;

/** Fill colours: green built, blue substituted, grey nothing to do, reds and yellows failures. */
const FILL: Record<Outcome, string> = {
  built: "#c8e6c9",
  substituted: "#bbdefb",
  alreadyValid: "#eeeeee",
  validUnderLock: "#eeeeee",
  cachedFailure: "#ef9a9a",
  failed: "#ef9a9a",
  dependencyFailed: "#ffe0b2",
  cancelled: "#fff9c4",
  noSubstituter: "#f5f5f5",
  unfinished: "#ffffff",
};
const ROOT_CAUSE_BORDER = "#b71c1c";
const CRITICAL_PATH = "#1565c0";

/** A node's label: its name (and mode or attempt) over what happened to it and how long it took. */
export function nodeLabelLines(n: GraphNode): [string, string] {
  const notes = [
    ...(n.mode ? [`--${n.mode}`] : []),
    ...(n.attempt ? [`attempt ${n.attempt}`] : []),
    ...(n.kind === "substitution" ? ["substitution"] : []),
  ];
  const title = notes.length > 0 ? `${n.name} (${notes.join(", ")})` : n.name;
  const state = n.rootCause ? `${STATE_WORDS[n.state]} (root cause)` : STATE_WORDS[n.state];
  return [title, n.durationMs === null ? state : `${state}, ${durationWords(n.durationMs)}`];
}

function edgeLabel(e: GraphEdge): string | undefined {
  return e.kind === "input" ? undefined : e.kind;
}

// --- DOT ---------------------------------------------------------------------------------------

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A DOT quoted string. Graphviz's lexer takes `\"` as a quote and `\\` as a pair, and label
 * strings (escString) then read `\\` as one backslash and `\n` as a line break, so a backslash
 * never escapes anything it was not meant to, even at the end of the string. NUL (which ends a C
 * string), the other control characters and lone surrogates (not UTF-8) become U+FFFD.
 */
export function dotString(s: string): string {
  const clean = s.replace(LONE_SURROGATE, "\uFFFD").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "\uFFFD");
  return `"${clean.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

function dotAttrs(attrs: Record<string, string | number | undefined>): string {
  const parts = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === "number" ? v : dotString(v!)}`);
  return parts.length > 0 ? ` [${parts.join(", ")}]` : "";
}

/** The graph for Graphviz: waiters above what they waited for, failures red, the critical path blue. */
export function graphDot(g: RunGraph): string {
  const lines = [
    `digraph ${dotString(`nixstate run ${g.run}`)} {`,
    `  graph${dotAttrs({ label: graphTitle(g), labelloc: "t", rankdir: "TB", fontname: "Helvetica" })};`,
    `  node [shape=box, style="rounded,filled", fontname="Helvetica"];`,
    `  edge [fontname="Helvetica", fontsize=10];`,
  ];
  for (const n of g.nodes) {
    const [title, state] = nodeLabelLines(n);
    const tooltip = n.error ? `${n.key}\n${n.error}` : n.key;
    lines.push(
      `  ${dotString(n.key)}${dotAttrs({
        label: `${title}\n${state}`,
        tooltip,
        fillcolor: FILL[n.state],
        color: n.rootCause ? ROOT_CAUSE_BORDER : n.onCriticalPath ? CRITICAL_PATH : undefined,
        penwidth: n.rootCause ? 3 : n.onCriticalPath ? 2 : undefined,
        peripheries: n.targets ? 2 : undefined,
      })};`,
    );
  }
  for (const e of g.edges) {
    lines.push(
      `  ${dotString(e.from)} -> ${dotString(e.to)}${dotAttrs({
        label: edgeLabel(e),
        style: e.waited ? undefined : "dashed",
        color: e.onCriticalPath ? CRITICAL_PATH : undefined,
        penwidth: e.onCriticalPath ? 2 : undefined,
      })};`,
    );
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

function graphTitle(g: RunGraph): string {
  const failed = g.nodes.filter((n) => n.rootCause).length;
  const parts = [
    `run ${g.run}${g.runState === "ended" ? "" : ` (${g.runState})`}`,
    `${g.nodes.length} goal${g.nodes.length === 1 ? "" : "s"}`,
    ...(failed > 0 ? [`${failed} root cause${failed === 1 ? "" : "s"} of failure`] : []),
    ...(g.criticalPathMs === null ? [] : [`critical path ${durationWords(g.criticalPathMs)}`]),
  ];
  return parts.join(", ");
}

// --- Mermaid -----------------------------------------------------------------------------------

/** Characters a Mermaid label keeps as they are; the rest are written as `#<code point>;`. */
const MERMAID_PLAIN = /^[A-Za-z0-9 ._,/+=()'-]$/;

/**
 * Text for inside a Mermaid `["…"]` label: letters, digits and harmless punctuation as they are,
 * every other character (quotes, `#`, `<`, `&`, `:`, `;`, `%`, backticks, non-ASCII, controls) as
 * Mermaid's numeric entity `#<decimal>;`, and line breaks as `<br>`. The label then holds no
 * quote to end it early, no HTML and no markdown.
 */
export function mermaidText(s: string): string {
  let out = "";
  for (const ch of s) {
    if (ch === "\n") out += "<br>";
    else if (MERMAID_PLAIN.test(ch)) out += ch;
    else out += `#${ch.codePointAt(0)};`;
  }
  return out;
}

/** Mermaid ids: `g` and the node's index, so no name can break the syntax or hit a keyword. */
const mermaidId = (i: number) => `g${i}`;

/** The graph as a Mermaid flowchart: waited edges solid, requests never waited for dotted. */
export function graphMermaid(g: RunGraph): string {
  const ids = new Map(g.nodes.map((n, i) => [n.key, mermaidId(i)]));
  const lines = ["flowchart TD", `  %% nixstate ${graphTitle(g)}`];
  // Classes by state first, then the critical path, then root causes: later ones win.
  const byClass = new Map<string, string[]>();
  const member = (cls: string, i: number) => {
    const members = byClass.get(cls);
    if (members) members.push(mermaidId(i));
    else byClass.set(cls, [mermaidId(i)]);
  };
  g.nodes.forEach((n, i) => {
    const [title, state] = nodeLabelLines(n);
    lines.push(`  ${mermaidId(i)}["${mermaidText(`${title}\n${state}`)}"]`);
    member(n.state, i);
  });
  g.nodes.forEach((n, i) => {
    if (n.onCriticalPath) member("criticalPath", i);
  });
  g.nodes.forEach((n, i) => {
    if (n.rootCause) member("rootCause", i);
  });
  for (const e of g.edges) {
    const arrow = e.onCriticalPath ? "==>" : e.waited ? "-->" : "-.->";
    const label = edgeLabel(e);
    lines.push(
      `  ${ids.get(e.from)} ${arrow}${label === undefined ? "" : `|${label}|`} ${ids.get(e.to)}`,
    );
  }
  for (const [cls, members] of byClass) {
    const style =
      cls === "rootCause"
        ? `stroke:${ROOT_CAUSE_BORDER},stroke-width:3px`
        : cls === "criticalPath"
          ? `stroke:${CRITICAL_PATH},stroke-width:2px`
          : `fill:${FILL[cls as Outcome]}`;
    lines.push(`  classDef ${cls} ${style}`);
    lines.push(`  class ${members.join(",")} ${cls}`);
  }
  return `${lines.join("\n")}\n`;
}
