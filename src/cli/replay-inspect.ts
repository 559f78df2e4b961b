// `nixstate replay RUN --inspect[=URL] [--speed X]`: a recorded run's events sent to an XState
// inspector as the live build sent them (the same frames), paced by their recorded times.
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { InspectFrames } from "../events/inspect-frames.ts";
import { INSPECT_DRAIN_MS, InspectSender, parseInspectUrl } from "../events/inspect-sender.ts";
import type { RunEvent } from "../events/run-event.ts";
import { CliUsageError } from "./cli-error.ts";

export class InspectorUnreachableError extends Error {
  override name = "InspectorUnreachableError";
}

/** `--speed`: how many times faster than recorded; 0 sends as fast as the inspector takes it. */
export function parseSpeed(text: string | undefined): number {
  if (text === undefined) return 1;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < 0)
    throw new CliUsageError(`--speed wants a number ≥ 0 (0: as fast as possible), not '${text}'`);
  return n;
}

export interface StreamedRun {
  frames: number;
  delivered: number;
}

/** Send `events` (one run's, in order) to the inspector at `url`. */
export async function streamRunToInspector(
  events: RunEvent[],
  urlOption: string | boolean,
  speed: number,
): Promise<StreamedRun> {
  const url = parseInspectUrl(urlOption);
  let unreachable: Error | undefined;
  const sender = new InspectSender(url, {
    warn: (message) => process.stderr.write(`${message}\n`),
    unreachable: (e) => {
      unreachable = e;
    },
  });
  const frames = new InspectFrames();
  let count = 0;
  const start = performance.now();
  const origin = events[0]?.mono ?? 0;
  for (const e of events) {
    if (speed > 0) {
      const due = start + (e.mono - origin) / speed;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    const f = frames.frames(e);
    count += f.length;
    sender.send(f);
  }
  const r = await sender.finish(INSPECT_DRAIN_MS);
  if (!r.connected)
    throw new InspectorUnreachableError(
      `cannot reach the XState inspector at ${url}${unreachable ? ` (${unreachable.message})` : ""}: start one first (see the README, 'Watching a build in the XState inspector')`,
    );
  return { frames: count, delivered: r.delivered };
}
