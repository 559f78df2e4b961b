// The run log as a codec and a store: events come back as they went in (any JSON payload, goal
// keys interned, batches cut anywhere), old runs are pruned with their .drv texts, a damaged log
// is a clear error, and a build whose log cannot be written still builds.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { fc, test } from "@fast-check/vitest";
import { afterAll, describe, expect, it } from "vitest";
import type { RunEvent } from "../../src/events/run-event.ts";
import { RunLog, RunLogError, runLogFile } from "../../src/events/run-log.ts";
import { parseRetention, RetentionError } from "../../src/events/run-retention.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "../cli/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-run-log-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const fresh = () => join(root, `log-${n++}`);
const request = { command: "build" as const, targets: ["t"], options: {}, cwd: "/" };
/** A goal's note, event `seq` of a run. */
const note = (seq: number, message: string) =>
  ({
    type: "goal.note",
    goal: "drv:/s/a.drv#normal",
    seq,
    mono: seq,
    wall: 1e12,
    message,
  }) as RunEvent;

const payload = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !["type", "goal", "seq"].includes(k)),
  fc.jsonValue({ maxDepth: 3 }),
  { maxKeys: 5 },
);
const events = fc.array(
  fc.record({
    type: fc.constantFrom("goal.transition", "effect.done", "run.started", "weird\ttype"),
    goal: fc.option(fc.constantFrom("drv:/s/a.drv#normal", "sub:/s/b", "drv:/s/\n.drv#check@2")),
    payload,
    flushAfter: fc.boolean(),
  }),
  { maxLength: 40 },
);

