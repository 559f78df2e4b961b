// Replays the sessions recorded between Nix 2.8 peers (vectors README §2): every message of
// both byte streams is decoded with the codecs, compared with the annotation, and re-encoded
// to the recorded bytes. Replies are decoded against the request they answer, at the
// negotiated version, reading builtOutputs whatever the version (Nix 2.8 sends them: #6946).

import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type BuildResult, BuildStatus } from "../../../src/protocol/build-result.ts";
import type { BuildOptions } from "../../../src/protocol/serve/build-options.ts";
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
import { renderPathWithOutputs } from "../../../src/protocol/serve/path-with-outputs.ts";
import { renderRealisationJson } from "../../../src/protocol/serve/realisation-json.ts";
import {
  type BuildResultWireOptions,
  readBuildResult,
  writeBuildResult,
} from "../../../src/protocol/serve/serve-build-result.ts";
import {
  readPathInfosReply,
  type ServePathInfo,
  writePathInfosReply,
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
import { negotiateServeVersion } from "../../../src/protocol/serve/serve-version.ts";
import { ProtocolError } from "../../../src/protocol/wire/protocol-error.ts";
import type { WireDecoder } from "../../../src/protocol/wire/wire-decoder.ts";
import type { WireEncoder } from "../../../src/protocol/wire/wire-encoder.ts";
import { haveVectors, vectorPath } from "../../vectors.ts";
import { type NarSummary, summariseNar, summariseSizedNar } from "../nar-summary.ts";
import { decoderOver, encode, storeDir } from "../wire-harness.ts";

type Annotation = Record<string, unknown> & {
  direction: "to-server" | "to-client";
  offset: number;
  length: number;
  message: string;
};

interface Session {
  session: string;
  clientVersion: string | null;
  negotiatedVersion?: string;
  serverStderr: string;
  messages: Annotation[] | string;
}

const DIR = "serve-protocol/nix-2.8-sessions";
const hex = (v: number) => `0x${v.toString(16)}`;
const bit = (b: boolean | undefined) => (b ? 1 : 0);
const orEmpty = (p: string | undefined) => p ?? "";
/** Nix 2.8 is the server of every session: it always sends builtOutputs. */
const NIX_2_8_SERVER: BuildResultWireOptions = { builtOutputsBelow206: true };

function sessions(): Session[] {
  if (!haveVectors) return [];
  return readdirSync(vectorPath(DIR))
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(vectorPath(DIR, f), "utf8")) as Session);
}

function stream(session: string, direction: string): Buffer {
  return readFileSync(vectorPath(DIR, `${session}.${direction}.bin`));
}

function narJson(n: NarSummary) {
  return { narBytes: n.narBytes, narSha256Nix32: n.narSha256Nix32, tree: n.tree };
}

function optionsJson(o: BuildOptions) {
  return {
    maxSilentTime: o.maxSilentTime,
    buildTimeout: o.buildTimeout,
    ...(o.maxLogSize === undefined ? {} : { maxLogSize: o.maxLogSize }),
    ...(o.nrRepeats === undefined ? {} : { nrRepeats: o.nrRepeats }),
    ...(o.enforceDeterminism === undefined
      ? {}
      : { enforceDeterminism: bit(o.enforceDeterminism) }),
    ...(o.keepFailed === undefined ? {} : { keepFailed: bit(o.keepFailed) }),
  };
}

function pathInfoJson(info: ServePathInfo) {
  return {
    path: info.path,
    deriver: orEmpty(info.deriver),
    references: info.references,
    downloadSize: info.downloadSize,
    narSize: info.narSize,
    ...(info.narHash === undefined
      ? {}
      : { narHash: info.narHash.format("nix32"), ca: orEmpty(info.ca), sigs: info.sigs }),
  };
}

function buildResultJson(r: BuildResult, version: number) {
  return {
    status: BuildStatus[r.status],
    errorMsg: r.errorMsg,
    ...(version >= 0x203
      ? {
          timesBuilt: r.timesBuilt,
          isNonDeterministic: bit(r.isNonDeterministic),
          startTime: r.startTime,
          stopTime: r.stopTime,
        }
      : {}),
    builtOutputs: Object.fromEntries(
      Object.values(r.builtOutputs).map((b) => [
        b.id,
        renderRealisationJson(
          { signatures: [], dependentRealisations: {}, ...b },
          storeDir,
          "nix-2.8",
        ),
      ]),
    ),
  };
}

