// fast-check generators for every serve-protocol value, per version: each generates exactly
// what the version can carry, in the normal form decoders produce (sets sorted, absent
// optional fields left out), so decode(encode(x)) must equal x.

import fc from "fast-check";
import type { BasicDerivation } from "../../../src/derivation/derivation.ts";
import { sortBytewise } from "../../../src/derivation/derivation.ts";
import { HASH_ALGOS, HASH_SIZE, Hash } from "../../../src/hash/hash.ts";
import { nix32Encode } from "../../../src/hash/nix32.ts";
import {
  type BuildResult,
  BuildStatus,
  type BuiltOutput,
} from "../../../src/protocol/build-result.ts";
import type { BuildOptions } from "../../../src/protocol/serve/build-options.ts";
import type { DrvOutput } from "../../../src/protocol/serve/drv-output.ts";
import type { ExportedPath } from "../../../src/protocol/serve/export-stream.ts";
import type { PathWithOutputs } from "../../../src/protocol/serve/path-with-outputs.ts";
import type { Realisation, UnkeyedRealisation } from "../../../src/protocol/serve/realisation.ts";
import type { RealisationJsonForm } from "../../../src/protocol/serve/realisation-json.ts";
import type { ServePathInfo } from "../../../src/protocol/serve/serve-path-info.ts";
import type { BuildPathsReply } from "../../../src/protocol/serve/serve-reply.ts";
import type { ServeRequest } from "../../../src/protocol/serve/serve-request.ts";
import { serveMinor } from "../../../src/protocol/serve/serve-version.ts";
import type { ValidPathInfo } from "../../../src/store/path-info.ts";
import { renderContentAddress } from "../../../src/store-path/content-address.ts";
import { derivation, storePath, trickyString } from "../../derivation/arbitrary.ts";
import { treeArb } from "../../nar/file-tree.ts";
import { treeNar } from "../../nar/nar-tree-tokens.ts";
import { storeDir } from "../wire-harness.ts";

export const ALL_VERSIONS = [0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207, 0x208];

const minor = serveMinor;
const u32 = fc.nat({ max: 0xffff_ffff });
const u64 = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat());

export const path = storePath(storeDir);
export const drvPath = storePath(storeDir, ".drv");
const optionalPath = fc.option(path, { nil: undefined });
export const pathSet = fc.uniqueArray(path, { maxLength: 4 }).map((xs) => sortBytewise(xs));

const outputName = fc.oneof(
  fc.constantFrom("out", "dev", "lib", "bin", "doc"),
  // Names that are special to plain objects: builtOutputs is one, keyed by output name.
  fc.constantFrom("__proto__", "constructor", "toString", "10", "9"),
  trickyString.filter((s) => s !== ""),
);
/** Output names BuildPaths can carry (no `,` or `!`). */
const plainOutputName = fc.constantFrom("out", "dev", "lib", "bin", "doc", "man", "x-y");

const signature = fc
  .tuple(
    fc.constantFrom("cache.nixos.org-1", "fake-sig-1", "key"),
    fc.uint8Array({ minLength: 1, maxLength: 64 }),
  )
  .map(([k, b]) => `${k}:${Buffer.from(b).toString("base64")}`);
const signatures = fc.uniqueArray(signature, { maxLength: 3 }).map((xs) => sortBytewise(xs));

export const sha256 = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => new Hash("sha256", b));
const anyHash = fc
  .tuple(fc.constantFrom(...HASH_ALGOS), fc.uint8Array({ minLength: 64, maxLength: 64 }))
  .map(([algo, b]) => new Hash(algo, b.subarray(0, HASH_SIZE[algo])));

export const contentAddress = fc.oneof(
  sha256.map((hash) => renderContentAddress({ method: "text", hash })),
  fc
    .tuple(fc.constantFrom<"flat" | "nar">("flat", "nar"), anyHash)
    .map(([method, hash]) => renderContentAddress({ method, hash })),
);
const optionalCa = fc.option(contentAddress, { nil: undefined });

const drvOutputId = fc
  .tuple(sha256, outputName)
  .map(([h, name]) => `${h.format("base16")}!${name}`);

