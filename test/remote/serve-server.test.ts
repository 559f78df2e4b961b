// The serve-protocol server driven by our own client codecs: in-process over PassThrough
// streams for the protocol, as a subprocess for exit codes and stderr.

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import type { LocalBuildSettings } from "../../src/builder/build-settings.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { BasicDerivation, DerivationOutput } from "../../src/derivation/derivation.ts";
import { derivationPath, fillInOutputPaths } from "../../src/derivation/hash-modulo.ts";
import { RunLog } from "../../src/events/run-log.ts";
import { Hash } from "../../src/hash/hash.ts";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { dumpNar, regularFileNar } from "../../src/nar/nar-dump.ts";
import { NIX_2_8_DEFAULT_BUILD_OPTIONS } from "../../src/protocol/serve/build-options.ts";
import { writeExportEnd } from "../../src/protocol/serve/export-stream.ts";
import { readServerHello, writeClientHello } from "../../src/protocol/serve/handshake.ts";
import { readBuildResult } from "../../src/protocol/serve/serve-build-result.ts";
import { readPathInfosReply } from "../../src/protocol/serve/serve-path-info.ts";
import {
  readBuildPathsReply,
  readImportAck,
  readPathSetReply,
} from "../../src/protocol/serve/serve-reply.ts";
import { type ServeRequest, writeServeRequest } from "../../src/protocol/serve/serve-request.ts";
import { WireDecoder } from "../../src/protocol/wire/wire-decoder.ts";
import { WireEncoder } from "../../src/protocol/wire/wire-encoder.ts";
import { readNar } from "../../src/protocol/wire/wire-nar.ts";
import { ServeError } from "../../src/remote/serve-error.ts";
import { runServeServer } from "../../src/remote/serve-server.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { makeTextPath } from "../../src/store-path/make-store-path.ts";
import { haveSandbox } from "../builder/have-sandbox.ts";
import { makeDrv } from "../builder/make-drv.ts";
import { runCli } from "../cli/run-cli.ts";
import { useTempStores } from "../store/temp-store.ts";
import { vectorsDir } from "../vectors.ts";

const stores = useTempStores();
const SYSTEM = "x86_64-linux";

/** A client talking to an in-process server over two pipes. */
async function connect(
  store: LocalStore,
  version = 0x207,
  options: { write?: boolean; builtOutputsQuirk?: boolean } = {},
) {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const stderr: string[] = [];
  const server = runServeServer(toServer, toClient, {
    store,
    write: options.write ?? true,
    builtOutputsQuirk: options.builtOutputsQuirk,
    buildSettings: { system: SYSTEM },
    log: (t) => stderr.push(Buffer.from(t).toString()),
  }).finally(() => toClient.end());
  // Keep the rejection observable without an unhandled-rejection warning.
  server.catch(() => {});
  const d = new WireDecoder(new ByteReader(toClient), store.storeDir);
  const e = new WireEncoder(store.storeDir);
  writeClientHello(e, version);
  toServer.write(e.take());
  const serverVersion = await readServerHello(d);
  const negotiated = Math.min(serverVersion, version);
  const send = (request: ServeRequest, ...extra: Iterable<Uint8Array>[]) => {
    writeServeRequest(e, request, negotiated);
    toServer.write(e.take());
    for (const chunks of extra) for (const c of chunks) toServer.write(c);
  };
  const close = async () => {
    toServer.end();
    await server;
    expect(await d.atEnd()).toBe(true);
  };
  return { d, e, send, close, server, toServer, serverVersion, negotiated, stderr };
}

function textFile(store: LocalStore, name: string, text: string) {
  const bytes = Buffer.from(text);
  const hash = Hash.of("sha256", bytes);
  const path = store.storeDir.print(makeTextPath(store.storeDir, name, hash));
  const nar = Buffer.concat(regularFileNar(bytes));
  return {
    path,
    nar,
    info: {
      path,
      deriver: undefined,
      narHash: Hash.of("sha256", nar),
      references: [],
      registrationTime: 0,
      narSize: nar.length,
      ultimate: false,
      sigs: [],
      ca: `text:${hash.format("nix32")}`,
    },
  };
}

