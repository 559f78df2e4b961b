// The client side of `nix-store --serve` (serve-protocol.md), as Nix's legacy-ssh-store and
// Hydra's queue runner speak it, over any pair of streams: a Readable carrying the server's
// replies and a Writable for our requests (a subprocess's stdio, see serve-transport.ts).
//
// One request is on the wire at a time: calls are queued and each waits for its whole reply.
// Any failure (hang-up, malformed reply) breaks the session for good, as in Nix: every later
// call fails with the same ServeClientError and the caller opens a new connection.
//
// builtOutputs below 0x206 (serve-protocol.md §6.8): Nix 2.4 – 2.10 servers send the map
// whatever the client's version, later ones do not, and both announce 0x207. We speak 0x207 by
// default, so with any server ≥ 0x206 the version alone decides. When a caller makes us speak
// less (to test, or to act as an old client), a BuildDerivation reply is followed by two
// pipelined empty ImportPaths whose acknowledgements (`1`, `1`) cannot be mistaken for the start
// of a map (a count, then a key of ≥ 73 bytes): the bytes after stopTime tell which it was.

import type { Readable, Writable } from "node:stream";
import type { BasicDerivation } from "../derivation/derivation.ts";
import { ByteReader } from "../io/byte-reader.ts";
import { writeChunks } from "../io/writable-sink.ts";
import type { BuildResult } from "../protocol/build-result.ts";
import type { BuildOptions } from "../protocol/serve/build-options.ts";
import { writeExportEnd } from "../protocol/serve/export-stream.ts";
import { readServerHello, writeClientHello } from "../protocol/serve/handshake.ts";
import type { PathWithOutputs } from "../protocol/serve/path-with-outputs.ts";
import { readBuildResult, readBuiltOutputs } from "../protocol/serve/serve-build-result.ts";
import { readPathInfosReply, type ServePathInfo } from "../protocol/serve/serve-path-info.ts";
import {
  type BuildPathsReply,
  readBuildPathsReply,
  readImportAck,
  readPathSetReply,
} from "../protocol/serve/serve-reply.ts";
import { type ServeRequest, writeServeRequest } from "../protocol/serve/serve-request.ts";
import {
  formatServeVersion,
  NEWEST_SERVE_VERSION,
  negotiateServeVersion,
  SERVE_PROTOCOL_MAJOR,
  serveMajor,
  supportsServeFeature,
} from "../protocol/serve/serve-version.ts";
import { ProtocolError } from "../protocol/wire/protocol-error.ts";
import { WireDecoder } from "../protocol/wire/wire-decoder.ts";
import { WireEncoder } from "../protocol/wire/wire-encoder.ts";
import type { WireLimits } from "../protocol/wire/wire-limits.ts";
import { readNar } from "../protocol/wire/wire-nar.ts";
import type { ValidPathInfo } from "../store/path-info.ts";
import type { StoreDir } from "../store-path/store-path.ts";
import { ServeClientError } from "./serve-client-error.ts";

/**
 * The lowest server version we accept by default: 2.4 (Nix 2.0) is the first whose path infos
 * carry the NAR hash, without which paths copied back cannot be checked. (Current Nix asks for
 * 2.5; pass `minServerVersion: 0x205` for the same rule.)
 */
export const DEFAULT_MIN_SERVER_VERSION = 0x204;

/** Stop reading ahead of a NAR consumer that has this many bytes not yet taken. */
const DUMP_HIGH_WATER = 1 << 20;

