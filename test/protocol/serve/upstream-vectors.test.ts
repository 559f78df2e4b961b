// NixOS/nix's serve-protocol and common-protocol characterisation files (vectors README §1):
// every .bin decodes to its JSON twin (or to the values the README gives) at the version its
// name says, and re-encodes to the same bytes.

import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { BuildResult } from "../../../src/protocol/build-result.ts";
import { readBuildOptions, writeBuildOptions } from "../../../src/protocol/serve/build-options.ts";
import {
  type DrvOutput,
  isPathDrvOutput,
  readDrvOutput,
  renderDrvOutputId,
  writeDrvOutput,
} from "../../../src/protocol/serve/drv-output.ts";
import { readServerHello, writeServerHello } from "../../../src/protocol/serve/handshake.ts";
import {
  type Realisation,
  readRealisation,
  readUnkeyedRealisation,
  type UnkeyedRealisation,
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
  readUnkeyedPathInfo,
  type UnkeyedServePathInfo,
  writeUnkeyedPathInfo,
} from "../../../src/protocol/serve/serve-path-info.ts";
import { negotiateServeVersion, serveVersion } from "../../../src/protocol/serve/serve-version.ts";
import type { WireDecoder } from "../../../src/protocol/wire/wire-decoder.ts";
import type { WireEncoder } from "../../../src/protocol/wire/wire-encoder.ts";
import { parseContentAddress } from "../../../src/store-path/content-address.ts";
import { haveVectors, vectorPath } from "../../vectors.ts";
import { decodeAll, encode, storeDir } from "../wire-harness.ts";

type Json = unknown;

interface VectorCase<T> {
  version: number;
  /** Decode every value in the file. */
  read: (d: WireDecoder, version: number) => Promise<T[]>;
  write: (e: WireEncoder, values: T[], version: number) => void;
  /** Compare with the JSON twin, or with expected values when there is none. */
  check: (values: T[], json: Json) => void;
}

function times<T>(n: number, read: (d: WireDecoder, v: number) => Promise<T>) {
  return async (d: WireDecoder, v: number) => {
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(await read(d, v));
    return out;
  };
}

function each<T>(write: (e: WireEncoder, value: T, v: number) => void) {
  return (e: WireEncoder, values: T[], v: number) => {
    for (const value of values) write(e, value, v);
  };
}

const base = (p: string | undefined) =>
  p === undefined ? null : p.slice(storeDir.path.length + 1);

function caJson(ca: string | undefined): Json {
  if (ca === undefined) return null;
  const parsed = parseContentAddress(ca);
  return { method: parsed.method, hash: parsed.hash.toSri() };
}

function signatureJson(sig: string): Json {
  const colon = sig.indexOf(":");
  return { keyName: sig.slice(0, colon), sig: sig.slice(colon + 1) };
}

function drvOutputJson(id: DrvOutput): Json {
  return isPathDrvOutput(id)
    ? { drvPath: base(id.drvPath), outputName: id.outputName }
    : renderDrvOutputId(id);
}

/** Pre-0x208 realisation JSON twins keep the wire's signature form; 0x208 ones use objects. */
function realisationJson(r: Realisation, signatures: "as-is" | "objects"): Json {
  const sigs = signatures === "objects" ? r.signatures.map(signatureJson) : r.signatures;
  if (isPathDrvOutput(r.id)) {
    return { key: drvOutputJson(r.id), value: { outPath: base(r.outPath), signatures: sigs } };
  }
  return {
    dependentRealisations: Object.fromEntries(
      Object.entries(r.dependentRealisations).map(([k, v]) => [k, base(v)]),
    ),
    id: drvOutputJson(r.id),
    outPath: base(r.outPath),
    signatures: sigs,
  };
}

function checkBuildResult(r: BuildResult, json: Record<string, Json>): void {
  expect(r.status).toBe(json.status);
  for (const key of ["timesBuilt", "startTime", "stopTime", "errorMsg", "isNonDeterministic"]) {
    if (key in json) expect(r[key as keyof BuildResult], key).toEqual(json[key]);
  }
  const expected = (json.builtOutputs ?? {}) as Record<string, Record<string, Json>>;
  expect(Object.keys(r.builtOutputs).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, b] of Object.entries(r.builtOutputs)) {
    const want = expected[name]!;
    expect(base(b.outPath)).toBe(want.outPath);
    expect(b.signatures ?? []).toEqual(want.signatures);
    if ("id" in want) expect(b.id).toBe(want.id);
    if ("dependentRealisations" in want) {
      expect(b.dependentRealisations ?? {}).toEqual(want.dependentRealisations);
    }
  }
}