/** A BasicDerivation that exists only in memory, with its would-be .drv path. */
function basicDrv(store: LocalStore, name: string, script: string) {
  const outputs = new Map<string, DerivationOutput>([["out", { type: "deferred" }]]);
  const env = new Map([
    ["builder", "/bin/sh"],
    ["name", name],
    ["system", SYSTEM],
  ]);
  const drv = fillInOutputPaths(
    {
      name,
      outputs,
      inputSrcs: [],
      platform: SYSTEM,
      builder: "/bin/sh",
      args: ["-c", script],
      env,
    },
    store.storeDir,
    () => {
      throw new Error("no input derivations");
    },
  ) as BasicDerivation;
  const drvPath = derivationPath(drv, printDerivation(drv), store.storeDir);
  const out = drv.outputs.get("out") as { path: string };
  return { drv, drvPath, out: out.path };
}

describe("serve server: handshake", () => {
  for (let minor = 0; minor <= 8; minor++) {
    const version = 0x200 | minor;
    it(`answers 0x208 to a 0x${version.toString(16)} client and serves at the lower version`, async () => {
      const store = stores.open();
      const a = store.addTextToStore("a", "a");
      const c = await connect(store, version);
      expect(c.serverVersion).toBe(0x208);
      c.send({ command: "QueryValidPaths", lock: false, substitute: false, paths: [a.path] });
      expect(await readPathSetReply(c.d, "valid")).toEqual([a.path]);
      c.send({ command: "QueryPathInfos", paths: [a.path] });
      const [info] = await readPathInfosReply(c.d, c.negotiated);
      expect(info!.narHash === undefined).toBe(minor < 4);
      await c.close();
    });
  }
});

describe("serve server: queries", () => {
  it("answers QueryValidPaths, QueryPathInfos (skipping invalid paths) and QueryClosure", async () => {
    const store = stores.open();
    const a = store.addTextToStore("a", "a");
    const b = store.addTextToStore("b", `ref ${a.path}`, [a.path]);
    const missing = `${store.storeDir.path}/${"0".repeat(32)}-missing`;
    const c = await connect(store);
    c.send({ command: "QueryValidPaths", lock: true, substitute: false, paths: [b.path, missing] });
    expect(await readPathSetReply(c.d, "valid")).toEqual([b.path]);
    c.send({ command: "QueryPathInfos", paths: [b.path, missing] });
    const infos = await readPathInfosReply(c.d, 0x207);
    expect(infos.map((i) => i.path)).toEqual([b.path]);
    expect(infos[0]!.references).toEqual([a.path]);
    expect(infos[0]!.narHash!.equals(b.narHash)).toBe(true);
    expect(infos[0]!.ca).toMatch(/^text:sha256:/);
    c.send({ command: "QueryClosure", includeOutputs: false, paths: [b.path] });
    expect(await readPathSetReply(c.d, "closure")).toEqual([a.path, b.path].sort());
    await c.close();
  });

  it("ends the session with Nix's message for DumpStorePath of an invalid path", async () => {
    const store = stores.open();
    const c = await connect(store);
    const missing = `${store.storeDir.path}/${"0".repeat(32)}-missing`;
    c.send({ command: "DumpStorePath", path: missing });
    await expect(c.server).rejects.toThrow(`path '${missing}' is not valid`);
  });
});