describe("run log", () => {
  test.prop([events], { numRuns: 60 })("gives back every event as written", (evs) => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      const w = log.begin(request);
      const written: RunEvent[] = [];
      for (const e of evs) {
        if (e.type.includes("\t")) continue; // types are ours: no tabs
        const i = written.length;
        const event = {
          ...JSON.parse(JSON.stringify(e.payload)),
          seq: i + 1,
          mono: i,
          wall: 1e12 + i,
          type: e.type,
          ...(e.goal === null ? {} : { goal: e.goal }),
        } as RunEvent;
        w.append(event);
        written.push(event);
        if (e.flushAfter) w.flush();
      }
      w.end(0);
      const back = log.events(w.runId);
      expect(back).toEqual(written);
      for (const g of ["drv:/s/a.drv#normal", "sub:/s/b"]) {
        expect(log.events(w.runId, { goal: g })).toEqual(
          written.filter((e) => (e as { goal?: string }).goal === g),
        );
      }
      const until = Math.floor(written.length / 2);
      expect(log.events(w.runId, { untilSeq: until })).toEqual(written.slice(0, until));
    } finally {
      log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("knows how many events a run has logged and the wall time of the last", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      const w = log.begin(request);
      expect(log.extent(w.runId)).toEqual({ events: 0, lastWall: undefined });
      for (let seq = 1; seq <= 5; seq++)
        w.append({ ...note(seq, "m"), wall: 1e12 + seq * seq } as RunEvent);
      w.flush();
      w.append({ ...note(6, "m"), wall: 1e12 + 7 } as RunEvent);
      w.append({ ...note(7, "m"), wall: 1e12 + 3 } as RunEvent);
      w.flush();
      expect(log.db.prepare("SELECT DISTINCT enc FROM batches").pluck().all()).toEqual([2]);
      expect(log.extent(w.runId)).toEqual({ events: 7, lastWall: 1e12 + 3 });
      w.end(0);
    } finally {
      log.close();
    }
  });

  it("keeps derivation texts as bytes", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      const w = log.begin(request);
      const aterm = Buffer.from([0, 1, 2, 255, 0x44]);
      w.keep({ hash: "h1", name: "a.drv", aterm });
      w.flush();
      const kept = log.drvTexts(w.runId).get("h1");
      expect(Buffer.isBuffer(kept?.aterm)).toBe(true);
      expect(kept?.aterm).toEqual(aterm);
      w.end(0);
    } finally {
      log.close();
    }
  });

  it("stops recording, once and without hanging, when the log cannot be written", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      const w = log.begin(request);
      const failures: string[] = [];
      w.onFailure = (e) => failures.push(e.message);
      const e = (seq: number) => note(seq, "m");
      // The table the writer writes into goes away under it.
      log.db.exec("DROP TABLE batches");
      w.append(e(1));
      w.flush();
      w.append(e(2));
      w.flush();
      const t0 = performance.now();
      w.end(1);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatch(/no such table: batches/);
      expect(log.run(w.runId).exitCode).toBe(1);
    } finally {
      log.close();
    }
  });

  test.prop([fc.nat({ max: 100000 }), fc.boolean()])("parses retention", (k, days) => {
    expect(parseRetention(`${k}${days ? "d" : ""}`)).toEqual(
      days ? { count: Number.MAX_SAFE_INTEGER, days: k } : { count: k },
    );
  });

  it("keeps a batch of a few lines as text, not compressed", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      const w = log.begin(request);
      w.append(note(1, "short"));
      w.flush();
      const row = log.db.prepare("SELECT lines FROM batches").get() as { lines: unknown };
      expect(typeof row.lines).toBe("string");
      expect(log.events(w.runId).map((x) => (x as { message?: string }).message)).toEqual([
        "short",
      ]);
      w.end(0);
    } finally {
      log.close();
    }
  });

  it("stores batches compressed and still reads batches stored deflated or as text", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      const w = log.begin(request);
      const e = (seq: number) => note(seq, "m".repeat(4000));
      w.append(e(1));
      w.flush();
      const row = log.db.prepare("SELECT lines, enc FROM batches").get() as {
        lines: unknown;
        enc: number;
      };
      expect(Buffer.isBuffer(row.lines)).toBe(true);
      expect((row.lines as Buffer).length).toBeLessThan(200);
      expect(row.enc).toBe(2);
      // Batches as earlier versions wrote them: deflated, and plain text lines.
      const old = (seq: number, message: string) =>
        `goal.note\t1\t${seq}\t${seq}\t${1e12}\t${JSON.stringify({ message })}`;
      const insert = log.db.prepare("INSERT INTO batches (key, last, lines) VALUES (?, ?, ?)");
      insert.run(w.runId * 2 ** 32 + 2, 2, deflateRawSync(old(2, "deflated")));
      insert.run(w.runId * 2 ** 32 + 3, 3, old(3, "text"));
      expect(log.events(w.runId).map((x) => (x as { message?: string }).message)).toEqual([
        "m".repeat(4000),
        "deflated",
        "text",
      ]);
      w.end(0);
    } finally {
      log.close();
    }
  });

  for (const version of [4, 5])
    it(`takes over a version ${version} log, its runs and their .drv texts readable`, () => {
      const dir = fresh();
      let log = RunLog.open(dir);
      const w = log.begin(request);
      w.end(3);
      // As that version left it: texts shared between runs; in version 4, no enc column either.
      log.db.exec("DROP TABLE drv_texts");
      if (version === 4) log.db.exec("ALTER TABLE batches DROP COLUMN enc");
      log.db
        .prepare("INSERT INTO batches (key, last, lines) VALUES (?, ?, ?)")
        .run(
          w.runId * 2 ** 32 + 1,
          1,
          deflateRawSync(`run.ended\t\t1\t5\t${1e12}\t{"exitCode":3}`),
        );
      log.db.prepare("INSERT INTO drvs VALUES ('h', 'a.drv', ?)").run(Buffer.from("Derive"));
      log.db.prepare("INSERT INTO run_drvs VALUES (?, 'h')").run(w.runId);
      log.db.pragma(`user_version = ${version}`);
      log.close();
      log = RunLog.open(dir);
      try {
        expect(log.db.pragma("user_version", { simple: true })).toBe(6);
        expect(log.events(w.runId)).toEqual([
          { type: "run.ended", seq: 1, mono: 5, wall: 1e12, exitCode: 3 },
        ]);
        expect(log.run(w.runId).exitCode).toBe(3);
        expect(log.drvTexts(w.runId).get("h")?.aterm.toString()).toBe("Derive");
        // New runs keep their texts in the new table.
        const w2 = log.begin(request);
        w2.keep({ hash: "h2", name: "b.drv", aterm: Buffer.from("Derive2") });
        w2.end(0);
        expect([...log.drvTexts(w2.runId).keys()]).toEqual(["h2"]);
        // Pruning the old run takes its shared text with it; the new run's stays. (A count of 2
        // keeps one: pruning leaves room for the run about to begin.)
        expect(log.prune({ count: 2 })).toBe(1);
        expect(log.db.prepare("SELECT COUNT(*) FROM drvs").pluck().get()).toBe(0);
        expect(log.db.prepare("SELECT COUNT(*) FROM run_drvs").pluck().get()).toBe(0);
        expect(log.drvTexts(w2.runId).size).toBe(1);
      } finally {
        log.close();
      }
    });

  it("refuses a retention it cannot read", () => {
    for (const bad of ["", "x", "-1", "3w", "1.5"])
      expect(() => parseRetention(bad)).toThrow(RetentionError);
  });

  it("prunes old runs and their .drv texts", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      for (let i = 0; i < 4; i++) {
        const w = log.begin(request, undefined, { count: 2 });
        w.keep({ hash: `h${i}`, name: "x", aterm: Buffer.from(`Derive${i}`) });
        w.keep({ hash: "shared", name: "y", aterm: Buffer.from("Derive") });
        w.append({ seq: 1, mono: 0, wall: 0, type: "run.ended", exitCode: 0 });
        w.end(0);
      }
      expect(log.runs().map((r) => r.id)).toEqual([3, 4]);
      expect(log.drvTexts(1).size).toBe(0);
      expect(log.drvTexts(4).get("h3")?.aterm.toString()).toBe("Derive3");
      expect(log.drvTexts(3).get("shared")).toBeDefined();
      expect(log.drvTexts(4).get("shared")).toBeDefined();
      const texts = log.db.prepare("SELECT COUNT(*) FROM drv_texts").pluck().get();
      expect(texts).toBe(4);
      expect(log.events(1)).toEqual([]);
      expect(() => log.run(1)).toThrow(/there is no run 1/);
    } finally {
      log.close();
    }
  });

  it("keeps every run when told not to prune, and prunes them all at the next run that does", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      for (let i = 0; i < 4; i++) {
        log.begin(request, undefined, { count: 2 }, { prune: i === 0 }).end(0);
      }
      expect(log.runs().map((r) => r.id)).toEqual([1, 2, 3, 4]);
      log.begin(request, undefined, { count: 2 }).end(0);
      expect(log.runs().map((r) => r.id)).toEqual([4, 5]);
    } finally {
      log.close();
    }
  });

  it("says what to do with a damaged log", () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(
      runLogFile(dir),
      "this is not a database, just text long enough to look like one",
    );
    expect(() => RunLog.open(dir)).toThrow(RunLogError);
    expect(() => RunLog.open(dir)).toThrow(/cannot open the run log .*runs\.sqlite/);
  });

  it("a build whose log cannot be written still builds, and says it is not recorded", () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(runLogFile(dir), "damaged".repeat(200));
    const drv = join(root, `ok-${n}.json`);
    writeFileSync(
      drv,
      JSON.stringify({ builder: "/bin/sh", args: ["-c", "echo ok > $out"], env: { name: "ok" } }),
    );
    const r = runCli(["build", drv], { env: { NIXSTATE_STATE_DIR: dir, NIXSTATE_STORE_DIR: "" } });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: this run is not recorded: cannot open the run log/);
    expect(r.stdout.toString()).toMatch(/-ok\n$/);
  });
});