function pathInfoCase(version: number): VectorCase<UnkeyedServePathInfo> {
  return {
    version,
    read: times(2, readUnkeyedPathInfo),
    write: each(writeUnkeyedPathInfo),
    check: (infos, json) => {
      const twins = json as Record<string, Json>[];
      expect(infos).toHaveLength(twins.length);
      infos.forEach((info, i) => {
        const t = twins[i]!;
        expect(base(info.deriver)).toBe(t.deriver);
        expect(info.references.map(base)).toEqual(t.references);
        expect(info.narSize).toBe(t.narSize);
        expect(info.downloadSize).toBe(t.narSize);
        expect(caJson(info.ca)).toEqual(t.ca);
        expect(info.sigs.map(signatureJson)).toEqual(t.signatures);
        if (version >= 0x204) expect(info.narHash!.toSri()).toBe(t.narHash);
        else expect(info.narHash).toBeUndefined();
      });
    },
  };
}

function buildResultCase(
  version: number,
  options: BuildResultWireOptions = {},
): VectorCase<BuildResult> {
  return {
    version,
    read: times(3, (d, v) => readBuildResult(d, v, options)),
    write: each((e, r: BuildResult, v) => writeBuildResult(e, r, v, options)),
    check: (results, json) => {
      const twins = json as Record<string, Json>[];
      expect(results).toHaveLength(twins.length);
      for (const [i, r] of results.entries()) checkBuildResult(r, twins[i]!);
    },
  };
}

function buildOptionsCase(minor: number, expected: Json): VectorCase<unknown> {
  return {
    version: serveVersion(minor),
    read: times(1, readBuildOptions),
    write: each((e, o, v) => writeBuildOptions(e, o as never, v)),
    check: (values) => expect(values).toEqual([expected]),
  };
}

function realisationCase(
  version: number,
  count: number,
  form: RealisationJsonForm,
): VectorCase<Realisation> {
  return {
    version,
    read: times(count, readRealisation),
    write: each((e, r: Realisation, v) => writeRealisation(e, r, v, form)),
    check: (values, json) => {
      if (version >= 0x208) {
        expect(realisationJson(values[0]!, "objects")).toEqual(json);
        return;
      }
      const twins = json as Record<string, Json>[];
      values.forEach((r, i) => {
        const sigs = (twins[i]!.signatures as Json[]).some((s) => typeof s !== "string");
        expect(realisationJson(r, sigs ? "objects" : "as-is")).toEqual(twins[i]);
      });
    },
  };
}

const V25 = 0x205;

/** Erase a case's value type so cases of all types fit one table. */
function vectorCase<T>(c: VectorCase<T>): VectorCase<unknown> {
  return c as unknown as VectorCase<unknown>;
}

