// How the progress display and the summary write durations and colours. Colour comes from
// node:util's styleText, and only when it is wanted: a terminal, no NO_COLOR (no-color.org), not
// TERM=dumb.
import { styleText } from "node:util";

export type Style = "red" | "green" | "yellow" | "blue" | "cyan" | "magenta" | "dim" | "bold";

/** Paints text in a style, or leaves it plain. */
export type Paint = (style: Style | Style[], text: string) => string;

export const plainPaint: Paint = (_style, text) => text;

// wantsColour decides; styleText must not look at process.stdout (the display is on stderr).
export const colourPaint: Paint = (style, text) =>
  styleText(style as Parameters<typeof styleText>[0], text, { validateStream: false });

/** Whether to colour what goes to `stream`. */
export function wantsColour(
  stream: { isTTY?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  return stream.isTTY === true;
}

/** `850ms`, `4.2s`, `1m20s`, `2h05m`. */
export function durationText(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(Math.round(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** `HH:MM:SS` of a Unix millisecond time, local time. */
export function clockText(wall: number): string {
  const d = new Date(wall);
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}
