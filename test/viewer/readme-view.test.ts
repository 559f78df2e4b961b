// The README's "Viewer" example, run as a user would: its commands and output read from README.md,
// the page served on the port it names (any free port here) answering on 127.0.0.1.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { runCli } from "../cli/run-cli.ts";
import { repoRoot } from "../vectors.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-readme-view-"));
afterAll(() => {
  deleteTree(root);
  rmSync(root, { recursive: true, force: true });
});

/** The README's Viewer example: each `$ nixstate …` command and the lines it prints. */
function readmeExample(): { args: string[]; output: string }[] {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Viewer"));
  const block = /```console\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error("README.md: no console example under 'Viewer'");
  const steps: { args: string[]; output: string }[] = [];
  for (const line of block[1]!.split("\n")) {
    if (line.startsWith("$ nixstate ")) steps.push({ args: line.slice(11).split(" "), output: "" });
    else if (line !== "") steps.at(-1)!.output += `${line}\n`;
  }
  return steps;
}

describe("README: the viewer", () => {
  it("writes the page and serves it as the README shows", async () => {
    const env = { NIXSTATE_STATE_DIR: join(root, "state"), NIXSTATE_STORE_DIR: "" };
    const cli = (...args: string[]) => runCli(args, { env, cwd: root });
    expect(
      runCli(["build", "-k", join(repoRoot, "examples/broken/poster.json")], { env }).status,
    ).toBe(100);

    const [write, serve] = readmeExample();
    expect(write!.args).toEqual(["view", "last", "-o", "run.html"]);
    const r = cli(...write!.args);
    expect(r.stderr).toBe("");
    expect(r.stdout.toString()).toBe(write!.output);
    const html = readFileSync(join(root, "run.html"), "utf8");
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("<title>nixstate run 1</title>");
    // Self-contained: nothing is fetched from anywhere.
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);

    expect(serve!.args.slice(0, 2)).toEqual(["view", "--port"]);
    const view = spawn(
      process.execPath,
      [join(repoRoot, "bin/nixstate.js"), "view", "--port", "0"],
      { env: { ...process.env, ...env } },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        view.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(out);
        });
        view.on("exit", (code) => reject(new Error(`nixstate view exited (${code})`)));
      });
      const port = /127\.0\.0\.1:(\d+)\//.exec(line)![1]!;
      expect(line).toBe(serve!.output.replace("8080", port));
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<title>nixstate run 1</title>");
      expect((await fetch(`http://127.0.0.1:${port}/nothing`)).status).toBe(404);
    } finally {
      view.kill("SIGINT");
      await new Promise((r) => view.on("exit", r));
    }
    expect(existsSync(join(root, "run.html"))).toBe(true);
  });
});
