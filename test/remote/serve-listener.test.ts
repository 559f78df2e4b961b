// The resident serve server (`nixstate serve --listen`) driven through its real connect program,
// bin/nixstate-serve-connect (Perl), as ssh would run it: sessions, build logs on stderr, exit
// statuses, refusals, concurrent and killed sessions, a stale socket, and the fallback to a
// serve process of its own when no server listens.

import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NIX_2_8_DEFAULT_BUILD_OPTIONS } from "../../src/protocol/serve/build-options.ts";
import { writeClientHello } from "../../src/protocol/serve/handshake.ts";
import { WireEncoder } from "../../src/protocol/wire/wire-encoder.ts";
import { ServeClient } from "../../src/remote/serve-client.ts";
import { SERVE_HELLO } from "../../src/remote/serve-frames.ts";
import { ServeListener, ServeListenerError } from "../../src/remote/serve-listener.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { useTempStores } from "../store/temp-store.ts";
import { repoRoot } from "../vectors.ts";
import { basicDrv } from "./serve-fixtures.ts";

const CONNECT = join(repoRoot, "bin/nixstate-serve-connect");
const SYSTEM = "x86_64-linux";
const stores = useTempStores();
const listeners: ServeListener[] = [];

afterEach(async () => {
  for (const l of listeners.splice(0)) await l.close();
});

async function listen(store: LocalStore, write = true): Promise<ServeListener> {
  const listener = await ServeListener.listen({
    store,
    socketPath: join(store.layout.stateDir, "serve.socket"),
    write,
    buildSettings: { system: SYSTEM },
    describeError: (e) => (e instanceof Error ? e.message : String(e)),
  });
  listeners.push(listener);
  return listener;
}

interface Connected {
  child: ChildProcessWithoutNullStreams;
  client: ServeClient;
  stderr: () => string;
  /** Close the session's stdin and wait for the connect program's exit status. */
  end: () => Promise<number | null>;
}

