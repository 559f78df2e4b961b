// The serve server's stderr carries the build logs, as Nix's does: each running build's log file
// is followed while the builder writes it (polled), and whatever is left is sent once the builds
// are over (the log may be compressed by then). Nothing is sent twice.
import { open } from "node:fs/promises";
import { logPaths, readBuildLog } from "../builder/build-log.ts";
import type { RunEvent } from "../events/run-event.ts";
import type { RunListener } from "../events/run-recorder.ts";
import { parseGoalKey } from "../machines/worker-events.ts";

const POLL_MS = 100;
/** At most this much of one log is read and sent a poll: a flood stays in its file. */
const MOST_A_POLL = 1 << 20;

export class BuildLogRelay {
  /** Bytes of each build's log already sent. */
  private readonly sent = new Map<string, number>();
  private readonly running = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();

  /**
   * `backlogged`: true while what was written is still queued for a slow reader (a resident
   * server's socket); polls then send nothing, and the logs wait in their files, not in memory.
   */
  constructor(
    private readonly logDir: string,
    private readonly write: (bytes: Uint8Array) => void,
    private readonly backlogged: () => boolean = () => false,
  ) {}

  /** The builder of `drvPath` is starting: follow its log. */
  started(drvPath: string): void {
    this.running.add(drvPath);
    if (!this.sent.has(drvPath)) this.sent.set(drvPath, 0);
    this.timer ??= setInterval(() => {
      this.polling = this.polling.then(() => this.poll());
    }, POLL_MS);
  }

  /** The build of `drvPath` has ended: stop following (flush sends the rest). */
  finished(drvPath: string): void {
    this.running.delete(drvPath);
  }

  private async poll(): Promise<void> {
    for (const drvPath of this.running) {
      if (this.backlogged()) return;
      const from = this.sent.get(drvPath) ?? 0;
      let file: Awaited<ReturnType<typeof open>> | undefined;
      try {
        file = await open(logPaths(this.logDir, drvPath).raw, "r");
        const { size } = await file.stat();
        if (size <= from) continue;
        const chunk = Buffer.alloc(Math.min(size - from, MOST_A_POLL));
        const { bytesRead } = await file.read(chunk, 0, chunk.length, from);
        this.sent.set(drvPath, from + bytesRead);
        this.write(chunk.subarray(0, bytesRead));
      } catch {
        // Not created yet, or already compressed: flush sends what is left.
      } finally {
        await file?.close();
      }
    }
  }

  /** Stop following; send the part of each log not sent yet (call once the logs are final). */
  async flush(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
    for (const [drvPath, from] of this.sent) {
      const log = readBuildLog(this.logDir, drvPath);
      if (log && log.length > from) this.write(log.subarray(from));
    }
    this.sent.clear();
    this.running.clear();
  }
}

/** Follow each builder's log from the moment its goal starts building until the goal ends. */
export function logRelayListener(relay: BuildLogRelay): RunListener {
  const building = new Set<string>();
  return (e: RunEvent) => {
    if (e.type === "goal.transition" && e.goal.startsWith("drv:")) {
      const drvPath = parseGoalKey(e.goal).path;
      if (e.state === "buildDone" && !building.has(e.goal)) {
        building.add(e.goal);
        relay.started(drvPath);
      }
    } else if (e.type === "goal.done" && building.delete(e.goal)) {
      relay.finished(parseGoalKey(e.goal).path);
    }
  };
}
