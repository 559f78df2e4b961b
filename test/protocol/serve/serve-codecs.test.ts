// Serve-protocol rules the properties and recordings do not pin down on their own: version
// arithmetic, what each decoder refuses and why, and what encoders drop or fill in per version.

import { describe, expect, it } from "vitest";
import { Hash } from "../../../src/hash/hash.ts";
import { regularFileNar } from "../../../src/nar/nar-dump.ts";
import { type BuildResult, buildResult } from "../../../src/protocol/build-result.ts";
import { readBuildOptions, writeBuildOptions } from "../../../src/protocol/serve/build-options.ts";
import {
  compatDrvOutputId,
  parseDrvOutputId,
  renderDrvOutputId,
} from "../../../src/protocol/serve/drv-output.ts";
import {
  readExportItemStart,
  readExportItemTrailer,
  readExportStream,
  writeExportItemTrailer,
  writeExportStream,
} from "../../../src/protocol/serve/export-stream.ts";
import {
  readClientHello,
  readServerHello,
  writeServerHello,
} from "../../../src/protocol/serve/handshake.ts";
import { parsePathWithOutputs } from "../../../src/protocol/serve/path-with-outputs.ts";
import {
  readBuildResult,
  writeBuildResult,
} from "../../../src/protocol/serve/serve-build-result.ts";
import {
  pathInfoInputFromServe,
  readUnkeyedPathInfo,
  servePathInfoFromValid,
} from "../../../src/protocol/serve/serve-path-info.ts";
import {
  readServeRequest,
  type ServeRequest,
  writeServeRequest,
} from "../../../src/protocol/serve/serve-request.ts";
import {
  formatServeVersion,
  hasServeMinor,
  negotiateServeVersion,
  supportsServeFeature,
} from "../../../src/protocol/serve/serve-version.ts";
import { ProtocolError } from "../../../src/protocol/wire/protocol-error.ts";
import type { WireDecoder } from "../../../src/protocol/wire/wire-decoder.ts";
import { WireEncoder } from "../../../src/protocol/wire/wire-encoder.ts";
import { readNar } from "../../../src/protocol/wire/wire-nar.ts";
import { WireValueError } from "../../../src/protocol/wire/wire-value-error.ts";
import { captureBytes, decodeAll, decoderOver, encode, storeDir } from "../wire-harness.ts";

const P = (name: string, hash = "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q") => `/nix/store/${hash}-${name}`;
const DRV_HASH = `sha256:${"ab".repeat(32)}`;

async function failure(bytes: Uint8Array, read: (d: WireDecoder) => Promise<unknown>) {
  const error = await read(decoderOver(bytes)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProtocolError);
  return error as ProtocolError;
}

/** A BuildDerivation request (options as at 0x201) whose single output is written by `output`. */
function buildDerivationBytes(output: (e: WireEncoder) => void, env: [string, string][] = []) {
  return encode((e) => {
    e.u64(8).string(P("x.drv")).u64(1).string("out");
    output(e);
    e.u64(0).string("x86_64-linux").string("/bin/sh").u64(0);
    e.u64(env.length);
    for (const [k, v] of env) e.string(k).string(v);
    e.u64(0).u64(0);
  });
}

describe("versions", () => {
  it("negotiates the lower version, ignoring bits above the major", () => {
    expect(negotiateServeVersion(0x207, 0x205)).toBe(0x205);
    expect(negotiateServeVersion(0x208, 0x10205)).toBe(0x205);
    expect(hasServeMinor(0x204, 4)).toBe(true);
    expect(supportsServeFeature(0x205, "builtOutputs")).toBe(false);
    expect(supportsServeFeature(0x208, "keyedRealisations")).toBe(true);
    expect(formatServeVersion(0x207)).toBe("2.7 (0x207)");
  });

  it("greets with Nix 2.8's bytes and names a shell banner when the magic is wrong", async () => {
    expect(encode((e) => writeServerHello(e, 0x207)).toString("hex")).toBe(
      "cbee525400000000" + "0702000000000000",
    );
    const banner = Buffer.from("Welcome to host\n...");
    const error = await failure(banner, readServerHello);
    expect(error.code).toBe("bad-magic");
    expect(error.problem).toContain("Welcome ");
    expect(await failure(Buffer.alloc(4), readClientHello)).toMatchObject({ code: "truncated" });
  });
});

