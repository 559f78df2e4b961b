// One run of the worker as the event log sees it: the recorder between the worker and its
// listeners, the run's start and end events, and (unless recording is off) the durable log.
// `nixstate build`, `runs resume` and `nixstate serve` all start runs through here.
import { hostname } from "node:os";
import type { Worker } from "../machines/worker.ts";
import { NIXSTATE_VERSION } from "./nixstate-version.ts";
import type { RunRequest } from "./run-event.ts";
import { RunLog, runLogFile } from "./run-log.ts";
import { type RunClock, type RunListener, RunRecorder, SYSTEM_CLOCK } from "./run-recorder.ts";
import { DEFAULT_RETENTION, type RunRetention } from "./run-retention.ts";
import type { RunWriter } from "./run-writer.ts";

export interface RunSessionOptions {
  /** Where `runs.sqlite` lives (the store's state directory). */
  stateDir: string;
  /** Write the durable log (`--no-record` turns it off; listeners still get every event). */
  record: boolean;
  retention?: RunRetention;
  /** The run this one resumes. */
  resumes?: number;
  clock?: RunClock;
  /** Told when the run cannot be recorded (the build goes on without its log). */
  warn?: (message: string) => void;
  /** An open log to record into, left open at the run's end (the caller closes it). */
  log?: RunLog;
  /** Drop runs beyond the retention first (default true; a serve session does it now and then). */
  prune?: boolean;
}

export class RunSession {
  readonly recorder: RunRecorder;
  /** The log this session opened (and closes); undefined when given one or not recording. */
  private readonly log: RunLog | undefined;
  private readonly writer: RunWriter | undefined;
  private ended = false;

  private constructor(recorder: RunRecorder, log?: RunLog, writer?: RunWriter) {
    this.recorder = recorder;
    this.log = log;
    this.writer = writer;
  }

  /** Start a run: open the log, listen to the worker, emit `run.started`. */
  static start(
    worker: Worker,
    request: RunRequest,
    opts: RunSessionOptions,
    listeners: RunListener[] = [],
  ): RunSession {
    const recorder = new RunRecorder(opts.clock ?? SYSTEM_CLOCK);
    let log: RunLog | undefined;
    let writer: RunWriter | undefined;
    if (opts.record) {
      try {
        log = opts.log ?? RunLog.open(opts.stateDir);
        writer = log.begin(request, opts.resumes, opts.retention ?? DEFAULT_RETENTION, {
          prune: opts.prune ?? true,
        });
        recorder.listen(writer.append);
        recorder.keepDerivations(writer.keep);
        writer.onFailure = (e) =>
          opts.warn?.(`warning: the run log stopped recording this run: ${e.message}`);
      } catch (e) {
        // A log that cannot be written must not stop a build: say so and build unrecorded.
        if (log !== opts.log) log?.close();
        log = undefined;
        writer = undefined;
        opts.warn?.(
          `warning: this run is not recorded: ${e instanceof Error ? e.message : String(e)} (move '${runLogFile(opts.stateDir)}' away to start a new log)`,
        );
      }
    }
    for (const l of listeners) recorder.listen(l);
    worker.subscribe(recorder.worker);
    recorder.run({
      type: "run.started",
      request,
      settings: { ...worker.settings },
      version: NIXSTATE_VERSION,
      host: hostname(),
      pid: process.pid,
      ...(opts.resumes === undefined ? {} : { resumes: opts.resumes }),
    });
    return new RunSession(recorder, log === opts.log ? undefined : log, writer);
  }

  /** The run's id in the log; undefined when not recorded. */
  get runId(): number | undefined {
    return this.writer?.runId;
  }

  /** The run ended with this exit code: record it, write the rest, close the log. */
  end(exitCode: number): void {
    if (this.ended) return;
    this.ended = true;
    this.recorder.run({ type: "run.ended", exitCode });
    this.writer?.end(exitCode);
    this.log?.close();
  }
}
