// The serve server under random and mutated sessions (seeded from valid ones at several protocol
// versions): every session ends — with its replies or a typed error, never a TypeError or
// RangeError, never a hang — and a session without --write changes nothing in the store.
import { Writable } from "node:stream";
import { fc } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { dumpNar } from "../../src/nar/nar-dump.ts";
import { writeClientHello } from "../../src/protocol/serve/handshake.ts";
import { type ServeRequest, writeServeRequest } from "../../src/protocol/serve/serve-request.ts";
import { WireEncoder } from "../../src/protocol/wire/wire-encoder.ts";
import { runServeServer } from "../../src/remote/serve-server.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { useTempStores } from "../store/temp-store.ts";

const stores = useTempStores();
const SESSIONS = Number(process.env.NIXSTATE_SERVE_FUZZ ?? 10_000);

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** Valid sessions: a hello and requests, with an export stream or NAR where one follows. */
async function seeds(store: LocalStore): Promise<Buffer[]> {
  const a = store.addTextToStore("fuzz-a", "A").path;
  const b = store.addTextToStore("fuzz-b", `B ${a}`, [a]).path;
  const missing = `${store.storeDir.path}/${"0".repeat(32)}-missing`;
  const exported = await bytesOf(store.exportPaths([a]));
  const nar = await bytesOf(dumpNar(store.toRealPath(b)));
  const info = store.queryPathInfo(b);
  const sessions: Buffer[] = [];
  for (const version of [0x200, 0x204, 0x205, 0x207]) {
    const requests: [ServeRequest, Buffer?][] = [
      [{ command: "QueryValidPaths", lock: true, substitute: false, paths: [a, b, missing] }],
      [{ command: "QueryPathInfos", paths: [a, b, missing] }],
      [{ command: "QueryClosure", includeOutputs: true, paths: [b] }],
      [{ command: "DumpStorePath", path: a }],
      [{ command: "ExportPaths", sign: false, paths: [b] }],
      [{ command: "ImportPaths" }, exported],
    ];
    if (version >= 0x205) requests.push([{ command: "AddToStoreNar", info }, nar]);
    const e = new WireEncoder(store.storeDir);
    writeClientHello(e, version);
    const parts = [e.take()];
    for (const [request, follows] of requests) {
      writeServeRequest(e, request, version);
      parts.push(e.take());
      if (follows) parts.push(follows);
      sessions.push(Buffer.concat(parts));
    }
  }
  return sessions;
}

const sink = () =>
  new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });

/** Run one session; resolve with the error it ended with, if any. */
function session(store: LocalStore, input: Buffer, write: boolean): Promise<unknown> {
  const run = runServeServer([input], sink(), {
    store,
    write,
    record: false,
    log: () => {},
    buildSettings: { system: "x86_64-linux" },
  }).then(
    () => undefined,
    (e: unknown) => e ?? new Error("rejected with nothing"),
  );
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<unknown>((resolve) => {
    timer = setTimeout(() => resolve(new Error("HANG: the session did not end in 10 s")), 10_000);
  });
  return Promise.race([run, hang]).finally(() => clearTimeout(timer));
}

const mutation = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant("u64" as const),
    at: fc.nat(),
    value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(seed: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.kind === "flip") b[at] = m.value;
    else if (m.kind === "cut") b = b.subarray(0, at);
    else if (m.kind === "insert")
      b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
    else {
      // A little-endian u64 where lengths and counts live: hostile sizes.
      const v = Buffer.alloc(8);
      v.writeBigUInt64LE(m.value);
      b = Buffer.concat([b.subarray(0, at - (at % 8)), v, b.subarray(at - (at % 8) + 8)]);
    }
  }
  return b;
}

const UNTYPED = [TypeError, RangeError, ReferenceError, SyntaxError];

describe("serve fuzz", () => {
  for (const write of [false, true]) {
    it(`${SESSIONS} random and mutated sessions ${write ? "with" : "without"} --write end cleanly`, async () => {
      const store = stores.open();
      const valid = await seeds(store);
      const rows = () => ({
        paths: store.queryAllValidPaths().length,
        temp: store.database.prepare("SELECT count(*) FROM TempRoots").pluck().get(),
      });
      const before = rows();
      let ended = 0;
      const endings = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }).map((u) => Buffer.from(u)) },
            {
              weight: 6,
              arbitrary: fc
                .tuple(
                  fc.nat({ max: valid.length - 1 }),
                  fc.array(mutation, { minLength: 1, maxLength: 3 }),
                )
                .map(([i, ms]) => mutate(valid[i]!, ms)),
            },
          ),
          async (input) => {
            const error = await session(store, input, write);
            ended++;
            const how = error === undefined ? "ok" : (error as Error).constructor.name;
            endings.set(how, (endings.get(how) ?? 0) + 1);
            if (error !== undefined) {
              expect(error).toBeInstanceOf(Error);
              expect((error as Error).message).not.toMatch(/^HANG/);
              for (const bad of UNTYPED) expect(error).not.toBeInstanceOf(bad);
            }
          },
        ),
        { numRuns: SESSIONS },
      );
      expect(ended).toBe(SESSIONS);
      // The mutations reach past the handshake: sessions end in refusals of their requests
      // (ServeError) or run to their end, not only in malformed bytes (ProtocolError).
      console.log(
        `serve fuzz (${write ? "--write" : "read-only"}): ${JSON.stringify(Object.fromEntries(endings))}`,
      );
      expect(endings.get("ok") ?? 0).toBeGreaterThan(0);
      expect(endings.get("ServeError") ?? 0).toBeGreaterThan(SESSIONS / 20);
      // Every seed is a session that runs to its end (without --write, up to a refused import).
      for (const s of valid.filter((_, i) => i % 5 === 0)) {
        const error = await session(store, s, write);
        if (write || error !== undefined) {
          expect(write ? error : (error as Error).message).toEqual(
            write ? undefined : "importing paths is not allowed",
          );
        }
      }
      if (!write) expect(rows()).toEqual(before);
    }, 600_000);
  }
});
