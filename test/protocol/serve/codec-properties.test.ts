// Properties of every serve-protocol codec at every version 0x200 – 0x208:
// - decode ∘ encode = id, and re-encoding the decoded value gives the same bytes;
// - every truncation ends in ProtocolError "truncated";
// - any mutation ends in a ProtocolError or in a value that encodes and decodes back to itself:
//   never another exception, a hang or an allocation beyond what the input holds.
// Inputs always come from a finite source cut into random chunks.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { BuildResult } from "../../../src/protocol/build-result.ts";
import {
  type BuildOptions,
  readBuildOptions,
  writeBuildOptions,
} from "../../../src/protocol/serve/build-options.ts";
import { readDrvOutput, writeDrvOutput } from "../../../src/protocol/serve/drv-output.ts";
import {
  type ExportedPath,
  readExportItemStart,
  readExportItemTrailer,
  writeExportEnd,
  writeExportItemStart,
  writeExportItemTrailer,
} from "../../../src/protocol/serve/export-stream.ts";
import {
  readClientHello,
  readServerHello,
  writeClientHello,
  writeServerHello,
} from "../../../src/protocol/serve/handshake.ts";
import {
  readRealisation,
  readUnkeyedRealisation,
  writeRealisation,
  writeUnkeyedRealisation,
} from "../../../src/protocol/serve/realisation.ts";
import type { RealisationJsonForm } from "../../../src/protocol/serve/realisation-json.ts";
import {
  type BuildResultWireOptions,
  readBuildResult,
  writeBuildResult,
} from "../../../src/protocol/serve/serve-build-result.ts";
import {
  readPathInfo,
  readPathInfosReply,
  readUnkeyedPathInfo,
  writePathInfo,
  writePathInfosReply,
  writeUnkeyedPathInfo,
} from "../../../src/protocol/serve/serve-path-info.ts";
import {
  readBuildPathsReply,
  readImportAck,
  readPathSetReply,
  writeBuildPathsReply,
  writeImportAck,
  writePathSetReply,
} from "../../../src/protocol/serve/serve-reply.ts";
import {
  readServeRequest,
  type ServeRequest,
  writeServeRequest,
} from "../../../src/protocol/serve/serve-request.ts";
import { formatServeVersion, serveMinor } from "../../../src/protocol/serve/serve-version.ts";
import { ProtocolError } from "../../../src/protocol/wire/protocol-error.ts";
import type { WireDecoder } from "../../../src/protocol/wire/wire-decoder.ts";
import type { WireEncoder } from "../../../src/protocol/wire/wire-encoder.ts";
import { readNar, readSizedNar } from "../../../src/protocol/wire/wire-nar.ts";
import { captureBytes, decodeAll, decoderOver, encode } from "../wire-harness.ts";
import * as arb from "./arbitraries.ts";

interface Codec<T> {
  name: string;
  arb: fc.Arbitrary<T>;
  write: (e: WireEncoder, value: T) => void;
  read: (d: WireDecoder) => Promise<T>;
  /** Writes any decoded value (when `write` has a form that cannot carry everything). */
  writeAny?: (e: WireEncoder, value: T) => void;
}

function codec<T>(c: Codec<T>): Codec<unknown> {
  return c as unknown as Codec<unknown>;
}

/** A request with what follows it: the export stream of ImportPaths, the NAR of AddToStoreNar. */
interface RequestMessage {
  request: ServeRequest;
  exported?: ExportItem[];
  nar?: Buffer;
}

interface ExportItem {
  item: ExportedPath;
  nar: Buffer;
}

function writeExport(e: WireEncoder, items: ExportItem[]): void {
  for (const { item, nar } of items) {
    writeExportItemStart(e);
    e.writer.bytes(nar);
    writeExportItemTrailer(e, item);
  }
  writeExportEnd(e);
}

async function readExport(d: WireDecoder): Promise<ExportItem[]> {
  const items: ExportItem[] = [];
  while (await readExportItemStart(d)) {
    const nar = await captureBytes(d, () => readNar(d));
    items.push({ item: await readExportItemTrailer(d), nar });
  }
  return items;
}

function requestMessage(version: number): fc.Arbitrary<RequestMessage> {
  return fc
    .tuple(arb.serveRequest(version), arb.exportStream, arb.nar)
    .map(([request, exported, nar]) => {
      if (request.command === "ImportPaths") return { request, exported };
      if (request.command === "AddToStoreNar") {
        return { request: { ...request, info: { ...request.info, narSize: nar.length } }, nar };
      }
      return { request };
    });
}

async function readRequestMessage(d: WireDecoder, version: number): Promise<RequestMessage> {
  const at = d.offset;
  const request = await readServeRequest(d, version);
  if (request === undefined) throw new ProtocolError("truncated", "a request", at, "no request");
  if (request.command === "ImportPaths") return { request, exported: await readExport(d) };
  if (request.command === "AddToStoreNar") {
    const nar = await captureBytes(d, () => readSizedNar(d, request.info.narSize));
    return { request, nar };
  }
  return { request };
}