describe("serve server: transfers", () => {
  it("stores a path sent with AddToStoreNar and gives it back through QueryPathInfos and DumpStorePath", async () => {
    const store = stores.open();
    const f = textFile(store, "hello.txt", "hello over serve\n");
    const c = await connect(store);
    c.send({ command: "AddToStoreNar", info: f.info }, [f.nar]);
    await readImportAck(c.d);
    // Again: already valid, the NAR is read and dropped.
    c.send({ command: "AddToStoreNar", info: f.info }, [f.nar]);
    await readImportAck(c.d);
    c.send({ command: "QueryPathInfos", paths: [f.path] });
    const [info] = await readPathInfosReply(c.d, 0x207);
    expect(info!.narSize).toBe(f.nar.length);
    expect(info!.narHash!.equals(f.info.narHash)).toBe(true);
    expect(info!.ca).toBe(f.info.ca);
    c.send({ command: "DumpStorePath", path: f.path });
    const chunks: Buffer[] = [];
    const start = c.d.offset;
    const tap = (b: Buffer) => chunks.push(Buffer.from(b));
    c.d.reader.tap = tap;
    const size = await readNar(c.d);
    c.d.reader.tap = undefined;
    expect(size).toBe(f.nar.length);
    expect(c.d.offset - start).toBe(f.nar.length);
    await c.close();
    expect(store.isValidPath(f.path)).toBe(true);
  });

  it("refuses a NAR that does not match its hash and stores nothing", async () => {
    const store = stores.open();
    const f = textFile(store, "bad.txt", "one\n");
    const other = Buffer.concat(regularFileNar(Buffer.from("two\n")));
    const c = await connect(store);
    c.send({ command: "AddToStoreNar", info: f.info }, [other]);
    await expect(c.server).rejects.toThrow(
      new RegExp(`^hash mismatch importing path '${f.path}'; specified: sha256:\\S+ got: sha256:`),
    );
    expect(store.isValidPath(f.path)).toBe(false);
  });

  it("exports paths and imports the export stream into another store", async () => {
    const source = stores.open({ storeDir: "/nix/store", storeRoot: stores.freshDir("root") });
    const target = stores.open({ storeDir: "/nix/store", storeRoot: stores.freshDir("root") });
    const a = source.addTextToStore("a", "a");
    const b = source.addTextToStore("b", `ref ${a.path}`, [a.path]);
    const c1 = await connect(source);
    c1.send({ command: "ExportPaths", sign: false, paths: [a.path, b.path] });
    c1.toServer.end();
    await c1.server;
    const stream: Buffer[] = [];
    for await (const chunk of c1.d.reader.rest()) stream.push(Buffer.from(chunk));
    expect(stream.length).toBeGreaterThan(0);
    const c2 = await connect(target);
    c2.send({ command: "ImportPaths" }, stream);
    await readImportAck(c2.d);
    await c2.close();
    expect(target.queryPathInfo(b.path).references).toEqual([a.path]);
    expect(target.queryPathInfo(a.path).narHash.equals(a.narHash)).toBe(true);
  });

  it("acknowledges an empty ImportPaths stream", async () => {
    const store = stores.open();
    const c = await connect(store);
    const e = new WireEncoder(store.storeDir);
    writeExportEnd(e);
    c.send({ command: "ImportPaths" }, [e.take()]);
    await readImportAck(c.d);
    await c.close();
  });
});