type Chunks = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface ServeClientOptions {
  /** The store directory paths are checked against (the server's must be the same). */
  storeDir: StoreDir;
  /** The version we announce (default 0x207, what Nix 2.4 – 2.34 send). */
  clientVersion?: number;
  /** Refuse servers below this version (default DEFAULT_MIN_SERVER_VERSION, 2.4). */
  minServerVersion?: number;
  /** Names the server in messages (a host, a command line). */
  server?: string;
  /**
   * The server's stderr tail, for error messages. `hungUp` is true once the server closed its
   * output: a transport then waits briefly for the process to exit so the `error: …` it
   * printed last is included (a server that is still running would only delay the report).
   */
  stderrTail?: (hungUp: boolean) => Promise<string | undefined>;
  /**
   * Whether a BuildDerivation reply carries builtOutputs when the session speaks < 0x206:
   * `"probe"` (default) finds out per reply (see the file comment), true/false trust the caller.
   */
  builtOutputsBelow206?: boolean | "probe";
  limits?: Partial<WireLimits>;
}

export interface QueryValidPathsOptions {
  /** Make the server hold a temp root on each path (so its GC keeps them); Hydra sets it. */
  lock?: boolean;
  /** Let the server substitute missing paths first (`builders-use-substitutes`). */
  substitute?: boolean;
}

export class ServeClient {
  readonly #output: Writable;
  readonly #options: ServeClientOptions;
  readonly #d: WireDecoder;
  readonly #e: WireEncoder;
  readonly #server: string;
  #serverVersion: number | undefined;
  #version: number | undefined;
  /** Tail of the request queue: each call chains on it. */
  #queue: Promise<void> = Promise.resolve();
  /** Set once the session is unusable; every later call throws it. */
  #broken: ServeClientError | undefined;
  #outputError: Error | undefined;
  /** Whether the current request has put bytes on the wire (then any failure breaks the session). */
  #sent = false;
  /** While a NAR consumer lags behind: resolved when it catches up. */
  #gate: Promise<void> | undefined;
  #gateOpen = () => {};

  constructor(input: Readable, output: Writable, options: ServeClientOptions) {
    this.#output = output;
    this.#options = options;
    this.#server = options.server ?? "the server";
    // A dead server's stdin errors (EPIPE) on write: note it instead of crashing the process.
    output.on("error", (error) => {
      this.#outputError = error;
    });
    this.#d = new WireDecoder(new ByteReader(this.#gated(input)), options.storeDir, options.limits);
    this.#e = new WireEncoder(options.storeDir);
  }