describe("requests", () => {
  it("reads commands newer than the session as Nix's server does; refuses to write them", async () => {
    const drv = buildDerivationBytes((e) => e.string(P("x")).string("").string(""));
    const old = await decodeAll(drv, (d) => readServeRequest(d, 0x200));
    expect(old?.command).toBe("BuildDerivation");
    expect(() => encode((e) => writeServeRequest(e, old as ServeRequest, 0x200))).toThrow(
      /needs serve protocol 2.1/,
    );
    expect(() =>
      encode((e) => writeServeRequest(e, { command: "AddToStoreNar", info: {} as never }, 0x204)),
    ).toThrow(WireValueError);
    const r = await decodeAll(drv, (d) => readServeRequest(d, 0x201));
    if (r?.command !== "BuildDerivation") throw new Error("not a BuildDerivation");
    const renamed = { ...r, drv: { ...r.drv, name: "y" } };
    expect(() => encode((e) => writeServeRequest(e, renamed, 0x201))).toThrow(/takes its name/);
  });

  it("returns undefined only at the very end of the input", async () => {
    expect(await readServeRequest(decoderOver(Buffer.alloc(0)), 0x207)).toBeUndefined();
    expect(await failure(Buffer.alloc(3), (d) => readServeRequest(d, 0x207))).toMatchObject({
      code: "truncated",
    });
  });

  it("parses BuildPaths entries with and without outputs", async () => {
    expect(parsePathWithOutputs(`${P("x.drv")}!out,dev`)).toEqual({
      path: P("x.drv"),
      outputs: ["out", "dev"],
    });
    const bad = encode((e) =>
      e
        .u64(6)
        .u64(1)
        .string(`${P("x.drv")}!`)
        .u64(0)
        .u64(0),
    );
    expect(await failure(bad, (d) => readServeRequest(d, 0x207))).toMatchObject({
      code: "invalid",
      offset: 16,
    });
  });

  it("reads AddToStoreNar's hash in any rendering, writes it as Nix 2.8 does, refuses narSize 0", async () => {
    const hash = Hash.of("sha256", "nar");
    const request = (narSize: number, narHash: string) =>
      encode((e) => {
        e.u64(9).string(P("a")).string("").string(narHash).u64(0);
        e.u64(1700000000).u64(narSize).u64(0).u64(0).string("");
      });
    const r = await decodeAll(request(120, hash.format("nix32")), (d) =>
      readServeRequest(d, 0x207),
    );
    expect(r).toMatchObject({ command: "AddToStoreNar", info: { narSize: 120, ultimate: false } });
    expect(encode((e) => writeServeRequest(e, r!, 0x207))).toEqual(request(120, hash.toBase16()));
    expect(
      await failure(request(0, hash.toBase16()), (d) => readServeRequest(d, 0x207)),
    ).toMatchObject({
      code: "invalid",
      problem: "narInfo is too old and missing the narSize field",
    });
  });
});