describe("serve server: builds", () => {
  const options = { ...NIX_2_8_DEFAULT_BUILD_OPTIONS };

  it("with the Nix 2.8 quirk on, sends builtOutputs after status and errorMsg at 0x201", async () => {
    const store = stores.open();
    const b = basicDrv(store, "mem", "echo building mem; echo hi > $out");
    const c = await connect(store, 0x201, { builtOutputsQuirk: true });
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
    expect(await c.d.uint("status")).toBe(0);
    expect(await c.d.string("errorMsg")).toBe("");
    // Nix 2.4 – 2.10 send builtOutputs whatever the version (NixOS/nix#6946).
    expect(await c.d.count("builtOutputs")).toBe(1);
    const id = await c.d.string("id");
    expect(id).toMatch(/^sha256:[0-9a-f]{64}!out$/);
    const json = JSON.parse(await c.d.string("realisation"));
    expect(json).toEqual({
      dependentRealisations: {},
      id,
      outPath: b.out.slice(store.storeDir.path.length + 1),
      signatures: [],
    });
    await c.close();
    expect(store.isValidPath(b.out)).toBe(true);
    expect(store.queryPathInfo(b.out).deriver).toBe(b.drvPath);
    expect(store.isValidPath(b.drvPath)).toBe(false);
    expect(c.stderr.join("")).toContain("building mem");
  });

  it("sends exactly status and errorMsg at 0x201 by default", async () => {
    const store = stores.open();
    const b = basicDrv(store, "mem2", "echo hi > $out");
    const c = await connect(store, 0x201);
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
    const r = await readBuildResult(c.d, 0x201);
    expect(r.status).toBe("Built");
    await c.close();
  });

  it("streams the build log to stderr while the builder runs, each byte once", async () => {
    const store = stores.open();
    const b = basicDrv(store, "live", "echo first; /bin/sleep 1; echo second; echo > $out");
    const c = await connect(store);
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
    let replied = false;
    const reply = readBuildResult(c.d, 0x207).then((r) => {
      replied = true;
      return r;
    });
    const deadline = Date.now() + 10_000;
    while (!c.stderr.join("").includes("first") && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(c.stderr.join("")).toContain("first");
    // The first line came while the builder was still sleeping: before the reply.
    expect(replied).toBe(false);
    expect(c.stderr.join("")).not.toContain("second");
    expect((await reply).status).toBe("Built");
    await c.close();
    expect(c.stderr.join("")).toBe("first\nsecond\n");
  });

  it("refuses repeated builds (nrRepeats) with current Nix's message instead of building once", async () => {
    const store = stores.open();
    const b = basicDrv(store, "repeat", "echo > $out");
    const c = await connect(store);
    c.send({
      command: "BuildDerivation",
      drvPath: b.drvPath,
      drv: b.drv,
      options: { ...options, nrRepeats: 1 },
    });
    await expect(c.server).rejects.toThrow(
      "client requested repeating builds, but this is not currently implemented",
    );
    expect(store.isValidPath(b.out)).toBe(false);
  });

  it("answers AlreadyValid for outputs it has", async () => {
    const store = stores.open();
    const b = basicDrv(store, "twice", "echo hi > $out");
    const c = await connect(store);
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
    expect((await readBuildResult(c.d, 0x207)).status).toBe("Built");
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
    const again = await readBuildResult(c.d, 0x207);
    expect(again.status).toBe("AlreadyValid");
    expect(Object.keys(again.builtOutputs)).toEqual(["out"]);
    await c.close();
  });

  it("records each build of a session as a run of its own, all through one open run log", async () => {
    const store = stores.open();
    const c = await connect(store);
    const names = ["first", "second", "first"];
    for (const name of names) {
      const b = basicDrv(store, name, "echo > $out");
      c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
      await readBuildResult(c.d, 0x207);
    }
    await c.close();
    const log = RunLog.open(store.layout.stateDir);
    try {
      const runs = log.runs();
      expect(runs.map((r) => [r.request.command, r.state, r.exitCode])).toEqual(
        names.map(() => ["serve", "ended", 0]),
      );
      expect(runs.map((r) => r.request.targets)).toEqual(
        names.map((n) => [basicDrv(store, n, "echo > $out").drvPath]),
      );
      for (const r of runs) {
        const types = log.events(r.id).map((e) => e.type);
        expect([types[0], types.at(-1)]).toEqual(["run.started", "run.ended"]);
      }
    } finally {
      log.close();
    }
  });

  it("reports a failing builder as PermanentFailure with Nix's message and keeps no output", async () => {
    const store = stores.open();
    const b = basicDrv(store, "fail", "echo partial > $out; echo oops >&2; exit 3");
    const c = await connect(store);
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
    const r = await readBuildResult(c.d, 0x207);
    expect(r.status).toBe("PermanentFailure");
    // Nix 2.8's bytes: a goal's error after ANSI normal, the path in magenta bold.
    expect(r.errorMsg).toBe(
      `\x1b[0mbuilder for '\x1b[35;1m${b.drvPath}\x1b[0m' failed with exit code 3`,
    );
    expect(r.timesBuilt).toBe(1);
    expect(Object.keys(r.builtOutputs)).toHaveLength(0);
    await c.close();
    expect(store.isValidPath(b.out)).toBe(false);
    expect(existsSync(store.toRealPath(b.out))).toBe(false);
    expect(c.stderr.join("")).toContain("oops");
  });

  it("answers a missing input in-band with MiscFailure, as Nix 2.8 does", async () => {
    const store = stores.open();
    const missing = `${store.storeDir.path}/${"1".repeat(32)}-missing-input`;
    const b = basicDrv(store, "needsinput", "echo > $out");
    const drv = { ...b.drv, inputSrcs: [missing] };
    const c = await connect(store);
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv, options });
    const r = await readBuildResult(c.d, 0x207);
    expect(r.status).toBe("MiscFailure");
    expect(r.errorMsg).toBe(
      `\x1b[31;1merror:\x1b[0m dependency '\x1b[35;1m${missing}\x1b[0m' of '\x1b[35;1m${b.drvPath}\x1b[0m' does not exist, and substitution is disabled`,
    );
    await c.close();
  });

  it("answers BuildPaths with 0, or Nix's exit status and error text", async () => {
    const store = stores.open();
    const ok = makeDrv(store, { name: "bp", script: "echo ok > $out" });
    const bad = makeDrv(store, { name: "bpfail", script: "exit 3" });
    const c = await connect(store);
    c.send({ command: "BuildPaths", paths: [{ path: ok.drvPath, outputs: ["out"] }], options });
    expect(await readBuildPathsReply(c.d)).toEqual({ status: 0 });
    c.send({ command: "BuildPaths", paths: [{ path: bad.drvPath, outputs: [] }], options });
    expect(await readBuildPathsReply(c.d)).toEqual({
      status: 100,
      // As recorded from Nix 2.8 (build-paths-0x207): the rethrown error's text, colours included.
      errorMsg: `\x1b[31;1merror:\x1b[0m builder for '\x1b[35;1m${bad.drvPath}\x1b[0m' failed with exit code 3`,
    });
    await c.close();
  });

  it("cancels the build and ends when the client hangs up", async () => {
    const store = stores.open();
    const b = basicDrv(store, "slow", "/bin/sleep 30; echo > $out");
    const c = await connect(store);
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
    setTimeout(() => c.toServer.end(), 300);
    const started = Date.now();
    await expect(c.server).rejects.toThrow(/closed the connection during a build/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(store.isValidPath(b.out)).toBe(false);
  });
});