describe("run log, failure paths", () => {
  it("never prunes a run that is still being written", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      const running = log.begin(request);
      running.append({ seq: 1, mono: 0, wall: 0, type: "run.ended", exitCode: 0 });
      running.flush();
      const next = log.begin(request, undefined, { count: 1 });
      next.end(0);
      // This process is alive and the first run has not ended: it stays, with its events.
      expect(log.runs().map((r) => [r.id, r.state])).toEqual([
        [running.runId, "running"],
        [next.runId, "ended"],
      ]);
      expect(log.events(running.runId)).toHaveLength(1);
      running.end(0);
      log.begin(request, undefined, { count: 1 }).end(0);
      expect(log.runs().map((r) => r.id)).toEqual([next.runId + 1]);
    } finally {
      log.close();
    }
  });

  it("an event JSON cannot hold stops the recording, and the run still ends", () => {
    const dir = fresh();
    const log = RunLog.open(dir);
    try {
      const w = log.begin(request);
      const failures: string[] = [];
      w.onFailure = (e) => failures.push(e.message);
      w.append({ seq: 1, mono: 0, wall: 0, type: "run.ended", exitCode: 0 });
      const cyclic: Record<string, unknown> = { seq: 2, mono: 0, wall: 0, type: "goal.waits" };
      cyclic.self = cyclic;
      w.append(cyclic as unknown as RunEvent);
      w.append({ seq: 3, mono: 0, wall: 0, type: "run.ended", exitCode: 0 });
      w.end(7);
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatch(/circular/i);
      const run = log.run(w.runId);
      expect(run.state).toBe("ended");
      expect(run.exitCode).toBe(7);
    } finally {
      log.close();
    }
  });
});
