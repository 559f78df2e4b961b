// The serve-protocol client against our own server: `nixstate serve --write` as a subprocess on a
// temp state dir (every method, BuildDerivation at several versions, hang-ups), plus an
// in-process server for what the command line cannot set (a server without the 2.4–2.10 quirk).
// The local store is chrooted so its paths are named like the server's.

import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import { Hash } from "../../src/hash/hash.ts";
import { dumpNar } from "../../src/nar/nar-dump.ts";
import { NIX_2_8_DEFAULT_BUILD_OPTIONS } from "../../src/protocol/serve/build-options.ts";
import { ServeClient } from "../../src/remote/serve-client.ts";
import { ServeClientError } from "../../src/remote/serve-client-error.ts";
import { copyClosureFromServe, copyClosureToServe } from "../../src/remote/serve-copy.ts";
import { runServeServer } from "../../src/remote/serve-server.ts";
import {
  nixstateServeCommand,
  parseSshStoreUri,
  remoteServeCommand,
  type ServeProcess,
  sshServeCommand,
  startServe,
  startSshServe,
} from "../../src/remote/serve-transport.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { SSH_STAND_IN } from "../fixtures/ssh-stand-in.ts";
import { useTempStores } from "../store/temp-store.ts";
import { basicDrv } from "./serve-fixtures.ts";

const stores = useTempStores();
const SYSTEM = nixSystem();
const OPTIONS = NIX_2_8_DEFAULT_BUILD_OPTIONS;

/** A fresh server state dir and a local store whose paths are named like the server's. */
function pair(): { serverState: string; local: LocalStore } {
  const serverState = stores.freshDir("server");
  const local = stores.open({
    storeDir: `${serverState}/store`,
    storeRoot: stores.freshDir("root"),
  });
  return { serverState, local };
}

