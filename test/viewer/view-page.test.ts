// `nixstate view` as a person sees it, in headless Chromium with the network blocked: a finished
// run written as one file and opened from disk (goals drawn in their states, the timeline redraws
// them, a failed goal's log tail, the statechart's active state), and a build followed live from
// `nixstate view`'s server while it runs. Screenshots go to test-output/viewer/.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunEvent } from "../../src/events/run-event.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "../cli/run-cli.ts";
import { writeJsonDag } from "../events/json-dag.ts";
import { repoRoot } from "../vectors.ts";
import { haveChromium, launch, lockedPage } from "./browser.ts";

const shots = join(repoRoot, "test-output/viewer");
const root = mkdtempSync(join(tmpdir(), "nixstate-view-page-"));
let browser: Browser;
const children: ChildProcess[] = [];

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  if (haveChromium()) browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

const goal = (page: Page, name: string) => page.locator(`g.goal[data-key*="-${name}.drv"]`);
const attr = (page: Page, name: string, a: string) => goal(page, name).getAttribute(`data-${a}`);
/** Moves the timeline as a person dragging the slider would; the page redraws on the next frame. */
async function seek(page: Page, seq: number): Promise<void> {
  await page.locator("#seq").fill(String(seq));
  await page.waitForFunction(
    `document.querySelector("#pos").textContent.startsWith("event ${seq} /")`,
  );
}
const count = async (page: Page, what: string) =>
  Number.parseInt((await page.locator(`[data-count="${what}"]`).textContent()) ?? "", 10);
const nixstate = (...args: string[]) => [join(repoRoot, "bin/nixstate.js"), ...args];

