// Start a builder and wait for it. The spawner process starts it in its own process group (so
// the whole tree can be killed) and copies its output into the log file (no pipes through Node);
// it ends the build when the output ends and enforces the log-size and silence limits on the
// bytes as they arrive. The overall timeout and aborts are watched here.
import { constants } from "node:os";
import type { Spawner } from "./spawner.ts";

export interface RunBuilderOptions {
  builder: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** stdout and stderr are written here (its directory is created if needed). */
  logFile: string;
  /** Seconds without log output before the builder is killed (0: no limit). */
  maxSilentTime: number;
  /** Seconds the builder may run (0: no limit). */
  buildTimeout: number;
  /** Bytes of log output allowed (0: no limit). */
  maxLogSize: number;
  signal: AbortSignal;
  /** 3 when the command puts fd 3 in the builder's stdout and stderr (see sandboxCommand). */
  outputFd?: 1 | 3;
  /** The builder process started with this pid. */
  onStarted?: (pid: number) => void;
  /**
   * Each chunk of the builder's output as it arrives (besides the log file), all before the
   * promise resolves. Asked for only by `-L` and internal-json: without it nothing reaches Node.
   */
  onOutput?: (chunk: Buffer) => void;
}

export type BuilderExit =
  | { kind: "exited"; code: number; logSize: number }
  | { kind: "signaled"; signal: NodeJS.Signals }
  | { kind: "timedOut"; silence: boolean; seconds: number }
  | { kind: "logLimitExceeded"; limit: number }
  | { kind: "aborted" }
  | { kind: "spawnFailed"; message: string };

/** How Nix words a builder's end ("failed with exit code 3", "failed due to signal 9 (Killed)"). */
export function describeExit(exit: BuilderExit): string {
  switch (exit.kind) {
    case "exited":
      return `failed with exit code ${exit.code}`;
    case "signaled": {
      const n = constants.signals[exit.signal];
      return `failed due to signal ${n} (${SIGNAL_NAMES[exit.signal] ?? exit.signal})`;
    }
    case "spawnFailed":
      return "failed with exit code 1";
    default:
      return exit.kind;
  }
}

const SIGNAL_NAMES: Partial<Record<NodeJS.Signals, string>> = {
  SIGKILL: "Killed",
  SIGTERM: "Terminated",
  SIGSEGV: "Segmentation fault",
  SIGABRT: "Aborted",
  SIGINT: "Interrupt",
  SIGHUP: "Hangup",
  SIGPIPE: "Broken pipe",
  SIGBUS: "Bus error",
};

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // the group is already gone
  }
}

export function runBuilder(o: RunBuilderOptions, spawner: Spawner): Promise<BuilderExit> {
  return new Promise((resolve) => {
    if (o.signal.aborted) return resolve({ kind: "aborted" });
    // Output that arrives before `onStarted` was told (the pid and the first bytes can come in
    // one read) waits for it: listeners hear of a builder's start before its first line.
    let early: Buffer[] | undefined = o.onOutput ? [] : undefined;
    const flushEarly = () => {
      const chunks = early ?? [];
      early = undefined;
      for (const c of chunks) o.onOutput?.(c);
    };
    const builder = spawner.spawn(
      {
        cmd: o.builder,
        args: o.args,
        env: o.env,
        cwd: o.cwd,
        log: o.logFile,
        maxLogSize: o.maxLogSize,
        maxSilentMs: o.maxSilentTime * 1000,
        outputFd: o.outputFd ?? 1,
      },
      o.onOutput &&
        ((chunk) => {
          if (early) early.push(chunk);
          else o.onOutput?.(chunk);
        }),
    );
    let pid: number | undefined;
    let verdict: BuilderExit | undefined;
    const stop = (why: BuilderExit) => {
      verdict ??= why;
      if (pid) killGroup(pid);
    };
    const timers: NodeJS.Timeout[] = [];
    const onAbort = () => stop({ kind: "aborted" });
    const finish = (exit: BuilderExit) => {
      for (const t of timers) clearTimeout(t);
      o.signal.removeEventListener("abort", onAbort);
      flushEarly();
      // Background processes the builder left behind die with its group, as in Nix.
      if (pid) killGroup(pid);
      resolve(verdict ?? exit);
    };
    builder.started.then(
      (p) => {
        pid = p;
        o.onStarted?.(p);
        flushEarly();
        if (verdict) killGroup(p);
      },
      () => {},
    );
    if (o.buildTimeout > 0) {
      timers.push(
        setTimeout(
          () => stop({ kind: "timedOut", silence: false, seconds: o.buildTimeout }),
          o.buildTimeout * 1000,
        ),
      );
    }
    o.signal.addEventListener("abort", onAbort, { once: true });
    builder.exited.then(
      ({ code, signal, logSize, why }) =>
        finish(
          why === "log"
            ? { kind: "logLimitExceeded", limit: o.maxLogSize }
            : why === "silent"
              ? { kind: "timedOut", silence: true, seconds: o.maxSilentTime }
              : signal
                ? { kind: "signaled", signal }
                : { kind: "exited", code: code ?? 1, logSize },
        ),
      (e: Error) => finish({ kind: "spawnFailed", message: e.message }),
    );
  });
}
