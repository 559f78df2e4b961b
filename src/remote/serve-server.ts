// The server side of `nix-store --serve` (serve-protocol.md), behaving as Nix 2.8's opServe on
// the local store: one request, one reply, stdout flushed after each. It is transport-neutral
// (any byte source in, any Writable out); errors end the session as a thrown ServeError or
// ProtocolError, which the caller reports as `error: …` on stderr with exit status 1.

import type { Writable } from "node:stream";
import type { LocalBuildSettings } from "../builder/build-settings.ts";
import { Spawner } from "../builder/spawner.ts";
import type { RunLog } from "../events/run-log.ts";
import { ByteReader, type ByteSource } from "../io/byte-reader.ts";
import { ByteWriter } from "../io/byte-writer.ts";
import { CoalescingSink, FdSink, type ReplySink } from "../io/writable-sink.ts";
import type { BuildTarget } from "../machines/build-attempt.ts";
import type { Worker } from "../machines/worker.ts";
import { dumpNar } from "../nar/nar-dump.ts";
import { type BuildResult, isSuccess } from "../protocol/build-result.ts";
import { buildResultErrorText, errorText, hintfmt } from "../protocol/nix-hint.ts";
import type { BuildOptions } from "../protocol/serve/build-options.ts";
import {
  readClientMagic,
  readClientVersion,
  writeServerHello,
} from "../protocol/serve/handshake.ts";
import { writeBuildResult } from "../protocol/serve/serve-build-result.ts";
import { ServeCommand } from "../protocol/serve/serve-command.ts";
import { servePathInfoFromValid, writePathInfo } from "../protocol/serve/serve-path-info.ts";
import {
  writeBuildPathsReply,
  writeImportAck,
  writePathSetReply,
} from "../protocol/serve/serve-reply.ts";
import { readServeRequest, type ServeRequest } from "../protocol/serve/serve-request.ts";
import { tryReadBufferedRequest } from "../protocol/serve/serve-request-buffered.ts";
import {
  NEWEST_SERVE_VERSION,
  NIX_2_8_SERVE_VERSION,
  negotiateServeVersion,
} from "../protocol/serve/serve-version.ts";
import { ProtocolError } from "../protocol/wire/protocol-error.ts";
import { WireDecoder } from "../protocol/wire/wire-decoder.ts";
import { WireEncoder } from "../protocol/wire/wire-encoder.ts";
import { sizedNarChunks } from "../protocol/wire/wire-nar.ts";
import type { LocalStore } from "../store/local-store.ts";
import type { ValidPathInfo } from "../store/path-info.ts";
import { NarHashMismatchError } from "../store/store-errors.ts";
import { BuildLogRelay, logRelayListener } from "./build-log-relay.ts";
import { ServeError } from "./serve-error.ts";

export interface ServeServerOptions {
  store: LocalStore;
  /** `--write`: allow ImportPaths, AddToStoreNar, BuildPaths, BuildDerivation and temp roots. */
  write: boolean;
  /** Build settings besides the per-request options (system, cores, sandbox…). */
  buildSettings?: Partial<LocalBuildSettings>;
  /** Where build logs and notes go (stderr: never part of the protocol). */
  log?: (text: string | Uint8Array) => void;
  /** True while what `log` was given is still queued (running builds' logs then wait). */
  logBacklogged?: () => boolean;
  /** The version we announce (default 0x208, the newest we speak); Nix 2.8 announces 0x207. */
  serverVersion?: number;
  /**
   * Send builtOutputs in BuildResult below 0x206 too, as Nix 2.4 – 2.10 servers do
   * (NixOS/nix#6946). Off by default: each version gets exactly its own reply layout, which a
   * client that reads by the negotiated version (the seed's 0x201 client, Nix ≥ 2.11) needs.
   * On, replies match recorded Nix 2.8 sessions byte for byte (pre-2022 Hydra expects that).
   */
  builtOutputsQuirk?: boolean;
  /** Write each build to the run log (`--no-record` turns it off). */
  record?: boolean;
  /**
   * Starts the builders; one shared by a resident server's sessions (left running at the
   * session's end). Default: the session starts its own at its first build.
   */
  spawner?: Spawner;
}

/** A serve session drops runs beyond the log's retention at its first build and every so many. */
const PRUNE_EVERY = 64;

