// The spawner: a small separate process that starts builders on request. Forking from the main
// nixstate process costs about a millisecond per builder on its single busy thread (the cost
// grows with its heap); here it runs on another core. Requests and replies are JSON lines on
// stdin/stdout. When stdin closes (nixstate exited or was killed), running builders are killed.
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
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
  | { id: number; code: number | null; signal: string | null }
  | { id: number; error: string };

const running = new Map<number, number>();
const send = (reply: SpawnReply) => process.stdout.write(`${JSON.stringify(reply)}\n`);

function start(r: SpawnRequest): void {
  let fd: number;
  try {
    fd = openSync(r.log, "w");
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
      send({ id: r.id, code, signal });
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