describe("BasicDerivation", () => {
  it("takes the name from the drvPath and accepts a fixed output's hash in nix32", async () => {
    const hash = Hash.of("sha256", "hi");
    const bytes = buildDerivationBytes((e) =>
      e.string(P("fod")).string("sha256").string(hash.format("nix32", false)),
    );
    const r = await decodeAll(bytes, (d) => readServeRequest(d, 0x201));
    if (r?.command !== "BuildDerivation") throw new Error("not a BuildDerivation");
    expect(r.drv.name).toBe("x");
    expect(r.drv.outputs.get("out")).toEqual({
      type: "fixed",
      path: P("fod"),
      method: "flat",
      hash,
    });
  });

  it.each([
    [
      "a floating CA output",
      "unsupported",
      (e: WireEncoder) => e.string("").string("r:sha256").string(""),
    ],
    [
      "an impure output",
      "unsupported",
      (e: WireEncoder) => e.string("").string("r:sha256").string("impure"),
    ],
    [
      "text hashing",
      "unsupported",
      (e: WireEncoder) => e.string(P("t")).string("text:sha256").string("00"),
    ],
    [
      "a hash without algorithm",
      "invalid",
      (e: WireEncoder) => e.string(P("t")).string("").string("00"),
    ],
    [
      "an unknown algorithm",
      "invalid",
      (e: WireEncoder) => e.string(P("t")).string("sha3").string("00"),
    ],
    ["a bad digest", "invalid", (e: WireEncoder) => e.string(P("t")).string("sha256").string("00")],
  ])("refuses %s", async (_, code, output) => {
    const error = await failure(buildDerivationBytes(output), (d) => readServeRequest(d, 0x207));
    expect(error.code).toBe(code);
  });

  it("refuses a duplicate env variable and a drvPath that is not a .drv", async () => {
    const dup = buildDerivationBytes(
      (e) => e.string(P("x")).string("").string(""),
      [
        ["a", "1"],
        ["a", "2"],
      ],
    );
    expect(await failure(dup, (d) => readServeRequest(d, 0x207))).toMatchObject({
      code: "invalid",
    });
    const notDrv = encode((e) => e.u64(8).string(P("x")));
    expect(await failure(notDrv, (d) => readServeRequest(d, 0x207))).toMatchObject({
      code: "invalid",
      offset: 8,
    });
  });
});

describe("build options", () => {
  it("fills fields the caller left out with Nix 2.8's defaults and drops what the version lacks", async () => {
    const at7 = encode((e) => writeBuildOptions(e, { maxSilentTime: 3, buildTimeout: 4 }, 0x207));
    expect(await decodeAll(at7, (d) => readBuildOptions(d, 0x207))).toEqual({
      maxSilentTime: 3,
      buildTimeout: 4,
      maxLogSize: 0,
      nrRepeats: 0,
      enforceDeterminism: true,
      keepFailed: false,
    });
    const at1 = encode((e) =>
      writeBuildOptions(e, { maxSilentTime: 3, buildTimeout: 4, keepFailed: true }, 0x201),
    );
    expect(at1).toHaveLength(16);
  });
});