function writeRequestMessage(e: WireEncoder, m: RequestMessage, version: number): void {
  writeServeRequest(e, m.request, version);
  if (m.exported) writeExport(e, m.exported);
  if (m.nar) e.writer.bytes(m.nar);
}

function buildResultCodec(
  version: number,
  options: BuildResultWireOptions,
  label: string,
): Codec<unknown> {
  const form = arb.builtOutputsForm(version, options);
  return codec<BuildResult>({
    name: `BuildResult${label}`,
    arb: arb.buildResult(version, form),
    read: (d) => readBuildResult(d, version, options),
    write: (e, r) => writeBuildResult(e, r, version, options),
    writeAny: (e, r) => writeBuildResult(e, r, version, { ...options, realisationJson: "nix-2.8" }),
  });
}

function realisationCodec(version: number, form: RealisationJsonForm): Codec<unknown> {
  return codec({
    name: `Realisation${serveMinor(version) >= 8 ? "" : ` (${form} JSON)`}`,
    arb: arb.realisation(version, form),
    read: (d) => readRealisation(d, version),
    write: (e, r) => writeRealisation(e, r, version, form),
    writeAny: (e, r) => writeRealisation(e, r, version, "nix-2.8"),
  });
}

function versionedCodecs(version: number): Codec<unknown>[] {
  const v = serveMinor(version);
  const codecs: Codec<unknown>[] = [
    codec({
      name: "request (with its export stream or NAR)",
      arb: requestMessage(version),
      read: (d) => readRequestMessage(d, version),
      write: (e, m) => writeRequestMessage(e, m, version),
    }),
    codec<BuildOptions>({
      name: "build options",
      arb: arb.buildOptions(version),
      read: (d) => readBuildOptions(d, version),
      write: (e, o) => writeBuildOptions(e, o, version),
    }),
    buildResultCodec(version, {}, ""),
    codec({
      name: "path info",
      arb: arb.servePathInfo(version),
      read: (d) => readPathInfo(d, version),
      write: (e, i) => writePathInfo(e, i, version),
    }),
    codec({
      name: "unkeyed path info",
      arb: arb.servePathInfo(version).map(({ path: _, ...info }) => info),
      read: (d) => readUnkeyedPathInfo(d, version),
      write: (e, i) => writeUnkeyedPathInfo(e, i, version),
    }),
    codec({
      name: "QueryPathInfos reply",
      arb: fc.array(arb.servePathInfo(version), { maxLength: 3 }),
      read: (d) => readPathInfosReply(d, version),
      write: (e, infos) => writePathInfosReply(e, infos, version),
    }),
    codec({
      name: "DrvOutput",
      arb: arb.drvOutput(version),
      read: (d) => readDrvOutput(d, version),
      write: (e, id) => writeDrvOutput(e, id, version),
    }),
  ];
  if (v < 6) {
    codecs.push(buildResultCodec(version, { builtOutputsBelow206: true }, " (Nix 2.8 server)"));
  }
  if (v === 6 || v === 7) {
    codecs.push(buildResultCodec(version, { realisationJson: "compat" }, " (compat JSON)"));
  }
  if (v >= 8) codecs.push(realisationCodec(version, "nix-2.8"));
  else {
    for (const form of ["nix-2.8", "compat", "signature-objects"] as const) {
      codecs.push(realisationCodec(version, form));
    }
  }
  return codecs;
}

const versionNumber = fc.oneof(fc.constantFrom(...arb.ALL_VERSIONS), fc.nat({ max: 0xffff_ffff }));

const unversionedCodecs: Codec<unknown>[] = [
  codec({
    name: "client hello",
    arb: versionNumber,
    read: readClientHello,
    write: (e, v) => writeClientHello(e, v),
  }),
  codec({
    name: "server hello",
    arb: versionNumber,
    read: readServerHello,
    write: (e, v) => writeServerHello(e, v),
  }),
  codec({
    name: "path set reply",
    arb: arb.pathSet,
    read: (d) => readPathSetReply(d, "paths"),
    write: (e, p) => writePathSetReply(e, p),
  }),
  codec({
    name: "import acknowledgement",
    arb: fc.constant(undefined),
    read: readImportAck,
    write: (e) => writeImportAck(e),
  }),
  codec({
    name: "BuildPaths reply",
    arb: arb.buildPathsReply,
    read: readBuildPathsReply,
    write: writeBuildPathsReply,
  }),
  codec({
    name: "unkeyed realisation (0x208)",
    arb: arb.unkeyedRealisation,
    read: readUnkeyedRealisation,
    write: writeUnkeyedRealisation,
  }),
  codec({
    name: "export stream",
    arb: arb.exportStream,
    read: readExport,
    write: writeExport,
  }),
];

