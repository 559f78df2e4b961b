// The floor for `bench -- serve-latency`: `node serve-floor.mjs REPLY REQUEST_BYTES` answers the
// serve handshake, then every REQUEST_BYTES bytes read with the bytes of file REPLY, from memory.
// What any Node server pays for a round trip: a wake-up on stdin, a write to stdout.
import { readFileSync, writeSync } from "node:fs";

const reply = readFileSync(process.argv[2]);
const requestBytes = Number(process.argv[3]);
const hello = Buffer.alloc(16);
hello.writeUInt32LE(0x5452eecb, 0);
hello.writeUInt32LE(0x207, 8);
let seen = -16;
process.stdin.on("data", (data) => {
  const before = seen;
  seen += data.length;
  if (before < 0 && seen >= 0) writeSync(1, hello);
  const answered = before < 0 ? 0 : Math.floor(before / requestBytes);
  for (let n = answered; n < Math.floor(Math.max(0, seen) / requestBytes); n++) writeSync(1, reply);
});
