// Spawning fixtures/store-child.ts as a real separate process and reading its output lines.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../vectors.ts";

export interface Child {
  proc: ChildProcess;
  lines: string[];
  /** Resolves with the first output line starting with `prefix` (rejects when the child exits first). */
  waitFor(prefix: string, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
}

export function spawnStoreChild(stateDir: string, args: string[]): Child {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", join(repoRoot, "test/store/fixtures/store-child.ts"), stateDir, ...args],
    { stdio: ["ignore", "pipe", "pipe"], cwd: repoRoot },
  );
  const lines: string[] = [];
  let stderr = "";
  const waiters: { prefix: string; resolve: (l: string) => void }[] = [];
  let buffered = "";
  proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.filter((w) => line.startsWith(w.prefix))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  proc.stderr!.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return {
    proc,
    lines,
    exited,
    waitFor(prefix, timeoutMs = 20_000) {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`child did not print '${prefix}' in time; stderr: ${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          prefix,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(
            new Error(`child exited (${code}) before printing '${prefix}'; stderr: ${stderr}`),
          );
        });
      });
    },
  };
}
