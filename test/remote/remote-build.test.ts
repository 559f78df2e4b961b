// `nixstate build -j0 --builders …`: derivations built on a "remote" machine reached through the
// ssh stand-in, whose `nixstate serve` has its own state dir (the local outputs are not there).
import { spawn } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { replayRun } from "../../src/events/replay-run.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { nixstateServeCommand } from "../../src/remote/serve-transport.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { haveSandbox } from "../builder/have-sandbox.ts";
import { runCli } from "../cli/run-cli.ts";
import { SSH_STAND_IN } from "../fixtures/ssh-stand-in.ts";
import { useTempStores } from "../store/temp-store.ts";
import { repoRoot } from "../vectors.ts";

const stores = useTempStores();

interface Setup {
  serverState: string;
  localState: string;
  storeDir: string;
  storeRoot: string;
  pidFile: string;
  builders: string;
  env: NodeJS.ProcessEnv;
  dir: string;
}

/**
 * The builder machine's serve program is a wrapper with its own state dir, started in its own
 * process group (setsid) so a test can kill the whole machine; it records that group's id.
 */
function setup(machine: { systems?: string; jobs?: number; features?: string } = {}): Setup {
  const dir = stores.freshDir("remote-build");
  mkdirSync(dir);
  const serverState = join(dir, "server");
  const localState = join(dir, "local");
  const storeRoot = join(dir, "local-root");
  const shimDir = join(dir, "bin");
  mkdirSync(shimDir);
  copyFileSync(SSH_STAND_IN, join(shimDir, "ssh"));
  const pidFile = join(dir, "serve.pid");
  const wrapper = join(dir, "remote-nixstate");
  const [node, bin] = nixstateServeCommand();
  writeFileSync(
    wrapper,
    `#!/bin/sh\necho $$ > ${pidFile}\necho $$ >> ${join(dir, "starts")}\nexec setsid ${node} ${bin} --state-dir ${serverState} ${machine.features ? `--system-features '${machine.features}' ` : ""}"$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  return {
    serverState,
    localState,
    // Both stores name paths alike; the local one keeps its files elsewhere (--store-root).
    storeDir: join(serverState, "store"),
    storeRoot,
    pidFile,
    builders: `ssh://buildbox?remote-program=${encodeURIComponent(wrapper)} ${machine.systems ?? "-"} - ${machine.jobs ?? 2} 1 ${machine.features ?? "-"}`,
    env: { ...process.env, PATH: `${shimDir}:${process.env.PATH}` },
    dir,
  };
}

function build(
  s: Setup,
  target: string,
  flags: string[] = ["-j0"],
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(
      process.execPath,
      [
        join(repoRoot, "bin/nixstate.js"),
        "build",
        ...flags,
        "--builders",
        s.builders,
        "--state-dir",
        s.localState,
        "--store-dir",
        s.storeDir,
        "--store-root",
        s.storeRoot,
        target,
      ],
      { env: s.env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    p.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8");
    });
    p.stdout.resume();
    p.on("close", (code) => resolve({ code, stderr }));
  });
}

function storeFlags(s: Setup): string[] {
  return ["--state-dir", s.localState, "--store-dir", s.storeDir, "--store-root", s.storeRoot];
}

function openLocal(s: Setup): LocalStore {
  return LocalStore.open({ stateDir: s.localState, storeDir: s.storeDir, storeRoot: s.storeRoot });
}

/** A JSON derivation `name` whose output records where its builder ran (see whereBuilt). */
function whereDrv(s: Setup, name: string): string {
  return writeJson(s.dir, `${name}.json`, {
    builder: "/bin/sh",
    args: ["-c", "/bin/mkdir $out; pwd > $out/where"],
    env: { name },
  });
}

/** The working directory the builder of derivation `name` recorded in its output's `where`. */
function whereBuilt(s: Setup, name: string): string {
  const local = openLocal(s);
  try {
    const [drv] = local.queryAllValidPaths().filter((p) => p.endsWith(`-${name}.drv`));
    const out = local.queryDerivationOutputs(drv!).get("out")!;
    return readFileSync(join(local.toRealPath(out), "where"), "utf8").trim();
  } finally {
    local.close();
  }
}

function writeJson(dir: string, name: string, value: unknown): string {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify(value));
  return f;
}

