// A resident `nixstate serve`: serve sessions over a Unix socket, one a connection, so a build
// machine does not start Node for each (Nix's build hook opens a session per build, and Node's
// start alone costs several times a small build). bin/nixstate-serve-connect is the
// remote-program that ssh runs: it sends this server a 5-byte hello (SERVE_HELLO, then 1 if the
// session may write), relays its stdin, and writes the frames it gets back to its stdout and
// stderr, exiting with the session's status (serve-frames.ts).

import { lstatSync, type Stats, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Spawner } from "../builder/spawner.ts";
import { ByteReader } from "../io/byte-reader.ts";
import { FrameChannel, FramedOutput, SERVE_HELLO } from "./serve-frames.ts";
import { runServeServer, type ServeServerOptions } from "./serve-server.ts";

export class ServeListenerError extends Error {
  override name = "ServeListenerError";
}

/** A session's options, less what the listener decides for each connection. */
export interface ServeListenerOptions
  extends Omit<ServeServerOptions, "write" | "log" | "logBacklogged" | "spawner"> {
  /** Where to listen. */
  socketPath: string;
  /** Whether a session may ask for `--write` (imports and builds). */
  write: boolean;
  /** The words after `error: ` for a session that ends in an error (as the CLI prints them). */
  describeError?: (e: unknown) => string;
}

/** Bytes queued for a connection beyond which its builds' logs wait in their files. */
const LOG_BACKLOG = 4 << 20;

/** Unix socket paths are at most 107 bytes on Linux (sun_path is 108, with its NUL). */
const MAX_SOCKET_PATH = 107;

export class ServeListener {
  readonly #server: Server;
  readonly #options: ServeListenerOptions;
  /** One builder spawner for every session: started at the first build, then kept running. */
  readonly #spawner = new Spawner();
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<Promise<void>>();

  private constructor(server: Server, options: ServeListenerOptions) {
    this.#server = server;
    this.#options = options;
    server.on("connection", (socket) => this.#accept(socket));
  }

  /** Listen on `options.socketPath` (taking over a stale socket file a dead server left). */
  static async listen(options: ServeListenerOptions): Promise<ServeListener> {
    const path = options.socketPath;
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      throw new ServeListenerError(
        `the socket path '${path}' is longer than the ${MAX_SOCKET_PATH} bytes a Unix socket allows; choose a shorter one`,
      );
    }
    const existing = lstatOrUndefined(path);
    if (existing) {
      if (!existing.isSocket()) {
        throw new ServeListenerError(`'${path}' exists and is not a socket; choose another path`);
      }
      const answer = await probe(path);
      if (answer !== "ECONNREFUSED") {
        throw new ServeListenerError(
          answer === "answers"
            ? `a server is already listening on '${path}'; stop it first or choose another socket`
            : `cannot tell whether a server listens on '${path}' (${answer}); remove the socket if none does`,
        );
      }
      // Refused: a socket a dead server left behind.
      unlinkSync(path);
    }
    // Half-open: the connect program ends its side at its stdin's end; replies still follow.
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) =>
        reject(
          new ServeListenerError(`cannot listen on '${path}': ${e.code ?? e.message}`, {
            cause: e,
          }),
        ),
      );
      // Only the owner may connect (connecting needs write permission): a session can write.
      // The umask makes the socket 0600 from the start, with no moment open to others.
      const umask = process.umask(0o177);
      try {
        server.listen(path, resolve);
      } finally {
        process.umask(umask);
      }
    });
    return new ServeListener(server, options);
  }

  get socketPath(): string {
    return this.#options.socketPath;
  }

  /** Sessions being served now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Stop listening, end the sessions (their builders are killed) and remove the socket. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await Promise.allSettled(this.#sessions);
    this.#spawner.close();
    await closed;
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    // Errors reach the session through its reads and writes; a stray one must not end the server.
    socket.on("error", () => {});
    const session = this.#serve(socket).finally(() => {
      this.#sockets.delete(socket);
      this.#sessions.delete(session);
    });
    this.#sessions.add(session);
  }

  async #serve(socket: Socket): Promise<void> {
    const out = new FramedOutput(socket);
    const { socketPath, describeError, write, ...serveOptions } = this.#options;
    let status = 0;
    try {
      // Reading to its end must not destroy the socket: the replies and the status still follow.
      const reader = new ByteReader(socket.iterator({ destroyOnReturn: false }));
      const hello = await reader.readExact(SERVE_HELLO.length + 1, "the connect program's hello");
      if (!hello.subarray(0, SERVE_HELLO.length).equals(SERVE_HELLO)) {
        throw new ServeListenerError(
          `'${socketPath}' was connected to by something other than nixstate-serve-connect`,
        );
      }
      const wantsWrite = (hello[SERVE_HELLO.length]! & 1) !== 0;
      if (wantsWrite && !write) {
        throw new ServeListenerError(
          "this server does not accept --write sessions; start it with 'nixstate serve --listen --write'",
        );
      }
      // What the session roots is its own, given back at its end (not at the server's).
      await serveOptions.store.withTempRootScope(() =>
        runServeServer(reader, out.stdout, {
          ...serveOptions,
          write: wantsWrite,
          spawner: this.#spawner,
          log: (text) => out.send(FrameChannel.Stderr, text),
          // A client slow to read its stderr must not make the server hold its logs in memory.
          logBacklogged: () => socket.writableLength > LOG_BACKLOG,
        }),
      );
    } catch (e) {
      status = 1;
      out.send(FrameChannel.Stderr, `error: ${(describeError ?? String)(e)}\n`);
    }
    // The status is the last frame: after every reply.
    await out.flushStdout().catch(() => {});
    out.exit(status);
    socket.end();
  }
}

/** Whether something accepts connections on `path`: "answers", or the connect error's code. */
function probe(path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve("answers");
    });
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}
