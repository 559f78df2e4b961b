// Remote builds (`nixstate build -j0 --builders ssh://…`) through a real OpenSSH sshd on
// 127.0.0.1: nixstate to nixstate, nixstate to real Nix 2.8's `nix-store --serve`, a builder
// machine killed mid-build, the machines file's ssh columns, and real Nix's build hook using
// nixstate as its machine. test/remote/remote-build.test.ts is the quick variant (ssh stand-in).
// sshd starts the remote program as the leader of a new session and process group, where plain
// `setsid` would fork and return at once: the wrappers use `setsid -w` and record the pid of the
// process inside the new group, which is that group's id.
import { spawn } from "node:child_process";
import { once } from "node:events";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { repoRoot } from "../vectors.ts";
import { haveRealNix, makeNixEnv, type NixEnv, nixStoreBin } from "./real-nix.ts";
import { haveSshd, type SshServer, startSshd } from "./sshd.ts";

const NIXSTATE = join(repoRoot, "bin/nixstate.js");

function writeScript(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

interface Store {
  stateDir: string;
  storeDir: string;
  storeRoot?: string;
}

/** Runs `body` on the store, open for that time only (the builds open it themselves). */
function inStore<T>(s: Store, body: (store: LocalStore) => T): T {
  const store = LocalStore.open(s);
  try {
    return body(store);
  } finally {
    store.close();
  }
}

const storeFlags = (s: Store) =>
  ["--state-dir", s.stateDir, "--store-dir", s.storeDir].concat(
    s.storeRoot ? ["--store-root", s.storeRoot] : [],
  );

function writeJson(dir: string, name: string, value: unknown): string {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify(value));
  return f;
}

/** Derivations a (with a source added to `s`) ← b in `dir`; builders record where they ran. */
function writeDag(dir: string, s: Store): { top: string; src: string } {
  const src = inStore(s, (store) => store.addTextToStore("greeting.txt", "hello\n").path);
  writeJson(dir, "a.json", {
    builder: "/bin/sh",
    args: ["-c", "/bin/mkdir $out; pwd > $out/where; echo $src > $out/src"],
    env: { name: "a", src },
    inputSrcs: [src],
  });
  const top = writeJson(dir, "b.json", {
    builder: "/bin/sh",
    args: ["-c", "/bin/mkdir $out; pwd > $out/where; echo $a > $out/dep"],
    env: { name: "b", a: "a.json" },
    inputDrvs: { "a.json": ["out"] },
  });
  return { top, src };
}

/** The .drv whose name is NAME in the store, and its output. */
function outputOf(store: LocalStore, name: string): { drv: string; out: string } {
  const drv = store.queryAllValidPaths().find((p) => p.endsWith(`-${name}.drv`));
  if (!drv) throw new Error(`no ${name}.drv in the store`);
  return { drv, out: store.queryDerivationOutputs(drv).get("out")! };
}

/** SIGKILL the process group whose id is in `pidFile`, if it is still there. */
function killGroup(pidFile: string): void {
  try {
    process.kill(-Number(readFileSync(pidFile, "utf8")), "SIGKILL");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
  }
}

function nixstate(args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [NIXSTATE, ...args], { env, stdio: "pipe" });
    let stderr = "";
    p.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8");
    });
    p.stdout.resume();
    p.on("close", (code) => resolve({ code, stderr }));
  });
}

