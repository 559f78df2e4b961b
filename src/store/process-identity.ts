// Who owns a temp root or a lock: a pid plus the process's start time, so a pid the kernel
// hands to a new process later does not inherit the dead one's roots and locks.
import { readFileSync } from "node:fs";

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot); 0 where /proc is missing. */
  startTime: number;
}

interface ProcStat {
  state: string;
  startTime: number;
}

function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const startTime = Number(fields[19]);
  if (!Number.isFinite(startTime)) return undefined;
  return { state: fields[0] ?? "?", startTime };
}

const haveProc = readProcStat(process.pid) !== undefined;

let self: ProcessIdentity | undefined;

/** This process. */
export function currentProcess(): ProcessIdentity {
  if (self === undefined || self.pid !== process.pid) {
    self = { pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? 0 };
  }
  return self;
}

/** The identity of a running process, or undefined if there is none with that pid. */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  if (!haveProc) return isPidAlive(pid) ? { pid, startTime: 0 } : undefined;
  const stat = readProcStat(pid);
  if (stat === undefined || stat.state === "Z" || stat.state === "X") return undefined;
  return { pid, startTime: stat.startTime };
}

/**
 * Whether the process that had this identity still runs. A zombie (killed, not yet reaped)
 * counts as dead: it holds nothing any more.
 */
export function isAlive(id: ProcessIdentity): boolean {
  const me = currentProcess();
  if (id.pid === me.pid) return id.startTime === me.startTime;
  const now = processIdentity(id.pid);
  return now !== undefined && (!haveProc || now.startTime === id.startTime);
}

/** Whether some process has this pid (one owned by another user counts). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function describeProcess(id: ProcessIdentity): string {
  return `process ${id.pid}`;
}