describe("BuildResult", () => {
  const out = P("x");
  const built = buildResult("Built", {
    timesBuilt: 1,
    startTime: 10,
    stopTime: 11,
    builtOutputs: { out: { id: `${DRV_HASH}!out`, outPath: out } },
  });

  it("knows statuses up to NoSubstituters (14) and refuses others", async () => {
    const ok = encode((e) => e.u64(14).string(""));
    expect((await decodeAll(ok, (d) => readBuildResult(d, 0x202))).status).toBe("NoSubstituters");
    const bad = encode((e) => e.u64(15).string(""));
    expect(await failure(bad, (d) => readBuildResult(d, 0x202))).toMatchObject({
      code: "invalid",
      offset: 0,
    });
  });

  it("Nix 2.8's builtOutputs below 0x206 are left unread unless the option says they come (#6946)", async () => {
    const quirk = { builtOutputsBelow206: true };
    const bytes = encode((e) => writeBuildResult(e, built, 0x202, quirk));
    const plain = decoderOver(bytes);
    const r = await readBuildResult(plain, 0x202);
    expect(Object.keys(r.builtOutputs)).toHaveLength(0);
    expect(plain.offset).toBe(16);
    expect(await plain.atEnd()).toBe(false);
    const read = await decodeAll(bytes, (d) => readBuildResult(d, 0x202, quirk));
    expect(read.builtOutputs).toEqual(built.builtOutputs);
    expect(encode((e) => writeBuildResult(e, built, 0x202))).toHaveLength(16);
  });

  it("refuses a realisation whose id is not its key, or an output twice", async () => {
    const json = (id: string) =>
      `{"dependentRealisations":{},"id":"${id}","outPath":"${out.slice(11)}","signatures":[]}`;
    const entries = (pairs: [string, string][]) =>
      encode((e) => {
        e.u64(0).string("").u64(1).u64(0).u64(0).u64(0).u64(pairs.length);
        for (const [k, v] of pairs) e.string(k).string(v);
      });
    const mismatch = entries([[`${DRV_HASH}!out`, json(`${DRV_HASH}!dev`)]]);
    expect(await failure(mismatch, (d) => readBuildResult(d, 0x207))).toMatchObject({
      code: "invalid",
    });
    const other = `sha256:${"cd".repeat(32)}!out`;
    const twice = entries([
      [`${DRV_HASH}!out`, json(`${DRV_HASH}!out`)],
      [other, json(other)],
    ]);
    expect(await failure(twice, (d) => readBuildResult(d, 0x207))).toMatchObject({
      code: "invalid",
    });
    const notJson = entries([[`${DRV_HASH}!out`, "{"]]);
    expect(await failure(notJson, (d) => readBuildResult(d, 0x207))).toMatchObject({
      code: "invalid",
    });
  });

  it("writes ids that match their output names only, and drops ids at 0x208", async () => {
    const wrong = buildResult("Built", {
      builtOutputs: { dev: { id: `${DRV_HASH}!out`, outPath: out } },
    });
    expect(() => encode((e) => writeBuildResult(e, wrong, 0x207))).toThrow(WireValueError);
    const at8 = await decodeAll(
      encode((e) => writeBuildResult(e, built, 0x208)),
      (d) => readBuildResult(d, 0x208),
    );
    expect(at8.builtOutputs.out).toEqual({ id: "", outPath: out });
  });

  it("keeps output names special to plain objects (__proto__, constructor, 9) as own entries", async () => {
    // Bytewise, as both forms write them; a JS object lists "9" before "10" (integer-like keys
    // first, ascending), so the writer must sort its keys itself.
    const names = ["10", "9", "__proto__", "constructor", "out"];
    const outputs = (id: (name: string) => string) =>
      Object.fromEntries(names.map((n) => [n, { id: id(n), outPath: P(n) }]));
    const check = (r: BuildResult, id: (name: string) => string) => {
      expect(Object.getPrototypeOf(r.builtOutputs)).toBe(Object.prototype);
      expect(Object.keys(r.builtOutputs).sort()).toEqual(names);
      expect(Object.hasOwn(r.builtOutputs, "__proto__")).toBe(true);
      expect(Object.getOwnPropertyDescriptor(r.builtOutputs, "__proto__")?.value).toEqual({
        id: id("__proto__"),
        outPath: P("__proto__"),
      });
      expect(r.builtOutputs).toEqual(outputs(id));
      // Plain data: JSON.parse defines `__proto__` as an own key too.
      expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    };
    const head = (e: WireEncoder) => e.u64(0).string("").u64(1).u64(0).u64(10).u64(11);

    // 0x208: output name → (outPath, signatures).
    const keyed = encode((e) => {
      head(e).u64(names.length);
      for (const n of names) e.string(n).string(P(n)).u64(0);
    });
    const at8 = await decodeAll(keyed, (d) => readBuildResult(d, 0x208));
    check(at8, () => "");
    expect(Buffer.from(encode((e) => writeBuildResult(e, at8, 0x208)))).toEqual(Buffer.from(keyed));

    // 0x206 – 0x207: DrvOutput id → realisation JSON.
    const id = (n: string) => `${DRV_HASH}!${n}`;
    const json = encode((e) => {
      head(e).u64(names.length);
      for (const n of names) {
        const base = P(n).slice("/nix/store/".length);
        e.string(id(n));
        e.string(
          `{"dependentRealisations":{},"id":"${id(n)}","outPath":"${base}","signatures":[]}`,
        );
      }
    });
    const at7 = await decodeAll(json, (d) => readBuildResult(d, 0x207));
    check(at7, id);
    expect(Buffer.from(encode((e) => writeBuildResult(e, at7, 0x207)))).toEqual(Buffer.from(json));
    // Written from a result built in another order, the wire order is the same.
    const reversed = buildResult("Built", {
      timesBuilt: 1,
      startTime: 10,
      stopTime: 11,
      builtOutputs: Object.fromEntries(Object.entries(outputs(id)).reverse()),
    });
    expect(Buffer.from(encode((e) => writeBuildResult(e, reversed, 0x207)))).toEqual(
      Buffer.from(json),
    );

    // `__proto__` twice is a duplicate like any other name; `constructor` once is not.
    const twice = encode((e) => {
      head(e).u64(2);
      for (let i = 0; i < 2; i++) e.string("__proto__").string(P("__proto__")).u64(0);
    });
    expect(await failure(twice, (d) => readBuildResult(d, 0x208))).toMatchObject({
      code: "invalid",
    });
  });

  it("renders DrvOutput ids as Nix does; the compat id has a zero hash", () => {
    const id = parseDrvOutputId(`sha256:${Hash.of("sha256", "x").toNix32()}!out`);
    expect(renderDrvOutputId(id)).toBe(`${Hash.of("sha256", "x").format("base16")}!out`);
    expect(compatDrvOutputId("bar")).toBe(`sha256:${"0".repeat(64)}!bar`);
    expect(() => parseDrvOutputId("sha256:00!")).toThrow();
  });
});