const WRITE_COMMANDS: ReadonlyMap<number, string> = new Map([
  [ServeCommand.ImportPaths, "importing paths is not allowed"],
  [ServeCommand.AddToStoreNar, "importing paths is not allowed"],
  [ServeCommand.BuildPaths, "building paths is not allowed"],
  [ServeCommand.BuildDerivation, "building paths is not allowed"],
]);

/**
 * Serve one session until the client closes its end; throws on any protocol or store error.
 * `output` is a stream, or a file descriptor written with blocking writes (a process's stdout:
 * no stream queue, and a NAR dump can reuse its buffers).
 */
export async function runServeServer(
  input: ByteSource | ByteReader,
  output: Writable | number,
  options: ServeServerOptions,
): Promise<void> {
  await new ServeSession(input, output, options).run();
}

class ServeSession {
  readonly #store: LocalStore;
  readonly #options: ServeServerOptions;
  /** Replies go out as one write each (a NAR or export stream: one per 64 KiB). */
  readonly #output: ReplySink;
  readonly #d: WireDecoder;
  readonly #e: WireEncoder;
  readonly #log: (text: string | Uint8Array) => void;
  #version = NIX_2_8_SERVE_VERSION;
  /** A look-ahead started during a build to notice the client hanging up (see #watchHangup). */
  #peek: Promise<boolean> | undefined;
  /** Where NARs are encoded: one buffer for all of a session's dumps. */
  readonly #nar = new ByteWriter(128 * 1024);
  /** Starts every build's builders: one process for the session, not one per build. */
  readonly #spawner: Spawner;
  /** The run log, opened at the first build and kept for the session's other builds. */
  #runLog: RunLog | undefined;
  /** Path infos as this session's QueryPathInfos replies encode them (see #encodedInfo). */
  readonly #encoded = new WeakMap<ValidPathInfo, Buffer>();
  /** Builds started in this session (old runs are pruned at the first and every PRUNE_EVERY). */
  #builds = 0;

  constructor(
    input: ByteSource | ByteReader,
    output: Writable | number,
    options: ServeServerOptions,
  ) {
    this.#store = options.store;
    this.#options = options;
    this.#output = typeof output === "number" ? new FdSink(output) : new CoalescingSink(output);
    const reader = input instanceof ByteReader ? input : new ByteReader(input);
    this.#d = new WireDecoder(reader, options.store.storeDir);
    this.#e = new WireEncoder(options.store.storeDir);
    this.#log = options.log ?? (() => {});
    this.#spawner = options.spawner ?? new Spawner();
  }

