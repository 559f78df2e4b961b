// Start a builder and wait for it. Its stdout and stderr go straight to a log file descriptor
// (no pipes through Node: measured to be the cheapest way to start thousands of builders), it
// gets its own process group so the whole tree can be killed, and timeouts watch the clock and
// the log's growth.
import { spawn } from "node:child_process";
import { closeSync, fstatSync, openSync } from "node:fs";
import { constants } from "node:os";

export interface RunBuilderOptions {
  builder: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** stdout and stderr are written here. */
  logFile: string;
  /** Seconds without log output before the builder is killed (0: no limit). */
  maxSilentTime: number;
  /** Seconds the builder may run (0: no limit). */
  buildTimeout: number;
  /** Bytes of log output allowed (0: no limit). */
  maxLogSize: number;
  signal: AbortSignal;
}

export type BuilderExit =
  | { kind: "exited"; code: number }
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

export function runBuilder(o: RunBuilderOptions): Promise<BuilderExit> {
  return new Promise((resolve) => {
    if (o.signal.aborted) return resolve({ kind: "aborted" });
    const fd = openSync(o.logFile, "w");
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(o.builder, o.args, {
        cwd: o.cwd,
        env: o.env,
        stdio: ["ignore", fd, fd],
        detached: true,
      });
    } catch (e) {
      closeSync(fd);
      return resolve({ kind: "spawnFailed", message: (e as Error).message });
    }
    const started = Date.now();
    let verdict: BuilderExit | undefined;
    const stop = (why: BuilderExit) => {
      verdict ??= why;
      if (child.pid) killGroup(child.pid);
    };
    const timers: NodeJS.Timeout[] = [];
    if (o.buildTimeout > 0) {
      timers.push(
        setTimeout(
          () => stop({ kind: "timedOut", silence: false, seconds: o.buildTimeout }),
          o.buildTimeout * 1000,
        ),
      );
    }
    if (o.maxSilentTime > 0 || o.maxLogSize > 0) {
      // The log is a file, not a pipe: watch its size for silence and for the size limit.
      let lastSize = 0;
      let lastOutput = started;
      const every = Math.max(50, Math.min(1000, (o.maxSilentTime || 4) * 250));
      timers.push(
        setInterval(() => {
          const size = fstatSync(fd).size;
          const now = Date.now();
          if (size !== lastSize) {
            lastSize = size;
            lastOutput = now;
          }
          if (o.maxLogSize > 0 && size > o.maxLogSize)
            stop({ kind: "logLimitExceeded", limit: o.maxLogSize });
          else if (o.maxSilentTime > 0 && now - lastOutput >= o.maxSilentTime * 1000) {
            stop({ kind: "timedOut", silence: true, seconds: o.maxSilentTime });
          }
        }, every),
      );
    }
    const onAbort = () => stop({ kind: "aborted" });
    o.signal.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    const finish = (exit: BuilderExit) => {
      if (finished) return;
      finished = true;
      for (const t of timers) clearTimeout(t);
      o.signal.removeEventListener("abort", onAbort);
      // Background processes the builder left behind die with its group, as in Nix.
      if (child.pid) killGroup(child.pid);
      closeSync(fd);
      resolve(verdict ?? exit);
    };
    child.once("error", (e) => finish({ kind: "spawnFailed", message: e.message }));
    child.once("exit", (code, signal) =>
      finish(signal ? { kind: "signaled", signal } : { kind: "exited", code: code ?? 1 }),
    );
  });
}
