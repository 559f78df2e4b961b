// Drive the real `nixstate` command as a user would.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../vectors.ts";

export interface CliResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

export function runCli(
  args: string[],
  opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): CliResult {
  const r = spawnSync(process.execPath, [join(repoRoot, "bin/nixstate.js"), ...args], {
    input: opts.input,
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    maxBuffer: 1 << 28,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString("utf8") };
}