const chunkSizes = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 4 });
const RUNS = Number(process.env.PROTOCOL_RUNS ?? 25);

/** Byte-level damage: overwritten bytes and u64 words, inserted and deleted words, cut tails. */
function mutated(bytes: Buffer): fc.Arbitrary<Buffer> {
  const words = Math.max(1, Math.floor(bytes.length / 8));
  const word = fc.nat({ max: words - 1 });
  const interesting = fc.constantFrom(
    0n,
    1n,
    2n,
    7n,
    9n,
    42n,
    0x4558494en,
    0xffff_ffffn,
    0x1_0000_0000n,
    2n ** 53n,
    2n ** 64n - 1n,
  );
  const u64Bytes = fc.oneof(
    interesting.map((n) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(n);
      return b;
    }),
    fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Buffer.from(b)),
  );
  const edit = fc.oneof(
    fc
      .tuple(fc.nat({ max: Math.max(0, bytes.length - 1) }), fc.nat({ max: 255 }))
      .map(([i, b]) => (x: Buffer) => {
        const y = Buffer.from(x);
        if (i < y.length) y[i] = b;
        return y;
      }),
    fc.tuple(word, u64Bytes).map(([w, b]) => (x: Buffer) => {
      const y = Buffer.from(x);
      if (w * 8 + 8 <= y.length) b.copy(y, w * 8);
      return y;
    }),
    fc.tuple(word, u64Bytes).map(
      ([w, b]) =>
        (x: Buffer) =>
          Buffer.concat([x.subarray(0, w * 8), b, x.subarray(w * 8)]),
    ),
    word.map((w) => (x: Buffer) => Buffer.concat([x.subarray(0, w * 8), x.subarray(w * 8 + 8)])),
    fc.tuple(fc.nat({ max: bytes.length }), fc.uint8Array({ maxLength: 16 })).map(
      ([cut, tail]) =>
        (x: Buffer) =>
          Buffer.concat([x.subarray(0, cut), tail]),
    ),
  );
  return fc
    .array(edit, { minLength: 1, maxLength: 3 })
    .map((edits) => edits.reduce((x, f) => f(x), bytes));
}

async function outcome(
  read: () => Promise<unknown>,
): Promise<{ value?: unknown; error?: unknown }> {
  try {
    return { value: await read() };
  } catch (error) {
    return { error };
  }
}

function properties(c: Codec<unknown>): void {
  describe(c.name, () => {
    it("decode ∘ encode = id, and the bytes re-encode identically", async () => {
      await fc.assert(
        fc.asyncProperty(c.arb, chunkSizes, async (value, sizes) => {
          const bytes = encode((e) => c.write(e, value));
          const decoded = await decodeAll(bytes, c.read, sizes);
          expect(decoded).toEqual(value);
          expect(encode((e) => c.write(e, decoded)).equals(bytes)).toBe(true);
        }),
        { numRuns: RUNS },
      );
    });

    it("every truncation ends in ProtocolError 'truncated'", async () => {
      const cases = c.arb
        .map((value) => encode((e) => c.write(e, value)))
        .chain((bytes) => fc.tuple(fc.constant(bytes), fc.nat({ max: bytes.length - 1 })));
      await fc.assert(
        fc.asyncProperty(cases, chunkSizes, async ([bytes, cut], sizes) => {
          const { error } = await outcome(() => c.read(decoderOver(bytes.subarray(0, cut), sizes)));
          expect(error).toBeInstanceOf(ProtocolError);
          expect((error as ProtocolError).code).toBe("truncated");
          expect((error as ProtocolError).offset).toBeLessThanOrEqual(cut);
        }),
        { numRuns: RUNS },
      );
    });

    it("a mutated encoding gives a ProtocolError or a value that round-trips", async () => {
      const cases = c.arb.map((value) => encode((e) => c.write(e, value))).chain(mutated);
      const writeAny = c.writeAny ?? c.write;
      await fc.assert(
        fc.asyncProperty(cases, chunkSizes, async (bytes, sizes) => {
          const d = decoderOver(bytes, sizes, { maxStringLength: 1 << 20, maxCount: 1 << 16 });
          const { value, error } = await outcome(() => c.read(d));
          if (error !== undefined) {
            expect(error).toBeInstanceOf(ProtocolError);
            return;
          }
          const again = encode((e) => writeAny(e, value));
          expect(await decodeAll(again, c.read)).toEqual(value);
        }),
        { numRuns: RUNS * 2 },
      );
    });
  });
}

describe("serve protocol codecs, any version", () => {
  for (const c of unversionedCodecs) properties(c);
});

for (const version of arb.ALL_VERSIONS) {
  describe(`serve protocol codecs at ${formatServeVersion(version)}`, () => {
    for (const c of versionedCodecs(version)) properties(c);
  });
}