describe("serve server: write protection", () => {
  const options = NIX_2_8_DEFAULT_BUILD_OPTIONS;
  it("refuses AddToStoreNar and ImportPaths without --write", async () => {
    const store = stores.open();
    const f = textFile(store, "nope.txt", "nope\n");
    const c = await connect(store, 0x207, { write: false });
    c.send({ command: "AddToStoreNar", info: f.info }, [f.nar]);
    await expect(c.server).rejects.toThrow(new ServeError("importing paths is not allowed"));
    expect(await c.d.atEnd()).toBe(true);
    expect(store.isValidPath(f.path)).toBe(false);
  });

  it("refuses BuildDerivation and BuildPaths without --write", async () => {
    const store = stores.open();
    const b = basicDrv(store, "nobuild", "echo > $out");
    const c = await connect(store, 0x207, { write: false });
    c.send({ command: "BuildDerivation", drvPath: b.drvPath, drv: b.drv, options });
    await expect(c.server).rejects.toThrow("building paths is not allowed");
    const c2 = await connect(store, 0x207, { write: false });
    c2.send({
      command: "BuildPaths",
      paths: [{ path: b.drvPath, outputs: [] }],
      options,
    });
    await expect(c2.server).rejects.toThrow("building paths is not allowed");
  });

  it("still answers queries without --write", async () => {
    const store = stores.open();
    const a = store.addTextToStore("a", "a");
    const c = await connect(store, 0x207, { write: false });
    c.send({ command: "DumpStorePath", path: a.path });
    const nar: Buffer[] = [];
    for await (const chunk of dumpNar(store.toRealPath(a.path))) nar.push(chunk);
    expect(await c.d.reader.readExact(Buffer.concat(nar).length)).toEqual(Buffer.concat(nar));
    await c.close();
  });
});