/** The annotation's fields of a request (its own keys only). */
function requestJson(r: ServeRequest): Record<string, unknown> {
  switch (r.command) {
    case "QueryValidPaths":
      return { lock: bit(r.lock), substitute: bit(r.substitute), paths: r.paths };
    case "QueryPathInfos":
      return { paths: r.paths };
    case "DumpStorePath":
      return { path: r.path };
    case "ImportPaths":
      return {};
    case "ExportPaths":
      return { obsolete: bit(r.sign), paths: r.paths };
    case "BuildPaths":
      return { paths: r.paths.map(renderPathWithOutputs), options: optionsJson(r.options) };
    case "QueryClosure":
      return { includeOutputs: bit(r.includeOutputs), paths: r.paths };
    case "BuildDerivation":
      return {
        drvPath: r.drvPath,
        outputs: Object.fromEntries(
          [...r.drv.outputs].map(([name, o]) => [
            name,
            o.type === "fixed"
              ? {
                  path: o.path,
                  hashAlgo: `${o.method === "nar" ? "r:" : ""}${o.hash.algo}`,
                  hash: o.hash.toBase16(),
                }
              : { path: o.type === "deferred" ? "" : o.path, hashAlgo: "", hash: "" },
          ]),
        ),
        inputSrcs: r.drv.inputSrcs,
        platform: r.drv.platform,
        builder: r.drv.builder,
        args: r.drv.args,
        env: Object.fromEntries(r.drv.env),
        options: optionsJson(r.options),
      };
    case "AddToStoreNar": {
      const i = r.info;
      return {
        path: i.path,
        deriver: orEmpty(i.deriver),
        narHash: i.narHash.toBase16(),
        references: i.references,
        registrationTime: i.registrationTime,
        narSize: i.narSize,
        ultimate: bit(i.ultimate),
        sigs: i.sigs,
        ca: orEmpty(i.ca),
      };
    }
  }
}

/** Only the annotation's decoded fields. */
function fieldsOf(m: Annotation, drop: string[] = []): Record<string, unknown> {
  const skip = new Set(["direction", "offset", "length", "message", ...drop]);
  return Object.fromEntries(Object.entries(m).filter(([k]) => !skip.has(k)));
}

interface ExportItem {
  item: ExportedPath;
  nar: NarSummary;
}

async function readExport(d: WireDecoder): Promise<ExportItem[]> {
  const items: ExportItem[] = [];
  while (await readExportItemStart(d)) {
    const nar = await summariseNar(d);
    items.push({ item: await readExportItemTrailer(d), nar });
  }
  return items;
}

function writeExport(e: WireEncoder, items: ExportItem[]): void {
  for (const { item, nar } of items) {
    writeExportItemStart(e);
    e.writer.bytes(nar.bytes);
    writeExportItemTrailer(e, item);
  }
  writeExportEnd(e);
}

function exportJson(items: ExportItem[], withMagic: boolean) {
  return items.map(({ item, nar }) => ({
    nar: narJson(nar),
    ...(withMagic ? { exportMagic: "0x4558494e" } : {}),
    path: item.path,
    references: item.references,
    deriver: orEmpty(item.deriver),
    hasSignature: item.legacySignature === undefined ? 0 : 1,
  }));
}

/** Replays one recorded session message by message. */
class Replay {
  readonly toServer: WireDecoder;
  readonly toClient: WireDecoder;
  readonly bytes: Record<Annotation["direction"], Buffer>;
  clientVersion = 0;
  version = 0;
  request: ServeRequest | undefined;

  constructor(readonly session: Session) {
    this.bytes = {
      "to-server": stream(session.session, "to-server"),
      "to-client": stream(session.session, "to-client"),
    };
    this.toServer = decoderOver(this.bytes["to-server"], [7, 64, 4096]);
    this.toClient = decoderOver(this.bytes["to-client"], [4096, 5]);
  }

  /** Decode one message; returns its re-encoding. */
  async message(m: Annotation): Promise<Buffer> {
    const ds = this.toServer;
    const dc = this.toClient;
    const v = this.version;
    if (m.message === "client hello") {
      this.clientVersion = await readClientHello(ds);
      expect({ magic: "0x390c9deb", clientVersion: hex(this.clientVersion) }).toEqual(fieldsOf(m));
      return encode((e) => writeClientHello(e, this.clientVersion));
    }
    if (m.message === "server hello") {
      const server = await readServerHello(dc);
      expect({ magic: "0x5452eecb", serverVersion: hex(server) }).toEqual(fieldsOf(m));
      this.version = negotiateServeVersion(this.clientVersion, server);
      expect(hex(this.version)).toBe(this.session.negotiatedVersion);
      return encode((e) => writeServerHello(e, server));
    }
    if (m.direction === "to-server") return this.request1(m);
    const request = this.request!;
    switch (m.message) {
      case "QueryValidPaths reply":
      case "QueryClosure reply": {
        const paths = await readPathSetReply(dc, m.message);
        const key = request.command === "QueryClosure" ? "closure" : "validPaths";
        expect({ [key]: paths }).toEqual(fieldsOf(m));
        return encode((e) => writePathSetReply(e, paths));
      }
      case "QueryPathInfos reply (infos, then empty string)": {
        const infos = await readPathInfosReply(dc, v);
        expect({ infos: infos.map(pathInfoJson) }).toEqual(fieldsOf(m));
        return encode((e) => writePathInfosReply(e, infos, v));
      }
      case "NAR": {
        expect(request.command).toBe("DumpStorePath");
        const nar = await summariseNar(dc);
        expect(narJson(nar)).toEqual(fieldsOf(m));
        return nar.bytes;
      }
      case "export stream": {
        expect(request.command).toBe("ExportPaths");
        const items = await readExport(dc);
        expect({ items: exportJson(items, true) }).toEqual(fieldsOf(m));
        return encode((e) => writeExport(e, items));
      }
      case "ImportPaths reply":
      case "AddToStoreNar reply":
        await readImportAck(dc);
        expect(fieldsOf(m)).toEqual({ result: 1 });
        return encode(writeImportAck);
      case "BuildPaths reply": {
        const reply = await readBuildPathsReply(dc);
        expect(reply).toEqual(fieldsOf(m));
        return encode((e) => writeBuildPathsReply(e, reply));
      }
      case "BuildDerivation reply (BuildResult)": {
        const result = await readBuildResult(dc, v, NIX_2_8_SERVER);
        expect(buildResultJson(result, v)).toEqual(fieldsOf(m));
        return encode((e) => writeBuildResult(e, result, v, NIX_2_8_SERVER));
      }
    }
    throw new Error(`no decoder for the reply '${m.message}'`);
  }

