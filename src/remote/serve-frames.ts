// What a resident serve server sends its connect program (bin/nixstate-serve-connect): frames of
// a channel byte, a 32-bit big-endian length and that many bytes. One stream carries a session's
// replies and its build logs in the order they were written, then its exit status.

import type { Socket } from "node:net";
import { Writable } from "node:stream";

/** The connect program's first bytes, before the byte of flags (bit 0: --write). */
export const SERVE_HELLO = Buffer.from("nxs1");

export enum FrameChannel {
  /** Protocol replies: the connect program's stdout. */
  Stdout = 1,
  /** Build logs and errors: its stderr. */
  Stderr = 2,
  /** One byte: the session's exit status; the last frame. */
  Exit = 3,
}

const HEADER = 5;
/** Pieces up to this size are copied behind their header and sent as one write. */
const COPY_BELOW = 16 * 1024;

/** Frames written to one socket; the session's replies go through `stdout`, a Writable. */
export class FramedOutput {
  readonly #socket: Socket;
  /** A Writable for the serve session: each write becomes one frame, done once sent. */
  readonly stdout: Writable;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.stdout = new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _encoding, done) => this.#frame(FrameChannel.Stdout, chunk, done),
    });
    // A failed write (the connect program went away) destroys the Writable, and the session's
    // next write or read ends it; unheard, the error would end the whole server.
    this.stdout.on("error", () => {});
  }

  /** Send one frame now (a log line, an error), not waiting for it to be written. */
  send(channel: FrameChannel, data: string | Uint8Array): void {
    this.#frame(channel, typeof data === "string" ? Buffer.from(data) : data);
  }

  /** Wait until the replies written to `stdout` have gone to the socket. */
  async flushStdout(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.stdout.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
  }

  /** The last frame: the exit status. */
  exit(status: number): void {
    this.send(FrameChannel.Exit, Uint8Array.of(status));
  }

  #frame(channel: FrameChannel, data: Uint8Array, done?: (error?: Error | null) => void): void {
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) {
      done?.(new Error("the connection to the connect program is closed"));
      return;
    }
    const head = Buffer.allocUnsafe(HEADER + (data.length < COPY_BELOW ? data.length : 0));
    head[0] = channel;
    head.writeUInt32BE(data.length, 1);
    if (data.length < COPY_BELOW) {
      head.set(data, HEADER);
      socket.write(head, done);
      return;
    }
    socket.cork();
    socket.write(head);
    socket.write(data, done);
    socket.uncork();
  }
}