  async run(): Promise<void> {
    try {
      await this.#serve();
    } finally {
      if (this.#spawner !== this.#options.spawner) this.#spawner.close();
      this.#runLog?.close();
    }
  }

  async #serve(): Promise<void> {
    await this.#handshake();
    for (;;) {
      if (this.#peek) {
        const ended = await this.#peek;
        this.#peek = undefined;
        if (ended) return;
      }
      if (await this.#d.atEnd()) return;
      // A small query already here in full is read without an await a field (none is refused).
      const buffered = tryReadBufferedRequest(this.#d);
      if (buffered !== undefined) {
        await this.#handle(buffered);
        continue;
      }
      await this.#refuseUnlessAllowed();
      let request: ServeRequest | undefined;
      try {
        request = await readServeRequest(this.#d, this.#version);
      } catch (error) {
        if (error instanceof ProtocolError && error.code === "unknown-command") {
          throw new ServeError(error.problem, { cause: error });
        }
        throw error;
      }
      if (request === undefined) return;
      await this.#handle(request);
    }
  }

  async #handshake(): Promise<void> {
    try {
      await readClientMagic(this.#d);
    } catch (error) {
      if (
        error instanceof ProtocolError &&
        (error.code === "bad-magic" || error.code === "truncated")
      ) {
        throw new ServeError("protocol mismatch", { cause: error });
      }
      throw error;
    }
    const ours = this.#options.serverVersion ?? NEWEST_SERVE_VERSION;
    writeServerHello(this.#e, ours);
    await this.#flush();
    this.#version = negotiateServeVersion(ours, await readClientVersion(this.#d));
  }

  /** Like Nix, refuse a mutating command before reading any of its arguments. */
  async #refuseUnlessAllowed(): Promise<void> {
    if (this.#options.write) return;
    const reader = this.#d.reader;
    const head = await this.#d.wrap("command code", () => reader.readExact(8, "command code"));
    reader.unread(head);
    const code = head.readUInt32LE(4) === 0 ? head.readUInt32LE(0) : -1;
    const refusal = WRITE_COMMANDS.get(code);
    if (refusal) throw new ServeError(refusal);
  }

  /**
   * `path, info` as QueryPathInfos sends it, encoded once per info object: the store hands out
   * the same object while it has not changed (PathInfoCache).
   */
  #encodedInfo(info: ValidPathInfo): Buffer {
    let bytes = this.#encoded.get(info);
    if (bytes === undefined) {
      const e = new WireEncoder(this.#store.storeDir);
      writePathInfo(e, servePathInfoFromValid(info), this.#version);
      bytes = e.take();
      this.#encoded.set(info, bytes);
    }
    return bytes;
  }

  /** The reply is complete: send it. */
  async #flush(): Promise<void> {
    // A sink that is done with a piece when `write` returns lets the encoder keep its buffer.
    const e = this.#e;
    if (e.length > 0)
      await this.#output.write(this.#output.reusable ? e.writer.takeView() : e.take());
    await this.#output.flush();
  }

  #requireValid(path: string): void {
    if (!this.#store.isValidPath(path)) throw new ServeError(`path '${path}' is not valid`);
  }

  async #handle(request: ServeRequest): Promise<void> {
    const store = this.#store;
    const e = this.#e;
    switch (request.command) {
      case "QueryValidPaths": {
        // Substitution would need substituters configured for the server: not offered yet.
        if (this.#options.write && request.lock) store.addTempRoots(request.paths);
        writePathSetReply(e, store.queryValidPaths(request.paths));
        break;
      }
      case "QueryPathInfos": {
        for (const info of store.tryQueryPathInfos(request.paths)) {
          e.writer.bytes(this.#encodedInfo(info));
        }
        e.string("");
        break;
      }
      case "DumpStorePath": {
        this.#requireValid(request.path);
        const reuse = this.#output.reusable;
        const nar = this.#nar;
        await this.#output.writeAll(
          dumpNar(store.toRealPath(request.path), { reuseBuffers: reuse, writer: nar }),
        );
        await this.#output.write(reuse ? nar.takeView() : nar.take());
        break;
      }
      case "ImportPaths":
        await store.importExport(this.#d.reader);
        writeImportAck(e);
        break;
      case "ExportPaths":
        for (const p of request.paths) this.#requireValid(p);
        await this.#output.writeAll(store.exportPaths(request.paths));
        break;
      case "QueryClosure":
        for (const p of request.paths) this.#requireValid(p);
        writePathSetReply(
          e,
          store.computeFSClosure(request.paths, { includeOutputs: request.includeOutputs }),
        );
        break;
      case "BuildPaths": {
        const targets: BuildTarget[] = request.paths.map((p) =>
          p.path.endsWith(".drv") ? { drvPath: p.path, outputs: p.outputs } : { path: p.path },
        );
        const names = request.paths.map((p) =>
          p.outputs.length > 0 ? `${p.path}!${p.outputs.join(",")}` : p.path,
        );
        await this.#build(request.options, names, async (worker) => {
          const results = await worker.buildPaths(targets);
          const failed = targets.filter((_, i) => !isSuccess(results[i]!.status));
          if (failed.length === 0) {
            writeBuildPathsReply(e, { status: 0 });
            return 0;
          }
          // Nix rethrows a single failure's error, else one naming every failed path; the
          // reply is the error's text, "error:" and colours included.
          const errorMsg =
            failed.length === 1
              ? errorText(results.find((r) => !isSuccess(r.status)) as BuildResult)
              : errorText(
                  hintfmt`build of ${failed.map((t) => `'${"drvPath" in t ? t.drvPath : t.path}'`).join(", ")} failed`,
                );
          writeBuildPathsReply(e, { status: worker.exitStatus(), errorMsg });
          return worker.exitStatus();
        });
        break;
      }
      case "BuildDerivation":
        await this.#build(request.options, [request.drvPath], async (worker) => {
          const result = await worker.buildDerivation(request.drvPath, request.drv);
          // Nix's bytes: its error messages carry ANSI colours on the wire.
          const errorMsg = buildResultErrorText(result);
          writeBuildResult(e, { ...result, errorMsg }, this.#version, {
            builtOutputsBelow206: this.#options.builtOutputsQuirk ?? false,
          });
          return isSuccess(result.status) ? 0 : worker.exitStatus();
        });
        break;
      case "AddToStoreNar": {
        const { registrationTime, ...info } = request.info;
        const nar = new ByteReader(sizedNarChunks(this.#d, info.narSize));
        try {
          await store.importPath(
            registrationTime === 0 ? info : { ...info, registrationTime },
            nar,
          );
        } catch (error) {
          throw nixImportError(error);
        }
        if (!(await nar.atEnd())) {
          throw new ServeError(
            `the NAR of '${info.path}' ends before its announced size of ${info.narSize} bytes`,
          );
        }
        writeImportAck(e);
        break;
      }
    }
    await this.#flush();
  }

  /**
   * Run builds with the client's options (Nix 2.8: no substitution, logs to stderr, not quoted
   * in errors), cancelling them if the client hangs up meanwhile.
   */
  async #build(
    options: BuildOptions,
    targets: string[],
    body: (worker: Worker) => Promise<number>,
  ): Promise<void> {
    // As current Nix (2.19 on): repeated builds are refused, not silently built once.
    if ((options.nrRepeats ?? 0) !== 0) {
      throw new ServeError(
        "client requested repeating builds, but this is not currently implemented",
      );
    }
    const { LocalBuildEffects, RunLog, RunSession, Worker } = await buildModules();
    const effects = new LocalBuildEffects(
      this.#store,
      {
        ...this.#options.buildSettings,
        maxSilentTime: options.maxSilentTime,
        buildTimeout: options.buildTimeout,
        maxLogSize: options.maxLogSize ?? 0,
        keepFailed: options.keepFailed ?? false,
        logLines: 0,
        cacheFailures: false,
      },
      [],
      this.#spawner,
    );
    const worker = new Worker(effects, { useSubstitutes: false, keepGoing: false });
    const logs = new BuildLogRelay(
      this.#store.layout.logDir,
      (bytes) => this.#log(bytes),
      this.#options.logBacklogged,
    );
    // Each build received is a recorded run; the log relay follows the builders it sees start.
    const record = this.#options.record ?? true;
    if (record && this.#runLog === undefined) {
      try {
        this.#runLog = RunLog.open(this.#store.layout.stateDir);
      } catch {
        // RunSession.start tries again and warns that this build is not recorded.
      }
    }
    const session = RunSession.start(
      worker,
      { command: "serve", targets, options: { ...options }, cwd: process.cwd() },
      {
        stateDir: this.#store.layout.stateDir,
        record,
        warn: (message) => this.#log(`${message}\n`),
        // Pruning a long log costs more than recording a small build: not at every build.
        prune: this.#builds++ % PRUNE_EVERY === 0,
        ...(this.#runLog ? { log: this.#runLog } : {}),
      },
      [
        logRelayListener(logs),
        (e) => {
          if (e.type === "goal.note") this.#log(`${e.message}\n`);
        },
      ],
    );
    this.#peek = this.#d.atEnd();
    let hungUp = false;
    const hangUp = async () => {
      hungUp = true;
      await worker.cancel("the client hung up");
    };
    // A socket can end in an error (the peer reset it) rather than at its end: a hang-up too.
    const watch = this.#peek.then((ended) => (ended ? hangUp() : undefined), hangUp);
    let code = 1;
    try {
      code = await body(worker);
    } finally {
      await effects.drain();
      await logs.flush();
      session.end(hungUp ? 1 : code);
    }
    if (hungUp) {
      await watch;
      throw new ServeError("the client closed the connection during a build; build cancelled");
    }
  }
}

/**
 * The goal machines, their effects and the run log, loaded by a session's first build (later
 * builds find them loaded): a session that only queries or copies paths (`nix copy`) starts
 * without them (~20 ms: xstate, the machines' definitions).
 */
async function buildModules() {
  const [effects, log, session, worker] = await Promise.all([
    import("../builder/local-build-effects.ts"),
    import("../events/run-log.ts"),
    import("../events/run-session.ts"),
    import("../machines/worker.ts"),
  ]);
  return {
    LocalBuildEffects: effects.LocalBuildEffects,
    RunLog: log.RunLog,
    RunSession: session.RunSession,
    Worker: worker.Worker,
  };
}

/** Nix 2.8's wording for a NAR that does not match its announced hash or size. */
function nixImportError(error: unknown): unknown {
  if (!(error instanceof NarHashMismatchError)) return error;
  const kind = error.expected.startsWith("NAR size") ? "size" : "hash";
  const strip = (s: string) => s.replace(/^NAR size /, "");
  return new ServeError(
    `${kind} mismatch importing path '${error.path}'; specified: ${strip(error.expected)} got: ${strip(error.actual)}`,
    { cause: error },
  );
}