export function buildOptions(version: number): fc.Arbitrary<BuildOptions> {
  return fc
    .record({
      maxSilentTime: u32,
      buildTimeout: u32,
      maxLogSize: u64,
      nrRepeats: u32,
      enforceDeterminism: fc.boolean(),
      keepFailed: fc.boolean(),
    })
    .map((o) => {
      const v = minor(version);
      const out: BuildOptions = { maxSilentTime: o.maxSilentTime, buildTimeout: o.buildTimeout };
      if (v >= 2) out.maxLogSize = o.maxLogSize;
      if (v >= 3) {
        out.nrRepeats = o.nrRepeats;
        out.enforceDeterminism = o.enforceDeterminism;
      }
      if (v >= 7) out.keepFailed = o.keepFailed;
      return out;
    });
}

/** How builtOutputs travel: not at all, as realisation JSON (in a form), or keyed by name (0x208). */
export type BuiltOutputsForm = "none" | RealisationJsonForm | "keyed";

export function builtOutputsForm(
  version: number,
  options: { builtOutputsBelow206?: boolean; realisationJson?: RealisationJsonForm },
): BuiltOutputsForm {
  if (minor(version) >= 8) return "keyed";
  if (minor(version) >= 6 || options.builtOutputsBelow206) {
    return options.realisationJson ?? "nix-2.8";
  }
  return "none";
}

function builtOutputs(form: BuiltOutputsForm): fc.Arbitrary<Record<string, BuiltOutput>> {
  if (form === "none") return fc.constant({});
  const deps = fc
    .uniqueArray(fc.tuple(drvOutputId, path), { selector: (x) => x[0], maxLength: 2 })
    .map((xs) => Object.fromEntries(xs));
  return fc
    .tuple(
      sha256,
      fc.uniqueArray(fc.tuple(outputName, path, signatures, deps), {
        selector: (x) => x[0],
        maxLength: 3,
      }),
    )
    .map(([drvHash, outs]) => {
      const m: [string, BuiltOutput][] = [];
      for (const [name, outPath, sigs, dependentRealisations] of outs) {
        const b: BuiltOutput = {
          id: form === "keyed" ? "" : `${drvHash.format("base16")}!${name}`,
          outPath,
        };
        if (form !== "compat" && sigs.length > 0) b.signatures = sigs;
        if (
          (form === "nix-2.8" || form === "signature-objects") &&
          Object.keys(dependentRealisations).length > 0
        ) {
          b.dependentRealisations = dependentRealisations;
        }
        m.push([name, b]);
      }
      // fromEntries, not assignment: a name may be `__proto__` (outputName offers it).
      return Object.fromEntries(m);
    });
}

export function buildResult(version: number, form: BuiltOutputsForm): fc.Arbitrary<BuildResult> {
  const statuses = Object.keys(BuildStatus) as BuildResult["status"][];
  const withTimes = minor(version) >= 3;
  return fc
    .record({
      status: fc.constantFrom(...statuses),
      errorMsg: trickyString,
      timesBuilt: withTimes ? u32 : fc.constant(0),
      isNonDeterministic: withTimes ? fc.boolean() : fc.constant(false),
      startTime: withTimes ? u64 : fc.constant(0),
      stopTime: withTimes ? u64 : fc.constant(0),
      builtOutputs: builtOutputs(form),
    })
    .map((r) => r as BuildResult);
}

export function servePathInfo(version: number): fc.Arbitrary<ServePathInfo> {
  const hashes = minor(version) >= 4;
  return fc
    .record({
      path,
      deriver: optionalPath,
      references: pathSet,
      downloadSize: u64,
      narSize: u64,
      narHash: hashes ? sha256 : fc.constant(undefined),
      ca: hashes ? optionalCa : fc.constant(undefined),
      sigs: hashes ? signatures : fc.constant([]),
    })
    .map((i) => i as ServePathInfo);
}

