// The run writer's batches: cut on a timer or when full and committed in order; what it writes
// reads back as it was, and a failure loses no more than it must and is told once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
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

  it("writes a full batch at once, the texts its events refer to before them", () =>
    withWriter(async (log, w, failures) => {
      const rows = () => log.db.prepare("SELECT COUNT(*) FROM batches").pluck().get() as number;
      for (let i = 0; i < 10; i++)
        w.keep({ hash: `h${i}`, name: `d${i}.drv`, aterm: Buffer.from(`Derive(${i})`) });
      const events = Array.from({ length: BATCH_MAX - 10 }, (_, i) => note(i + 1));
      for (const e of events.slice(0, -1)) w.append(e);
      expect(rows()).toBe(0);
      w.append(events.at(-1)!);
      // Cut and committed by the append that filled it, not by a timer.
      expect(rows()).toBe(1);
      expect(log.events(w.runId)).toEqual(events);
      expect(log.drvTexts(w.runId).get("h9")?.name).toBe("d9.drv");
      w.end(0);
      expect(failures).toEqual([]);
    }));

  it("keeps every goal name and derivation text of a batch, however many (rows go in groups)", () =>
    withWriter(async (log, w, failures) => {
      // 70 texts and 101 goals: two full groups of rows and some left over, in one batch.
      for (let i = 0; i < 70; i++)
        w.keep({ hash: `h${i}`, name: `d${i}.drv`, aterm: Buffer.from(`Derive(${i})`) });
      const events = Array.from({ length: 101 }, (_, i) => ({
        ...note(i + 1),
        goal: `drv:/s/goal-${i}.drv#normal`,
      })) as RunEvent[];
      for (const e of events) w.append(e);
      w.flush();
      expect(log.events(w.runId)).toEqual(events);
      const texts = log.drvTexts(w.runId);
      for (let i = 0; i < 70; i++)
        expect(texts.get(`h${i}`)?.aterm.toString()).toBe(`Derive(${i})`);
      expect(texts.size).toBe(70);
      w.end(0);
      expect(failures).toEqual([]);
    }));

  it("keeps the texts of every batch, numbered on from the batch before", () =>
    withWriter(async (log, w, failures) => {
      const text = (i: number) => ({
        hash: `h${i}`,
        name: `d${i}.drv`,
        aterm: Buffer.from(`Derive(${i})`),
      });
      for (const batch of [[0, 1, 2], [3], [4, 5]]) {
        for (const i of batch) w.keep(text(i));
        w.flush();
      }
      const texts = log.drvTexts(w.runId);
      expect([...texts.values()]).toEqual([0, 1, 2, 3, 4, 5].map(text));
      const keys = log.db.prepare("SELECT key FROM drv_texts ORDER BY key").pluck().all();
      expect(keys).toEqual([1, 2, 3, 4, 5, 6].map((n) => w.runId * 2 ** 32 + n));
      w.end(0);
      expect(failures).toEqual([]);
    }));

  it("reads back events whose JSON holds the separator it splits a batch's JSON on", () =>
    withWriter(async (log, w, failures) => {
      const sep = "\u0001\u0002";
      const tricky = [
        { ...note(1), message: sep },
        {
          type: "builder.log",
          goal: "drv:/s/g.drv#normal",
          seq: 2,
          mono: 2,
          wall: 1,
          lines: ["a", sep, "b"],
        },
        { ...note(3), message: `,"${sep}",` },
        note(4),
      ] as RunEvent[];
      for (const e of tricky) w.append(e);
      w.flush();
      expect(log.events(w.runId)).toEqual(tricky);
      w.end(0);
      expect(failures).toEqual([]);
    }));

  // Strings made of the separator's pieces, so that some events' JSON holds it.
  const tricky = fc.oneof(
    fc.constant("\u0001\u0002"),
    fc.string({ unit: fc.constantFrom("\u0001", "\u0002", ",", '"', "\\", "a", "\n") }),
  );
  const payload = fc.dictionary(
    fc.string({ maxLength: 3 }).map((k) => `k${k}`),
    fc.oneof(fc.jsonValue({ maxDepth: 2 }), tricky, fc.array(tricky, { maxLength: 4 })),
    { maxKeys: 4 },
  );
  const event = fc.record({
    type: fc.constantFrom("goal.note", "builder.log", "run.ended"),
    goal: fc.option(fc.constantFrom("drv:/s/a.drv#normal", "sub:/s/b", "drv:/s/\t.drv#check"), {
      nil: undefined,
    }),
    mono: fc.double({ min: 0, max: 1e9, noNaN: true }),
    wall: fc.integer({ min: 0, max: 2 ** 45 }),
    payload,
  });
  test.prop([fc.array(event, { maxLength: 40 }), fc.integer({ min: 1, max: 40 })], {
    numRuns: 60,
  })("reads back what it wrote, batch after batch, whatever its strings hold", (drawn, every) =>
    withWriter(async (log, w, failures) => {
      const events = drawn.map(({ goal, payload, ...stamp }, i) => ({
        ...stamp,
        ...(goal === undefined ? {} : { goal }),
        // The log keeps JSON: what JSON cannot tell apart (-0, 0) it does not.
        ...(JSON.parse(JSON.stringify(payload)) as object),
        seq: i + 1,
      })) as RunEvent[];
      events.forEach((e, i) => {
        w.append(e);
        if (i % every === every - 1) w.flush();
      });
      w.end(0);
      expect(log.events(w.runId)).toEqual(events);
      expect(failures).toEqual([]);
    }),
  );

  it("keeps what came before an event it cannot serialise, and stops there", () =>
    withWriter(async (log, w, failures) => {
      const before = Array.from({ length: BATCH_MAX }, (_, i) => note(i + 1));
      for (const e of before) w.append(e); // cut and written
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

  it("stops recording, once, when a batch its timer cut cannot be written", () =>
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
