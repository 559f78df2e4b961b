// Path locks within one process and across real processes, including a holder killed by SIGKILL.
import { afterEach, describe, expect, it } from "vitest";
import { LockTimeoutError } from "../../src/store/store-errors.ts";
import { type Child, spawnStoreChild } from "./child-process.ts";
import { DEAD_OWNER, useTempStores } from "./temp-store.ts";

const stores = useTempStores();
const children: Child[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
});

function spawnChild(stateDir: string, args: string[]): Child {
  const c = spawnStoreChild(stateDir, args);
  children.push(c);
  return c;
}

function lockRows(stateDir: string): number {
  const s = stores.open({ stateDir });
  const n = (s.database.prepare("SELECT count(*) AS n FROM PathLocks").get() as { n: number }).n;
  s.close();
  return n;
}

describe("path locks in one process", () => {
  it("lets one holder at a time take a path and frees it on release", () => {
    const store = stores.open();
    const p = `${store.storeDir.path}/00000000000000000000000000000000-out`;
    const a = store.locks.tryLock(p);
    expect(a).toBeDefined();
    expect(store.locks.isLockedByMe(p)).toBe(true);
    expect(store.locks.tryLock(p)).toBeUndefined();
    a!.release();
    a!.release(); // twice is harmless
    expect(store.locks.isLockedByMe(p)).toBe(false);
    const b = store.locks.tryLock(p);
    expect(b).toBeDefined();
    b!.release();
  });

  it("locks several paths all or nothing", () => {
    const store = stores.open();
    const [p, q, r] = ["p", "q", "r"].map(
      (n) => `${store.storeDir.path}/00000000000000000000000000000000-${n}`,
    ) as [string, string, string];
    const held = store.locks.tryLock(q)!;
    expect(store.locks.tryLock([p, q, r])).toBeUndefined();
    expect(store.locks.isLockedByMe(p)).toBe(false);
    held.release();
    const all = store.locks.tryLock([p, q, r])!;
    expect([p, q, r].every((x) => store.locks.isLockedByMe(x))).toBe(true);
    all.release();
  });

  it("takes over a lock whose holder is dead, and times out on a live one", async () => {
    const stateDir = stores.freshDir();
    const dead = stores.open({ stateDir, owner: DEAD_OWNER });
    const p = `${dead.storeDir.path}/00000000000000000000000000000000-out`;
    expect(dead.locks.tryLock(p)).toBeDefined();
    const live = stores.open({ stateDir });
    const taken = live.locks.tryLock(p);
    expect(taken).toBeDefined();
    await expect(live.locks.lock(p, { timeoutMs: 120, pollMs: 20 })).rejects.toBeInstanceOf(
      LockTimeoutError,
    );
    expect(() => live.locks.lockSync(p, { timeoutMs: 60, pollMs: 20 })).toThrow(LockTimeoutError);
    taken!.release();
    expect(live.locks.lockSync(p, { timeoutMs: 60 })).toBeDefined();
  });

  it("sweeps rows of dead holders when a store is opened", () => {
    const stateDir = stores.freshDir();
    const dead = stores.open({ stateDir, owner: DEAD_OWNER });
    dead.locks.tryLock(`${dead.storeDir.path}/00000000000000000000000000000000-a`);
    expect(lockRows(stateDir)).toBe(0);
  });
});

describe("path locks across processes", () => {
  it("SIGKILL of the holder frees the lock for a waiting process within 1 s, leaving no rows", async () => {
    const stateDir = stores.freshDir();
    const store = stores.open({ stateDir });
    const p = `${store.storeDir.path}/00000000000000000000000000000000-out`;
    const holder = spawnChild(stateDir, ["hold", p]);
    expect(await holder.waitFor("")).toBe("locked");
    expect(store.locks.tryLock(p)).toBeUndefined();
    expect(store.locks.holder(p)?.pid).toBe(holder.proc.pid);

    const waiter = spawnChild(stateDir, ["wait", p]);
    await waiter.waitFor("waiting");
    // The waiter must not get the lock while the holder lives.
    await new Promise((r) => setTimeout(r, 300));
    expect(waiter.lines.some((l) => l.startsWith("acquired"))).toBe(false);

    const killedAt = Date.now();
    holder.proc.kill("SIGKILL");
    const acquired = await waiter.waitFor("acquired");
    const delay = Number(acquired.split(" ")[1]) - killedAt;
    expect(delay).toBeLessThan(1000);
    await waiter.waitFor("released");
    expect(await waiter.exited).toBe(0);
    expect(lockRows(stateDir)).toBe(0);
  });

  it("a killed holder with no waiter leaves nothing once the store is opened again", async () => {
    const stateDir = stores.freshDir();
    const store = stores.open({ stateDir });
    const p = `${store.storeDir.path}/00000000000000000000000000000000-out`;
    const holder = spawnChild(stateDir, ["hold", p]);
    expect(await holder.waitFor("")).toBe("locked");
    holder.proc.kill("SIGKILL");
    await holder.exited;
    expect(lockRows(stateDir)).toBe(0); // swept when opened
    const mine = store.locks.tryLock(p);
    expect(mine).toBeDefined();
    mine!.release();
  });

  it("two processes racing for one path never hold it at the same time", async () => {
    const stateDir = stores.freshDir();
    const store = stores.open({ stateDir });
    const p = `${store.storeDir.path}/00000000000000000000000000000000-out`;
    const marker = `${stateDir}/marker`;
    // Both start at the same moment, after their (slow) start-up, so they really compete.
    const startAt = String(Date.now() + 2500);
    const racers = [0, 1].map(() => spawnChild(stateDir, ["race", p, "100", marker, startAt]));
    let busy = 0;
    for (const r of racers) busy += Number((await r.waitFor("done", 40_000)).split(" ")[1]);
    for (const r of racers) expect(r.lines).not.toContain("OVERLAP");
    expect(busy).toBeGreaterThan(0);
    expect(lockRows(stateDir)).toBe(0);
  });
});
