// Runtime roots: store paths that running processes use right now (executable, working
// directory, open files, mapped libraries, environment), found through /proc as Nix does.
// Best effort: processes we may not inspect, or that exit meanwhile, are skipped.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { StoreDir } from "../store-path/store-path.ts";

function storePathPattern(storeDir: StoreDir): RegExp {
  const dir = storeDir.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`${dir}/[0-9a-df-np-sv-z]{32}-[0-9a-zA-Z+\\-._?=]+`, "g");
}

function tryRead(read: () => string): string {
  try {
    return read();
  } catch {
    return "";
  }
}

/** Store paths in use by any process on this machine (empty where /proc is missing). */
export function findRuntimeRoots(storeDir: StoreDir): Set<string> {
  const found = new Set<string>();
  const pattern = storePathPattern(storeDir);
  const prefix = `${storeDir.path}/`;
  const scan = (text: string): void => {
    if (!text.includes(prefix)) return;
    for (const m of text.matchAll(pattern)) found.add(m[0]);
  };
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return found;
  }
  for (const pid of pids) {
    const base = `/proc/${pid}`;
    for (const link of ["exe", "cwd", "root"]) scan(tryRead(() => readlinkSync(`${base}/${link}`)));
    for (const fd of tryRead(() => readdirSync(`${base}/fd`).join("\n")).split("\n")) {
      if (fd !== "") scan(tryRead(() => readlinkSync(`${base}/fd/${fd}`)));
    }
    scan(tryRead(() => readFileSync(`${base}/maps`, "latin1")));
    scan(tryRead(() => readFileSync(`${base}/environ`, "latin1").replaceAll("\0", "\n")));
  }
  return found;
}
