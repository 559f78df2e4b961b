// The annotated hex transcripts of Nix 2.8 probe sessions at client versions 0x201 – 0x207
// (vectors/nix28-serve-transcripts): each block is rebuilt from its hex dump, decoded with the
// codecs (consuming exactly the block) and checked against the numbers the annotation names.

import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { BuildResult } from "../../../src/protocol/build-result.ts";
import { readClientHello, readServerHello } from "../../../src/protocol/serve/handshake.ts";
import { readBuildResult } from "../../../src/protocol/serve/serve-build-result.ts";
import { readPathInfosReply } from "../../../src/protocol/serve/serve-path-info.ts";
import { readPathSetReply } from "../../../src/protocol/serve/serve-reply.ts";
import { readServeRequest, type ServeRequest } from "../../../src/protocol/serve/serve-request.ts";
import { negotiateServeVersion } from "../../../src/protocol/serve/serve-version.ts";
import type { WireDecoder } from "../../../src/protocol/wire/wire-decoder.ts";
import { haveVectors, vectorPath } from "../../vectors.ts";
import { summariseNar } from "../nar-summary.ts";
import { decodeAll } from "../wire-harness.ts";

const DIR = "nix28-serve-transcripts";

interface Block {
  fromClient: boolean;
  title: string;
  bytes: Buffer;
  /** `u64 <value> (<field>` annotations, in order. */
  numbers: [field: string, value: number][];
  /** `= <Name>` after the status. */
  statusName: string | undefined;
}

function parseTranscript(text: string): { clientVersion: number; blocks: Block[] } {
  const header = /client version (0x[0-9a-f]+)/.exec(text);
  const blocks: Block[] = [];
  let current: { block: Block; hex: string[]; size: number } | undefined;
  const finish = () => {
    if (!current) return;
    current.block.bytes = Buffer.from(current.hex.join(""), "hex");
    expect(current.block.bytes.length, current.block.title).toBe(current.size);
    blocks.push(current.block);
    current = undefined;
  };
  for (const line of text.split("\n")) {
    const head = /^([CS])[<>] (.*) \((\d+) bytes\)$/.exec(line);
    if (head) {
      finish();
      current = {
        block: {
          fromClient: head[1] === "C",
          title: head[2]!,
          bytes: Buffer.alloc(0),
          numbers: [],
          statusName: undefined,
        },
        hex: [],
        size: Number(head[3]),
      };
      continue;
    }
    const row = /^ {2}[0-9a-f]{6} {2}((?:[0-9a-f]{2} ?)+) {2}\|.*?\| {2}(.*)$/.exec(line);
    if (row && current) {
      current.hex.push(row[1]!.replaceAll(" ", ""));
      const n = /^u64 (\d+) \((\w+)/.exec(row[2]!);
      if (n) current.block.numbers.push([n[2]!, Number(n[1])]);
      const s = /\(status\) = (\w+)/.exec(row[2]!);
      if (s) current.block.statusName = s[1];
    } else if (line.startsWith("#")) finish();
  }
  finish();
  return { clientVersion: Number(header![1]), blocks };
}

/** The numeric fields a decoded block has, by the names the transcripts use. */
function numbersOf(value: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  const visit = (v: unknown) => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    if (typeof v !== "object" || v === null || v instanceof Map || Buffer.isBuffer(v)) return;
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === "number") out[k] = x;
      else if (typeof x === "boolean") out[k] = x ? 1 : 0;
      else visit(x);
    }
  };
  visit(value);
  return out;
}

const CHECKED = new Set([
  "timesBuilt",
  "isNonDeterministic",
  "startTime",
  "stopTime",
  "maxSilentTime",
  "buildTimeout",
  "maxLogSize",
  "nrRepeats",
  "enforceDeterminism",
  "keepFailed",
  "lock",
  "substitute",
  "includeOutputs",
  "downloadSize",
  "narSize",
]);

const files = haveVectors ? readdirSync(vectorPath(DIR)).filter((f) => f.endsWith(".txt")) : [];

describe.skipIf(!haveVectors)("Nix 2.8 probe transcripts", () => {
  it("finds the four transcripts", () => {
    expect(files.sort()).toEqual([
      "serve-0x201.txt",
      "serve-0x203.txt",
      "serve-0x205.txt",
      "serve-0x207.txt",
    ]);
  });

  for (const file of files) {
    it(`${file}: every block decodes exactly, as annotated`, async () => {
      const { clientVersion, blocks } = parseTranscript(
        readFileSync(vectorPath(DIR, file), "utf8"),
      );
      let version = clientVersion;
      let request: ServeRequest | undefined;
      let replies = 0;
      let checked = 0;
      for (const block of blocks) {
        let value: unknown;
        const decode = <T>(read: (d: WireDecoder) => Promise<T>) => decodeAll(block.bytes, read);
        if (block.title === "handshake") {
          value = await decode(readClientHello);
          expect(value).toBe(clientVersion);
        } else if (block.title === "handshake reply") {
          version = negotiateServeVersion(clientVersion, await decode(readServerHello));
        } else if (block.fromClient) {
          request = await decode(async (d) => (await readServeRequest(d, version))!);
          expect(block.title.startsWith(`cmd${request.command}`), block.title).toBe(true);
          if (request.command === "BuildDerivation") {
            expect(request.drvPath.endsWith(block.title.split(" ")[1]!)).toBe(true);
          }
          value = request;
        } else {
          replies++;
          switch (request!.command) {
            case "QueryValidPaths":
            case "QueryClosure":
              value = await decode((d) => readPathSetReply(d, block.title));
              break;
            case "QueryPathInfos":
              value = await decode((d) => readPathInfosReply(d, version));
              break;
            case "BuildDerivation": {
              // Nix 2.8 appends builtOutputs whatever the client's version (#6946).
              const r: BuildResult = await decode((d) =>
                readBuildResult(d, version, { builtOutputsBelow206: true }),
              );
              expect(r.status).toBe(block.statusName);
              expect(Object.keys(r.builtOutputs)).toHaveLength(
                r.status === "PermanentFailure" ? 0 : 1,
              );
              value = r;
              break;
            }
            case "DumpStorePath":
              value = (await decode(summariseNar)).tree;
              break;
            default:
              throw new Error(`unexpected reply to ${request!.command}`);
          }
        }
        const decoded = numbersOf(value);
        for (const [field, n] of block.numbers) {
          if (!CHECKED.has(field)) continue;
          expect(decoded[field], `${block.title}: ${field}`).toBe(n);
          checked++;
        }
      }
      expect(replies).toBe(7);
      expect(checked).toBeGreaterThanOrEqual(10);
    });
  }
});
