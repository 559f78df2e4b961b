// The spawner: a small separate process that starts builders on request (creating their log
// files, and removing the log of a builder that printed nothing). Forking from the main
// nixstate process costs about a millisecond per builder on its single busy thread (the cost
// grows with its heap); here it runs on another core. Requests and replies are JSON lines on
// stdin/stdout. When stdin closes (nixstate exited or was killed), running builders are killed.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, statSync } from "node:fs";
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
}

export type SpawnReply =
  | { id: number; pid: number }
  /** The builder ended; an empty log has been removed (logSize 0). */
  | { id: number; code: number | null; signal: string | null; logSize: number }
  | { id: number; error: string };

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

function start(r: SpawnRequest): void {
  let fd: number;
  try {
    fd = openLog(r.log);
  } catch (e) {
    send({ id: r.id, error: `cannot open log '${r.log}': ${(e as Error).message}` });
    return;
  }
  try {
    const child = spawn(r.cmd, r.args, {
      cwd: r.cwd,
      env: r.env,
      stdio: ["ignore", fd, fd],
      detached: true,
    });
    child.once("spawn", () => {
      running.set(r.id, child.pid!);
      send({ id: r.id, pid: child.pid! });
    });
    child.once("error", (e) => send({ id: r.id, error: e.message }));
    child.once("exit", (code, signal) => {
      running.delete(r.id);
      const logSize = statSync(r.log, { throwIfNoEntry: false })?.size ?? 0;
      if (logSize === 0) rmSync(r.log, { force: true });
      send({ id: r.id, code, signal, logSize });
    });
  } catch (e) {
    send({ id: r.id, error: (e as Error).message });
  } finally {
    closeSync(fd);
  }
}

if (process.argv.includes("--serve-spawns")) {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => start(JSON.parse(line) as SpawnRequest));
  lines.on("close", () => {
    for (const pid of running.values()) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    process.exit(0);
  });
}
