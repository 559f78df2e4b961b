// The buffered fast path for small requests reads exactly what readServeRequest reads, or
// declines and consumes nothing (then readServeRequest reads it, errors and all).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readServeRequest, writeServeRequest } from "../../../src/protocol/serve/serve-request.ts";
import { tryReadBufferedRequest } from "../../../src/protocol/serve/serve-request-buffered.ts";
import type { WireDecoder } from "../../../src/protocol/wire/wire-decoder.ts";
import { decoderOver, encode, storeDir } from "../wire-harness.ts";
import * as arb from "./arbitraries.ts";

const FAST = new Set(["QueryValidPaths", "QueryPathInfos", "DumpStorePath", "QueryClosure"]);

/** What the async reader makes of `bytes`: the request and where it stopped, or its error. */
async function slow(bytes: Buffer, version: number) {
  const d = decoderOver(bytes);
  try {
    return { request: await readServeRequest(d, version), offset: d.offset };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** The fast path over `bytes` as the server meets them: after a look that pulls a chunk. */
async function fast(d: WireDecoder) {
  await d.atEnd();
  const before = d.offset;
  const request = tryReadBufferedRequest(d);
  return { request, offset: d.offset, consumed: d.offset - before };
}

const version = fc.constantFrom(...arb.ALL_VERSIONS);

describe("tryReadBufferedRequest", () => {
  it("reads a whole small request as readServeRequest does, and only those", async () => {
    await fc.assert(
      fc.asyncProperty(
        version.chain((v) => fc.tuple(fc.constant(v), arb.serveRequest(v))),
        fc.uint8Array({ maxLength: 24 }),
        async ([v, request], trailing) => {
          const bytes = Buffer.concat([encode((e) => writeServeRequest(e, request, v)), trailing]);
          const got = await fast(decoderOver(bytes));
          if (FAST.has(request.command)) {
            expect(got.request).toEqual(request);
            expect(got.offset).toBe((await slow(bytes, v)).offset);
          } else {
            expect(got).toEqual({ request: undefined, offset: 0, consumed: 0 });
          }
        },
      ),
    );
  });

  /** Either it declines and consumes nothing, or it reads what the async reader reads. */
  async function agrees(bytes: Buffer, v: number, chunks?: number[]) {
    const got = await fast(decoderOver(bytes, chunks));
    if (got.request === undefined) {
      expect(got.consumed).toBe(0);
      return false;
    }
    expect(await slow(bytes, v)).toEqual({ request: got.request, offset: got.offset });
    return true;
  }

  const encoded = version.chain((v) =>
    fc.tuple(
      fc.constant(v),
      arb.serveRequest(v).map((r) => encode((e) => writeServeRequest(e, r, v))),
    ),
  );

  it("reads a damaged request as readServeRequest does, or leaves it to it", async () => {
    let read = 0;
    await fc.assert(
      fc.asyncProperty(
        encoded,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        async ([v, whole], flips) => {
          const bytes = Buffer.from(whole);
          for (const [at, value] of flips) bytes[at % bytes.length] = value;
          if (await agrees(bytes, v)) read++;
        },
      ),
      { numRuns: 300 },
    );
    // Damage that leaves a valid request (a flipped boolean, hash letter or name) is still read.
    expect(read).toBeGreaterThan(0);
  });

  it("leaves a request that is cut short or split across chunks to readServeRequest", async () => {
    await fc.assert(
      fc.asyncProperty(
        encoded,
        fc.nat(),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 4 }),
        async ([v, whole], cut, chunks) => {
          const bytes = Buffer.from(whole.subarray(0, whole.length - (cut % (whole.length + 1))));
          await agrees(bytes, v, chunks);
          if (bytes.length < whole.length) expect(await agrees(bytes, v)).toBe(false);
        },
      ),
    );
  });

  it("takes a request that arrives in one piece, as a client's does", async () => {
    const path = `${storeDir.path}/7rjj86a15146cq1d3qy068lml7n8ykzm-a`;
    const request = { command: "QueryPathInfos" as const, paths: [path] };
    const bytes = encode((e) => writeServeRequest(e, request, 0x207));
    const d = decoderOver(Buffer.concat([bytes, bytes]));
    expect((await fast(d)).request).toEqual(request);
    expect((await fast(d)).request).toEqual(request);
    expect(await d.atEnd()).toBe(true);
  });
});
