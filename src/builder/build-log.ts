// Per-derivation build logs, laid out as Nix does (`<logDir>/drvs/<2 chars>/<rest of base name>`).
// The builder writes the plain log; once it ends the log is gzip-compressed (`.gz`; Nix 2.8 uses
// bzip2, which Node cannot write without a native dependency).
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { readFile, unlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync, gzip } from "node:zlib";

const gzipAsync = promisify(gzip);

export function logPaths(
  logDir: string,
  drvPath: string,
): { dir: string; raw: string; compressed: string } {
  const base = basename(drvPath);
  const dir = join(logDir, "drvs", base.slice(0, 2));
  const raw = join(dir, base.slice(2));
  return { dir, raw, compressed: `${raw}.gz` };
}

/** The last `n` lines of a plain log (reads at most its last 64 KiB). */
export function logTail(file: string, n: number): string[] {
  if (n <= 0 || !existsSync(file)) return [];
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, 65536);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString("utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    return lines.slice(-n);
  } finally {
    closeSync(fd);
  }
}

/** Compress a finished log off the main thread; an empty log is simply removed. */
export async function compressLog(raw: string, compressed: string): Promise<void> {
  const data = await readFile(raw);
  if (data.length > 0) await writeFile(compressed, await gzipAsync(data));
  await unlink(raw);
}

/** The log of a derivation's last build, or undefined if there is none. */
export function readBuildLog(logDir: string, drvPath: string): Buffer | undefined {
  const p = logPaths(logDir, drvPath);
  if (existsSync(p.compressed)) return gunzipSync(readFileSync(p.compressed));
  if (existsSync(p.raw)) return readFileSync(p.raw);
  return undefined;
}