  async request1(m: Annotation): Promise<Buffer> {
    const d = this.toServer;
    const v = this.version;
    const request = await readServeRequest(d, v);
    if (request === undefined) throw new Error(`stream ended before '${m.message}'`);
    this.request = request;
    expect(m.message.startsWith(`${request.command} (`)).toBe(true);
    if (request.command === "ImportPaths") {
      const items = await readExport(d);
      expect({ items: exportJson(items, false) }).toEqual(fieldsOf(m));
      return encode((e) => {
        writeServeRequest(e, request, v);
        writeExport(e, items);
      });
    }
    if (request.command === "AddToStoreNar") {
      const nar = await summariseSizedNar(d, request.info.narSize);
      expect({ ...requestJson(request), nar: narJson(nar) }).toEqual(fieldsOf(m));
      return Buffer.concat([encode((e) => writeServeRequest(e, request, v)), nar.bytes]);
    }
    expect(requestJson(request)).toEqual(fieldsOf(m));
    return encode((e) => writeServeRequest(e, request, v));
  }
}

const all = sessions();
const recorded = all.filter((s) => Array.isArray(s.messages));

describe.skipIf(!haveVectors)("Nix 2.8 serve sessions", () => {
  it("finds the recorded sessions", () => {
    expect(recorded.length).toBeGreaterThanOrEqual(17);
    expect(all.length - recorded.length).toBe(3);
  });

  for (const session of recorded) {
    it(`${session.session}: every message decodes as annotated and re-encodes as recorded`, async () => {
      const replay = new Replay(session);
      for (const m of session.messages as Annotation[]) {
        const d = m.direction === "to-server" ? replay.toServer : replay.toClient;
        expect(d.offset, `offset of '${m.message}'`).toBe(m.offset);
        const bytes = await replay.message(m);
        expect(d.offset - m.offset, `length of '${m.message}'`).toBe(m.length);
        const recordedBytes = replay.bytes[m.direction].subarray(m.offset, m.offset + m.length);
        expect(bytes.equals(recordedBytes), `re-encoding of '${m.message}'`).toBe(true);
      }
      expect(await replay.toServer.atEnd()).toBe(true);
      expect(await replay.toClient.atEnd()).toBe(true);
      // The server's next read of a command finds the end of the session.
      expect(await readServeRequest(replay.toServer, replay.version)).toBeUndefined();
    });
  }

  it("error-bad-magic: the client's magic is refused", async () => {
    const d = decoderOver(stream("error-bad-magic", "to-server"));
    await expect(readClientHello(d)).rejects.toMatchObject({ code: "bad-magic", offset: 0 });
    expect(stream("error-bad-magic", "to-client")).toHaveLength(0);
  });

  it("error-unknown-command: command 42 is refused with Nix's message", async () => {
    const d = decoderOver(stream("error-unknown-command", "to-server"));
    const version = negotiateServeVersion(await readClientHello(d), 0x207);
    const error = await readServeRequest(d, version).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: "unknown-command", offset: 16 });
    const stderr = all.find((s) => s.session === "error-unknown-command")!.serverStderr;
    expect(stderr).toContain((error as ProtocolError).problem);
  });

  it("error-not-writable: the client stopped inside AddToStoreNar (truncated request)", async () => {
    const d = decoderOver(stream("error-not-writable", "to-server"));
    const version = negotiateServeVersion(await readClientHello(d), 0x207);
    await expect(readServeRequest(d, version)).rejects.toMatchObject({
      code: "truncated",
      offset: 88,
    });
    const server = decoderOver(stream("error-not-writable", "to-client"));
    expect(await readServerHello(server)).toBe(0x207);
  });
});