describe.runIf(existsSync(SSH_STAND_IN))("remote builds through --builders", () => {
  it("builds a two-node DAG on the machine; outputs come back valid with references and deriver", async () => {
    const s = setup();
    // The builder's working directory proves where it ran: the remote's build dirs.
    writeJson(s.dir, "a.json", {
      builder: "/bin/sh",
      args: ["-c", "/bin/mkdir $out; pwd > $out/where"],
      env: { name: "a" },
    });
    const top = writeJson(s.dir, "b.json", {
      builder: "/bin/sh",
      args: [
        "-c",
        "echo building b remotely; /bin/mkdir $out; pwd > $out/where; echo $a > $out/dep",
      ],
      env: { name: "b", a: "a.json" },
      inputDrvs: { "a.json": ["out"] },
    });
    const r = await build(s, top);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);

    const local = LocalStore.open({
      stateDir: s.localState,
      storeDir: s.storeDir,
      storeRoot: s.storeRoot,
    });
    try {
      const [bDrv] = local.queryAllValidPaths().filter((p) => p.endsWith("-b.drv"));
      const [aDrv] = local.queryAllValidPaths().filter((p) => p.endsWith("-a.drv"));
      const bOut = local.queryDerivationOutputs(bDrv!).get("out")!;
      const aOut = local.queryDerivationOutputs(aDrv!).get("out")!;
      for (const [drv, out] of [
        [aDrv!, aOut],
        [bDrv!, bOut],
      ] as const) {
        const info = local.queryPathInfo(out);
        expect(info.deriver).toBe(drv);
        expect(info.ultimate).toBe(true);
        expect(readFileSync(join(local.toRealPath(out), "where"), "utf8")).toContain(
          join(s.serverState, "builds"),
        );
      }
      expect(local.queryReferences(bOut)).toEqual([aOut]);
      expect(readFileSync(join(local.toRealPath(bOut), "dep"), "utf8").trim()).toBe(aOut);
      // The machine's stderr is the derivation's build log here, as Nix's hook keeps it.
      // Both builds went over one session: the machine's serve program started once.
      expect(readFileSync(join(s.dir, "starts"), "utf8").trim().split("\n")).toHaveLength(1);
      const log = runCli(["log", bDrv!, ...storeFlags(s)]);
      expect(log.status).toBe(0);
      expect(log.stdout.toString()).toContain("building b remotely");
    } finally {
      local.close();
    }
    // Both sides recorded the run: here, builders started on the machine; there, each
    // BuildDerivation received is a run of its own, which replays from its BasicDerivation.
    const here = RunLog.open(s.localState);
    const there = RunLog.open(s.serverState);
    try {
      const started = here.events(1).filter((e) => e.type === "builder.started");
      expect(started).toHaveLength(2);
      for (const e of started) {
        expect(e).toMatchObject({ where: "remote", machine: "ssh://buildbox" });
      }
      const served = there.runs();
      expect(served.map((r) => r.request.command)).toEqual(["serve", "serve"]);
      for (const r of served) {
        const created = there.events(r.id).find((e) => e.type === "goal.created");
        expect(created).toMatchObject({ input: { basicDrv: { $drv: expect.any(String) } } });
        const replay = await replayRun(there, r.id);
        expect(replay.divergences).toEqual([]);
        expect(replay.goals.every((g) => g.done)).toBe(true);
      }
    } finally {
      here.close();
      there.close();
    }
  });

  it.runIf(haveSandbox())(
    "waits for a busy machine instead of building here what this machine cannot",
    async () => {
      // One slot on a machine with the feature 'big'; this machine lacks it, though -j2 is free.
      const s = setup({ systems: "x86_64-linux", jobs: 1, features: "big" });
      const times = (name: string) => ({
        builder: "/bin/sh",
        args: [
          "-c",
          "/bin/mkdir $out; pwd > $out/where; /bin/date +%s%N > $out/start; /bin/sleep 0.5; /bin/date +%s%N > $out/end",
        ],
        env: { name, requiredSystemFeatures: "big" },
      });
      writeJson(s.dir, "x.json", times("x"));
      writeJson(s.dir, "y.json", times("y"));
      const top = writeJson(s.dir, "top.json", {
        builder: "/bin/sh",
        args: ["-c", "echo $x $y > $out"],
        env: { name: "top", x: "x.json", y: "y.json", preferLocalBuild: "1" },
        inputDrvs: { "x.json": ["out"], "y.json": ["out"] },
      });
      // Local builds use the sandbox: it maps the logical store onto the local store's root.
      const r = await build(s, top, ["-j2", "--sandbox"]);
      expect(r.stderr).not.toMatch(/error/);
      expect(r.code).toBe(0);
      const local = openLocal(s);
      try {
        const outs = ["x", "y"].map((n) => {
          const [drv] = local.queryAllValidPaths().filter((p) => p.endsWith(`-${n}.drv`));
          const dir = local.toRealPath(local.queryDerivationOutputs(drv!).get("out")!);
          const read = (f: string) => readFileSync(join(dir, f), "utf8").trim();
          expect(read("where")).toContain(join(s.serverState, "builds"));
          return { start: BigInt(read("start")), end: BigInt(read("end")) };
        });
        // The machine's one slot was honoured: the second build started after the first ended.
        const [first, second] = outs.sort((a, b) => (a.start < b.start ? -1 : 1));
        expect(second!.start >= first!.end).toBe(true);
        // preferLocalBuild kept `top` here although the machine could take it.
        const [topDrv] = local.queryAllValidPaths().filter((p) => p.endsWith("-top.drv"));
        expect(local.isValidPath(local.queryDerivationOutputs(topDrv!).get("out")!)).toBe(true);
        expect(runCli(["log", topDrv!, ...storeFlags(s)]).stdout.toString()).toBe("");
      } finally {
        local.close();
      }
    },
    30_000,
  );

  it.runIf(haveSandbox())(
    "builds here what no machine fits; with -j0 that is a clear error",
    async () => {
      const s = setup({ systems: "aarch64-linux" });
      const target = whereDrv(s, "here");
      const refused = await build(s, target, ["-j0"]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /unable to start any build; either increase '--max-jobs' or enable remote builds/,
      );
      const r = await build(s, target, ["-j1", "--sandbox"]);
      expect(r.stderr).not.toMatch(/error/);
      expect(r.code).toBe(0);
      // Built in this machine's sandbox, whose build directory is /build.
      expect(whereBuilt(s, "here")).toBe("/build");
    },
  );

  it.runIf(haveSandbox())(
    "leaves out a machine that cannot be reached: builds here, or fails clearly with -j0",
    async () => {
      const s = setup();
      const down = { ...s, builders: "ssh://deadbox?remote-program=/nonexistent/nixstate - - 2" };
      const target = whereDrv(s, "fallback");
      const refused = await build(down, target, ["-j0"]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /error: cannot build on 'ssh:\/\/deadbox': [\s\S]*nonexistent/,
      );
      expect(refused.stderr).toMatch(/unable to start any build/);
      const r = await build(down, target, ["-j1", "--sandbox"]);
      expect(r.stderr).toMatch(/cannot build on 'ssh:\/\/deadbox'/);
      expect(r.code).toBe(0);
      expect(whereBuilt(s, "fallback")).toBe("/build");
    },
  );

  it("internal-json: a remote build is a Build 'on' its machine, with the lines the machine relays", async () => {
    const s = setup();
    const top = writeJson(s.dir, "said.json", {
      builder: "/bin/sh",
      args: ["-c", "echo first; echo second >&2; echo done > $out"],
      env: { name: "said" },
    });
    const r = await build(s, top, ["-j0", "--log-format", "internal-json"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("@nix "))
      .map((l) => JSON.parse(l.slice(5)) as Record<string, unknown>);
    // The machine as nixstate names it in its messages (its URI without the query).
    const machine = "ssh://buildbox";
    const started = lines.find((l) => l.action === "start" && l.type === 105)!;
    const drvPath = (started.fields as string[])[0]!;
    expect(drvPath).toMatch(/-said\.drv$/);
    expect(started).toMatchObject({
      fields: [drvPath, machine, 1, 1],
      level: 3,
      text: `building '${drvPath}' on '${machine}'`,
    });
    const said = lines
      .filter((l) => l.action === "result" && l.id === started.id && l.type === 101)
      .map((l) => (l.fields as string[])[0]);
    expect(said).toEqual(["first", "second"]);
    expect(lines.filter((l) => l.action === "stop" && l.id === started.id)).toHaveLength(1);
  });

  it("a builder machine killed mid-build is a MiscFailure naming it; nothing valid locally", async () => {
    const s = setup();
    const started = join(s.dir, "started");
    const top = writeJson(s.dir, "slow.json", {
      builder: "/bin/sh",
      args: ["-c", `/bin/touch ${started}; /bin/sleep 20; /bin/mkdir $out`],
      env: { name: "slow" },
    });
    const running = build(s, top);
    const deadline = Date.now() + 20_000;
    while (!existsSync(started) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(started)).toBe(true);
    const pgid = Number(readFileSync(s.pidFile, "utf8").trim());
    process.kill(-pgid, "SIGKILL");
    const r = await running;
    expect(r.code).toBe(1);
    // Exit 1: a MiscFailure (a PermanentFailure would exit 100).
    expect(r.stderr).toMatch(
      /error: build of '.*-slow\.drv' on 'ssh:\/\/buildbox' failed: .*hung up during BuildDerivation/,
    );

    const local = LocalStore.open({
      stateDir: s.localState,
      storeDir: s.storeDir,
      storeRoot: s.storeRoot,
    });
    try {
      expect(local.queryAllValidPaths().filter((p) => !p.endsWith(".drv"))).toEqual([]);
    } finally {
      local.close();
    }
  }, 30_000);
});