  /** The version the server announced (after `connect`). */
  get serverVersion(): number {
    if (this.#serverVersion === undefined) throw new Error("ServeClient: connect() first");
    return this.#serverVersion;
  }

  /** The version both sides speak: the lower of ours and the server's (after `connect`). */
  get version(): number {
    if (this.#version === undefined) throw new Error("ServeClient: connect() first");
    return this.#version;
  }

  /** Say hello; refuse servers that are not serve protocol 2.x at least `minServerVersion`. */
  connect(): Promise<number> {
    return this.#run("the handshake", async () => {
      const ours = this.#options.clientVersion ?? NEWEST_SERVE_VERSION;
      writeClientHello(this.#e, ours);
      await this.#flush();
      let theirs: number;
      try {
        theirs = await readServerHello(this.#d);
      } catch (error) {
        if (error instanceof ProtocolError && error.code === "bad-magic") {
          throw await this.#error("bad-greeting", `protocol mismatch: ${error.problem}`, error);
        }
        throw error;
      }
      const min = this.#options.minServerVersion ?? DEFAULT_MIN_SERVER_VERSION;
      if (serveMajor(theirs) !== SERVE_PROTOCOL_MAJOR || (theirs & 0xffff) < min) {
        throw await this.#error(
          "version",
          `unsupported 'nix-store --serve' protocol version ${formatServeVersion(theirs)}; ` +
            `nixstate needs at least ${formatServeVersion(min)} (upgrade Nix on the server)`,
        );
      }
      this.#serverVersion = theirs;
      this.#version = negotiateServeVersion(ours, theirs);
      return this.#version;
    });
  }

  /** The subset of `paths` valid on the server. */
  queryValidPaths(
    paths: Iterable<string>,
    options: QueryValidPathsOptions = {},
  ): Promise<string[]> {
    const request: ServeRequest = {
      command: "QueryValidPaths",
      lock: options.lock ?? false,
      substitute: options.substitute ?? false,
      paths: [...paths],
    };
    return this.#request(request, () => readPathSetReply(this.#d, "the valid paths"));
  }

  /** Infos of the valid ones among `paths` (invalid paths are left out, as the server does). */
  queryPathInfos(paths: Iterable<string>): Promise<ServePathInfo[]> {
    return this.#request({ command: "QueryPathInfos", paths: [...paths] }, () =>
      readPathInfosReply(this.#d, this.version),
    );
  }

  /** `paths` and everything they reference; with `includeOutputs`, valid outputs of .drvs too. */
  queryClosure(paths: Iterable<string>, includeOutputs = false): Promise<string[]> {
    return this.#request({ command: "QueryClosure", includeOutputs, paths: [...paths] }, () =>
      readPathSetReply(this.#d, "the closure"),
    );
  }

  /**
   * The NAR of `path` as chunks. The request is sent when iteration starts, and the queue is
   * held until the archive's end was read: stopping early drains the rest, so the session stays
   * usable. The server ends the session if the path is not valid there.
   */
  dumpStorePath(path: string): AsyncIterable<Buffer> {
    return { [Symbol.asyncIterator]: () => this.#dump(path) };
  }

  /** Send an export stream (`nix-store --export` format, dependencies first); all or nothing. */
  importPaths(exportStream: Chunks): Promise<void> {
    return this.#run("ImportPaths", async () => {
      writeServeRequest(this.#e, { command: "ImportPaths" }, this.version);
      await this.#flush();
      await this.#send(exportStream);
      await readImportAck(this.#d, "the ImportPaths acknowledgement");
    });
  }

  /**
   * Add one path from its NAR (server ≥ 2.5), which must be exactly `info.narSize` bytes: the
   * server checks its hash and size. Its references must be valid there already.
   */
  addToStoreNar(info: ValidPathInfo, nar: Chunks): Promise<void> {
    return this.#run("AddToStoreNar", async () => {
      writeServeRequest(this.#e, { command: "AddToStoreNar", info }, this.version);
      await this.#flush();
      let sent = 0;
      const counted = async function* () {
        for await (const chunk of nar) {
          sent += chunk.length;
          if (sent > info.narSize) break;
          yield chunk;
        }
      };
      await this.#send(counted());
      if (sent !== info.narSize) {
        // The server is now reading a NAR of the wrong length: the session cannot recover.
        throw await this.#error(
          "aborted",
          `the NAR given for '${info.path}' is ${sent > info.narSize ? "longer" : "shorter"} than its narSize of ${info.narSize} bytes`,
        );
      }
      await readImportAck(this.#d, `the AddToStoreNar acknowledgement for '${info.path}'`);
    });
  }

  /**
   * Build or make valid `paths` (`.drv!out` entries; the .drv files must be on the server).
   * Failures are in-band: status 0, or Nix's exit status and message.
   */
  buildPaths(paths: PathWithOutputs[], options: BuildOptions): Promise<BuildPathsReply> {
    return this.#request({ command: "BuildPaths", paths, options }, () =>
      readBuildPathsReply(this.#d),
    );
  }

  /**
   * Build `drv` as `drvPath` without its .drv file on the server; every path in its inputSrcs
   * must already be valid there (copy them first). Build failures are in-band (the status).
   */
  buildDerivation(
    drvPath: string,
    drv: BasicDerivation,
    options: BuildOptions,
  ): Promise<BuildResult> {
    return this.#run(`BuildDerivation of '${drvPath}'`, async () => {
      const version = this.version;
      const request: ServeRequest = { command: "BuildDerivation", drvPath, drv, options };
      writeServeRequest(this.#e, request, version);
      const mode = supportsServeFeature(version, "builtOutputs")
        ? true
        : (this.#options.builtOutputsBelow206 ?? "probe");
      if (mode === "probe") {
        for (let i = 0; i < 2; i++) {
          writeServeRequest(this.#e, { command: "ImportPaths" }, version);
          writeExportEnd(this.#e);
        }
      }
      await this.#flush();
      if (mode !== "probe") {
        return readBuildResult(this.#d, version, { builtOutputsBelow206: mode });
      }
      const result = await readBuildResult(this.#d, version, { builtOutputsBelow206: false });
      const reader = this.#d.reader;
      const first = await this.#d.wrap("builtOutputs or the probe's ack", () =>
        reader.readExact(8, "builtOutputs or the probe's ack"),
      );
      const n = first.readBigUInt64LE(0);
      let hasMap = n !== 1n;
      if (!hasMap) {
        const second = await this.#d.wrap("the probe's ack", () =>
          reader.readExact(8, "the probe's ack"),
        );
        // A map of one entry goes on with its key's length, never 1 (`sha256:<hex>!name`).
        hasMap = second.readBigUInt64LE(0) !== 1n;
        if (hasMap) reader.unread(Buffer.concat([first, second]));
      } else {
        reader.unread(first);
      }
      if (hasMap) {
        result.builtOutputs = await readBuiltOutputs(this.#d, version);
        await readImportAck(this.#d, "the builtOutputs probe's acknowledgement");
        await readImportAck(this.#d, "the builtOutputs probe's acknowledgement");
      }
      return result;
    });
  }

  /**
   * End the session: close our side (the server exits when it reads end of file) after the
   * queued requests (a dump holds the queue until its archive's end was read). Never throws;
   * further calls fail. To abort a running build instead, end the transport (kill the process).
   */
  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    if (!this.#broken) {
      this.#broken = new ServeClientError(
        "closed",
        this.#server,
        "the session was closed",
        undefined,
      );
    }
    if (!this.#output.writableEnded && !this.#output.destroyed) {
      await new Promise<void>((resolve) => this.#output.end(resolve));
    }
    this.#openGate();
  }

  // ---- plumbing ----------------------------------------------------------------------------

  #request<T>(request: ServeRequest, read: () => Promise<T>): Promise<T> {
    return this.#run(request.command, async () => {
      writeServeRequest(this.#e, request, this.version);
      await this.#flush();
      return read();
    });
  }

  /** Queue `body`; any failure breaks the session. */
  #run<T>(what: string, body: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(async () => {
      if (this.#broken) throw this.#broken;
      this.#sent = false;
      try {
        return await body();
      } catch (error) {
        throw await this.#breakWith(what, error);
      }
    });
    this.#queue = result.then(
      () => {},
      () => {},
    );
    return result;
  }

