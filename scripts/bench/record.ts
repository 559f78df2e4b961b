// `npm run bench -- record [--n 1000] [--rounds 5] [-j 2]`: what recording a run costs. The same
// layered DAG is built from scratch by `nixstate build` with the run log on and with
// `--no-record`, alternating, in fresh state directories; prints median wall times, the overhead
// and the log's size per goal.
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
 * events. `flush` deflates on this thread, where a run's timer-cut batches are deflated on the
 * thread pool: an upper bound of what a run's main thread spends on its log.
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

export async function benchRecord(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const n = Number(arg("--n", "1000"));
  const rounds = Number(arg("--rounds", "5"));
  const j = Number(arg("-j", "2"));
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-record-"));
  const system = nixSystem();
  console.log(`record benchmark: N=${n}, -j${j}, ${rounds} rounds (on and off alternate)`);
  const on: Run[] = [];
  const off: Run[] = [];
  let logBytes = 0;
  const writerMs: number[] = [];
  let rows = 0;
  let goals = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      for (const record of r % 2 === 0 ? [true, false] : [false, true]) {
        const stateDir = join(root, `r${r}-${record ? "on" : "off"}`);
        const store = LocalStore.open({ stateDir });
        const drvs = writeDag(store, n, `rec${r}`, system);
        store.close();
        const args = [join(repo, "bin/nixstate.js"), "build", `-j${j}`, "--state-dir", stateDir];
        // Earlier rounds' files still being written back would slow this one down at random.
        spawnSync("sync");
        const run = await timed(
          process.execPath,
          [...args, ...(record ? [] : ["--no-record"]), ...drvs],
          process.env,
        );
        (record ? on : off).push(run);
        if (record) {
          const file = join(stateDir, "runs.sqlite");
          const log = RunLog.open(stateDir);
          const events = log.events(1);
          log.close();
          rows = events.length;
          goals = events.filter((e) => e.type === "goal.created").length;
          writerMs.push(writerCost(join(root, `w${r}`), events));
          // The database after its WAL is checkpointed into it (closing the last connection).
          logBytes = statSync(file).size;
        }
        deleteTree(stateDir);
      }
    }
    const [a, b] = [median(on.map((x) => x.ms)), median(off.map((x) => x.ms))];
    // Each round builds with and without the log back to back: the median of their ratios is
    // less disturbed by a machine whose speed drifts than the ratio of the medians.
    const paired = median(on.map((x, i) => x.ms / off[i]!.ms - 1)) * 100;
    console.log(
      `N=${n}: record on ${(a / 1000).toFixed(2)} s | off ${(b / 1000).toFixed(2)} s | overhead ${(((a - b) / b) * 100).toFixed(1)} % (medians), ${paired.toFixed(1)} % (median of paired rounds) | log ${(logBytes / 1e6).toFixed(1)} MB, ${rows} events, ${(logBytes / goals).toFixed(0)} bytes and ${(rows / goals).toFixed(1)} events per goal`,
    );
    console.log(
      `  rounds: on ${on.map((x) => (x.ms / 1000).toFixed(2)).join(" ")} | off ${off.map((x) => (x.ms / 1000).toFixed(2)).join(" ")}`,
    );
    const w = median(writerMs);
    console.log(
      `  the log writer alone (the run's events appended to a fresh log in 100 batches, each deflated here, opened and closed): ${w.toFixed(0)} ms = ${((w / b) * 100).toFixed(1)} % of a run without it`,
    );
    if (on.some((x) => !x.ok) || off.some((x) => !x.ok)) console.log("  (some runs failed)");
  } finally {
    deleteTree(root);
  }
}
