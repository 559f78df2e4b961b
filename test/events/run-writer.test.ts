// The run writer's batches: cut on a timer, deflated off the main thread, written in order; a
// flush finishes whatever is still being deflated, and a late deflate neither writes twice nor
// fails the run.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunEvent } from "../../src/events/run-event.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { BATCH_MS } from "../../src/events/run-writer.ts";

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

function withLog(body: (log: RunLog) => Promise<void>): Promise<void> {
  const log = RunLog.open(join(root, `log-${n++}`));
  return body(log).finally(() => log.close());
}

describe("run writer", () => {
  it("writes batches cut by its timer in order, without being asked to", () =>
    withLog(async (log) => {
      const w = log.begin(request);
      const failures: Error[] = [];
      w.onFailure = (e) => failures.push(e);
      const written: RunEvent[] = [];
      for (let seq = 1; seq <= 300; seq++) {
        const e = note(seq);
        w.append(e);
        written.push(e);
        // Several timer-cut batches, deflated while more events arrive.
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
    withLog(async (log) => {
      const w = log.begin(request);
      const failures: Error[] = [];
      w.onFailure = (e) => failures.push(e);
      const first = [1, 2, 3].map(note);
      for (const e of first) w.append(e);
      // Timers of one duration run in the order they were set, and a deflate's callback only
      // after the timers: this runs after the writer cut its batch, before the batch is deflated.
      const seen = await new Promise<RunEvent[]>((resolve) =>
        setTimeout(() => {
          w.append(note(4));
          w.flush();
          resolve(log.events(w.runId));
        }, BATCH_MS),
      );
      expect(seen).toEqual([...first, note(4)]);
      await sleep(100); // the deflate's callback has come and gone
      w.append(note(5));
      w.end(0);
      expect(log.events(w.runId)).toEqual([...first, note(4), note(5)]);
      expect(failures).toEqual([]);
    }));

  it("stops recording, once, when a batch deflated in the pool cannot be written", () =>
    withLog(async (log) => {
      const w = log.begin(request);
      const failures: Error[] = [];
      w.onFailure = (e) => failures.push(e);
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