describe("path infos", () => {
  const hash = Hash.of("sha256", "nar");

  it("refuses an empty NAR hash from 2.4 on; has none before", async () => {
    const info = (narHash?: string) =>
      encode((e) => {
        e.string("").u64(0).u64(1).u64(1);
        if (narHash !== undefined) e.string(narHash).string("").u64(0);
      });
    expect(await failure(info(""), (d) => readUnkeyedPathInfo(d, 0x204))).toMatchObject({
      code: "invalid",
      offset: 32,
    });
    const old = await decodeAll(info(), (d) => readUnkeyedPathInfo(d, 0x203));
    expect(old.narHash).toBeUndefined();
    expect(() => pathInfoInputFromServe({ path: P("a"), ...old })).toThrow(WireValueError);
  });

  it("converts to and from the store's path infos (downloadSize = narSize)", () => {
    const valid = {
      path: P("a"),
      narHash: hash,
      narSize: 120,
      references: [P("b")],
      deriver: undefined,
      registrationTime: 5,
      ultimate: true,
      sigs: [],
      ca: undefined,
    };
    const info = servePathInfoFromValid(valid);
    expect(info.downloadSize).toBe(120);
    expect(pathInfoInputFromServe(info)).toMatchObject({
      path: P("a"),
      narHash: hash,
      narSize: 120,
    });
  });
});

describe("export streams", () => {
  it("refuses an item marker other than 0 or 1, and a wrong magic, with Nix's words", async () => {
    const marker = await failure(
      encode((e) => e.u64(2)),
      readExportItemStart,
    );
    expect(marker.problem).toMatch(/doesn't look like something created by 'nix-store --export'/);
    const magic = await failure(
      encode((e) => e.u64(0x4558494f)),
      readExportItemTrailer,
    );
    expect(magic.problem).toMatch(/wrong format/);
  });

  it("streams whole exports both ways, NARs passing through the reader", async () => {
    const nar = (text: string) => Buffer.concat(regularFileNar(Buffer.from(text)));
    const items = [
      { item: { path: P("a"), references: [], deriver: undefined }, nar: nar("a") },
      { item: { path: P("b"), references: [P("a")], deriver: P("b.drv") }, nar: nar("bb") },
    ];
    const e = new WireEncoder(storeDir);
    const chunks: Uint8Array[] = [];
    for await (const c of writeExportStream(
      e,
      items.map((i) => ({ ...i, nar: [i.nar] })),
    )) {
      chunks.push(c);
    }
    const d = decoderOver(Buffer.concat(chunks), [3]);
    const read = [];
    for await (const x of readExportStream(d, (dd) => captureBytes(dd, () => readNar(dd)))) {
      read.push(x);
    }
    expect(read).toEqual(items);
    expect(await d.atEnd()).toBe(true);
  });

  it("keeps a legacy signature", async () => {
    const item = { path: P("a"), references: [], deriver: undefined, legacySignature: "sig" };
    const bytes = encode((e) => writeExportItemTrailer(e, item));
    expect(await decodeAll(bytes, readExportItemTrailer)).toEqual(item);
  });
});
