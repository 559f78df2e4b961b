// Nix's output locks: flock on `<path>.lock`, held by the spawner process for nixstate, so that
// Nix and nixstate (and two nixstate processes) building in one store exclude each other.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Spawner, spawnerAvailable } from "../../src/builder/spawner.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-locks-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** This process's children running `command` (spawners), from /proc. */
function childrenRunning(command: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        return ppid === process.pid && stat.includes(`(${command}`);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

/** Whether another process (util-linux flock, as any flock user) could take the lock now. */
const freeForOthers = (file: string) => spawnSync("flock", ["-n", file, "true"]).status === 0;

// Python's process is named after its binary (python3 or python3.11).
describe.each([
  ["python", "python3"],
  ["perl", "perl"],
] as const)("output lock files (%s spawner)", (kind, command) => {
  if (!spawnerAvailable(kind) && process.env.CI === "true") throw new Error(`${kind} missing`);
  const dir = join(root, kind);
  mkdirSync(dir);
  const a = new Spawner(kind);
  const b = new Spawner(kind);
  afterAll(() => {
    a.close();
    b.close();
  });

  it("holds flock on <path>.lock, all or none, and releases it", async () => {
    const p1 = join(dir, "one");
    const p2 = join(dir, "two");
    const held = await a.tryLockFiles([p1, p2]);
    expect(held).toBeDefined();
    expect(freeForOthers(`${p1}.lock`)).toBe(false);
    expect(freeForOthers(`${p2}.lock`)).toBe(false);
    // Another process gets none of them, not even the one that would be free on its own.
    expect(await b.tryLockFiles([join(dir, "three"), p2])).toBeUndefined();
    expect(freeForOthers(`${join(dir, "three")}.lock`)).toBe(true);
    held!.release();
    await a.locksReleased();
    const again = await b.tryLockFiles([p1, p2]);
    expect(again).toBeDefined();
    again!.release();
  });

  it("deletes the lock files on release; locksReleased waits until they are gone", async () => {
    // The release is a message to the spawner: the file goes when the spawner has read it.
    for (let i = 0; i < 20; i++) {
      const p = join(dir, `built-${i}`);
      (await a.tryLockFiles([p]))!.release();
      await a.locksReleased();
      expect(existsSync(`${p}.lock`)).toBe(false);
    }
  });

  it("locksReleased does not fail when the spawner has died (Ctrl-C reaches it too)", async () => {
    const c = new Spawner(kind);
    const p = join(dir, "dying");
    const before = childrenRunning(command);
    (await c.tryLockFiles([p]))!.release();
    // Kill the new spawner, then ask before Node has seen it go.
    const [pid] = childrenRunning(command).filter((x) => !before.includes(x));
    process.kill(pid!, "SIGKILL");
    await expect(c.locksReleased()).resolves.toBeUndefined();
    c.close();
  });

  it("says which of the paths exist once it holds their locks (a dangling link does)", async () => {
    const [dirPath, link, none] = ["left-dir", "left-link", "nothing"].map((n) => join(dir, n));
    mkdirSync(dirPath!);
    symlinkSync("/nonexistent", link!);
    const held = await a.tryLockFiles([dirPath!, none!, link!]);
    expect(held!.onDisk).toEqual([true, false, true]);
    held!.release();
    const empty = await a.tryLockFiles([]);
    expect(empty!.onDisk).toEqual([]);
    empty!.release();
  });

  it("does not take a lock file that its last holder deleted while it waited", async () => {
    const p = join(dir, "stale");
    // Someone (Nix) held and deleted it, writing the "d" mark: a fresh file is used instead.
    const held = await a.tryLockFiles([p]);
    held!.release();
    await a.locksReleased();
    const fresh = await b.tryLockFiles([p]);
    expect(fresh).toBeDefined();
    expect(readFileSync(`${p}.lock`, "utf8")).toBe("");
    fresh!.release();
  });

  it("is released when the process holding it dies", async () => {
    const c = new Spawner(kind);
    const p = join(dir, "dies");
    expect(await c.tryLockFiles([p])).toBeDefined();
    expect(freeForOthers(`${p}.lock`)).toBe(false);
    c.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(freeForOthers(`${p}.lock`)).toBe(true);
  });

  it("reports a lock file that cannot be created", async () => {
    await expect(a.tryLockFiles(["/proc/nixstate-no/x"])).rejects.toThrow(
      /cannot open lock file '\/proc\/nixstate-no\/x.lock'/,
    );
  });

  it("starts before any request, without waiting for it when no lock was taken", async () => {
    const c = new Spawner(kind);
    const before = childrenRunning(command).length;
    try {
      c.start();
      // Started, not yet answering: a run with nothing to build does not wait for it to be up.
      expect(childrenRunning(command).length).toBe(before + 1);
      let settled = false;
      void c.locksReleased().then(() => {
        settled = true;
      });
      await Promise.resolve();
      await Promise.resolve();
      expect(settled).toBe(true);
      // Once a lock was taken, locksReleased waits for the spawner's answer.
      const p = join(dir, "started");
      (await c.tryLockFiles([p]))!.release();
      await c.locksReleased();
      expect(existsSync(`${p}.lock`)).toBe(false);
    } finally {
      c.close();
    }
  });
});
