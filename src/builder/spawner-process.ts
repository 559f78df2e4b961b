// The spawner: a small separate process that starts builders on request and copies their output
// into log files (removing the log of a builder that printed nothing). Forking from the main
// nixstate process costs about a millisecond per builder on its single busy thread (the cost
// grows with its heap); here it runs on another core. Requests and replies are JSON lines on
// stdin/stdout. When stdin closes (nixstate exited or was killed), running builders are killed.
// Same rules as the Perl spawner (spawner-perl.ts): the end of the log ends the build, and the
// log-size and silence limits are checked on the bytes as they arrive.
import { spawn } from "node:child_process";
import { closeSync, fstatSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";

export interface SpawnRequest {
  id: number;
  cmd: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** stdout and stderr go to this file (created or truncated). */
  log: string;
  /** Bytes of log allowed; the builder is killed on the first byte over (0: no limit). */
  maxLogSize: number;
  /** Milliseconds without output before the builder is killed (0: no limit). */
  maxSilentMs: number;
  /**
   * 3: the command gets its output pipe as fd 3 and the log itself as stdout and stderr (a
   * sandbox that puts fd 3 in the builder's place, so that it does not hold the pipe open).
   */
  outputFd: 1 | 3;
  /**
   * Also send each chunk of the builder's output to the main process (`-L`, internal-json's
   * BuildLogLine), as well as into the log. Off by default: a build then costs nothing more.
   */
  forwardOutput?: boolean;
}

/** Why a builder ended: its output ended, or it was killed for too much log or silence. */
export type SpawnEndReason = "exit" | "log" | "silent";

export type SpawnReply =
  | { id: number; pid: number }
  /** The builder ended; an empty log has been removed (logSize 0). */
  | {
      id: number;
      code: number | null;
      signal: string | null;
      logSize: number;
      why: SpawnEndReason;
    }
  | { id: number; error: string }
  /** A chunk of the builder's output, base64 (only when the request asked for it). */
  | { id: number; out: string };

const running = new Map<number, number>();
const send = (reply: SpawnReply) => process.stdout.write(`${JSON.stringify(reply)}\n`);

function openLog(path: string): number {
  try {
    return openSync(path, "w");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    mkdirSync(dirname(path), { recursive: true });
    return openSync(path, "w");
  }
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function start(r: SpawnRequest): void {
  let fd: number;
  try {
    fd = openLog(r.log);
  } catch (e) {
    send({ id: r.id, error: `cannot open log '${r.log}': ${(e as Error).message}` });
    return;
  }
  let size = 0;
  let why: SpawnEndReason = "exit";
  let silence: NodeJS.Timeout | undefined;
  let open = r.outputFd === 3 ? 1 : 2;
  let grace: NodeJS.Timeout | undefined;
  let child: ReturnType<typeof spawn>;
  let outputs: (NodeJS.ReadableStream & { destroy(): void })[] = [];
  const stop = (reason: SpawnEndReason) => {
    if (why === "exit") why = reason;
    for (const stream of outputs) stream.destroy();
    killGroup(child.pid);
  };
  const armSilence = () => {
    if (r.maxSilentMs <= 0) return;
    clearTimeout(silence);
    silence = setTimeout(() => stop("silent"), r.maxSilentMs);
  };
  try {
    child = spawn(r.cmd, r.args, {
      cwd: r.cwd,
      env: r.env,
      stdio: r.outputFd === 3 ? ["ignore", fd, fd, "pipe"] : ["ignore", "pipe", "pipe"],
      detached: true,
    });
  } catch (e) {
    closeSync(fd);
    send({ id: r.id, error: (e as Error).message });
    return;
  }
  armSilence();
  outputs = (r.outputFd === 3 ? [child.stdio[3]] : [child.stdout, child.stderr]).map(
    (s) => s as NodeJS.ReadableStream & { destroy(): void },
  );
  for (const stream of outputs) {
    stream.on("data", (chunk: Buffer) => {
      if (why !== "exit") return;
      if (r.maxLogSize > 0 && size + chunk.length > r.maxLogSize) return stop("log");
      writeSync(fd, chunk);
      size += chunk.length;
      if (r.forwardOutput) send({ id: r.id, out: chunk.toString("base64") });
      armSilence();
    });
    // Both ends closed: the log has ended, so the build has (Nix kills what is left). A
    // sandbox's own process exits just after its builder: it gets a moment to report the status.
    stream.once("close", () => {
      if (--open > 0) return;
      if (r.outputFd === 3) grace = setTimeout(() => killGroup(child.pid), 500);
      else killGroup(child.pid);
    });
  }
  child.once("spawn", () => {
    running.set(r.id, child.pid!);
    send({ id: r.id, pid: child.pid! });
  });
  child.once("error", (e) => {
    clearTimeout(silence);
    closeSync(fd);
    rmSync(r.log, { force: true });
    send({ id: r.id, error: e.message });
  });
  // 'close' comes once the process has exited and its output has ended.
  child.once("close", (code, signal) => {
    if (!running.delete(r.id)) return;
    clearTimeout(silence);
    clearTimeout(grace);
    killGroup(child.pid);
    // In fd 3 mode the started process writes to the log too: its size is the file's.
    const logSize = fstatSync(fd).size;
    closeSync(fd);
    if (logSize === 0) rmSync(r.log, { force: true });
    send({ id: r.id, code, signal, logSize, why });
  });
}

if (process.argv.includes("--serve-spawns")) {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => start(JSON.parse(line) as SpawnRequest));
  lines.on("close", () => {
    for (const pid of running.values()) killGroup(pid);
    process.exit(0);
  });
}
