// `nixstate build --inspect` and `replay --inspect` seen from a receiver built on @statelyai/inspect's
// createWebSocketReceiver, through a loopback relay that forwards as createInspectorServer does:
// the actor tree, snapshots and events between goals, nothing missing from a slow or dropped
// connection (checked against the run log), a closed port, and the README's watcher.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createWebSocketReceiver } from "@statelyai/inspect";
import { afterAll, describe, expect, it } from "vitest";
import {
  type ActorFrame,
  causeGoal,
  type EventFrame,
  type InspectFrame,
  InspectFrames,
  type SnapshotFrame,
} from "../../src/events/inspect-frames.ts";
import type { RunEvent } from "../../src/events/run-event.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { writeJsonDag } from "../events/json-dag.ts";
import { repoRoot } from "../vectors.ts";
import { startRelay } from "./inspect-relay.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-inspect-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const stateDir = () => join(root, `state-${n++}`);

interface AsyncCliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run `nixstate` without blocking this process (the relay and receiver live here). */
function runCliAsync(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const start = performance.now();
  const child = spawn(process.execPath, [join(repoRoot, "bin/nixstate.js"), ...args], {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const done = new Promise<AsyncCliResult>((resolve) =>
    child.on("close", (status) =>
      resolve({ status, stdout, stderr, ms: performance.now() - start }),
    ),
  );
  return { child, done };
}

/** A receiver as a user of the package writes one; `slowMs` blocks its thread at each frame. */
function receive(url: string, slowMs = 0): InspectFrame[] {
  const frames: InspectFrame[] = [];
  createWebSocketReceiver({ server: url }).subscribe((f) => {
    frames.push(f as unknown as InspectFrame);
    const until = performance.now() + slowMs;
    while (performance.now() < until) {
      // a receiver busy with each frame
    }
  });
  return frames;
}

/** Frames by `seq`, each once (a reconnecting sender resends what was not acknowledged). */
function bySeq(frames: InspectFrame[]): InspectFrame[] {
  const seen = new Map<number, InspectFrame>();
  for (const f of frames) if (!seen.has(f.seq)) seen.set(f.seq, f);
  return [...seen.values()].sort((a, b) => a.seq - b.seq);
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

function runEvents(state: string): RunEvent[] {
  const log = RunLog.open(state);
  try {
    return log.events(log.latest()!.id);
  } finally {
    log.close();
  }
}

function expectedFrames(events: RunEvent[]): InspectFrame[] {
  const f = new InspectFrames();
  return events.flatMap((e) => f.frames(e));
}

/** 14 nodes, n5 fails: n10 and n11 fail because of it (-k builds the rest). */
const dag = (dir: string) => writeJsonDag(dir, 14, { fail: (i) => i === 5, multi: (i) => i === 3 });

/** The receiver's view checked against the run log, goal by goal. */
function checkAgainstLog(frames: InspectFrame[], events: RunEvent[]): void {
  const got = bySeq(frames);
  // No gap: frames 1..N, N as many as the log gives.
  expect(got.map((f) => f.seq)).toEqual(got.map((_, i) => i + 1));
  expect(got).toEqual(expectedFrames(events));

  const rootId = got[0]!.sessionId;
  const id = (key: string) => `${rootId}/${key}`;
  const actors = new Map(
    got.filter((f): f is ActorFrame => f.type === "@xstate.actor").map((a) => [a.sessionId, a]),
  );
  const created = events.filter((e) => e.type === "goal.created");
  expect(actors.size).toBe(created.length + 1);
  for (const c of created) {
    const parent = causeGoal(c.cause);
    expect(actors.get(id(c.goal))?.parentId).toBe(parent === undefined ? rootId : id(parent));
  }
  // Each goal's snapshots: its transitions in order, then its end.
  for (const c of created) {
    const states = got
      .filter(
        (f): f is SnapshotFrame => f.type === "@xstate.snapshot" && f.sessionId === id(c.goal),
      )
      .filter((f) => f.event.type !== "goal.done")
      .map((f) => f.snapshot.value);
    const transitions = events
      .filter((e) => e.type === "goal.transition" && e.goal === c.goal)
      .map((e) => (e as { state: unknown }).state);
    expect(states).toEqual(transitions);
    const done = events.find((e) => e.type === "goal.done" && e.goal === c.goal) as
      | { status: string }
      | undefined;
    const last = got.filter((f) => f.sessionId === id(c.goal)).at(-1) as SnapshotFrame;
    expect(last.snapshot.status).toBe(
      done === undefined
        ? "active"
        : /^(Built|Substituted|AlreadyValid)$/.test(done.status)
          ? "done"
          : "error",
    );
  }
  // Every goal event the inspector shows has its frames.
  const shown = new Set(["goal.created", "goal.transition", "goal.done", "goal.stopped"]);
  for (const t of ["goal.waits", "goal.woken", "goal.wants", "goal.reused"]) shown.add(t);
  const framed = new Set(got.map((f) => f.runSeq));
  const goalEvents = events.filter((e) => shown.has(e.type));
  expect(goalEvents.filter((e) => !framed.has(e.seq))).toEqual([]);
  // Every wait is an event from the waiting goal to the one it waits for.
  const sent = got
    .filter((f): f is EventFrame => f.type === "@xstate.event")
    .map((f) => `${f.event.type} ${f.sourceId} ${f.sessionId}`);
  const waits = events.flatMap((e) =>
    e.type === "goal.waits" ? e.on.map((w) => `goal.waits ${id(e.goal)} ${id(w)}`) : [],
  );
  expect(waits.length).toBeGreaterThan(5);
  for (const w of waits) expect(sent).toContain(w);
}

/** `nixstate build -k -j2 --inspect=URL` of a fresh DAG with a failure: it fails (100), unwarned. */
async function buildInspected(url: string, name: string) {
  const s = stateDir();
  const b = await runCliAsync([
    "build",
    "-k",
    "-j2",
    "--state-dir",
    s,
    `--inspect=${url}`,
    ...dag(join(root, name)),
  ]).done;
  expect(b.stderr).not.toMatch(/warning/);
  expect(b.status).toBe(100);
  return { s, b };
}

describe("nixstate build --inspect", () => {
  it("shows the run to a receiver: a goal actor each under the goal that asked for it, its snapshots, the waits", async () => {
    const relay = await startRelay();
    const frames = receive(relay.url);
    await relay.clients(1);
    const { s } = await buildInspected(relay.url, "dag-a");
    const events = runEvents(s);
    const total = expectedFrames(events).length;
    await until(() => frames.length >= total, 5000);
    checkAgainstLog(frames, events);
    expect(frames.length).toBe(total);

    // replay --inspect sends the same frames; --speed 0 without waiting.
    const live = [...frames];
    const replayed = receive(relay.url);
    await relay.clients(2);
    const r = await runCliAsync([
      "replay",
      "--state-dir",
      s,
      `--inspect=${relay.url}`,
      "--speed",
      "0",
    ]).done;
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(`run 1: ${total} of ${total} frames sent to the inspector\n`);
    await until(() => frames.length >= 2 * total, 5000);
    expect(frames.slice(total)).toEqual(live);
    // The relay gave the second receiver the last 200 frames of the build first.
    expect(replayed.slice(-total)).toEqual(live);
    // Paced: at --speed 2 the replay takes at least half the recorded time.
    const recorded = events.at(-1)!.mono - events[0]!.mono;
    const paced = await runCliAsync([
      "replay",
      "--state-dir",
      s,
      `--inspect=${relay.url}`,
      "--speed",
      "2",
    ]).done;
    expect(paced.status).toBe(0);
    expect(paced.ms).toBeGreaterThan(recorded / 2);
    // --until: the frames of the run's first events.
    const k = events[Math.floor(events.length / 2)]!.seq;
    const upTo = live.filter((f) => f.runSeq <= k).length;
    expect(upTo).toBeLessThan(total);
    const cut = await runCliAsync([
      "replay",
      "--state-dir",
      s,
      `--inspect=${relay.url}`,
      "--speed",
      "0",
      "--until",
      String(k),
    ]).done;
    expect(cut.stdout).toBe(`run 1: ${upTo} of ${upTo} frames sent to the inspector\n`);
    await relay.close();
  }, 60_000);

  it("loses nothing to a slow relay and receiver, and the build does not wait for them", async () => {
    const pauseMs = 4000;
    const relay = await startRelay({ pauseSenderMs: pauseMs });
    const frames = receive(relay.url, 2);
    await relay.clients(1);
    const { s, b } = await buildInspected(relay.url, "dag-b");
    const events = runEvents(s);
    // The build's own work ended before the relay read anything past the first frame.
    expect(events.at(-1)!.mono).toBeLessThan(pauseMs);
    // ... and its process waited at its end for the frames to go.
    expect(b.ms).toBeGreaterThan(pauseMs);
    await until(() => frames.length >= expectedFrames(events).length, 10_000);
    checkAgainstLog(frames, events);
    await relay.close();
  }, 60_000);

  it("connects again when the connection drops and sends what was not acknowledged", async () => {
    const relay = await startRelay({ dropSenderAfter: 25 });
    const frames = receive(relay.url);
    await relay.clients(1);
    const { s } = await buildInspected(relay.url, "dag-c");
    expect(relay.connections).toBeGreaterThanOrEqual(3);
    const events = runEvents(s);
    await until(() => bySeq(frames).length >= expectedFrames(events).length, 10_000);
    checkAgainstLog(frames, events);
    await relay.close();
  }, 60_000);

  it("builds with one warning when nobody listens", async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, "127.0.0.1", () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const s = stateDir();
    const files = writeJsonDag(join(root, "dag-d"), 4);
    const b = await runCliAsync([
      "build",
      "--state-dir",
      s,
      `--inspect=ws://127.0.0.1:${port}`,
      files[3]!,
    ]).done;
    expect(b.status).toBe(0);
    expect(b.stdout).toMatch(/-n3\n$/);
    const warnings = b.stderr.split("\n").filter((l) => /warning/.test(l));
    expect(warnings).toEqual([
      `warning: cannot reach the XState inspector at ws://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}); the build goes on and keeps trying; 'nixstate replay 1 --inspect=ws://127.0.0.1:${port}' sends the run again`,
    ]);
    expect(b.ms).toBeLessThan(8000);

    // A replay has nothing to do without an inspector: it says so and fails.
    const r = await runCliAsync(["replay", "--state-dir", s, `--inspect=ws://127.0.0.1:${port}`])
      .done;
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `error: cannot reach the XState inspector at ws://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}): start one first (see the README, 'Watching a build in the XState inspector')\n`,
    );
  }, 30_000);
});

describe("README: watching a build in the XState inspector", () => {
  it("prints the run as examples/inspect/watch.mjs receives it", async () => {
    const watch = spawn(process.execPath, [join(repoRoot, "examples/inspect/watch.mjs"), "0"], {
      cwd: repoRoot,
    });
    let out = "";
    watch.stdout.on("data", (d) => {
      out += d;
    });
    try {
      await until(() => /listening on/.test(out), 10_000);
      const url = /listening on (ws:\S+)/.exec(out)![1]!;
      const env = { NIXSTATE_STATE_DIR: join(root, "readme"), NIXSTATE_STORE_DIR: "" };
      const b = await runCliAsync(
        ["build", "-k", "examples/broken/poster.json", `--inspect=${url}`],
        {
          env,
          cwd: repoRoot,
        },
      ).done;
      expect(b.status).toBe(100);
      await until(() => /worker: ended \[error\]/.test(out), 5000);
      const lines = out.split("\n");
      // The README's lines, in its order (the lines between them left out there as '…').
      const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
      const section = readme.slice(readme.indexOf("### Watching a build in the XState inspector"));
      const shown = /```console\n([\s\S]*?)```/
        .exec(section)![1]!
        .split("\n")
        .filter((l) => l && !/^(\$|…|listening)/.test(l));
      expect(shown.length).toBeGreaterThan(10);
      let at = 0;
      for (const l of shown) {
        const found = lines.indexOf(l, at);
        expect(found, `README line '${l}'`).toBeGreaterThanOrEqual(at);
        at = found + 1;
      }
      expect(lines).toContain("+ greeting (asked by shout)");
      expect(lines).toContain("greeting: built [done]");
    } finally {
      watch.kill();
    }
  }, 30_000);
});
