import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  describeExit,
  type RunBuilderOptions,
  runBuilder as run,
} from "../../src/builder/run-builder.ts";
import { Spawner, spawnerAvailable } from "../../src/builder/spawner.ts";

const dir = mkdtempSync(join(tmpdir(), "nixstate-run-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function opts(script: string, extra: Partial<RunBuilderOptions> = {}): RunBuilderOptions {
  return {
    builder: "/bin/sh",
    args: ["-c", script],
    env: { PATH: "/usr/bin:/bin" },
    cwd: dir,
    logFile: join(dir, `log-${Math.random()}`),
    maxSilentTime: 0,
    buildTimeout: 0,
    maxLogSize: 0,
    signal: new AbortController().signal,
    ...extra,
  };
}

// Every spawner must behave the same (Python is preferred, then Perl; Node is the fallback).
describe.each(["python", "perl", "node"] as const)("runBuilder with the %s spawner", (kind) => {
  if (!spawnerAvailable(kind) && process.env.CI === "true") throw new Error(`${kind} missing`);
  const spawner = new Spawner(kind);
  afterAll(() => spawner.close());
  const runBuilder = (o: RunBuilderOptions) => run(o, spawner);

  it("logs stdout and stderr to the file and reports the exit code", async () => {
    const o = opts("echo out; echo err >&2; exit 3");
    const exit = await runBuilder(o);
    expect(exit).toEqual({ kind: "exited", code: 3, logSize: 8 });
    expect(describeExit(exit)).toBe("failed with exit code 3");
    expect(readFileSync(o.logFile, "utf8")).toBe("out\nerr\n");
  });

  it("forwards the output to Node only when asked, every byte before the exit", async () => {
    const script = "printf 'a\\n\\001\\377\\r\\n'; echo err >&2; head -c 200000 /dev/zero; exit 2";
    const chunks: Buffer[] = [];
    let startedFirst: boolean | undefined;
    const o = opts(script, {
      onStarted: () => {
        startedFirst ??= true;
      },
      onOutput: (c) => {
        startedFirst ??= false;
        chunks.push(c);
      },
    });
    const exit = await runBuilder(o);
    expect(exit).toEqual({ kind: "exited", code: 2, logSize: 200_010 });
    expect(Buffer.concat(chunks).equals(readFileSync(o.logFile))).toBe(true);
    expect(startedFirst).toBe(true);
    // Without onOutput nothing is sent (and nothing breaks when a reply would have come).
    const quiet = opts(script);
    expect(await runBuilder(quiet)).toEqual({ kind: "exited", code: 2, logSize: 200_010 });
    // Over the log-size limit: what was forwarded is exactly what the log kept.
    const limited: Buffer[] = [];
    const l = opts("exec /usr/bin/yes xxxxxxxxxxxxxxxxxxxxxx", {
      maxLogSize: 300_000,
      onOutput: (c) => limited.push(c),
    });
    expect(await runBuilder(l)).toEqual({ kind: "logLimitExceeded", limit: 300_000 });
    const kept = existsSync(l.logFile) ? readFileSync(l.logFile) : Buffer.alloc(0);
    expect(Buffer.concat(limited).equals(kept)).toBe(true);
  });

  it("kills a silent builder and its children after maxSilentTime", async () => {
    const pidFile = join(dir, "child.pid");
    const t0 = Date.now();
    const exit = await runBuilder(
      opts(`sleep 30 & echo $! > ${pidFile}; echo started; wait`, { maxSilentTime: 1 }),
    );
    expect(exit).toEqual({ kind: "timedOut", silence: true, seconds: 1 });
    expect(Date.now() - t0).toBeLessThan(5000);
    const childPid = Number(readFileSync(pidFile, "utf8"));
    await new Promise((r) => setTimeout(r, 50));
    expect(
      existsSync(`/proc/${childPid}`) &&
        !readFileSync(`/proc/${childPid}/stat`, "utf8").includes(") Z"),
    ).toBe(false);
  });

  it("kills a builder that runs past buildTimeout", async () => {
    const exit = await runBuilder(
      opts("while true; do echo tick; sleep 0.1; done", { buildTimeout: 1 }),
    );
    expect(exit).toEqual({ kind: "timedOut", silence: false, seconds: 1 });
  });

  it("kills a builder that writes more than maxLogSize", async () => {
    const exit = await runBuilder(
      opts("while true; do echo xxxxxxxxxxxxxxxxxxxxxxxx; done", { maxLogSize: 1000 }),
    );
    expect(exit).toEqual({ kind: "logLimitExceeded", limit: 1000 });
  });

  // An 813 MB flood once got through a 100 kB limit while the log's size was polled each second.
  it("holds the log-size limit on the bytes as they arrive, within one read", async () => {
    const o = opts("exec /usr/bin/yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", {
      maxLogSize: 100_000,
    });
    const exit = await runBuilder(o);
    expect(exit).toEqual({ kind: "logLimitExceeded", limit: 100_000 });
    const size = statSync(o.logFile).size;
    expect(size).toBeLessThanOrEqual(100_000);
    expect(size).toBeGreaterThan(100_000 - 65_536 - 1);
  });

  it("measures silence from the last byte, not from a once-a-second poll", async () => {
    const t0 = Date.now();
    const exit = await runBuilder(
      opts("for i in 1 2 3 4 5; do echo $i; sleep 0.3; done; exec sleep 30", { maxSilentTime: 1 }),
    );
    expect(exit).toEqual({ kind: "timedOut", silence: true, seconds: 1 });
    const took = Date.now() - t0;
    // The last line comes at 1.2 s; one silent second later it is killed (a 250 ms poll of the
    // log's size added up to half a second).
    expect(took).toBeGreaterThanOrEqual(2150);
    expect(took).toBeLessThan(2500);
  });

  // Nix treats the end of the log as the end of the build and kills what still runs.
  it("ends the build when the builder closes its output and keeps running", async () => {
    const t0 = Date.now();
    const o = opts("echo hi; exec >&- 2>&-; sleep 30; exit 0");
    const exit = await runBuilder(o);
    expect(exit).toEqual({ kind: "signaled", signal: "SIGKILL" });
    expect(describeExit(exit)).toBe("failed due to signal 9 (Killed)");
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(readFileSync(o.logFile, "utf8")).toBe("hi\n");
  });

  it("waits for output of a background process until the log ends, keeping the exit code", async () => {
    const o = opts("(sleep 0.5; echo late) & echo early; exit 0");
    const exit = await runBuilder(o);
    expect(exit).toEqual({ kind: "exited", code: 0, logSize: 11 });
    expect(readFileSync(o.logFile, "utf8")).toBe("early\nlate\n");
  });

  it("stops when aborted and reports builders that cannot be executed", async () => {
    const ac = new AbortController();
    const p = runBuilder(opts("sleep 30", { signal: ac.signal }));
    setTimeout(() => ac.abort(), 50);
    expect(await p).toEqual({ kind: "aborted" });
    const o = { ...opts(""), builder: "/nonexistent/builder" };
    const missing = await runBuilder(o);
    expect(describeExit(missing)).toBe("failed with exit code 1");
    if (kind !== "node") {
      expect(readFileSync(o.logFile, "utf8")).toMatch(
        /^error: executing '\/nonexistent\/builder': No such file/,
      );
      // A working directory that cannot be entered is told the same way, in the log.
      const lost = { ...opts("exit 0"), cwd: join(dir, "no-such-dir") };
      expect(await runBuilder(lost)).toMatchObject({ kind: "exited", code: 1 });
      expect(readFileSync(lost.logFile, "utf8")).toMatch(
        /^error: changing into '.*no-such-dir': No such file/,
      );
    }
  });

  it("starts builders with SIGPIPE at its default, as Nix does", async () => {
    // The spawners ignore SIGPIPE themselves, and an ignored signal stays ignored across exec:
    // a builder's `producer | head` would then see EPIPE errors instead of ending quietly.
    const o = opts("grep SigIgn /proc/self/status");
    expect(await runBuilder(o)).toMatchObject({ kind: "exited", code: 0 });
    const ignored = BigInt(`0x${readFileSync(o.logFile, "utf8").split(/\s+/)[1]}`);
    expect(ignored & (1n << 12n)).toBe(0n); // signal 13 is bit 12
  });

  it("reports a builder killed by a signal", async () => {
    const exit = await runBuilder(opts("kill -TERM $$"));
    expect(exit).toEqual({ kind: "signaled", signal: "SIGTERM" });
    expect(describeExit(exit)).toBe("failed due to signal 15 (Terminated)");
  });

  it("passes arguments and environment exactly, and runs in cwd", async () => {
    const o = opts('printf "%s|" "$@"; printf "%s|%s|%s" "$WEIRD" "$EMPTY" "$PWD"', {
      env: { WEIRD: "a b\nc=d\te", EMPTY: "" },
    });
    o.args.push("sh", "x", "", "with space", "new\nline");
    expect((await runBuilder(o)).kind).toBe("exited");
    expect(readFileSync(o.logFile, "utf8")).toBe(`x||with space|new\nline|a b\nc=d\te||${dir}`);
  });

  // A child reaped in a race with the spawner's wait for input once went unreported under load
  // (Perl runs signal handlers between ops): the run then waited forever. Many quick builders,
  // with the CPUs kept busy, must all be reported, each with its own status.
  it("reports every one of many quick builders under CPU load, with its own exit code", async () => {
    const hogs = [0, 1].map(() =>
      spawn("/bin/sh", ["-c", "while :; do :; done"], { stdio: "ignore" }),
    );
    try {
      // Two at a time, as a -j2 build: exits then come while the spawner is busy with the other.
      let next = 0;
      const lane = async () => {
        while (next < 1500) {
          const i = next++;
          const exit = await Promise.race([
            runBuilder(opts(`exit ${i % 7}`)),
            new Promise((r) => setTimeout(() => r("stuck"), 5000)),
          ]);
          expect(exit, `builder ${i}`).toEqual({ kind: "exited", code: i % 7, logSize: 0 });
        }
      };
      await Promise.all([lane(), lane()]);
    } finally {
      for (const h of hogs) h.kill("SIGKILL");
    }
  }, 60_000);

  it("fails the running builders of a spawner that dies, and starts a new one for the next", async () => {
    let pid = 0;
    // Once the builder runs, kill its parent: the spawner (Perl forks it; Node spawns it).
    const onStarted = (p: number) => {
      pid = p;
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      process.kill(ppid, "SIGKILL");
    };
    const exit = await runBuilder(opts("sleep 5", { onStarted }));
    expect(exit).toEqual({
      kind: "spawnFailed",
      message: "the builder spawner process ended (SIGKILL)",
    });
    // The orphaned builder's group is killed by runBuilder, not left running.
    await new Promise((r) => setTimeout(r, 50));
    expect(pid).toBeGreaterThan(0);
    expect(
      existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z"),
    ).toBe(false);
    expect(await runBuilder(opts("exit 4"))).toEqual({ kind: "exited", code: 4, logSize: 0 });
  });

  it("describes signals as Nix does", () => {
    expect(describeExit({ kind: "signaled", signal: "SIGKILL" })).toBe(
      "failed due to signal 9 (Killed)",
    );
  });
});