describe("serve server: the command line", () => {
  const dir = mkdtempSync(join(tmpdir(), "nixstate-serve-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(n, 0);
    return b;
  };
  const hello = Buffer.concat([u64(0x390c9deb), u64(0x207)]);
  const greeting = Buffer.concat([u64(0x5452eecb), u64(0x208)]);

  it("fails with 'protocol mismatch' on a bad magic, writing nothing", () => {
    const r = runCli(["serve", "--state-dir", dir], {
      input: Buffer.from("Welcome!\n\0\0\0\0\0\0\0"),
    });
    expect(r.status).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toBe("error: protocol mismatch\n");
  });

  it("fails with Nix's message on an unknown command (as `--serve --write`)", () => {
    const r = runCli(["--serve", "--write", "--state-dir", dir], {
      input: Buffer.concat([hello, u64(42)]),
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toEqual(greeting);
    expect(r.stderr).toBe("error: unknown serve command 42\n");
  });

  it("refuses to import without --write and exits 0 when the client just hangs up", () => {
    const refused = runCli(["serve", "--state-dir", dir], {
      input: Buffer.concat([hello, u64(9)]),
    });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toBe("error: importing paths is not allowed\n");
    const quiet = runCli(["--serve", "--state-dir", dir], { input: hello });
    expect(quiet.status).toBe(0);
    expect(quiet.stdout).toEqual(greeting);
    expect(quiet.stderr).toBe("");
  });
});

describe("serve server: replaying sessions recorded with Nix 2.8 as the server", () => {
  const sessions = join(vectorsDir, "serve-protocol/nix-2.8-sessions");
  /**
   * Send a recorded client stream and keep stdin open until as many bytes came back as Nix
   * sent: closing it earlier would be a hang-up, which cancels builds (as it does in Nix).
   */
  const replay = async (
    store: LocalStore,
    name: string,
    buildSettings: Partial<LocalBuildSettings> = {},
  ): Promise<Buffer> => {
    const expectedLength = readFileSync(join(sessions, `${name}.to-client.bin`)).length;
    const out: Buffer[] = [];
    let received = 0;
    let allReceived = () => {};
    const done = new Promise<void>((resolve) => {
      allReceived = resolve;
    });
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        out.push(Buffer.from(chunk));
        received += chunk.length;
        if (received >= expectedLength) allReceived();
        callback();
      },
    });
    const request = readFileSync(join(sessions, `${name}.to-server.bin`));
    async function* input() {
      yield request;
      await done;
    }
    await runServeServer(input(), sink, {
      store,
      write: true,
      buildSettings,
      // As Nix 2.8: it announces 0x207 and sends builtOutputs at every version (NixOS/nix#6946).
      serverVersion: 0x207,
      builtOutputsQuirk: true,
    });
    return Buffer.concat(out);
  };

  it("answers nix-copy-to, then the query sessions, byte for byte", async () => {
    // The recordings' store is /nix/store: keep ours under a temp root with that logical name.
    const store = stores.open({ storeDir: "/nix/store", storeRoot: stores.freshDir("root") });
    for (const name of [
      "nix-copy-to",
      "queries-0x207",
      "query-path-infos-0x203",
      "dump-and-export-0x207",
      "import-and-add-0x207",
    ]) {
      const expected = readFileSync(join(sessions, `${name}.to-client.bin`));
      expect((await replay(store, name)).toString("hex"), name).toBe(expected.toString("hex"));
    }
  });

  it("fails the error sessions like Nix: same stdout, same stderr message", () => {
    const dir = stores.freshDir("errors");
    for (const name of ["error-unknown-command", "error-not-writable", "error-bad-magic"]) {
      const meta = JSON.parse(readFileSync(join(sessions, `${name}.json`), "utf8"));
      const write = (meta.serverCommand as string).includes("--write");
      const flags = ["--nix28-compat", ...(write ? ["--write"] : [])];
      const r = runCli(["serve", ...flags, "--state-dir", dir], {
        input: readFileSync(join(sessions, `${name}.to-server.bin`)),
      });
      expect(r.status, name).toBe(meta.exitCode);
      expect(r.stderr, name).toBe(meta.serverStderr);
      expect(r.stdout.toString("hex"), name).toBe(
        readFileSync(join(sessions, `${name}.to-client.bin`)).toString("hex"),
      );
    }
  });

  // Builds into a logical /nix/store kept elsewhere need the sandbox to map it.
  /**
   * Replay build sessions into a logical /nix/store kept elsewhere (the sandbox maps it) and
   * compare with Nix's bytes, the 16 bytes of clocks (startTime, stopTime) at `clocksAt` masked.
   */
  const expectBuildSessions = async (names: string[], clocksAt?: (reply: Buffer) => number) => {
    const store = stores.open({ storeDir: "/nix/store", storeRoot: stores.freshDir("root") });
    const mask = (b: Buffer) => {
      if (!clocksAt) return b;
      const at = clocksAt(b);
      return Buffer.concat([b.subarray(0, at), Buffer.alloc(16), b.subarray(at + 16)]);
    };
    for (const name of names) {
      const got = await replay(store, name, { sandbox: true, system: "x86_64-linux" });
      const expected = readFileSync(join(sessions, `${name}.to-client.bin`));
      expect(mask(got).toString("hex"), name).toBe(mask(expected).toString("hex"));
    }
  };

  it.runIf(haveSandbox())(
    "answers build-derivation-0x202 byte for byte: status, errorMsg, builtOutputs (the quirk)",
    () => expectBuildSessions(["build-derivation-0x202"]),
  );

  // After the 16-byte greeting: status, errorMsg (length, padded text), timesBuilt,
  // isNonDeterministic, then the clocks.
  const clocksAfterErrorMsg = (b: Buffer) =>
    32 + Math.ceil(Number(b.readBigUInt64LE(24)) / 8) * 8 + 16;

  it.runIf(haveSandbox())(
    "answers build-derivation-0x205/-0x206/-0x207 and the AlreadyValid repeat byte for byte, times aside",
    () =>
      expectBuildSessions(
        [
          "build-derivation-0x205",
          "build-derivation-0x206",
          "build-derivation-0x207",
          "build-derivation-already-valid-0x207",
        ],
        clocksAfterErrorMsg,
      ),
  );

  it.runIf(haveSandbox())(
    "answers the failing, silent, slow and missing-input sessions byte for byte, times aside",
    () =>
      expectBuildSessions(
        [
          "build-derivation-fail-0x207",
          "build-derivation-missing-input-0x207",
          "build-derivation-silent-0x207",
          "build-derivation-slow-0x207",
        ],
        clocksAfterErrorMsg,
      ),
    30_000,
  );

  // QueryValidPaths, AddToStoreNar, BuildDerivation (its reply at 32: status, errorMsg "",
  // timesBuilt, isNonDeterministic, then the clocks at 64), QueryPathInfos, the NAR.
  it.runIf(haveSandbox())(
    "answers Nix 2.8's build hook (the remote-build session) byte for byte, times aside",
    () => expectBuildSessions(["remote-build"], () => 64),
  );
});
