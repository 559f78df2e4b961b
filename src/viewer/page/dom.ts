// Small DOM helpers the page's views share.
import { durationWords, OUTCOME_WORDS } from "../../events/outcome-words.ts";

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text made safe to put in HTML or SVG markup. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export const SVG_NS = "http://www.w3.org/2000/svg";

/** Milliseconds as the page shows them: `+1.234 s` or `+56 ms`. */
export function since(ms: number): string {
  return ms < 1000 ? `+${Math.round(ms)} ms` : `+${(ms / 1000).toFixed(3)} s`;
}

export const duration = durationWords;

/** Outcomes and phases in words. */
export const WORDS: Record<string, string> = {
  absent: "not started",
  running: "running",
  building: "building",
  waiting: "waiting",
  ...OUTCOME_WORDS,
};
