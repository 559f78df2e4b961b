// The handshake (serve-protocol.md §3): the client sends magic 1 and its version; the server
// checks the magic, answers magic 2 and its version, and only then reads the client's version.
// So the server side reads the client's hello in two steps.

import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";
import { SERVE_MAGIC_1, SERVE_MAGIC_2 } from "./serve-version.ts";

export function writeClientHello(e: WireEncoder, clientVersion: number): void {
  e.u64(SERVE_MAGIC_1).uint(clientVersion, "client version");
}

export function writeServerHello(e: WireEncoder, serverVersion: number): void {
  e.u64(SERVE_MAGIC_2).uint(serverVersion, "server version");
}

async function readMagic(d: WireDecoder, magic: number, what: string): Promise<void> {
  const at = d.offset;
  const bytes = await d.wrap(what, () => d.reader.readExact(8, what));
  if (bytes.readUInt32LE(0) === magic && bytes.readUInt32LE(4) === 0) return;
  const text = JSON.stringify(bytes.toString("latin1"));
  throw d.fail(
    "bad-magic",
    `${what} 0x${magic.toString(16)}`,
    at,
    `got bytes ${bytes.toString("hex")} (${text}); is something printing to stdout before the protocol starts?`,
  );
}

/** Server side, step 1: the client's magic (a ProtocolError "bad-magic" if it is wrong). */
export async function readClientMagic(d: WireDecoder): Promise<void> {
  await readMagic(d, SERVE_MAGIC_1, "the serve protocol's client magic");
}

/** Server side, step 2 (after sending the server hello): the client's version. */
export async function readClientVersion(d: WireDecoder): Promise<number> {
  return d.uint("client version");
}

/** Both steps at once; returns the client's version. */
export async function readClientHello(d: WireDecoder): Promise<number> {
  await readClientMagic(d);
  return readClientVersion(d);
}

/** Client side: the server's magic and version; returns the server's version. */
export async function readServerHello(d: WireDecoder): Promise<number> {
  await readMagic(d, SERVE_MAGIC_2, "the serve protocol's server magic");
  return d.uint("server version");
}
