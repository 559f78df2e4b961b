// Build slots and output locks: a goal takes its locks before a slot, but no more goals wait for
// a slot holding locks than there are slots; a lock another process holds is retried without
// blocking the others; a cancelled goal gives back what it took.
import { describe, expect, it } from "vitest";
import { GoalResources } from "../../src/machines/goal-resources.ts";
import type { OutputLock } from "../../src/machines/worker-effects.ts";
import type { WorkerEvent } from "../../src/machines/worker-events.ts";

const tick = () => new Promise((r) => setTimeout(r, 5));

/** Locks that count how many are held at once. */
function lockCounter() {
  const c = { held: 0, most: 0, busy: new Set<number>() };
  const tryLock = (id: number) => async (): Promise<OutputLock | undefined> => {
    await tick(); // a round trip to the spawner
    if (c.busy.has(id)) return undefined;
    c.held++;
    c.most = Math.max(c.most, c.held);
    return { release: () => void c.held-- };
  };
  return { c, tryLock };
}

describe("goal resources", () => {
  it("keeps at most a slot limit's worth of goals locked and waiting, slots going in order", async () => {
    const events: WorkerEvent[] = [];
    const r = new GoalResources((e) => events.push(e));
    const { c, tryLock } = lockCounter();
    const signal = new AbortController().signal;
    const granted: number[] = [];
    const goals = Array.from({ length: 12 }, (_, id) =>
      r.slotAndLock(id, 2, signal, tryLock(id)).then(() => granted.push(id)),
    );
    for (let i = 0; i < 4; i++) await tick();
    // Two hold slots, two more hold their locks waiting for one; the rest wait unlocked.
    expect(granted).toEqual([0, 1]);
    expect(c.held).toBe(4);
    for (let done = 0; done < 12; done++) {
      r.releaseLockAndSlot(done, true);
      for (let i = 0; i < 4; i++) await tick();
      expect(c.most).toBeLessThanOrEqual(4);
    }
    await Promise.all(goals);
    expect(granted).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(c.held).toBe(0);
    expect(events.filter((e) => e.type === "slot.granted")).toHaveLength(12);
  });

  it("retries a lock another process holds without keeping other goals from theirs", async () => {
    const r = new GoalResources();
    const { c, tryLock } = lockCounter();
    c.busy.add(0).add(1);
    const signal = new AbortController().signal;
    const granted: number[] = [];
    const goals = [0, 1, 2].map((id) =>
      r.slotAndLock(id, 2, signal, tryLock(id)).then(() => {
        granted.push(id);
        r.releaseLockAndSlot(id, true);
      }),
    );
    for (let i = 0; i < 8; i++) await tick();
    expect(granted).toEqual([2]);
    c.busy.clear();
    await Promise.all(goals);
    expect(granted.sort()).toEqual([0, 1, 2]);
  });

  it("gives back the lock of a goal cancelled while it waits for a slot", async () => {
    const r = new GoalResources();
    const { c, tryLock } = lockCounter();
    const never = new AbortController().signal;
    await r.slotAndLock(0, 1, never, tryLock(0));
    const stop = new AbortController();
    const waiting = r.slotAndLock(1, 1, stop.signal, tryLock(1));
    await tick();
    await tick();
    expect(c.held).toBe(2);
    stop.abort();
    await expect(waiting).rejects.toThrow(/cancelled/);
    expect(c.held).toBe(1);
    // The next goal may lock ahead now.
    const next = r.slotAndLock(2, 1, never, tryLock(2));
    await tick();
    await tick();
    expect(c.held).toBe(2);
    r.releaseLockAndSlot(0, true);
    await next;
  });
});