export const basicDerivationRequest: fc.Arbitrary<{ drvPath: string; drv: BasicDerivation }> = fc
  .tuple(derivation(storeDir), fc.uint8Array({ minLength: 20, maxLength: 20 }))
  .map(([{ inputDrvs: _, ...drv }, h]) => ({
    drvPath: `${storeDir.path}/${nix32Encode(h)}-${drv.name}.drv`,
    drv,
  }));

const pathWithOutputs: fc.Arbitrary<PathWithOutputs> = fc.oneof(
  path.map((p) => ({ path: p, outputs: [] })),
  fc.tuple(drvPath, fc.uniqueArray(plainOutputName, { maxLength: 3 })).map(([p, outputs]) => ({
    path: p,
    outputs,
  })),
);

export const addToStoreNarInfo: fc.Arbitrary<ValidPathInfo> = fc.record({
  path,
  deriver: optionalPath,
  narHash: sha256,
  references: pathSet,
  registrationTime: u64,
  narSize: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  ultimate: fc.boolean(),
  sigs: signatures,
  ca: optionalCa,
});

export function serveRequest(version: number): fc.Arbitrary<ServeRequest> {
  const requests: fc.Arbitrary<ServeRequest>[] = [
    fc.record({
      command: fc.constant("QueryValidPaths" as const),
      lock: fc.boolean(),
      substitute: fc.boolean(),
      paths: pathSet,
    }),
    fc.record({ command: fc.constant("QueryPathInfos" as const), paths: pathSet }),
    fc.record({ command: fc.constant("DumpStorePath" as const), path }),
    fc.constant({ command: "ImportPaths" as const }),
    fc.record({ command: fc.constant("ExportPaths" as const), sign: fc.boolean(), paths: pathSet }),
    fc.record({
      command: fc.constant("BuildPaths" as const),
      paths: fc.array(pathWithOutputs, { maxLength: 3 }),
      options: buildOptions(version),
    }),
    fc.record({
      command: fc.constant("QueryClosure" as const),
      includeOutputs: fc.boolean(),
      paths: pathSet,
    }),
  ];
  if (minor(version) >= 1) {
    requests.push(
      fc
        .tuple(basicDerivationRequest, buildOptions(version))
        .map(([r, options]) => ({ command: "BuildDerivation" as const, ...r, options })),
    );
  }
  if (minor(version) >= 5) {
    requests.push(addToStoreNarInfo.map((info) => ({ command: "AddToStoreNar" as const, info })));
  }
  return fc.oneof(...requests);
}

export const buildPathsReply: fc.Arbitrary<BuildPathsReply> = fc.oneof(
  fc.constant({ status: 0 }),
  fc.record({ status: fc.integer({ min: 1, max: 0xffff_ffff }), errorMsg: trickyString }),
);

export function drvOutput(version: number): fc.Arbitrary<DrvOutput> {
  return minor(version) >= 8
    ? fc.record({ drvPath, outputName })
    : fc.record({ drvHash: anyHash, outputName });
}

export const unkeyedRealisation: fc.Arbitrary<UnkeyedRealisation> = fc.record({
  outPath: path,
  signatures,
});

export function realisation(version: number, form: RealisationJsonForm): fc.Arbitrary<Realisation> {
  const keyed = minor(version) >= 8;
  return fc.record({
    id: drvOutput(version),
    outPath: path,
    signatures: keyed || form !== "compat" ? signatures : fc.constant([]),
    dependentRealisations:
      keyed || form === "compat"
        ? fc.constant({})
        : fc
            .uniqueArray(fc.tuple(drvOutputId, path), { selector: (x) => x[0], maxLength: 2 })
            .map((xs) => Object.fromEntries(xs)),
  });
}

/** A small NAR of any shape. */
export const nar: fc.Arbitrary<Buffer> = treeArb({ large: false, maxEntries: 3 }).map(treeNar);

export const exportedPath: fc.Arbitrary<ExportedPath> = fc
  .record({
    path,
    references: pathSet,
    deriver: optionalPath,
    legacySignature: fc.option(signature, { nil: undefined }),
  })
  .map(({ legacySignature, ...item }) =>
    legacySignature === undefined ? item : { ...item, legacySignature },
  );

export const exportStream = fc.array(fc.record({ item: exportedPath, nar }), { maxLength: 3 });