describe.runIf(haveSshd())("remote builds through a real sshd", () => {
  let sshd: SshServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let count = 0;

  beforeAll(async () => {
    sshd = await startSshd();
    dir = mkdtempSync(join(tmpdir(), "nixstate-sshd-build-"));
    env = { ...process.env, NIX_SSHOPTS: sshd.nixSshOpts };
  });

  afterAll(async () => {
    await sshd?.stop();
    if (dir) deleteTree(dir);
  });

  const builders = (program: string, columns = "- - 2") =>
    `ssh://${sshd.destination}?remote-program=${encodeURIComponent(program)} ${columns}`;

  /** `nixstate serve` with its own state dir as the machine; the local store beside it. */
  function nixstateMachine(label: string) {
    const d = join(dir, `${label}-${count++}`);
    mkdirSync(d);
    const remote: Store = { stateDir: join(d, "server"), storeDir: join(d, "server/store") };
    const pidFile = join(d, "serve.pid");
    const command = `'${process.execPath}' '${NIXSTATE}' "$@" ${storeFlags(remote).join(" ")}`;
    const wrapper = writeScript(
      join(d, "remote-nixstate"),
      `exec setsid -w /bin/sh -c 'echo $$ > ${pidFile} && exec "$@"' sh ${command}`,
    );
    // The same logical store dir locally, its files kept apart (--store-root).
    const local: Store = { ...remote, stateDir: join(d, "local"), storeRoot: join(d, "root") };
    const build = (target: string, machines = builders(wrapper), e = env) =>
      nixstate(["build", "-j0", "--builders", machines, ...storeFlags(local), target], e);
    return { d, remote, local, pidFile, wrapper, build };
  }

  it("nixstate builds a DAG with an input source on a nixstate machine", async () => {
    const m = nixstateMachine("dag");
    const { top, src } = writeDag(m.d, m.local);
    const r = await m.build(top);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    await sshd.waitForLog(/Accepted publickey for root from 127\.0\.0\.1/);

    inStore(m.local, (local) =>
      inStore(m.remote, (remote) => {
        const [a, b] = [outputOf(local, "a"), outputOf(local, "b")];
        for (const { drv, out } of [a, b]) {
          const info = local.queryPathInfo(out);
          expect(info.deriver).toBe(drv);
          expect(info.ultimate).toBe(true);
          // The builder's working directory: one of the remote store's build dirs.
          const where = readFileSync(join(local.toRealPath(out), "where"), "utf8");
          expect(where).toContain(join(m.remote.stateDir, "builds"));
          expect(remote.queryPathInfo(out).narHash).toEqual(info.narHash);
        }
        expect(local.queryReferences(a.out)).toEqual([src]);
        expect(local.queryReferences(b.out)).toEqual([a.out]);
        expect(readFileSync(join(local.toRealPath(b.out), "dep"), "utf8").trim()).toBe(a.out);
        expect(remote.isValidPath(src)).toBe(true);
      }),
    );
  }, 30_000);

  it("nixstate builds on a resident `nixstate serve --listen` through its connect program", async () => {
    const m = nixstateMachine("resident");
    const socket = join(m.d, "serve.socket");
    const server = spawn(
      process.execPath,
      [NIXSTATE, "serve", "--listen", socket, "--write", ...storeFlags(m.remote)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const [line] = await once(server.stdout, "data");
      expect(String(line)).toContain(socket);
      // The remote program with its argument, as a machines line spells it (URL-encoded).
      const connect = `${join(repoRoot, "bin/nixstate-serve-connect")} --socket ${socket}`;
      const { top } = writeDag(m.d, m.local);
      const r = await m.build(top, builders(connect));
      expect(r.stderr).not.toMatch(/error/);
      expect(r.code).toBe(0);
      inStore(m.local, (local) =>
        inStore(m.remote, (remote) => {
          for (const name of ["a", "b"]) {
            const { out } = outputOf(local, name);
            const where = readFileSync(join(local.toRealPath(out), "where"), "utf8");
            expect(where).toContain(join(m.remote.stateDir, "builds"));
            expect(remote.queryPathInfo(out).narHash).toEqual(local.queryPathInfo(out).narHash);
          }
        }),
      );
    } finally {
      server.kill("SIGTERM");
      if (server.exitCode === null) await once(server, "exit");
    }
    expect(server.exitCode).toBe(0);
    expect(existsSync(socket)).toBe(false);
  }, 30_000);

  it("a machine killed mid-build fails naming it, registers nothing; a rebuild works", async () => {
    const m = nixstateMachine("killed");
    const [started, fast] = [join(m.d, "started"), join(m.d, "fast")];
    // The builder (leader of its process group) records its pid, sleeps unless `fast` is there.
    const top = writeJson(m.d, "slow.json", {
      builder: "/bin/sh",
      args: ["-c", `echo $$ > ${started}; [ -e ${fast} ] || /bin/sleep 30; echo done > $out`],
      env: { name: "slow" },
    });
    const running = m.build(top);
    const deadline = Date.now() + 20_000;
    while (!existsSync(started) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(started)).toBe(true);
    const killedAt = Date.now();
    killGroup(m.pidFile);
    const r = await running;
    const took = Date.now() - killedAt;
    killGroup(started); // the orphaned builder
    expect(took).toBeLessThan(8000);
    // Exit 1: a MiscFailure (a PermanentFailure would exit 100).
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /error: build of '[^']*-slow\.drv' on 'ssh:\/\/root@127\.0\.0\.1' failed: [\s\S]*hung up/,
    );

    const noLocks = (s: LocalStore) => s.database.prepare("SELECT * FROM PathLocks").all();
    const out = inStore(m.local, (local) => {
      expect(local.queryAllValidPaths().filter((p) => !p.endsWith(".drv"))).toEqual([]);
      expect(noLocks(local)).toEqual([]);
      const { out } = outputOf(local, "slow");
      expect(existsSync(local.toRealPath(out))).toBe(false);
      return out;
    });

    writeFileSync(fast, "");
    const again = await m.build(top);
    expect(again.stderr).not.toMatch(/error/);
    expect(again.code).toBe(0);
    inStore(m.local, (local) => {
      expect(local.isValidPath(out)).toBe(true);
      expect(readFileSync(local.toRealPath(out), "utf8")).toBe("done\n");
      expect(noLocks(local)).toEqual([]);
    });
  }, 45_000);

  // Nix 2.8 (ssh.cc, SSHMaster::addCommonSSHOpts) gives ssh the machine's ssh key (3rd column)
  // as `-i KEY` and its pinned host key (8th: base64 of the public key line) in a known-hosts
  // file as `-oUserKnownHostsFile=FILE`, both after NIX_SSHOPTS. ssh keeps the first value of an
  // option, so these NIX_SSHOPTS leave the options out.
  const sshOptsWithout = (...drop: string[]) => {
    const pairs = sshd.sshArgs.flatMap((a, i) => (i % 2 ? [] : [[a, sshd.sshArgs[i + 1]!]]));
    return pairs.filter(([o, v]) => !drop.some((d) => o === d || v!.startsWith(d))).flat();
  };
  const buildWith = async (label: string, columns: string, sshOpts: string[]) => {
    const m = nixstateMachine(label);
    const top = writeJson(m.d, "p.json", {
      builder: "/bin/sh",
      args: ["-c", "echo p > $out"],
      env: { name: label },
    });
    const r = await m.build(top, builders(m.wrapper, `${nixSystem()} ${columns}`), {
      ...env,
      NIX_SSHOPTS: sshOpts.join(" "),
    });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
  };
  const clientKey = () => sshd.sshArgs[sshd.sshArgs.indexOf("-i") + 1]!;

  it("uses the machines file's ssh key", async () => {
    await buildWith("key", `${clientKey()} 1`, sshOptsWithout("-i"));
  }, 30_000);

  // The host-key column pins the key as Nix 2.8 does (a known-hosts file of its own); real Nix
  // builds with this line and these NIX_SSHOPTS too.
  it("uses the machines file's pinned host key", async () => {
    const knownHosts = sshOptsWithout().find((a) => a.startsWith("UserKnownHostsFile="))!;
    const [, type, data] = readFileSync(knownHosts.split("=")[1]!, "utf8").split(/\s+/);
    const hostKey = Buffer.from(`${type} ${data}\n`).toString("base64");
    // The alias makes ssh look the key up as `127.0.0.1`, as Nix writes it, not `[127.0.0.1]:PORT`.
    const sshOpts = sshOptsWithout("-i", "UserKnownHostsFile=");
    sshOpts.push("-o", `HostKeyAlias=${sshd.host}`);
    await buildWith("host-key", `${clientKey()} 1 1 - - ${hostKey}`, sshOpts);
  }, 30_000);

  describe.runIf(haveRealNix())("with real Nix 2.8", () => {
    /** A test body run with a private Nix store, deleted afterwards. */
    const withNix = (body: (nix: NixEnv) => unknown) => async () => {
      const nix = makeNixEnv();
      try {
        await body(nix);
      } finally {
        deleteTree(nix.root);
        nix.cleanup();
      }
    };

    it(
      "nixstate builds a DAG on a real Nix machine (`nix-store --serve --write`)",
      withNix(async (nix) => {
        const vars = "NIX_REMOTE NIX_STORE_DIR NIX_STATE_DIR NIX_LOG_DIR NIX_CONF_DIR".split(" ");
        const exports = vars.map((k) => `export ${k}='${nix.env[k]}'`).join("\n");
        const program = writeScript(
          join(nix.root, "remote-nix-store"),
          `${exports}\nexport NIX_PATH=\nexec '${nixStoreBin}' "$@"`,
        );
        // nixstate's store shares Nix's logical store dir and keeps its files elsewhere.
        const local: Store = { stateDir: join(nix.root, "local"), storeDir: nix.storeDir };
        local.storeRoot = join(nix.root, "local-root");
        const { top } = writeDag(nix.root, local);
        const args = ["build", "-j0", "--builders", builders(program), ...storeFlags(local), top];
        const r = await nixstate(args, env);
        expect(r.stderr).not.toMatch(/error/);
        expect(r.code).toBe(0);

        inStore(local, (store) => {
          for (const name of ["a", "b"]) {
            const { drv, out } = outputOf(store, name);
            const info = store.queryPathInfo(out);
            expect(info.deriver).toBe(drv);
            // Nix built it: the builder ran in Nix's build dir.
            const where = readFileSync(join(store.toRealPath(out), "where"), "utf8");
            expect(where).toMatch(/\/nix-build-[ab]\.drv-/);
            const nixHash = nix.run("nix-store", ["-q", "--hash", out]).trim();
            expect(info.narHash.format("nix32")).toBe(nixHash);
            const refs = nix.run("nix-store", ["-q", "--references", out]).split("\n");
            expect(store.queryReferences(out)).toEqual(refs.filter(Boolean).sort());
            expect(store.queryReferences(out)).toHaveLength(1);
          }
        });
      }),
      30_000,
    );

    it(
      "real Nix's build hook builds on nixstate (`nix-build -j0 --builders`)",
      withNix((nix) => {
        // As in serve-nix-client.test.ts: Nix's files live in a chroot store, nixstate's at the
        // logical paths, so the nixstate builder writes $out where its store expects it.
        const server: Store = { stateDir: join(nix.root, "nixstate"), storeDir: nix.storeDir };
        const program = writeScript(
          join(nix.root, "remote-nixstate"),
          `exec '${process.execPath}' '${NIXSTATE}' "$@" ${storeFlags(server).join(" ")}`,
        );
        nix.env.NIX_SSHOPTS = sshd.nixSshOpts;
        const client = `local?root=${join(nix.root, "client")}`;
        const expr = nix.writeExpr(
          "r.nix",
          `let dep = derivation { name = "dep"; system = builtins.currentSystem;
             builder = "/bin/sh"; args = [ "-c" "echo dep > $out" ]; };
           in derivation { name = "remote"; system = builtins.currentSystem; builder = "/bin/sh";
             args = [ "-c" "echo \${dep} > $out; pwd >> $out" ]; }`,
        );
        const machine = `ssh://${sshd.destination}?remote-program=${program} ${nixSystem()}`;
        const args = [expr, "--no-out-link", "--store", client, "-j0", "--builders", machine];
        const out = nix.run("nix-build", args).trim();
        expect(out).toMatch(/-remote$/);
        // Nix 2.8 keeps a chroot store's files under ROOT/nix/store whatever NIX_STORE_DIR says.
        const content = readFileSync(join(nix.root, "client/nix/store", basename(out)), "utf8");
        // What the remote build wrote: its input, and nixstate's build dir as working directory.
        expect(content).toMatch(/-dep\n/);
        expect(content).toContain(join(server.stateDir, "builds"));
        const nixHash = nix.run("nix-store", ["--store", client, "-q", "--hash", out]).trim();
        inStore(server, (store) => {
          expect(store.queryPathInfo(out).deriver).toMatch(/-remote\.drv$/);
          expect(store.queryPathInfo(out).narHash.format("nix32")).toBe(nixHash);
          expect(readFileSync(out, "utf8")).toBe(content);
        });
      }),
      30_000,
    );
  });
});
