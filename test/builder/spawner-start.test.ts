// Starting the spawner: `start()` ahead of the first build, and a spawner that cannot start at
// all. Each case runs in a process of its own (the one with no descriptors left, the one that
// checks what keeps a process alive).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "nixstate-spawner-start-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const spawnerModule = resolve("src/builder/spawner.ts");

function runScript(name: string, body: string): { status: number | null; out: string } {
  const file = join(dir, `${name}.mts`); // an ES module, outside the package
  writeFileSync(file, `import { Spawner } from ${JSON.stringify(spawnerModule)};\n${body}\n`);
  const r = spawnSync(process.execPath, ["--import", "tsx/esm", file], {
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const sleeper = (seconds: number) => `{
  cmd: "/bin/sh", args: ["-c", "sleep ${seconds}"], env: {}, cwd: "/", log: ${JSON.stringify(join(dir, "log"))},
  maxLogSize: 0, maxSilentMs: 0, outputFd: 1,
}`;

describe("Spawner start", () => {
  it("start() while a builder runs still waits for the builder", () => {
    const r = runScript(
      "keeps-alive",
      `const s = new Spawner();
const b = s.spawn(${sleeper(0.5)});
s.start();
b.exited.then((e) => { console.log("exited", e.code); s.close(); });`,
    );
    expect(r.out).toContain("exited 0");
    expect(r.status).toBe(0);
  });

  it("a started spawner with nothing to do does not keep the process alive", () => {
    const t0 = Date.now();
    const r = runScript("idle", `new Spawner().start();\nconsole.log("done");`);
    expect(r.out).toContain("done");
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it("reports a spawner that cannot start for want of descriptors, without crashing", () => {
    const r = runScript(
      "no-descriptors",
      `import { openSync, closeSync } from "node:fs";
const fds: number[] = [];
try { for (;;) fds.push(openSync("/dev/null", "r")); } catch {}
const s = new Spawner();
const b = s.spawn(${sleeper(0)});
const outcome = await b.exited.then(() => "ran", (e: Error) => e.message);
for (const fd of fds) closeSync(fd);
console.log("outcome:", outcome);`,
    );
    expect(r.out).toMatch(/outcome: cannot start the builder spawner '.*': spawn .* E[MN]FILE/);
    expect(r.status).toBe(0);
  });
});