  /** Hold the queue until the returned function is called (for the streaming dump). */
  #acquire(): Promise<() => void> {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const acquired = this.#queue.then(() => release);
    this.#queue = acquired.then(() => held);
    return acquired;
  }

  async *#dump(path: string): AsyncGenerator<Buffer, void, undefined> {
    const release = await this.#acquire();
    const reader = this.#d.reader;
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    let wake: (() => void) | undefined;
    let done = false;
    let dropping = false;
    let failure: ServeClientError | undefined;
    let parse: Promise<void> | undefined;
    // The queue is freed as soon as the archive's end was read, not when the consumer finishes:
    // a consumer that stops at the last chunk without asking for more must not block the session.
    let released = false;
    const finish = () => {
      if (released) return;
      released = true;
      reader.tap = undefined;
      this.#openGate();
      release();
    };
    try {
      if (this.#broken) throw this.#broken;
      this.#sent = false;
      try {
        writeServeRequest(this.#e, { command: "DumpStorePath", path }, this.version);
        await this.#flush();
      } catch (error) {
        throw await this.#breakWith("DumpStorePath", error);
      }
      reader.tap = (bytes) => {
        if (dropping) return;
        pending.push(bytes);
        pendingBytes += bytes.length;
        if (pendingBytes > DUMP_HIGH_WATER) this.#closeGate();
        wake?.();
      };
      parse = readNar(this.#d, {}, {}, `the NAR of '${path}'`)
        .then(
          () => {},
          async (error) => {
            failure = await this.#breakWith(`DumpStorePath of '${path}'`, error);
          },
        )
        .finally(() => {
          done = true;
          finish();
          wake?.();
        });
      for (;;) {
        while (pending.length > 0) {
          const chunk = pending.shift()!;
          pendingBytes -= chunk.length;
          if (pendingBytes <= DUMP_HIGH_WATER / 2) this.#openGate();
          yield chunk;
        }
        if (done) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      if (failure !== undefined) throw failure;
    } finally {
      // Stopped early: the parse goes on without a consumer, dropping the rest of the archive,
      // so the next reply lines up.
      dropping = true;
      pending.length = 0;
      pendingBytes = 0;
      this.#openGate();
      if (parse) await parse;
      finish();
    }
  }

  #closeGate(): void {
    if (this.#gate) return;
    this.#gate = new Promise((resolve) => {
      this.#gateOpen = resolve;
    });
  }

  #openGate(): void {
    if (!this.#gate) return;
    this.#gate = undefined;
    this.#gateOpen();
  }

  /** The server's replies, pausing while a NAR consumer lags (backpressure for dumps). */
  async *#gated(input: Readable): AsyncGenerator<Uint8Array, void, undefined> {
    for await (const chunk of input) {
      yield chunk as Uint8Array;
      while (this.#gate) await this.#gate;
    }
  }

  async #flush(): Promise<void> {
    if (this.#e.length > 0) await this.#send([this.#e.take()]);
  }

  async #send(chunks: Chunks): Promise<void> {
    if (this.#outputError || this.#output.destroyed || this.#output.writableEnded) {
      throw await this.#error(
        "closed",
        "cannot send: the server's input is closed",
        this.#outputError,
      );
    }
    this.#sent = true;
    await writeChunks(chunks, this.#output);
  }

  async #breakWith(what: string, error: unknown): Promise<ServeClientError> {
    if (this.#broken) return this.#broken;
    let broken: ServeClientError;
    if (error instanceof ServeClientError) broken = error;
    else if (error instanceof ProtocolError && error.code === "truncated") {
      broken = await this.#error(
        "hangup",
        `the server hung up during ${what} (expected ${error.expected})`,
        error,
      );
    } else if (error instanceof ProtocolError) {
      broken = await this.#error("protocol", `bad reply to ${what}: ${error.message}`, error);
    } else if (this.#outputError !== undefined || isPipeError(error)) {
      broken = await this.#error("hangup", `the server hung up during ${what}`, error);
    } else if (this.#sent) {
      const message = error instanceof Error ? error.message : String(error);
      broken = await this.#error("aborted", `${what} failed half-sent: ${message}`, error);
    } else {
      // Our own mistakes (a path outside the store dir, a field the version lacks) are found
      // before anything is sent: drop the partial request and the session is still fine.
      this.#e.take();
      throw error;
    }
    this.#broken = broken;
    return broken;
  }

  async #error(
    code: ServeClientError["code"],
    problem: string,
    cause?: unknown,
  ): Promise<ServeClientError> {
    const tail = await this.#options.stderrTail?.(code === "hangup").catch(() => undefined);
    return new ServeClientError(code, this.#server, problem, tail, { cause });
  }
}

function isPipeError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === "EPIPE" ||
    code === "ERR_STREAM_DESTROYED" ||
    code === "ERR_STREAM_WRITE_AFTER_END" ||
    (error instanceof Error && error.message.startsWith("output stream"))
  );
}
