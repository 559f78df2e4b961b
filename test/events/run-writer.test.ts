// The run writer's batches: cut on a timer or when full, deflated off the main thread, committed
// in order; a flush finishes whatever is still being deflated, a late deflate neither writes twice
// nor fails the run, and a failure loses no more than it must and is told once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunEvent } from "../../src/events/run-event.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { BATCH_MAX, BATCH_MS, type RunWriter } from "../../src/events/run-writer.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-run-writer-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const request = { command: "build" as const, targets: ["t"], options: {}, cwd: "/" };
const note = (seq: number) =>
  ({
    type: "goal.note",
    goal: `drv:/s/g${seq % 3}.drv#normal`,
    seq,
    mono: seq,
    wall: 1e12 + seq,
    message: `event ${seq} ${"x".repeat(seq % 50)}`,
  }) as RunEvent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh log with one run begun, and the failures its writer tells of. */
function withWriter(
  body: (log: RunLog, w: RunWriter, failures: Error[]) => Promise<void>,
): Promise<void> {
  const log = RunLog.open(join(root, `log-${n++}`));
  const w = log.begin(request);
  const failures: Error[] = [];
  w.onFailure = (e) => failures.push(e);
  return body(log, w, failures).finally(() => log.close());
}

describe("run writer", () => {
  it("writes batches cut by its timer in order, without being asked to", () =>
    withWriter(async (log, w, failures) => {
      const written: RunEvent[] = [];
      for (let seq = 1; seq <= 300; seq++) {
        const e = note(seq);
        w.append(e);
        written.push(e);
        // Three batches, each cut by its timer while the run goes on.
        if (seq % 100 === 0) await sleep(BATCH_MS + 10);
      }
      // Each batch reaches the log a little after its timer, in order, with no flush.
      const deadline = Date.now() + 5000;
      while (log.events(w.runId).length < 300 && Date.now() < deadline) await sleep(20);
      expect(log.events(w.runId)).toEqual(written);
      expect((log.db.prepare("SELECT COUNT(*) FROM batches").pluck().get() as number) >= 3).toBe(
        true,
      );
      w.end(0);
      expect(failures).toEqual([]);
    }));

  it("finishes a batch still being deflated when flushed, and ignores the late deflate", () =>
    withWriter(async (log, w, failures) => {
      const rows = () => log.db.prepare("SELECT COUNT(*) FROM batches").pluck().get() as number;
      const first = Array.from({ length: BATCH_MAX }, (_, i) => note(i + 1));
      // The last of these cuts the batch at once and hands it to the pool, which cannot have
      // answered yet: its callback runs on a later turn of the event loop.
      for (const e of first) w.append(e);
      expect(rows()).toBe(0);
      w.append(note(BATCH_MAX + 1));
      w.flush();
      expect(log.events(w.runId)).toEqual([...first, note(BATCH_MAX + 1)]);
      await sleep(200); // the pool's answer has come and gone
      w.append(note(BATCH_MAX + 2));
      w.end(0);
      expect(log.events(w.runId)).toHaveLength(BATCH_MAX + 2);
      expect(rows()).toBe(3);
      expect(failures).toEqual([]);
    }));

  it("commits batches in order when a later one is deflated first", () =>
    withWriter(async (log, w, failures) => {
      const big = Array.from({ length: BATCH_MAX }, (_, i) => note(i + 1));
      for (const e of big) w.append(e); // a large batch, cut and on the pool
      // A second, small batch cut in the same turn: texts, then one event that refers to them.
      for (let i = 0; i < BATCH_MAX - 1; i++)
        w.keep({ hash: `h${i}`, name: `d${i}.drv`, aterm: Buffer.from(`Derive(${i})`) });
      const last = note(BATCH_MAX + 1);
      w.append(last);
      const deadline = Date.now() + 10_000;
      while (log.events(w.runId).length < BATCH_MAX + 1 && Date.now() < deadline) await sleep(10);
      expect(log.events(w.runId)).toEqual([...big, last]);
      expect(log.drv(`h${BATCH_MAX - 2}`)?.name).toBe(`d${BATCH_MAX - 2}.drv`);
      w.end(0);
      expect(failures).toEqual([]);
    }));

  it("keeps what came before an event it cannot serialise, and stops there", () =>
    withWriter(async (log, w, failures) => {
      const before = Array.from({ length: BATCH_MAX }, (_, i) => note(i + 1));
      for (const e of before) w.append(e); // cut, on the pool
      w.append(note(BATCH_MAX + 1));
      w.append({ ...note(BATCH_MAX + 2), message: 1n } as unknown as RunEvent);
      w.append(note(BATCH_MAX + 3));
      await sleep(BATCH_MS + 100);
      w.append(note(BATCH_MAX + 4));
      w.end(0);
      expect(log.events(w.runId)).toEqual([...before, note(BATCH_MAX + 1)]);
      expect(failures.map((e) => e.message)).toEqual([expect.stringMatching(/BigInt/)]);
      expect(log.run(w.runId).exitCode).toBe(0);
    }));

  it("tells of a failure once, even when the run's row cannot be ended either", () =>
    withWriter(async (log, w, failures) => {
      log.db.exec("DROP TABLE batches; DROP TABLE runs");
      w.append(note(1));
      w.end(1);
      expect(failures.map((e) => e.message)).toEqual([
        expect.stringMatching(/no such table: batches/),
      ]);
    }));

  it("stops recording, once, when a batch deflated in the pool cannot be written", () =>
    withWriter(async (log, w, failures) => {
      log.db.exec("DROP TABLE batches");
      w.append(note(1));
      await sleep(BATCH_MS + 100);
      w.append(note(2));
      await sleep(BATCH_MS + 100);
      w.end(1);
      expect(failures.map((e) => e.message)).toEqual([
        expect.stringMatching(/no such table: batches/),
      ]);
      expect(log.run(w.runId).exitCode).toBe(1);
    }));
});