async function serve(
  serverState: string,
  local: LocalStore,
  clientVersion?: number,
  nix28Compat = false,
): Promise<ServeProcess> {
  return startServe(nixstateServeCommand({ stateDir: serverState, nix28Compat }), {
    storeDir: local.storeDir,
    ...(clientVersion ? { clientVersion } : {}),
  });
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

describe("serve client: handshake", () => {
  it("negotiates 0x208 with our server (0x207 with --nix28-compat, 0x204 when asked)", async () => {
    const { serverState, local } = pair();
    const s = await serve(serverState, local);
    expect(s.client.serverVersion).toBe(0x208);
    expect(s.client.version).toBe(0x208);
    expect(await s.close()).toEqual({ code: 0, signal: null });
    const asNix = await serve(serverState, local, undefined, true);
    expect(asNix.client.serverVersion).toBe(0x207);
    expect(asNix.client.version).toBe(0x207);
    await asNix.close();
    expect(await s.close()).toEqual({ code: 0, signal: null });
    const old = await serve(serverState, local, 0x204);
    expect(old.client.version).toBe(0x204);
    await old.close();
  });

  it("refuses a server below the minimum, naming both versions", async () => {
    const { serverState, local } = pair();
    const attempt = startServe(nixstateServeCommand({ stateDir: serverState, nix28Compat: true }), {
      storeDir: local.storeDir,
      minServerVersion: 0x208,
    });
    await expect(attempt).rejects.toThrow(/version 2\.7 \(0x207\).*at least 2\.8 \(0x208\)/);
    await expect(attempt).rejects.toMatchObject({ code: "version" });
  });

  it("reports a program that cannot be started", async () => {
    const { local } = pair();
    const attempt = startServe(["/nonexistent/nix-store", "--serve"], { storeDir: local.storeDir });
    await expect(attempt).rejects.toMatchObject({ name: "ServeClientError", code: "hangup" });
    await expect(attempt).rejects.toThrow(/cannot start '\/nonexistent\/nix-store'.*ENOENT/);
  });

  it("gives the server exactly the environment asked for, and quotes its stderr and exit status", async () => {
    const { local } = pair();
    const attempt = startServe(["/bin/sh", "-c", "echo ONLY=$ONLY VITEST=$VITEST >&2; exit 7"], {
      storeDir: local.storeDir,
      env: { ONLY: "this" },
    });
    await expect(attempt).rejects.toMatchObject({ name: "ServeClientError", code: "hangup" });
    await expect(attempt).rejects.toThrow(/ONLY=this VITEST=\s*\(exit status 7\)/);
  });

  it("reports a greeting that is not the protocol's (a login banner)", async () => {
    const { local } = pair();
    const attempt = startServe(["sh", "-c", "echo 'Welcome to buildbox!'; cat >/dev/null"], {
      storeDir: local.storeDir,
    });
    await expect(attempt).rejects.toMatchObject({ name: "ServeClientError", code: "bad-greeting" });
    await expect(attempt).rejects.toThrow(/Welcome to buil/);
  });
});

describe("serve client: queries, copies and dumps", () => {
  it("copies a closure with AddToStoreNar, then queries it; concurrent calls are queued", async () => {
    const { serverState, local } = pair();
    const a = local.addTextToStore("a", "aaa");
    const b = local.addTextToStore("b", `needs ${a.path}`, [a.path]);
    const s = await serve(serverState, local);
    const { client } = s;
    expect(await copyClosureToServe(local, client, [b.path])).toEqual([a.path, b.path]);
    expect(await copyClosureToServe(local, client, [b.path])).toEqual([]);
    const missing = local.storeDir.print(local.parseStorePath(a.path)).replace("-a", "-zz");
    // Fired together: the queue keeps them one at a time, replies in order.
    const [valid, infos, closure, lockedValid] = await Promise.all([
      client.queryValidPaths([a.path, b.path, missing]),
      client.queryPathInfos([b.path, missing]),
      client.queryClosure([b.path]),
      client.queryValidPaths([b.path], { lock: true }),
    ]);
    expect(valid).toEqual([a.path, b.path].sort());
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({ path: b.path, references: [a.path], narSize: b.narSize });
    expect(infos[0]!.narHash!.equals(b.narHash)).toBe(true);
    expect(infos[0]!.ca).toBe(b.ca);
    expect(closure).toEqual([a.path, b.path].sort());
    expect(lockedValid).toEqual([b.path]);
    await s.close();
  });

  it("falls back to ImportPaths below 2.5", async () => {
    const { serverState, local } = pair();
    const a = local.addTextToStore("a", "one");
    const b = local.addTextToStore("b", `two ${a.path}`, [a.path]);
    const s = await serve(serverState, local, 0x204);
    expect(await copyClosureToServe(local, s.client, [b.path])).toEqual([a.path, b.path]);
    expect(await s.client.queryValidPaths([a.path, b.path])).toEqual([a.path, b.path].sort());
    const [info] = await s.client.queryPathInfos([b.path]);
    expect(info!.narHash!.equals(b.narHash)).toBe(true);
    await s.close();
  });

  it("dumps NARs exactly to their end, also when the consumer stops early", async () => {
    const { serverState, local } = pair();
    const big = local.addTextToStore("big", "x".repeat(3 << 20));
    const small = local.addTextToStore("small", "small");
    const s = await serve(serverState, local);
    await copyClosureToServe(local, s.client, [big.path, small.path]);
    const nar = await collect(s.client.dumpStorePath(big.path));
    expect(nar.length).toBe(big.narSize);
    expect(Hash.of("sha256", nar).equals(big.narHash)).toBe(true);
    for await (const _ of s.client.dumpStorePath(big.path)) break; // abandoned: drained
    const smallNar = await collect(s.client.dumpStorePath(small.path));
    expect(smallNar).toEqual(await collect(dumpNar(local.toRealPath(small.path))));
    expect(await s.client.queryValidPaths([small.path])).toEqual([small.path]);
    await s.close();
  });
});

describe("serve client: builds", () => {
  it("builds with BuildPaths a .drv copied to the server", async () => {
    const { serverState, local } = pair();
    const { drv, drvPath, out } = basicDrv(local.storeDir, "bp", "echo bp > $out", {
      system: SYSTEM,
    });
    // The .drv file in the local store, as `derivation` writes it.
    const info = local.addTextToStore("bp.drv", printDerivation({ ...drv, inputDrvs: new Map() }));
    expect(info.path).toBe(drvPath);
    const s = await serve(serverState, local);
    await copyClosureToServe(local, s.client, [drvPath]);
    const reply = await s.client.buildPaths([{ path: drvPath, outputs: ["out"] }], OPTIONS);
    expect(reply).toEqual({ status: 0 });
    expect(await s.client.queryValidPaths([out])).toEqual([out]);
    await s.close();
  });

  // Below 0x206 a server may or may not send the map (NixOS/nix#6946): the probe reads both.
  for (const [version, quirk] of [
    [0x207, false],
    [0x206, false],
    [0x205, true],
    [0x205, false],
    [0x203, true],
    [0x202, false],
  ] as const) {
    const sends = version >= 0x206 || quirk;
    it(`BuildDerivation at 0x${version.toString(16)}${sends ? "" : " (no builtOutputs sent)"}: result, output copied back`, async () => {
      const { serverState, local } = pair();
      const src = local.addTextToStore("src", `input at ${version}`);
      const built = basicDrv(
        local.storeDir,
        `b${version.toString(16)}`,
        'read -r line < $src; printf %s "$line" > $out',
        {
          system: SYSTEM,
          inputSrcs: [src.path],
          env: { src: src.path },
        },
      );
      const fails = basicDrv(local.storeDir, "fails", "exit 3", { system: SYSTEM });
      const s = await serve(serverState, local, version, quirk);
      await copyClosureToServe(local, s.client, [src.path]);
      const r = await s.client.buildDerivation(built.drvPath, built.drv, OPTIONS);
      expect(r.errorMsg).toBe("");
      expect(r.status).toBe("Built");
      expect(r.builtOutputs.out?.outPath).toBe(sends ? built.out : undefined);
      if (version >= 0x203) expect(r.timesBuilt).toBe(1);
      const again = await s.client.buildDerivation(built.drvPath, built.drv, OPTIONS);
      expect(again.status).toBe("AlreadyValid");
      const failed = await s.client.buildDerivation(fails.drvPath, fails.drv, OPTIONS);
      expect(failed.status).toBe("PermanentFailure");
      expect(failed.errorMsg).toMatch(/exit code 3/);
      expect(Object.keys(failed.builtOutputs)).toHaveLength(0);
      if (version < 0x204) {
        // Path infos carry no NAR hash yet: nothing could check what comes back.
        await expect(copyClosureFromServe(s.client, local, [built.out])).rejects.toThrow(
          /needs their NAR hashes/,
        );
      } else {
        expect(await copyClosureFromServe(s.client, local, [built.out])).toEqual([built.out]);
        expect(readFileSync(local.toRealPath(built.out), "utf8")).toBe(`input at ${version}`);
      }
      await s.close();
    });
  }

  it("below 0x206 the probe also reads a server that does not send builtOutputs", async () => {
    const server = stores.open();
    const toServer = new PassThrough();
    const toClient = new PassThrough();
    const running = runServeServer(toServer, toClient, {
      store: server,
      write: true,
      builtOutputsQuirk: false,
      buildSettings: { system: SYSTEM },
    }).finally(() => toClient.end());
    const client = new ServeClient(toClient, toServer, {
      storeDir: server.storeDir,
      clientVersion: 0x205,
    });
    expect(await client.connect()).toBe(0x205);
    const ok = basicDrv(server.storeDir, "plain", "echo hi > $out", { system: SYSTEM });
    const r = await client.buildDerivation(ok.drvPath, ok.drv, OPTIONS);
    expect(r.status).toBe("Built");
    expect(Object.keys(r.builtOutputs)).toHaveLength(0);
    expect(await client.queryValidPaths([ok.out])).toEqual([ok.out]);
    await client.close();
    await running;
  });
});

describe("serve client: mistakes", () => {
  it("keeps the session after a request it refused to send, breaks it after a short NAR", async () => {
    const { serverState, local } = pair();
    const s = await serve(serverState, local);
    await expect(s.client.queryValidPaths(["/elsewhere/store/x"])).rejects.toThrow(
      /not in the Nix store|store path/,
    );
    expect(await s.client.queryValidPaths([])).toEqual([]);
    const p = local.addTextToStore("p", "payload");
    const nar = await collect(dumpNar(local.toRealPath(p.path)));
    const short = s.client.addToStoreNar(local.queryPathInfo(p.path), [nar.subarray(0, 16)]);
    await expect(short).rejects.toMatchObject({ name: "ServeClientError", code: "aborted" });
    await expect(s.client.queryValidPaths([])).rejects.toMatchObject({ code: "aborted" });
    expect((await s.close()).code).toBe(1);
  });
});

describe("serve client: the server going away", () => {
  it("reports the server's own error (stderr tail) when it exits mid-session, then stays broken", async () => {
    const { serverState, local } = pair();
    const s = await serve(serverState, local);
    const ghost = local.addTextToStore("ghost", "not on the server");
    const failure = collect(s.client.dumpStorePath(ghost.path));
    await expect(failure).rejects.toBeInstanceOf(ServeClientError);
    await expect(failure).rejects.toMatchObject({ code: "hangup" });
    await expect(failure).rejects.toThrow(`error: path '${ghost.path}' is not valid`);
    await expect(s.client.queryValidPaths([])).rejects.toMatchObject({ code: "hangup" });
    expect((await s.exited).code).toBe(1);
  });

  it("fails a pending request promptly when the server is killed", async () => {
    const { serverState, local } = pair();
    const s = await serve(serverState, local);
    const slow = basicDrv(local.storeDir, "slow", "/bin/sleep 20; echo > $out", { system: SYSTEM });
    const pending = s.client.buildDerivation(slow.drvPath, slow.drv, OPTIONS);
    setTimeout(() => s.child.kill("SIGKILL"), 300);
    const started = Date.now();
    await expect(pending).rejects.toMatchObject({ name: "ServeClientError", code: "hangup" });
    await expect(pending).rejects.toThrow(/killed by SIGKILL/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await expect(s.client.queryClosure([])).rejects.toBeInstanceOf(ServeClientError);
  });
});

describe("serve transport: ssh command lines as Nix 2.8 builds them", () => {
  it.runIf(existsSync(SSH_STAND_IN))(
    "reaches `nixstate --serve --write` through the ssh stand-in (remote-program)",
    async () => {
      const { serverState, local } = pair();
      const shimDir = stores.freshDir("ssh");
      mkdirSync(shimDir);
      copyFileSync(SSH_STAND_IN, join(shimDir, "ssh"));
      const [node, bin] = nixstateServeCommand();
      const program = encodeURIComponent(`${node} ${bin} --state-dir ${serverState}`);
      const s = await startSshServe(`ssh://buildbox?remote-program=${program}`, {
        storeDir: local.storeDir,
        env: { ...process.env, PATH: `${shimDir}:${process.env.PATH}` },
      });
      const a = local.addTextToStore("a", "via ssh");
      expect(await copyClosureToServe(local, s.client, [a.path])).toEqual([a.path]);
      expect(await collect(s.client.dumpStorePath(a.path))).toHaveLength(a.narSize);
      expect((await s.close()).code).toBe(0);
    },
  );

  it("parses ssh:// URIs and adds NIX_SSHOPTS, the key, the port and the remote program", () => {
    const t = parseSshStoreUri(
      "ssh://builder@buildbox:2222?remote-program=/opt/nixstate%20--state-dir%20/s&ssh-key=/k/id&remote-store=local?root=/x",
    );
    expect(t).toMatchObject({ host: "buildbox", user: "builder", port: 2222, sshKey: "/k/id" });
    expect(remoteServeCommand(t)).toBe(
      "/opt/nixstate --state-dir /s --serve --write --store 'local?root=/x'",
    );
    expect(sshServeCommand(t, { NIX_SSHOPTS: " -oBatchMode=yes  -v " })).toEqual([
      "ssh",
      "builder@buildbox",
      "-x",
      "-a",
      "-oBatchMode=yes",
      "-v",
      "-i",
      "/k/id",
      "-p",
      "2222",
      "/opt/nixstate --state-dir /s --serve --write --store 'local?root=/x'",
    ]);
    expect(sshServeCommand(parseSshStoreUri("ssh://localhost"), {})).toEqual([
      "bash",
      "-c",
      "nix-store --serve --write",
    ]);
    expect(() => parseSshStoreUri("ssh://h?remote-progam=x")).toThrow(/unknown setting/);
    expect(() => parseSshStoreUri("http://h")).toThrow(/not an ssh:\/\//);
  });
});