describe.skipIf(!haveChromium())("nixstate view in a browser", () => {
  it("shows a finished run from one self-contained file", async () => {
    const env = { NIXSTATE_STATE_DIR: join(root, "done"), NIXSTATE_STORE_DIR: "" };
    const cli = (...args: string[]) => runCli(args, { env, cwd: repoRoot });
    expect(cli("build", "-k", "examples/broken/poster.json").status).toBe(100);
    const file = join(root, "run.html");
    const wrote = cli("view", "-o", file);
    expect(wrote.stderr).toBe("");
    expect(wrote.stdout.toString()).toBe(`wrote run 1 (3 goals) to ${file}\n`);

    // Seqs to move the timeline to, from the log itself.
    const log = RunLog.open(env.NIXSTATE_STATE_DIR);
    const events = log.events(1);
    log.close();
    const of = (name: string) => (e: RunEvent) =>
      "goal" in e && e.goal.endsWith(`-${name}.drv#normal`);
    const greetingBuilds = events.find((e) => e.type === "builder.started" && of("greeting")(e))!;
    const shoutWaiting = events.find(
      (e) =>
        e.type === "goal.transition" &&
        of("shout")(e) &&
        JSON.stringify(e.state).includes("waiting"),
    )!;

    const { page, blocked, errors } = await lockedPage(browser, "file://");
    await page.goto(`file://${file}`);
    await page.waitForSelector("body[data-ready]");

    // The end of the run: every goal in its outcome, the root cause marked.
    await expect(page.locator("g.goal").count()).resolves.toBe(3);
    expect(await attr(page, "greeting", "outcome")).toBe("built");
    expect(await attr(page, "shout", "outcome")).toBe("failed");
    expect(await attr(page, "poster", "outcome")).toBe("dependencyFailed");
    expect(await goal(page, "shout").getAttribute("class")).toMatch(/\broot\b/);
    expect(await goal(page, "shout").locator("text.sub").textContent()).toBe("failed (root cause)");
    expect([await count(page, "done"), await count(page, "failed")]).toEqual([1, 2]);

    // Back to when greeting's builder ran: it builds, the other two wait.
    await seek(page, greetingBuilds.seq);
    expect(await attr(page, "greeting", "phase")).toBe("building");
    expect(await attr(page, "shout", "phase")).toBe("waiting");
    expect(await attr(page, "poster", "phase")).toBe("waiting");
    expect([await count(page, "waiting"), await count(page, "failed")]).toEqual([2, 0]);
    await expect(page.locator("#pos").textContent()).resolves.toMatch(
      new RegExp(`^event ${greetingBuilds.seq} / \\d+ · \\+\\d`),
    );

    // The failed goal: its log tail, and its statechart at its state then.
    await goal(page, "shout").click();
    await expect(page.locator("#detail h2").textContent()).resolves.toBe("shout");
    await expect(page.locator("#detail pre.log").textContent()).resolves.toMatch(
      /expected 'HELLO, NIXSTATE' in .*-greeting, got: HELLO, WORLD/,
    );
    const active = () => page.locator(".chart-host .state.active").getAttribute("data-state");
    await expect(active()).resolves.toBe("inputsRealised.waiting");
    await expect(
      page.locator(".chart-host .state.active-parent").getAttribute("data-state"),
    ).resolves.toBe("inputsRealised");
    await expect(page.locator("#detail tr.current").textContent()).resolves.toContain(
      `#${shoutWaiting.seq}`,
    );

    // Step back one kept event at a time, then to the end.
    await page.locator("#prev").click();
    await expect(page.locator("#seq").inputValue()).resolves.not.toBe(String(greetingBuilds.seq));
    await page.locator("#end").click();
    await expect(active()).resolves.toBe("permanentFailure");
    expect(await attr(page, "shout", "phase")).toBe("ended");
    await page.screenshot({ path: join(shots, "finished-run.png") });

    // Playing from the start moves the timeline forward by itself; a second click pauses.
    await seek(page, 0);
    expect(await attr(page, "greeting", "phase")).toBe("absent");
    await page.locator("#play").click();
    await page.waitForFunction(`Number(document.querySelector("#seq").value) > 10`);
    await page.locator("#play").click();
    const paused = await page.locator("#seq").inputValue();
    await page.waitForTimeout(300);
    await expect(page.locator("#seq").inputValue()).resolves.toBe(paused);

    expect(errors).toEqual([]);
    expect(blocked).toEqual([]);
  });

  it("follows a build live from nixstate view's server", async () => {
    const stateDir = join(root, "live");
    const env = { ...process.env, NIXSTATE_STATE_DIR: stateDir, NIXSTATE_STORE_DIR: "" };
    const files = writeJsonDag(join(root, "dag"), 12, {
      sleep: (i) => (i === 0 ? 1.5 : 1),
      fail: (i) => i === 9,
    });
    const build = spawn(process.execPath, nixstate("build", "-k", "-j2", ...files), {
      env,
      stdio: "ignore",
    });
    children.push(build);
    const ended = new Promise<number | null>((resolve) => build.on("exit", resolve));
    // The run is in the log once the build has started.
    for (let i = 0; ; i++) {
      try {
        const log = RunLog.open(stateDir);
        const has = log.latest() !== undefined && log.extent(1).events > 0;
        log.close();
        if (has) break;
      } catch {}
      if (i > 100) throw new Error("the build did not start a run");
      await new Promise((r) => setTimeout(r, 100));
    }

    const view = spawn(process.execPath, nixstate("view", "--port", "0"), { env });
    children.push(view);
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      view.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) resolve(m[1]!);
      });
      view.on("exit", (code) => reject(new Error(`nixstate view exited (${code}): ${out}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    const { page, blocked, errors } = await lockedPage(browser, url);
    await page.goto(url);
    await page.waitForSelector("body[data-ready]");
    await expect(page.locator("#live").isVisible()).resolves.toBe(true);
    await expect(page.locator("#run .runstate").textContent()).resolves.toBe("running");

    // Pushes arrive while the build goes on: some goals built, others still to come.
    // (Conditions as page-side expressions: this file is typed for Node, without the DOM.)
    await page.waitForFunction(
      `Number(document.body.dataset.updates ?? 0) > 0 &&
       document.querySelectorAll('g.goal[data-outcome="built"]').length >= 3 &&
       document.querySelectorAll('g.goal:not([data-phase="ended"])').length >= 3`,
      undefined,
      { timeout: 60_000, polling: 100 },
    );
    const waiting = page.locator('g.goal[data-phase="waiting"]').first();
    if ((await waiting.count()) > 0) await waiting.click();
    await page.screenshot({ path: join(shots, "live-run.png") });

    // The page follows the run to its end.
    await page.waitForFunction(
      `document.querySelector("#run .runstate")?.textContent?.startsWith("ended")`,
      undefined,
      { timeout: 60_000, polling: 200 },
    );
    expect(await ended).toBe(100);
    await expect(page.locator('g.goal:not([data-phase="ended"])').count()).resolves.toBe(0);
    expect(await attr(page, "n9", "outcome")).toBe("failed");
    expect(await count(page, "failed")).toBeGreaterThanOrEqual(1);
    await page.screenshot({ path: join(shots, "live-run-ended.png") });

    view.kill("SIGINT");
    await new Promise((r) => view.on("exit", r));
    expect(errors).toEqual([]);
    expect(blocked).toEqual([]);
  }, 120_000);
});
