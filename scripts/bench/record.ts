// `npm run bench -- record [--n 1000] [--rounds 5] [-j 2]`: what recording a run costs. Each
// round writes a fresh layered DAG once and builds it from scratch four times with
// `nixstate build`, the run log on and off in the order on, off, off, on (the next round off,
// on, on, off), each build in a fresh copy of the round's state directory. Prints the median
// of the rounds' overheads with a bootstrap interval, the ratio of the medians, and the log's
// size per goal.
import { spawnSync } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nixSystem } from "../../src/builder/build-settings.ts";
import type { RunEvent } from "../../src/events/run-event.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { argsOf, median, type Run, timed } from "./bench-process.ts";
import { writeDag } from "./nixstate-dag.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");

/**
 * What writing `events` costs this process: open, append, close, with a batch every ~1 % of the
 * events, each serialised, compressed and committed as a run's are (the derivation texts a run
 * keeps are left out).
 */
function writerCost(dir: string, events: RunEvent[]): number {
  const t0 = performance.now();
  const log = RunLog.open(dir);
  const w = log.begin({ command: "build", targets: [], options: {}, cwd: "/" });
  // As many batches as a run's: one every 50 ms, i.e. every ~1/100 of a 5 s run's events.
  const every = Math.max(1, Math.floor(events.length / 100));
  events.forEach((e, i) => {
    w.append(e);
    if (i % every === every - 1) w.flush();
  });
  w.end(0);
  log.close();
  const ms = performance.now() - t0;
  deleteTree(dir);
  return ms;
}

/**
 * The 5th and 95th percentiles of the median of `xs` resampled with replacement (a fixed
 * seed, so a report can be reproduced from its rounds).
 */
export function bootstrapMedian(xs: number[], resamples = 4000): [number, number] {
  let seed = 0x9e3779b9;
  const random = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const medians: number[] = [];
  for (let r = 0; r < resamples; r++) {
    const sample = xs.map(() => xs[Math.floor(random() * xs.length)]!);
    medians.push(median(sample));
  }
  medians.sort((a, b) => a - b);
  return [medians[Math.floor(resamples * 0.05)]!, medians[Math.floor(resamples * 0.95)]!];
}

/** Copy a state directory as it is (modes and all; store paths are read-only). */
function copyTree(from: string, to: string): void {
  const r = spawnSync("cp", ["-a", from, to]);
  if (r.status !== 0) throw new Error(`cp -a ${from} ${to} failed: ${r.stderr}`);
}

export async function benchRecord(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const n = Number(arg("--n", "1000"));
  const rounds = Number(arg("--rounds", "5"));
  const j = Number(arg("-j", "2"));
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-record-"));
  const system = nixSystem();
  console.log(
    `record benchmark: N=${n}, -j${j}, ${rounds} rounds of four builds (on off off on, then off on on off)`,
  );
  const on: Run[] = [];
  const off: Run[] = [];
  const overheads: number[] = [];
  let logBytes = 0;
  let events: RunEvent[] = [];
  let goals = 0;
  // Every build runs in the same directory (store paths name it), copied afresh each time.
  const stateDir = join(root, "state");
  const template = join(root, "template");
  try {
    for (let r = 0; r < rounds; r++) {
      deleteTree(stateDir);
      const store = LocalStore.open({ stateDir });
      const drvs = writeDag(store, n, `rec${r}`, system);
      store.close();
      deleteTree(template);
      copyTree(stateDir, template);
      const order = r % 2 === 0 ? [true, false, false, true] : [false, true, true, false];
      const round = { on: 0, off: 0 };
      for (const record of order) {
        deleteTree(stateDir);
        copyTree(template, stateDir);
        const args = [join(repo, "bin/nixstate.js"), "build", `-j${j}`, "--state-dir", stateDir];
        // Earlier builds' files still being written back would slow this one down at random.
        spawnSync("sync");
        const run = await timed(
          process.execPath,
          [...args, ...(record ? [] : ["--no-record"]), ...drvs],
          process.env,
        );
        (record ? on : off).push(run);
        round[record ? "on" : "off"] += run.ms;
        if (record && r === 0 && events.length === 0) {
          const log = RunLog.open(stateDir);
          events = log.events(1);
          log.close();
          goals = events.filter((e) => e.type === "goal.created").length;
          // The database after its WAL is checkpointed into it (closing the last connection).
          logBytes = statSync(join(stateDir, "runs.sqlite")).size;
        }
      }
      // ABBA: a machine whose speed drifts during the round slows both alike.
      overheads.push((round.on / round.off - 1) * 100);
    }
    deleteTree(stateDir);
    const [a, b] = [median(on.map((x) => x.ms)), median(off.map((x) => x.ms))];
    const [lo, hi] = bootstrapMedian(overheads);
    console.log(
      `N=${n}: overhead ${median(overheads).toFixed(1)} % (median of ${rounds} rounds; 90 % interval ${lo.toFixed(1)} to ${hi.toFixed(1)} %) | record on ${(a / 1000).toFixed(2)} s, off ${(b / 1000).toFixed(2)} s, ${(((a - b) / b) * 100).toFixed(1)} % (medians of all builds) | log ${(logBytes / 1e6).toFixed(1)} MB, ${events.length} events, ${(logBytes / goals).toFixed(0)} bytes and ${(events.length / goals).toFixed(1)} events per goal`,
    );
    console.log(`  rounds' overheads (%): ${overheads.map((x) => x.toFixed(1)).join(" ")}`);
    console.log(
      `  builds (s): on ${on.map((x) => (x.ms / 1000).toFixed(2)).join(" ")} | off ${off.map((x) => (x.ms / 1000).toFixed(2)).join(" ")}`,
    );
    const w = median([0, 1, 2].map((i) => writerCost(join(root, `w${i}`), events)));
    console.log(
      `  the log writer alone (the run's events appended to a fresh log in 100 batches, opened and closed): ${w.toFixed(0)} ms = ${((w / b) * 100).toFixed(1)} % of a build without it`,
    );
    if (on.some((x) => !x.ok) || off.some((x) => !x.ok)) console.log("  (some builds failed)");
  } finally {
    deleteTree(root);
  }
}