/** The connect program as ssh runs it (`PROGRAM --serve --write`), with our client on its pipes. */
function connectProgram(store: LocalStore, socket: string, args = ["--serve", "--write"]) {
  const child = spawn(CONNECT, ["--socket", socket, ...args], {
    env: { ...process.env, PATH: `${join(repoRoot, "bin")}:${process.env.PATH}` },
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const client = new ServeClient(child.stdout, child.stdin, { storeDir: store.storeDir });
  const connected: Connected = {
    child,
    client,
    stderr: () => stderr,
    end: async () => {
      child.stdin.end();
      return exited;
    },
  };
  return connected;
}

describe("nixstate serve --listen through bin/nixstate-serve-connect", () => {
  it("serves a session: queries, a build with its log on stderr, status 0 at the end", async () => {
    const store = stores.open();
    const listener = await listen(store);
    const a = store.addTextToStore("a", "a");
    const c = connectProgram(store, listener.socketPath);
    await c.client.connect();
    expect(await c.client.queryValidPaths([a.path])).toEqual([a.path]);
    const drv = basicDrv(store.storeDir, "hello", "echo building hello >&2; echo hi > $out", {
      system: SYSTEM,
    });
    const result = await c.client.buildDerivation(
      drv.drvPath,
      drv.drv,
      NIX_2_8_DEFAULT_BUILD_OPTIONS,
    );
    expect(result.status).toBe("Built");
    expect(readFileSync(store.toRealPath(drv.out), "utf8")).toBe("hi\n");
    const [info] = await c.client.queryPathInfos([drv.out]);
    expect(info?.path).toBe(drv.out);
    expect(await c.end()).toBe(0);
    expect(c.stderr()).toContain("building hello");
    expect(listener.sessions).toBe(0);
  });

  it("serves sessions side by side, each with its own builds", async () => {
    const store = stores.open();
    const listener = await listen(store);
    const sessions = [0, 1, 2].map(() => connectProgram(store, listener.socketPath));
    const results = await Promise.all(
      sessions.map(async (c, i) => {
        await c.client.connect();
        const drv = basicDrv(store.storeDir, `side-${i}`, `/bin/sleep 0.2; echo ${i} > $out`, {
          system: SYSTEM,
        });
        const r = await c.client.buildDerivation(
          drv.drvPath,
          drv.drv,
          NIX_2_8_DEFAULT_BUILD_OPTIONS,
        );
        return { r, out: drv.out };
      }),
    );
    results.forEach(({ r, out }, i) => {
      expect(r.status).toBe("Built");
      expect(readFileSync(store.toRealPath(out), "utf8")).toBe(`${i}\n`);
    });
    expect(await Promise.all(sessions.map((c) => c.end()))).toEqual([0, 0, 0]);
  });

  it("refuses --write when not started with it: `error: …` on stderr, status 1", async () => {
    const store = stores.open();
    const listener = await listen(store, false);
    const c = connectProgram(store, listener.socketPath);
    c.client.connect().catch(() => {});
    expect(await c.end()).toBe(1);
    expect(c.stderr()).toMatch(/^error: this server does not accept --write sessions/);
    // A read-only session is still served.
    const a = store.addTextToStore("b", "b");
    const r = connectProgram(store, listener.socketPath, ["--serve"]);
    await r.client.connect();
    expect(await r.client.queryValidPaths([a.path])).toEqual([a.path]);
    expect(await r.end()).toBe(0);
  });

  it("ends a session that sends garbage with status 1 and goes on serving others", async () => {
    const store = stores.open();
    const listener = await listen(store);
    const bad = spawn(CONNECT, ["--socket", listener.socketPath, "--serve"]);
    let stderr = "";
    bad.stderr.on("data", (d) => {
      stderr += d;
    });
    bad.stdin.end(Buffer.from("this is not the serve protocol, not at all"));
    bad.stdout.resume();
    const [code] = await once(bad, "exit");
    expect(code).toBe(1);
    expect(stderr).toMatch(/^error: /);
    const good = connectProgram(store, listener.socketPath);
    await good.client.connect();
    expect(await good.end()).toBe(0);
  });

  it("kills a session's builder when its connect program is killed, and serves on", async () => {
    const store = stores.open();
    const listener = await listen(store);
    const pidFile = join(stores.root, `builder-${Date.now()}.pid`);
    const c = connectProgram(store, listener.socketPath);
    await c.client.connect();
    const drv = basicDrv(store.storeDir, "slow", `echo $$ > ${pidFile}; exec /bin/sleep 60`, {
      system: SYSTEM,
    });
    c.client.buildDerivation(drv.drvPath, drv.drv, NIX_2_8_DEFAULT_BUILD_OPTIONS).catch(() => {});
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n"));
    const builder = Number(readFileSync(pidFile, "utf8"));
    expect(alive(builder)).toBe(true);
    c.child.kill("SIGKILL");
    await waitFor(() => !alive(builder) && listener.sessions === 0);
    expect(store.isValidPath(drv.out)).toBe(false);
    const next = connectProgram(store, listener.socketPath);
    await next.client.connect();
    expect(await next.end()).toBe(0);
  });

  it("gives a session's temp roots back when it ends, unless another session holds them", async () => {
    const store = stores.open({ tempRootsOnAdd: false });
    const listener = await listen(store);
    const a = store.addTextToStore("rooted", "rooted");
    const b = store.addTextToStore("rooted-once", "rooted once");
    const rooted = (path: string) =>
      store.database.prepare("SELECT 1 FROM TempRoots WHERE path = ?").all(path).length > 0;
    const first = connectProgram(store, listener.socketPath);
    const second = connectProgram(store, listener.socketPath);
    await first.client.connect();
    await second.client.connect();
    await first.client.queryValidPaths([a.path, b.path], { lock: true });
    await second.client.queryValidPaths([a.path], { lock: true });
    expect([rooted(a.path), rooted(b.path)]).toEqual([true, true]);
    expect(await first.end()).toBe(0);
    await waitFor(() => listener.sessions === 1);
    expect([rooted(a.path), rooted(b.path)]).toEqual([true, false]);
    // The collector may now take what no session holds.
    await store.deletePath(b.path);
    await expect(store.deletePath(a.path)).rejects.toThrow();
    expect(await second.end()).toBe(0);
    await waitFor(() => listener.sessions === 0);
    expect(rooted(a.path)).toBe(false);
    await store.deletePath(a.path);
  });

  it("survives clients that hang up before its replies are written", async () => {
    const store = stores.open();
    const listener = await listen(store);
    const e = new WireEncoder(store.storeDir);
    writeClientHello(e, 0x207);
    const hello = Buffer.concat([SERVE_HELLO, Uint8Array.of(1), e.take()]);
    for (let i = 0; i < 20; i++) {
      const socket = connect(listener.socketPath);
      await once(socket, "connect");
      socket.write(hello);
      socket.destroy();
    }
    await waitFor(() => listener.sessions === 0);
    const c = connectProgram(store, listener.socketPath);
    await c.client.connect();
    expect(await c.end()).toBe(0);
  });

  it("refuses to listen at a path that is not a socket, and leaves it", async () => {
    const store = stores.open();
    const file = join(store.layout.stateDir, "notes.txt");
    writeFileSync(file, "keep me");
    await expect(ServeListener.listen({ store, socketPath: file, write: false })).rejects.toThrow(
      /exists and is not a socket/,
    );
    expect(readFileSync(file, "utf8")).toBe("keep me");
  });

  it("takes over a stale socket a dead server left, and refuses to share a live one", async () => {
    const store = stores.open();
    const socket = join(store.layout.stateDir, "serve.socket");
    // A server killed with SIGKILL leaves its socket file behind.
    const dead = spawn(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(socket)}, () => console.log("up"))`,
    ]);
    await once(dead.stdout, "data");
    dead.kill("SIGKILL");
    await once(dead, "exit");
    expect(existsSync(socket)).toBe(true);
    const listener = await listen(store);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    await expect(listen(store)).rejects.toThrow(ServeListenerError);
    await expect(listen(store)).rejects.toThrow(/already listening/);
    const c = connectProgram(store, listener.socketPath);
    await c.client.connect();
    expect(await c.end()).toBe(0);
    await listener.close();
    listeners.splice(listeners.indexOf(listener), 1);
    expect(existsSync(socket)).toBe(false);
  });

  it("refuses a socket path longer than a Unix socket allows", async () => {
    const store = stores.open();
    await expect(
      ServeListener.listen({ store, socketPath: `/tmp/${"x".repeat(120)}`, write: false }),
    ).rejects.toThrow(/longer than the 107 bytes/);
  });

  it("runs `nixstate serve` itself when no server listens", async () => {
    const store = stores.open();
    const a = store.addTextToStore("c", "c");
    const flags = ["--state-dir", store.layout.stateDir, "--store-dir", store.storeDir.path];
    const c = connectProgram(store, join(stores.root, "nobody.socket"), ["--serve", ...flags]);
    await c.client.connect();
    expect(await c.client.queryValidPaths([a.path])).toEqual([a.path]);
    expect(await c.end()).toBe(0);
  });

  it("says what is wrong when the socket cannot be reached for another reason", () => {
    let out = "";
    try {
      execFileSync(CONNECT, ["--socket", "/proc/version/socket", "--serve"], { stdio: "pipe" });
    } catch (e) {
      out = String((e as { stderr: Buffer }).stderr);
      expect((e as { status: number }).status).toBe(1);
    }
    expect(out).toMatch(/^error: cannot connect to '\/proc\/version\/socket': /);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}
