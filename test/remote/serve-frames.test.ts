// The frame codec end to end: FramedOutput (the server's side) against the decoder that runs,
// bin/nixstate-serve-connect. Whatever the server writes on each channel, in whatever pieces,
// comes out of the connect program's stdout and stderr whole and in order, with the status as its
// exit code; whatever goes into its stdin reaches the server after the hello.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { FrameChannel, FramedOutput, SERVE_HELLO } from "../../src/remote/serve-frames.ts";
import { repoRoot } from "../vectors.ts";

const CONNECT = join(repoRoot, "bin/nixstate-serve-connect");

type Piece = { channel: FrameChannel.Stdout | FrameChannel.Stderr; bytes: Uint8Array };

describe("serve frames through bin/nixstate-serve-connect", () => {
  let dir: string;
  let socketPath: string;
  let onConnection: (socket: Socket) => void = () => {};
  const server = createServer({ allowHalfOpen: true }, (s) => onConnection(s));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nixstate-frames-"));
    socketPath = join(dir, "s.socket");
    server.listen(socketPath);
    await once(server, "listening");
  });
  afterAll(() => {
    server.close();
    deleteTree(dir);
  });

  /** Run the connect program against a server that writes `pieces` and `status`. */
  async function roundTrip(pieces: Piece[], status: number, input: Uint8Array, write: boolean) {
    const received: Buffer[] = [];
    const served = new Promise<void>((resolve) => {
      onConnection = (socket) => {
        const out = new FramedOutput(socket);
        let writing: Promise<void> | undefined;
        socket.on("data", (d) => {
          received.push(d);
          // Stdout through the Writable (as a session's replies), stderr as sent pieces.
          writing ??= (async () => {
            for (const p of pieces) {
              if (p.channel === FrameChannel.Stderr) out.send(p.channel, p.bytes);
              else if (!out.stdout.write(p.bytes)) await once(out.stdout, "drain");
            }
          })();
        });
        socket.on("end", async () => {
          await writing;
          await out.flushStdout();
          out.exit(status);
          socket.end();
          resolve();
        });
      };
    });
    const child = spawn(CONNECT, [
      "--socket",
      socketPath,
      "--serve",
      ...(write ? ["--write"] : []),
    ]);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (d) => stdout.push(d));
    child.stderr.on("data", (d) => stderr.push(d));
    child.stdin.end(input);
    const [code] = await once(child, "exit");
    await served;
    return {
      code: code as number,
      stdout: Buffer.concat(stdout),
      stderr: Buffer.concat(stderr),
      received: Buffer.concat(received),
    };
  }

  const piece = fc.record({
    channel: fc.constantFrom(FrameChannel.Stdout as const, FrameChannel.Stderr as const),
    bytes: fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ minLength: 16_000, maxLength: 200_000 }),
    ),
  });

  it("delivers every channel's bytes in order and the status as the exit code", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { maxLength: 8 }),
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 100_000 }),
        fc.boolean(),
        async (pieces, status, input, write) => {
          const r = await roundTrip(pieces, status, input, write);
          const on = (ch: FrameChannel) =>
            Buffer.concat(pieces.filter((p) => p.channel === ch).map((p) => p.bytes));
          expect(r.code).toBe(status);
          expect(r.stdout.equals(on(FrameChannel.Stdout))).toBe(true);
          expect(r.stderr.equals(on(FrameChannel.Stderr))).toBe(true);
          const hello = Buffer.concat([SERVE_HELLO, Uint8Array.of(write ? 1 : 0)]);
          expect(r.received.equals(Buffer.concat([hello, input]))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);

  it("fails with a message when the server ends without a status", async () => {
    onConnection = (socket) => {
      socket.once("data", () => {
        new FramedOutput(socket).send(FrameChannel.Stdout, Buffer.from("partial"));
        socket.end();
      });
    };
    const child = spawn(CONNECT, ["--socket", socketPath, "--serve"]);
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(1);
    expect(stdout).toBe("partial");
    expect(stderr).toMatch(/^error: the server at '.*' ended the session without a status/);
  });
});
