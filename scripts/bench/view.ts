// `npm run bench -- view [--n 10000] [-j 2] [--keep DIR]`: what the viewer costs on a big run.
// A real run of the layered benchmark DAG (N trivial /bin/sh derivations, node i depending on
// ⌊i/2⌋ and ⌊i/3⌋, every node a target) is built by `nixstate build`; then `nixstate view -o`
// writes its page (timed, and its size), and headless Chromium loads it from disk: the page's own
// performance marks give parse, layout and first-draw times; moving the timeline is timed too.
import { spawnSync } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { argsOf, timed } from "./bench-process.ts";
import { writeDag } from "./nixstate-dag.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function benchView(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const n = Number(arg("--n", "10000"));
  const j = Number(arg("-j", "2"));
  const kept = arg("--keep", "");
  const root = kept || mkdtempSync(join(tmpdir(), "nixstate-bench-view-"));
  const stateDir = join(root, "state");
  const bin = join(repo, "bin/nixstate.js");
  try {
    let log = RunLog.open(stateDir);
    const haveRun = log.latest() !== undefined;
    log.close();
    if (!haveRun) {
      const store = LocalStore.open({ stateDir });
      const drvs = writeDag(store, n, "view", nixSystem());
      store.close();
      const build = await timed(
        process.execPath,
        [bin, "build", `-j${j}`, "--state-dir", stateDir, ...drvs],
        process.env,
      );
      if (!build.ok) throw new Error("the benchmark build failed");
      console.log(`built the ${n}-goal DAG with nixstate build -j${j} in ${s(build.ms)}`);
    }
    log = RunLog.open(stateDir);
    const events = log.extent(log.latest()!.id).events;
    log.close();

    const file = join(root, "run.html");
    const t0 = performance.now();
    const gen = spawnSync(process.execPath, [bin, "view", "--state-dir", stateDir, "-o", file]);
    const genMs = performance.now() - t0;
    if (gen.status !== 0) throw new Error(`nixstate view failed: ${gen.stderr}`);
    const bytes = statSync(file).size;

    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 860 } });
      await page.route(
        (url) => url.protocol !== "file:",
        (r) => r.abort(),
      );
      const t1 = performance.now();
      await page.goto(`file://${file}`);
      await page.waitForSelector("body[data-ready]", { timeout: 120_000 });
      const openMs = performance.now() - t1;
      const marks = await page.evaluate(() =>
        Object.fromEntries(performance.getEntries().map((e) => [e.name, e.startTime + e.duration])),
      );
      const measures = await page.evaluate(() =>
        Object.fromEntries(
          performance.getEntriesByType("measure").map((e) => [e.name, e.duration]),
        ),
      );
      const goals = await page.locator("g.goal").count();
      // Moving the timeline: redraw every goal at another point, five times.
      const moveMs = (await page.evaluate(`(() => {
        const v = window.nixstateView;
        const t = performance.now();
        for (const f of [0.2, 0.4, 0.6, 0.8, 1]) v.moveTo(Math.round(v.data.lastSeq * f));
        return (performance.now() - t) / 5;
      })()`)) as number;
      // Selecting a goal: its panel and its statechart (laid out by dagre on first use).
      const t2 = performance.now();
      await page
        .locator("g.goal")
        .nth(Math.floor(n / 2))
        .click();
      await page.waitForSelector("#chart-pane .state.active");
      const selectMs = performance.now() - t2;
      await page.screenshot({ path: join(root, "view.png") });
      console.log(`view benchmark: N=${n} goals (${goals} drawn), ${events} events in the run`);
      console.log(
        `  nixstate view -o: ${s(genMs)} (process start included), page ${(bytes / 1e6).toFixed(2)} MB (${Math.round(bytes / n)} bytes a goal)`,
      );
      console.log(`  Chromium, file opened → drawn: ${s(openMs)}`);
      console.log(
        `  page marks: script start ${s(marks["view:start"] ?? 0)}, data parsed ${s(marks["view:parsed"] ?? 0)}, laid out ${s(marks["view:laid-out"] ?? 0)}, drawn ${s(marks["view:drawn"] ?? 0)} (from navigation)`,
      );
      console.log(
        `  layout + SVG build ${s(measures["view:layout"] ?? 0)}; script start → drawn ${s(measures["view:load"] ?? 0)}`,
      );
      console.log(`  timeline move (redraw all goals): ${moveMs.toFixed(0)} ms`);
      console.log(`  selecting a goal (panel and statechart drawn): ${selectMs.toFixed(0)} ms`);
      console.log(`  screenshot: ${join(root, "view.png")}`);
    } finally {
      await browser.close();
    }
  } finally {
    if (!kept) deleteTree(root);
  }
}
