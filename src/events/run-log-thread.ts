// The run log's writer thread. Compressing a batch and committing it cost the main thread, which
// drives every goal of a build, about as much as building the batch's lines; here the main thread
// only hands each batch over (one string) and the thread writes it through its own connection to
// runs.sqlite. `sync` blocks until everything handed over is committed, so a flush still means
// "on disk" to callers (the run's end, tests). A thread's failure stops recording, never the build.
import { createRequire } from "node:module";
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from "node:worker_threads";
import { type BatchRows, writeBatchRows } from "./batch-rows.ts";

/** Slots of the shared counters. */
const COMMITTED = 0;
const FAILED = 1;
const CLOSED = 2;

export class RunLogThreadError extends Error {
  override name = "RunLogThreadError";
}

interface ThreadData {
  file: string;
  sqlite: string;
  counters: SharedArrayBuffer;
  errors: MessagePort;
  level: number;
}

/**
 * The thread's whole program. It runs from its source text (`eval`), so it uses only its
 * parameters: the same source works under tsx and in the bundle.
 */
function threadMain(
  data: ThreadData,
  port: import("node:worker_threads").MessagePort,
  load: (id: string) => unknown,
  write: typeof writeBatchRows,
): void {
  const Database = load(data.sqlite) as typeof import("better-sqlite3");
  const { deflateRawSync } = load("node:zlib") as typeof import("node:zlib");
  const counters = new Int32Array(data.counters);
  const deflate = (text: string) => deflateRawSync(text, { level: data.level });
  let db: import("better-sqlite3").Database | undefined;
  const fail = (e: unknown) => {
    data.errors.postMessage(e instanceof Error ? e.message : String(e));
    Atomics.store(counters, 1, 1);
    Atomics.notify(counters, 0);
  };
  port.on("message", (msg: { rows?: BatchRows; n?: number; close?: boolean }) => {
    if (msg.close) {
      try {
        db?.close();
      } catch {}
      Atomics.store(counters, 2, 1);
      Atomics.notify(counters, 2);
      port.close();
      return;
    }
    if (Atomics.load(counters, 1) === 1) return;
    try {
      if (!db) {
        db = new Database(data.file, { timeout: 10_000 });
        db.pragma("synchronous = OFF");
      }
      const rows = msg.rows!;
      for (const d of rows.drvs) d.aterm = Buffer.from(d.aterm);
      write(db, rows, deflate);
      Atomics.store(counters, 0, msg.n!);
      Atomics.notify(counters, 0);
    } catch (e) {
      fail(e);
    }
  });
}

// tsx compiles with esbuild's keepNames, which wraps functions in a module-level `__name`.
const SOURCE = `
const __name = (f) => f;
const { parentPort, workerData } = require("node:worker_threads");
const writeBatchRows = ${writeBatchRows.toString()};
(${threadMain.toString()})(workerData, parentPort, require, writeBatchRows);
`;

export class RunLogThread {
  private readonly worker: Worker;
  private readonly counters: Int32Array;
  private readonly errors: MessagePort;
  private posted = 0;
  private error: string | undefined;

  constructor(file: string, level: number) {
    const shared = new SharedArrayBuffer(3 * 4);
    this.counters = new Int32Array(shared);
    const { port1, port2 } = new MessageChannel();
    this.errors = port1;
    const data: ThreadData = {
      file,
      sqlite: createRequire(import.meta.url).resolve("better-sqlite3"),
      counters: shared,
      errors: port2,
      level,
    };
    this.worker = new Worker(SOURCE, {
      eval: true,
      workerData: data,
      transferList: [port2],
      // It holds one batch at a time (at most a few MB): a small heap keeps the build's
      // footprint down (V8's defaults would let it grow like the main thread's).
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
    });
    // A build that ends without closing the log (a crash) must still exit.
    this.worker.unref();
    this.errors.unref();
    this.worker.on("error", (e) => {
      this.error ??= e.message;
      Atomics.store(this.counters, FAILED, 1);
    });
  }

  /** Hand one flush over; returns at once. */
  post(rows: BatchRows): void {
    this.worker.postMessage({ rows, n: ++this.posted });
  }

  /** Why the thread stopped writing, if it did. */
  failure(): string | undefined {
    if (Atomics.load(this.counters, FAILED) === 1) {
      const m = receiveMessageOnPort(this.errors);
      this.error ??= m ? String(m.message) : "the run log's writer thread stopped";
    }
    return this.error;
  }

  /** Wait until everything posted is committed (or the thread failed). */
  sync(timeoutMs = 30_000): void {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(this.counters, COMMITTED);
      if (done >= this.posted) return;
      if (this.failure() !== undefined) throw new RunLogThreadError(this.error!);
      const left = until - performance.now();
      if (left <= 0)
        throw new RunLogThreadError(
          `the run log's writer thread did not commit within ${timeoutMs / 1000} s`,
        );
      Atomics.wait(this.counters, COMMITTED, done, Math.min(left, 1000));
    }
  }

  /** Close the thread's connection and end it (after `sync`). */
  close(timeoutMs = 5_000): void {
    this.worker.postMessage({ close: true });
    const until = performance.now() + timeoutMs;
    while (Atomics.load(this.counters, CLOSED) === 0 && !this.error) {
      const left = until - performance.now();
      if (left <= 0) break;
      Atomics.wait(this.counters, CLOSED, 0, Math.min(left, 100));
    }
    void this.worker.terminate();
    this.errors.close();
  }
}
