// Contents are written into the store directory under a temporary name and renamed into place
// (one file-system, so the rename is atomic). The name carries the writer's pid and start time,
// so the garbage collector removes leftovers of dead writers and never those of live ones.
import { currentProcess, type ProcessIdentity } from "./process-identity.ts";

const PREFIX = ".nixstate-tmp-";
const PATTERN = /^\.nixstate-tmp-(\d+)-(\d+)-\d+$/;

let counter = 0;

/** A fresh temp name owned by this (real) process. */
export function makeTempName(): string {
  const owner = currentProcess();
  return `${PREFIX}${owner.pid}-${owner.startTime}-${counter++}`;
}

/** The writer of a temp entry, or undefined if `name` is not one of ours. */
export function tempNameOwner(name: string): ProcessIdentity | undefined {
  const m = PATTERN.exec(name);
  return m ? { pid: Number(m[1]), startTime: Number(m[2]) } : undefined;
}