/** Every file of the two folders, by name. */
const cases: Record<string, VectorCase<unknown>> = {
  "handshake-to-client": vectorCase<number>({
    version: V25,
    read: times(1, readServerHello),
    write: each((e, v: number) => writeServerHello(e, v)),
    check: ([server]) => {
      expect(server).toBe(0x205);
      expect(negotiateServeVersion(0x205, server!)).toBe(0x205);
    },
  }),
  string: vectorCase<string>({
    version: V25,
    read: times(5, (d) => d.string("string")),
    write: each((e, s: string) => e.string(s)),
    check: (values, json) => expect(values).toEqual(json),
  }),
  "store-path": vectorCase<string>({
    version: V25,
    read: times(2, (d) => d.storePath("store path")),
    write: each((e, p: string) => e.storePath(p)),
    check: (values, json) => expect(values.map(base)).toEqual(json),
  }),
  "optional-store-path": vectorCase<string | undefined>({
    version: V25,
    read: times(2, (d) => d.optionalStorePath("optional store path")),
    write: each((e, p: string | undefined) => e.optionalStorePath(p)),
    check: (values, json) => expect(values.map(base)).toEqual(json),
  }),
  "content-address": vectorCase<string>({
    version: V25,
    read: times(3, (d) => d.contentAddress("content address")),
    write: each((e, ca: string) => e.string(ca)),
    check: (values, json) => expect(values.map(caJson)).toEqual(json),
  }),
  "optional-content-address": vectorCase<string | undefined>({
    version: V25,
    read: times(2, (d) => d.optionalContentAddress("content address")),
    write: each((e, ca: string | undefined) => e.optionalContentAddress(ca)),
    check: (values, json) => expect(values.map(caJson)).toEqual(json),
  }),
  vector: vectorCase<unknown>({
    version: V25,
    read: async (d) => [
      ...(await times(3, (dd) => dd.stringList("list"))(d, V25)),
      await d.list("list of lists", () => d.stringList("list")),
    ],
    write: (e, values: unknown[]) => {
      for (const v of values.slice(0, 3)) e.stringList(v as string[]);
      e.list(values[3] as string[][], (l) => e.stringList(l));
    },
    check: (values, json) => expect(values).toEqual(json),
  }),
  set: vectorCase<unknown>({
    version: V25,
    read: async (d) => [
      ...(await times(3, (dd) => dd.stringSet("set"))(d, V25)),
      await d.list("set of sets", () => d.stringSet("set")),
    ],
    write: (e, values: unknown[]) => {
      for (const v of values.slice(0, 3)) e.stringSet(v as string[]);
      e.list(values[3] as string[][], (s) => e.stringSet(s));
    },
    check: (values, json) => expect(values).toEqual(json),
  }),
  "build-options-2.1": vectorCase(buildOptionsCase(1, { maxSilentTime: 5, buildTimeout: 6 })),
  "build-options-2.2": vectorCase(
    buildOptionsCase(2, {
      maxSilentTime: 5,
      buildTimeout: 6,
      maxLogSize: 7,
    }),
  ),
  "build-options-2.3": vectorCase(
    buildOptionsCase(3, {
      maxSilentTime: 5,
      buildTimeout: 6,
      maxLogSize: 7,
      nrRepeats: 8,
      enforceDeterminism: true,
    }),
  ),
  "build-options-2.7": vectorCase(
    buildOptionsCase(7, {
      maxSilentTime: 5,
      buildTimeout: 6,
      maxLogSize: 7,
      nrRepeats: 8,
      enforceDeterminism: false,
      keepFailed: true,
    }),
  ),
  "build-result-2.2": vectorCase(buildResultCase(0x202)),
  "build-result-2.3": vectorCase(buildResultCase(0x203)),
  "build-result-2.6": vectorCase(buildResultCase(0x206)),
  "build-result-2.7-compat": vectorCase(
    buildResultCase(0x207, {
      realisationJson: "compat",
    }),
  ),
  "build-result-2.8": vectorCase(buildResultCase(0x208)),
  "unkeyed-valid-path-info-2.3": vectorCase(pathInfoCase(0x203)),
  "unkeyed-valid-path-info-2.4": vectorCase(pathInfoCase(0x204)),
  "drv-output": vectorCase<DrvOutput>({
    version: V25,
    read: times(2, readDrvOutput),
    write: each(writeDrvOutput),
    check: (values, json) => expect(values.map(drvOutputJson)).toEqual(json),
  }),
  "drv-output-2.8": vectorCase<DrvOutput>({
    version: 0x208,
    read: times(2, readDrvOutput),
    write: each(writeDrvOutput),
    check: (values, json) => expect(values.map(drvOutputJson)).toEqual(json),
  }),
  // The second realisation has current Nix's signature objects (a stale upstream file).
  realisation: vectorCase(realisationCase(V25, 2, "signature-objects")),
  "realisation-with-deps": vectorCase(realisationCase(V25, 1, "nix-2.8")),
  "realisation-2.8": vectorCase(realisationCase(0x208, 1, "nix-2.8")),
  "unkeyed-realisation-2.8": vectorCase<UnkeyedRealisation>({
    version: 0x208,
    read: times(1, readUnkeyedRealisation),
    write: each((e, r: UnkeyedRealisation) => writeUnkeyedRealisation(e, r)),
    check: ([r], json) =>
      expect({ outPath: base(r!.outPath), signatures: r!.signatures.map(signatureJson) }).toEqual(
        json,
      ),
  }),
};

const folders = ["serve-protocol", "common-protocol"];

describe.skipIf(!haveVectors)("upstream protocol vectors", () => {
  for (const folder of folders) {
    const dir = () => vectorPath("nix/libstore-tests/data", folder);

    it(`${folder}: every .bin has a case`, () => {
      const names = readdirSync(dir())
        .filter((f) => f.endsWith(".bin"))
        .map((f) => f.slice(0, -4));
      expect(names.length).toBeGreaterThan(5);
      expect(names.filter((n) => !(n in cases))).toEqual([]);
    });

    const names = haveVectors
      ? readdirSync(dir())
          .filter((f) => f.endsWith(".bin"))
          .map((f) => f.slice(0, -4))
          .filter((n) => n in cases)
      : [];
    for (const name of names) {
      it(`${folder}/${name}.bin decodes to its twin and re-encodes identically`, async () => {
        const c = cases[name]!;
        const bytes = readFileSync(`${dir()}/${name}.bin`);
        const twin = `${dir()}/${name}.json`;
        const json = readdirSync(dir()).includes(`${name}.json`)
          ? JSON.parse(readFileSync(twin, "utf8"))
          : undefined;
        for (const chunks of [undefined, [1], [3, 5, 13]]) {
          const values = await decodeAll(bytes, (d) => c.read(d, c.version), chunks);
          c.check(values, json);
          expect(encode((e) => c.write(e, values, c.version)).equals(bytes)).toBe(true);
        }
      });
    }
  }
});
